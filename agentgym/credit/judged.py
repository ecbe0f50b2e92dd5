"""Estimators whose signal comes from a judge: ArenaRL (tournament placements) and MAPO
(per-turn judge scores). The judge itself runs before credit, in the ``arena`` and
``turn_judge`` input providers; these functions only turn its output into advantages.
"""

from __future__ import annotations

import numpy as np

from agentgym.credit import ops
from agentgym.credit.anchor import NormMode
from agentgym.credit.batch import CreditBatch
from agentgym.credit.registry import PositiveFloat, UnitInterval, register_estimator
from agentgym.credit.turn import turn_normalized


def _required(batch: CreditBatch, name: str, values: np.ndarray | None, who: str) -> np.ndarray:
    if values is None:
        raise ValueError(
            f"credit estimator {who!r} needs `{name}` (one value per row), filled by its "
            "input provider in training"
        )
    arr = batch.row_array(name, values).astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"`{name}` has a non-finite value at row {int(np.argmax(bad))}")
    return arr


@register_estimator("arenarl")
def arenarl(
    batch: CreditBatch,
    *,
    arena_score: np.ndarray | None = None,
    norm_by_std: bool = True,
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""ArenaRL: the trajectory's tournament placement, normalised within its group.

    .. math::
        s_i = 1 - \frac{\mathrm{rank}_i}{N - 1},\qquad
        A_{i,t} = \frac{s_i - \operatorname{mean}_{j \in g} s_j}
                       {\operatorname{std}_{j \in g} s_j + \epsilon}

    for every step t of trajectory i, where :math:`\mathrm{rank}_i` (0 = champion) is the
    placement in the group's seeded single-elimination tournament judged pairwise (the
    ``arena`` input provider fills ``arena_score`` = :math:`s_i`). Placements replace the
    environment reward entirely: the judge's ranking is the signal.

    Source: Zhang et al. 2026, "ArenaRL: Scaling RL for Open-Ended Agents via
    Tournament-based Relative Ranking" (arXiv:2601.06487); the linear placement map and
    the group mean/std normalisation are those of its reference code (Alibaba-NLP/qqr);
    the paper calls the map a quantile reward mapping. Statistics count each trajectory
    once; std is the sample std (as ``torch.std`` in the reference). ``norm_by_std=False``
    only centres.

    When to use: open-ended tasks with no verifiable reward, where a pairwise judge tells
    trajectories apart better than a pointwise score.
    """
    score = _required(batch, "arena_score", arena_score, "arenarl")
    per_traj = np.zeros(batch.n_traj)
    per_traj[batch.traj] = score
    norm = ops.normalize_in_groups(
        per_traj, batch.traj_group, batch.n_groups, scale=norm_by_std, epsilon=epsilon
    )
    return norm.advantage[batch.traj]


@register_estimator("mapo")
def mapo(
    batch: CreditBatch,
    *,
    judge_score: np.ndarray | None = None,
    gamma: UnitInterval = 0.95,
    turn_weight: UnitInterval = 0.5,
    env_reward_weight: float = 0.0,
    mode: NormMode = "mean_std_norm",
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""MAPO: Monte-Carlo returns of per-turn judge scores, mixed turn/batch normalisation.

    .. math::
        r_{i,t} = J_{i,t} + w\,r^{env}_{i,t},\qquad
        G_{i,t} = \sum_{k \ge 0} \gamma^k r_{i,t+k},\qquad
        A_{i,t} = \lambda\, A^{turn}_{i,t} + (1 - \lambda)\, A^{batch}_{i,t}

    with :math:`J_{i,t}` the judge's score of turn t in [0, 1] (the ``turn_judge`` input
    provider fills ``judge_score``), :math:`w` = ``env_reward_weight`` (0: the judge's
    scores are the rewards, as in the paper), :math:`A^{turn}` the return normalised
    among the group's rows of the same turn index and :math:`A^{batch}` normalised over
    all rows of the batch -- exactly the ``mixed`` estimator run on these rewards
    (:math:`\lambda` = ``turn_weight``).

    Source: Zhang et al. 2026, "MAPO: Mixed Advantage Policy Optimization for Long-Horizon
    Multi-Turn Dialogue" (arXiv:2603.06194). The paper's default :math:`\lambda` was not
    available to us (0.5 here, as ``mixed``); no reference code was compared.

    When to use: multi-turn tasks where a judge can rate turns (dialogue, open-ended
    tool use) and outcome-only rewards give too little signal per turn.
    """
    score = _required(batch, "judge_score", judge_score, "mapo")
    reward = score + env_reward_weight * batch.reward
    returns = ops.discounted_return_to_go(
        reward, batch.traj, batch.step, batch.traj_len, gamma, order=batch.order
    )
    scale = mode == "mean_std_norm"
    per_turn = turn_normalized(batch, returns, scale=scale, epsilon=epsilon)
    whole = ops.normalize_in_groups(
        returns, np.zeros(batch.n_rows, dtype=np.int64), 1, scale=scale, epsilon=epsilon
    ).advantage
    return turn_weight * per_turn + (1.0 - turn_weight) * whole
