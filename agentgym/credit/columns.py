"""Extra per-row inputs of the estimators (``action``, ``agent``, ``reward_components``) and
the keys built from them: checked once here, so every estimator reports bad input alike.

An estimator's per-row inputs are its keyword-only ``np.ndarray`` parameters; the trainer
fills them by name from the trajectories (``action`` from the parsed action, ``agent`` from
``info["agent_id"]``, ``reward_components`` from ``info["reward_components"]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentgym.credit import ops
from agentgym.credit.batch import CreditBatch, intern_ids

INPUT_HINTS = {
    "action": "the parsed action text of each row ('' where the response did not parse)",
    "agent": "the id of the agent acting at each row (info['agent_id']), strings or ints",
    "reward_components": (
        "one row of K reward components per step (info['reward_components'], a dict "
        "name -> value per step), shape (rows, K)"
    ),
}


def require(values: Any, name: str, estimator: str) -> Any:
    """``values``, or a ValueError saying that ``estimator`` needs input ``name``."""
    if values is None:
        hint = INPUT_HINTS.get(name, "one value per row")
        raise ValueError(f"credit estimator {estimator!r} needs `{name}`: {hint}")
    return values


def row_ids(batch: CreditBatch, name: str, values: Any, estimator: str) -> tuple[np.ndarray, int]:
    """Dense codes ``0..k-1`` of a per-row id column (strings or ints); returns (codes, k).

    Equal ids get equal codes; ``""`` is an id like any other (an unparsed action).
    """
    arr = batch.row_array(name, require(values, name, estimator))
    return intern_ids(arr, name)


def row_matrix(batch: CreditBatch, name: str, values: Any, estimator: str) -> np.ndarray:
    """A float64 (rows, K) matrix with K >= 1 finite real values per row."""
    arr = np.asarray(require(values, name, estimator))
    if arr.ndim != 2 or arr.shape[0] != batch.n_rows or arr.shape[1] == 0:
        raise ValueError(
            f"`{name}` must have shape (rows, K) with K >= 1 ({batch.n_rows} rows), "
            f"got shape {arr.shape}"
        )
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"`{name}` must hold real numbers, got dtype {arr.dtype}")
    matrix = arr.astype(np.float64)  # a copy: the caller's array stays theirs
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"row {row}: `{name}` column {column} is {matrix[row, column]}; "
            "values must be finite numbers"
        )
    return matrix


def trajectory_sums(batch: CreditBatch, matrix: np.ndarray) -> np.ndarray:
    """Per trajectory, the sum of each column over its steps: shape (n_traj, K).

    Summed in (trajectory, step) order, like ``traj_return``, so the result does not
    depend on row order.
    """
    return np.add.reduceat(matrix[batch.order], batch.traj_start, axis=0)


def prefix_codes(batch: CreditBatch, token: np.ndarray, n_tokens: int) -> tuple[np.ndarray, int]:
    """Dense code per row of its prefix ``(task group, token_0, ..., token_t)``; (codes, n).

    Row t of trajectory i gets the code of the tokens of steps 0..t of i, within i's task
    group, so two rows share a code exactly when they are in the same task group, at the
    same step, and their trajectories agree on every token up to that step: the nodes of
    the group's prefix tree. ``token`` holds dense codes in ``[0, n_tokens)``.
    """
    longest = int(batch.traj_len.max())
    if longest * batch.n_traj <= _PADDED_SLOTS_PER_ROW * batch.n_rows:
        return _prefix_codes_sorted(batch, token, longest)
    return _prefix_codes_by_level(batch, token, n_tokens, longest)


# the padded (trajectory, step) token matrix may hold at most this many slots per row
_PADDED_SLOTS_PER_ROW = 4


def _prefix_codes_sorted(
    batch: CreditBatch, token: np.ndarray, longest: int
) -> tuple[np.ndarray, int]:
    """Prefix codes from the trajectories sorted lexicographically (a trie laid flat).

    In (task group, token sequence) order the trajectories that share a prefix of length
    t + 1 are adjacent, so a row starts a new node exactly where its trajectory's common
    prefix with the previous one (same group) is shorter than t + 1. A handful of NumPy
    calls on the padded (trajectory, step) matrix; no loop over steps.
    """
    n_traj = batch.n_traj
    padded = np.full((n_traj, longest), -1, dtype=np.int64)  # -1 after a trajectory ends
    padded[batch.traj, batch.step] = token
    by_sequence = np.lexsort((*padded.T[::-1], batch.traj_group))
    ordered = padded[by_sequence]
    group = batch.traj_group[by_sequence]
    same = ordered[1:] == ordered[:-1]
    same &= (group[1:] == group[:-1])[:, None]
    common = np.zeros(n_traj, dtype=np.int64)  # length of the prefix shared with the row above
    common[1:] = np.logical_and.accumulate(same, axis=1).sum(axis=1)
    column = np.arange(longest)
    alive = column < batch.traj_len[by_sequence][:, None]
    starts_node = alive & (column >= common[:, None])
    # number the nodes column by column; a cell that starts no node has its run's code
    code = np.cumsum(starts_node.T.ravel()).reshape(longest, n_traj).T - 1
    rank = np.empty(n_traj, dtype=np.int64)
    rank[by_sequence] = np.arange(n_traj)
    return code[rank[batch.traj], batch.step], int(starts_node.sum())


def _prefix_codes_by_level(
    batch: CreditBatch, token: np.ndarray, n_tokens: int, longest: int
) -> tuple[np.ndarray, int]:
    """Prefix codes one step column at a time, for very uneven lengths (no padding).

    The key of step t is the pair (key of step t - 1, token_t), densified over the
    trajectories still running; O(n) work plus a few NumPy calls per step column.
    """
    order = batch.order
    token_sorted = token[order]
    codes_sorted = np.empty(batch.n_rows, dtype=np.int64)
    by_length = np.argsort(-batch.traj_len, kind="stable")
    starts = batch.traj_start[by_length]
    lengths = batch.traj_len[by_length]
    # alive[t]: trajectories with more than t steps, a prefix of by_length
    alive = by_length.size - np.cumsum(np.bincount(lengths, minlength=longest + 1))[:longest]
    keys, n_keys = ops.combine_keys(
        batch.traj_group[by_length], batch.n_groups, token_sorted[starts], n_tokens
    )
    codes_sorted[starts] = keys
    offset = n_keys
    for t in range(1, longest):
        m = int(alive[t])
        positions = starts[:m] + t
        keys, level_keys = ops.combine_keys(keys[:m], n_keys, token_sorted[positions], n_tokens)
        codes_sorted[positions] = keys + offset
        offset += level_keys
        n_keys = level_keys
    return codes_sorted[batch.position], offset


def parent_codes(batch: CreditBatch, codes: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Per row, the code of the row one step earlier in its trajectory, or ``root`` at step 0.

    ``root`` is one code per row for step-0 rows (e.g. an offset task-group code).
    """
    codes_sorted = codes[batch.order]
    parent_sorted = np.empty_like(codes_sorted)
    parent_sorted[1:] = codes_sorted[:-1]
    parent = parent_sorted[batch.position]
    first = batch.step == 0
    parent[first] = root[first]
    return parent
