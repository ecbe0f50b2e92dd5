"""Environment steps per second for the fast environments.

Prints, per environment: raw ``step`` throughput with random moves (the env alone),
throughput through ``agentgym.make`` (with the turn-limit wrapper), reset cost, and the
cost of an expert action. The baseline in the same run is Gymnasium's own FrozenLake
(a numpy-array env with integer actions), so the ratio shows what the text contract
costs relative to a classic Gymnasium environment on this machine.

Usage: ``python benchmarks/env_speed.py [--seconds 2]``
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import numpy as np

import agentgym


def rate(fn, seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` of wall time."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            fn()
        n += 200
    return n / elapsed


def stepper(env, actions):
    rng = np.random.default_rng(0)
    state = {"done": True}

    def step():
        if state["done"]:
            env.reset(seed=int(rng.integers(1 << 30)))
        _, _, terminated, truncated, _ = env.step(actions[int(rng.integers(len(actions)))])
        state["done"] = terminated or truncated

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    base = gymnasium.make("FrozenLake-v1", is_slippery=False)
    baseline = rate(stepper(base, [0, 1, 2, 3]), args.seconds)
    print(f"baseline gymnasium FrozenLake-v1 (int actions): {baseline:,.0f} steps/s")
    print(
        f"{'env':<16}{'steps/s':>12}{'via make':>12}{'us/step':>10}{'vs base':>9}"
        f"{'reset/s':>10}{'expert/s':>10}"
    )
    moves = ["up", "down", "left", "right"]
    for env_id in ("FrozenLake-v0", "Sokoban-v0"):
        raw_rate, made_rate, reset_rate, expert_rate = measure(env_id, moves, args.seconds)
        print(
            f"{env_id:<16}{raw_rate:>12,.0f}{made_rate:>12,.0f}{1e6 / raw_rate:>10.1f}"
            f"{raw_rate / baseline:>9.2f}{reset_rate:>10,.0f}{expert_rate:>10,.0f}"
        )


def measure(env_id: str, moves: list[str], seconds: float) -> tuple[float, ...]:
    """(raw steps/s, steps/s through make, resets/s, expert actions/s) of one env."""
    made = agentgym.make(env_id)
    raw = made.unwrapped
    ids = raw.task_ids("train")[:500]
    for task_id in ids:
        raw.level(task_id)  # generate levels once: measure stepping, not generation
    raw_rate = rate(stepper(raw, moves), seconds)
    made_rate = rate(stepper(made, moves), seconds)
    counter = iter(range(10**9))
    reset_rate = rate(lambda: raw.reset(options={"task_id": ids[next(counter) % 500]}), seconds / 2)
    raw.reset(seed=0, options={"task_id": ids[0]})

    def expert():
        if hasattr(raw, "_plan"):  # Sokoban caches its plan: force a fresh solve
            raw._plan = {}
        raw.expert_action()

    return raw_rate, made_rate, reset_rate, rate(expert, seconds / 2)


if __name__ == "__main__":
    main()
