"""Critic-based credit: GAE over steps (PPO) and HiPER's hierarchical advantages (HAE).

The values come from a critic that runs before credit (the ``critic`` and
``hiper_critic`` input providers); these functions are pure and also give the critic its
regression targets (:func:`gae_advantages`, :func:`hierarchical_advantages`).
"""

from __future__ import annotations

import numpy as np

from agentgym.credit import ops
from agentgym.credit.batch import CreditBatch
from agentgym.credit.registry import PositiveFloat, UnitInterval, register_estimator

__all__ = ["gae_advantages", "hierarchical_advantages", "segments"]


def _next_in_traj(batch: CreditBatch) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the row of the same trajectory's next step, and whether there is one."""
    order = batch.order
    nxt = np.full(batch.n_rows, -1, dtype=np.int64)
    same = batch.traj[order][1:] == batch.traj[order][:-1]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt, nxt >= 0


def gae_advantages(
    batch: CreditBatch, value: np.ndarray, gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""(advantages, returns) of GAE over each trajectory's steps:

    .. math::
        \delta_t = r_t + \gamma V(s_{t+1}) - V(s_t),\qquad
        A_t = \sum_{k \ge 0} (\gamma\lambda)^k \delta_{t+k},\qquad R_t = A_t + V(s_t)

    with :math:`V(s_T) = 0` after a trajectory's last step."""
    value = batch.row_array("value", value).astype(np.float64)
    nxt, has = _next_in_traj(batch)
    next_value = np.where(has, value[np.maximum(nxt, 0)], 0.0)
    delta = batch.reward + gamma * next_value - value
    adv = ops.discounted_return_to_go(
        delta, batch.traj, batch.step, batch.traj_len, gamma * lam, order=batch.order
    )
    return adv, adv + value


@register_estimator("gae")
def gae(
    batch: CreditBatch,
    *,
    value: np.ndarray | None = None,
    gamma: UnitInterval = 0.99,
    lam: UnitInterval = 0.95,
    whiten: bool = True,
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""PPO's generalised advantage estimation over the steps (turns) of each trajectory.

    .. math::
        \delta_t = r_t + \gamma V(s_t') - V(s_t),\qquad
        A_t = \delta_t + \gamma\lambda A_{t+1}

    where :math:`V(s_t)` is the critic's value of the state the agent acted in at step t
    (the ``critic`` input provider fills ``value``: a value model read at the end of the
    step's prompt), :math:`s_t'` the next step's state and :math:`V = 0` after the last
    step. With ``whiten`` the advantages are then centred and scaled over the whole batch
    (verl's ``masked_whiten``, here over step rows). The critic regresses on
    :math:`R_t = A_t + V(s_t)` (before whitening).

    Source: Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized
    Advantage Estimation" (arXiv:1506.02438), at the level of turns as in multi-turn PPO
    (RAGEN's turn-level GAE, Wang et al. 2025, arXiv:2504.20073; Turn-PPO,
    arXiv:2512.17008). Deviations from verl/RAGEN: one value and one advantage per turn
    (not per token; RAGEN's bi-level variant adds a token-level GAE inside each turn,
    which needs per-token values and is not implemented); a truncated trajectory is
    treated as ended (no bootstrap from an unseen next state); whitening uses the sample
    std over rows.

    When to use: dense or shaped rewards, long episodes, and small groups, where a
    learned baseline per state beats group statistics.
    """
    if value is None:
        raise ValueError(
            "credit estimator 'gae' needs `value` (one critic value per row), filled by the "
            "critic input provider in training"
        )
    adv, _returns = gae_advantages(batch, value, gamma, lam)
    if not whiten:
        return adv
    return ops.normalize_in_groups(
        adv, np.zeros(batch.n_rows, dtype=np.int64), 1, scale=True, epsilon=epsilon
    ).advantage


def segments(batch: CreditBatch, switch: np.ndarray) -> np.ndarray:
    """Per row, the index of its subgoal segment within its trajectory (0, 1, ...): a new
    segment starts at each trajectory's first step and at every step whose ``switch`` is
    true."""
    switch = batch.row_array("switch", switch).astype(bool)
    start = switch | (batch.step == 0)
    ordered = start[batch.order].astype(np.int64)
    counts = np.cumsum(ordered)
    # subtract the count before each trajectory's first row
    first = batch.traj_start
    offset = np.repeat(counts[first] - 1, batch.traj_len)
    seg = np.empty(batch.n_rows, dtype=np.int64)
    seg[batch.order] = counts - 1 - offset
    return seg


def hierarchical_advantages(
    batch: CreditBatch,
    value_low: np.ndarray,
    value_high: np.ndarray,
    switch: np.ndarray,
    gamma: float,
    lam_low: float,
    lam_high: float,
) -> dict[str, np.ndarray]:
    r"""HiPER's hierarchical advantage estimation (HAE), per row.

    Segments: a trajectory splits at its first step and at every SWITCH step; segment k
    covers steps :math:`s_k .. e_k` (:math:`d_k = e_k - s_k + 1` steps). Low level (within
    a segment, bootstrapped at its boundary with the high-level value):

    .. math::
        \delta^L_t = r_t + \gamma V^L_{t+1} - V^L_t \;(t < e_k),\qquad
        \delta^L_{e_k} = r_{e_k} + \gamma V^H_{s_{k+1}} - V^L_{e_k},\qquad
        A^L_t = \delta^L_t + \gamma\lambda_L A^L_{t+1}\;(A^L_{e_k + 1} = 0)

    High level (across segments, an SMDP step per segment):

    .. math::
        R_k = \sum_{j=0}^{d_k - 1}\gamma^j r_{s_k + j},\qquad
        \delta^H_k = R_k + \gamma^{d_k} V^H_{s_{k+1}} - V^H_{s_k},\qquad
        A^H_k = \delta^H_k + \gamma^{d_k}\lambda_H A^H_{k+1}

    with :math:`V^H_{s_{K}} = 0` after the last segment. Returns ``adv_low``,
    ``ret_low`` (:math:`A^L + V^L`), ``adv_high`` and ``ret_high`` (:math:`A^H + V^H`, on
    each segment's first row, 0 elsewhere) and ``boundary`` (bool, segment starts).
    """
    v_low = batch.row_array("value_low", value_low).astype(np.float64)
    v_high = batch.row_array("value_high", value_high).astype(np.float64)
    seg = segments(batch, switch)
    boundary = (batch.step == 0) | (np.asarray(switch, dtype=bool) & (batch.step > 0))
    nxt, has = _next_in_traj(batch)
    nxt_safe = np.maximum(nxt, 0)
    crosses = has & (seg[nxt_safe] != seg)  # the last row of a segment followed by another
    within = has & ~crosses
    boot = np.zeros(batch.n_rows)
    boot[within] = v_low[nxt_safe[within]]
    boot[crosses] = v_high[nxt_safe[crosses]]
    delta = batch.reward + gamma * boot - v_low
    # GAE restarting at each segment: segments act as trajectories of their own
    width = int(seg.max()) + 2 if seg.size else 2  # room for "the segment after the last"
    seg_key = batch.traj * width + seg
    seg_codes, distinct = ops.dense_codes(seg_key)
    n_segs = len(distinct)
    seg_step = batch.step - _first_step_of(seg_codes, batch.step, n_segs)
    seg_len = np.bincount(seg_codes, minlength=n_segs)
    adv_low = ops.discounted_return_to_go(delta, seg_codes, seg_step, seg_len, gamma * lam_low)
    # segment returns R_k (discounted within the segment) and the high-level recursion
    seg_return = np.zeros(n_segs)
    np.add.at(seg_return, seg_codes, batch.reward * gamma**seg_step)
    seg_start_row = np.zeros(n_segs, dtype=np.int64)
    seg_start_row[seg_codes[boundary]] = np.flatnonzero(boundary)
    seg_traj = batch.traj[seg_start_row]
    seg_index = seg[seg_start_row]
    next_seg = np.full(n_segs, -1, dtype=np.int64)
    key_to_code = dict(zip(seg_key[seg_start_row].tolist(), range(n_segs), strict=True))
    for code in range(n_segs):
        following = int(seg_traj[code]) * width + int(seg_index[code]) + 1
        next_seg[code] = key_to_code.get(following, -1)
    v_start = v_high[seg_start_row]
    v_next = np.where(next_seg >= 0, v_start[np.maximum(next_seg, 0)], 0.0)
    disc = gamma**seg_len
    delta_high = seg_return + disc * v_next - v_start
    adv_seg = np.zeros(n_segs)
    # backwards over segment index: every trajectory's k-th segment at once
    for k in range(int(seg_index.max()) if n_segs else -1, -1, -1):
        here = np.flatnonzero(seg_index == k)
        later = next_seg[here]
        carry = np.where(later >= 0, adv_seg[np.maximum(later, 0)], 0.0)
        adv_seg[here] = delta_high[here] + disc[here] * lam_high * carry
    adv_high = np.zeros(batch.n_rows)
    ret_high = np.zeros(batch.n_rows)
    adv_high[seg_start_row] = adv_seg
    ret_high[seg_start_row] = adv_seg + v_start
    return {
        "adv_low": adv_low,
        "ret_low": adv_low + v_low,
        "adv_high": adv_high,
        "ret_high": ret_high,
        "boundary": boundary,
    }


def _first_step_of(codes: np.ndarray, step: np.ndarray, n: int) -> np.ndarray:
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, codes, step)
    return first[codes]


@register_estimator("hiper")
def hiper(
    batch: CreditBatch,
    *,
    value_low: np.ndarray | None = None,
    value_high: np.ndarray | None = None,
    switch: np.ndarray | None = None,
    gamma: UnitInterval = 0.99,
    lam_low: UnitInterval = 0.95,
    lam_high: UnitInterval = 0.95,
    whiten: bool = False,
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""HiPER: hierarchical advantage estimation (HAE) over subgoal segments.

    Returns the low-level (action) advantage :math:`A^L_t` of every step (equations in
    :func:`hierarchical_advantages`); the high-level advantage :math:`A^H_k` of each
    segment goes to the *subgoal tokens* of the segment's first step, added by the
    ``hiper_critic`` input provider once the samples are built (so the response of a
    SWITCH step carries :math:`A^L` on its action tokens and :math:`A^L + A^H` on its
    subgoal). Inputs, from the ``hiper_critic`` provider: ``value_low`` (:math:`V^L`, the
    critic's low head at each step), ``value_high`` (:math:`V^H`, its high head) and
    ``switch`` (the step's response chose SWITCH; a step without a readable choice keeps
    its subgoal; the first step always starts a segment). ``whiten`` standardises
    :math:`A^L` over the batch (the reference's ``norm_adv``, off by default there too).

    Source: Peng et al. 2026, "HiPER: Hierarchical Reinforcement Learning with Explicit
    Credit Assignment for Large Language Model Agents" (arXiv:2602.16165) and its
    reference code (JonP07/HiPER-agent, ``hier_gae/core_hgae.py``), whose defaults this
    follows: the low level restarts at each segment and bootstraps with :math:`V^H` of
    the next segment's first state; the high level is an SMDP recursion discounted by
    :math:`\gamma^{d_k}`; :math:`A^H` goes to subgoal tokens (not the switch tokens) of
    boundary steps, :math:`A^L` to every response token. Deviations: values are read per
    step from a separate two-head critic model (the reference reads them at marked
    tokens of a critic sharing the policy's backbone); the reference's optional
    termination head, keep-penalties and switch-rate floor are not implemented; a
    truncated trajectory is treated as ended (its default).

    When to use: long-horizon tasks with sub-tasks (ALFWorld, WebShop) and a prompt
    format with explicit subgoals (``env.action_parser: hiper``).
    """
    for name, arr in (("value_low", value_low), ("value_high", value_high), ("switch", switch)):
        if arr is None:
            raise ValueError(
                f"credit estimator 'hiper' needs `{name}` (one value per row), filled by the "
                "hiper_critic input provider in training"
            )
    parts = hierarchical_advantages(
        batch,
        value_low,
        value_high,
        switch,
        gamma,
        lam_low,
        lam_high,  # type: ignore[arg-type]
    )
    adv = parts["adv_low"]
    if not whiten:
        return adv
    return ops.normalize_in_groups(
        adv, np.zeros(batch.n_rows, dtype=np.int64), 1, scale=True, epsilon=epsilon
    ).advantage
