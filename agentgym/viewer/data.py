"""What the viewer shows, read from a run's or an evaluation's own files.

A *training run* directory (``agentgym train``) is recognised by ``metrics.jsonl`` or
``rollouts/``; an *evaluation* directory (``agentgym eval``) by ``results.jsonl``. Every
request reads the files again, so the page follows a run that is still training.

Everything returned is plain JSON data (numbers that are not finite become ``null``), in
the shapes the page's script reads: :meth:`ViewSource.overview`,
:meth:`ViewSource.iteration` and :meth:`ViewSource.task`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentgym.errors import AgentGymError
from agentgym.evaluation.session import RESULTS_FILE as EVAL_RESULTS
from agentgym.evaluation.session import SUMMARY_FILE as EVAL_SUMMARY
from agentgym.runs import RunDir
from agentgym.trajectory import Trajectory

__all__ = ["ViewSource", "ViewerError", "open_source"]

#: Longest text field sent to the page; longer ones are cut with a note (a page of
#: several MB of one observation helps no one, and the files keep the full text).
MAX_TEXT = 20_000

_ITER_FILE = re.compile(r"^iter_(\d+)\.jsonl$")


class ViewerError(AgentGymError, ValueError):
    """A directory the viewer cannot show, or a request for something it does not have."""


def open_source(path: str | Path) -> ViewSource:
    """The run or evaluation in ``path``.

    Raises:
        ViewerError: ``path`` is missing, or holds neither kind of directory.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ViewerError(f"{path} is not a directory; give a training run or eval directory")
    if (root / EVAL_RESULTS).exists():
        return ViewSource(root, "eval")
    run = RunDir(root)
    if run.metrics.exists() or run.rollouts.is_dir():
        return ViewSource(root, "run")
    raise ViewerError(
        f"{path} is neither a training run ({run.metrics.name} or {run.rollouts.name}/, "
        f"written by agentgym train) nor an evaluation ({EVAL_RESULTS}, written by "
        "agentgym eval)"
    )


class ViewSource:
    """A run or evaluation directory, read on demand."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root = root
        self.kind = kind
        self.run = RunDir(root)

    # ------------------------------------------------------------------ overview

    def overview(self) -> dict[str, Any]:
        """Title, kind and what to list: a run's metrics and sampled iterations, or an
        evaluation's summary and per-task results."""
        base = {"kind": self.kind, "title": self.root.resolve().name, "path": str(self.root)}
        if self.kind == "run":
            base.update(self._run_overview())
        else:
            base.update(self._eval_overview())
        return clean_json(base)

    def _run_overview(self) -> dict[str, Any]:
        config = _read_yaml(self.run.config)
        algorithm = config.get("algorithm") or {}
        estimator = algorithm.get("adv_estimator")
        hgpo = algorithm.get("hgpo") or {}
        return {
            "env_id": (config.get("env") or {}).get("id"),
            "estimator": estimator,
            "history_length": int(hgpo.get("history_length", 2)),
            "metrics": _read_records(self.run.metrics),
            "iterations": self.iterations(),
            "summary": _read_json(self.run.summary),
        }

    def iterations(self) -> list[int]:
        """The iterations with a saved rollout sample, in order."""
        folder = self.run.rollouts
        if not folder.is_dir():
            return []
        found = (_ITER_FILE.match(p.name) for p in folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def _eval_overview(self) -> dict[str, Any]:
        summary = _read_json(self.root / EVAL_SUMMARY) or {}
        trajectories = self._eval_results()
        tasks: dict[str, dict[str, Any]] = {}
        for traj in trajectories:
            row = tasks.setdefault(
                traj.task_id,
                {
                    "task_id": traj.task_id,
                    "task_type": traj.task_type,
                    "split": traj.split,
                    "episodes": 0,
                    "successes": 0,
                    "score_sum": 0.0,
                    "steps_sum": 0,
                    "errors": 0,
                },
            )
            row["episodes"] += 1
            row["successes"] += int(bool(traj.success) and traj.status != "error")
            row["score_sum"] += float(traj.score)
            row["steps_sum"] += traj.num_steps
            row["errors"] += int(traj.status == "error")
        fewest = min((r["episodes"] for r in tasks.values()), default=0)
        ks = _pass_ks(fewest)
        rows = []
        for row in tasks.values():
            n, c = row.pop("episodes"), row["successes"]
            rows.append(
                {
                    **{k: v for k, v in row.items() if not k.endswith("_sum")},
                    "episodes": n,
                    "success_rate": c / n,
                    "score": row["score_sum"] / n,
                    "steps": row["steps_sum"] / n,
                    "pass_at_k": {str(k): _pass_at_k(n, c, k) for k in ks},
                }
            )
        env = (summary.get("env") or {}).get("id") or _first(t.env_id for t in trajectories)
        return {
            "env_id": env,
            "split": summary.get("split"),
            "policy": (summary.get("policy") or {}).get("spec"),
            "episodes_per_task": summary.get("episodes_per_task"),
            "complete": summary.get("complete"),
            "metrics": summary.get("metrics") or {},
            "methods": summary.get("methods") or {},
            "pass_ks": ks,
            "tasks": rows,
        }

    # ------------------------------------------------------------------ details

    def iteration(self, iteration: int) -> dict[str, Any]:
        """The task groups of one sampled iteration, each with its trajectories."""
        if self.kind != "run":
            raise ViewerError("an evaluation directory has no training iterations")
        path = self.run.rollout_file(iteration)
        if not path.exists():
            raise ViewerError(
                f"no rollout sample for iteration {iteration}; saved: {self.iterations()}"
            )
        trajectories = _read_trajectories(path)
        estimator = _first(t.metadata.get("estimator") for t in trajectories)
        return clean_json(
            {
                "iteration": iteration,
                "estimator": estimator,
                "groups": _groups(trajectories, lambda t: t.group_id),
            }
        )

    def task(self, task_id: str) -> dict[str, Any]:
        """An evaluation task with every episode played on it."""
        if self.kind != "eval":
            raise ViewerError("a training run has no evaluation tasks; open its eval directory")
        episodes = [t for t in self._eval_results() if t.task_id == task_id]
        if not episodes:
            raise ViewerError(f"task {task_id!r} is not in {self.root / EVAL_RESULTS}")
        return clean_json(_groups(episodes, lambda t: t.task_id)[0])

    def _eval_results(self) -> list[Trajectory]:
        """The episodes in the evaluation's task order (the file is in finishing order)."""
        episodes = _read_trajectories(self.root / EVAL_RESULTS)
        return sorted(
            episodes,
            key=lambda t: (
                _episode_number(t.metadata.get("eval_task_index")),
                _episode_number(t.metadata.get("eval_episode")),
            ),
        )


# ---------------------------------------------------------------------- shapes


def _groups(trajectories: list[Trajectory], key: Any) -> list[dict[str, Any]]:
    """Trajectories grouped by ``key``, groups in order of first appearance."""
    groups: dict[str, list[Trajectory]] = {}
    for traj in trajectories:
        groups.setdefault(key(traj), []).append(traj)
    out = []
    for group_id, members in groups.items():
        first = members[0]
        out.append(
            {
                "group_id": group_id,
                "task_id": first.task_id,
                "task_type": first.task_type,
                "split": first.split,
                "seed": first.seed,
                "env_id": first.env_id,
                "instruction": _cut(first.instruction),
                "trajectories": [_trajectory(t) for t in members],
            }
        )
    return out


def _trajectory(traj: Trajectory) -> dict[str, Any]:
    advantages = traj.metadata.get("advantages")
    if not isinstance(advantages, list) or len(advantages) != len(traj.steps):
        advantages = [None] * len(traj.steps)
    return {
        "traj_id": traj.traj_id,
        "status": traj.status,
        "error": _cut(traj.error) if traj.error else None,
        "success": bool(traj.success),
        "score": traj.score,
        "total_reward": traj.total_reward,
        "episode": traj.metadata.get("eval_episode"),
        "steps": [
            {
                "index": step.index,
                "observation": _cut(step.observation),
                "response": _cut(step.response_text),
                "action": None if step.action is None else _cut(step.action),
                "reward": step.reward,
                "state_key": step.state_key,
                "agent": step.agent,
                "action_valid": step.action_valid,
                "finish_reason": step.finish_reason,
                "terminated": step.terminated,
                "truncated": step.truncated,
                "advantage": _number(adv),
            }
            for step, adv in zip(traj.steps, advantages, strict=True)
        ],
    }


def _episode_number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 1 << 62


def _cut(text: str | None) -> str:
    text = text or ""
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n[... {len(text) - MAX_TEXT} more characters in the file]"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _first(values: Iterable[Any]) -> Any:
    return next((v for v in values if v is not None), None)


def _pass_ks(fewest: int) -> list[int]:
    from agentgym.evaluation.metrics import default_pass_ks

    return default_pass_ks(fewest) if fewest > 0 else []


def _pass_at_k(n: int, c: int, k: int) -> float:
    from agentgym.evaluation.stats import pass_at_k

    return float(pass_at_k(n, c, k))


def clean_json(value: Any) -> Any:
    """``value`` with non-finite floats as ``None`` (browsers' JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


# ---------------------------------------------------------------------- files


def _read_trajectories(path: Path) -> list[Trajectory]:
    """Trajectory lines of ``path``; a torn or foreign line is skipped, not fatal."""
    out = []
    for line in _lines(path):
        try:
            out.append(Trajectory.from_json(line))
        except (ValueError, TypeError, KeyError):
            continue
    return out


def _read_records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in _lines(path):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [line for line in text.split("\n") if line.strip()]


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}
