"""An evaluation in a results directory: build the engine, play, write, resume.

Files in the directory:

``eval_config.json``   the :class:`~agentgym.evaluation.config.EvalConfig` and the task
                       sample, written before the first episode;
``results.jsonl``      one trajectory per line, appended as each episode finishes;
``summary.json``       metrics and provenance, written when every episode is done;
``success_by_type.png`` success rate by task type with 95% intervals.

A directory that already holds an evaluation with the same config is continued: its
finished ``(task_index, episode)`` pairs are kept and only the missing ones are played,
on the task sample saved in ``eval_config.json``. A different config is an error unless
``overwrite`` is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentgym.errors import AgentGymError
from agentgym.evaluation.config import (
    EvalConfig,
    env_provenance,
    git_provenance,
    resolve_policy_spec,
)
from agentgym.evaluation.metrics import METHODS, per_task, summarize
from agentgym.evaluation.runner import EvalResult, episode_key, evaluate
from agentgym.rollout.engine import RolloutEngine, TaskRequest
from agentgym.trajectory import Trajectory

__all__ = [
    "CONFIG_FILE",
    "PLOT_FILE",
    "RESULTS_FILE",
    "SUMMARY_FILE",
    "ResultsDirError",
    "Runtime",
    "load_results",
    "load_saved",
    "run_in_dir",
]

CONFIG_FILE = "eval_config.json"
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "success_by_type.png"
_SECRET_HINTS = ("key", "token", "secret", "password", "auth")


class ResultsDirError(AgentGymError, ValueError):
    """A results directory that cannot be used for this evaluation."""


@dataclass(frozen=True)
class Runtime:
    """How an evaluation is executed; none of it changes the results.

    Attributes:
        executor: env pool backend (``inline``, ``threads``, ``processes``, or registered).
        num_envs: episodes played at once (env slots; also the generation batch).
        env_timeout: seconds an env call may take (``threads``/``processes``).
        policy_options: keyword arguments for the policy backend (``device``, ...).
    """

    executor: str = "inline"
    num_envs: int = 16
    env_timeout: float | None = 60.0
    policy_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_envs < 1:
            raise ValueError(f"num-envs must be >= 1, got {self.num_envs}")


# ---------------------------------------------------------------------- results file


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, so a result line is never cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, caught[0])
            else:
                raise KeyboardInterrupt


class ResultsWriter:
    """Appends trajectories to ``results.jsonl``, one ``write`` per line, Ctrl-C safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, traj: Trajectory) -> None:
        data = (traj.to_json() + "\n").encode("utf-8")
        with _sigint_deferred():
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def load_results(path: Path, repair: bool = False) -> list[Trajectory]:
    """The trajectories in ``results.jsonl``; a line cut off by a crash is dropped.

    With ``repair`` the file is rewritten without that line, so appending can go on.
    Duplicate ``(task_index, episode)`` lines keep the first.
    """
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # after the last newline: empty or a cut line
    out: list[Trajectory] = []
    seen: set[tuple[int, int] | None] = set()
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            traj = Trajectory.from_json(line.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ResultsDirError(f"{path}:{number}: not a trajectory JSON line ({exc})") from exc
        key = episode_key(traj)
        if key is not None and key in seen:
            continue
        seen.add(key)
        out.append(traj)
    if tail.strip() and repair:
        path.write_bytes(raw[: len(raw) - len(tail)])
    return out


# ---------------------------------------------------------------------- saved settings


def load_saved(out_dir: Path) -> tuple[EvalConfig, list[TaskRequest]] | None:
    """The config and task sample saved in ``out_dir``, or ``None`` if there are none."""
    path = Path(out_dir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        config = EvalConfig.from_dict(data["config"])
        tasks = [TaskRequest(t["task_id"], t["split"], t["seed"]) for t in data["tasks"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsDirError(f"{path} is not an evaluation config ({exc})") from exc
    return config, tasks


def _save_config(out_dir: Path, config: EvalConfig, tasks: list[TaskRequest]) -> None:
    data = {
        "config": config.to_dict(),
        "tasks": [{"task_id": t.task_id, "split": t.split, "seed": t.seed} for t in tasks],
    }
    tmp = out_dir / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out_dir / CONFIG_FILE)


# ---------------------------------------------------------------------- building


def resolve_config(config: EvalConfig) -> EvalConfig:
    """Fill in what the environment decides: its action parser and turn limit; and the
    policy spec's run directory resolved to the checkpoint evaluated."""
    from agentgym.rollout.build import env_defaults
    from agentgym.rollout.executor import EnvSpec

    defaults = env_defaults(EnvSpec(config.env_id, dict(config.env_kwargs), config.max_steps))
    return config.with_(
        parser=config.parser or defaults.action_parser,
        max_steps=config.max_steps or defaults.max_steps,
        policy=resolve_policy_spec(config.policy),
    )


def sample_eval_tasks(config: EvalConfig) -> list[TaskRequest]:
    """The task sample of ``config`` (the same for the same seed)."""
    from agentgym.rollout.executor import EnvSpec
    from agentgym.rollout.tasks import sample_tasks

    spec = EnvSpec(config.env_id, dict(config.env_kwargs), config.max_steps)
    return sample_tasks(spec, config.split, config.num_tasks, seed=config.seed, distinct=True)


def build_engine(config: EvalConfig, runtime: Runtime, total_episodes: int) -> RolloutEngine:
    """A rollout engine for a resolved ``config`` (pool, policy, parser, prompts)."""
    from agentgym.policies import make_policy
    from agentgym.rollout import EnvSpec
    from agentgym.rollout.build import build_engine as build_rollout_engine

    if config.parser is None or config.max_steps is None:
        raise ValueError("build_engine() needs a resolved config (see resolve_config)")
    policy = make_policy(config.policy, **runtime.policy_options)
    try:
        return build_rollout_engine(
            EnvSpec(config.env_id, dict(config.env_kwargs), config.max_steps),
            policy,
            config.sampling(),
            prompt=config.prompt_config(),
            parser=config.parser,
            executor=runtime.executor,
            pool_size=min(runtime.num_envs, total_episodes),
            timeout=runtime.env_timeout,
            seed=config.seed,
        )
    except BaseException:
        policy.close()
        raise


# ---------------------------------------------------------------------- running


@dataclass
class DirRun:
    """The outcome of :func:`run_in_dir`: the evaluation and what was written."""

    result: EvalResult
    summary: dict[str, Any]
    out_dir: Path
    resumed_episodes: int
    plot: Path | None


def prepare_dir(
    config: EvalConfig, out_dir: Path, overwrite: bool = False
) -> tuple[EvalConfig, list[TaskRequest], list[Trajectory]]:
    """Resolve ``config`` and match it with what ``out_dir`` holds.

    Returns the resolved config, the task sample and the episodes already finished.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    config = resolve_config(config)
    saved = load_saved(out_dir)
    results = out_dir / RESULTS_FILE
    if overwrite or saved is None:
        if saved is None and results.exists() and not overwrite:
            raise ResultsDirError(
                f"{out_dir} has {RESULTS_FILE} but no {CONFIG_FILE}: it was not written by "
                "agentgym eval. Use another --out, or --overwrite to replace it."
            )
        for name in (RESULTS_FILE, SUMMARY_FILE, PLOT_FILE):
            (out_dir / name).unlink(missing_ok=True)
        tasks = sample_eval_tasks(config)
        _save_config(out_dir, config, tasks)
        return config, tasks, []
    saved_config, tasks = saved
    diff = saved_config.differences(config)
    if diff:
        listing = "; ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in diff.items())
        raise ResultsDirError(
            f"{out_dir} holds an evaluation with other settings ({listing}). Use another "
            "--out, --resume to continue that evaluation, or --overwrite to start over."
        )
    return config, tasks, load_results(results, repair=True)


def run_in_dir(
    config: EvalConfig,
    out_dir: str | Path,
    runtime: Runtime | None = None,
    *,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> DirRun:
    """Run (or continue) the evaluation ``config`` in ``out_dir`` and write its report.

    ``on_start(done, total)`` is called once the episodes already finished are known.
    Ctrl-C propagates as :class:`KeyboardInterrupt` after the finished episodes are
    safely on disk; calling again with the same config continues.
    """
    out_dir, runtime = Path(out_dir), runtime or Runtime()
    config, tasks, previous = prepare_dir(config, out_dir, overwrite)
    total = len(tasks) * config.episodes_per_task
    if on_start is not None:
        on_start(len(previous), total)
    prior_seconds = max(
        (float(t.metadata.get("eval_elapsed_s", 0.0)) for t in previous), default=0.0
    )
    start = time.perf_counter()
    writer = ResultsWriter(out_dir / RESULTS_FILE)

    def write(traj: Trajectory) -> None:
        traj.metadata["eval_elapsed_s"] = prior_seconds + time.perf_counter() - start
        writer.write(traj)

    engine = None
    try:
        if len(previous) < total:
            engine = build_engine(config, runtime, total - len(previous))
        result = _play(engine, config, tasks, previous, write, progress)
    finally:
        writer.close()
        if engine is not None:
            engine.close()
            engine.policy.close()
    seconds = prior_seconds + time.perf_counter() - start
    summary = build_summary(config, result, seconds, runtime)
    _write_json(out_dir / SUMMARY_FILE, summary)
    from agentgym.evaluation.report import plot_success_by_type

    plot = plot_success_by_type(summary["metrics"], out_dir / PLOT_FILE, title=_title(config))
    return DirRun(result, summary, out_dir, len(previous), plot)


def _play(
    engine: RolloutEngine | None,
    config: EvalConfig,
    tasks: list[TaskRequest],
    previous: list[Trajectory],
    write: Callable[[Trajectory], None],
    progress: Callable[[int], None] | None,
) -> EvalResult:
    if engine is None:  # everything was already done: just summarize
        ordered = sorted(previous, key=lambda t: episode_key(t) or (0, 0))
        return EvalResult(summarize(ordered, ""), ordered, tasks, config.episodes_per_task, 0.0)
    return evaluate(
        engine,
        tasks,
        config.episodes_per_task,
        prefix="",
        previous=previous,
        on_trajectory=write,
        progress=progress,
        metadata={"policy": config.policy, "eval_split": config.split},
    )


def _title(config: EvalConfig) -> str:
    """The plot's title; a long model path keeps its last three parts."""
    kind, sep, target = config.policy.partition(":")
    parts = Path(target).parts
    policy = config.policy
    if sep and len(parts) > 3:
        policy = f"{kind}:…/{'/'.join(parts[-3:])}"
    return f"{config.env_id} ({config.split}) · {policy}"


def _redacted(options: dict[str, Any]) -> dict[str, Any]:
    return {
        k: "<redacted>" if any(h in k.lower() for h in _SECRET_HINTS) else v
        for k, v in options.items()
    }


def build_summary(
    config: EvalConfig, result: EvalResult, seconds: float, runtime: Runtime
) -> dict[str, Any]:
    """``summary.json``: metrics over every episode, settings and provenance."""
    trajectories = result.trajectories
    metrics = summarize(trajectories, "", seconds=seconds)
    tasks_stats = per_task(trajectories)
    errors = [t for t in trajectories if t.status == "error"]
    return {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "complete": len(trajectories) == len(result.tasks) * config.episodes_per_task,
        "env": {**env_provenance(config.env_id), "kwargs": config.env_kwargs},
        "split": config.split,
        "policy": {"spec": config.policy, "options": _redacted(runtime.policy_options)},
        "sampling": {
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
            "seed": config.seed,
        },
        "prompt": {
            "style": config.prompt_style,
            "history_length": config.history_length,
            "parser": config.parser,
        },
        "max_steps": config.max_steps,
        "seed": config.seed,
        "episodes_per_task": config.episodes_per_task,
        "num_tasks": len(result.tasks),
        "requested_tasks": config.num_tasks,
        "distinct_tasks": len({t.task_id for t in result.tasks}),
        "task_ids": [t.task_id for t in result.tasks],
        "tasks": [{"task_id": t.task_id, "seed": t.seed} for t in result.tasks],
        "config": config.to_dict(),
        "runtime": {"executor": runtime.executor, "num_envs": runtime.num_envs},
        "git": git_provenance(),
        "wall_seconds": seconds,
        "metrics": metrics,
        "methods": METHODS,
        "per_task": {
            tid: {
                "task_type": s.task_type,
                "episodes": s.episodes,
                "successes": s.successes,
                "score": s.mean_score,
            }
            for tid, s in tasks_stats.items()
        },
        "errors": [
            {"traj_id": t.traj_id, "task_id": t.task_id, "error": (t.error or "")[:2000]}
            for t in errors[:20]
        ],
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    # A lone surrogate (from a model's text, in an error message) becomes a \u escape.
    tmp.write_bytes(text.encode("utf-8", "backslashreplace"))
    tmp.replace(path)
