"""Rollouts: prompt styles, environment pools and the multi-turn rollout engine."""

from agentgym.rollout.async_engine import AsyncRolloutEngine
from agentgym.rollout.engine import RolloutEngine, RolloutStats, TaskRequest
from agentgym.rollout.executor import (
    EnvCall,
    EnvOutcome,
    EnvPool,
    EnvSpec,
    make_pool,
    register_pool,
)
from agentgym.rollout.prompts import PromptBuilder, PromptConfig
from agentgym.rollout.tasks import sample_tasks

__all__ = [
    "AsyncRolloutEngine",
    "EnvCall",
    "EnvOutcome",
    "EnvPool",
    "EnvSpec",
    "PromptBuilder",
    "PromptConfig",
    "RolloutEngine",
    "RolloutStats",
    "TaskRequest",
    "make_pool",
    "register_pool",
    "sample_tasks",
]
