"""Episode-level estimators: one advantage per trajectory, broadcast to all its steps.

The episode return ``R_i`` is the undiscounted sum of trajectory i's rewards. By
default group statistics are taken over *trajectories*, one sample each, so a long
trajectory counts as much as a short one. ``stats_over="steps"`` reproduces
verl-agent's choice instead, where every step row is a sample, so a trajectory's
return is counted once per step it took (long trajectories pull the baseline).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from agentgym.credit import ops
from agentgym.credit.batch import CreditBatch
from agentgym.credit.registry import PositiveFloat, register_estimator

StatsOver = Literal["trajectories", "steps"]

TIE_TOLERANCE = 1e-12
"""Relative distance to the median below which ``median`` treats a return as a tie."""


def episode_samples(batch: CreditBatch, stats_over: StatsOver) -> tuple[np.ndarray, np.ndarray]:
    """(values, keys) of the samples behind the group statistics.

    Trajectory samples when ``stats_over == "trajectories"``, row samples otherwise.
    Use :func:`to_rows` to bring per-sample advantages back to rows.
    """
    if stats_over == "trajectories":
        return batch.traj_return, batch.traj_group
    return batch.traj_return[batch.traj], batch.group


def to_rows(batch: CreditBatch, per_sample: np.ndarray, stats_over: StatsOver) -> np.ndarray:
    return per_sample[batch.traj] if stats_over == "trajectories" else per_sample


def episode_advantage(
    batch: CreditBatch, *, scale: bool, epsilon: float, stats_over: StatsOver
) -> np.ndarray:
    """GRPO's group-normalised episode return, per row (shared by several estimators)."""
    values, keys = episode_samples(batch, stats_over)
    norm = ops.normalize_in_groups(values, keys, batch.n_groups, scale=scale, epsilon=epsilon)
    return to_rows(batch, norm.advantage, stats_over)


@register_estimator("grpo")
def grpo(
    batch: CreditBatch,
    *,
    norm_by_std: bool = True,
    epsilon: PositiveFloat = 1e-6,
    stats_over: StatsOver = "trajectories",
) -> np.ndarray:
    r"""GRPO: episode return normalised within its task group.

    .. math::
        A_i = \frac{R_i - \operatorname{mean}_{j \in g} R_j}{\operatorname{std}_{j \in g} R_j
              + \epsilon} \quad\text{(or } R_i - \operatorname{mean}_{j \in g} R_j
              \text{ when } \texttt{norm\_by\_std=False}\text{)}

    ``A_i`` is given to every step of trajectory i. std is the sample standard
    deviation (n - 1).

    Sources: GRPO, Shao et al. 2024, "DeepSeekMath", arXiv:2402.03300. Mean-only
    (``norm_by_std=False``) is Dr. GRPO, Liu et al. 2025, "Understanding R1-Zero-Like
    Training: A Critical Perspective", arXiv:2503.20783. Reference code: verl
    ``compute_grpo_outcome_advantage`` (``norm_adv_by_std_in_grpo`` there is
    ``norm_by_std`` here).

    Deviations from verl:

    * a group with a single trajectory gets advantage 0; verl uses mean 0 and std 1
      there, so the raw return becomes the advantage, which is not a relative
      advantage and is not invariant to shifting the rewards;
    * statistics are over trajectories by default (verl-agent's multi-turn trainer
      takes them over step rows: ``stats_over="steps"``).

    When to use: outcome rewards, no useful per-step signal; the baseline every other
    estimator is compared against.
    """
    return episode_advantage(batch, scale=norm_by_std, epsilon=epsilon, stats_over=stats_over)


LeaveOut = Literal["trajectory", "row"]


def _check_leave_out(params: dict[str, Any]) -> None:
    if params["leave_out"] == "row" and params["stats_over"] != "steps":
        raise ValueError(
            "credit estimator 'rloo': leave_out='row' leaves out one step row of the "
            "trajectory, which only exists with stats_over='steps' (with "
            "stats_over='trajectories' every sample is a whole trajectory); set "
            "stats_over='steps' or leave_out='trajectory'"
        )


@register_estimator("rloo", check=_check_leave_out)
def rloo(
    batch: CreditBatch,
    *,
    stats_over: StatsOver = "trajectories",
    leave_out: LeaveOut = "trajectory",
) -> np.ndarray:
    r"""RLOO: episode return minus the mean return of the *other* trajectories of the group.

    .. math::
        A_i = R_i - \frac{1}{n_g - 1} \sum_{j \in g,\, j \ne i} R_j

    With ``stats_over="steps"`` every step row is a sample carrying its trajectory's
    return, and the baseline of a row leaves out

    * its whole trajectory (``leave_out="trajectory"``, the default): the other
      trajectories weighted by their number of steps,
      :math:`b_i = \sum_{j \ne i} L_j R_j / \sum_{j \ne i} L_j`, so
      :math:`A_i = (M R_i - S) / (M - L_i)` with :math:`M = \sum_j L_j` and
      :math:`S = \sum_j L_j R_j` over the group;
    * only the row itself (``leave_out="row"``, verl-agent's RLOO with its default
      ``compute_mean_std_cross_steps=True``): the baseline still contains the row's
      own trajectory's other :math:`L_i - 1` rows,
      :math:`b_i = (S - R_i) / (M - 1)`, so :math:`A_i = (M R_i - S) / (M - 1)`.

    The two differ by the factor :math:`(M - L_i) / (M - 1)` (``row`` is the smaller in
    magnitude); for N trajectories of equal length L it is :math:`L(N-1)/(NL-1)`, e.g.
    0.89 for N = 8, L = 10: verl-agent's variant shrinks every advantage, more so for
    short groups of long trajectories, and its baseline is no longer independent of
    the row's own return.

    Sources: Kool et al. 2019, "Buy 4 REINFORCE Samples, Get a Baseline for Free!";
    Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for
    Learning from Human Feedback in LLMs", arXiv:2402.14740. Reference code: verl
    ``compute_rloo_outcome_advantage`` (one sample per response) and verl-agent's
    version of it, whose ``compute_mean_std_cross_steps`` (default True) makes every
    step row a sample, ``leave_out="row"`` here; with it False, one sample per
    trajectory, ``stats_over="trajectories"`` here.

    Deviation from verl: a group with a single sample gets 0 (verl keeps the raw
    return, which is no baseline at all). No scaling, so it is unbiased but not
    unit-variance.

    When to use: small groups where a mean that includes the sample itself is a
    noticeably biased baseline.
    """
    if leave_out == "row":
        values = batch.traj_return[batch.traj]
        baseline = ops.leave_one_out_baseline(
            values, np.ones(batch.n_rows), batch.group, batch.n_groups
        )
        return values - baseline
    weights = np.ones(batch.n_traj) if stats_over == "trajectories" else batch.traj_len * 1.0
    baseline = ops.leave_one_out_baseline(
        batch.traj_return, weights, batch.traj_group, batch.n_groups
    )
    return (batch.traj_return - baseline)[batch.traj]


@register_estimator("median")
def median(
    batch: CreditBatch,
    *,
    scale: Literal["mad", "none"] = "mad",
    epsilon: PositiveFloat = 1e-6,
    stats_over: StatsOver = "trajectories",
) -> np.ndarray:
    r"""MC-GRPO: episode return centred on the group *median*, scaled by the MAD.

    .. math::
        A_i = \frac{R_i - \operatorname{med}_g R}{s_g + \epsilon},\qquad
        s_g = \operatorname{med}_{j \in g} |R_j - \operatorname{med}_g R|

    When the MAD is 0 although the returns differ (e.g. binary rewards with one
    success in eight), :math:`s_g` falls back to the *mean* absolute deviation from
    the median, which is positive whenever the returns are not all equal. A group of
    equal returns gets 0. Returns within ``1e-12`` (relative to the group's largest
    magnitude) of the median count as equal to it, so that rounding noise cannot
    produce a MAD of 1e-17. ``scale="none"`` gives the median-centred return only.

    Source: Kim 2026, "MC-GRPO: Median-Centered Group Relative Policy Optimization for
    Small-Rollout Reinforcement Learning", arXiv:2601.22582 (code:
    lotusroot-kim/MC-GRPO).

    Deviations: the paper samples one extra rollout (G + 1) so that the median is a
    real rollout and leaves that pivot out of the update; sampling is the rollout
    layer's business, so here the pivot simply gets advantage 0. The MAD fallback
    is ours (the issue asks for a safe fallback; the MAD alone is 0 for most groups
    of binary rewards). No 1.4826 consistency factor is applied to the MAD.

    When to use: small groups (2-4 rollouts) or heavy-tailed rewards, where one
    outlier flips the sign of the mean baseline for the rest of the group.
    """
    values, keys = episode_samples(batch, stats_over)
    med, counts = ops.group_median(values, keys, batch.n_groups)
    centred = values - med[keys]
    # Returns that differ from the median by rounding only (0.1 + 0.2 vs 0.3) are ties:
    # otherwise they give a MAD of 1e-17 and advantages of 1e6 to everyone else.
    magnitude = np.zeros(batch.n_groups)
    np.maximum.at(magnitude, keys, np.abs(values))
    centred[np.abs(centred) <= TIE_TOLERANCE * magnitude[keys]] = 0.0
    if scale == "mad":
        deviation = np.abs(centred)
        mad, _ = ops.group_median(deviation, keys, batch.n_groups)
        mean_dev = ops.segment_sum(deviation, keys, batch.n_groups) / np.maximum(counts, 1)
        spread = np.where(mad > 0, mad, mean_dev)
        centred = centred / (spread[keys] + epsilon)
    return to_rows(batch, centred, stats_over)
