"""Redraw docs/images/viewer.png: ``agentgym view`` of a real training run in headless Chromium.

Opens the run's last sampled iteration, the task group whose rollouts differ most in
outcome, and pins the highlight of a step whose state other trajectories also reach.

Usage (after ``make browser``, with a run that saved rollouts, e.g. a short quickstart)::

    agentgym train examples/quickstart.yaml trainer.total_iterations=6 trainer.test_tasks=0 \\
        trainer.val_every=2 trainer.val_tasks=16 trainer.out_dir=runs/quickstart-short
    python scripts/viewer_screenshot.py runs/quickstart-short [--out docs/images/viewer.png]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from agentgym.trajectory import read_jsonl
from agentgym.viewer import ViewerServer

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images/viewer.png"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1050)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    files = sorted((args.run_dir / "rollouts").glob("iter_*.jsonl"))
    if not files:
        raise SystemExit(f"{args.run_dir} has no rollout samples (trainer.save_rollouts)")
    iteration = int(files[-1].stem.removeprefix("iter_"))
    groups: dict[str, list] = {}
    for traj in read_jsonl(files[-1]):
        groups.setdefault(traj.group_id, []).append(traj)
    members = list(groups.values())
    index = max(
        range(len(members)),
        key=lambda i: min(
            sum(t.success for t in members[i]), sum(not t.success for t in members[i])
        ),
    )
    group = members[index]
    # a step whose state the most trajectories of the group reach
    traj_index, step_index = max(
        ((t, s) for t, traj in enumerate(group) for s in range(len(traj.steps))),
        key=lambda ts: (
            sum(
                any(x.state_key == group[ts[0]].steps[ts[1]].state_key for x in o.steps)
                for o in group
            ),
            -ts[1],
            -ts[0],
        ),
    )
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("Debian's chromium is not installed: run `make browser`")
    with ViewerServer(args.run_dir, port=0) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(server.url + f"#rollouts/{iteration}/{index}")
        page.wait_for_selector("body[data-ready=true]")
        step = page.locator(
            f"#group-detail .step[data-traj='{traj_index}'][data-step='{step_index}']"
        )
        step.click()
        page.evaluate("window.scrollTo(0, 0)")
        page.mouse.move(args.width - 5, 60)  # off the cards, so no hover border shows
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"{args.out}: iteration {iteration}, group {group[0].task_id}, step {step_index + 1}")


if __name__ == "__main__":
    main()
