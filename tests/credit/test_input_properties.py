"""Invariants of the estimators that take per-row inputs (SALT, TEMPO, Dr. MAS, GDPO) and of
rloo's verl-agent variant (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from agentgym.credit import CreditBatch, compute_advantages, ops
from agentgym.credit.batch import intern_ids
from agentgym.credit.columns import _prefix_codes_by_level, _prefix_codes_sorted

from .batches import DYADIC_REWARDS, Columns, batches
from .test_properties import FAST, run, same_partition


def unique_actions(columns: Columns) -> Columns:
    """Every row its own action: every SALT node and every TEMPO branch is a singleton."""
    action = np.empty(len(columns), dtype=object)
    action[:] = [f"a{i}" for i in range(len(columns))]
    return replace(columns, action=action)


def one_action(columns: Columns) -> Columns:
    action = np.empty(len(columns), dtype=object)
    action[:] = ["go"] * len(columns)
    return replace(columns, action=action)


@FAST
@given(
    columns=batches(),
    norm_by_std=st.booleans(),
    node=st.sampled_from(["state_action", "history_action"]),
)
def test_salt_with_distinct_nodes_is_its_base_estimator(columns, norm_by_std, node):
    distinct = unique_actions(columns)
    salt = run("salt", distinct, norm_by_std=norm_by_std, node=node)
    np.testing.assert_array_equal(salt, run("grpo", distinct, norm_by_std=norm_by_std))
    np.testing.assert_array_equal(run("salt", distinct, base="rloo"), run("rloo", distinct))


@FAST
@given(columns=batches())
def test_a_salt_node_shared_by_the_whole_group_gets_the_group_mean(columns):
    # one state and one action everywhere: each group's rows form one node holding all
    # its trajectories, so every row gets the mean GRPO advantage of its group (0)
    same = replace(one_action(columns), state=np.zeros(len(columns), dtype=np.int64))
    np.testing.assert_allclose(run("salt", same), 0.0, rtol=0, atol=1e-9)


@FAST
@given(columns=batches(), node=st.sampled_from(["state_action", "history_action"]))
def test_salt_rows_of_one_node_share_one_advantage(columns, node):
    advantage = run("salt", columns, node=node)
    batch = CreditBatch.from_columns(**columns.kwargs())
    history: dict[int, tuple] = {}
    for start, length in zip(batch.traj_start, batch.traj_len, strict=True):
        rows = batch.order[start : start + length]
        for t, row in enumerate(rows):
            history[int(row)] = tuple(columns.state[rows[: t + 1]].tolist())
    seen: dict = {}
    for i in range(len(columns)):
        where = columns.state[i] if node == "state_action" else history[i]
        key = (columns.group[i], where, columns.action[i])
        assert advantage[i] == seen.setdefault(key, advantage[i])


@FAST
@given(columns=batches(), base=st.sampled_from(["grpo", "rloo"]))
def test_tempo_without_td_is_its_base_estimator(columns, base):
    np.testing.assert_array_equal(
        run("tempo", columns, td_weight=0.0, base=base), run(base, columns)
    )


@FAST
@given(columns=batches(equal_lengths=True), td_weight=st.sampled_from([0.5, 1.0, 3.0]))
def test_tempo_is_grpo_exactly_where_the_tree_never_branches(columns, td_weight):
    # one action everywhere and equal lengths per group: every node holds its whole group
    same = one_action(columns)
    np.testing.assert_array_equal(run("tempo", same, td_weight=td_weight), run("grpo", same))


@FAST
@given(columns=batches(), td_weight=st.sampled_from([0.5, 1.0, 2.0]))
def test_tempo_td_telescopes_to_the_leaf_value(columns, td_weight):
    # summed over a trajectory's steps, the TD terms telescope: V(leaf) - V(root), and
    # with distinct actions every leaf holds one trajectory, so V(leaf) = A_i
    distinct = unique_actions(columns)
    batch = CreditBatch.from_columns(**distinct.kwargs())
    base = run("grpo", distinct)
    td = (run("tempo", distinct, td_weight=td_weight) - base) / td_weight
    per_traj = np.bincount(batch.traj, weights=td, minlength=batch.n_traj)
    first_row = batch.order[batch.traj_start]
    root = np.bincount(batch.traj_group, weights=base[first_row], minlength=batch.n_groups)
    root /= np.bincount(batch.traj_group, minlength=batch.n_groups)
    expected = base[first_row] - root[batch.traj_group]
    np.testing.assert_allclose(per_traj, expected, rtol=0, atol=1e-9)


@FAST
@given(columns=batches())
def test_drmas_with_one_agent_is_grpo_over_rows(columns):
    one = replace(columns, agent=np.array(["solo"] * len(columns)))
    np.testing.assert_array_equal(run("drmas", one), run("grpo", one, stats_over="steps"))
    np.testing.assert_array_equal(run("drmas", one, stats_over="trajectories"), run("grpo", one))


@FAST
@given(columns=batches(), agents=st.integers(1, 3))
def test_drmas_buckets_do_not_see_each_other(columns, agents):
    # changing the returns of trajectories in which an agent never acts leaves that
    # agent's rows unchanged: compare agent0's rows with and without the others' rows
    agent = np.array([f"agent{hash(int(t)) % agents}" for t in columns.traj])
    labelled = replace(columns, agent=agent)
    advantage = run("drmas", labelled)
    for name in set(agent.tolist()):
        rows = np.flatnonzero(agent == name)
        alone = labelled.take(rows)
        np.testing.assert_allclose(run("drmas", alone), advantage[rows], rtol=0, atol=1e-12)


@FAST
@given(columns=batches(rewards=DYADIC_REWARDS), data=st.data())
def test_gdpo_ignores_constant_shifts_of_a_component_within_a_group(columns, data):
    # adding c_g,k to component k of one step of every trajectory of group g shifts
    # that group's component k by c: the group normalisation removes it
    batch = CreditBatch.from_columns(**columns.kwargs())
    parts = columns.reward_components.copy()
    shifts = np.array(
        data.draw(
            st.lists(
                st.lists(
                    st.sampled_from([-2.0, 0.5, 4.0]),
                    min_size=parts.shape[1],
                    max_size=parts.shape[1],
                ),
                min_size=batch.n_groups,
                max_size=batch.n_groups,
            )
        )
    )
    last = batch.order[batch.traj_start + batch.traj_len - 1]
    parts[last] += shifts[batch.group[last]]
    shifted = replace(columns, reward_components=parts)
    np.testing.assert_allclose(run("gdpo", shifted), run("gdpo", columns), rtol=0, atol=1e-9)


@FAST
@given(columns=batches(rewards=DYADIC_REWARDS), data=st.data())
def test_gdpo_component_order_does_not_matter(columns, data):
    k = columns.reward_components.shape[1]
    perm = np.array(data.draw(st.permutations(range(k))))
    weights = np.array(
        data.draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=k, max_size=k))
    )
    swapped = replace(columns, reward_components=columns.reward_components[:, perm])
    np.testing.assert_allclose(
        run("gdpo", swapped, component_weights=weights[perm].tolist()),
        run("gdpo", columns, component_weights=weights.tolist()),
        rtol=0,
        atol=1e-9,
    )


@FAST
@given(columns=batches())
def test_gdpo_is_unit_scale_over_the_batch(columns):
    batch = CreditBatch.from_columns(**columns.kwargs())
    advantage = run("gdpo", columns)[batch.order[batch.traj_start]]  # one per trajectory
    # (S - mean) / (std + eps): centred, and a spread of at most 1
    assert abs(advantage.mean()) < 1e-9
    if advantage.size > 1:
        assert advantage.std(ddof=1) <= 1.0 + 1e-9


@FAST
@given(columns=batches())
def test_rloo_row_variant_is_the_trajectory_variant_times_m_minus_l_over_m_minus_1(columns):
    batch = CreditBatch.from_columns(**columns.kwargs())
    rows_in_group = np.bincount(batch.group, minlength=batch.n_groups)[batch.group]
    own_rows = batch.traj_len[batch.traj]
    factor = np.where(
        rows_in_group > 1, (rows_in_group - own_rows) / np.maximum(rows_in_group - 1, 1), 0
    )
    row = compute_advantages("rloo", **columns.kwargs(), stats_over="steps", leave_out="row")
    trajectory = compute_advantages("rloo", **columns.kwargs(), stats_over="steps")
    np.testing.assert_allclose(row, trajectory * factor, rtol=0, atol=1e-9)


@FAST
@given(columns=batches(max_len=8, n_actions=2), with_states=st.booleans())
def test_both_prefix_tree_builders_give_the_same_nodes(columns, with_states):
    # the sorted (padded) builder serves similar lengths, the per-step one uneven lengths
    batch = CreditBatch.from_columns(**columns.kwargs())
    token, n_tokens = intern_ids(columns.action, "action")
    if with_states:
        token, n_tokens = ops.combine_keys(batch.state, batch.n_states, token, n_tokens)
    longest = int(batch.traj_len.max())
    flat, n_flat = _prefix_codes_sorted(batch, token, longest)
    by_level, n_level = _prefix_codes_by_level(batch, token, n_tokens, longest)
    assert n_flat == n_level == len(set(flat.tolist()))
    assert same_partition(flat, by_level)
