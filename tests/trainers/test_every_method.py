"""Every registered credit estimator trains one real iteration under every policy loss.

A method "works" when it trains end to end from the config, not when its function passes
a unit test: this file picks up every estimator, policy loss, aggregation and reward
shaper in the registries (a new one is tested for free). Each run is one iteration of a
real tiny model on a real environment: FrozenLake, or Search-v0 for estimators whose
inputs FrozenLake does not provide (e.g. ``gdpo``'s ``reward_components``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from agentgym.config import TrainConfig, load_config
from agentgym.credit import estimator_inputs, list_estimators
from agentgym.errors import ConfigError
from agentgym.inputs import missing_inputs
from agentgym.providers import get_input_provider, providers_for
from agentgym.shaping import list_reward_shapers
from agentgym.trainers.losses import list_loss_aggs, list_policy_losses
from agentgym.trainers.rl import train
from agentgym.trainers.tracking import read_metrics
from tests.trainers.conftest import SMALL, small_config

#: One iteration, no SFT, no test: only the method under test runs.
ONE_ITERATION = [
    "sft.enabled=false",
    "trainer.total_iterations=1",
    "trainer.val_every=0",
    "trainer.test_tasks=0",
    "trainer.save_every=0",
    "env.rollout.n=3",
    "trainer.plots=false",
]

SEARCH = [
    "env.id=Search-v0",
    "env.max_steps=2",
    "policy.sampling.max_tokens=16",
    "env.rollout.max_prompt_tokens=4096",
]


@pytest.fixture(scope="session")
def tiny_search_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from agentgym.trainers.setup import ensure_model

    run = tmp_path_factory.mktemp("tiny-search")
    cfg = load_config(
        TrainConfig,
        None,
        [
            *SMALL,
            *SEARCH,
            "policy.tiny.episodes=8",
            "policy.tiny.vocab_size=400",
            f"trainer.out_dir={run}",
        ],
    )
    return Path(ensure_model(cfg, run))


def env_for(estimator: str) -> str:
    from agentgym.providers import provider_for_input

    env_inputs = [n for n in estimator_inputs(estimator) if provider_for_input(n) is None]
    missing = missing_inputs(env_inputs, "FrozenLake-v0", {})
    return "Search-v0" if missing else "FrozenLake-v0"


def method_overrides(estimator: str) -> list[str]:
    """What an estimator needs besides its name: a judge for the judged methods (the rule
    judge that answers every kind of request) and the env its input providers read."""
    from agentgym.providers import get_input_provider, providers_for

    providers = [get_input_provider(p) for p in providers_for(estimator_inputs(estimator))]
    out = []
    if any(p.uses_judge for p in providers):
        out.append("judge.model=agentgym.judges:rule_based")
    return out


def run_one(tmp_path: Path, model: Path, *overrides: str) -> tuple[dict, Path]:
    cfg = small_config(tmp_path / "run", f"policy.model={model}", *ONE_ITERATION, *overrides)
    result = train(cfg)
    records = [r for r in read_metrics(result.run_dir) if "train/success" in r]
    assert [r["iteration"] for r in records] == [1]
    return records[0], Path(result.run_dir)


@pytest.mark.parametrize("loss", list_policy_losses())
@pytest.mark.parametrize("estimator", list_estimators())
def test_every_estimator_trains_one_iteration(
    tmp_path: Path,
    tiny_frozenlake_model: Path,
    tiny_search_model: Path,
    estimator: str,
    loss: str,
) -> None:
    search = env_for(estimator) == "Search-v0" or any(
        missing_inputs(list(get_input_provider(p).requires_info), "FrozenLake-v0", {})
        for p in providers_for(estimator_inputs(estimator))
    )
    model = tiny_search_model if search else tiny_frozenlake_model
    record, run = run_one(
        tmp_path,
        model,
        f"algorithm.adv_estimator={estimator}",
        f"actor.policy_loss={loss}",
        *(SEARCH if search else []),
        *method_overrides(estimator),
    )
    for key in ("credit/adv_std", "actor/grad_norm", "actor/pg_loss", "train/samples"):
        assert key in record, key
    assert record["train/samples"] > 0
    saved = json.loads((run / "checkpoints" / "latest" / "checkpoint.json").read_text())
    assert saved["iteration"] == 1
    # the loss ran with its own settings: GSPO's clip range is its own, not PPO's
    if loss == "gspo":
        assert record["actor/pg_clipfrac"] >= 0.0


@pytest.mark.parametrize("mode", list_loss_aggs())
def test_every_aggregation_trains_one_iteration(
    tmp_path: Path, tiny_frozenlake_model: Path, mode: str
) -> None:
    record, _ = run_one(tmp_path, tiny_frozenlake_model, f"actor.loss_agg_mode={mode}")
    assert torch.isfinite(torch.tensor(record["actor/pg_loss"]))


@pytest.mark.parametrize("shaper", list_reward_shapers())
def test_every_reward_shaper_trains_one_iteration(
    tmp_path: Path, tiny_frozenlake_model: Path, tiny_search_model: Path, shaper: str
) -> None:
    from agentgym.shaping import required_info

    search = bool(missing_inputs(list(required_info(shaper)), "FrozenLake-v0", {}))
    record, _ = run_one(
        tmp_path,
        tiny_search_model if search else tiny_frozenlake_model,
        f"algorithm.reward_shaping=[{{name: {shaper}}}]",
        "algorithm.adv_estimator=grpo",
        *(SEARCH if search else []),
    )
    assert f"shaping/{shaper}/reward_delta" in record


def test_step_cost_shapes_the_rewards_credit_sees(tmp_path: Path, tiny_frozenlake_model: Path):
    record, _ = run_one(
        tmp_path,
        tiny_frozenlake_model,
        "algorithm.reward_shaping=[{name: step_cost, cost: 0.5}]",
    )
    assert record["shaping/step_cost/reward_delta"] == pytest.approx(-0.5)


def test_an_input_no_env_provides_is_refused_when_the_config_loads() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, "examples/quickstart.yaml", ["algorithm.adv_estimator=gdpo"])
    message = str(info.value)
    assert "credit estimator 'gdpo' needs the input 'reward_components'" in message
    assert "environment 'FrozenLake-v0' does not provide" in message
    assert "the key 'reward_components'" in message


def test_the_quickstart_takes_stratified_with_tool_calls_as_the_stratum() -> None:
    cfg = load_config(
        TrainConfig, "examples/quickstart.yaml", ["algorithm.adv_estimator=stratified"]
    )
    assert cfg.algorithm.adv_estimator == "stratified"
    assert estimator_inputs("stratified") == ["stratum"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("algorithm.adv_estimator=stratifed", "Did you mean 'stratified'?"),
        ("actor.policy_loss=gpso", "Did you mean 'gspo'?"),
        ("actor.gspo.clip_low=0.1", "Did you mean 'clip_ratio_low'?"),
        ("actor.loss_agg_mode=token_mean", "Did you mean 'token-mean'?"),
        ("actor.loss_terms={entropie: {coef: 0.1}}", "Did you mean 'entropy'?"),
        ("algorithm.reward_shaping=[{name: step_cots}]", "Did you mean 'step_cost'?"),
        ("algorithm.reward_shaping=[{name: step_cost, cots: 1}]", "Did you mean 'cost'?"),
        ("algorithm.stratified.stratum=[1]", "input filled from the trajectories"),
        ("actor.clip_ratio_low=0.1", None),
    ],
)
def test_misspelt_methods_and_settings_are_refused_at_load(override: str, message: str | None):
    if message is None:  # verl's top-level key is a valid way to set the loss's clip
        cfg = load_config(TrainConfig, None, [override])
        assert cfg.actor.loss_settings()["clip_ratio_low"] == 0.1
        return
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, None, [override])
    assert message in str(info.value)


def test_gspo_runs_with_its_own_clip_range_and_a_section_overrides_it() -> None:
    cfg = load_config(TrainConfig, None, ["actor.policy_loss=gspo"])
    assert cfg.actor.loss_settings() == {}  # the loss's signature defaults: 3e-4 / 4e-4
    cfg = load_config(
        TrainConfig, None, ["actor.policy_loss=gspo", "actor.gspo.clip_ratio_high=5e-4"]
    )
    assert cfg.actor.loss_settings() == {"clip_ratio_high": 5e-4}
    with pytest.raises(ConfigError, match="both set"):
        load_config(
            TrainConfig,
            None,
            [
                "actor.policy_loss=gspo",
                "actor.gspo.clip_ratio_high=5e-4",
                "actor.clip_ratio_high=1",
            ],
        )


def test_sections_round_trip_through_the_saved_config(tmp_path: Path) -> None:
    from agentgym.config import save_config

    cfg = load_config(
        TrainConfig,
        None,
        [
            "algorithm.hgpo.alpha=2.0",
            "actor.gspo.clip_ratio_low=1e-4",
            "actor.loss_terms={entropy: {coef: 0.01}}",
        ],
    )
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(TrainConfig, tmp_path / "c.yaml")
    assert again.algorithm.hgpo == {"alpha": 2.0}
    assert again.actor.gspo == {"clip_ratio_low": 1e-4}
    assert again.actor.terms() == {"entropy": {"coef": 0.01}}
