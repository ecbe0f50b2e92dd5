"""Registry of credit estimators: name -> pure function, with checked parameters and inputs.

An estimator is a module-level function ``fn(batch: CreditBatch, *, p1=..., p2=...)``
returning one float advantage per row. Every parameter after ``batch`` is keyword-only
and has a default, so the function's signature *is* its schema (read by
:mod:`agentgym.params`):

* *settings* are plain values (``gamma: UnitInterval = 0.95``,
  ``mode: Literal["mean_norm", "mean_std_norm"] = ...``): names, defaults, types, allowed
  values and ranges are checked when a config loads and again on every call;
* *inputs* are parameters annotated ``np.ndarray`` (``stratum: np.ndarray | None =
  None``): per-row data the trainer fills by that name from the flattened trajectories
  (see :mod:`agentgym.inputs` for the names it knows and the ``info`` keys that carry
  them). :func:`estimator_inputs` lists them.

The registry follows agentgym's registry rules (:mod:`agentgym.registries`): a name
registers once, an unknown name suggests the closest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from agentgym.credit.batch import CreditBatch
from agentgym.errors import UnknownNameError
from agentgym.params import (
    Interval,
    NonNegativeFloat,
    NonNegativeInt,
    ParamCheck,
    ParamInfo,
    PositiveFloat,
    PositiveInt,
    UnitInterval,
    UnknownParameterError,
    check_params,
    read_params,
)
from agentgym.registries import Registry

Estimator = Callable[..., np.ndarray]

__all__ = [
    "EstimatorRegistry",
    "Interval",
    "NonNegativeFloat",
    "NonNegativeInt",
    "ParamInfo",
    "PositiveFloat",
    "PositiveInt",
    "UnitInterval",
    "UnknownEstimatorError",
    "UnknownParameterError",
    "compute_advantages",
    "estimator_inputs",
    "estimator_params",
    "get_estimator",
    "list_estimators",
    "register_estimator",
    "validate_params",
]


class UnknownEstimatorError(UnknownNameError, ValueError):
    """No credit estimator is registered under that name (a KeyError like agentgym's other
    failed look-ups, and a ValueError)."""


#: The columns every estimator receives inside the batch (not as keyword inputs).
BASE_COLUMNS = ("group", "traj", "step", "reward", "state")


class EstimatorRegistry:
    """A name -> estimator table. The package keeps one default instance."""

    def __init__(self) -> None:
        self._estimators: Registry[Estimator] = Registry("credit estimator", UnknownEstimatorError)
        self._params: dict[str, dict[str, ParamInfo]] = {}
        self._checks: dict[str, ParamCheck | None] = {}

    def register(
        self, name: str, *, check: ParamCheck | None = None
    ) -> Callable[[Estimator], Estimator]:
        """Decorator registering ``fn`` under ``name``; a name can be registered once.

        ``check``, if given, receives every parameter (defaults filled in) and raises a
        ValueError for combinations that single-parameter rules cannot express.
        """

        def decorate(fn: Estimator) -> Estimator:
            params = read_params(fn, f"credit estimator {name!r}")
            self._estimators.register(name, fn)  # a name held already is an error
            self._params[name] = params
            self._checks[name] = check
            return fn

        return decorate

    def names(self) -> list[str]:
        return self._estimators.names()

    def get(self, name: str) -> Estimator:
        return self._estimators.get(name)

    def params(self, name: str) -> dict[str, ParamInfo]:
        """Every keyword parameter of ``name``: its settings and its inputs."""
        self.get(name)
        return dict(self._params[name])

    def inputs(self, name: str) -> list[str]:
        """The per-row inputs ``name`` takes besides the batch (e.g. ``["stratum"]``)."""
        return [p for p, info in self.params(name).items() if info.per_row]

    def validate(
        self, name: str, params: Mapping[str, Any], *, settings_only: bool = False
    ) -> None:
        """Raise if ``params`` has an unknown name or a value of the wrong type/choice/range.

        ``settings_only`` (a config): inputs such as ``stratum`` are refused, they are
        filled from the trajectories.
        """
        check_params(
            f"credit estimator {name!r}",
            self.params(name),
            params,
            self._checks[name],
            settings_only=settings_only,
        )

    def compute(
        self,
        name: str,
        *,
        group: Any,
        traj: Any,
        step: Any,
        reward: Any,
        state: Any = None,
        **params: Any,
    ) -> np.ndarray:
        """Build a :class:`CreditBatch` from the columns and run estimator ``name`` on it."""
        self.validate(name, params)
        batch = CreditBatch.from_columns(
            group=group, traj=traj, step=step, reward=reward, state=state
        )
        return self.apply(name, batch, **params)

    def apply(self, name: str, batch: CreditBatch, **params: Any) -> np.ndarray:
        """Run estimator ``name`` on an already built batch."""
        fn = self.get(name)
        self.validate(name, params)
        advantage = np.asarray(fn(batch, **params), dtype=np.float64)
        if advantage.shape != (batch.n_rows,):
            raise ValueError(
                f"credit estimator {name!r} returned shape {advantage.shape}, "
                f"expected ({batch.n_rows},): one advantage per row"
            )
        bad = ~np.isfinite(advantage)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"credit estimator {name!r} returned a non-finite advantage "
                f"({advantage[row]}) at row {row}"
            )
        return advantage


DEFAULT_REGISTRY = EstimatorRegistry()


def register_estimator(
    name: str, *, check: ParamCheck | None = None
) -> Callable[[Estimator], Estimator]:
    """Register ``fn(batch, *, ...)`` as credit estimator ``name`` (decorator).

    Settings are validated from the signature before every call (and by
    :func:`validate_params`); ``check`` adds a cross-parameter rule. Parameters annotated
    ``np.ndarray`` are inputs the trainer fills by name (see :mod:`agentgym.inputs`).

    >>> @register_estimator("my_baseline")          # doctest: +SKIP
    ... def my_baseline(batch: CreditBatch, *, scale: float = 1.0) -> np.ndarray:
    ...     return scale * (batch.traj_return - batch.traj_return.mean())[batch.traj]
    """
    return DEFAULT_REGISTRY.register(name, check=check)


def list_estimators() -> list[str]:
    """Names of all registered estimators, sorted."""
    return DEFAULT_REGISTRY.names()


def get_estimator(name: str) -> Estimator:
    """The estimator function registered as ``name`` (its docstring documents it)."""
    return DEFAULT_REGISTRY.get(name)


def estimator_params(name: str) -> dict[str, ParamInfo]:
    """Keyword parameters of estimator ``name``: name -> :class:`ParamInfo` (with default)."""
    return DEFAULT_REGISTRY.params(name)


def estimator_inputs(name: str) -> list[str]:
    """The per-row inputs of estimator ``name`` besides the batch's base columns."""
    return DEFAULT_REGISTRY.inputs(name)


def validate_params(name: str, params: Mapping[str, Any], *, settings_only: bool = False) -> None:
    """Check a parameter mapping for estimator ``name`` without running it."""
    DEFAULT_REGISTRY.validate(name, params, settings_only=settings_only)


def compute_advantages(
    name: str,
    *,
    group: Any,
    traj: Any,
    step: Any,
    reward: Any,
    state: Any = None,
    **params: Any,
) -> np.ndarray:
    """One advantage per row, in the caller's row order, from estimator ``name``.

    Args:
        name: a registered estimator (see :func:`list_estimators`).
        group: task group of each row (the N rollouts of one task share it).
        traj: trajectory id of each row, unique across the batch.
        step: index of the row's step inside its trajectory (0, 1, ...).
        reward: environment reward of the row's step.
        state: state key of the row's step (strings or ints); needed by estimators
            that group steps by state (``gigpo``, ``hgpo``).
        **params: the estimator's settings and inputs (see :func:`estimator_params`,
            :func:`estimator_inputs`).

    Returns:
        float64 array of length ``len(reward)``.

    Raises:
        ValueError: unknown estimator or parameter (with the closest valid name), a
            parameter outside its allowed values, or bad input columns (the message
            names the first bad row and why).
        TypeError: a parameter of the wrong type.
    """
    return DEFAULT_REGISTRY.compute(
        name, group=group, traj=traj, step=step, reward=reward, state=state, **params
    )
