"""Credit on rollouts that branch: TreePO's subtree advantage and LoGo-GRPO's local term.

Both read the structure of the rollouts from two inputs (:mod:`agentgym.inputs`):

* ``node``: the stored step of each row. A ``tree`` rollout's leaves are trajectories
  that share their common prefix: the rows of a shared step (one per leaf below it)
  have one ``node``. Without trees every row is its own node.
* ``branch``: for rows of a ``local`` re-roll (a trajectory that starts at an
  intermediate state of another), the source step it re-plays; -1 for trajectories that
  start at reset. A state's re-rolls are a task group of their own.

The leaves below a node form its *subtree*; a node with two or more distinct children is
a *branch point*, and its children are *siblings*: continuations of exactly the same
state.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from agentgym.credit import ops
from agentgym.credit.batch import CreditBatch, intern_ids
from agentgym.credit.columns import parent_codes
from agentgym.credit.registry import NonNegativeFloat, PositiveFloat, register_estimator

__all__ = ["logo", "node_codes", "treepo"]


def node_codes(
    batch: CreditBatch, node: np.ndarray | None, estimator: str
) -> tuple[np.ndarray, int]:
    """Dense node code per row (``None``: every row its own node); (codes, n_nodes).

    Rows of one node must be one step of one task group (a shared step is the same step
    of every leaf below it), each in a different trajectory; a ValueError names the first
    row that breaks this.
    """
    if node is None:
        return np.arange(batch.n_rows, dtype=np.int64), batch.n_rows
    codes, n_nodes = intern_ids(batch.row_array("node", node), "node")
    _, first = np.unique(codes, return_index=True)  # the first row of each node
    anchor = first[codes]
    bad = (batch.group != batch.group[anchor]) | (batch.step != batch.step[anchor])
    pair, n_pairs = ops.combine_keys(codes, n_nodes, batch.traj, batch.n_traj)
    bad |= (np.bincount(pair, minlength=n_pairs) > 1)[pair]
    if bad.any():
        raise ValueError(
            f"credit estimator {estimator!r}: `node` must name one step of one task group, "
            "once per trajectory (the shared steps of a tree's leaves); row "
            f"{int(np.argmax(bad))} breaks this"
        )
    return codes, n_nodes


def _subtrees(batch: CreditBatch, node: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per node: the number of leaves below it and their mean return."""
    size = np.bincount(node, minlength=n_nodes)
    total = ops.segment_sum(batch.traj_return[batch.traj], node, n_nodes)
    return size, total / np.maximum(size, 1)


@register_estimator("treepo")
def treepo(
    batch: CreditBatch,
    *,
    node: np.ndarray | None = None,
    aggregate: Literal["mean", "size"] = "mean",
    root_group: bool = True,
    norm: Literal["batch_std", "whiten", "none"] = "batch_std",
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""TreePO: a leaf's return against every subtree it belongs to, averaged; segments
    (shared steps) get the mean over their subtree.

    For leaf (trajectory) i of task group G, let :math:`\mathcal{S}_i` be the distinct
    leaf sets of the subtrees on its path that hold two or more leaves (the subtree of a
    root, of every branch point's child ...), plus G itself (``root_group``). With
    :math:`R` the episode return and :math:`\bar R_S` the mean return of the leaves of S:

    .. math::
        \hat A_i = \frac{1}{|\mathcal{S}_i|} \sum_{S \in \mathcal{S}_i}
                   \left(R_i - \bar R_S\right), \qquad
        A_i = \frac{\hat A_i}{\operatorname{std}_{j \in \text{batch}} \hat A_j + \epsilon}

        A_{\text{node}} = \frac{1}{|\text{leaves}(\text{node})|}
                          \sum_{i \in \text{leaves}(\text{node})} A_i

    ``aggregate="size"`` weighs each subgroup by :math:`|S|` (the paper's Eq. 6 variant);
    ``root_group=false`` drops G (the paper finds it comparable); ``norm="whiten"``
    also subtracts the batch mean (what the reference code does), ``"none"`` keeps the
    raw subgroup advantages. A group with one leaf gets 0.

    What it fixes: GRPO compares every leaf with the whole group, so when the responses
    of a group look alike, the few steps where a leaf's fate was decided get the same
    credit as the steps it shares with failing siblings. The subtree terms compare a
    leaf with the leaves that share its prefix, so credit concentrates where the tree
    branched and outcomes parted (the paper: "more accurate intra-response variations
    for the advantages to alleviate the obscurity brought by similar responses").

    Source: Li et al. 2025, "TreePO: Bridging the Gap of Policy Optimization and Efficacy
    and Inference Efficiency with Heuristic Tree-based Modeling", arXiv:2508.17445,
    Eq. 5 (and 6). Reference code: multimodal-art-projection/TreePO,
    ``compute_tree_reinforce_plus_plus_baseline_outcome_advantage``.

    Deviations, and why:

    * segments are environment steps (the paper's are fixed-length token segments of one
      response), and a subgroup is a distinct leaf set: depths where the tree does not
      branch add no repeated term (the paper's trees branch at every depth);
    * a shared step is stored and trained once, with the mean advantage of the leaves
      below it; the reference code trains every leaf's full sequence, so a shared
      segment gets the *sum* of its leaves' advantages in a token-mean loss;
    * the global normalisation is over trajectories, not tokens (the reference code's
      ``masked_whiten`` over all response tokens lets long responses weigh more), and
      by default divides by the std only, as the paper's Eq. 5 writes it;
    * a group with one leaf gets 0 (the reference code takes mean 0 there, so the raw
      return becomes the advantage).

    When to use: ``env.rollout.strategy: tree``. On independent rollouts (no shared
    steps) it is Dr. GRPO's mean-centred return with a batch-wide std.
    """
    codes, n_nodes = node_codes(batch, node, "treepo")
    size, mean = _subtrees(batch, codes, n_nodes)
    ret = batch.traj_return
    group_size = np.bincount(batch.traj_group, minlength=batch.n_groups)
    group_mean = ops.segment_sum(ret, batch.traj_group, batch.n_groups) / np.maximum(group_size, 1)

    # Along each path the leaf sets shrink (nested subtrees); a set is new where it
    # shrinks, and it is a subgroup when it still holds two leaves.
    parent_size = np.concatenate((size, group_size))[
        parent_codes(batch, codes, n_nodes + batch.group)
    ]
    new = (size[codes] < parent_size) & (size[codes] >= 2)
    weight = size.astype(np.float64) if aggregate == "size" else np.ones(n_nodes)
    row_weight = np.where(new, weight[codes], 0.0)
    row_term = row_weight * (ret[batch.traj] - mean[codes])
    total = ops.segment_sum(row_term, batch.traj, batch.n_traj)
    weights = ops.segment_sum(row_weight, batch.traj, batch.n_traj)
    if root_group:
        root_weight = (
            group_size[batch.traj_group].astype(np.float64) if aggregate == "size" else 1.0
        )
        in_group = group_size[batch.traj_group] >= 2
        total = total + np.where(in_group, root_weight * (ret - group_mean[batch.traj_group]), 0.0)
        weights = weights + np.where(in_group, root_weight, 0.0)
    leaf = np.where(weights > 0, total / np.maximum(weights, 1e-300), 0.0)

    if norm != "none" and leaf.size >= 2:
        centre = leaf.mean() if norm == "whiten" else 0.0
        leaf = (leaf - centre) / (leaf.std(ddof=1) + epsilon)
    # a stored step: the mean over the leaves of its subtree
    per_node = ops.segment_sum(leaf[batch.traj], codes, n_nodes) / np.maximum(size, 1)
    return per_node[codes]


@register_estimator("logo")
def logo(
    batch: CreditBatch,
    *,
    node: np.ndarray | None = None,
    branch: np.ndarray | None = None,
    local_weight: NonNegativeFloat = 1.0,
    scope: Literal["step", "continuation"] = "step",
    norm_by_std: bool = True,
    epsilon: PositiveFloat = 1e-6,
) -> np.ndarray:
    r"""LoGo-GRPO: a global GRPO term plus lambda times a local term among siblings that
    start from the same state.

    .. math::
        A_{i,t} = A^G_i + \lambda\, A^L_{i,t}

    :math:`A^G_i` is GRPO's advantage of trajectory i within its task group, over the
    trajectories that start at reset (local re-rolls get none: their end is not the
    episode's). :math:`A^L` is nonzero on the re-rolled steps only:

    * local re-rolls (``branch >= 0``; ``env.rollout.strategy: local``): the k re-rolls
      of one state are a group; :math:`A^L` of a re-roll is GRPO's advantage of its
      return (the re-rolled step plus its continuation) within that group, on its first
      step (``scope="continuation"``: on every step it played);
    * tree branch points (``node``; ``env.rollout.strategy: tree``): the children of a
      branch point are siblings, each valued by the mean return of the leaves below it;
      :math:`A^L` is GRPO's advantage of that value among the siblings, on the child's
      first step (the step stored once for its subtree).

    With ``local_weight=0``, or on rollouts without re-rolls or branch points, this is
    GRPO.

    What it fixes: once trajectories diverge, their later states differ, so comparing
    whole trajectories (GRPO) judges a step by what happened in other states. Siblings
    start from exactly the same state (a snapshot), so the local comparison is fair.

    Source: Yan et al. 2026, "Memory-R2: Fair Credit Assignment for Long-Horizon
    Memory-Augmented LLM Agents", arXiv:2605.21768 (LoGo-GRPO: "global objective ...
    trajectory-level rewards, local rerollouts compare ... from the same intermediate
    state"). Only the abstract and the authors' README (ahmedehabb/Memory-R2) were read;
    the formula above is agentgym issue 15's reading of them. Choices that are ours: the
    local return is the environment's reward over the re-roll (Memory-R2 scores a
    memory state with a question-answering judge); the two terms are added per step
    with weight lambda rather than as two losses; the tree branch-point term is ours.

    When to use: ``env.rollout.strategy: local`` (or ``tree``), in environments whose
    early actions change the state that later ones are judged in (memory, files, a
    search history), with rewards that come step by step, so that a short continuation
    already tells re-rolls apart; with an outcome reward only at the end, set the
    re-rolls' ``continuation: -1``.
    """
    nodes, n_nodes = node_codes(batch, node, "logo")
    if branch is None:
        local_traj = np.zeros(batch.n_traj, dtype=bool)
    else:
        starts = batch.row_array("branch", branch, integer=True)[batch.order[batch.traj_start]]
        local_traj = starts >= 0
    scale = norm_by_std
    ret = batch.traj_return

    # global: GRPO over the trajectories from reset; re-roll groups hold none
    keys = np.where(local_traj, batch.n_groups + batch.traj_group, batch.traj_group)
    norm = ops.normalize_in_groups(ret, keys, 2 * batch.n_groups, scale=scale, epsilon=epsilon)
    advantage = np.where(local_traj, 0.0, norm.advantage)[batch.traj]
    if local_weight == 0.0:
        return advantage

    # local (re-rolls): GRPO within each re-roll group, on the re-rolled step
    local = np.zeros(batch.n_rows)
    rolled = np.where(local_traj, norm.advantage, 0.0)[batch.traj]
    on = local_traj[batch.traj] & ((batch.step == 0) | (scope == "continuation"))
    local[on] = rolled[on]

    # local (trees): siblings under a branch point, valued by their subtrees' mean return
    _, mean = _subtrees(batch, nodes, n_nodes)
    parent = parent_codes(batch, nodes, n_nodes + batch.group)
    child_of = np.full(n_nodes, -1, dtype=np.int64)
    child_of[nodes] = parent
    real = child_of < n_nodes  # children of a stored step, not the roots of a group
    children = np.bincount(child_of[real], minlength=n_nodes)
    sibling = real & (children[np.minimum(child_of, n_nodes - 1)] >= 2)
    if sibling.any():
        kids = np.flatnonzero(sibling)
        parents, n_parents = intern_ids(child_of[kids], "parent")
        value = ops.normalize_in_groups(
            mean[kids], parents, n_parents, scale=scale, epsilon=epsilon
        )
        per_node = np.zeros(n_nodes)
        per_node[kids] = value.advantage
        local += per_node[nodes]
    return advantage + local_weight * local
