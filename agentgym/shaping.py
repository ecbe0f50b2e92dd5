"""Reward shapers: registered edits of the per-step rewards, applied before credit.

``algorithm.reward_shaping`` lists shapers by name with their settings, applied in order::

    algorithm:
      reward_shaping:
        - {name: otc, variant: grpo}
        - {name: my_bonus, scale: 0.1}

A shaper sees the iteration's flattened trajectories (:class:`RewardContext`: the
:class:`~agentgym.trajectory.StepColumns`, the current per-step rewards and the
iteration) and returns new per-step rewards. Two forms register the same way:

* a function ``fn(ctx: RewardContext, *, setting=default, ...) -> np.ndarray`` for a
  stateless shaper;
* a subclass of :class:`RewardShaper` whose ``__init__`` takes the keyword settings, for a
  shaper with state that lives across iterations (e.g. the fewest tool calls seen per
  task). Its :meth:`~RewardShaper.state_dict` is saved in checkpoints and restored on
  ``--resume``.

Settings are read from the signature (:mod:`agentgym.params`): a misspelt shaper or setting
is refused when the config loads. A shaper that reads an ``info`` key declares it in
``requires_info``; a config whose environment does not fill it is refused at load too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from agentgym.params import ParamInfo, check_params, read_params
from agentgym.registries import Registry
from agentgym.trajectory import StepColumns

__all__ = [
    "RewardContext",
    "RewardShaper",
    "build_shapers",
    "get_reward_shaper",
    "list_reward_shapers",
    "register_reward_shaper",
    "shaper_params",
    "validate_shaping",
]


@dataclass(frozen=True)
class RewardContext:
    """What a shaper sees.

    Attributes:
        columns: the iteration's trajectories flattened to rows (``columns.trajectories``
            holds the trajectories themselves; row ``i`` is step ``columns.step[i]`` of
            ``columns.trajectories[columns.traj[i]]``).
        rewards: float64 per-row rewards so far (the env's plus penalties, then the
            earlier shapers' edits). Read-only: return a new array.
        iteration: the RL iteration (1-based).
    """

    columns: StepColumns
    rewards: np.ndarray
    iteration: int = 0

    def traj_returns(self) -> np.ndarray:
        """Per trajectory: the sum of its rows' current rewards."""
        return np.bincount(
            self.columns.traj, weights=self.rewards, minlength=len(self.columns.trajectories)
        )

    def last_rows(self) -> np.ndarray:
        """Per trajectory: the row of its last step (its outcome)."""
        last = np.full(len(self.columns.trajectories), -1, dtype=np.int64)
        last[self.columns.traj] = np.arange(len(self.columns))  # rows are in step order
        return last


class RewardShaper:
    """Base class of stateful shapers (see the module docstring).

    Subclasses take their settings as keyword-only ``__init__`` parameters with
    defaults and implement :meth:`shape`.
    """

    #: ``info`` keys this shaper reads (checked against the environment at config load).
    requires_info: ClassVar[tuple[str, ...]] = ()

    def shape(self, ctx: RewardContext) -> np.ndarray:
        """New per-row rewards for the batch."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """What must survive a restart (saved in checkpoints)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""


class _FunctionShaper(RewardShaper):
    """A stateless shaper made from a registered function."""

    def __init__(self, fn: Callable[..., np.ndarray], params: dict[str, Any]) -> None:
        self.fn, self.params = fn, params
        self.requires_info = tuple(getattr(fn, "requires_info", ()))

    def shape(self, ctx: RewardContext) -> np.ndarray:
        return self.fn(ctx, **self.params)


ShaperFactory = type[RewardShaper] | Callable[..., np.ndarray]
REWARD_SHAPERS: Registry[ShaperFactory] = Registry("reward shaper")
_PARAMS: dict[str, dict[str, ParamInfo]] = {}


def register_reward_shaper(name: str) -> Callable[[ShaperFactory], ShaperFactory]:
    """Register a shaper class (a :class:`RewardShaper` subclass) or function under
    ``name`` (decorator); a name registers once."""

    def deco(obj: ShaperFactory) -> ShaperFactory:
        if isinstance(obj, type):
            if not issubclass(obj, RewardShaper):
                raise TypeError(f"reward shaper {name!r}: a class must subclass RewardShaper")
            params = read_params(obj, f"reward shaper {name!r}", skip=0)
        else:
            params = read_params(obj, f"reward shaper {name!r}", skip=1, first="ctx")
        REWARD_SHAPERS.register(name, obj)
        _PARAMS[name] = params
        return obj

    return deco


def get_reward_shaper(name: str) -> ShaperFactory:
    return REWARD_SHAPERS.get(name)


def list_reward_shapers() -> list[str]:
    return REWARD_SHAPERS.names()


def shaper_params(name: str) -> dict[str, ParamInfo]:
    get_reward_shaper(name)
    return dict(_PARAMS[name])


def required_info(name: str) -> tuple[str, ...]:
    """The ``info`` keys shaper ``name`` reads."""
    return tuple(getattr(get_reward_shaper(name), "requires_info", ()))


def _split(spec: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(
            f"{where} must be a mapping with a 'name' and the shaper's settings, "
            f"e.g. {{name: otc}}; got {spec!r}"
        )
    params = {k: v for k, v in spec.items() if k != "name"}
    return str(spec["name"]), params


def validate_shaping(specs: Sequence[Mapping[str, Any]]) -> None:
    """Check ``algorithm.reward_shaping`` (names and settings) without building anything."""
    for i, spec in enumerate(specs):
        name, params = _split(spec, f"algorithm.reward_shaping[{i}]")
        check_params(f"reward shaper {name!r}", shaper_params(name), params, settings_only=True)


def build_shapers(specs: Sequence[Mapping[str, Any]]) -> list[tuple[str, RewardShaper]]:
    """``[(name, shaper)]`` for ``algorithm.reward_shaping``, in order."""
    validate_shaping(specs)
    out: list[tuple[str, RewardShaper]] = []
    for i, spec in enumerate(specs):
        name, params = _split(spec, f"algorithm.reward_shaping[{i}]")
        factory = get_reward_shaper(name)
        if isinstance(factory, type):
            shaper = factory(**params)
        else:
            shaper = _FunctionShaper(factory, params)
        out.append((name, shaper))
    return out


def apply_shapers(
    shapers: Sequence[tuple[str, RewardShaper]], ctx: RewardContext
) -> tuple[np.ndarray, dict[str, float]]:
    """Run the shapers in order; returns the final rewards and per-shaper metrics."""
    rewards = np.array(ctx.rewards, dtype=np.float64)
    metrics: dict[str, float] = {}
    for name, shaper in shapers:
        current = RewardContext(ctx.columns, rewards, ctx.iteration)
        rewards.flags.writeable = False
        shaped = np.asarray(shaper.shape(current), dtype=np.float64)
        if shaped.shape != rewards.shape:
            raise ValueError(
                f"reward shaper {name!r} returned shape {shaped.shape}, expected "
                f"{rewards.shape}: one reward per row"
            )
        bad = ~np.isfinite(shaped)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"reward shaper {name!r} returned {shaped[row]} at row {row}")
        metrics[f"shaping/{name}/reward_delta"] = float((shaped - rewards).mean())
        rewards = shaped.copy()
    return rewards, metrics


# ---------------------------------------------------------------- built-in shapers

# The built-in shapers live in agentgym.shapers and register on import; importing them here,
# after every name they use is defined, makes them selectable wherever this module is.
from agentgym import shapers as _builtin_shapers  # noqa: E402, F401
