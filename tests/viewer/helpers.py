"""Real rollouts for the viewer tests: an engine on a real environment, real advantages."""

from __future__ import annotations

from pathlib import Path

from agentgym import flatten
from agentgym.credit import compute_advantages
from agentgym.evaluation import summarize
from agentgym.parsers import get_parser
from agentgym.policies import SamplingParams, make_policy
from agentgym.rollout import (
    EnvSpec,
    PromptBuilder,
    PromptConfig,
    RolloutEngine,
    make_pool,
    sample_tasks,
)
from agentgym.trainers.rollout_log import write_rollout_sample
from agentgym.trainers.tracking import MetricLogger
from agentgym.trajectory import Trajectory


def play(
    env_id: str = "FrozenLake-v0",
    *,
    policy: str = "random",
    tasks: int = 6,
    n: int = 4,
    max_steps: int = 8,
    seed: int = 0,
    split: str = "train",
    prefix: str = "it1-",
) -> list[Trajectory]:
    """``tasks`` task groups of ``n`` rollouts each, played by a model-free policy."""
    parser = get_parser("think_action")
    engine = RolloutEngine(
        make_pool("inline", EnvSpec(env_id), 8),
        make_policy(policy),
        parser,
        PromptBuilder(PromptConfig(style="window"), parser),
        SamplingParams(seed=seed),
        max_steps=max_steps,
    )
    with engine:
        chosen = sample_tasks(EnvSpec(env_id), split, tasks, seed=seed)
        return engine.run(chosen, n=n, group_prefix=prefix)


def advantages(trajs: list[Trajectory], estimator: str = "gigpo") -> list[list[float]]:
    """Per trajectory, per step: the estimator's advantages over these trajectories."""
    cols = flatten(trajs)
    values = compute_advantages(estimator, **cols.credit_kwargs())
    out = [[0.0] * len(t.steps) for t in trajs]
    for row in range(len(cols)):
        out[cols.traj[row]][cols.step[row]] = float(values[row])
    return out


def sample_iterations(
    run_dir: Path,
    iterations: int = 2,
    *,
    estimator: str = "gigpo",
    env_id: str = "FrozenLake-v0",
    max_groups: int = 4,
    **play_kwargs: object,
) -> dict[int, list[Trajectory]]:
    """Play ``iterations`` batches; save each one's sample and metrics as training does
    (the trainer's metrics sink, the evaluation metrics over the batch)."""
    played = {}
    logger = MetricLogger(run_dir)
    for it in range(1, iterations + 1):
        trajs = play(env_id, seed=it, prefix=f"it{it}-", **play_kwargs)  # type: ignore[arg-type]
        adv = advantages(trajs, estimator)
        write_rollout_sample(
            run_dir, it, trajs, adv, estimator=estimator, max_groups=max_groups, seed=0
        )
        flat = [a for row in adv for a in row]
        metrics = summarize(trajs, "train/", by_type=False)
        metrics["credit/adv_abs_mean"] = sum(abs(a) for a in flat) / max(len(flat), 1)
        logger.log(metrics, it)
        played[it] = trajs
    logger.close()
    return played
