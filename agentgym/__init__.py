"""agentgym: a gym for training and evaluating LLM agents on multi-turn tasks with RL.

Quick tour::

    import agentgym
    env = agentgym.make("Sokoban-v0")              # or gymnasium.make("agentgym/Sokoban-v0")
    obs, info = env.reset(seed=0, options={"split": "train"})
    obs, reward, terminated, truncated, info = env.step("up")
    agentgym.check_env("Sokoban-v0")               # the conformance checker
    snap = agentgym.snapshot(env)                  # ... and agentgym.restore(env, snap)

Heavy parts (policies, trainers) are imported on first use, so ``import agentgym`` is fast.
"""

from agentgym.checker import check_env
from agentgym.env import SPLITS, StepResult, TextEnv, TextSpace
from agentgym.errors import (
    AgentGymError,
    ConfigError,
    EnvCheckError,
    InvalidTaskError,
    NoExpertError,
    SnapshotError,
    SnapshotNotSupportedError,
    UnknownNameError,
)
from agentgym.registry import entries as registered_envs
from agentgym.registry import make, register
from agentgym.snapshots import EnvSnapshot, restore, snapshot, supports_snapshot
from agentgym.trajectory import Step, StepColumns, Trajectory, flatten, read_jsonl, write_jsonl

__version__ = "0.1.0"

__all__ = [
    "SPLITS",
    "AgentGymError",
    "ConfigError",
    "EnvCheckError",
    "EnvSnapshot",
    "InvalidTaskError",
    "NoExpertError",
    "SnapshotError",
    "SnapshotNotSupportedError",
    "Step",
    "StepColumns",
    "StepResult",
    "TextEnv",
    "TextSpace",
    "Trajectory",
    "UnknownNameError",
    "__version__",
    "check_env",
    "flatten",
    "make",
    "read_jsonl",
    "register",
    "registered_envs",
    "restore",
    "snapshot",
    "supports_snapshot",
    "write_jsonl",
]
