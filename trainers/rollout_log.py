"""A bounded sample of each training iteration's trajectories, for ``agentgym view``.

Each call writes ``RUN_DIR/rollouts/iter_{iteration:06d}.jsonl``: up to ``max_groups``
whole task groups of the iteration, one :meth:`Trajectory.to_json` line per trajectory,
with three keys added to the line's ``metadata`` (the trajectories themselves are not
changed):

``advantages``  the advantage of each step, in step order (``null`` where not finite);
``iteration``   the training iteration;
``estimator``   the credit estimator that computed them (``algorithm.adv_estimator``).

The sample is bounded by groups, not trajectories, so the viewer always sees whole groups
(the unit credit is computed over) and the file's size does not grow with
``trainer.tasks_per_iteration``. Which groups are kept depends only on ``seed``, the
iteration and the order of the groups, so the same run writes the same sample.

Writing is best effort: a text that UTF-8 cannot encode (a lone surrogate from a byte-level
tokenizer) is written as a JSON ``\\uXXXX`` escape, an ``info`` value JSON cannot hold (a
circular structure) is replaced by its ``repr``, and a failed write (disk full) is logged as a
warning and returns ``None``. None of these stops training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.runs import RunDir
from agentgym.trajectory import Trajectory

__all__ = ["rollout_path", "write_rollout_sample"]

log = logging.getLogger(__name__)


def rollout_path(run_dir: str | Path, iteration: int) -> Path:
    """``RUN_DIR/rollouts/iter_{iteration:06d}.jsonl`` (:meth:`RunDir.rollout_file`)."""
    return RunDir(run_dir).rollout_file(iteration)


def write_rollout_sample(
    run_dir: str | Path,
    iteration: int,
    trajectories: Sequence[Trajectory],
    advantages: Sequence[Sequence[float]],
    *,
    estimator: str,
    max_groups: int = 4,
    seed: int = 0,
) -> Path | None:
    """Write up to ``max_groups`` whole task groups of one iteration, with their advantages.

    Args:
        run_dir: the training run's directory.
        iteration: the training iteration (names the file).
        trajectories: the iteration's trajectories; groups are their ``group_id``.
        advantages: per trajectory, one advantage per step (the values the update used).
        estimator: the credit estimator's name, stored with each line.
        max_groups: how many task groups to keep; 0 writes nothing.
        seed: picks the groups (with ``iteration``), so reruns keep the same ones.

    Returns:
        The file written, or ``None`` when ``max_groups`` is 0, there is nothing to write,
        or the write failed (logged).

    Raises:
        ValueError: ``max_groups`` is negative, or ``advantages`` does not match the
            trajectories (one list per trajectory, one value per step): a caller's bug.
    """
    if max_groups < 0:
        raise ValueError(f"max_groups must be >= 0, got {max_groups}")
    if len(advantages) != len(trajectories):
        raise ValueError(
            f"write_rollout_sample: {len(advantages)} advantage lists for "
            f"{len(trajectories)} trajectories; pass one list per trajectory"
        )
    for traj, values in zip(trajectories, advantages, strict=True):
        if len(values) != len(traj.steps):
            raise ValueError(
                f"write_rollout_sample: trajectory {traj.traj_id or traj.task_id!r} has "
                f"{len(traj.steps)} steps but {len(values)} advantages"
            )
    if max_groups == 0 or not trajectories:
        return None
    chosen = _pick_groups(trajectories, max_groups, seed, iteration)
    lines = []
    for traj, values in zip(trajectories, advantages, strict=True):
        if traj.group_id not in chosen:
            continue
        extra = {
            "advantages": [_finite_or_none(v) for v in values],
            "iteration": int(iteration),
            "estimator": estimator,
        }
        lines.append(_json_line(dataclasses.replace(traj, metadata={**traj.metadata, **extra})))
    path = rollout_path(run_dir, iteration)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(b"".join(lines))
        os.replace(tmp, path)  # the viewer never reads a half-written file
    except OSError as exc:
        log.warning("could not save the rollout sample of iteration %d: %s", iteration, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return None
    return path


def _pick_groups(
    trajectories: Sequence[Trajectory], max_groups: int, seed: int, iteration: int
) -> set[str]:
    order = list(dict.fromkeys(t.group_id for t in trajectories))
    if len(order) <= max_groups:
        return set(order)
    rng = np.random.default_rng([abs(int(seed)), abs(int(iteration))])
    picked = rng.choice(len(order), size=max_groups, replace=False)
    return {order[i] for i in picked}


def _finite_or_none(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _json_line(traj: Trajectory) -> bytes:
    """One JSON line of ``traj`` as UTF-8, whatever its text holds."""
    try:
        text = traj.to_json()
    except (TypeError, ValueError, RecursionError) as exc:  # circular or exotic info
        try:
            text = _without_info(traj, exc).to_json()
        except (TypeError, ValueError, RecursionError) as again:
            log.warning("rollout sample: trajectory %r left out (%s)", traj.traj_id, again)
            return b""
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # lone surrogates: JSON's \uXXXX escapes carry them losslessly in ASCII
        return (json.dumps(json.loads(text), ensure_ascii=True) + "\n").encode("ascii")


def _without_info(traj: Trajectory, exc: BaseException) -> Trajectory:
    def short(value: Any) -> str:
        try:
            return repr(value)[:2000]
        except Exception:  # a repr that raises: say only what type it was
            return f"<{type(value).__name__}>"

    note = f"not JSON serialisable ({type(exc).__name__}): "
    steps = [
        dataclasses.replace(step, info={"unserialisable_info": note + short(step.info)})
        for step in traj.steps
    ]
    metadata = {k: v if _serialisable(v) else note + short(v) for k, v in traj.metadata.items()}
    return dataclasses.replace(traj, steps=steps, metadata=metadata)


def _serialisable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
