"""What an evaluation is: :class:`EvalConfig`, and where its numbers came from (provenance).

An :class:`EvalConfig` names everything that changes the results (environment and its
arguments, split, task sample, policy, sampling, prompts, turn limit, seed). Two runs
with equal configs are the same evaluation; that is what lets ``agentgym eval`` resume a
results directory. How the work is executed (env executor, concurrency, timeouts) is
not part of it.
"""

from __future__ import annotations

import importlib
import subprocess
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from agentgym.env import SPLITS
from agentgym.policies import (  # re-exported: the evaluation API has always offered them
    MODEL_KINDS,
    RUN_CHECKPOINT,
    resolve_policy_spec,
    run_checkpoint_model,
)
from agentgym.policies.base import SamplingParams

__all__ = [
    "RUN_CHECKPOINT",
    "EvalConfig",
    "env_provenance",
    "git_provenance",
    "resolve_policy_spec",
    "run_checkpoint_model",
]


@dataclass(frozen=True)
class EvalConfig:
    """The settings that define an evaluation (``summary.json`` records them all).

    Attributes:
        env_id: registered environment id (``Sokoban-v0``) or ``module:Class``.
        policy: a policy spec (``expert``, ``random``, ``hf:DIR``, ``vllm:DIR``,
            ``openai:URL#MODEL``, a model directory or a training run directory).
        split: the split the tasks come from (``test`` for held-out evaluation).
        episodes_per_task: K, attempts per task.
        num_tasks: how many tasks to sample (``None``: every task of the split).
        seed: seeds the task sample, the episodes' reset seeds and sampling.
        temperature, top_p, max_tokens: sampling settings (temperature 0 is greedy).
        max_steps: the turn limit (``None``: the environment's registered limit).
        parser: action parser name (``None``: the environment's own).
        prompt_style: ``window`` or ``chat``.
        history_length: window style: past (observation, action) pairs shown.
        env_kwargs: environment constructor arguments.
        prompt: other :class:`~agentgym.rollout.PromptConfig` fields (``system``,
            ``window_template``, ...); evaluating a training run takes its run's.
    """

    env_id: str
    policy: str
    split: Literal["train", "valid", "test"] = "test"
    episodes_per_task: int = 1
    num_tasks: int | None = None
    seed: int = 0
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    max_steps: int | None = None
    parser: str | None = None
    prompt_style: Literal["window", "chat"] = "window"
    history_length: int = 2
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    prompt: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {self.split!r}")
        if self.episodes_per_task < 1:
            raise ValueError(f"episodes-per-task must be >= 1, got {self.episodes_per_task}")
        if self.num_tasks is not None and self.num_tasks < 1:
            raise ValueError(f"tasks must be >= 1 (or omitted for all), got {self.num_tasks}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max-steps must be >= 1, got {self.max_steps}")
        if self.prompt_style not in ("window", "chat"):
            raise ValueError(f"prompt style must be 'window' or 'chat', got {self.prompt_style!r}")
        if self.history_length < 0:
            raise ValueError(f"history-length must be >= 0, got {self.history_length}")
        self.sampling()  # validates temperature, top_p and max_tokens

    def prompt_config(self) -> Any:
        """The :class:`~agentgym.rollout.PromptConfig` these settings describe."""
        from agentgym.rollout import PromptConfig

        return PromptConfig(
            style=self.prompt_style, history_length=self.history_length, **self.prompt
        )

    def sampling(self) -> SamplingParams:
        """The sampling settings, seeded by :attr:`seed`."""
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown evaluation setting(s) {unknown}; valid: {sorted(known)}")
        return cls(**data)

    def differences(self, other: EvalConfig) -> dict[str, tuple[Any, Any]]:
        """``{setting: (mine, theirs)}`` for every setting that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}

    def with_(self, **changes: Any) -> EvalConfig:
        return replace(self, **changes)


def training_run_of(spec: str) -> Path | None:
    """The training run directory a policy spec points into (``RUN_DIR``, ``hf:RUN_DIR``,
    or a checkpoint's model directory inside it), or ``None``."""
    from agentgym.runs import find_run

    kind, sep, target = spec.partition(":")
    return find_run(Path(target if sep and kind in MODEL_KINDS else spec))


def run_defaults(spec: str, split: str = "test") -> dict[str, Any]:
    """Evaluation settings taken from the training run a policy spec points into: its
    environment, env arguments, turn limit, parser, prompts and response length, so a
    checkpoint is evaluated the way it was trained, and the seed and task count the
    trainer drew its ``split`` tasks with (``trainer.test_tasks``; ``trainer.val_tasks``
    and ``val_episodes_per_task`` for the validation split), so that by default
    ``agentgym eval`` replays the trainer's own test (or validation) exactly. Empty when
    the spec is not a run."""
    run = training_run_of(spec)
    if run is None:
        return {}
    from agentgym.config import TrainConfig, load_config
    from agentgym.config.settings import eval_task_seed, prompt_config
    from agentgym.runs import RunDir

    cfg = load_config(TrainConfig, RunDir(run).config)
    prompt = prompt_config(cfg)
    # the trainer's own sample of this split: its task count (and validation's episodes)
    num_tasks, episodes = None, None
    if split == "test":
        num_tasks = cfg.trainer.test_tasks or None
    elif split == cfg.trainer.val_split:
        num_tasks, episodes = cfg.trainer.val_tasks, cfg.trainer.val_episodes_per_task
    return {
        "seed": eval_task_seed(cfg, split),
        "num_tasks": num_tasks,
        "episodes_per_task": episodes,
        "env_id": cfg.env.id,
        "env_kwargs": dict(cfg.env.kwargs),
        "max_steps": cfg.env.max_steps,
        "parser": cfg.env.action_parser,
        "prompt_style": prompt.style,
        "history_length": prompt.history_length,
        "max_tokens": cfg.policy.val_sampling.max_tokens,
        "prompt": {
            "system": prompt.system,
            "window_template": prompt.window_template,
            "chat_first_template": prompt.chat_first_template,
            "chat_next_template": prompt.chat_next_template,
            "observation_role": prompt.observation_role,
            "show_admissible": prompt.show_admissible,
        },
    }


def git_provenance() -> dict[str, Any]:
    """The git commit of the agentgym source tree, and whether it has local changes."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def env_provenance(env_id: str) -> dict[str, Any]:
    """Where the environment's code comes from: entry point, module version, agentgym's."""
    import agentgym
    from agentgym.registry import entry

    if ":" in env_id:
        entry_point, max_steps, source = env_id, None, "module"
    else:
        found = entry(env_id)
        entry_point, max_steps, source = found.entry_point, found.max_steps, found.source
    module_name = entry_point.partition(":")[0]
    version = None
    try:
        module = importlib.import_module(module_name)
        version = getattr(module, "__version__", None)
        if version is None:
            top = importlib.import_module(module_name.split(".")[0])
            version = getattr(top, "__version__", None)
    except ImportError:
        pass
    return {
        "id": env_id,
        "entry_point": entry_point,
        "source": source,
        "registered_max_steps": max_steps,
        "module_version": None if version is None else str(version),
        "agentgym_version": agentgym.__version__,
    }
