"""The estimator registry: look-ups, parameter checks and user-registered estimators."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pytest

from agentgym.credit import (
    CreditBatch,
    EstimatorRegistry,
    Interval,
    UnknownEstimatorError,
    UnknownParameterError,
    compute_advantages,
    estimator_inputs,
    estimator_params,
    get_estimator,
    list_estimators,
    register_estimator,
    validate_params,
)

BUILT_IN = [
    "drmas",
    "gdpo",
    "gigpo",
    "grpo",
    "hgpo",
    "median",
    "mixed",
    "rloo",
    "salt",
    "stratified",
    "tempo",
    "turn",
]
COLUMNS = {"group": [0, 0], "traj": [0, 1], "step": [0, 0], "reward": [1.0, 0.0]}


def test_built_in_estimators_are_registered():
    assert set(BUILT_IN) <= set(list_estimators())
    assert list_estimators() == sorted(list_estimators())


def test_every_built_in_documents_formula_source_and_deviations():
    for name in BUILT_IN:
        doc = get_estimator(name).__doc__
        assert "math::" in doc, name
        assert "arXiv:" in doc, name
        assert "When to use" in doc, name


def test_unknown_estimator_suggests_the_closest_and_lists_all():
    with pytest.raises(UnknownEstimatorError) as info:
        compute_advantages("gipgo", **COLUMNS)
    assert str(info.value) == (
        "unknown credit estimator 'gipgo'. Did you mean 'gigpo'? Valid: "
        + ", ".join(repr(name) for name in list_estimators())
    )
    # both a ValueError and, like agentgym's other failed look-ups, a KeyError
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)


def test_unknown_estimator_without_a_close_match():
    valid = "".join(f"'{name}', " for name in list_estimators()[:3])  # sorted names
    with pytest.raises(ValueError, match=rf"^unknown credit estimator 'zzz'\. Valid: {valid}"):
        get_estimator("zzz")


def test_unknown_parameter_names_the_closest_valid_one():
    with pytest.raises(UnknownParameterError) as info:
        compute_advantages("gigpo", state=["a", "a"], step_advantage_weight=0.5, **COLUMNS)
    assert str(info.value).startswith(
        "unknown parameter 'step_advantage_weight' for credit estimator 'gigpo'. "
        "Did you mean 'step_advantage_w'? Valid: gamma, step_advantage_w, mode,"
    )


def test_literal_parameters_are_checked_before_any_work():
    with pytest.raises(ValueError) as info:
        validate_params("gigpo", {"mode": "std_norm"})
    assert str(info.value) == (
        "credit estimator 'gigpo', parameter 'mode': got 'std_norm'; "
        "choose one of 'mean_norm', 'mean_std_norm'"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"gamma": "0.9"}, "parameter 'gamma': expected float, got str '0.9'"),
        ({"gamma": True}, "parameter 'gamma': expected float, got bool True"),
        ({"history_length": 2.5}, "parameter 'history_length': expected int, got float 2.5"),
        ({"include_episode": 1}, "parameter 'include_episode': expected bool, got int 1"),
    ],
)
def test_parameter_types_are_checked(params, message):
    name = "hgpo" if "gamma" not in params else "gigpo"
    with pytest.raises(TypeError) as info:
        validate_params(name, params)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("gigpo", {"gamma": 1.5}, "parameter 'gamma': got 1.5, must lie in [0.0, 1.0]"),
        ("grpo", {"epsilon": 0.0}, "parameter 'epsilon': got 0.0, must lie in (0.0, inf]"),
        ("hgpo", {"history_length": -1}, "parameter 'history_length': got -1, must lie in [0"),
        ("mixed", {"turn_weight": 2.0}, "parameter 'turn_weight': got 2.0, must lie in [0.0"),
        (
            "hgpo",
            {"include_episode": True, "weight_offset": 0},
            "include_episode=True with weight_offset=0 gives",
        ),
        (
            "rloo",
            {"leave_out": "row"},
            "leave_out='row' leaves out one step row of the trajectory, which only exists "
            "with stats_over='steps'",
        ),
        ("gdpo", {"component_weights": [1.0, float("nan")]}, "weights must be finite"),
    ],
)
def test_parameter_ranges_are_checked(name, params, message):
    with pytest.raises(ValueError) as info:
        compute_advantages(name, state=["a", "a"], **COLUMNS, **params)
    assert message in str(info.value)


def test_gdpo_component_weights_must_be_a_list_of_numbers():
    with pytest.raises(TypeError, match="'component_weights': expected a list of numbers"):
        validate_params("gdpo", {"component_weights": "1,2"})
    with pytest.raises(TypeError, match="'component_weights': expected numbers, got str '1'"):
        validate_params("gdpo", {"component_weights": ["1", 2.0]})
    validate_params("gdpo", {"component_weights": [1, 0.5]})


def test_ranges_and_cross_parameter_rules_are_checked_without_running():
    with pytest.raises(ValueError, match=r"parameter 'gamma': got -0.1, must lie in \[0.0, 1.0\]"):
        validate_params("hgpo", {"gamma": -0.1})
    with pytest.raises(ValueError, match="include_episode=True with weight_offset=0"):
        validate_params("hgpo", {"include_episode": True, "weight_offset": 0})
    validate_params("hgpo", {"include_episode": True})  # default weight_offset=1
    validate_params("hgpo", {"include_episode": True, "weight_offset": 1})
    validate_params("hgpo", {"include_episode": True, "alpha": 0.0})


def test_estimator_params_reads_the_signature():
    params = estimator_params("gigpo")
    assert list(params) == [
        "gamma",
        "step_advantage_w",
        "mode",
        "epsilon",
        "stats_over",
        "similarity_threshold",
        "similarity",
    ]
    assert params["gamma"].default == 0.95
    assert params["step_advantage_w"].default == 1.0
    assert params["mode"].choices == ("mean_norm", "mean_std_norm")
    assert params["mode"].default == "mean_std_norm"
    assert params["gamma"].annotation is float
    assert (params["gamma"].interval.low, params["gamma"].interval.high) == (0.0, 1.0)
    assert params["step_advantage_w"].interval is None
    assert not params["gamma"].per_row
    assert estimator_params("stratified")["stratum"].per_row
    assert estimator_params("hgpo")["history_length"].default == 2


def test_estimators_list_the_inputs_they_take_by_name():
    assert estimator_inputs("grpo") == []
    assert estimator_inputs("stratified") == ["stratum"]
    assert estimator_inputs("salt") == ["action"]
    assert estimator_inputs("tempo") == ["action"]
    assert estimator_inputs("drmas") == ["agent"]
    assert estimator_inputs("gdpo") == ["reward_components"]
    # inputs are data, not config
    with pytest.raises(ValueError, match="'action' is an input filled from the trajectories"):
        validate_params("salt", {"action": ["go"]}, settings_only=True)


def test_register_a_custom_estimator_and_use_it():
    registry = EstimatorRegistry()

    @registry.register("best_of_group")
    def best_of_group(
        batch: CreditBatch, *, bonus: Annotated[float, Interval(0.0)] = 1.0
    ) -> np.ndarray:
        best = np.full(batch.n_groups, -np.inf)
        np.maximum.at(best, batch.traj_group, batch.traj_return)
        return np.where(batch.traj_return == best[batch.traj_group], bonus, 0.0)[batch.traj]

    assert registry.names() == ["best_of_group"]
    advantage = registry.compute(
        "best_of_group",
        group=[0, 0, 0],
        traj=[0, 1, 1],
        step=[0, 0, 1],
        reward=[1.0, 0.0, 0.5],
        bonus=2.0,
    )
    assert advantage.tolist() == [2.0, 0.0, 0.0]
    with pytest.raises(UnknownParameterError, match="Did you mean 'bonus'"):
        registry.compute("best_of_group", bonuss=1.0, **COLUMNS)
    with pytest.raises(ValueError, match=r"'bonus': got -1.0, must lie in \[0.0, inf\]"):
        registry.compute("best_of_group", bonus=-1.0, **COLUMNS)


def test_registering_a_name_twice_is_an_error():
    registry = EstimatorRegistry()

    @registry.register("x")
    def first(batch: CreditBatch) -> np.ndarray:
        return np.zeros(batch.n_rows)

    with pytest.raises(ValueError, match="credit estimator 'x' is already registered"):
        registry.register("x")(first)


def test_registering_a_built_in_name_twice_is_an_error():
    with pytest.raises(ValueError, match="credit estimator 'grpo' is already registered"):
        register_estimator("grpo")(get_estimator("rloo"))


def test_estimator_signatures_are_checked_at_registration():
    registry = EstimatorRegistry()
    with pytest.raises(TypeError, match="parameter 'gamma' must be keyword-only with a default"):

        @registry.register("positional")
        def positional(batch: CreditBatch, gamma: float = 1.0) -> np.ndarray:
            return np.zeros(batch.n_rows)

    with pytest.raises(TypeError, match="the first parameter must be the batch"):

        @registry.register("no_batch")
        def no_batch(*, gamma: float = 1.0) -> np.ndarray:
            return np.zeros(1)


def test_bad_estimator_output_is_reported():
    registry = EstimatorRegistry()

    @registry.register("short")
    def short(batch: CreditBatch) -> np.ndarray:
        return np.zeros(batch.n_rows - 1)

    @registry.register("nan")
    def nan(batch: CreditBatch) -> np.ndarray:
        return np.full(batch.n_rows, np.nan)

    with pytest.raises(ValueError, match=r"returned shape \(1,\), expected \(2,\)"):
        registry.compute("short", **COLUMNS)
    with pytest.raises(ValueError, match="'nan' returned a non-finite advantage"):
        registry.compute("nan", **COLUMNS)
