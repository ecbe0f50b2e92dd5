"""Why Sokoban episodes fail: each failed episode of an evaluation, by its ending.

Usage::

    agentgym eval --policy runs/sokoban/sft-model --out runs/eval/sokoban-sft
    python benchmarks/sokoban_failures.py runs/eval/sokoban-sft [more dirs]

Classes of a failed episode (the first that applies):

``stuck``      its last 3+ steps repeat one action that changes nothing (a push against a
               box that cannot move, a walk into a wall): a greedy policy whose prompt does
               not change answers the same way forever;
``loop``       it revisits a state (player and boxes) without being stuck;
``deadlock``   it pushed a box where it can never reach a target (``end_on_deadlock``);
``invalid``    it ended on invalid actions (responses that did not parse);
``other``      the turn limit came while it was still moving to new states.

Also: episodes, success, the share of steps that changed nothing, the mean length of
the longest run of one repeated no-op action, and (replaying each episode's actions in the
environment the evaluation used) ``expert agreement``: the share of steps whose action is
the optimal BFS expert's from that state, and ``first-step no-op``: the share of episodes
whose very first action changed nothing. 25% agreement is what a policy that does not read
the grid gets.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import agentgym
from agentgym.trajectory import Step, Trajectory, read_jsonl

CLASSES = ("stuck", "loop", "deadlock", "invalid", "other")


def _after(steps: list[Step], i: int) -> str:
    """The state key after step ``i``."""
    if i + 1 < len(steps):
        return steps[i + 1].state_key
    return str(steps[i].info.get("state_key", ""))


def longest_noop_run(traj: Trajectory) -> int:
    """The longest run of consecutive steps with one action that changed nothing."""
    best = run = 0
    previous = None
    for i, step in enumerate(traj.steps):
        noop = step.state_key == _after(traj.steps, i)
        if noop and step.action == previous:
            run += 1
        else:
            run = 1 if noop else 0
        previous = step.action if noop else None
        best = max(best, run)
    return best


def classify(traj: Trajectory) -> str | None:
    """The class of a failed episode, ``None`` for a success."""
    if traj.success:
        return None
    steps = traj.steps
    if not steps:
        return "other"
    tail = steps[-3:]
    if len(tail) == 3 and all(
        s.action == tail[0].action and s.state_key == _after(steps, len(steps) - 3 + k)
        for k, s in enumerate(tail)
    ):
        return "stuck"
    if traj.status == "terminated":  # ended unsolved: a box pushed onto a dead square
        return "deadlock"
    if not steps[-1].action_valid:
        return "invalid"
    seen = [s.state_key for s in steps]
    if len(set(seen)) < len(seen):
        return "loop"
    return "other"


def expert_agreement(trajs: list[Trajectory], config: dict[str, Any]) -> float:
    """The share of steps whose action is the BFS expert's from the state it was taken in
    (each episode replayed in the env the evaluation used; actions that do not parse count
    as disagreeing)."""
    env = agentgym.make(config["env_id"], **config.get("env_kwargs", {}))
    agree = total = 0
    try:
        for traj in trajs:
            env.reset(options={"task_id": traj.task_id, "split": config.get("split", "test")})
            for step in traj.steps:
                expert = env.unwrapped.expert_action()
                total += 1
                agree += str(step.action).strip().lower() == expert
                if env.step(str(step.action))[2]:
                    break
    finally:
        env.close()
    return agree / max(1, total)


def breakdown(results: Path) -> dict[str, Any]:
    path = results / "results.jsonl" if results.is_dir() else results
    trajs = read_jsonl(path)
    config = json.loads((path.parent / "eval_config.json").read_text())["config"]
    classes: Counter[str] = Counter(c for t in trajs if (c := classify(t)) is not None)
    steps = [s for t in trajs for s in t.steps]
    noops = sum(s.state_key == _after(t.steps, i) for t in trajs for i, s in enumerate(t.steps))
    n = len(trajs)
    failed = max(1, n - sum(t.success for t in trajs))
    return {
        "name": str(results),
        "episodes": n,
        "success": sum(t.success for t in trajs) / n,
        "failed_by_class": {c: classes[c] / failed for c in CLASSES},
        "noop_steps": noops / max(1, len(steps)),
        "longest_noop_run": sum(longest_noop_run(t) for t in trajs) / n,
        "first_step_noop": sum(
            bool(t.steps) and t.steps[0].state_key == _after(t.steps, 0) for t in trajs
        )
        / n,
        "expert_agreement": expert_agreement(trajs, config),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="eval directories")
    args = parser.parse_args(argv)
    head = (
        "evaluation | episodes | success | no-op steps | longest no-op run | "
        "first-step no-op | expert agreement | failed: "
    )
    print(head + ", ".join(CLASSES))
    for p in args.results:
        r = breakdown(p)
        shares = ", ".join(f"{r['failed_by_class'][c]:.0%}" for c in CLASSES)
        print(
            f"{r['name']} | {r['episodes']} | {r['success']:.1%} | {r['noop_steps']:.0%} | "
            f"{r['longest_noop_run']:.1f} | {r['first_step_noop']:.0%} | "
            f"{r['expert_agreement']:.0%} | {shares}"
        )


if __name__ == "__main__":
    main()
