"""Multi-reward credit: GDPO (each reward component normalised on its own, then the batch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from agentgym.credit import ops
from agentgym.credit.batch import CreditBatch
from agentgym.credit.columns import row_matrix, trajectory_sums
from agentgym.credit.registry import PositiveFloat, register_estimator


def _check_weights(params: dict[str, Any]) -> None:
    weights = params["component_weights"]
    if weights is None:
        return
    if isinstance(weights, (str, bytes, dict)) or not hasattr(weights, "__iter__"):
        raise TypeError(
            "credit estimator 'gdpo', parameter 'component_weights': expected a list of "
            f"numbers (one per reward component), got {type(weights).__name__} {weights!r}"
        )
    values = list(weights)
    if not values:
        raise ValueError(
            "credit estimator 'gdpo', parameter 'component_weights': got an empty list; "
            "give one weight per reward component, or leave it unset (all 1)"
        )
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(
                "credit estimator 'gdpo', parameter 'component_weights': expected numbers, "
                f"got {type(value).__name__} {value!r}"
            )
        if not np.isfinite(value):
            raise ValueError(
                "credit estimator 'gdpo', parameter 'component_weights': got "
                f"{value!r}; weights must be finite"
            )


@register_estimator("gdpo", check=_check_weights)
def gdpo(
    batch: CreditBatch,
    *,
    reward_components: np.ndarray | None = None,
    component_weights: list[float] | None = None,
    norm_by_std: bool = True,
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""GDPO: normalise each reward component within the task group, sum, normalise the batch.

    ``reward_components`` has one row of K values per step (``info["reward_components"]``);
    trajectory i's component k is the sum over its steps, :math:`r_{k,i}`. Then

    .. math::
        \tilde A_{k,i} = \frac{r_{k,i} - \operatorname{mean}_{j \in g} r_{k,j}}
                              {\operatorname{std}_{j \in g} r_{k,j} + \epsilon},\qquad
        S_i = \sum_k w_k \tilde A_{k,i}

        A_i = \frac{S_i - \operatorname{mean}_{B} S}{\operatorname{std}_{B} S + \epsilon}

    broadcast to every step of trajectory i; g is i's task group, B every trajectory
    of the batch, :math:`w_k` = ``component_weights`` (default all 1).
    ``norm_by_std=False`` drops the division in the per-component step (the batch step
    always divides: it is what keeps the scale independent of K). A component whose
    values are equal within a group contributes 0 there; a batch whose sums are all
    equal gets 0. The ``reward`` column is not used: the components are the rewards.

    Source: Liu et al. 2026, "GDPO: Group reward-Decoupled Normalization Policy
    Optimization for Multi-reward RL Optimization", arXiv:2601.05242 (group-wise
    normalisation of each reward, sum, then batch-wise normalisation). Checked against
    the paper's abstract and summaries; no reference code was compared.

    Choices the paper leaves open, ours: statistics are over trajectories, one sample
    each, in both steps (the paper's samples are single responses); a trajectory's
    component is the undiscounted sum over its steps; the batch step includes the
    trajectories of degenerate groups (their sum is 0), as every response of the batch
    counts in the paper's batch statistics; std is the sample std (n - 1).

    When to use: several rewards of different scales and difficulty (correctness and
    format, tests passed and format, attribute/option/price/type matches), where GRPO on
    their sum maps different combinations to the same advantage.
    """
    matrix = row_matrix(batch, "reward_components", reward_components, "gdpo")
    n_components = matrix.shape[1]
    weights = np.ones(n_components)
    if component_weights is not None:
        weights = np.asarray(list(component_weights), dtype=np.float64)
        if weights.shape != (n_components,):
            raise ValueError(
                f"credit estimator 'gdpo': `component_weights` has {weights.size} weights but "
                f"`reward_components` has {n_components} columns; give one weight per column"
            )
    per_traj = trajectory_sums(batch, matrix)  # (n_traj, K)
    # one normalisation call for all components: key = (task group, component)
    keys = batch.traj_group[:, None] * n_components + np.arange(n_components)
    normalized = ops.normalize_in_groups(
        per_traj.reshape(-1),
        keys.reshape(-1),
        batch.n_groups * n_components,
        scale=norm_by_std,
        epsilon=epsilon,
    ).advantage.reshape(per_traj.shape)
    total = normalized @ weights
    whole = ops.normalize_in_groups(
        total, np.zeros(batch.n_traj, dtype=np.int64), 1, scale=True, epsilon=epsilon
    ).advantage
    return whole[batch.traj]
