"""The viewer's page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

``make test`` installs Chromium first (``make browser``); where it cannot be installed these
tests skip and say so. Playwright drives the system browser (``executable_path``); it never
downloads one.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentgym.trajectory import Trajectory, read_jsonl
from agentgym.viewer import ViewerServer

#: Headless flags for a machine without network: no background connections at start.
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip(
            "Debian's chromium is not installed and could not be: `make browser` runs "
            "`apt-get install -y chromium` (needs root and apt)"
        )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    yield page
    context.close()
    assert not errors, errors  # no script error and no failed request on any page


#: What the tests read off every step card, in one round trip.
STEP_STATE = """els => els.map(e => ({
    traj: e.dataset.traj, step: e.dataset.step, adv: e.dataset.adv,
    level: e.dataset.level || "0", badge: e.querySelector(".level-badge").textContent,
    colour: getComputedStyle(e).backgroundColor,
}))"""


def open_page(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)


def rgb(page: Any, selector_or_handle: Any) -> tuple[int, int, int]:
    handle = (
        page.locator(selector_or_handle)
        if isinstance(selector_or_handle, str)
        else selector_or_handle
    )
    colour = handle.evaluate("e => getComputedStyle(e).backgroundColor")
    r, g, b = (int(x) for x in re.findall(r"\d+", colour)[:3])
    return r, g, b


def groups_of(trajs: list[Trajectory]) -> dict[str, list[Trajectory]]:
    out: dict[str, list[Trajectory]] = {}
    for traj in trajs:
        out.setdefault(traj.group_id, []).append(traj)
    return out


def pick_group(run: Path) -> tuple[int, int, list[Trajectory]]:
    """An (iteration, group index, group) whose credit is not all zero and where one state
    key occurs in two trajectories: the group the test clicks into."""
    for path in sorted((run / "rollouts").glob("iter_*.jsonl")):
        iteration = int(path.stem.removeprefix("iter_"))
        groups = groups_of(read_jsonl(path))
        for index, members in enumerate(groups.values()):
            advantages = [a for t in members for a in t.metadata["advantages"]]
            if not any(a > 0 for a in advantages) or not any(a < 0 for a in advantages):
                continue
            keys = [{s.state_key for s in t.steps} for t in members]
            if any(len([k for k in keys if key in k]) > 1 for key in set().union(*keys)):
                return iteration, index, members
    raise AssertionError("no group with mixed credit and a shared state; change the seed")


def history_depth(a: list[str], b: list[str], limit: int) -> int:
    depth = 0
    while depth < min(limit, len(a), len(b)) and a[-1 - depth] == b[-1 - depth]:
        depth += 1
    return depth


@pytest.mark.parametrize("run_fixture", ["trained_run", "rollout_run"])
def test_run_page_rollouts_colours_highlights_and_filters(
    page: Any, run_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``trained_run``: one iteration of a real ``agentgym train`` (what it saved itself);
    ``rollout_run``: two iterations of random-policy rollouts, some of which succeed."""
    run = request.getfixturevalue(run_fixture)
    iteration, index, group = pick_group(run)
    files = sorted((run / "rollouts").glob("iter_*.jsonl"))
    last = int(files[-1].stem.removeprefix("iter_"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    with ViewerServer(run, port=0) as server:
        open_page(page, server.url)
        # the latest sampled iteration opens first, one card per saved group
        assert page.locator("#iter-select").input_value() == str(last)
        assert page.locator("#iter-select option").count() == len(files)
        assert page.locator("#hl-mode").input_value() == "anchor"  # gigpo's groups
        assert page.locator(".group-card").count() == len(groups_of(read_jsonl(files[-1])))

        # curves: one chart per default metric that the run logged, one dot per record
        page.click("#tabs [data-view=curves]")
        chart = page.locator('figure.chart[data-metric="train/success"]')
        chart.wait_for()
        assert chart.locator("circle.dot").count() == sum("train/success" in r for r in records)
        assert page.locator('figure.chart[data-metric="credit/adv_abs_mean"]').count() == 1

        # into a group of the chosen iteration
        page.click("#tabs [data-view=rollouts]")
        page.select_option("#iter-select", str(iteration))
        page.wait_for_selector(f"#group-list[data-iteration='{iteration}']")
        page.locator(f".group-card[data-group='{index}']").click()
        detail = page.locator("#group-detail")
        detail.wait_for()
        assert detail.locator(".traj").count() == len(group)
        assert detail.locator("h2").inner_text() == group[0].task_id

        # every step shows its advantage as data and as colour: green > 0, red < 0, white 0
        steps = detail.locator(".step")
        expected = [
            (t, s, adv)
            for t, traj in enumerate(group)
            for s, adv in enumerate(traj.metadata["advantages"])
        ]
        assert steps.count() == len(expected)
        shown = steps.evaluate_all(STEP_STATE)
        for (t, s, adv), step in zip(expected, shown, strict=True):
            assert (step["traj"], step["step"]) == (str(t), str(s))
            assert float(step["adv"]) == pytest.approx(adv)
            r, g, b = (int(x) for x in re.findall(r"\d+", step["colour"])[:3])
            if adv > 1e-9:
                assert g > r and g > b, (adv, (r, g, b))
            elif adv < -1e-9:
                assert r > g and r > b, (adv, (r, g, b))
            else:
                assert (r, g, b) == (255, 255, 255)

        # hover: the anchor-state group of the step lights up across trajectories
        t0, s0, key = next(
            (t, s, step.state_key)
            for t, traj in enumerate(group)
            for s, step in enumerate(traj.steps)
            if sum(any(x.state_key == step.state_key for x in o.steps) for o in group) > 1
        )
        source = detail.locator(f".step[data-traj='{t0}'][data-step='{s0}']")
        source.hover()
        same_state = {
            (t, s)
            for t, traj in enumerate(group)
            for s, step in enumerate(traj.steps)
            if step.state_key == key
        }
        lit = {
            (int(h.get_attribute("data-traj")), int(h.get_attribute("data-step")))
            for h in detail.locator(".step.hl-anchor").element_handles()
        }
        assert lit == same_state and len({t for t, _ in lit}) > 1
        assert f"anchor state {key}: {len(same_state)} steps" in page.inner_text("#hl-info")

        # click pins it: hovering elsewhere changes nothing until clicked again
        source.click()
        page.locator("#title").hover()
        assert detail.locator(".step.hl-anchor").count() == len(same_state)
        assert detail.locator(".step.hl-pinned").count() == 1
        source.click()
        page.locator("#title").hover()
        assert detail.locator(".step.hl-anchor").count() == 0

        # HGPO's levels: equal last-l state keys, l = 1..K+1
        page.select_option("#hl-mode", "history")
        page.fill("#hl-k", "1")
        page.locator("#hl-k").dispatch_event("change")
        source.hover()
        mine = [st.state_key for st in group[t0].steps[: s0 + 1]]
        shown = {(int(x["traj"]), int(x["step"])): x for x in steps.evaluate_all(STEP_STATE)}
        for t, traj in enumerate(group):
            for s in range(len(traj.steps)):
                theirs = [st.state_key for st in traj.steps[: s + 1]]
                depth = history_depth(mine, theirs, 2)
                assert shown[t, s]["level"] == str(depth), (t, s)
                assert shown[t, s]["badge"] == (f"L{depth}" if depth else "")
        page.select_option("#hl-mode", "anchor")

        # filters: outcome, then split and task type options from the data
        outcomes = [t.success for t in group]
        page.select_option("#f-success", "failure")
        assert detail.locator(".traj").count() == outcomes.count(False)
        assert all(
            h.get_attribute("data-success") == "false"
            for h in detail.locator(".traj").element_handles()
        )
        cards = page.locator(".group-card")
        groups = groups_of(read_jsonl(run / "rollouts" / f"iter_{iteration:06d}.jsonl"))
        assert cards.count() == sum(any(not t.success for t in g) for g in groups.values())
        page.select_option("#f-success", "success")
        expected_cards = sum(any(t.success for t in g) for g in groups.values())
        assert cards.count() == expected_cards
        if any(outcomes):
            assert detail.locator(".traj").count() == outcomes.count(True)
        page.select_option("#f-success", "all")
        assert detail.is_visible() and detail.locator(".traj").count() == len(group)
        assert page.locator("#f-split option").all_inner_texts() == ["all", "train"]
        assert page.locator("#f-type option").all_inner_texts() == ["all", "(none)"]
        page.select_option("#f-split", "train")
        assert cards.count() == len(groups)

        source.click()  # pinned, for the picture
        shot = tmp_path / "viewer.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 20_000


def test_eval_page_tasks_pass_at_k_and_episodes(page: Any, eval_dir: Path) -> None:
    summary = json.loads((eval_dir / "summary.json").read_text())
    per_task = summary["per_task"]
    with ViewerServer(eval_dir, port=0) as server:
        open_page(page, server.url)
        for k in (1, 2, 3, 4):
            tile = page.locator(f".tile[data-metric='pass@{k}'] b")
            assert tile.inner_text() == f"{summary['metrics'][f'pass@{k}']:.3f}"
        rows = page.locator("tr.task-row")
        assert rows.all_inner_texts() and rows.count() == len(per_task)
        assert [h.get_attribute("data-task") for h in rows.element_handles()] == list(per_task)

        # a task: its four episodes side by side, in order, not coloured (no advantages)
        task_id = next(tid for tid, s in per_task.items() if 0 < s["successes"] < s["episodes"])
        page.locator(f"tr.task-row[data-task='{task_id}']").click()
        detail = page.locator("#task-detail")
        detail.locator(".traj").first.wait_for()
        heads = detail.locator(".traj-head b").all_inner_texts()
        assert [h.split()[-1] for h in heads] == ["0", "1", "2", "3"]
        assert detail.locator(".step .adv").count() == 0
        assert rgb(page, detail.locator(".step").first) == (255, 255, 255)
        successes = detail.locator(".traj[data-success=true]").count()
        assert successes == per_task[task_id]["successes"]

        # outcome filter on tasks: "succeeded" keeps tasks with at least one success
        page.select_option("#f-success", "success")
        kept = {h.get_attribute("data-task") for h in rows.element_handles()}
        assert kept == {tid for tid, s in per_task.items() if s["successes"] > 0}
        assert detail.locator(".traj").count() == successes

        # sorting by a pass@k column
        page.select_option("#f-success", "all")
        page.click("#task-table th[data-key='pass@4']")
        page.click("#task-table th[data-key='pass@4']")
        shown = [h.get_attribute("data-task") for h in rows.element_handles()]
        values = [per_task[t]["successes"] / per_task[t]["episodes"] > 0 for t in shown]
        assert values == sorted(values, reverse=True)


def test_eval_page_task_type_filter(page: Any, typed_eval_dir: Path) -> None:
    summary = json.loads((typed_eval_dir / "summary.json").read_text())
    types = sorted({s["task_type"] for s in summary["per_task"].values()})
    assert len(types) > 1
    with ViewerServer(typed_eval_dir, port=0) as server:
        open_page(page, server.url)
        assert page.locator("#f-type option").all_inner_texts() == ["all", *types]
        page.select_option("#f-type", types[-1])
        rows = page.locator("tr.task-row")
        shown = [h.get_attribute("data-task") for h in rows.element_handles()]
        assert shown == [t for t, s in summary["per_task"].items() if s["task_type"] == types[-1]]
        assert page.locator("#f-split option").all_inner_texts() == ["all", "test"]


def test_hgpo_runs_open_on_history_levels_and_runs_without_samples_on_curves(
    page: Any, tmp_path: Path
) -> None:
    from tests.viewer.helpers import sample_iterations

    hgpo = tmp_path / "hgpo"
    sample_iterations(hgpo, 1, estimator="hgpo", tasks=2, n=4)
    with ViewerServer(hgpo, port=0) as server:
        open_page(page, server.url)
        assert page.locator("#hl-mode").input_value() == "history"
        assert page.locator("#k-wrap").is_visible()
        assert page.locator("#hl-k").input_value() == "2"  # HGPO's default history_length
        assert "estimator hgpo" in page.inner_text("#iter-info")

    bare = tmp_path / "bare"
    bare.mkdir()
    lines = [{"iteration": i, "train/success": i / 4, "val/success": 0.5} for i in (1, 2, 3)]
    (bare / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with ViewerServer(bare, port=0) as server:
        open_page(page, server.url)
        assert page.locator("#view-curves").is_visible()
        assert page.locator("figure.chart").count() == 2
        page.click("#tabs [data-view=rollouts]")
        # The tab sets the URL hash; the page routes on hashchange, after the click returns.
        page.wait_for_selector("#group-list p.empty", timeout=10_000)
        assert "saved no rollout samples" in page.inner_text("#group-list")
