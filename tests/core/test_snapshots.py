"""Snapshots in the contract: the grids, the wrapper stack, typed errors, worker processes."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import gymnasium
import numpy as np
import pytest

import agentgym
from agentgym.errors import SnapshotError, SnapshotNotSupportedError
from tests.core.snapshot_replay import branch_and_compare, outcome, replay

GRIDS = {
    "Sokoban-v0": {},
    "Sokoban-v0 (2 boxes)": {"num_boxes": 2, "size": 7},
    "FrozenLake-v0 (slippery)": {"slippery": True, "hole_prob": 0.1},
}


@pytest.mark.parametrize("name", sorted(GRIDS))
@pytest.mark.parametrize("before", [0, 2, 5])
def test_grids_restore_exactly(name: str, before: int) -> None:
    env_id, kwargs = name.split()[0], GRIDS[name]
    branch_and_compare(lambda: agentgym.make(env_id, **kwargs), "train-3", "test-1", before=before)


def test_slippery_ice_slides_the_same_after_a_restore() -> None:
    """The restored episode continues the saved generator: same slides, not new ones."""
    env = agentgym.make("FrozenLake-v0", slippery=True, hole_prob=0.0, max_steps=60)
    env.reset(seed=4, options={"task_id": "train-0"})
    env.step("up")
    snap = agentgym.snapshot(env)
    moves = ["up", "left", "down", "right"] * 5
    first = [outcome(env.step(m)) for m in moves]
    slides = sum("slippery" in obs for obs, *_ in first)
    assert slides > 0  # the test would prove nothing without slides
    assert replay(env, snap, moves) == first


def expert_play(env: gymnasium.Env, limit: int = 60) -> list[str]:
    """The expert's actions from the current state to the end."""
    actions = []
    for _ in range(limit):
        actions.append(env.unwrapped.expert_action())
        *_, terminated, truncated, _ = env.step(actions[-1])
        if terminated or truncated:
            break
    return actions


def test_the_expert_plays_on_the_same_after_a_restore() -> None:
    """The expert's current plan is part of the state: restored, it plays the same moves."""
    env = agentgym.make("Sokoban-v0", num_boxes=2, size=7, max_steps=80)
    env.reset(seed=0, options={"task_id": "train-5"})
    for _ in range(3):
        env.step(env.unwrapped.expert_action())
    snap = agentgym.snapshot(env)
    first = expert_play(env)
    fresh = agentgym.make("Sokoban-v0", num_boxes=2, size=7, max_steps=80)
    agentgym.restore(fresh, snap)
    assert expert_play(fresh) == first
    assert fresh.unwrapped._success


def test_turn_limit_counts_on_from_the_snapshot() -> None:
    env = agentgym.make("Sokoban-v0", max_steps=3)
    env.reset(seed=0, options={"task_id": "train-0"})
    env.step("left")
    snap = agentgym.snapshot(env)
    assert dict(snap.wrappers)["TurnLimit"][0] == 1
    env.step("right")
    env.step("left")  # truncated here: the third step
    agentgym.restore(env, snap)
    assert env.get_wrapper_attr("elapsed_steps") == 1
    *_, truncated, _ = env.step("right")
    assert not truncated
    *_, truncated, info = env.step("left")
    assert truncated and info["truncated_by"] == "turn_limit"
    # A snapshot after the truncation comes back truncated: the next step only answers.
    after_end = agentgym.snapshot(env)
    fresh = agentgym.make("Sokoban-v0", max_steps=3)
    agentgym.restore(fresh, pickle.loads(pickle.dumps(after_end)))
    obs, reward, terminated, truncated, info = fresh.step("up")
    assert truncated and not terminated and reward == 0 and info["action_valid"] is False


def test_a_fresh_env_steps_after_restore_without_reset() -> None:
    """Gymnasium's OrderEnforcing would refuse a step before reset: its flag travels too."""
    env = agentgym.make("FrozenLake-v0")
    env.reset(seed=1)
    snap = agentgym.snapshot(env)
    fresh = agentgym.make("FrozenLake-v0")
    agentgym.restore(fresh, snap)
    assert fresh.step("up") == env.step("up")


def test_the_env_generator_comes_back_too() -> None:
    """Even a reset without a seed after a restore draws what it drew the first time."""
    env = agentgym.make("Sokoban-v0")
    env.reset(seed=11)
    snap = agentgym.snapshot(env)
    first = env.reset()[1]["task_id"]
    agentgym.restore(env, snap)
    assert env.reset()[1]["task_id"] == first


def test_a_snapshot_is_small_and_its_repr_short() -> None:
    env = agentgym.make("Sokoban-v0")
    env.reset(seed=0)
    snap = agentgym.snapshot(env)
    assert len(pickle.dumps(snap)) < 2000
    assert repr(snap).startswith("EnvSnapshot(OrderEnforcing<TurnLimit<SokobanEnv>>, task=")


def test_bare_env_snapshots_and_wrapper_stacks_do_not_mix() -> None:
    env = agentgym.make("Sokoban-v0")
    env.reset(seed=0)
    stacked = agentgym.snapshot(env)
    bare = env.unwrapped.snapshot()
    assert bare.wrappers == ()
    env.unwrapped.restore(bare)
    agentgym.restore(env.unwrapped, bare)
    with pytest.raises(SnapshotError, match=r"agentgym.restore\(env, snapshot\)"):
        env.unwrapped.restore(stacked)
    with pytest.raises(SnapshotError, match=r"wrappers \['OrderEnforcing', 'TurnLimit'\]"):
        agentgym.restore(env.unwrapped, stacked)
    with pytest.raises(SnapshotError, match=r"taken through the wrappers \[\] but this env"):
        agentgym.restore(env, bare)


def test_restoring_into_another_env_is_a_named_error() -> None:
    sokoban = agentgym.make("Sokoban-v0")
    sokoban.reset(seed=0)
    snap = agentgym.snapshot(sokoban)
    with pytest.raises(SnapshotError, match=r"taken from agentgym\.envs\.sokoban\.env:SokobanEnv"):
        agentgym.restore(agentgym.make("FrozenLake-v0"), snap)
    with pytest.raises(SnapshotError, match="build it with the same arguments"):
        agentgym.restore(agentgym.make("Sokoban-v0", size=7), snap)
    with pytest.raises(SnapshotError, match="is not one of this env's"):
        agentgym.restore(agentgym.make("Sokoban-v0", num_tasks={"train": 2}), snap)
    with pytest.raises(SnapshotError, match="expected an EnvSnapshot, got dict"):
        agentgym.restore(sokoban, {"task_id": "train-0"})


def test_snapshot_before_reset_is_a_named_error() -> None:
    with pytest.raises(SnapshotError, match="call reset\\(\\) first"):
        agentgym.snapshot(agentgym.make("FrozenLake-v0"))


class Guess(agentgym.TextEnv):
    """An env without snapshot hooks."""

    def task_ids(self, split):
        return {"train": ["t0"], "valid": ["v0"], "test": ["x0"]}[split]

    def _load_task(self, task_id, split, rng):
        return "Guess."

    def _step(self, action):
        return agentgym.StepResult("No.")

    def _state_key(self):
        return "s"

    def _instruction(self):
        return "Guess."


class Counting(gymnasium.Wrapper):
    """A wrapper with state of its own that does not take part in snapshots."""

    def step(self, action):
        self.count = getattr(self, "count", 0) + 1
        return self.env.step(action)


def test_envs_and_wrappers_without_snapshots_say_so_by_name() -> None:
    env = Guess()
    env.reset(seed=0)
    assert not env.supports_snapshot and not agentgym.supports_snapshot(env)
    with pytest.raises(SnapshotNotSupportedError, match=r"^Guess does not support") as caught:
        agentgym.snapshot(env)
    with pytest.raises(SnapshotNotSupportedError, match=r"^Guess does not support"):
        env.restore(None)
    again = pickle.loads(pickle.dumps(caught.value))  # the error travels from a worker intact
    assert str(again) == str(caught.value) and again.env == "Guess"

    wrapped = Counting(agentgym.make("Sokoban-v0"))
    wrapped.reset(seed=0)
    assert wrapped.unwrapped.supports_snapshot and not agentgym.supports_snapshot(wrapped)
    with pytest.raises(SnapshotNotSupportedError, match="the wrapper Counting around SokobanEnv"):
        agentgym.snapshot(wrapped)


def test_gymnasium_time_limit_takes_part() -> None:
    env = gymnasium.wrappers.TimeLimit(agentgym.make("Sokoban-v0"), max_episode_steps=2)
    env.reset(seed=0, options={"task_id": "train-1"})
    env.step("up")
    snap = agentgym.snapshot(env)
    first = env.step("down")
    assert first[3]  # the TimeLimit cut it
    agentgym.restore(env, snap)
    assert env.step("down") == first


def _play_in_worker(snap: agentgym.EnvSnapshot, actions: list[str]) -> list[tuple]:
    env = agentgym.make("FrozenLake-v0", slippery=True, hole_prob=0.0)
    agentgym.restore(env, snap)
    return [outcome(env.step(a)) for a in actions]


def test_a_snapshot_travels_to_a_worker_process() -> None:
    env = agentgym.make("FrozenLake-v0", slippery=True, hole_prob=0.0)
    env.reset(seed=2, options={"task_id": "train-7"})
    for move in ("up", "left"):
        env.step(move)
    snap = agentgym.snapshot(env)
    rng = np.random.default_rng(0)
    actions = [str(rng.choice(["up", "down", "left", "right"])) for _ in range(12)]
    here = replay(env, snap, actions)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        there = pool.submit(_play_in_worker, snap, actions).result(timeout=120)
    assert there == here
