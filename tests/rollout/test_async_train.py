"""``env.rollout.mode: async`` trains from YAML: one iteration of the quickstart recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentgym.config import TrainConfig, load_config
from agentgym.errors import ConfigError
from agentgym.policies import make_policy
from agentgym.rollout import AsyncRolloutEngine
from agentgym.trainers.rl import train
from agentgym.trainers.setup import build_engine, sampling_params
from agentgym.trainers.tracking import read_metrics
from tests.trainers.conftest import tiny_frozenlake_model  # noqa: F401  (shared session model)

RECIPE = "examples/quickstart.yaml"

#: The recipe shrunk to one quick iteration (2 tasks x 4 rollouts, 3 steps, short answers).
QUICK = [
    "sft.enabled=false",
    "env.max_steps=3",
    "env.rollout.n=4",
    "env.rollout.mode=async",
    "policy.sampling.max_tokens=8",
    "policy.val_sampling.max_tokens=8",
    "actor.micro_batch_size=16",
    "trainer.total_iterations=1",
    "trainer.tasks_per_iteration=2",
    "trainer.val_every=1",
    "trainer.val_tasks=2",
    "trainer.test_tasks=0",
    "trainer.save_every=0",
    "trainer.plots=false",
    "trainer.progress=false",
]


def test_async_mode_trains_one_iteration_from_yaml(
    tmp_path: Path,
    tiny_frozenlake_model: Path,  # noqa: F811
) -> None:
    cfg = load_config(
        TrainConfig,
        RECIPE,
        [*QUICK, f"policy.model={tiny_frozenlake_model}", f"trainer.out_dir={tmp_path / 'run'}"],
    )
    assert cfg.env.rollout.mode == "async"
    engine = build_engine(cfg, make_policy("expert"), sampling_params(cfg.policy.sampling))
    assert isinstance(engine, AsyncRolloutEngine)
    engine.close()
    result = train(cfg)
    records = [r for r in read_metrics(result.run_dir) if "train/success" in r]
    assert [r["iteration"] for r in records] == [1]
    record = records[0]
    assert record["perf/rollout_trajectories"] == 8
    assert record["train/samples"] > 0 and record["actor/grad_norm"] > 0


def test_async_mode_with_a_branching_strategy_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="independent episodes only"):
        load_config(TrainConfig, RECIPE, ["env.rollout.mode=async", "env.rollout.strategy=tree"])
