"""Environments that fail on purpose, for rollout-engine tests."""

from __future__ import annotations

import time

from agentgym.env import StepResult
from agentgym.envs.frozenlake import FrozenLakeEnv

#: The task on which the faulty envs misbehave.
BAD_TASK = "train-5"


class RaisesOnStep3(FrozenLakeEnv):
    """Raises on the third step of task ``BAD_TASK``; never ends on its own otherwise."""

    def __init__(self, **kw):
        super().__init__(hole_prob=0.0, **kw)

    def _load_task(self, task_id, split, rng):
        self._steps = 0
        return super()._load_task(task_id, split, rng)

    def _step(self, action: str) -> StepResult:
        self._steps += 1
        if self._task_id == BAD_TASK and self._steps == 3:
            raise RuntimeError("simulated crash on step 3")
        return StepResult(observation=f"step {self._steps}", reward=0.1)


class HangsOnStep2(RaisesOnStep3):
    """Sleeps for a minute on the second step of ``BAD_TASK``."""

    def _step(self, action: str) -> StepResult:
        self._steps += 1
        if self._task_id == BAD_TASK and self._steps == 2:
            time.sleep(60)
        return StepResult(observation=f"step {self._steps}", reward=0.1)


class CannotBeBuilt(FrozenLakeEnv):
    """Raises in its constructor (a missing data file, a server that is not there)."""

    def __init__(self, **kwargs: object) -> None:
        raise FileNotFoundError("levels.txt is missing")
