"""One adapter from a :class:`TrainConfig` to the run's settings: environment spec, prompt
settings, sampling and the seeds of its evaluation tasks.

Training (:mod:`agentgym.trainers`), ``agentgym eval`` and ``agentgym rollout`` of a
training run all read a config through these functions, so a model is evaluated with the
prompts, parser, turn limit and task sample it was trained with. Nothing here imports the
trainers or the evaluation code.
"""

from __future__ import annotations

from typing import Any

from agentgym.config.schema import TrainConfig
from agentgym.policies.base import SamplingParams
from agentgym.rollout import EnvSpec, PromptBuilder, PromptConfig
from agentgym.rollout.prompts import (
    DEFAULT_CHAT_FIRST,
    DEFAULT_CHAT_NEXT,
    DEFAULT_SYSTEM,
    DEFAULT_WINDOW,
)

__all__ = [
    "TEST_SEED_OFFSET",
    "VALIDATION_SEED_OFFSET",
    "env_spec",
    "eval_task_seed",
    "prompt_builder",
    "prompt_config",
    "sampling_params",
]


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
