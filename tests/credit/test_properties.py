"""Invariants of the estimators (hypothesis) and agreement with the loop references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentgym.credit import CreditBatch, compute_advantages, estimator_params
from agentgym.credit.anchor import step_groups
from agentgym.credit.hierarchical import history_groups

from . import reference
from .batches import DYADIC_REWARDS, Columns, batches

ALL = [
    "grpo",
    "rloo",
    "median",
    "gigpo",
    "hgpo",
    "turn",
    "mixed",
    "stratified",
    "salt",
    "tempo",
    "drmas",
    "gdpo",
]
# built on the episode return only (no discounting): shifting returns changes nothing
EPISODE_LEVEL = ["grpo", "rloo", "median", "stratified", "salt", "tempo", "drmas"]
NEEDS = {
    "stratified": ("stratum",),
    "salt": ("action",),
    "tempo": ("action",),
    "drmas": ("agent",),
    "gdpo": ("reward_components",),
}
"""The per-row inputs each estimator takes from the columns."""
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(name: str, columns: Columns, **params) -> np.ndarray:
    for needed in NEEDS.get(name, ()):
        params.setdefault(needed, columns.input(needed))
    return compute_advantages(name, **columns.kwargs(), **params)


def loop(name: str, columns: Columns, **params) -> np.ndarray:
    for needed in NEEDS.get(name, ()):
        params.setdefault(needed, columns.input(needed).tolist())
    return np.array(reference.LOOPS[name](**columns.lists(), **params))


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when the labellings a and b group the rows identically."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


# --- agreement with the plain-loop implementations --------------------------------

LOOP_CASES = [
    ("grpo", {}),
    ("grpo", {"norm_by_std": False, "stats_over": "steps"}),
    ("rloo", {}),
    ("rloo", {"stats_over": "steps"}),
    ("rloo", {"stats_over": "steps", "leave_out": "row"}),
    ("median", {}),
    ("median", {"scale": "none", "stats_over": "steps"}),
    ("gigpo", {}),
    ("gigpo", {"gamma": 1.0, "mode": "mean_norm", "step_advantage_w": 0.3}),
    ("gigpo", {"gamma": 0.5, "stats_over": "steps"}),
    ("hgpo", {}),
    ("hgpo", {"history_length": 0, "gamma": 1.0}),
    ("hgpo", {"history_length": 3, "alpha": 2.0, "mode": "mean_norm"}),
    ("hgpo", {"history_length": 1, "alpha": 0.5, "weight_offset": 1, "include_episode": True}),
    ("hgpo", {"alpha": 0.0, "include_episode": True}),
    ("hgpo", {"weight_offset": 0, "history_length": 1}),
    ("turn", {}),
    ("turn", {"gamma": 1.0, "mode": "mean_norm"}),
    ("mixed", {}),
    ("mixed", {"turn_weight": 0.0, "gamma": 0.8}),
    ("stratified", {}),
    ("stratified", {"alpha": 1.0, "norm_by_std": False}),
    ("salt", {}),
    ("salt", {"node": "history_action"}),
    ("salt", {"base": "rloo"}),
    ("salt", {"norm_by_std": False, "node": "history_action"}),
    ("tempo", {}),
    ("tempo", {"td_weight": 0.5, "prefix": "states_and_actions"}),
    ("tempo", {"base": "rloo", "td_weight": 2.0}),
    ("drmas", {}),
    ("drmas", {"stats_over": "trajectories"}),
    ("drmas", {"norm_by_std": False}),
    ("gdpo", {}),
    ("gdpo", {"norm_by_std": False}),
]


@pytest.mark.parametrize(("name", "params"), LOOP_CASES)
@FAST
@given(columns=batches())
def test_vectorised_matches_the_loop(name, params, columns):
    np.testing.assert_allclose(
        run(name, columns, **params), loop(name, columns, **params), rtol=0, atol=1e-6
    )


# --- invariants ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@FAST
@given(columns=batches(shuffle=False), data=st.data())
def test_permuting_rows_permutes_the_output(name, columns, data):
    perm = np.array(data.draw(st.permutations(range(len(columns)))))
    expected = run(name, columns)[perm]
    np.testing.assert_allclose(run(name, columns.take(perm)), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ALL)
@FAST
@given(columns=batches(rewards=DYADIC_REWARDS), shift=st.sampled_from([-2.0, 0.5, 3.0, 100.0]))
def test_shifting_every_return_changes_nothing(name, columns, shift):
    # Adding c to each trajectory's last reward shifts its episode return by c and,
    # with gamma = 1, every return-to-go by c: a pure shift of all compared values.
    batch = CreditBatch.from_columns(**columns.kwargs())
    last = batch.order[batch.traj_start + batch.traj_len - 1]
    shifted = columns.reward.copy()
    shifted[last] += shift
    params = {"gamma": 1.0} if "gamma" in estimator_params(name) else {}
    np.testing.assert_allclose(
        run(name, columns.with_reward(shifted), **params),
        run(name, columns, **params),
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize("name", [*EPISODE_LEVEL, "turn"])
@FAST
@given(
    columns=batches(rewards=DYADIC_REWARDS, equal_lengths=True),
    shift=st.sampled_from([-1.0, 0.25, 7.0]),
    gamma=st.sampled_from([0.5, 0.9, 1.0]),
)
def test_adding_a_constant_to_every_reward_changes_nothing(name, columns, shift, gamma):
    # With equal lengths inside each group, a per-step constant shifts every compared
    # value of a group (episode returns, or returns-to-go of one turn) by the same amount.
    params = {"gamma": gamma} if name == "turn" else {}
    np.testing.assert_allclose(
        run(name, columns.with_reward(columns.reward + shift), **params),
        run(name, columns, **params),
        rtol=0,
        atol=1e-6,
    )


@FAST
@given(
    columns=batches(),
    mode=st.sampled_from(["mean_norm", "mean_std_norm"]),
    stats_over=st.sampled_from(["trajectories", "steps"]),
)
def test_gigpo_without_step_weight_is_grpo(columns, mode, stats_over):
    gigpo = run("gigpo", columns, step_advantage_w=0.0, mode=mode, stats_over=stats_over)
    grpo = run("grpo", columns, norm_by_std=mode == "mean_std_norm", stats_over=stats_over)
    np.testing.assert_array_equal(gigpo, grpo)


@FAST
@given(columns=batches())
def test_gigpo_step_part_is_zero_when_every_state_is_unique(columns):
    unique = Columns(**{**columns.__dict__, "state": np.arange(len(columns))})
    np.testing.assert_allclose(run("gigpo", unique), run("grpo", unique), rtol=0, atol=1e-12)


@FAST
@given(columns=batches(n_states=2), history_length=st.integers(0, 3))
def test_hgpo_level_one_groups_are_gigpo_step_groups(columns, history_length):
    batch = CreditBatch.from_columns(**columns.kwargs())
    levels = history_groups(batch, history_length)
    level_one = np.empty(batch.n_rows, dtype=np.int64)
    level_one[batch.order[levels[0].positions]] = levels[0].keys
    anchors, _ = step_groups(batch)
    assert levels[0].level == 1 and levels[0].positions.size == batch.n_rows
    assert same_partition(level_one, anchors)
    # deeper levels refine level one, and hold only rows with enough history
    for level in levels[1:]:
        rows = batch.order[level.positions]
        assert (batch.step[rows] >= level.level - 1).all()
        assert same_partition(level.keys * batch.n_rows + level_one[rows], level.keys)


@FAST
@given(columns=batches())
def test_hgpo_with_one_level_is_gigpo_step_part(columns):
    step_part = run("gigpo", columns) - run("gigpo", columns, step_advantage_w=0.0)
    np.testing.assert_allclose(run("hgpo", columns, history_length=0), step_part, atol=1e-9)


@pytest.mark.parametrize("name", ALL)
@FAST
@given(
    columns=batches(max_trajs=2, max_len=3),
    reward=st.sampled_from([0.0, 1.0, -1e12, 1e12, 1e-300, 5e-324]),
)
def test_degenerate_groups_stay_finite(name, columns, reward):
    # every episode return equal (reward on the last step only), many one-trajectory
    # groups, extreme magnitudes
    batch = CreditBatch.from_columns(**columns.kwargs())
    terminal = np.zeros(len(columns))
    terminal[batch.order[batch.traj_start + batch.traj_len - 1]] = reward
    advantage = run(name, columns.with_reward(terminal))
    assert np.isfinite(advantage).all()
    if name in EPISODE_LEVEL:
        assert (advantage == 0.0).all()


@pytest.mark.parametrize("name", ALL)
@FAST
@given(columns=batches(rewards=st.floats(-1e6, 1e6, allow_nan=False, width=64)))
def test_outputs_are_finite(name, columns):
    assert np.isfinite(run(name, columns)).all()


OPTION_CASES = [
    ("gigpo", {"similarity_threshold": 0.5}),
    ("gigpo", {"similarity_threshold": 0.5, "similarity": "jaccard", "stats_over": "steps"}),
    ("hgpo", {"history_length": 3, "weight_offset": 1, "include_episode": True}),
    ("median", {"stats_over": "steps"}),
]


@pytest.mark.parametrize(("name", "params"), OPTION_CASES)
@FAST
@given(columns=batches(shuffle=False), data=st.data())
def test_permuting_rows_permutes_the_output_with_options(name, params, columns, data):
    perm = np.array(data.draw(st.permutations(range(len(columns)))))
    expected = run(name, columns, **params)[perm]
    actual = run(name, columns.take(perm), **params)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-9)
