"""Update schedules: how an iteration's samples reach the policy update
(``actor.update_schedule``).

``standard`` runs :func:`~agentgym.trainers.update.ppo_update` once over every sample (what
the trainer always did). ``seeupo`` updates turn by turn, last turn first (SeeUPO). A
schedule is a class registered with :func:`register_update_schedule`; its ``__init__``
keyword parameters are its settings (checked when the config loads), and
:meth:`UpdateSchedule.run` gets the samples plus two callables bound to the run's model:
``update(samples) -> metrics`` (one :func:`ppo_update`) and ``score(samples, field)``
(the current policy's log-probs of every token into ``sample.<field>``).
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from agentgym.params import ParamInfo, PositiveFloat, check_params, read_params
from agentgym.registries import Registry
from agentgym.trainers.samples import Sample

__all__ = [
    "SeeUPO",
    "Standard",
    "UpdateSchedule",
    "build_update_schedule",
    "list_update_schedules",
    "register_update_schedule",
    "turn_views",
    "validate_update_schedule",
]

Update = Callable[[list[Sample]], dict[str, float]]
Score = Callable[[list[Sample], str], None]


class UpdateSchedule:
    """Base class of update schedules (see the module docstring)."""

    name: str = ""

    def run(self, samples: list[Sample], update: Update, score: Score) -> dict[str, float]:
        raise NotImplementedError


UPDATE_SCHEDULES: Registry[type[UpdateSchedule]] = Registry("update schedule")
_PARAMS: dict[str, dict[str, ParamInfo]] = {}


def register_update_schedule(
    name: str,
) -> Callable[[type[UpdateSchedule]], type[UpdateSchedule]]:
    """Class decorator registering an :class:`UpdateSchedule` under ``name``."""

    def deco(cls: type[UpdateSchedule]) -> type[UpdateSchedule]:
        params = read_params(cls, f"update schedule {name!r}", skip=0)
        UPDATE_SCHEDULES.register(name, cls)
        _PARAMS[name] = params
        cls.name = name
        return cls

    return deco


def list_update_schedules() -> list[str]:
    return UPDATE_SCHEDULES.names()


def validate_update_schedule(spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check ``actor.update_schedule`` (``{name: ..., setting: value}``)."""
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(
            "actor.update_schedule must be a mapping with a 'name' and the schedule's "
            f"settings, e.g. {{name: standard}}; got {spec!r}"
        )
    name = str(spec["name"])
    settings = {k: v for k, v in spec.items() if k != "name"}
    UPDATE_SCHEDULES.get(name)
    check_params(f"update schedule {name!r}", _PARAMS[name], settings, settings_only=True)
    return name, settings


def build_update_schedule(spec: Mapping[str, Any]) -> UpdateSchedule:
    name, settings = validate_update_schedule(spec)
    return UPDATE_SCHEDULES.get(name)(**settings)


@register_update_schedule("standard")
class Standard(UpdateSchedule):
    """One policy update over every sample of the iteration."""

    def run(self, samples: list[Sample], update: Update, score: Score) -> dict[str, float]:
        return update(samples)


def turn_views(samples: Sequence[Sample]) -> dict[int, list[Sample]]:
    """The samples split by turn: ``{turn: samples training only that turn's tokens}``.

    A window sample (one step) is its own view; a chat sample (every turn) gives one view
    per turn, a copy whose mask keeps that turn's response tokens only (the forward still
    runs over the whole conversation)."""
    out: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.segment is None:
            out[max(sample.step_index, 0)].append(sample)
            continue
        for turn in sorted({s for s in sample.segment if s >= 0}):
            view = copy.copy(sample)
            view.mask = [
                m if seg == turn else 0 for m, seg in zip(sample.mask, sample.segment, strict=True)
            ]
            view.step_index = turn
            out[turn].append(view)
    return dict(out)


def _sequence_ratio(sample: Sample, field: str) -> float:
    """exp(mean over the sample's trained tokens of log pi_now - log pi_old)."""
    now = getattr(sample, field)
    diffs = [
        now[j] - sample.old_logprobs[j]
        for j, m in enumerate(sample.mask)
        if m and not math.isnan(sample.old_logprobs[j])
    ]
    return float(math.exp(max(-20.0, min(20.0, float(np.mean(diffs)))))) if diffs else 1.0


@register_update_schedule("seeupo")
class SeeUPO(UpdateSchedule):
    r"""SeeUPO: turn-by-turn policy updates in reverse order, each turn's advantage
    reweighted by the sequence-level ratios of the turns already updated.

    The turns of a multi-turn episode are treated as agents acting one after another (a
    sequential multi-agent bandit). For T turns the update runs T times, turn T-1 first:

    .. math::
        M_{i,t} = \prod_{k > t} s_{i,k},\qquad
        s_{i,k} = \exp\Big(\frac{1}{|y_{i,k}|}\sum_j \log\frac{\pi_{\theta_k}(y_{i,k,j})}
        {\pi_{old}(y_{i,k,j})}\Big)

    then one policy update (``actor.policy_loss``, its epochs and mini-batches) over the
    samples of turn t with advantages :math:`M_{i,t} A_{i,t}` (:math:`M` held constant),
    where :math:`\theta_k` is the policy right after turn k's update (its ratio is taken
    then, as an updated agent's ratio is fixed in HAPPO's sequential scheme) and
    :math:`y_{i,k}` trajectory i's response at turn k. ``weight_clip`` bounds :math:`M` to
    :math:`[1/c, c]` (``null``: unbounded).

    Source: Hu et al. 2026, "SeeUPO: Sequence-Level Agentic-RL with Convergence Guarantees"
    (arXiv:2602.06554): reverse-order sequential updates with sequence-level ratios and
    group-relative advantages (their SeeUPPO-GRAE), built on HAML/HAPPO's sequential
    update (Kuba et al. 2022, arXiv:2109.11251). What we could verify: the paper's abstract
    and summaries (reverse order, turn-by-turn, sequence level, critic-free with GRAE);
    its method section with the exact objective was not available to us, so the
    reweighting above follows HAPPO's form. Use it with ``actor.policy_loss: gspo`` (a
    sequence-level ratio per turn's response) and an episode-level estimator such as
    ``grpo``. Chat samples are trained once per turn with the other turns masked out
    (the forward runs over the whole conversation each time). Not for data parallel
    runs (ranks would hold different turn counts).

    Cost: T policy updates over the iteration's tokens split by turn (T times the
    optimizer steps) and one extra forward per turn for the ratios.
    """

    def __init__(self, *, weight_clip: PositiveFloat | None = None) -> None:
        self.weight_clip = weight_clip

    def run(self, samples: list[Sample], update: Update, score: Score) -> dict[str, float]:
        views = turn_views(samples)
        weight: dict[int, float] = defaultdict(lambda: 1.0)  # trajectory -> product so far
        sums: dict[str, float] = defaultdict(float)
        weights_used: list[float] = []
        for turn in sorted(views, reverse=True):
            group = views[turn]
            trained = []
            for view in group:
                m = weight[view.traj_index]
                if self.weight_clip is not None:
                    m = min(max(m, 1.0 / self.weight_clip), self.weight_clip)
                weights_used.append(m)
                if m != 1.0:
                    view = copy.copy(view)
                    view.advantages = [a * m for a in view.advantages]
                trained.append(view)
            for key, value in update(trained).items():
                sums[key] += value / len(views)
            score(group, "seeupo_logprobs")
            for view in group:
                weight[view.traj_index] *= _sequence_ratio(view, "seeupo_logprobs")
        sums["seeupo/turns"] = float(len(views))
        sums["seeupo/weight_mean"] = float(np.mean(weights_used)) if weights_used else 1.0
        sums["seeupo/weight_max"] = float(np.max(weights_used)) if weights_used else 1.0
        return dict(sums)
