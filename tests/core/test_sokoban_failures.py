"""benchmarks/sokoban_failures.py on real Sokoban episodes: the BFS expert, and a policy
that walks into the same wall until the turn limit."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import agentgym
from agentgym.trajectory import Step, Trajectory, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
KWARGS = {"size": 6, "num_boxes": 1, "cell_sep": " "}


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "sokoban_failures", ROOT / "benchmarks" / "sokoban_failures.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _play(env, task_id: str, choose) -> Trajectory:
    """One episode as the rollout engine records it: each step's state key is the state
    the action was taken in."""
    _, info = env.reset(options={"task_id": task_id, "split": "test"})
    traj = Trajectory(env_id="Sokoban-v0", task_id=task_id, split="test")
    for i in range(10):
        action = choose(env)
        before = info["state_key"]
        _, reward, terminated, truncated, info = env.step(action)
        traj.steps.append(
            Step(index=i, action=action, reward=reward, state_key=before, info=dict(info),
                 terminated=terminated, truncated=truncated)
        )  # fmt: skip
        if terminated or truncated:
            break
    traj.success = bool(info.get("success"))
    traj.status = "terminated" if traj.steps[-1].terminated else "truncated"
    return traj


def test_expert_and_stuck_policies_are_told_apart(tmp_path: Path) -> None:
    script = _load_script()
    env = agentgym.make("Sokoban-v0", max_steps=10, **KWARGS)
    tasks = list(env.unwrapped.task_ids("test"))[:6]
    runs = {}
    for name, choose in {
        "expert": lambda e: e.unwrapped.expert_action(),
        "stuck": lambda e: "up",
    }.items():
        out = tmp_path / name
        out.mkdir()
        write_jsonl(out / "results.jsonl", [_play(env, t, choose) for t in tasks])
        config = {"env_id": "Sokoban-v0", "env_kwargs": KWARGS, "split": "test"}
        (out / "eval_config.json").write_text(json.dumps({"config": config}))
        runs[name] = script.breakdown(out)
    expert, stuck = runs["expert"], runs["stuck"]
    assert expert["success"] == 1.0 and expert["expert_agreement"] == 1.0
    assert expert["noop_steps"] == 0.0
    # always "up": once the player reaches a wall (or a blocked box) it stays stuck there
    assert stuck["success"] < 1.0 and stuck["expert_agreement"] < 0.75
    assert stuck["failed_by_class"]["stuck"] > 0.5 and stuck["longest_noop_run"] >= 3
