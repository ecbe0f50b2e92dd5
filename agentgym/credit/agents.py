"""Multi-agent credit: Dr. MAS (episode returns normalised per task group and agent)."""

from __future__ import annotations

import numpy as np

from agentgym.credit import ops
from agentgym.credit.batch import CreditBatch
from agentgym.credit.columns import row_ids
from agentgym.credit.episode import StatsOver
from agentgym.credit.registry import PositiveFloat, register_estimator


@register_estimator("drmas")
def drmas(
    batch: CreditBatch,
    *,
    agent: np.ndarray | None = None,
    norm_by_std: bool = True,
    epsilon: PositiveFloat = 1e-6,
    stats_over: StatsOver = "steps",
) -> np.ndarray:
    r"""Dr. MAS: agent-wise normalisation of the episode return.

    Rows are the steps of every agent; ``agent`` names the agent acting at each row
    (``info["agent_id"]``). Within task group g, the bucket of agent k holds the rows of
    agent k, and each row is normalised with its bucket's statistics only:

    .. math::
        A_{i,t} = \frac{R_i - \mu_{g,k}}{\sigma_{g,k} + \epsilon},\qquad
        k = \text{agent}(i,t)

    where :math:`\mu_{g,k}, \sigma_{g,k}` are the mean and sample std of :math:`R_i`
    over the bucket's rows (``stats_over="steps"``: a trajectory in which agent k acted
    three times counts three times, as in the reference code), or over the distinct
    trajectories in which agent k acted (``stats_over="trajectories"``). A bucket with a
    single sample, or with equal returns, gets 0. ``norm_by_std=False`` only centres.
    With one agent this is ``grpo`` with ``stats_over="steps"``.

    Source: Feng, Zheng, He, Zhang, An 2026, "Dr. MAS: Stable Reinforcement Learning for
    Multi-Agent LLM Systems", arXiv:2602.08847. Reference code: langfengQ/DrMAS
    (``algorithm.group_by_agent_id``: the GRPO group index becomes (uid, agent_id) and
    every step row of that agent is a sample).

    Deviations from the reference code: a bucket with one sample gets 0 (the code uses
    mean 0 and std 1 there, i.e. the raw return); equal returns give exactly 0;
    ``stats_over="trajectories"`` is ours. :math:`R_i` is the trajectory's return, the
    team's shared outcome: per-agent rewards, if an environment has them, belong in
    the reward column of that agent's steps.

    When to use: several roles (planner, searcher, answerer) played by one or more
    models in one episode, whose turns see different reward levels: one baseline for all
    roles gives some of them a constant bias and inflates the gradient norm.
    """
    agent_code, n_agents = row_ids(batch, "agent", agent, "drmas")
    bucket, n_buckets = ops.combine_keys(batch.group, batch.n_groups, agent_code, n_agents)
    if stats_over == "steps":
        return ops.normalize_in_groups(
            batch.traj_return[batch.traj], bucket, n_buckets, scale=norm_by_std, epsilon=epsilon
        ).advantage
    # one sample per (bucket, trajectory) pair
    pair, n_pairs = ops.combine_keys(bucket, n_buckets, batch.traj, batch.n_traj)
    bucket_of_pair = np.empty(n_pairs, dtype=np.int64)
    traj_of_pair = np.empty(n_pairs, dtype=np.int64)
    bucket_of_pair[pair] = bucket
    traj_of_pair[pair] = batch.traj
    per_pair = ops.normalize_in_groups(
        batch.traj_return[traj_of_pair],
        bucket_of_pair,
        n_buckets,
        scale=norm_by_std,
        epsilon=epsilon,
    ).advantage
    return per_pair[pair]
