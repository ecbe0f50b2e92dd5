"""Trajectory-graph credit: SALT (steps merged into one node share its trajectories' advantage)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from agentgym.credit import ops
from agentgym.credit.batch import CreditBatch
from agentgym.credit.columns import prefix_codes, row_ids
from agentgym.credit.registry import PositiveFloat, register_estimator

BaseAdvantage = Literal["grpo", "rloo"]
NodeKey = Literal["state_action", "history_action"]


def trajectory_advantage(
    batch: CreditBatch, base: BaseAdvantage, *, norm_by_std: bool, epsilon: float
) -> np.ndarray:
    """One base advantage per trajectory: ``grpo``'s (over trajectories) or ``rloo``'s."""
    if base == "grpo":
        return ops.normalize_in_groups(
            batch.traj_return, batch.traj_group, batch.n_groups, scale=norm_by_std, epsilon=epsilon
        ).advantage
    baseline = ops.leave_one_out_baseline(
        batch.traj_return, np.ones(batch.n_traj), batch.traj_group, batch.n_groups
    )
    return batch.traj_return - baseline


def mean_over_trajectories(
    batch: CreditBatch, node: np.ndarray, n_nodes: int, per_traj: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per node: (mean of ``per_traj`` over the distinct trajectories with a row in it, count).

    A trajectory that visits a node twice counts once. Each node's sum runs over its
    trajectories in ascending trajectory code, so it does not depend on row order.
    """
    pair, n_pairs = ops.combine_keys(node, n_nodes, batch.traj, batch.n_traj)
    # pair codes are sorted by (node, trajectory): one entry per distinct pair
    node_of_pair = np.empty(n_pairs, dtype=np.int64)
    traj_of_pair = np.empty(n_pairs, dtype=np.int64)
    node_of_pair[pair] = node
    traj_of_pair[pair] = batch.traj
    total = ops.segment_sum(per_traj[traj_of_pair], node_of_pair, n_nodes)
    count = np.bincount(node_of_pair, minlength=n_nodes)
    return total / np.maximum(count, 1), count


@register_estimator("salt")
def salt(
    batch: CreditBatch,
    *,
    action: np.ndarray | None = None,
    node: NodeKey = "state_action",
    base: BaseAdvantage = "grpo",
    norm_by_std: bool = True,
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""SALT: a step's advantage is the mean base advantage of the trajectories through its node.

    The steps of a task group g are merged into the nodes of a trajectory graph. With
    ``node="state_action"`` a node is a (state, action) pair; with
    ``node="history_action"`` it is (the trajectory's whole state sequence
    :math:`s_0..s_t`, action), so steps merge only when they were reached through the same
    states. With :math:`A_j` the base advantage of trajectory j (``grpo``, or ``rloo``
    with ``base="rloo"``):

    .. math::
        A_{i,t} = \frac{1}{|T(v)|} \sum_{j \in T(v)} A_j, \qquad
        v = \text{node}(s_{i,t}, a_{i,t}),\quad
        T(v) = \{j \in g : \text{some step of } j \text{ is in } v\}

    Each trajectory counts once per node, however often it visits it. A step shared by
    successes and failures averages toward 0; a step only one trajectory took keeps that
    trajectory's advantage exactly, so with all nodes distinct SALT is its base estimator.

    Inputs: ``state`` (the batch's state keys, ``info["state_key"]``) and ``action`` (the
    parsed action text per row, ``""`` where the response did not parse; an unparsed
    step is the action ``""`` like any other). ``norm_by_std`` and ``epsilon`` are
    ``grpo``'s (unused with ``base="rloo"``).

    Source: Li et al. 2026, "SALT: Step-level Advantage Assignment for Long-horizon Agents
    via Trajectory Graph", arXiv:2510.20022 (Findings of EACL 2026). Only the abstract
    could be checked here (no paper text or reference code was reachable); the
    definition implemented is the one in agentgym's issue 14, and every choice below is
    ours:

    * what a node is: the env's ``state_key`` plus the action text, compared exactly
      (the paper builds its graph from the trajectories' observations and actions);
      the ``history_action`` option keys on the full state sequence of the trajectory,
      built from the batch's own ``state`` column (previous actions are not part of it:
      a state key is expected to change when an action matters);
    * the merge is an unweighted mean over distinct trajectories (a trajectory looping
      through a node is not counted per visit);
    * the base advantage is over trajectories, one sample each (``grpo``'s default); a
      task group with one trajectory gets 0.

    When to use: long-horizon tasks with outcome rewards where rollouts of one task share
    many steps (the same search, the same opening moves): shared steps stop being pushed
    up and down by the outcome, decisive steps keep the full signal.
    """
    state = batch.require_state("salt")
    action_code, n_actions = row_ids(batch, "action", action, "salt")
    if node == "state_action":
        where, n_where = ops.combine_keys(batch.group, batch.n_groups, state, batch.n_states)
    else:
        where, n_where = prefix_codes(batch, state, batch.n_states)
    node_key, n_nodes = ops.combine_keys(where, n_where, action_code, n_actions)
    per_traj = trajectory_advantage(batch, base, norm_by_std=norm_by_std, epsilon=epsilon)
    value, _ = mean_over_trajectories(batch, node_key, n_nodes, per_traj)
    return value[node_key]
