"""ALFWorld-v0 snapshots through the TextWorld-PDDL state: exact replays, the goal, the
planner, the whole fact set, and a snapshot that stays small however long the episode."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import agentgym
from agentgym.envs.alfworld import ALFWorldEnv
from agentgym.errors import SnapshotError
from tests.alfworld.conftest import NUM_GAMES
from tests.core.snapshot_replay import branch_and_compare, expert_policy, random_policy

pytestmark = pytest.mark.alfworld


def facts(env) -> list[str]:
    """Every fact TextWorld holds, negated ones included (what the grammar reads)."""
    return sorted(map(str, env.unwrapped._engine._env.unwrapped._pddl_state.facts))


@pytest.mark.parametrize(
    ("task_id", "policy", "before"),
    [
        ("train-0", random_policy, 0),
        ("train-1", random_policy, 6),
        ("valid-2", expert_policy, 2),
        ("test-4", expert_policy, 4),
    ],
)
def test_restores_exactly(cache_dir: Path, task_id: str, policy, before: int) -> None:
    branch = branch_and_compare(
        lambda: agentgym.make("ALFWorld-v0", num_games=NUM_GAMES, cache_dir=cache_dir),
        task_id,
        "train-3",
        before=before,
        after=30,
        policy=policy,
    )
    if policy is expert_policy:  # the goal, reached after a restore, is reached again
        assert any(step[2] and step[1] == 1.0 for step in branch.steps)


def test_the_goal_and_the_plan_come_back(cache_dir: Path) -> None:
    """One step before the goal: a fresh env restored there wins with the expert's move,
    and the planner plans from the restored state what it planned from the original."""
    env = agentgym.make("ALFWorld-v0", num_games=NUM_GAMES, cache_dir=cache_dir)
    base = env.unwrapped
    env.reset(seed=0, options={"task_id": "train-2"})
    snaps = []
    for _ in range(40):
        snaps.append((agentgym.snapshot(env), facts(env), base._engine.plan()))
        *_, terminated, _, info = env.step(base.expert_action())
        if terminated:
            break
    assert info["success"]
    fresh = agentgym.make("ALFWorld-v0", num_games=NUM_GAMES, cache_dir=cache_dir)
    for snap, saved_facts, plan in (snaps[-1], snaps[len(snaps) // 2]):
        agentgym.restore(fresh, pickle.loads(pickle.dumps(snap)))
        assert facts(fresh) == saved_facts
        assert fresh.unwrapped._engine.plan() == plan
    agentgym.restore(fresh, snaps[-1][0])
    _, reward, terminated, _, info = fresh.step(fresh.unwrapped.expert_action())
    assert terminated and reward == 1.0 and info["success"]
    env.close()
    fresh.close()


def test_a_snapshot_saves_the_state_not_the_path(cache_dir: Path) -> None:
    """Forty random steps in, the snapshot holds the changed facts (not forty actions),
    and going back and forth between two far-apart states needs no replay."""
    env = agentgym.make("ALFWorld-v0", num_games=NUM_GAMES, cache_dir=cache_dir, max_steps=60)
    base = env.unwrapped
    rng = np.random.default_rng(3)
    env.reset(seed=0, options={"task_id": "train-5"})
    start, start_facts = agentgym.snapshot(env), facts(env)
    for _ in range(40):
        env.step(base.random_action(rng))
    late = agentgym.snapshot(env)
    engine_state = late.state[0]
    assert len(engine_state.added) + len(engine_state.removed) < 60
    assert len(pickle.dumps(late)) < 8000
    late_facts = facts(env)
    assert late_facts != start_facts
    for _ in range(2):
        agentgym.restore(env, start)
        assert facts(env) == start_facts and base.render() == start.last_obs
        agentgym.restore(env, late)
        assert facts(env) == late_facts and base.render() == late.last_obs
    env.close()


def test_a_snapshot_only_goes_back_into_its_own_game(cache_dir: Path) -> None:
    env = ALFWorldEnv(num_games=NUM_GAMES, cache_dir=cache_dir)
    env.reset(seed=0, options={"task_id": "train-0"})
    snap = env.snapshot()
    engine_state = dataclasses.replace(snap.state[0], game="0123456789abcdef")
    forged = dataclasses.replace(snap, state=(engine_state, *snap.state[1:]))
    with pytest.raises(SnapshotError, match="another ALFWorld game"):
        env.restore(forged)
    with pytest.raises(gymnasium.error.ResetNeeded):  # the failed restore left no episode
        env.step("look")
    env.restore(snap)  # the real one still goes back in
    assert env.step("look")[4]["action_valid"]
    env.close()
