"""HiPER on ALFWorld from its example YAML: SFT on the planner's subgoal-annotated
demonstrations, then one RL iteration with the two-head critic."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentgym.config import TrainConfig, load_config
from agentgym.trainers.rl import train
from agentgym.trainers.tracking import read_metrics
from tests.alfworld.conftest import NUM_GAMES

pytestmark = pytest.mark.alfworld

EXAMPLE = Path(__file__).parents[2] / "examples" / "alfworld_hiper_cpu.yaml"


def test_hiper_trains_on_alfworld_from_its_yaml(cache_dir: Path, tmp_path: Path) -> None:
    games = ", ".join(f"{split}: {n}" for split, n in NUM_GAMES.items())
    cfg = load_config(
        TrainConfig,
        EXAMPLE,
        [
            f"env.kwargs={{num_games: {{{games}}}, cache_dir: {cache_dir}}}",
            "env.max_steps=4",
            "env.rollout.n=2",
            "env.rollout.executor=inline",
            "policy.tiny.layers=1",
            "policy.tiny.hidden=64",
            "policy.tiny.episodes=6",
            "sft.tasks=6",
            "sft.epochs=1",
            "trainer.total_iterations=1",
            "trainer.tasks_per_iteration=2",
            "trainer.val_every=0",
            "trainer.test_tasks=0",
            "trainer.save_every=0",
            "trainer.plots=false",
            "trainer.progress=false",
            f"trainer.out_dir={tmp_path / 'run'}",
        ],
    )
    assert cfg.env.action_parser == "hiper" and cfg.algorithm.adv_estimator == "hiper"
    result = train(cfg)
    record = next(r for r in read_metrics(result.run_dir) if "train/success" in r)
    assert record["train/samples"] > 0 and record["critic/value_loss"] >= 0
    assert "hiper/switch_rate" in record and "hiper/adv_high_mean" in record
