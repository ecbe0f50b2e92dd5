"""IGPO: information-gain turn rewards, normalised per group, discounted."""

from __future__ import annotations

import numpy as np

from agentgym.credit import ops
from agentgym.credit.batch import CreditBatch
from agentgym.credit.registry import PositiveFloat, UnitInterval, register_estimator


@register_estimator("igpo")
def igpo(
    batch: CreditBatch,
    *,
    info_gain: np.ndarray | None = None,
    gamma: UnitInterval = 0.95,
    norm_by_std: bool = True,
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""IGPO: turn rewards from information gain, normalised over the group, discounted.

    .. math::
        r_{i,t} = \mathrm{IG}_{i,t} + r^{env}_{i,t},\qquad
        \tilde r_{i,t} = \frac{r_{i,t} - \operatorname{mean}_{g} r}{\operatorname{std}_{g} r
        + \epsilon},\qquad
        A_{i,t} = \tilde r_{i,t} + \gamma A_{i,t+1}

    :math:`\mathrm{IG}_{i,t} = p_{t+1} - p_t` is the rise of the policy's probability of
    the gold answer over turn t (the ``gold_belief`` input provider fills ``info_gain``; 0
    on the last turn), :math:`r^{env}` the step reward (on the last turn the outcome; before
    it 0 except invalid-action penalties). Mean and std are over *all turns of all
    trajectories* of the group together (the "joint" normalisation of the paper), and the
    accumulation runs over each trajectory's own turns.

    Source: Wang et al. 2026, "Information Gain-based Policy Optimization: A Simple and
    Effective Approach for Multi-Turn LLM Agents" (arXiv:2510.14967). Deviations: the
    step rewards before the last turn (invalid-action penalties) are added to the
    information gain rather than dropped; std is the sample std. ``gamma`` is
    ``algorithm.gamma`` in training unless ``algorithm.igpo.gamma`` sets it.

    When to use: search and QA agents whose tasks have a gold answer, where outcome-only
    groups are often all wrong (no signal) yet some turns did find the answer.
    """
    if info_gain is None:
        raise ValueError(
            "credit estimator 'igpo' needs `info_gain` (one value per row), filled by the "
            "gold_belief input provider in training"
        )
    gain = batch.row_array("info_gain", info_gain).astype(np.float64)
    reward = gain + batch.reward
    norm = ops.normalize_in_groups(
        reward, batch.group, batch.n_groups, scale=norm_by_std, epsilon=epsilon
    ).advantage
    return ops.discounted_return_to_go(
        norm, batch.traj, batch.step, batch.traj_len, gamma, order=batch.order
    )
