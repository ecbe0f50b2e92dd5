"""Plain Gymnasium text environments as agentgym environments.

A ``gymnasium.Env[str, str]`` that knows nothing of agentgym (no task lists, no
``state_key``) is trainable as it is: :class:`GymTextEnv` wraps it into a
:class:`~agentgym.env.TextEnv` whose tasks are *seeds*. Split ranges never overlap:

=========  =========================================  ==================
split      task ids                                   reset seed
=========  =========================================  ==================
``train``  ``seed-0`` ... ``seed-{train-1}``          0 ... train-1
``valid``  the next ``valid`` seeds                   train ...
``test``   the next ``test`` seeds                    train + valid ...
=========  =========================================  ==================

The wrapped env is reset with the task's seed, so a task always starts the same episode
(the per-episode seed of ``reset(seed=...)`` cannot add randomness the inner env does not
take). ``info`` keys the inner env fills are kept; the contract keys it lacks are filled:

* ``state_key``: the inner env's own ``info["state_key"]`` when it has one, else a hash of
  the observation text after the last valid step (reset included). The observation is
  only a proxy for the state: two states that print the same text share a key
  (anchor-state credit then groups them), so give your env a ``state_key`` when it has a
  better one.
* ``success``: ``info["success"]`` when given, else "the episode terminated with a positive
  reward"; ``score``: ``info["score"]`` when given, else ``float(success)``.
* ``action_valid``: ``info["action_valid"]`` when given, else True. An inner env that raises
  ``ValueError``/``TypeError``/``KeyError`` on an action gets that action answered as
  invalid (the message is the feedback), per the contract that bad actions are never
  exceptions.
* ``instruction``: ``info["instruction"]`` at reset when given, else a line naming the env.

The inner env's own truncation (e.g. Gymnasium's ``TimeLimit``) is passed through as
``truncated``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

from agentgym.env import Split, StepResult, TextEnv

__all__ = ["GymTextEnv", "SeedTaskIds"]


class SeedTaskIds(Sequence[str]):
    """The task ids ``seed-{start}`` ... ``seed-{start + count - 1}``, without a list."""

    def __init__(self, start: int, count: int) -> None:
        self.start, self.count = int(start), int(count)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.count))]
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(index)
        return f"seed-{self.start + index}"

    def __contains__(self, task_id: object) -> bool:
        seed = _seed_of(task_id)
        return seed is not None and self.start <= seed < self.start + self.count


def _seed_of(task_id: object) -> int | None:
    if not isinstance(task_id, str) or not task_id.startswith("seed-"):
        return None
    digits = task_id[5:]
    return int(digits) if digits.isdigit() else None


class GymTextEnv(TextEnv):
    """A plain ``gymnasium.Env[str, str]`` with seed tasks (see the module docstring).

    Args:
        env: the environment to wrap (it is closed with this one).
        train_tasks, valid_tasks, test_tasks: the sizes of the seed ranges.
        name: what the default instruction calls the env (its spec id by default).
    """

    description = "a Gymnasium text environment; tasks are seeds"
    #: Tasks are seeds: the checker does not ask different tasks to start differently.
    seed_tasks = True

    def __init__(
        self,
        env: gymnasium.Env,
        *,
        train_tasks: int = 10_000,
        valid_tasks: int = 1_000,
        test_tasks: int = 1_000,
        name: str | None = None,
    ) -> None:
        super().__init__()
        for label, count in (("train", train_tasks), ("valid", valid_tasks), ("test", test_tasks)):
            if count < 1:
                raise ValueError(f"{label}_tasks must be >= 1, got {count}")
        self.inner = env
        self._ranges: dict[str, SeedTaskIds] = {
            "train": SeedTaskIds(0, train_tasks),
            "valid": SeedTaskIds(train_tasks, valid_tasks),
            "test": SeedTaskIds(train_tasks + valid_tasks, test_tasks),
        }
        spec = getattr(env, "spec", None)
        self._name = name or (spec.id if spec is not None else type(env.unwrapped).__name__)
        self._inner_info: dict[str, Any] = {}
        self._instruction_text = ""
        self._inner_truncated = False
        self._state_obs = ""

    def task_ids(self, split: Split) -> Sequence[str]:
        return self._ranges[split]

    def _task_set(self, split: Split) -> Any:
        return self._ranges[split]  # membership without building a set of every seed

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        seed = _seed_of(task_id)
        observation, info = self.inner.reset(seed=seed)
        self._inner_info = dict(info or {})
        self._inner_truncated = False
        self._instruction_text = str(
            self._inner_info.get("instruction") or f"Solve the {self._name} task."
        )
        self._last_obs = self._state_obs = str(observation)
        return str(observation)

    def _step(self, action: str) -> StepResult:
        try:
            observation, reward, terminated, truncated, info = self.inner.step(action)
        except (ValueError, TypeError, KeyError) as exc:
            return StepResult(
                observation=f"Invalid action: {exc}\n\n{self._last_obs}",
                reward=self.invalid_action_reward,
                action_valid=False,
            )
        info = dict(info or {})
        self._inner_info = info
        self._inner_truncated = bool(truncated) and not terminated
        if info.get("action_valid", True):
            self._state_obs = str(observation)
        reward = float(reward)
        ended = bool(terminated)
        success = info.get("success")
        if success is None:
            success = ended and reward > 0
        score = info.get("score")
        extra = {k: v for k, v in info.items() if k not in ("state_key", "success", "score")}
        return StepResult(
            observation=str(observation),
            reward=reward,
            terminated=ended or bool(truncated),
            action_valid=bool(info.get("action_valid", True)),
            success=bool(success),
            score=float(score) if score is not None else float(bool(success)),
            info=extra,
        )

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        if self._inner_truncated and terminated:
            # the inner env cut the episode off: truncated, not terminated
            return observation, reward, False, True, info
        return observation, reward, terminated, truncated, info

    def _state_key(self) -> str:
        given = self._inner_info.get("state_key")
        if given is not None:
            return str(given)
        # the observation after the last *valid* step: feedback on an invalid action is not
        # a new state
        digest = hashlib.blake2b(self._state_obs.encode("utf-8", "replace"), digest_size=8)
        return f"obs:{digest.hexdigest()}"

    def _instruction(self) -> str:
        return self._instruction_text

    def _admissible_actions(self) -> list[str] | None:
        given = self._inner_info.get("admissible_actions")
        return list(given) if given is not None else None

    def _tools(self) -> list[dict[str, Any]] | None:
        return self._inner_info.get("tools")

    def random_action(self, rng: np.random.Generator) -> str:
        admissible = self._admissible_actions()
        if admissible:
            return admissible[int(rng.integers(len(admissible)))]
        space = self.inner.action_space
        space.seed(int(rng.integers(2**31)))
        action = space.sample()
        return action if isinstance(action, str) else str(action)

    def close(self) -> None:
        self.inner.close()
        super().close()
