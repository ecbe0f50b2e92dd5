"""One batch object per RL iteration: trajectories -> columns -> shaped rewards ->
advantages -> samples.

:class:`IterationBatch` is built once from an iteration's rollouts and then read top to
bottom by the training loop::

    batch = IterationBatch.from_rollouts(iteration, trajectories)
    batch.shape_rewards(shapers)                 # algorithm.reward_shaping
    batch.provide_inputs(providers, context)     # input providers (judge, critic, ...)
    batch.compute_advantages(name, settings)     # algorithm.adv_estimator, inputs by name
    batch.filter_groups()                        # algorithm.filter_groups (DAPO)
    batch.build_samples(style)                   # token ids, masks, per-token advantages

Each step stores its result on the batch (``rewards``, ``credit``, ``advantages``,
``keep``, ``samples``) and adds its metrics to ``batch.metrics``. Errored or empty
trajectories are kept in ``trajectories`` (they count in ``train/*`` metrics) but leave
credit and training (``usable``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentgym.credit import CreditBatch, estimator_inputs
from agentgym.credit.registry import DEFAULT_REGISTRY
from agentgym.inputs import fill_inputs
from agentgym.providers import InputProvider, ProviderContext
from agentgym.shaping import RewardContext, RewardShaper, apply_shapers
from agentgym.trainers.samples import Sample, build_samples
from agentgym.trajectory import StepColumns, Trajectory, flatten

__all__ = ["IterationBatch"]


@dataclass
class IterationBatch:
    """An iteration's data, from rollouts to training samples (see the module docstring).

    Attributes:
        iteration: the RL iteration (1-based).
        trajectories: every rollout of the iteration, errors included.
        usable: the trajectories that enter credit and training (no error, >= 1 step).
        columns: ``usable`` flattened to one row per step.
        rewards: per-row rewards after shaping (the steps' own ``reward`` before it).
        credit: the validated credit batch the estimator ran on.
        advantages: per-row advantages.
        keep: per usable trajectory, whether it is trained on (``filter_groups``).
        samples: the training samples of the kept trajectories.
        metrics: what the steps measured so far.
        provided: per-row columns the input providers filled (estimator inputs).
    """

    iteration: int
    trajectories: list[Trajectory]
    usable: list[Trajectory]
    columns: StepColumns
    rewards: np.ndarray
    credit: CreditBatch | None = None
    advantages: np.ndarray = field(default_factory=lambda: np.zeros(0))
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    samples: list[Sample] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    provided: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_rollouts(cls, iteration: int, trajectories: list[Trajectory]) -> IterationBatch:
        usable = [t for t in trajectories if t.status != "error" and t.steps]
        columns = flatten(usable)
        return cls(
            iteration=iteration,
            trajectories=trajectories,
            usable=usable,
            columns=columns,
            rewards=columns.reward.copy(),
            advantages=np.zeros(len(columns)),
            keep=np.ones(len(usable), dtype=bool),
        )

    @property
    def n_rows(self) -> int:
        return len(self.columns)

    # ------------------------------------------------------------------ steps

    def shape_rewards(self, shapers: list[tuple[str, RewardShaper]]) -> None:
        """Apply the reward shapers in order (``algorithm.reward_shaping``)."""
        if not shapers or not self.n_rows:
            return
        ctx = RewardContext(self.columns, self.rewards, self.iteration)
        self.rewards, metrics = apply_shapers(shapers, ctx)
        self.metrics.update(metrics)

    def provide_inputs(self, providers: Sequence[InputProvider], ctx: ProviderContext) -> None:
        """Run the input providers in order; each fills the columns it ``provides``
        (see :mod:`agentgym.providers`). ``ctx`` carries the model, judge and settings;
        its columns, rewards and the columns filled so far are set here."""
        if not providers or not self.n_rows:
            return
        ctx.columns, ctx.rewards, ctx.provided = self.columns, self.rewards, self.provided
        ctx.iteration = self.iteration
        for provider in providers:
            started = time.perf_counter()
            filled = provider.provide(ctx)
            for name in provider.provides:
                if name not in filled:
                    raise ValueError(f"input provider {provider.name!r} did not fill {name!r}")
                value = np.asarray(filled[name])
                if value.shape[:1] != (self.n_rows,):
                    raise ValueError(
                        f"input provider {provider.name!r} filled {name!r} with shape "
                        f"{value.shape}, expected one value per row ({self.n_rows})"
                    )
                self.provided[name] = value
            ctx.metrics[f"perf/seconds_provider_{provider.name}"] = time.perf_counter() - started
        self.metrics.update(ctx.metrics)
        ctx.metrics.clear()

    def compute_advantages(self, estimator: str, settings: dict[str, Any]) -> None:
        """Run the credit estimator on the batch, with its inputs filled by name (from the
        input providers' columns first, then from the trajectories)."""
        if not self.n_rows:
            return
        self.credit = CreditBatch.from_columns(
            group=self.columns.group,
            traj=self.columns.traj,
            step=self.columns.step,
            reward=self.rewards,
            state=self.columns.state,
        )
        wanted = estimator_inputs(estimator)
        inputs = {name: self.provided[name] for name in wanted if name in self.provided}
        inputs.update(fill_inputs([n for n in wanted if n not in inputs], self.columns))
        self.advantages = DEFAULT_REGISTRY.apply(estimator, self.credit, **settings, **inputs)
        adv = self.advantages
        self.metrics.update(
            {
                "credit/adv_mean": float(adv.mean()),
                "credit/adv_std": float(adv.std()),
                "credit/adv_abs_mean": float(np.abs(adv).mean()),
                "credit/adv_zero_share": float(np.mean(np.abs(adv) < 1e-8)),
            }
        )

    def filter_groups(self) -> None:
        """DAPO dynamic sampling: keep only trajectories of groups with a spread of returns
        (the credit batch's informative groups, so the test is the estimators' own)."""
        if self.credit is None:
            return
        informative = self.credit.informative_groups()
        # credit codes trajectories in order of first appearance, as flatten numbers them
        self.keep = informative[self.credit.traj_group].astype(bool)
        self.metrics["train/kept_group_share"] = float(self.keep.mean()) if self.keep.size else 0.0

    def step_advantages(self) -> list[list[float]]:
        """``[trajectory][step]`` advantages of the usable trajectories.

        A step that several trajectories share (the common prefix of a tree rollout's
        leaves, one ``node``) is stored and trained once: it gets the mean of its rows'
        advantages, the same in every trajectory that holds it.
        """
        advantages = self.advantages
        if self.columns.has_shared_steps:
            node = self.columns.node
            count = np.bincount(node)
            advantages = (np.bincount(node, weights=advantages) / count)[node]
        per_traj: list[list[float]] = [[0.0] * len(t.steps) for t in self.usable]
        for row, (t, s) in enumerate(zip(self.columns.traj, self.columns.step, strict=True)):
            per_traj[t][s] = float(advantages[row])
        return per_traj

    def build_samples(self, style: str) -> None:
        """Training samples of the kept trajectories (a step's advantage on its response
        tokens only)."""
        per_traj = self.step_advantages()
        chosen = [i for i in range(len(self.usable)) if self.keep[i]]
        traj_group = np.zeros(len(self.usable), dtype=np.int64)
        traj_group[self.columns.traj] = self.columns.group
        nodes = None
        if self.columns.has_shared_steps:  # shared steps: trained once (their first holder)
            per_traj_nodes = np.split(
                self.columns.node, np.cumsum([len(t.steps) for t in self.usable])
            )
            nodes = [per_traj_nodes[i].tolist() for i in chosen]
        self.samples = build_samples(
            [self.usable[i] for i in chosen],
            [per_traj[i] for i in chosen],
            style,
            groups=[int(traj_group[i]) for i in chosen],
            nodes=nodes,
        )
        self.metrics["train/samples"] = float(len(self.samples))
