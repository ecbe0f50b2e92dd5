"""CreditBatch: validation messages, interning and discounted returns."""

from __future__ import annotations

import numpy as np
import pytest

from agentgym.credit import CreditBatch, compute_advantages

from .reference import returns_to_go


def make(**overrides):
    columns = {
        "group": [0, 0, 0, 0],
        "traj": [0, 0, 1, 1],
        "step": [0, 1, 0, 1],
        "reward": [0.0, 1.0, 0.0, 0.0],
        "state": ["a", "b", "a", "c"],
    }
    columns.update(overrides)
    return CreditBatch.from_columns(**columns)


def test_rows_may_come_in_any_order():
    batch = make(
        group=[5, 5, 5, 5], traj=[9, 2, 9, 2], step=[1, 1, 0, 0], reward=[1.0, 2.0, 3.0, 4.0]
    )
    assert batch.n_rows == 4 and batch.n_groups == 1 and batch.n_traj == 2
    # trajectory-major order: traj 2 (code 0) steps 0, 1 then traj 9 (code 1) steps 0, 1
    assert batch.order.tolist() == [3, 1, 2, 0]
    assert batch.position[batch.order].tolist() == [0, 1, 2, 3]
    assert batch.traj_return.tolist() == [6.0, 4.0]
    assert batch.traj_len.tolist() == [2, 2]


def test_string_ids_and_state_keys_are_interned():
    batch = make(group=["task-a"] * 4, traj=["u1", "u1", "u2", "u2"])
    assert batch.group.tolist() == [0, 0, 0, 0]
    assert batch.traj.tolist() == [0, 0, 1, 1]
    assert [batch.state_keys[c] for c in batch.state] == ["a", "b", "a", "c"]
    assert batch.n_states == 3


def test_integer_state_keys():
    batch = make(state=[7, 3, 7, 1000])
    assert batch.n_states == 3
    assert batch.state[0] == batch.state[2] != batch.state[1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reward": [0.0, np.nan, 0.0, 0.0]}, "row 1: reward is nan; rewards must be finite"),
        ({"reward": [0.0, 0.0, np.inf, 0.0]}, "row 2: reward is inf; rewards must be finite"),
        (
            {"reward": [0.0, 1.0, 0.0]},
            "columns have different lengths (group=4, traj=4, step=4, reward=3, state=4)",
        ),
        ({"state": ["a", "b"]}, "columns have different lengths"),
        (
            {"step": [0, 2, 0, 1]},
            "row 1: trajectory with 2 rows has a bad step index: it jumps "
            "from step 0 to step 2 (missing: 1)",
        ),
        (
            {"step": [0, 0, 0, 1]},
            "row 1: trajectory with 2 rows has a bad step index: step 0 "
            "appears twice (rows 0 and 1)",
        ),
        (
            {"step": [1, 2, 0, 1]},
            "row 0: trajectory with 2 rows has a bad step index: its first "
            "step is 1, but steps must start at 0",
        ),
        ({"step": [0, -1, 0, 1]}, "row 1: step is -1; step indices start at 0"),
        (
            {"group": [0, 1, 0, 0]},
            "row 1: group 1 differs from the group 0 of step 0 of the "
            "same trajectory (row 0); a trajectory must lie in exactly one task group",
        ),
        ({"step": [0.0, 1.0, 0.0, 1.0]}, "`step` must hold integers, got dtype float64"),
        ({"reward": ["1", "0", "0", "0"]}, "`reward` must hold real numbers"),
        ({"state": [0.5, 1.0, 0.5, 2.0]}, "`state` must hold string or integer keys"),
        ({"group": [[0, 1]] * 4}, "`group` must be one-dimensional"),
    ],
)
def test_bad_input_names_the_row_and_the_reason(overrides, message):
    with pytest.raises(ValueError) as info:
        make(**overrides)
    assert message in str(info.value)


def test_a_bad_state_key_is_reported_when_states_are_first_used():
    batch = make(state=["a", None, "a", "b"])  # interning is lazy
    with pytest.raises(ValueError, match="row 1: state key None has type NoneType; use strings"):
        batch.require_state("gigpo")


def test_empty_batch():
    with pytest.raises(ValueError, match="empty batch: the columns have no rows"):
        CreditBatch.from_columns(group=[], traj=[], step=[], reward=[])


def test_missing_state_for_a_state_estimator():
    with pytest.raises(ValueError, match="estimator 'gigpo' groups steps by state key, but no"):
        compute_advantages("gigpo", group=[0], traj=[0], step=[0], reward=[1.0])


@pytest.mark.parametrize(
    "lengths",
    [[1, 5, 3, 40], [50] * 8, [1] * 30 + [200]],
    ids=["similar-lengths", "equal-lengths", "one-long-trajectory"],
)
def test_returns_to_go_equals_the_loop_exactly_in_any_row_order(lengths):
    # the padded matrix path (similar lengths) and the ragged path (one long
    # trajectory) both do the loop's arithmetic, so the results are bit-identical
    rng = np.random.default_rng(0)
    traj = np.repeat(np.arange(len(lengths)), lengths)
    step = np.concatenate([np.arange(n) for n in lengths])
    reward = rng.normal(size=traj.size)
    perm = rng.permutation(traj.size)
    batch = CreditBatch.from_columns(
        group=np.zeros(traj.size, dtype=int), traj=traj[perm], step=step[perm], reward=reward[perm]
    )
    for gamma in (0.0, 0.5, 0.95, 1.0):
        expected = returns_to_go(
            traj[perm].tolist(), step[perm].tolist(), reward[perm].tolist(), gamma
        )
        np.testing.assert_array_equal(batch.returns_to_go(gamma), expected)


def test_returns_to_go_is_stable_for_long_trajectories_and_small_gamma():
    # 0.1**3000 underflows to 0; a method dividing by gamma**t would give inf/nan here
    length = 3000
    reward = np.ones(length)
    batch = CreditBatch.from_columns(
        group=np.zeros(length, dtype=int),
        traj=np.zeros(length, dtype=int),
        step=np.arange(length),
        reward=reward,
    )
    returns = batch.returns_to_go(0.1)
    assert np.isfinite(returns).all()
    remaining = length - np.arange(length)
    np.testing.assert_allclose(returns, (1 - 0.1**remaining) / 0.9, rtol=1e-12)


def test_the_batch_is_read_only_and_leaves_the_callers_arrays_alone():
    step = np.array([0, 1, 0, 1])
    reward = np.array([0.0, 1.0, 0.0, 0.0])
    batch = make(step=step, reward=reward)
    for name in ("group", "traj", "step", "reward", "order", "traj_return", "state"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(batch, name)[0] = 1
    step[0] = 0  # still writable
    reward[0] = 0.0
    # dense int ids (as agentgym.flatten gives them) are not locked either
    group, traj = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])
    CreditBatch.from_columns(group=group, traj=traj, step=step, reward=reward)
    group[0] = traj[0] = 0
