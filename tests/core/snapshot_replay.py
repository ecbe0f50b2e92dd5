"""Shared by the snapshot tests of every family: play, snapshot, go on, restore, replay.

:func:`branch_and_compare` restores one snapshot three ways (into the env it came from,
into a fresh env that was never reset, and after a pickle round trip into an env that
played another task since) and asserts that each replay of the same actions gives
exactly the steps of the original episode.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium
import numpy as np

import agentgym

Policy = Callable[[gymnasium.Env, np.random.Generator], str]


def random_policy(env: gymnasium.Env, rng: np.random.Generator) -> str:
    return env.unwrapped.random_action(rng)


def expert_policy(env: gymnasium.Env, rng: np.random.Generator) -> str:
    return env.unwrapped.expert_action()


def outcome(step: tuple) -> tuple:
    obs, reward, terminated, truncated, info = step
    return obs, float(reward), bool(terminated), bool(truncated), info


@dataclass
class Branch:
    """What :func:`branch_and_compare` saw: the snapshot, the actions after it and the
    steps they gave in the original episode."""

    snapshot: agentgym.EnvSnapshot
    actions: list[str]
    steps: list[tuple]


def replay(env: gymnasium.Env, snap: agentgym.EnvSnapshot, actions: list[str]) -> list[tuple]:
    agentgym.restore(env, snap)
    return [outcome(env.step(a)) for a in actions]


def branch_and_compare(
    make_env: Callable[[], gymnasium.Env],
    task_id: str,
    other_task_id: str,
    *,
    before: int = 3,
    after: int = 8,
    seed: int = 0,
    policy: Policy = random_policy,
    env: gymnasium.Env | None = None,
) -> Branch:
    """Play ``before`` steps of ``task_id``, snapshot, play up to ``after`` more (one past
    the end if the episode ends), then restore three ways and compare the replays."""
    made: list[gymnasium.Env] = []

    def build() -> gymnasium.Env:
        made.append(make_env())
        return made[-1]

    try:
        return _branch(
            build,
            env if env is not None else build(),
            task_id,
            other_task_id,
            before,
            after,
            seed,
            policy,
        )
    finally:
        for each in made:
            each.close()


def _branch(
    build: Callable[[], gymnasium.Env],
    env: gymnasium.Env,
    task_id: str,
    other_task_id: str,
    before: int,
    after: int,
    seed: int,
    policy: Policy,
) -> Branch:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed, options={"task_id": task_id})
    ended = False
    for _ in range(before):
        *_, terminated, truncated, _ = env.step(policy(env, rng))
        if terminated or truncated:
            ended = True
            break
    snap = agentgym.snapshot(env)
    actions: list[str] = []
    steps: list[tuple] = []
    for _ in range(after):
        action = random_policy(env, rng) if ended else policy(env, rng)
        actions.append(action)
        steps.append(outcome(env.step(action)))
        if ended:
            break
        ended = steps[-1][2] or steps[-1][3]

    assert replay(env, snap, actions) == steps, "restored into the env it came from"
    fresh = build()
    assert replay(fresh, snap, actions) == steps, "restored into a fresh env"
    fresh.reset(seed=seed + 1, options={"task_id": other_task_id})
    fresh.step(random_policy(fresh, rng))
    copy = pickle.loads(pickle.dumps(snap))
    assert replay(fresh, copy, actions) == steps, "restored after pickling, from another task"
    return Branch(snap, actions, steps)
