"""Task samplers: which train tasks an RL iteration plays (``algorithm.task_sampler``).

The trainer asks the configured sampler for each iteration's tasks::

    algorithm:
      task_sampler: {name: uniform}                  # the default
      # task_sampler: {name: spo, epsilon: 0.05}     # SPO's prioritised sampling

A sampler is a class registered with :func:`register_task_sampler`; its ``__init__``
keyword parameters are its settings (checked when the config loads). It returns the
iteration's :class:`~agentgym.rollout.TaskRequest` list from a
:class:`TaskSamplerContext` (the environment, the count, the iteration's seed, and the
run's input providers, so a sampler can read a provider's state, as SPO's reads its value
tracker). Its :meth:`TaskSampler.state_dict` is saved in checkpoints. The same
``(seed, iteration)`` must give the same tasks, so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agentgym.params import ParamInfo, check_params, read_params
from agentgym.registries import Registry

__all__ = [
    "TaskSampler",
    "TaskSamplerContext",
    "UniformSampler",
    "build_task_sampler",
    "get_task_sampler",
    "list_task_samplers",
    "register_task_sampler",
    "validate_task_sampler",
]


@dataclass
class TaskSamplerContext:
    """What a sampler sees.

    Attributes:
        spec: the environment (an :class:`~agentgym.rollout.executor.EnvSpec`).
        split: the split to sample (``train``).
        count: how many tasks (groups) to return.
        seed: the iteration's seed (derived from the run's seed and the iteration).
        iteration: the RL iteration (1-based).
        providers: the run's input providers by name.
    """

    spec: Any
    split: str
    count: int
    seed: int
    iteration: int = 0
    providers: Mapping[str, Any] = field(default_factory=dict)


class TaskSampler:
    """Base class of task samplers (see the module docstring)."""

    #: Input providers this sampler reads (they must be active in the run).
    requires_providers: ClassVar[tuple[str, ...]] = ()
    name: str = ""

    def sample(self, ctx: TaskSamplerContext) -> list[Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""


TASK_SAMPLERS: Registry[type[TaskSampler]] = Registry("task sampler")
_PARAMS: dict[str, dict[str, ParamInfo]] = {}


def register_task_sampler(name: str) -> Callable[[type[TaskSampler]], type[TaskSampler]]:
    """Class decorator registering a :class:`TaskSampler` subclass under ``name``."""

    def deco(cls: type[TaskSampler]) -> type[TaskSampler]:
        if not (isinstance(cls, type) and issubclass(cls, TaskSampler)):
            raise TypeError(f"task sampler {name!r} must subclass TaskSampler")
        params = read_params(cls, f"task sampler {name!r}", skip=0)
        TASK_SAMPLERS.register(name, cls)
        _PARAMS[name] = params
        cls.name = name
        return cls

    return deco


def get_task_sampler(name: str) -> type[TaskSampler]:
    return TASK_SAMPLERS.get(name)


def list_task_samplers() -> list[str]:
    return TASK_SAMPLERS.names()


def _split(spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(
            "algorithm.task_sampler must be a mapping with a 'name' and the sampler's "
            f"settings, e.g. {{name: uniform}}; got {spec!r}"
        )
    return str(spec["name"]), {k: v for k, v in spec.items() if k != "name"}


def validate_task_sampler(spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check ``algorithm.task_sampler``; returns (name, settings)."""
    name, settings = _split(spec)
    get_task_sampler(name)  # an unknown name suggests the closest
    check_params(f"task sampler {name!r}", _PARAMS[name], settings, settings_only=True)
    return name, settings


def build_task_sampler(spec: Mapping[str, Any]) -> TaskSampler:
    name, settings = validate_task_sampler(spec)
    return get_task_sampler(name)(**settings)


@register_task_sampler("uniform")
class UniformSampler(TaskSampler):
    """Tasks drawn uniformly without replacement while the split has enough
    (:func:`agentgym.rollout.sample_tasks`), as every trainer did before samplers."""

    def sample(self, ctx: TaskSamplerContext) -> list[Any]:
        from agentgym.rollout import sample_tasks

        return sample_tasks(ctx.spec, ctx.split, ctx.count, seed=ctx.seed)
