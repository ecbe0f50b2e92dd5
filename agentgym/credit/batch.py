"""`CreditBatch`: the validated, column-wise view of a batch that every estimator reads.

One row per step of every trajectory in the batch. Rows may come in any order; the
batch keeps them in the caller's order and precomputes the (trajectory, step) order
that estimators need, so that each estimator starts from the same checked facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from agentgym.credit import ops


@dataclass(frozen=True, eq=False)
class CreditBatch:
    """A flattened batch of trajectories, one row per step, validated and interned.

    Build it with :meth:`from_columns`; estimators receive it read-only. All per-row
    arrays have length ``n_rows`` and follow the caller's row order. Per-trajectory
    arrays are indexed by the trajectory code in ``traj``.

    Invariants checked at construction (a ``ValueError`` naming the row otherwise):
    the batch is not empty; all columns have the same length; rewards are finite;
    each trajectory's steps are exactly ``0, 1, ..., len - 1`` (no gap, no
    duplicate); each trajectory lies in one task group. State keys are interned on
    first use (a key of the wrong type, e.g. None in an object array, is reported
    then); pass them as int codes when speed matters.
    """

    group: np.ndarray
    """int64 code in ``[0, n_groups)`` of the row's task group."""
    traj: np.ndarray
    """int64 code in ``[0, n_traj)`` of the row's trajectory."""
    step: np.ndarray
    """int64 step index of the row inside its trajectory (0-based)."""
    reward: np.ndarray
    """float64 environment reward of the row's step."""
    state_column: np.ndarray | None
    """The state keys as given (strings or ints), or None; see :attr:`state`."""
    n_groups: int
    n_traj: int
    order: np.ndarray
    """Row indices sorted by (trajectory code, step): ``reward[order]`` is trajectory-major."""
    position: np.ndarray
    """Inverse of ``order``: row i is at ``position[i]`` in (trajectory, step) order."""
    traj_start: np.ndarray
    """Per trajectory: offset of its first step in ``order``."""
    traj_len: np.ndarray
    """Per trajectory: number of steps."""
    traj_group: np.ndarray
    """Per trajectory: task-group code."""
    traj_return: np.ndarray
    """Per trajectory: episode return, the undiscounted sum of its rewards."""

    @property
    def n_rows(self) -> int:
        return int(self.reward.size)

    @classmethod
    def from_columns(
        cls,
        *,
        group: Any,
        traj: Any,
        step: Any,
        reward: Any,
        state: Any = None,
    ) -> CreditBatch:
        """Validate the columns and build the batch.

        ``group`` and ``traj`` are integer (or string) ids, ``step`` integer step
        indices, ``reward`` real numbers, ``state`` (optional) string or integer keys.
        """
        columns = {"group": group, "traj": traj, "step": step, "reward": reward}
        if state is not None:
            columns["state"] = state
        n_rows = _common_length(columns)

        reward_arr = _as_reward(reward)
        group_codes, n_groups = intern_ids(group, "group")
        traj_codes, n_traj = intern_ids(traj, "traj")
        step_arr = _as_steps(step)

        traj_len = np.bincount(traj_codes, minlength=n_traj)
        traj_start = np.concatenate(([0], np.cumsum(traj_len)[:-1]))
        position = _check_steps(step_arr, traj_codes, traj_len, traj_start)
        order = np.empty(n_rows, dtype=np.int64)
        order[position] = np.arange(n_rows)

        # a trajectory's group is the group of its step 0; any other row must agree
        traj_group = group_codes[order[traj_start]]
        _check_one_group_per_traj(group, group_codes, traj_codes, traj_group, order, traj_start)

        state_column = None if state is None else _as_state(state)

        batch = cls(
            group=group_codes,
            traj=traj_codes,
            step=step_arr,
            reward=reward_arr,
            state_column=state_column,
            n_groups=n_groups,
            n_traj=n_traj,
            order=order,
            position=position,
            traj_start=traj_start,
            traj_len=traj_len,
            traj_group=traj_group,
            # summed in (trajectory, step) order, so the result does not depend on row order
            # (every trajectory has at least one row, so the segment starts increase)
            traj_return=np.add.reduceat(reward_arr[order], traj_start),
        )
        # estimators share the batch: none may change it for the next one
        for value in vars(batch).values():
            if isinstance(value, np.ndarray) and value is not state_column:
                value.flags.writeable = False
        return batch

    @cached_property
    def _interned_state(self) -> tuple[np.ndarray, np.ndarray] | None:
        # Interned on first use: estimators that ignore states never pay for hashing
        # string keys, the slowest part of building a batch.
        if self.state_column is None:
            return None
        codes, keys = _intern_state(self.state_column)
        codes.flags.writeable = keys.flags.writeable = False
        return codes, keys

    @property
    def state(self) -> np.ndarray | None:
        """int64 code in ``[0, n_states)`` of the row's state key, or None if not given."""
        interned = self._interned_state
        return None if interned is None else interned[0]

    @property
    def state_keys(self) -> np.ndarray | None:
        """The distinct state keys; ``state_keys[state[i]]`` is row i's original key."""
        interned = self._interned_state
        return None if interned is None else interned[1]

    @property
    def n_states(self) -> int:
        keys = self.state_keys
        return 0 if keys is None else len(keys)

    def require_state(self, estimator: str) -> np.ndarray:
        """The state codes, or a ValueError saying that ``estimator`` needs them."""
        if self.state is None:
            raise ValueError(
                f"estimator {estimator!r} groups steps by state key, but no `state` column "
                "was given; pass state=... (one state key per row, e.g. info['state_key'])"
            )
        return self.state

    def row_array(self, name: str, values: Any, *, integer: bool = False) -> np.ndarray:
        """Check an extra per-row column passed as an estimator parameter."""
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.size != self.n_rows:
            raise ValueError(
                f"`{name}` must have one value per row ({self.n_rows} rows), got shape {arr.shape}"
            )
        if integer and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"`{name}` must hold integers, got dtype {arr.dtype}")
        return arr

    def informative_groups(self) -> np.ndarray:
        """bool per task group: it has two or more trajectories whose returns are not all
        equal. Group-relative credit is exactly 0 elsewhere (the same test every
        estimator's group normalisation applies), so DAPO's dynamic sampling drops the
        other groups."""
        return ops.normalize_in_groups(
            self.traj_return, self.traj_group, self.n_groups, scale=False, epsilon=1.0
        ).informative

    def returns_to_go(self, gamma: float) -> np.ndarray:
        """Discounted return-to-go ``G_t = sum_j gamma^j r_{t+j}`` of every row (row order)."""
        return ops.discounted_return_to_go(
            self.reward, self.traj, self.step, self.traj_len, gamma, order=self.order
        )


def show(value: Any) -> str:
    """repr of a column value for error messages (``1``, not ``np.int64(1)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _common_length(columns: dict[str, Any]) -> int:
    lengths = {}
    for name, values in columns.items():
        arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
        if arr.ndim != 1:
            raise ValueError(f"`{name}` must be one-dimensional, got shape {arr.shape}")
        lengths[name] = arr.shape[0]
    distinct = set(lengths.values())
    if len(distinct) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"columns have different lengths ({listed}); give one value per row")
    n_rows = distinct.pop()
    if n_rows == 0:
        raise ValueError("empty batch: the columns have no rows")
    return n_rows


def _as_reward(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"`reward` must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"row {row}: reward is {arr[row]}; rewards must be finite numbers")
    return arr


def _as_steps(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"`step` must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)  # a copy: the batch locks its arrays
    negative = arr < 0
    if negative.any():
        row = int(np.argmax(negative))
        raise ValueError(f"row {row}: step is {arr[row]}; step indices start at 0")
    return arr


def intern_ids(values: Any, name: str) -> tuple[np.ndarray, int]:
    """Dense codes ``0..k-1`` for integer or string ids; returns (codes, k)."""
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.integer):
        codes, distinct = ops.dense_codes(arr)
        return codes, distinct.size
    if arr.dtype.kind in "USO":
        codes, keys = _intern_hashable(arr, name)
        return codes, len(keys)
    raise ValueError(f"`{name}` must hold integer or string ids, got dtype {arr.dtype}")


def _as_state(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype.kind in "USO":
        return arr
    raise ValueError(
        f"`state` must hold string or integer keys, got dtype {arr.dtype}; floats are not "
        "accepted as state keys because equal states may differ by rounding"
    )


def _intern_state(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.issubdtype(arr.dtype, np.integer):
        return ops.dense_codes(arr)
    return _intern_hashable(arr, "state")


def _intern_hashable(arr: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes in order of first appearance for string (or object) keys.

    A dict lookup per row is the fastest interning NumPy offers for strings
    (sorting Python strings with ``np.unique`` is several times slower).
    """
    items = arr.tolist()
    table: dict[Any, int] = dict.fromkeys(items)  # type: ignore[arg-type]
    for code, key in enumerate(table):
        if not isinstance(key, (str, int, np.integer)) or isinstance(key, bool):
            row = items.index(key)
            raise ValueError(
                f"row {row}: {name} key {key!r} has type {type(key).__name__}; "
                "use strings or integers"
            )
        table[key] = code
    codes = np.fromiter(map(table.__getitem__, items), dtype=np.int64, count=len(items))
    keys = np.empty(len(table), dtype=object)
    keys[:] = list(table)
    return codes, keys


def _check_steps(
    step: np.ndarray, traj: np.ndarray, traj_len: np.ndarray, traj_start: np.ndarray
) -> np.ndarray:
    """Position of each row in (trajectory, step) order; ValueError on a gap or duplicate.

    A trajectory with L rows must have steps exactly 0..L-1. Then ``start + step`` is a
    permutation of ``0..n-1``; the check is O(n) and needs no sort.
    """
    if not (step >= traj_len[traj]).any():
        position = traj_start[traj] + step
        if (np.bincount(position, minlength=step.size) == 1).all():
            return position
    return _raise_step_error(step, traj, traj_len)


def _raise_step_error(step: np.ndarray, traj: np.ndarray, traj_len: np.ndarray) -> np.ndarray:
    """Find the first bad row in (trajectory, step) order and say what is wrong."""
    order = np.lexsort((np.arange(step.size), step, traj))
    s, t = step[order], traj[order]
    first_of_traj = np.concatenate(([True], t[1:] != t[:-1]))
    expected = np.zeros(step.size, dtype=np.int64)
    not_first = ~first_of_traj
    expected[not_first] = s[:-1][not_first[1:]] + 1
    bad = np.flatnonzero(s != expected)[0]
    row = int(order[bad])
    length = int(traj_len[t[bad]])
    if first_of_traj[bad]:
        why = f"its first step is {s[bad]}, but steps must start at 0"
    elif s[bad] == s[bad - 1]:
        why = f"step {s[bad]} appears twice (rows {int(order[bad - 1])} and {row})"
    else:
        missing = ", ".join(str(i) for i in range(int(s[bad - 1]) + 1, int(s[bad]))[:5])
        why = f"it jumps from step {s[bad - 1]} to step {s[bad]} (missing: {missing})"
    raise ValueError(
        f"row {row}: trajectory with {length} rows has a bad step index: {why}; "
        "each trajectory's steps must be exactly 0, 1, ..., len-1"
    )


def _check_one_group_per_traj(
    raw_group: Any,
    group: np.ndarray,
    traj: np.ndarray,
    traj_group: np.ndarray,
    order: np.ndarray,
    traj_start: np.ndarray,
) -> None:
    mismatch = group != traj_group[traj]
    if not mismatch.any():
        return
    row = int(np.argmax(mismatch))
    first_row = int(order[traj_start[traj[row]]])
    raw = np.asarray(raw_group)
    raise ValueError(
        f"row {row}: group {show(raw[row])} differs from the group {show(raw[first_row])} "
        f"of step 0 of the same trajectory (row {first_row}); a trajectory must lie in "
        "exactly one task group"
    )
