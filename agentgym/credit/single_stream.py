"""SPO: single-stream advantages against a persistent per-task value, normalised over the
batch."""

from __future__ import annotations

import numpy as np

from agentgym.credit import ops
from agentgym.credit.batch import CreditBatch
from agentgym.credit.registry import PositiveFloat, register_estimator


@register_estimator("spo")
def spo(
    batch: CreditBatch,
    *,
    spo_baseline: np.ndarray | None = None,
    norm_by_std: bool = True,
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""SPO: the return minus the task's tracked value, normalised over the whole batch.

    .. math::
        \delta_i = R_i - \hat v_{k(i)},\qquad
        A_{i,t} = \frac{\delta_i - \operatorname{mean}_{B}\delta}{\operatorname{std}_{B}\delta
        + \epsilon}

    for every step t of trajectory i, with :math:`R_i` its return, :math:`\hat v_{k}` the
    ``spo_tracker``'s value of its task *before* this iteration's update (filled as
    ``spo_baseline``) and B every trajectory of the batch (each counted once). No group is
    needed: run it with ``env.rollout.n: 1`` (and ``algorithm.task_sampler: {name: spo}``
    for its prioritised sampling).

    Source: Xu & Ding 2026, "Single-stream Policy Optimization" (arXiv:2509.13232) and its
    reference code, which normalises over the batch's samples with the unbiased std and
    1e-8; here over trajectories (one sample each in single-turn use) with the
    estimators' ``epsilon``. A batch whose :math:`\delta` are all equal gives 0.

    When to use: when groups are often degenerate (all right or all wrong) or slow
    rollouts make waiting for whole groups costly.
    """
    if spo_baseline is None:
        raise ValueError(
            "credit estimator 'spo' needs `spo_baseline` (one value per row), filled by the "
            "spo_tracker input provider in training"
        )
    baseline = batch.row_array("spo_baseline", spo_baseline).astype(np.float64)
    per_traj = np.zeros(batch.n_traj)
    per_traj[batch.traj] = baseline
    delta = batch.traj_return - per_traj
    norm = ops.normalize_in_groups(
        delta, np.zeros(batch.n_traj, dtype=np.int64), 1, scale=norm_by_std, epsilon=epsilon
    )
    return norm.advantage[batch.traj]
