"""Environments that each break one rule of the text-env contract, for checker tests."""

from __future__ import annotations

import random
import threading

from agentgym.env import StepResult
from agentgym.envs.frozenlake import FrozenLakeEnv


class FeedbackKeyedLake(FrozenLakeEnv):
    """Keys states on the feedback text, verl-agent's pitfall: 'You moved up.' collides."""

    def _step(self, action: str) -> StepResult:
        result = super()._step(action)
        self._feedback = result.observation.splitlines()[0]
        return result

    def _load_task(self, task_id, split, rng):
        self._feedback = "start"
        return super()._load_task(task_id, split, rng)

    def _state_key(self) -> str:
        return self._feedback


class RaisesOnGarbage(FrozenLakeEnv):
    def _step(self, action: str) -> StepResult:
        if action.strip().lower() not in ("up", "down", "left", "right"):
            raise ValueError(f"bad action {action!r}")
        return super()._step(action)


class NonDeterministic(FrozenLakeEnv):
    """Slips with Python's global random module instead of the episode's generator."""

    def _step(self, action: str) -> StepResult:
        if random.random() < 0.5:
            action = random.choice(["up", "down", "left", "right"])
        return super()._step(action)


class SharedSplits(FrozenLakeEnv):
    def task_ids(self, split):
        return super().task_ids("train")

    def split_of(self, task_id):
        return "train"


class ForgetfulSnapshotLake(FrozenLakeEnv):
    """Slippery ice whose snapshots forget the episode's generator: a restored episode
    slides differently from the original."""

    def __init__(self, **kwargs) -> None:
        super().__init__(slippery=True, hole_prob=0.0, **kwargs)

    def _snapshot_state(self):
        return self._pos

    def _restore_state(self, task_id, split, state):
        self._lake = self.level(task_id)
        self._pos = state


class UnpicklableSnapshotLake(FrozenLakeEnv):
    """Snapshots that hold a lock: they work in-process but cannot reach a worker."""

    def _snapshot_state(self):
        return threading.Lock(), super()._snapshot_state()

    def _restore_state(self, task_id, split, state):
        super()._restore_state(task_id, split, state[1])
