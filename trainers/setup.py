"""Building a run's parts from its config: model, policy, engines, tasks.

Each function builds one thing and can be called on its own (tests, notebooks, the
evaluation CLI); the training loop in :mod:`agentgym.trainers.rl` only wires them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentgym.config import TrainConfig
from agentgym.policies import Policy, SamplingParams
from agentgym.rollout import EnvSpec, PromptBuilder, PromptConfig, RolloutEngine
from agentgym.rollout.build import build_engine as build_rollout_engine
from agentgym.rollout.prompts import (
    DEFAULT_CHAT_FIRST,
    DEFAULT_CHAT_NEXT,
    DEFAULT_SYSTEM,
    DEFAULT_WINDOW,
)


def env_spec(cfg: TrainConfig) -> EnvSpec:
    return EnvSpec(cfg.env.id, dict(cfg.env.kwargs), cfg.env.max_steps)


VALIDATION_SEED_OFFSET = 1
"""The trainer draws its validation tasks with ``seed + 1``."""
TEST_SEED_OFFSET = 2
"""The trainer draws its held-out test tasks with ``seed + 2``."""


def eval_task_seed(cfg: TrainConfig, split: str) -> int | None:
    """The seed the trainer of ``cfg`` drew its evaluation tasks of ``split`` with, or None.

    ``agentgym eval`` of a training run uses it by default, so that with ``--tasks``
    equal to the trainer's count (``trainer.test_tasks``, ``trainer.val_tasks``) it
    plays exactly the trainer's tasks and reports the trainer's figure.
    """
    if split == "test":
        return cfg.seed + TEST_SEED_OFFSET
    if split == cfg.trainer.val_split:
        return cfg.seed + VALIDATION_SEED_OFFSET
    return None


def prompt_config(cfg: TrainConfig) -> PromptConfig:
    p = cfg.env.prompt
    return PromptConfig(
        style=p.style,
        history_length=cfg.env.history_length,
        system=DEFAULT_SYSTEM if p.system is None else p.system,
        window_template=p.window_template or DEFAULT_WINDOW,
        chat_first_template=p.chat_first_template or DEFAULT_CHAT_FIRST,
        chat_next_template=p.chat_next_template or DEFAULT_CHAT_NEXT,
        observation_role=p.observation_role,
        show_admissible=p.show_admissible,
    )


def prompt_builder(cfg: TrainConfig) -> PromptBuilder:
    """The prompts of this config, with its (or the environment's) action parser."""
    from agentgym.parsers import get_parser
    from agentgym.rollout.build import env_defaults

    parser = cfg.env.action_parser or env_defaults(env_spec(cfg)).action_parser
    return PromptBuilder(prompt_config(cfg), get_parser(parser))


def sampling_params(section: Any, seed: int | None = None) -> SamplingParams:
    return SamplingParams(
        temperature=section.temperature,
        top_p=section.top_p,
        top_k=section.top_k,
        max_tokens=section.max_tokens,
        seed=seed,
    )


def build_engine(
    cfg: TrainConfig, policy: Policy, sampling: SamplingParams, pool_size: int | None = None
) -> RolloutEngine:
    """A rollout engine for the configured environment, prompts and parser."""
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
    out = run_dir / "tiny-model"
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
