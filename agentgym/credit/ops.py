"""Vectorised primitives shared by every credit estimator.

Everything here works on *dense integer keys*: a key array of length n whose values lie
in ``[0, n_keys)`` names the group each element belongs to. Group statistics are then
``np.bincount`` reductions, which are O(n) and need no sorting, padding or Python loop
over groups. Estimators combine these primitives; none of them re-implements a
group mean or a discounted return.

Conventions used by all estimators (stated once, here):

* The spread of a group is the unbiased sample standard deviation (``ddof=1``), the
  same as ``torch.std`` in verl and verl-agent.
* A group whose values are all equal (this includes every group of one element) gets
  advantage exactly 0. The test is exact (a sum of absolute deviations from one
  member is 0), not a tolerance, so a group of equal rewards never turns rounding
  noise into a signal.
* Dividing by the spread uses ``std + epsilon`` (verl's ``1e-6`` by default), so a
  tiny but non-zero spread cannot blow up.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Integer keys whose range is at most this many slots per element (plus a constant)
# are densified by counting (O(n + range)); wider ones by sorting (O(n log n)).
_DIRECT_KEY_SLOTS_PER_ROW = 2
_DIRECT_KEY_SLOTS_MIN = 1 << 12


class GroupNorm(NamedTuple):
    """Result of :func:`normalize_in_groups`."""

    advantage: np.ndarray
    """Centred (and, when asked, scaled) value of every element."""
    informative: np.ndarray
    """Per key: True when the group has at least two elements that are not all equal."""


def dense_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes ``0..k-1`` for integer ``values``, in sorted order of the values.

    Returns (codes, distinct) with ``distinct[codes] == values``.
    """
    values = np.asarray(values)
    if values.size == 0:
        return np.zeros(0, dtype=np.int64), values[:0]
    low = int(values.min())
    span = int(values.max()) - low + 1
    if span <= _DIRECT_KEY_SLOTS_PER_ROW * values.size + _DIRECT_KEY_SLOTS_MIN:
        shifted = values.astype(np.int64, copy=False) - low
        present = np.bincount(shifted, minlength=span) > 0
        if low == 0 and present.all():  # already dense, as agentgym.flatten gives them
            return shifted, np.arange(span)
        code_of = np.cumsum(present) - 1
        return code_of[shifted], np.flatnonzero(present) + low
    distinct, inverse = np.unique(values, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64, copy=False), distinct


def combine_keys(
    first: np.ndarray, n_first: int, second: np.ndarray, n_second: int
) -> tuple[np.ndarray, int]:
    """Dense key of the pair ``(first, second)``; returns (keys, n_keys).

    ``first`` lies in ``[0, n_first)`` and ``second`` in ``[0, n_second)``. Keys are
    always dense (``n_keys`` = number of distinct pairs present), so that the per-key
    arrays of later reductions stay as small as the data.
    """
    if n_first * n_second >= 1 << 62:  # the pair code would overflow int64
        distinct, inverse = np.unique(np.stack([first, second]), axis=1, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64, copy=False), distinct.shape[1]
    pairs = first.astype(np.int64, copy=False) * n_second + second
    codes, distinct = dense_codes(pairs)
    return codes, distinct.size


def segment_sum(values: np.ndarray, keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Sum of ``values`` per key (float64, length ``n_keys``)."""
    return np.bincount(keys, weights=values, minlength=n_keys)


def normalize_in_groups(
    values: np.ndarray,
    keys: np.ndarray,
    n_keys: int,
    *,
    scale: bool,
    epsilon: float,
) -> GroupNorm:
    """Centre ``values`` on their group mean and, if ``scale``, divide by ``std + epsilon``.

    Groups of one element and groups of equal values give exactly 0 (see the module
    docstring). ``keys`` must be dense codes in ``[0, n_keys)``.
    """
    counts = np.bincount(keys, minlength=n_keys)
    # Subtracting one member of each group first keeps the sums small (better
    # rounding for large returns) and makes "all values equal" an exact test.
    reference = np.zeros(n_keys)
    reference[keys] = values
    shifted = values - reference[keys]
    spread = np.bincount(keys, weights=np.abs(shifted), minlength=n_keys)
    informative = (counts >= 2) & (spread > 0)
    mean_shift = np.bincount(keys, weights=shifted, minlength=n_keys) / np.maximum(counts, 1)
    centred = shifted - mean_shift[keys]
    centred[~informative[keys]] = 0.0
    if scale:
        squares = np.bincount(keys, weights=centred * centred, minlength=n_keys)
        std = np.sqrt(squares / np.maximum(counts - 1, 1))
        centred = centred / (std[keys] + epsilon)
    return GroupNorm(centred, informative)


def leave_one_out_baseline(
    values: np.ndarray, weights: np.ndarray, keys: np.ndarray, n_keys: int
) -> np.ndarray:
    """Weighted mean of the *other* elements of each element's group.

    Where an element is alone in its group the baseline is the element's own value,
    so that ``values - baseline`` is 0 there.
    """
    total = np.bincount(keys, weights=values * weights, minlength=n_keys)
    mass = np.bincount(keys, weights=weights, minlength=n_keys)
    other_mass = mass[keys] - weights
    has_others = other_mass > 0
    baseline = values.astype(np.float64, copy=True)
    others = total[keys][has_others] - (values * weights)[has_others]
    baseline[has_others] = others / other_mass[has_others]
    return baseline


def group_median(
    values: np.ndarray, keys: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray]:
    """Median of each group (mean of the two middle values for even sizes).

    Returns (median per key, count per key); keys without elements get median 0.
    """
    order = np.lexsort((values, keys))
    sorted_values = values[order]
    counts = np.bincount(keys, minlength=n_keys)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    median = np.zeros(n_keys)
    present = counts > 0
    low = starts[present] + (counts[present] - 1) // 2
    high = starts[present] + counts[present] // 2
    median[present] = 0.5 * (sorted_values[low] + sorted_values[high])
    return median, counts


def discounted_return_to_go(
    reward: np.ndarray,
    traj: np.ndarray,
    step: np.ndarray,
    traj_len: np.ndarray,
    gamma: float,
    *,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """``G_t = r_t + gamma * G_{t+1}`` for every row, rows in any order.

    Row i is step ``step[i]`` of trajectory ``traj[i]`` (a dense code in
    ``[0, len(traj_len))``); each trajectory's steps are ``0..traj_len[k] - 1``.
    ``order``, if known, is the row order sorted by (trajectory, step).

    The recursion runs backwards over step columns, one vectorised update per column
    over all trajectories at once. This is exact (the same arithmetic as the per-step
    loop: ``G = gamma * G + r`` from ``G = 0`` after the last step) and never divides
    by ``gamma**t``, which would overflow or lose all precision for long trajectories
    and small gamma.

    When the trajectories' lengths are similar, the rewards are scattered straight
    from row order into a zero-padded (step, trajectory) matrix and each column costs
    two contiguous NumPy calls (padding after a trajectory's end adds exact zeros).
    When one trajectory is much longer than most, padding would waste memory, and
    the update runs over the trajectories still alive at each column instead. Cost:
    O(n) work plus two or three small NumPy calls per column of the longest
    trajectory.
    """
    n_traj = traj_len.size
    if n_traj == 0:
        return np.empty(0, dtype=np.float64)
    longest = int(traj_len.max())
    if longest * n_traj <= _PADDED_RETURNS_SLOTS_PER_ROW * reward.size:
        return _return_to_go_padded(reward, traj, step, n_traj, longest, gamma)
    if order is None:
        order = np.lexsort((step, traj))
    traj_start = np.concatenate(([0], np.cumsum(traj_len)[:-1]))
    out = np.empty(reward.size)
    out[order] = _return_to_go_ragged(reward[order], traj_start, traj_len, gamma, longest)
    return out


# the padded matrix may hold at most this many slots per real row
_PADDED_RETURNS_SLOTS_PER_ROW = 4


def _return_to_go_padded(
    reward: np.ndarray,
    traj: np.ndarray,
    step: np.ndarray,
    n_traj: int,
    longest: int,
    gamma: float,
) -> np.ndarray:
    cell = step * n_traj + traj  # flat index of each row in the (step, trajectory) matrix
    # one extra zero row at the bottom is G after the last step
    matrix = np.zeros((longest + 1, n_traj))
    flat = matrix.reshape(-1)
    flat[cell] = reward
    columns = list(matrix)  # views made once: indexing inside the loop costs as much as the math
    scratch = np.empty(n_traj)
    multiply, add = np.multiply, np.add
    for t in range(longest - 1, -1, -1):
        # G[t] = gamma * G[t + 1] + r[t], as in the loop
        multiply(columns[t + 1], gamma, out=scratch)
        add(scratch, columns[t], out=columns[t])
    return flat[cell]


def _return_to_go_ragged(
    reward_sorted: np.ndarray,
    traj_start: np.ndarray,
    traj_len: np.ndarray,
    gamma: float,
    longest: int,
) -> np.ndarray:
    """The recursion in (trajectory, step) order over the trajectories alive at each column."""
    n_traj = traj_len.size
    out = np.empty_like(reward_sorted, dtype=np.float64)
    by_length = np.argsort(-traj_len, kind="stable")
    starts = traj_start[by_length]
    lengths = traj_len[by_length]
    # alive[t] = number of trajectories with more than t steps (a prefix of by_length)
    alive = n_traj - np.cumsum(np.bincount(lengths, minlength=longest + 1))[:longest]
    running = np.zeros(n_traj)
    for t in range(longest - 1, -1, -1):
        m = int(alive[t])
        rows = starts[:m] + t
        head = running[:m]
        head *= gamma
        head += reward_sorted[rows]
        out[rows] = head
    return out
