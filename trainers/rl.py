"""The training run: (tiny model) -> SFT warm start -> test -> RL iterations -> test.

Each RL iteration: sample B train tasks -> roll out N per task -> one
:class:`~agentgym.trainers.batch.IterationBatch` (reward shaping -> credit with the
estimator's inputs filled by name -> group filter -> samples) -> PPO epochs -> push
weights to the inference engine -> log; validation every ``trainer.val_every``;
checkpoint every ``trainer.save_every``. The loop only calls parts that stand alone
(rollout engine, shapers, credit estimators, :func:`~agentgym.trainers.update.ppo_update`,
checkpoints, loggers). Metrics of training, validation and ``agentgym eval`` come from one
function, :func:`agentgym.evaluation.metrics.summarize`.

Determinism: every iteration's task sample and sampling seed derive from
``(seed, iteration)``, so a run resumed from a checkpoint continues exactly as an
uninterrupted run would (on CPU, same machine and thread count). With
``trainer.max_staleness >= 1`` the rollouts of the next iterations run in a thread while
the current update runs (:mod:`agentgym.trainers.offpolicy`); which policy version samples
which step then depends on timing, so such runs are not reproducible step for step.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentgym.config import TrainConfig, save_config, to_dict
from agentgym.config.settings import (
    TEST_SEED_OFFSET,
    VALIDATION_SEED_OFFSET,
    env_spec,
    prompt_builder,
    sampling_params,
)
from agentgym.evaluation.metrics import summarize
from agentgym.policies import Policy
from agentgym.rollout import RolloutEngine, TaskRequest, sample_tasks
from agentgym.rollout.strategies import whole_episodes
from agentgym.runs import RunDir, RunDirError, prepare_new, write_json
from agentgym.shaping import build_shapers
from agentgym.trainers import distributed as dist
from agentgym.trainers import fsdp
from agentgym.trainers.batch import IterationBatch
from agentgym.trainers.checkpoint import load_checkpoint, save_checkpoint
from agentgym.trainers.health import InvalidActionWatch
from agentgym.trainers.in_loop import LoopMethods, build_loop_methods
from agentgym.trainers.model import apply_lora, load_model, merged_state_dict, resolve_device
from agentgym.trainers.offpolicy import (
    RolloutProducer,
    VersionedPolicy,
    correct_samples,
    drop_stale,
)
from agentgym.trainers.rollout_log import write_rollout_sample
from agentgym.trainers.schedules import build_update_schedule
from agentgym.trainers.setup import build_engine, ensure_model
from agentgym.trainers.sft import check_demonstrations, sft_samples, sft_train
from agentgym.trainers.tracking import MetricLogger
from agentgym.trainers.update import fill_logprobs, ppo_update
from agentgym.trajectory import Trajectory, read_jsonl


@dataclass
class RunResult:
    """What a finished run reports (also written to ``RUN_DIR/summary.json``)."""

    run_dir: str
    iterations: int
    test_before: dict[str, float] | None
    test_after: dict[str, float] | None
    final_metrics: dict[str, float]
    param_norm: float = 0.0  # L2 norm of this rank's weights at the end (equal on all ranks)


def _iteration_seed(seed: int, iteration: int) -> int:
    return (seed * 1_000_003 + iteration * 7919 + 17) % (2**31)


def _make_policy(cfg: TrainConfig, model: Any, tokenizer: Any, model_dir: str) -> Policy:
    if cfg.policy.backend == "hf":
        from agentgym.policies.hf import HFPolicy

        return HFPolicy.from_model(
            model, tokenizer, batch_size=int(cfg.policy.backend_options.get("batch_size", 64))
        )
    from agentgym.policies import make_policy

    policy = make_policy(f"{cfg.policy.backend}:{model_dir}", **cfg.policy.backend_options)
    policy.load_weights(merged_state_dict(model))
    return policy


def evaluate_split(
    engine: RolloutEngine, tasks: list[TaskRequest], prefix: str, episodes: int = 1
) -> dict[str, float]:
    """Play ``tasks`` with the evaluation code of ``agentgym eval`` (so training logs and
    eval reports agree); metrics are named ``{prefix}/success`` etc."""
    from agentgym.evaluation.runner import evaluate

    return evaluate(engine, tasks, episodes, prefix=f"{prefix}/").metrics


def _demonstrations(cfg: TrainConfig, tokenizer: Any) -> list[Trajectory]:
    if cfg.sft.data != "expert":
        return read_jsonl(cfg.sft.data)  # checked by _check_inputs
    from agentgym.policies.builtin import ExpertPolicy

    engine = build_engine(cfg, ExpertPolicy("expert"), sampling_params(cfg.policy.sampling))
    try:
        tasks = sample_tasks(env_spec(cfg), "train", cfg.sft.tasks, seed=cfg.seed + 101)
        return engine.run(tasks, n=1, group_prefix="sft-")
    finally:
        engine.close()


def train(
    cfg: TrainConfig, resume: bool = False, console: Any = None, force: bool = False
) -> RunResult:
    """Run the whole recipe described by ``cfg``; see the module docstring.

    A new run (``resume=False``) refuses a run directory that already holds files, unless
    ``force`` moves them aside (to ``RUN_DIR.N``; nothing is deleted). ``resume`` continues
    from the newest checkpoint that loads (falling back past a dangling ``latest`` or a
    damaged newest checkpoint, and saying so); with no checkpoint at all it starts over
    after moving any files aside. Whatever ends the run (the last iteration, an error,
    Ctrl-C), the metric sinks are flushed and closed and the environment pools, the
    policy and the process group are shut down.
    """
    with contextlib.ExitStack() as cleanup:
        return _train(cfg, resume, force, console, cleanup)


@dataclass
class _Parts:
    """What one iteration needs, built once per run."""

    cfg: TrainConfig
    ctx: dist.DistContext
    run: RunDir
    model: Any
    ddp_model: Any
    ref_model: Any
    optimizer: torch.optim.Optimizer
    policy: Policy
    engine: RolloutEngine
    shapers: list[tuple[str, Any]]
    pad_id: int
    device: torch.device
    rollout_model: Any = None  # what the hf backend generates with (FSDP: a full copy)
    methods: LoopMethods | None = None  # input providers, judge, task sampler
    producer: RolloutProducer | None = None  # trainer.max_staleness >= 1: rollouts ahead


def _tasks_text(tasks: list[TaskRequest]) -> str:
    distinct = len({t.task_id for t in tasks})
    return f"{distinct} held-out tasks x 1 episode"


def _check_inputs(cfg: TrainConfig, resume: bool) -> None:
    """What the run reads, checked before the run directory exists: demonstrations from
    another environment, and a ``policy.model`` that is not a model directory here (a Hub
    id says whether it is cached or the Hub reachable)."""
    if cfg.sft.enabled and cfg.sft.data != "expert" and not resume:
        check_demonstrations(read_jsonl(cfg.sft.data), cfg.env.id, cfg.sft.data)
    if cfg.policy.model == "tiny" or Path(cfg.policy.model).is_dir():
        return
    from agentgym.errors import ConfigError
    from agentgym.policies.hub import looks_like_hub_id, resolve_model

    resolve_model("policy.model", cfg.policy.model)  # raises when neither here nor reachable
    hub = " (a Hugging Face Hub id)" if looks_like_hub_id(cfg.policy.model) else ""
    raise ConfigError(
        f"policy.model {cfg.policy.model!r}{hub} is not a model directory here; training "
        "reads a local directory: download the model first (e.g. `huggingface-cli download "
        f"{cfg.policy.model} --local-dir models/x`) and set policy.model to it, or use "
        "'tiny' to build one for the environment"
    )


def _say(ctx: dist.DistContext, console: Any, message: str) -> None:
    if not ctx.is_main:
        return
    if console is not None:
        console.print(message)
    else:
        print(message)


def _prepare_dir(
    run: RunDir, resume: bool, force: bool, ctx: dist.DistContext, console: Any
) -> tuple[list[Path], str]:
    """Resume candidates (best first; empty for a fresh start) and the run's id."""
    candidates: list[Path] = []
    if ctx.is_main:
        if resume:
            candidates = [path for path, _why in run.resume_candidates()]
            if not candidates:
                moved = prepare_new(run, force=True)
                note = f"; its files were moved to {moved}" if moved else ""
                _say(ctx, console, f"no checkpoint to resume in {run.path}: starting over{note}")
        else:
            moved = prepare_new(run, force)
            if moved is not None:
                _say(ctx, console, f"--force: the previous contents of {run.path} are in {moved}")
        run_id = (run.run_id() if candidates else None) or run.start()
    else:
        run_id = ""
    candidates = dist.broadcast_object(candidates, ctx)
    run_id = dist.broadcast_object(run_id, ctx)
    return candidates, run_id


def _load_first(
    candidates: list[Path],
    model: Any,
    optimizer: torch.optim.Optimizer,
    ctx: dist.DistContext,
    console: Any,
) -> tuple[Path, dict[str, Any]]:
    """Load the first checkpoint of ``candidates`` that loads; say which ones failed."""
    problems = []
    for path in candidates:
        try:
            state = load_checkpoint(path, model, optimizer)
        except (RunDirError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
            _say(ctx, console, f"checkpoint {path} cannot be used ({exc}); trying an older one")
            continue
        if problems:
            _say(ctx, console, f"resuming from the older checkpoint {path}")
        return path, state
    raise RunDirError("no checkpoint of the run could be loaded:\n  " + "\n  ".join(problems))


def _train(
    cfg: TrainConfig, resume: bool, force: bool, console: Any, cleanup: contextlib.ExitStack
) -> RunResult:
    from agentgym.trainers.progress import RunProgress

    _check_inputs(cfg, resume)  # before anything is created
    ctx = dist.init()
    cleanup.callback(dist.shutdown, ctx)
    run = RunDir(cfg.trainer.out_dir)
    candidates, run_id = _prepare_dir(run, resume, force, ctx, console)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.policy.device if not ctx.distributed else "cpu")
    progress = RunProgress(enabled=cfg.trainer.progress and ctx.is_main, console=console)

    with progress.status("preparing the model"):
        model_dir = ensure_model(cfg, run.path) if ctx.is_main else None
        model_dir = dist.broadcast_object(model_dir, ctx)
        model, tokenizer = load_model(model_dir, cfg.policy.dtype, str(device))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    # ------------------------------------------------------------------ SFT warm start
    sft_metrics: dict[str, float] = {}
    if cfg.sft.enabled and not candidates:
        sft_metrics = _sft(cfg, model, tokenizer, pad_id, device, progress)
        if ctx.is_main:  # RL can restart from here: policy.model=RUN_DIR/sft-model
            from agentgym.trainers.model import save_pretrained

            save_pretrained(model, tokenizer, str(run.sft_model))

    model = apply_lora(model, cfg.actor)
    ref_model = None
    if cfg.actor.needs_reference:
        ref_model = copy.deepcopy(model).eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)
    # FSDP shards before the optimizer exists (it must hold the shards); generation gets a
    # full copy: a sharded forward is a collective, and ranks generate unequal counts.
    rollout_model = model
    if cfg.trainer.strategy == "fsdp" and ctx.distributed:
        if cfg.policy.backend == "hf":
            rollout_model = fsdp.rollout_copy(model)
        fsdp.shard(model, ctx)
    staleness = cfg.trainer.max_staleness
    if staleness and ctx.distributed:
        from agentgym.errors import ConfigError

        raise ConfigError(
            f"trainer.max_staleness={staleness} runs in one process only; under torchrun "
            "use trainer.max_staleness=0"
        )
    if staleness and cfg.policy.backend == "hf":  # generation runs beside the update
        rollout_model = fsdp.rollout_copy(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.actor.lr, weight_decay=cfg.actor.weight_decay)
    shapers = build_shapers(cfg.algorithm.reward_shaping)
    methods = cleanup.enter_context(
        contextlib.closing(
            build_loop_methods(
                cfg,
                model=model if staleness else rollout_model,  # the trainer's current weights
                tokenizer=tokenizer,
                device=device,
                pad_id=pad_id,
            )
        )
    )
    watch = InvalidActionWatch()
    start_iteration = 0
    if candidates:
        _ckpt, state = _load_first(candidates, model, optimizer, ctx, console)
        start_iteration = int(state["iteration"])
        for (name, shaper), saved in zip(shapers, state.get("shapers", []), strict=False):
            if saved.get("name") == name:
                shaper.load_state_dict(saved["state"])
        methods.load_state_dict(state.get("methods", {}))
        watch.load_state_dict(state.get("health", {}))
    if ctx.is_main:  # only now: a failed resume leaves the run's own config.yaml alone
        save_config(cfg, run.config)
    logger = MetricLogger(
        run.path,
        cfg.trainer.loggers,
        config=to_dict(cfg),
        resume_after=start_iteration if candidates else None,
        enabled=ctx.is_main,
        project=cfg.trainer.wandb_project,
    )
    cleanup.callback(logger.close)
    if sft_metrics:
        logger.log(sft_metrics, iteration=0)
    summary: dict[str, Any] = {}
    if candidates and run.summary.exists():
        summary = json.loads(run.summary.read_text())

    ddp_model = model if fsdp.is_sharded(model) else dist.wrap(model, ctx)
    policy = cleanup.enter_context(
        contextlib.closing(
            VersionedPolicy(
                _make_policy(cfg, rollout_model, tokenizer, model_dir), version=start_iteration
            )
        )
    )
    spec = env_spec(cfg)
    train_engine = cleanup.enter_context(
        contextlib.closing(
            build_engine(cfg, policy, sampling_params(cfg.policy.sampling), training=True)
        )
    )
    val_engine = cleanup.enter_context(
        contextlib.closing(
            build_engine(cfg, policy, sampling_params(cfg.policy.val_sampling, cfg.seed))
        )
    )
    val_tasks = sample_tasks(
        spec,
        cfg.trainer.val_split,
        cfg.trainer.val_tasks,
        seed=cfg.seed + VALIDATION_SEED_OFFSET,
        distinct=True,
    )
    test_tasks = (
        sample_tasks(
            spec, "test", cfg.trainer.test_tasks, seed=cfg.seed + TEST_SEED_OFFSET, distinct=True
        )
        if cfg.trainer.test_tasks
        else []
    )
    for name, tasks, asked in (
        (cfg.trainer.val_split, val_tasks if cfg.trainer.val_every else [], cfg.trainer.val_tasks),
        ("test", test_tasks, cfg.trainer.test_tasks),
    ):
        if tasks and len(tasks) < asked:
            _say(ctx, console, f"the {name} split has {len(tasks)} tasks: each is played once "
                 f"({asked} were asked for)")  # fmt: skip
    parts = _Parts(
        cfg,
        ctx,
        run,
        model,
        ddp_model,
        ref_model,
        optimizer,
        policy,
        train_engine,
        shapers,
        pad_id,
        device,
        rollout_model=rollout_model,
        methods=methods,
    )

    if test_tasks and ctx.is_main and "test_before" not in summary:
        with progress.status(f"testing on {_tasks_text(test_tasks)} (before RL)"):
            summary["test_before"] = evaluate_split(val_engine, test_tasks, "test")
        logger.log({f"{k}_before": v for k, v in summary["test_before"].items()}, start_iteration)
        write_json(run.summary, summary)

    # ------------------------------------------------------------------ RL
    if staleness and start_iteration < cfg.trainer.total_iterations:
        # rollouts produced ahead before a crash are not in the checkpoint: the producer
        # starts over from the resumed weights (see agentgym.trainers.offpolicy)
        parts.producer = RolloutProducer(
            lambda j: _rollout(parts, j),
            policy,
            first=start_iteration + 1,
            last=cfg.trainer.total_iterations,
            version=start_iteration,
            max_staleness=staleness,
        )
        cleanup.callback(parts.producer.close)  # before the engines and the policy close
    bar = progress.task("RL", total=cfg.trainer.total_iterations, completed=start_iteration)
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    iteration = saved_at = start_iteration

    def save(at: int) -> None:
        nonlocal saved_at
        # FSDP: every rank takes part in gathering the weights and optimizer; rank 0 writes.
        consolidated = fsdp.consolidated_state(model, optimizer) if fsdp.is_sharded(model) else None
        if ctx.is_main:
            save_checkpoint(
                run.path,
                at,
                model,
                tokenizer,
                optimizer,
                {
                    "seed": cfg.seed,
                    "shapers": [
                        {"name": name, "state": shaper.state_dict()} for name, shaper in shapers
                    ],
                    "methods": methods.state_dict(),
                    "health": watch.state_dict(),
                },
                keep=cfg.trainer.keep_checkpoints,
                run_id=run_id,
                consolidated=consolidated,
            )
        saved_at = at

    for iteration in range(start_iteration + 1, cfg.trainer.total_iterations + 1):
        if cfg.trainer.max_seconds and time.perf_counter() - started > cfg.trainer.max_seconds:
            iteration -= 1
            break
        metrics = _rl_iteration(parts, iteration)
        warning = watch.update(metrics)
        if warning:
            _say(ctx, console, warning)
        if cfg.trainer.val_every and iteration % cfg.trainer.val_every == 0 and ctx.is_main:
            metrics.update(
                evaluate_split(val_engine, val_tasks, "val", cfg.trainer.val_episodes_per_task)
            )
        logger.log(metrics, iteration)
        bar.advance(
            **{
                k.split("/")[-1]: metrics[k]
                for k in ("train/success", "train/reward", "val/success")
                if k in metrics
            }
        )
        every = cfg.trainer.save_every
        if every and iteration % every == 0:
            save(iteration)  # writes on rank 0 only
        dist.barrier(ctx)
    bar.done()
    if parts.producer is not None:
        parts.producer.close()  # what it produced ahead is not needed any more
    if iteration > start_iteration and saved_at != iteration:
        save(iteration)  # the last iteration (also after trainer.max_seconds)

    if test_tasks and ctx.is_main and iteration > start_iteration:
        with progress.status(f"testing on {_tasks_text(test_tasks)} (after RL)"):
            summary["test_after"] = evaluate_split(val_engine, test_tasks, "test")
        logger.log({f"{k}_after": v for k, v in summary["test_after"].items()}, iteration)
    summary["iterations"] = iteration
    if ctx.is_main:
        write_json(run.summary, summary)
        if iteration > 0 and cfg.trainer.plots:
            from agentgym.trainers.plots import plot_run

            plot_run(run.path)  # RUN_DIR/plots/*.png
    param_norm = fsdp.param_norm(model)  # FSDP: of the gathered weights (every rank)
    return RunResult(
        str(run.path),
        iteration,
        summary.get("test_before"),
        summary.get("test_after"),
        metrics,
        param_norm,
    )


def _sft(
    cfg: TrainConfig, model: Any, tokenizer: Any, pad_id: int, device: torch.device, progress: Any
) -> dict[str, float]:
    with progress.status("collecting demonstrations"):
        demos = _demonstrations(cfg, tokenizer)
    samples = sft_samples(
        demos,
        tokenizer,
        cfg.env.prompt.style,
        only_successful=cfg.sft.only_successful,
        prompts=prompt_builder(cfg),
        prompt_loss=cfg.sft.prompt_loss,
    )
    bar = progress.task("SFT", total=cfg.sft.epochs * -(-len(samples) // cfg.sft.batch_size))
    metrics = sft_train(
        model,
        samples,
        epochs=cfg.sft.epochs,
        lr=cfg.sft.lr,
        batch_size=cfg.sft.batch_size,
        pad_id=pad_id,
        rng=np.random.default_rng(cfg.seed),
        device=device,
        on_batch=lambda m: bar.advance(loss=m["sft/loss"]),
    )
    bar.done()
    return metrics


def _rollout(parts: _Parts, iteration: int) -> tuple[list[Trajectory], dict[str, float]]:
    """Iteration ``iteration``'s rollout: this rank's share of its tasks, N rollouts each
    (called by the loop, or ahead of it by the rollout producer's thread)."""
    cfg, ctx, engine = parts.cfg, parts.ctx, parts.engine
    it_seed = _iteration_seed(cfg.seed, iteration)
    methods = parts.methods or build_loop_methods(cfg)
    all_tasks = methods.sample_tasks(
        env_spec(cfg), cfg.trainer.tasks_per_iteration, it_seed, iteration
    )  # algorithm.task_sampler
    engine.sampling = sampling_params(cfg.policy.sampling, it_seed + ctx.rank)
    engine.stats = type(engine.stats)()
    trajectories = engine.run(
        all_tasks[ctx.rank :: ctx.world_size], n=cfg.env.rollout.n, group_prefix=f"it{iteration}-"
    )
    return trajectories, engine.stats.as_metrics("perf/rollout_")


def _rl_iteration(parts: _Parts, iteration: int) -> dict[str, float]:
    """One iteration: rollout (or take the one produced ahead), drop what is too stale,
    reward shaping, credit, samples, mismatch correction, update, weight sync."""
    cfg, ctx = parts.cfg, parts.ctx
    it_seed = _iteration_seed(cfg.seed, iteration)
    t0 = time.perf_counter()
    methods = parts.methods or build_loop_methods(cfg)
    if parts.producer is None:
        parts.model.eval()
        trajectories, rollout_metrics = _rollout(parts, iteration)
        t_rollout = time.perf_counter() - t0
    else:
        produced = parts.producer.take(iteration)
        trajectories, rollout_metrics = produced.trajectories, produced.metrics
        t_rollout = produced.seconds
        rollout_metrics["perf/seconds_rollout_wait"] = time.perf_counter() - t0
    played = trajectories
    # the trainer holds version iteration - 1 (weights after the previous update)
    trajectories, stale_metrics = drop_stale(trajectories, iteration - 1, cfg.trainer.max_staleness)

    # one batch, read top to bottom
    batch = IterationBatch.from_rollouts(iteration, trajectories)
    # success rates of whole episodes (a local strategy's re-rolls start mid-episode)
    batch.metrics.update(summarize(whole_episodes(played), "train/", by_type=False))
    batch.metrics.update(rollout_metrics)
    batch.metrics.update(stale_metrics)
    batch.shape_rewards(parts.shapers)
    methods.provide(batch)  # input providers: judges, the policy's own log-probs, critics
    batch.compute_advantages(cfg.algorithm.adv_estimator, cfg.algorithm.estimator_kwargs())
    if cfg.algorithm.filter_groups:
        batch.filter_groups()
    batch.build_samples(cfg.env.prompt.style)
    methods.adjust_samples(batch)  # providers' per-token advantages (HiPER's subgoal tokens)
    if cfg.trainer.save_rollouts and ctx.is_main and batch.usable:
        write_rollout_sample(
            parts.run.path,
            iteration,
            batch.usable,
            batch.step_advantages(),
            estimator=cfg.algorithm.adv_estimator,
            max_groups=cfg.trainer.save_rollouts,
            seed=cfg.seed,
        )

    # update
    t1 = time.perf_counter()
    samples = batch.samples
    mb = cfg.actor.micro_batch_size
    shared_prefix = cfg.actor.shared_prefix  # Prefix Grouper
    if fsdp.is_sharded(parts.model):  # each forward is a collective: equal counts first
        samples = dist.pad_samples(samples, ctx)
    if not cfg.actor.use_rollout_logprobs:
        rollout_logprobs = [s.old_logprobs for s in samples]  # fill_logprobs replaces them
        fill_logprobs(
            parts.model, samples, "old_logprobs", mb, parts.pad_id, parts.device, shared_prefix
        )
        # perf/mismatch_kl, and actor.tis's truncated weights / mismatch mask
        tis = cfg.actor.tis
        correction = correct_samples(samples, rollout_logprobs, tis.clip, tis.mask_threshold)
        samples = correction.samples
        batch.metrics.update(correction.metrics)
    if parts.ref_model is not None:
        fill_logprobs(
            parts.ref_model, samples, "ref_logprobs", mb, parts.pad_id, parts.device, shared_prefix
        )
    lr_scale = (
        min(1.0, iteration / cfg.actor.warmup_iterations) if cfg.actor.warmup_iterations else 1.0
    )
    for group in parts.optimizer.param_groups:
        group["lr"] = cfg.actor.lr * lr_scale
    samples = dist.pad_samples(samples, ctx)  # equal step counts on every rank
    update_rng = np.random.default_rng(it_seed)

    def update(subset: list) -> dict[str, float]:
        return ppo_update(
            parts.ddp_model,
            parts.optimizer,
            subset,
            cfg.actor,
            norm_length=float(cfg.policy.sampling.max_tokens),
            pad_id=parts.pad_id,
            rng=update_rng,
            device=parts.device,
            no_sync=getattr(parts.ddp_model, "no_sync", None),
        )

    def score(subset: list, field: str) -> None:
        fill_logprobs(parts.model, subset, field, mb, parts.pad_id, parts.device)

    schedule = build_update_schedule(cfg.actor.update_schedule)  # actor.update_schedule
    if ctx.distributed and schedule.name != "standard":
        raise ValueError(f"update schedule {schedule.name!r} does not run data parallel")
    batch.metrics.update(schedule.run(samples, update, score))
    t_sync = time.perf_counter()
    _sync_weights(parts, version=iteration)
    t_sync = time.perf_counter() - t_sync
    t_update = time.perf_counter() - t1
    methods.after_update(batch)  # critics learn, value trackers update
    tokens = sum(len(s.input_ids) for s in samples)
    batch.metrics.update(
        {
            "perf/seconds_rollout": t_rollout,
            "perf/seconds_update": t_update,
            "perf/seconds_weight_sync": t_sync,
            "perf/seconds_iteration": time.perf_counter() - t0,
            "perf/train_tokens_per_s": tokens / max(t_update, 1e-9),
            "actor/lr": cfg.actor.lr * lr_scale,
        }
    )
    return dist.mean_metrics(batch.metrics, ctx)


def _sync_weights(parts: _Parts, version: int) -> None:
    """Put the trainer's weights into the rollout policy as ``version`` (between two of
    its ``generate`` calls when a rollout producer runs), then let the producer go on."""
    policy = parts.policy
    assert isinstance(policy, VersionedPolicy)
    model, twin = parts.model, parts.rollout_model
    if parts.cfg.policy.backend != "hf":
        policy.load_weights(merged_state_dict(model), version=version)
    elif twin is None or twin is model:
        policy.refresh(None, version)  # the hf policy generates with the trainer's model
    elif fsdp.is_sharded(model):
        policy.refresh(lambda: fsdp.sync_rollout_copy(twin, model), version)  # FSDP's copy
    else:
        policy.refresh(lambda: _copy_weights(twin, model), version)  # max_staleness's copy
    if parts.producer is not None:
        parts.producer.advance(version)


@torch.no_grad()
def _copy_weights(twin: torch.nn.Module, model: torch.nn.Module) -> None:
    twin.load_state_dict(model.state_dict())
