"""Input providers: the stage of an iteration that fills estimator inputs with a model in
the loop (a judge, the policy's own log-probs, a value tracker, a critic).

Credit estimators stay pure functions of the batch (:mod:`agentgym.credit`). Some methods
need more than the trajectories: ArenaRL a judge's tournament, IGPO the policy's
probability of the gold answer, SPO a value tracker that lives across iterations, PPO a
critic. Each such method registers an :class:`InputProvider` that computes named per-row
columns; the estimator asks for them as ordinary inputs (keyword parameters annotated
``np.ndarray``), and the trainer builds the providers that produce the inputs the chosen
estimator asks for. The loop calls them in this order::

    shape_rewards -> provide (providers fill columns) -> compute_advantages
                  -> build_samples -> adjust_samples -> policy update -> after_update

* :meth:`InputProvider.provide` -- fill columns (``provides``) before credit;
* :meth:`InputProvider.adjust_samples` -- edit the training samples (per-token
  advantages, e.g. HiPER's subgoal tokens) after they are built;
* :meth:`InputProvider.after_update` -- learn after the policy update (a critic's value
  loss, SPO's tracker update).

Settings come from the class's ``__init__`` keyword parameters (read by
:mod:`agentgym.params`) and are configured in ``algorithm.providers.<name>``; a provider
the estimator does not need may be switched on by naming it there. State that must
survive a restart (:meth:`state_dict`) is saved in checkpoints and restored on
``--resume``. A provider that reads an ``info`` key lists it in ``requires_info`` (checked
against the environment when the config loads); one that asks the judge sets
``uses_judge``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from agentgym.params import ParamInfo, check_params, read_params
from agentgym.registries import Registry
from agentgym.trajectory import StepColumns

__all__ = [
    "InputProvider",
    "ProviderContext",
    "build_providers",
    "get_input_provider",
    "list_input_providers",
    "provider_for_input",
    "provider_params",
    "providers_for",
    "register_input_provider",
    "validate_providers",
]


@dataclass
class ProviderContext:
    """What a provider sees of the iteration.

    Attributes:
        iteration: the RL iteration (1-based).
        columns: the usable trajectories flattened to rows (``columns.trajectories``).
        rewards: per-row rewards after shaping (read-only).
        provided: columns filled so far by earlier providers this iteration.
        model: the trainer's policy model (a ``torch.nn.Module``) or None outside training.
        tokenizer: its tokenizer.
        device: where the model lives.
        pad_id: the padding token id.
        micro_batch_size: rows per forward pass for providers that run the model.
        judge: the run's :class:`~agentgym.judges.Judge` (None without ``judge.model``).
        estimator: the chosen credit estimator and ``settings`` its settings.
        advantages: per-row advantages (after credit; None before).
        samples: the training samples (after ``build_samples``; empty before).
        keep: per usable trajectory, whether it is trained on (``filter_groups``).
        metrics: where providers add what they measured (``provider/<name>/...``).
    """

    iteration: int
    columns: StepColumns
    rewards: np.ndarray
    provided: dict[str, np.ndarray] = field(default_factory=dict)
    model: Any = None
    tokenizer: Any = None
    device: Any = "cpu"
    pad_id: int = 0
    micro_batch_size: int = 32
    judge: Any = None
    estimator: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    advantages: np.ndarray | None = None
    samples: list[Any] = field(default_factory=list)
    keep: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def require_model(self, who: str) -> Any:
        if self.model is None or self.tokenizer is None:
            raise ValueError(f"input provider {who!r} needs the policy model and its tokenizer")
        return self.model

    def require_judge(self, who: str) -> Any:
        if self.judge is None:
            from agentgym.errors import ConfigError

            raise ConfigError(
                f"input provider {who!r} asks a judge, but judge.model is not set; set it to a "
                "policy spec (hf:DIR, openai:URL#model) or a rule 'module:function'"
            )
        return self.judge

    def traj_rows(self) -> list[np.ndarray]:
        """Per usable trajectory, its rows in step order."""
        order = np.lexsort((self.columns.step, self.columns.traj))
        counts = np.bincount(self.columns.traj, minlength=len(self.columns.trajectories))
        return np.split(order, np.cumsum(counts)[:-1]) if counts.size else []


class InputProvider:
    """Base class of input providers (see the module docstring).

    Subclasses take their settings as keyword-only ``__init__`` parameters with defaults.
    """

    #: The per-row columns :meth:`provide` fills (estimator inputs of these names).
    provides: ClassVar[tuple[str, ...]] = ()
    #: Columns of other providers this one reads (they run first).
    requires_inputs: ClassVar[tuple[str, ...]] = ()
    #: ``info`` keys this provider reads (checked against the environment at config load).
    requires_info: ClassVar[tuple[str, ...]] = ()
    #: Whether it asks the run's judge (``judge.model`` must then be set).
    uses_judge: ClassVar[bool] = False

    name: str = ""

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        """Raise a ValueError for settings that single-parameter rules cannot refuse
        (an unknown parser name, ...); runs when the config loads."""

    def provide(self, ctx: ProviderContext) -> dict[str, np.ndarray]:
        """``{column: per-row array}`` for every name in :attr:`provides`."""
        return {}

    def adjust_samples(self, ctx: ProviderContext) -> None:
        """Edit ``ctx.samples`` in place after they are built (default: nothing)."""

    def after_update(self, ctx: ProviderContext) -> None:
        """Learn after the policy update (default: nothing)."""

    def state_dict(self) -> dict[str, Any]:
        """What must survive a restart (saved in checkpoints)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""


INPUT_PROVIDERS: Registry[type[InputProvider]] = Registry("input provider")
_PARAMS: dict[str, dict[str, ParamInfo]] = {}
_BY_COLUMN: dict[str, str] = {}


def register_input_provider(name: str) -> Callable[[type[InputProvider]], type[InputProvider]]:
    """Class decorator registering an :class:`InputProvider` subclass under ``name``.

    A name registers once, and a column has one provider (a second class providing the
    same column is an error naming the first).
    """

    def deco(cls: type[InputProvider]) -> type[InputProvider]:
        if not (isinstance(cls, type) and issubclass(cls, InputProvider)):
            raise TypeError(f"input provider {name!r} must subclass InputProvider")
        for column in cls.provides:
            if column in _BY_COLUMN:
                raise ValueError(
                    f"input provider {name!r}: column {column!r} is already provided by "
                    f"{_BY_COLUMN[column]!r}"
                )
        params = read_params(cls, f"input provider {name!r}", skip=0)
        INPUT_PROVIDERS.register(name, cls)
        _PARAMS[name] = params
        for column in cls.provides:
            _BY_COLUMN[column] = name
        cls.name = name
        return cls

    return deco


def get_input_provider(name: str) -> type[InputProvider]:
    return INPUT_PROVIDERS.get(name)


def list_input_providers() -> list[str]:
    return INPUT_PROVIDERS.names()


def provider_params(name: str) -> dict[str, ParamInfo]:
    get_input_provider(name)
    return dict(_PARAMS[name])


def provider_for_input(column: str) -> str | None:
    """The provider that fills input ``column``, or None (the trajectories carry it)."""
    return _BY_COLUMN.get(column)


def providers_for(inputs: Sequence[str], explicit: Sequence[str] = ()) -> list[str]:
    """The providers a run needs, in the order they run: those filling ``inputs`` (and,
    first, the providers they read from), plus the ``explicit`` ones."""
    order: list[str] = []

    def need(name: str, chain: tuple[str, ...] = ()) -> None:
        if name in order:
            return
        if name in chain:
            raise ValueError(f"input providers depend on each other in a cycle: {chain}")
        cls = get_input_provider(name)
        for column in cls.requires_inputs:
            dep = provider_for_input(column)
            if dep is None:
                raise ValueError(
                    f"input provider {name!r} reads {column!r}, which no provider fills"
                )
            need(dep, (*chain, name))
        order.append(name)

    for name in explicit:
        need(name)
    for column in inputs:
        provider = provider_for_input(column)
        if provider is not None:
            need(provider)
    return order


def validate_providers(sections: Mapping[str, Mapping[str, Any]]) -> None:
    """Check ``algorithm.providers`` (names and settings) without building anything."""
    for name, settings in sections.items():
        check_params(
            f"input provider {name!r}", provider_params(name), dict(settings or {}),
            settings_only=True,
        )  # fmt: skip
        get_input_provider(name).check_settings(dict(settings or {}))


def build_providers(
    names: Sequence[str], sections: Mapping[str, Mapping[str, Any]]
) -> list[InputProvider]:
    """The providers ``names``, each built with its ``algorithm.providers`` section."""
    validate_providers({n: sections.get(n, {}) for n in names})
    return [get_input_provider(n)(**dict(sections.get(n) or {})) for n in names]
