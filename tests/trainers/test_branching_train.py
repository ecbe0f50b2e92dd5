"""``env.rollout.strategy`` ``tree`` and ``local`` train end to end from YAML with
``treepo``, ``logo`` and ``gigpo`` (one iteration of a real tiny model on FrozenLake)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentgym.config import TrainConfig, load_config
from agentgym.trainers.rl import train
from agentgym.trainers.tracking import read_metrics

RECIPE = "examples/tree_cpu.yaml"

#: The recipe, shrunk to one quick iteration (2 tasks, 3 steps, a short response).
QUICK = [
    "sft.enabled=false",
    "env.max_steps=3",
    "env.rollout.n=4",
    "env.rollout.local={trajectories: 1, points: 1, k: 2, continuation: 1}",
    "policy.sampling.max_tokens=8",
    "policy.val_sampling.max_tokens=8",
    "actor.micro_batch_size=16",
    "trainer.total_iterations=1",
    "trainer.tasks_per_iteration=2",
    "trainer.val_every=0",
    "trainer.test_tasks=0",
    "trainer.save_every=0",
    "trainer.plots=false",
    "trainer.progress=false",
]


@pytest.fixture(scope="module")
def sft_model(tmp_path_factory: pytest.TempPathFactory, tiny_frozenlake_model: Path) -> Path:
    """The tiny model after a short SFT on expert episodes: it answers in the action
    format about half the time, so returns differ and every method has a signal."""
    run = tmp_path_factory.mktemp("sft")
    cfg = load_config(
        TrainConfig,
        RECIPE,
        [
            *QUICK,
            f"policy.model={tiny_frozenlake_model}",
            "sft.enabled=true",
            "sft.tasks=64",
            "sft.epochs=6",
            "sft.lr=1e-2",
            "sft.batch_size=16",
            "trainer.total_iterations=0",
            f"trainer.out_dir={run}",
        ],
    )
    train(cfg)
    return run / "sft-model"


def one_iteration(tmp_path: Path, model: Path, *overrides: str) -> dict:
    cfg = load_config(
        TrainConfig,
        RECIPE,
        [*QUICK, f"policy.model={model}", f"trainer.out_dir={tmp_path / 'run'}", *overrides],
    )
    result = train(cfg)
    records = [r for r in read_metrics(result.run_dir) if "train/success" in r]
    assert [r["iteration"] for r in records] == [1]
    return records[0]


def test_the_recipe_loads_with_its_strategy() -> None:
    cfg = load_config(TrainConfig, RECIPE)
    assert cfg.env.rollout.strategy == "tree"
    assert cfg.env.rollout.strategy_settings() == {"roots": 2, "branch_factor": 2, "depths": [1, 3]}
    assert cfg.algorithm.adv_estimator == "treepo" and cfg.actor.shared_prefix


@pytest.mark.parametrize("estimator", ["treepo", "logo", "gigpo"])
@pytest.mark.parametrize("strategy", ["tree", "local"])
def test_branching_strategies_train_one_iteration(
    tmp_path: Path, sft_model: Path, strategy: str, estimator: str
) -> None:
    record = one_iteration(
        tmp_path,
        sft_model,
        f"env.rollout.strategy={strategy}",
        f"algorithm.adv_estimator={estimator}",
    )
    leaves = record["perf/rollout_trajectories"]
    if strategy == "tree":  # 2 tasks x up to 4 leaves
        assert 4 < leaves <= 8
    else:  # 2 tasks x 4 whole episodes, plus the re-rolls of one state each
        assert leaves > 8
    assert record["perf/rollout_tokens_per_trajectory"] > 0
    assert record["train/samples"] > 0
    assert record["credit/adv_abs_mean"] > 0  # the method gave some step a signal
    assert record["actor/grad_norm"] > 0


def test_chat_trees_train_with_the_prefix_grouper(tmp_path: Path, sft_model: Path) -> None:
    record = one_iteration(
        tmp_path,
        sft_model,
        "env.prompt.style=chat",
        "env.rollout.max_prompt_tokens=4096",
        "algorithm.adv_estimator=logo",
    )
    assert 0 < record["train/samples"] <= record["perf/rollout_trajectories"]  # one per leaf
    assert record["actor/grad_norm"] > 0
