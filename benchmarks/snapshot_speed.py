"""What a snapshot costs, per environment family, against one step in the same run.

For each built-in family the script plays a task ``--depth`` random steps deep (through
``agentgym.make``, so the turn-limit wrapper's state is saved too) and prints:

* ``snapshot``: microseconds per :func:`agentgym.snapshot`;
* ``restore``: microseconds per :func:`agentgym.restore` into the same env, which has
  moved on since (the common case in a tree rollout);
* ``fresh``: microseconds per restore into an env that was never reset (a worker
  process's first restore; ALFWorld loads its game there);
* ``pickle``: microseconds to pickle and unpickle the snapshot (what a trip to a worker
  process or Ray actor adds), and ``bytes``: its pickled size;
* ``step``: microseconds per env step from that state (random actions; CodeSandbox with
  its result memo off, so each step really runs the sandbox);
* ``ratio``: (snapshot + restore) / step;
* ``replay``: microseconds to get back to the same state without snapshots (``reset``
  and replaying the ``depth`` actions), the alternative a snapshot replaces.

Usage: ``python benchmarks/snapshot_speed.py [--depth 6 --seconds 0.5 --families all]``.
ALFWorld games are generated into a temporary folder first (a few seconds).
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import agentgym

#: id, make() arguments, task: one representative configuration per family.
FAMILIES: dict[str, tuple[str, dict[str, Any], str]] = {
    "Sokoban": ("Sokoban-v0", {"num_boxes": 2, "size": 7}, "train-3"),
    "FrozenLake": ("FrozenLake-v0", {"slippery": True, "hole_prob": 0.0}, "train-3"),
    "Search": ("Search-v0", {"max_steps": 20}, "train-3"),
    "WebShop": ("WebShop-v0", {"max_steps": 30}, "ws-3"),
    "CodeSandbox": ("CodeSandbox-v0", {"cache_size": 0, "max_steps": 20}, ""),
    "ALFWorld": ("ALFWorld-v0", {"num_games": {"train": 2, "valid": 1, "test": 1}}, "train-0"),
}


def per_call_us(fn: Callable[[], Any], seconds: float, min_calls: int = 3) -> float:
    """Mean microseconds per call of ``fn`` over about ``seconds`` (at least ``min_calls``)."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls < min_calls:
        fn()
        calls += 1
    return 1e6 * elapsed / calls


def walk_to_depth(env: Any, task_id: str, depth: int, seed: int) -> list[str]:
    """Reset ``task_id`` and take ``depth`` random actions that do not end the episode
    (an action that would end it is undone by a restore and another one drawn)."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed, options={"task_id": task_id})
    actions: list[str] = []
    while len(actions) < depth:
        before = agentgym.snapshot(env)
        for _ in range(50):
            action = env.unwrapped.random_action(rng)
            *_, terminated, truncated, _ = env.step(action)
            if not (terminated or truncated):
                break
            agentgym.restore(env, before)
        actions.append(action)
    return actions


def measure(name: str, depth: int, seconds: float, cache_dir: str) -> dict[str, float]:
    env_id, kwargs, task_id = FAMILIES[name]
    if env_id == "ALFWorld-v0":
        kwargs = {**kwargs, "cache_dir": cache_dir}
    env = agentgym.make(env_id, **kwargs)
    fresh_envs = [agentgym.make(env_id, **kwargs) for _ in range(3)]
    task_id = task_id or env.unwrapped.task_ids("train")[0]
    path = walk_to_depth(env, task_id, depth, seed=0)
    snap = agentgym.snapshot(env)
    rng = np.random.default_rng(1)
    actions = [env.unwrapped.random_action(rng) for _ in range(64)]
    step_seconds: list[float] = []

    def restore_then_step() -> None:
        agentgym.restore(env, snap)  # not timed: every step starts from the same state
        action = actions[len(step_seconds) % len(actions)]
        start = time.perf_counter()
        env.step(action)
        step_seconds.append(time.perf_counter() - start)

    restore_then_step()  # warm: the first run of a sandbox, a game load
    step_seconds.clear()
    out = {
        "snapshot": per_call_us(lambda: agentgym.snapshot(env), seconds),
        "restore": per_call_us(lambda: agentgym.restore(env, snap), seconds),
        "pickle": per_call_us(lambda: pickle.loads(pickle.dumps(snap)), seconds),
        "bytes": float(len(pickle.dumps(snap))),
    }
    per_call_us(restore_then_step, seconds)
    out["step"] = 1e6 * float(np.mean(step_seconds))
    fresh_times = []
    for fresh in fresh_envs:
        start = time.perf_counter()
        agentgym.restore(fresh, snap)
        fresh_times.append(1e6 * (time.perf_counter() - start))
        fresh.close()
    out["fresh"] = float(np.median(fresh_times))

    def replay() -> None:
        env.reset(seed=0, options={"task_id": task_id})
        for action in path:
            env.step(action)

    out["replay"] = per_call_us(replay, seconds)
    out["ratio"] = (out["snapshot"] + out["restore"]) / out["step"]
    env.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=6, help="random steps before the snapshot")
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    parser.add_argument("--families", default="all", help="comma-separated, e.g. Sokoban,Search")
    args = parser.parse_args()
    names = list(FAMILIES) if args.families == "all" else args.families.split(",")
    columns = ("snapshot", "restore", "fresh", "pickle", "bytes", "step", "ratio", "replay")
    print(f"depth {args.depth}; times in microseconds; ratio = (snapshot + restore) / step")
    print(f"{'family':<12}" + "".join(f"{c:>11}" for c in columns))
    with tempfile.TemporaryDirectory() as cache_dir:
        for name in names:
            row = measure(name, args.depth, args.seconds, cache_dir)
            cells = "".join(
                f"{row[c]:>11.2f}" if c == "ratio" else f"{row[c]:>11,.0f}" for c in columns
            )
            print(f"{name:<12}{cells}", flush=True)


if __name__ == "__main__":
    main()
