"""Building a rollout engine from plain settings: the one place both ``agentgym train``
and ``agentgym eval`` (and ``agentgym rollout``) assemble pool, parser, prompts and limits,
so a model is always evaluated with the prompts it was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentgym.errors import ConfigError
from agentgym.parsers import get_parser
from agentgym.policies.base import Policy, SamplingParams
from agentgym.rollout.async_engine import MODES, AsyncRolloutEngine
from agentgym.rollout.engine import RolloutEngine
from agentgym.rollout.executor import EnvSpec, make_pool
from agentgym.rollout.prompts import PromptBuilder, PromptConfig


@dataclass(frozen=True)
class EnvDefaults:
    """What the environment decides when a config leaves it open."""

    action_parser: str
    max_steps: int


def env_defaults(spec: EnvSpec) -> EnvDefaults:
    """The env's own action parser and turn limit (the spec's ``max_steps``, else the
    limit :func:`agentgym.make` gave it: see :mod:`agentgym.registry`)."""
    from agentgym.registry import default_max_steps

    env = spec.make()
    try:
        parser = str(getattr(env.unwrapped, "action_parser", "think_action"))
        try:  # the TurnLimit that agentgym.make puts on every env
            limit = spec.max_steps or env.get_wrapper_attr("max_steps")
        except AttributeError:
            limit = None
    finally:
        env.close()
    return EnvDefaults(parser, int(limit or default_max_steps(spec.env_id)))


def build_engine(
    spec: EnvSpec,
    policy: Policy,
    sampling: SamplingParams,
    *,
    prompt: PromptConfig | None = None,
    parser: str | None = None,
    executor: str = "inline",
    executor_options: dict[str, Any] | None = None,
    pool_size: int = 16,
    timeout: float | None = 60.0,
    seed: int = 0,
    invalid_action_penalty: float = 0.0,
    max_prompt_tokens: int = 4096,
    strategy: Any = None,
    mode: str = "sync",
) -> RolloutEngine:
    """A rollout engine; ``parser`` and the turn limit default to the environment's.
    ``executor_options`` are the pool backend's own arguments (``envs_per_actor``...);
    ``strategy`` a rollout strategy (:mod:`agentgym.rollout.strategies`; ``None``:
    independent episodes); ``mode`` ``sync`` (lock step) or ``async`` (one agent loop per
    episode, :class:`~agentgym.rollout.async_engine.AsyncRolloutEngine`)."""
    if mode not in MODES:
        raise ConfigError(f"rollout mode {mode!r} is not one of {list(MODES)}")
    if mode == "async" and strategy is not None:
        AsyncRolloutEngine.check_strategy(strategy)
    defaults = env_defaults(spec)
    action_parser = get_parser(parser or defaults.action_parser)
    pool = make_pool(
        executor, spec, max(1, pool_size), timeout=timeout, seed=seed, **(executor_options or {})
    )
    engine = AsyncRolloutEngine if mode == "async" else RolloutEngine
    return engine(
        pool,
        policy,
        action_parser,
        PromptBuilder(prompt or PromptConfig(), action_parser),
        sampling,
        max_steps=spec.max_steps or defaults.max_steps,
        invalid_action_penalty=invalid_action_penalty,
        max_prompt_tokens=max_prompt_tokens,
        strategy=strategy,
    )
