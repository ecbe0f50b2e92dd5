"""Credit estimators ("groupers"): flattened batch of steps -> one advantage per step.

>>> from agentgym.credit import compute_advantages
>>> adv = compute_advantages(                                   # doctest: +SKIP
...     "gigpo", group=group, traj=traj, step=step, reward=reward, state=state_key,
...     gamma=0.95, step_advantage_w=1.0, mode="mean_std_norm")

Estimators are pure NumPy functions registered by name; add one with
:func:`register_estimator`. This package depends on NumPy and the standard library
only; from agentgym it imports just the stdlib-only helpers :mod:`agentgym.params`,
:mod:`agentgym.registries` and :mod:`agentgym.errors`. See docs/credit.md.
"""

# Importing the estimator modules registers the built-in estimators.
from agentgym.credit import (
    agents,
    anchor,
    branching,
    components,
    episode,
    gae,
    graph,
    hierarchical,
    info_gain,
    judged,
    single_stream,
    stratified,
    tree,
    turn,
)
from agentgym.credit.batch import CreditBatch
from agentgym.credit.registry import (
    EstimatorRegistry,
    Interval,
    ParamInfo,
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

__all__ = [
    "CreditBatch",
    "EstimatorRegistry",
    "Interval",
    "ParamInfo",
    "UnknownEstimatorError",
    "UnknownParameterError",
    "agents",
    "anchor",
    "branching",
    "components",
    "compute_advantages",
    "episode",
    "estimator_inputs",
    "estimator_params",
    "gae",
    "get_estimator",
    "graph",
    "hierarchical",
    "info_gain",
    "judged",
    "list_estimators",
    "register_estimator",
    "single_stream",
    "stratified",
    "tree",
    "turn",
    "validate_params",
]
