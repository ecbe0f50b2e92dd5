"""Parameters read from a function's signature: the signature *is* the config schema.

Every registered algorithm in agentgym (credit estimators, reward shapers, policy losses,
loss terms, rollout strategies) declares its settings as keyword-only parameters with
defaults. :func:`read_params` reads names, defaults, types, allowed values (``Literal``)
and ranges (``Annotated[float, Interval(0, 1)]``) from the signature, and
:func:`check_params` rejects unknown names (suggesting the closest), wrong types, values
outside a ``Literal`` or a range, and whatever a cross-parameter ``check`` rejects. A
config layer can therefore validate a whole config when it loads, before any model is
built, with the same rules the function applies when it is called.

Parameters annotated with ``np.ndarray`` (or ``torch.Tensor``) are *inputs*, not
settings: per-row data the caller fills (an estimator's ``stratum``, ``action``,
``reward_components`` ...). :attr:`ParamInfo.per_row` marks them, and a config that sets
one is refused.

This module depends on the standard library and NumPy only.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import numpy as np

from agentgym.errors import UnknownNameError, did_you_mean

__all__ = [
    "Interval",
    "NonNegativeFloat",
    "NonNegativeInt",
    "ParamCheck",
    "ParamInfo",
    "PositiveFloat",
    "PositiveInt",
    "UnitInterval",
    "UnknownParameterError",
    "check_params",
    "read_params",
]


@dataclass(frozen=True)
class Interval:
    """Allowed range of a numeric parameter, attached with ``Annotated[float, Interval(...)]``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """True when ``low`` itself is excluded."""

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def __str__(self) -> str:
        left = "(" if self.low_open else "["
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{left}{low}, {high}]"


UnitInterval = Annotated[float, Interval(0.0, 1.0)]
"""A float in [0, 1] (gamma, blend weights)."""
PositiveFloat = Annotated[float, Interval(0.0, low_open=True)]
"""A float > 0 (epsilon)."""
NonNegativeFloat = Annotated[float, Interval(0.0)]
NonNegativeInt = Annotated[int, Interval(0)]
PositiveInt = Annotated[int, Interval(1)]

ParamCheck = Callable[[dict[str, Any]], None]
"""Cross-parameter check: gets all parameters (defaults filled in), raises ValueError."""


class UnknownParameterError(UnknownNameError, ValueError):
    """A function has no keyword parameter of that name."""

    def __init__(self, owner: str, name: str, valid: list[str]) -> None:
        self.kind, self.name, self.valid = f"parameter of {owner}", name, list(valid)
        listed = ", ".join(valid) if valid else "none"
        KeyError.__init__(
            self,
            f"unknown parameter {name!r} for {owner}.{did_you_mean(name, valid)} Valid: {listed}",
        )


@dataclass(frozen=True)
class ParamInfo:
    """One keyword parameter, as read from a signature."""

    name: str
    default: Any
    annotation: Any
    choices: tuple[Any, ...] | None
    """Allowed values when the annotation is a ``Literal``; None otherwise."""
    interval: Interval | None
    """Allowed range when the annotation carries an :class:`Interval`; None otherwise."""
    per_row: bool
    """True for per-row array inputs (e.g. ``stratum``), which are data, not config."""


def read_params(
    fn: Callable[..., Any], owner: str, *, skip: int = 1, first: str = "batch"
) -> dict[str, ParamInfo]:
    """The keyword parameters of ``fn`` after its first ``skip`` positional ones.

    ``owner`` names the function in messages (``"credit estimator 'gigpo'"``). Every
    parameter after the positional ones must be keyword-only with a default; a class is
    read through its ``__init__`` (``skip`` then counts after ``self``).
    """
    if inspect.isclass(fn) and fn.__init__ is object.__init__:  # type: ignore[misc]
        return {}
    target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
    parameters = list(inspect.signature(target).parameters.values())
    if inspect.isclass(fn):
        parameters = parameters[1:]  # self
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    head = parameters[:skip]
    if len(head) < skip or any(p.kind not in positional for p in head):
        shown = ", ".join(p.name for p in head) or first
        raise TypeError(
            f"{owner}: the first parameter must be the {first}, as in "
            f"`def {getattr(fn, '__name__', 'fn')}({shown if head else first}, *, ...)`"
        )
    hints = typing.get_type_hints(target, include_extras=True)
    infos: dict[str, ParamInfo] = {}
    for param in parameters[skip:]:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if param.kind is not inspect.Parameter.KEYWORD_ONLY or param.default is param.empty:
            raise TypeError(
                f"{owner}: parameter {param.name!r} must be keyword-only with a default, "
                f"as in `def {getattr(fn, '__name__', 'fn')}({first}, *, {param.name}=...)`"
            )
        annotation = hints.get(param.name, Any)
        base, interval = _split_annotated(annotation)
        infos[param.name] = ParamInfo(
            name=param.name,
            default=param.default,
            annotation=base,
            choices=_literal_choices(base),
            interval=interval,
            per_row=_mentions_array(base),
        )
    return infos


def check_params(
    owner: str,
    schema: Mapping[str, ParamInfo],
    params: Mapping[str, Any],
    check: ParamCheck | None = None,
    *,
    settings_only: bool = False,
) -> None:
    """Raise if ``params`` has an unknown name or a value of the wrong type/choice/range.

    With ``settings_only`` (a config being loaded), per-row inputs are refused too: they
    are filled from trajectories, not written in a config.
    """
    for key, value in params.items():
        if key not in schema:
            raise UnknownParameterError(owner, key, list(schema))
        info = schema[key]
        if info.per_row:
            if settings_only:
                raise ValueError(
                    f"{owner}: {key!r} is an input filled from the trajectories (one value "
                    "per step), not a setting; remove it from the config"
                )
            continue
        _check_value(owner, info, value)
    if check is not None:
        check({**{k: info.default for k, info in schema.items()}, **params})


def defaults(schema: Mapping[str, ParamInfo]) -> dict[str, Any]:
    """Name -> default of every setting (inputs left out)."""
    return {k: info.default for k, info in schema.items() if not info.per_row}


def _split_annotated(annotation: Any) -> tuple[Any, Interval | None]:
    """(base type, Interval found in its Annotated metadata or None)."""
    if typing.get_origin(annotation) is not Annotated:
        return annotation, None
    base, *extras = typing.get_args(annotation)
    intervals = [extra for extra in extras if isinstance(extra, Interval)]
    return base, intervals[0] if intervals else None


def _literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    return None


def _mentions_array(annotation: Any) -> bool:
    if annotation is np.ndarray:
        return True
    if getattr(annotation, "__module__", "") == "torch" and getattr(annotation, "__name__", "") in (
        "Tensor",
    ):
        return True
    return any(_mentions_array(arg) for arg in typing.get_args(annotation))


def _check_value(owner: str, info: ParamInfo, value: Any) -> None:
    where = f"{owner}, parameter {info.name!r}"
    if info.choices is not None:
        if value not in info.choices:
            listed = ", ".join(repr(c) for c in info.choices)
            raise ValueError(f"{where}: got {value!r}; choose one of {listed}")
        return
    expected = _plain_types(info.annotation)
    if expected is None:
        return
    # bool is a subclass of int, but True is no sensible value for gamma
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        raise TypeError(
            f"{where}: expected {_describe(info.annotation)}, got {type(value).__name__} {value!r}"
        )
    if info.interval is not None and value is not None and not info.interval.contains(value):
        raise ValueError(f"{where}: got {value!r}, must lie in {info.interval}")


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _plain_types(annotation: Any) -> tuple[type, ...] | None:
    """Runtime types accepted for a simple annotation; None when not checkable."""
    simple = {float: (int, float, np.integer, np.floating), int: (int, np.integer), bool: (bool,)}
    if annotation in simple:
        return simple[annotation]
    if annotation is str:
        return (str,)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        accepted: list[type] = []
        for arg in typing.get_args(annotation):
            if arg is type(None):
                accepted.append(type(None))
                continue
            sub = _plain_types(arg)
            if sub is None:
                return None
            accepted.extend(sub)
        return tuple(accepted)
    return None
