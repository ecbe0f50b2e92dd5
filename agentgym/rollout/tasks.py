"""Choosing which tasks to play: reproducible samples of a split."""

from __future__ import annotations

import numpy as np

from agentgym.env import SPLITS
from agentgym.rollout.engine import TaskRequest
from agentgym.rollout.executor import EnvSpec


def split_task_ids(spec: EnvSpec, split: str) -> list[str]:
    """All task ids of ``split`` for the environment ``spec`` builds."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    env = spec.make()
    try:
        return list(env.unwrapped.task_ids(split))
    finally:
        env.close()


def sample_tasks(
    spec: EnvSpec,
    split: str,
    count: int | None,
    seed: int = 0,
    episode_seed: int | None = None,
    shuffle: bool = True,
    distinct: bool = False,
) -> list[TaskRequest]:
    """``count`` tasks of ``split`` (all when ``None``), the same for the same ``seed``.

    Tasks are drawn without replacement while the split has enough; past that they
    repeat (training groups), unless ``distinct``: then a ``count`` larger than the split
    is cut to the split's size, so an evaluation plays every task once instead of some
    tasks twice and others never (play a task several times with episodes per task).
    Each task's reset seed is ``episode_seed`` when given, else derived from ``seed`` and
    the task's index in the sample, so a group's members share it and reruns repeat it.
    """
    ids = split_task_ids(spec, split)
    if not ids:
        raise ValueError(f"split {split!r} of {spec.env_id} has no tasks")
    if distinct and count is not None:
        count = min(count, len(ids))
    rng = np.random.default_rng([seed, 1])
    if count is None:
        chosen = list(rng.permutation(len(ids))) if shuffle else list(range(len(ids)))
    elif shuffle:
        chosen = [int(i) for i in rng.choice(len(ids), size=count, replace=count > len(ids))]
    else:
        chosen = [i % len(ids) for i in range(count)]
    seeds = rng.integers(2**31, size=len(chosen))
    return [
        TaskRequest(
            ids[int(i)], split, int(seeds[k]) if episode_seed is None else int(episode_seed)
        )
        for k, i in enumerate(chosen)
    ]
