"""Building a run's parts from its config: model, policy, engines, tasks.

Each function builds one thing and can be called on its own (tests, notebooks); the
training loop in :mod:`agentgym.trainers.rl` only wires them. The config -> settings
adapter (env spec, prompts, sampling, evaluation seeds) is :mod:`agentgym.config.settings`,
shared with evaluation.
"""

from __future__ import annotations

from pathlib import Path

from agentgym.config import TrainConfig
from agentgym.config.settings import (  # re-exported: the trainer's building blocks
    TEST_SEED_OFFSET,
    VALIDATION_SEED_OFFSET,
    env_spec,
    eval_task_seed,
    prompt_builder,
    prompt_config,
    sampling_params,
)
from agentgym.policies import Policy, SamplingParams
from agentgym.rollout import RolloutEngine
from agentgym.rollout.build import build_engine as build_rollout_engine
from agentgym.runs import RunDir

__all__ = [
    "TEST_SEED_OFFSET",
    "VALIDATION_SEED_OFFSET",
    "build_engine",
    "ensure_model",
    "env_spec",
    "eval_task_seed",
    "prompt_builder",
    "prompt_config",
    "prompt_texts",
    "sampling_params",
]


def build_engine(
    cfg: TrainConfig,
    policy: Policy,
    sampling: SamplingParams,
    pool_size: int | None = None,
    *,
    training: bool = False,
) -> RolloutEngine:
    """A rollout engine for the configured environment, prompts and parser. ``training``:
    it plays with ``env.rollout.strategy`` (trees, local re-rolls); otherwise (validation,
    tests, demonstrations) independent episodes."""
    strategy = None
    if training and cfg.env.rollout.strategy != "group":
        from agentgym.rollout.strategies import make_strategy

        strategy = make_strategy(str(cfg.env.rollout.strategy), cfg.env.rollout.strategy_settings())
    return build_rollout_engine(
        env_spec(cfg),
        policy,
        sampling,
        prompt=prompt_config(cfg),
        parser=cfg.env.action_parser,
        executor=cfg.env.rollout.executor,
        executor_options=cfg.env.rollout.executor_options,
        pool_size=pool_size or cfg.env.rollout.max_concurrent,
        timeout=cfg.env.rollout.timeout,
        seed=cfg.seed,
        invalid_action_penalty=cfg.env.rollout.invalid_action_penalty,
        max_prompt_tokens=cfg.env.rollout.max_prompt_tokens,
        strategy=strategy,
        mode=cfg.env.rollout.mode,
    )


def prompt_texts(cfg: TrainConfig, episodes: int = 8) -> list[str]:
    """Prompts and responses of a few expert episodes, rendered with this config's
    templates: the tokenizer of a tiny model learns the exact text it will see."""
    from agentgym.policies.builtin import ExpertPolicy, RandomPolicy
    from agentgym.rollout import sample_tasks

    texts: list[str] = []
    for policy in (ExpertPolicy("expert"), RandomPolicy("random")):
        engine = build_engine(cfg, policy, SamplingParams(), pool_size=episodes)
        try:
            trajs = engine.run(sample_tasks(env_spec(cfg), "train", episodes, seed=cfg.seed))
        finally:
            engine.close()
        for traj in trajs:
            for step in traj.steps:
                texts.extend(m["content"] for m in step.prompt_messages)
                texts.append(step.response_text)
    return texts


def ensure_model(cfg: TrainConfig, run_dir: Path) -> str:
    """The model directory to train: ``policy.model``, or a tiny model built for the
    environment into ``RUN_DIR/tiny-model`` when ``policy.model: tiny``."""
    if cfg.policy.model != "tiny":
        if not Path(cfg.policy.model).exists():
            from agentgym.errors import ConfigError

            raise ConfigError(
                f"policy.model {cfg.policy.model!r} is not a model directory; "
                "use 'tiny' to build one for the environment"
            )
        return cfg.policy.model
    out = RunDir(run_dir).tiny_model
    if (out / "config.json").exists():
        return str(out)
    from agentgym.models import build_tiny_model, env_corpus

    tiny = cfg.policy.tiny
    texts = env_corpus(
        cfg.env.id,
        episodes=tiny.episodes,
        extra_texts=prompt_texts(cfg),
        seed=cfg.seed,
    )
    build_tiny_model(
        texts,
        out,
        layers=tiny.layers,
        hidden=tiny.hidden,
        vocab_size=tiny.vocab_size,
        max_positions=max(2048, cfg.env.rollout.max_prompt_tokens + cfg.policy.sampling.max_tokens),
        seed=cfg.seed,
    )
    return str(out)
