"""The model-in-the-loop parts of a run: input providers, the judge, the task sampler.

:class:`LoopMethods` is built once per run from the config and called by the training
loop at four points of an iteration (see :mod:`agentgym.providers`)::

    tasks = methods.sample_tasks(spec, count, seed, iteration)   # algorithm.task_sampler
    ... roll out, shape rewards ...
    methods.provide(batch)          # providers fill estimator inputs (judge, critic, ...)
    ... credit, samples ...
    methods.adjust_samples(batch)   # providers edit per-token advantages
    ... policy update ...
    methods.after_update(batch)     # critics learn, trackers update

Its :meth:`state_dict` (every provider's and the sampler's) goes into checkpoints. With no
provider, the default sampler and no judge it does what the loop did before: uniform
task samples and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentgym.config import TrainConfig
from agentgym.config.schema import run_providers
from agentgym.providers import InputProvider, ProviderContext, build_providers
from agentgym.task_samplers import TaskSampler, TaskSamplerContext, build_task_sampler

__all__ = ["LoopMethods", "build_loop_methods"]


class LoopMethods:
    """Providers, judge and task sampler of one run (see the module docstring)."""

    def __init__(
        self,
        providers: list[InputProvider],
        sampler: TaskSampler,
        judge: Any = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        device: Any = "cpu",
        pad_id: int = 0,
        micro_batch_size: int = 32,
        estimator: str = "",
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.providers, self.sampler, self.judge = providers, sampler, judge
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.pad_id, self.micro_batch_size = pad_id, micro_batch_size
        self.estimator, self.settings = estimator, dict(settings or {})
        self._ctx: ProviderContext | None = None

    @property
    def by_name(self) -> dict[str, InputProvider]:
        return {p.name: p for p in self.providers}

    def sample_tasks(self, spec: Any, count: int, seed: int, iteration: int) -> list[Any]:
        return self.sampler.sample(
            TaskSamplerContext(spec, "train", count, seed, iteration, self.by_name)
        )

    def _context(self, batch: Any) -> ProviderContext:
        return ProviderContext(
            iteration=batch.iteration,
            columns=batch.columns,
            rewards=batch.rewards,
            provided=batch.provided,
            model=self.model,
            tokenizer=self.tokenizer,
            device=self.device,
            pad_id=self.pad_id,
            micro_batch_size=self.micro_batch_size,
            judge=self.judge,
            estimator=self.estimator,
            settings=self.settings,
        )

    def provide(self, batch: Any) -> None:
        """Run every provider's :meth:`~agentgym.providers.InputProvider.provide`."""
        if self.judge is not None:
            self.judge.new_iteration()
        self._ctx = self._context(batch)
        batch.provide_inputs(self.providers, self._ctx)
        if self.judge is not None:
            batch.metrics.update(self.judge.metrics())

    def _after_credit(self, batch: Any) -> ProviderContext:
        ctx = self._ctx if self._ctx is not None else self._context(batch)
        ctx.provided, ctx.advantages = batch.provided, batch.advantages
        ctx.samples, ctx.keep = batch.samples, batch.keep
        return ctx

    def adjust_samples(self, batch: Any) -> None:
        if not self.providers or not batch.n_rows:
            return
        ctx = self._after_credit(batch)
        for provider in self.providers:
            provider.adjust_samples(ctx)
        batch.metrics.update(ctx.metrics)
        ctx.metrics.clear()

    def after_update(self, batch: Any) -> None:
        if not self.providers or not batch.n_rows:
            return
        import time

        ctx = self._after_credit(batch)
        for provider in self.providers:
            started = time.perf_counter()
            provider.after_update(ctx)
            ctx.metrics[f"perf/seconds_after_update_{provider.name}"] = (
                time.perf_counter() - started
            )
        batch.metrics.update(ctx.metrics)
        ctx.metrics.clear()
        self._ctx = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "providers": [{"name": p.name, "state": p.state_dict()} for p in self.providers],
            "task_sampler": {"name": self.sampler.name, "state": self.sampler.state_dict()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = {s["name"]: s["state"] for s in state.get("providers", [])}
        for provider in self.providers:
            if provider.name in saved:
                provider.load_state_dict(saved[provider.name])
        sampler = state.get("task_sampler")
        if sampler and sampler.get("name") == self.sampler.name:
            self.sampler.load_state_dict(sampler["state"])

    def close(self) -> None:
        if self.judge is not None:
            self.judge.close()


def build_loop_methods(
    cfg: TrainConfig,
    *,
    model: Any = None,
    tokenizer: Any = None,
    device: Any = "cpu",
    pad_id: int = 0,
) -> LoopMethods:
    """The run's providers (those its estimator's inputs need and those named in
    ``algorithm.providers``), its task sampler and, when ``judge.model`` is set, its judge."""
    providers = build_providers(run_providers(cfg), cfg.algorithm.providers)
    judge = None
    if cfg.judge.model and any(p.uses_judge for p in providers):
        from agentgym.judges import Judge

        j = cfg.judge
        judge = Judge(
            j.model,
            system=j.system,
            max_tokens=j.max_tokens,
            temperature=j.temperature,
            batch_size=j.batch_size,
            retries=j.retries,
            seed=cfg.seed,
            options=j.options,
        )
    return LoopMethods(
        providers,
        build_task_sampler(cfg.algorithm.task_sampler),
        judge,
        model=model,
        tokenizer=tokenizer,
        device=device,
        pad_id=pad_id,
        micro_batch_size=cfg.actor.micro_batch_size,
        estimator=cfg.algorithm.adv_estimator,
        settings=cfg.algorithm.estimator_kwargs(),
    )
