"""The training run: (tiny model) -> SFT warm start -> test -> RL iterations -> test.

Each RL iteration: sample B train tasks -> roll out N per task -> credit
(``agentgym.credit.compute_advantages``) -> PPO epochs -> push weights to the inference
engine -> log; validation every ``trainer.val_every``; checkpoint every
``trainer.save_every``. The loop only calls parts that stand alone (rollout engine, credit
estimators, :func:`~agentgym.trainers.update.ppo_update`, checkpoints, loggers).

Determinism: every iteration's task sample and sampling seed derive from
``(seed, iteration)``, so a run resumed from a checkpoint continues exactly as an
uninterrupted run would (on CPU, same machine and thread count).
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
from agentgym.credit import compute_advantages
from agentgym.policies import Policy
from agentgym.rollout import RolloutEngine, TaskRequest, sample_tasks
from agentgym.trainers import distributed as dist
from agentgym.trainers.checkpoint import (
    checkpoint_iteration,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from agentgym.trainers.model import apply_lora, load_model, merged_state_dict, resolve_device
from agentgym.trainers.samples import build_samples
from agentgym.trainers.setup import (
    TEST_SEED_OFFSET,
    VALIDATION_SEED_OFFSET,
    build_engine,
    ensure_model,
    env_spec,
    prompt_builder,
    sampling_params,
)
from agentgym.trainers.sft import sft_samples, sft_train
from agentgym.trainers.tracking import MetricLogger
from agentgym.trainers.update import fill_logprobs, ppo_update
from agentgym.trajectory import Trajectory, flatten, read_jsonl


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

    policy = make_policy(f"vllm:{model_dir}", **cfg.policy.backend_options)
    policy.load_weights(merged_state_dict(model))
    return policy


def _trajectory_metrics(trajs: list[Trajectory], prefix: str) -> dict[str, float]:
    if not trajs:
        return {}
    ok = [t for t in trajs if t.status != "error"]
    steps = [s for t in ok for s in t.steps]
    return {
        f"{prefix}/success": float(np.mean([t.success for t in trajs])),
        f"{prefix}/score": float(np.mean([t.score for t in trajs])),
        f"{prefix}/reward": float(np.mean([t.total_reward for t in ok])) if ok else 0.0,
        f"{prefix}/steps": float(np.mean([len(t.steps) for t in ok])) if ok else 0.0,
        f"{prefix}/invalid_rate": float(np.mean([not s.action_valid for s in steps]))
        if steps
        else 0.0,
        f"{prefix}/error_rate": float(np.mean([t.status == "error" for t in trajs])),
        f"{prefix}/response_tokens": float(np.mean([len(s.response_ids) for s in steps]))
        if steps
        else 0.0,
    }


def evaluate_split(
    engine: RolloutEngine, tasks: list[TaskRequest], prefix: str, episodes: int = 1
) -> dict[str, float]:
    """Play ``tasks`` with the evaluation code of ``agentgym eval`` (so training logs and
    eval reports agree); metrics are named ``{prefix}/success`` etc."""
    from agentgym.evaluation.runner import evaluate

    return evaluate(engine, tasks, episodes, prefix=f"{prefix}/").metrics


def _demonstrations(cfg: TrainConfig, tokenizer: Any) -> list[Trajectory]:
    if cfg.sft.data != "expert":
        return read_jsonl(cfg.sft.data)
    from agentgym.policies.builtin import ExpertPolicy

    engine = build_engine(cfg, ExpertPolicy("expert"), sampling_params(cfg.policy.sampling))
    try:
        tasks = sample_tasks(env_spec(cfg), "train", cfg.sft.tasks, seed=cfg.seed + 101)
        return engine.run(tasks, n=1, group_prefix="sft-")
    finally:
        engine.close()


def train(cfg: TrainConfig, resume: bool = False, console: Any = None) -> RunResult:
    """Run the whole recipe described by ``cfg``; see the module docstring.

    Whatever ends the run (the last iteration, an error, Ctrl-C), the metric sinks are
    flushed and closed and the environment pools, the policy and the process group are
    shut down.
    """
    with contextlib.ExitStack() as cleanup:
        return _train(cfg, resume, console, cleanup)


def _train(
    cfg: TrainConfig, resume: bool, console: Any, cleanup: contextlib.ExitStack
) -> RunResult:
    from agentgym.trainers.progress import RunProgress

    ctx = dist.init()
    cleanup.callback(dist.shutdown, ctx)
    run_dir = Path(cfg.trainer.out_dir)
    ckpt = latest_checkpoint(run_dir) if resume else None
    if resume and ckpt is None and ctx.is_main:
        print(f"no checkpoint in {run_dir}; starting from scratch")
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.policy.device if not ctx.distributed else "cpu")
    progress = RunProgress(enabled=cfg.trainer.progress and ctx.is_main, console=console)

    with progress.status("preparing the model"):
        model_dir = ensure_model(cfg, run_dir) if ctx.is_main else None
        model_dir = dist.broadcast_object(model_dir, ctx)
        model, tokenizer = load_model(model_dir, cfg.policy.dtype, str(device))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logger = MetricLogger(
        run_dir,
        cfg.trainer.loggers,
        config=to_dict(cfg),
        resume_after=None if ckpt is None else checkpoint_iteration(ckpt),
        enabled=ctx.is_main,
        project=cfg.trainer.wandb_project,
    )
    cleanup.callback(logger.close)
    summary: dict[str, Any] = {}
    if ckpt is not None and (run_dir / "summary.json").exists():
        summary = json.loads((run_dir / "summary.json").read_text())

    # ------------------------------------------------------------------ SFT warm start
    if cfg.sft.enabled and ckpt is None:
        with progress.status("collecting demonstrations"):
            demos = _demonstrations(cfg, tokenizer)
        samples = sft_samples(
            demos,
            tokenizer,
            cfg.env.prompt.style,
            only_successful=cfg.sft.only_successful,
            prompts=prompt_builder(cfg),
        )
        bar = progress.task("SFT", total=cfg.sft.epochs * -(-len(samples) // cfg.sft.batch_size))
        sft_metrics = sft_train(
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
        logger.log(sft_metrics, iteration=0)
        if ctx.is_main:  # RL can restart from here: policy.model=RUN_DIR/sft-model
            from agentgym.trainers.model import save_pretrained

            save_pretrained(model, tokenizer, str(run_dir / "sft-model"))

    model = apply_lora(model, cfg.actor)
    ref_model = None
    if cfg.actor.use_kl_loss:
        ref_model = copy.deepcopy(model).eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.actor.lr, weight_decay=cfg.actor.weight_decay)
    start_iteration = 0
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, optimizer)
        start_iteration = int(state["iteration"])
    ddp_model = dist.wrap(model, ctx)
    policy = cleanup.enter_context(
        contextlib.closing(_make_policy(cfg, model, tokenizer, model_dir))
    )
    spec = env_spec(cfg)
    train_engine = cleanup.enter_context(
        contextlib.closing(build_engine(cfg, policy, sampling_params(cfg.policy.sampling)))
    )
    val_engine = cleanup.enter_context(
        contextlib.closing(
            build_engine(cfg, policy, sampling_params(cfg.policy.val_sampling, cfg.seed))
        )
    )
    val_tasks = sample_tasks(
        spec, cfg.trainer.val_split, cfg.trainer.val_tasks, seed=cfg.seed + VALIDATION_SEED_OFFSET
    )
    test_tasks = (
        sample_tasks(spec, "test", cfg.trainer.test_tasks, seed=cfg.seed + TEST_SEED_OFFSET)
        if cfg.trainer.test_tasks
        else []
    )

    if test_tasks and ctx.is_main and "test_before" not in summary:
        with progress.status(f"testing on {len(test_tasks)} held-out tasks (before RL)"):
            summary["test_before"] = evaluate_split(val_engine, test_tasks, "test")
        logger.log({f"{k}_before": v for k, v in summary["test_before"].items()}, start_iteration)
        _write_summary(run_dir, summary)

    # ------------------------------------------------------------------ RL
    bar = progress.task("RL", total=cfg.trainer.total_iterations, completed=start_iteration)
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    iteration = saved_at = start_iteration

    def save(at: int) -> None:
        nonlocal saved_at
        save_checkpoint(
            run_dir,
            at,
            model,
            tokenizer,
            optimizer,
            {"seed": cfg.seed},
            keep=cfg.trainer.keep_checkpoints,
        )
        saved_at = at

    for iteration in range(start_iteration + 1, cfg.trainer.total_iterations + 1):
        if cfg.trainer.max_seconds and time.perf_counter() - started > cfg.trainer.max_seconds:
            iteration -= 1
            break
        metrics = _rl_iteration(
            cfg,
            iteration,
            ctx,
            ddp_model,
            model,
            ref_model,
            optimizer,
            policy,
            train_engine,
            pad_id,
            device,
        )
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
        if ctx.is_main and every and iteration % every == 0:
            save(iteration)
        dist.barrier(ctx)
    bar.done()
    if ctx.is_main and iteration > start_iteration and saved_at != iteration:
        save(iteration)  # the last iteration (also after trainer.max_seconds)

    if test_tasks and ctx.is_main and iteration > start_iteration:
        with progress.status(f"testing on {len(test_tasks)} held-out tasks (after RL)"):
            summary["test_after"] = evaluate_split(val_engine, test_tasks, "test")
        logger.log({f"{k}_after": v for k, v in summary["test_after"].items()}, iteration)
    summary["iterations"] = iteration
    if ctx.is_main:
        _write_summary(run_dir, summary)
        if iteration > 0:
            from agentgym.trainers.plots import plot_run

            plot_run(run_dir)  # RUN_DIR/plots/*.png
    with torch.no_grad():
        param_norm = float(sum(p.double().pow(2).sum() for p in model.parameters()) ** 0.5)
    return RunResult(
        str(run_dir),
        iteration,
        summary.get("test_before"),
        summary.get("test_after"),
        metrics,
        param_norm,
    )


def _write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    tmp = run_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(run_dir / "summary.json")


def _rl_iteration(
    cfg: TrainConfig,
    iteration: int,
    ctx: dist.DistContext,
    ddp_model: Any,
    model: Any,
    ref_model: Any,
    optimizer: torch.optim.Optimizer,
    policy: Policy,
    engine: RolloutEngine,
    pad_id: int,
    device: torch.device,
) -> dict[str, float]:
    """One iteration: rollout, credit, update, weight sync. Returns its metrics."""
    it_seed = _iteration_seed(cfg.seed, iteration)
    t0 = time.perf_counter()
    all_tasks = sample_tasks(env_spec(cfg), "train", cfg.trainer.tasks_per_iteration, seed=it_seed)
    tasks = all_tasks[ctx.rank :: ctx.world_size]
    engine.sampling = sampling_params(cfg.policy.sampling, it_seed + ctx.rank)
    engine.stats = type(engine.stats)()
    model.eval()
    trajs = engine.run(tasks, n=cfg.env.rollout.n, group_prefix=f"it{iteration}-")
    t_rollout = time.perf_counter() - t0
    metrics = _trajectory_metrics(trajs, "train")
    metrics.update(engine.stats.as_metrics("perf/rollout_"))

    usable = [t for t in trajs if t.status != "error" and t.steps]
    cols = flatten(usable)
    advantages = np.zeros(len(cols))
    if len(cols):
        advantages = compute_advantages(
            cfg.algorithm.adv_estimator,
            **cols.credit_kwargs(),
            **cfg.algorithm.estimator_kwargs(),
        )
    keep_traj = np.ones(len(usable), dtype=bool)
    if cfg.algorithm.filter_groups and len(cols):
        returns = np.array([t.total_reward for t in usable])
        groups = np.array([t.group_id for t in usable])
        for g in np.unique(groups):
            members = groups == g
            if np.ptp(returns[members]) == 0:
                keep_traj[members] = False
        metrics["train/kept_group_share"] = float(keep_traj.mean())
    per_traj: list[list[float]] = [[0.0] * len(t.steps) for t in usable]
    for row in range(len(cols)):
        per_traj[cols.traj[row]][cols.step[row]] = float(advantages[row])
    chosen = [i for i in range(len(usable)) if keep_traj[i]]
    samples = build_samples(
        [usable[i] for i in chosen], [per_traj[i] for i in chosen], cfg.env.prompt.style
    )
    if len(advantages):
        metrics.update(
            {
                "credit/adv_mean": float(advantages.mean()),
                "credit/adv_std": float(advantages.std()),
                "credit/adv_abs_mean": float(np.abs(advantages).mean()),
                "credit/adv_zero_share": float(np.mean(np.abs(advantages) < 1e-8)),
            }
        )

    t1 = time.perf_counter()
    if not cfg.actor.use_rollout_logprobs:
        fill_logprobs(model, samples, "old_logprobs", cfg.actor.micro_batch_size, pad_id, device)
    if ref_model is not None:
        fill_logprobs(
            ref_model, samples, "ref_logprobs", cfg.actor.micro_batch_size, pad_id, device
        )
    lr_scale = (
        min(1.0, iteration / cfg.actor.warmup_iterations) if cfg.actor.warmup_iterations else 1.0
    )
    for group in optimizer.param_groups:
        group["lr"] = cfg.actor.lr * lr_scale
    samples = dist.pad_samples(samples, ctx)  # equal step counts on every rank
    update = ppo_update(
        ddp_model,
        optimizer,
        samples,
        cfg.actor,
        norm_length=float(cfg.policy.sampling.max_tokens),
        pad_id=pad_id,
        rng=np.random.default_rng(it_seed),
        device=device,
        no_sync=getattr(ddp_model, "no_sync", None),
    )
    metrics.update(update)
    if cfg.policy.backend != "hf":
        policy.load_weights(merged_state_dict(model))
    t_update = time.perf_counter() - t1
    tokens = sum(len(s.input_ids) for s in samples)
    metrics.update(
        {
            "perf/seconds_rollout": t_rollout,
            "perf/seconds_update": t_update,
            "perf/seconds_iteration": time.perf_counter() - t0,
            "perf/train_tokens_per_s": tokens / max(t_update, 1e-9),
            "actor/lr": cfg.actor.lr * lr_scale,
            "train/samples": float(len(samples)),
        }
    )
    return dist.mean_metrics(metrics, ctx)
