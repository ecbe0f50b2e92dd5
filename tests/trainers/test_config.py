"""Config loading: YAML, dotted overrides, clear errors before any model is touched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agentgym.config import TrainConfig, load_config, save_config
from agentgym.errors import ConfigError

EXAMPLES = sorted(Path(__file__).parents[2].joinpath("examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_loads(path: Path) -> None:
    load_config(TrainConfig, path)


def test_overrides_and_round_trip(tmp_path: Path) -> None:
    cfg = load_config(
        TrainConfig,
        EXAMPLES[0],
        [
            "algorithm.adv_estimator=hgpo",
            "env.rollout.n=4",
            "algorithm.hgpo.alpha=2",
            "actor.lr=3e-5",
            "trainer.loggers=[tensorboard]",
        ],
    )
    assert cfg.algorithm.adv_estimator == "hgpo" and cfg.env.rollout.n == 4
    assert cfg.algorithm.estimator_kwargs()["alpha"] == 2 and cfg.actor.lr == 3e-5
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(TrainConfig, tmp_path / "c.yaml")
    assert again == cfg
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["env"]["rollout"]["n"] == 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("env.rolout.n=3", "unknown config key 'env.rolout'. Did you mean 'env.rollout'?"),
        ("algorithm.gigpo.step_advantage=1", "Did you mean 'step_advantage_w'"),
        ("actor.loss_agg_mode=token_mean", "Did you mean 'token-mean'?"),
        ("env.rollout.n=abc", "'env.rollout.n' must be an integer, got 'abc'"),
        ("algorithm.adv_estimator=gipo", "Did you mean 'gigpo'?"),
        ("trainer.loggers=[tensorbord]", "unknown sink"),
        ("actor.clip_ratio_c=0.5", "clip_ratio_c must be > 1"),
        ("algorithm.hgpo.mode=mean", "hgpo"),
        ("gamma=0.9", "unknown config key 'gamma'"),
    ],
)
def test_bad_configs_fail_with_the_closest_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, None, [override])
    assert message in str(info.value)


def test_missing_file_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(TrainConfig, "nope.yaml")
