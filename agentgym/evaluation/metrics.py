"""Evaluation metrics from trajectories: one function, :func:`summarize`, used by
``agentgym eval`` and by the trainer's periodic validation, so both report the same numbers.

Conventions (also in ``docs/evaluation.md``):

* An episode is one trajectory. Episodes whose ``status`` is ``"error"`` (the environment
  or the policy failed) stay in every denominator and count as failures (``success``
  False, their last ``score``); ``error_rate`` reports how many there were.
* Tasks are the clusters: every interval accounts for the K episodes of a task being
  correlated (see :mod:`agentgym.evaluation.stats`). Episodes are grouped by ``task_id``.
* ``success`` is the fraction of episodes that succeeded (episode-weighted), with a Wilson
  interval (with a clustered effective sample size when K > 1); ``score`` the mean final
  score with the same kind of interval; ``pass@k`` the unbiased estimator of Chen et al.
  (2021) averaged over tasks, for every k up to the fewest episodes any task has.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agentgym.evaluation import stats
from agentgym.trajectory import Trajectory

__all__ = ["TaskStats", "default_pass_ks", "per_task", "success_interval", "summarize"]

#: How each reported number is computed, stored in ``summary.json`` next to the numbers.
METHODS: dict[str, str] = {
    "success": (
        "fraction of episodes with success=True; errors count as failures. 95% interval: "
        "Wilson score interval; with several episodes per task, Wilson with the "
        "Korn-Graubard effective sample size from the between-task (cluster-robust) variance"
    ),
    "score": (
        "mean final score (in [0, 1]); 95% interval: Wilson with the effective sample size "
        "m(1-m)/V from the observed (by task, cluster-robust) variance V, capped at the "
        "number of episodes"
    ),
    "pass@k": "unbiased estimator 1 - C(n-c, k)/C(n, k) per task (Chen et al. 2021), mean over "
    "tasks",
    "steps": "mean steps per episode",
    "reward": "mean episode return (sum of step rewards, invalid-action penalties included)",
    "response_tokens": "mean generated tokens per step",
    "invalid_action_rate": "invalid steps / all steps (unparsable or rejected by the env)",
    "tool_calls": "mean tool calls per episode (the env's num_tool_calls info key)",
    "error_rate": "fraction of episodes that ended with status 'error' (counted as failures)",
    "truncated_rate": "fraction of episodes cut off by the turn limit or the context length",
    "tokens_generated": "response tokens over all episodes (0 for model-free policies)",
}


@dataclass
class TaskStats:
    """One task's episodes, reduced to what the metrics need."""

    task_id: str
    task_type: str | None = None
    episodes: int = 0
    successes: int = 0
    score_sum: float = 0.0

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.episodes


def per_task(trajectories: Iterable[Trajectory]) -> dict[str, TaskStats]:
    """Episodes grouped by ``task_id``, in order of first appearance."""
    out: dict[str, TaskStats] = {}
    for traj in trajectories:
        task = out.get(traj.task_id)
        if task is None:
            task = out[traj.task_id] = TaskStats(traj.task_id, traj.task_type)
        task.episodes += 1
        task.successes += int(_succeeded(traj))
        task.score_sum += _score(traj)
    return out


def _succeeded(traj: Trajectory) -> bool:
    return bool(traj.success) and traj.status != "error"


def _score(traj: Trajectory) -> float:
    return float(traj.score)


def success_interval(tasks: Sequence[TaskStats], confidence: float = 0.95) -> stats.Interval:
    """The success rate of these tasks' episodes with its interval."""
    return stats.proportion_interval(
        [t.successes for t in tasks], [t.episodes for t in tasks], confidence
    )


def score_interval(tasks: Sequence[TaskStats], confidence: float = 0.95) -> stats.Interval:
    """The mean final score of these tasks' episodes with its interval (scores lie in [0, 1],
    so the same effective-sample-size Wilson interval as the success rate applies)."""
    return stats.proportion_interval(
        [t.score_sum for t in tasks], [t.episodes for t in tasks], confidence
    )


def default_pass_ks(episodes_per_task: int) -> list[int]:
    """The k reported for pass@k: every k up to 16, then powers of two and K itself."""
    if episodes_per_task <= 16:
        return list(range(1, episodes_per_task + 1))
    ks = {1 << i for i in range(episodes_per_task.bit_length()) if 1 << i <= episodes_per_task}
    return sorted(ks | {episodes_per_task})


def summarize(
    trajectories: Sequence[Trajectory],
    prefix: str = "val/",
    *,
    confidence: float = 0.95,
    pass_ks: Sequence[int] | None = None,
    seconds: float | None = None,
    by_type: bool = True,
) -> dict[str, float]:
    """Evaluation metrics of ``trajectories``, as a flat ``{name: value}`` dict.

    Names (each with ``prefix``): ``episodes``, ``tasks``, ``success``,
    ``success_ci_low``, ``success_ci_high``, ``score``, ``score_ci_low``,
    ``score_ci_high``, ``pass@{k}``, ``steps``, ``reward``, ``response_tokens``,
    ``invalid_action_rate``, ``tool_calls``,
    ``error_rate``, ``truncated_rate``, ``tokens_generated``, ``tokens_per_episode``;
    ``seconds`` and ``episodes_per_s`` when ``seconds`` is given; and per task type
    (when any trajectory has one) ``type/{name}/success``, ``type/{name}/success_ci_low``,
    ``type/{name}/success_ci_high``, ``type/{name}/score`` and ``type/{name}/episodes``.

    ``pass_ks`` defaults to :func:`default_pass_ks` of the fewest episodes any task has;
    a k larger than that is an error.
    """
    if not trajectories:
        raise ValueError("summarize() needs at least one trajectory")
    tasks = list(per_task(trajectories).values())
    episodes = len(trajectories)
    success = success_interval(tasks, confidence)
    score = score_interval(tasks, confidence)
    total_steps = sum(t.num_steps for t in trajectories)
    tokens = sum(t.num_generated_tokens for t in trajectories)
    out: dict[str, float] = {
        "episodes": float(episodes),
        "tasks": float(len(tasks)),
        "success": success.estimate,
        "success_ci_low": success.low,
        "success_ci_high": success.high,
        "score": score.estimate,
        "score_ci_low": score.low,
        "score_ci_high": score.high,
    }
    fewest = min(t.episodes for t in tasks)
    ks = default_pass_ks(fewest) if pass_ks is None else sorted(set(pass_ks))
    for k in ks:
        if k > fewest:
            raise ValueError(f"pass@{k} needs every task played >= {k} times; fewest is {fewest}")
        out[f"pass@{k}"] = sum(stats.pass_at_k(t.episodes, t.successes, k) for t in tasks) / len(
            tasks
        )
    out.update(
        {
            "steps": total_steps / episodes,
            "reward": sum(t.total_reward for t in trajectories) / episodes,
            "response_tokens": tokens / max(total_steps, 1),
            "invalid_action_rate": sum(t.num_invalid for t in trajectories) / max(total_steps, 1),
            "tool_calls": sum(t.num_tool_calls for t in trajectories) / episodes,
            "error_rate": sum(t.status == "error" for t in trajectories) / episodes,
            "truncated_rate": sum(t.status == "truncated" for t in trajectories) / episodes,
            "tokens_generated": float(tokens),
            "tokens_per_episode": tokens / episodes,
        }
    )
    if seconds is not None:
        out["seconds"] = float(seconds)
        out["episodes_per_s"] = episodes / seconds if seconds > 0 else 0.0
    if by_type:
        for name, group in _by_type(tasks).items():
            rate = success_interval(group, confidence)
            key = f"type/{name}/"
            out[key + "success"] = rate.estimate
            out[key + "success_ci_low"] = rate.low
            out[key + "success_ci_high"] = rate.high
            out[key + "score"] = score_interval(group, confidence).estimate
            out[key + "episodes"] = float(sum(t.episodes for t in group))
    return {prefix + name: value for name, value in out.items()}


def _by_type(tasks: Sequence[TaskStats]) -> dict[str, list[TaskStats]]:
    """Tasks grouped by type, sorted by name; empty when no task has a type."""
    if all(t.task_type is None for t in tasks):
        return {}
    groups: dict[str, list[TaskStats]] = {}
    for task in tasks:
        groups.setdefault(str(task.task_type or "untyped"), []).append(task)
    return dict(sorted(groups.items()))


def task_types(metrics: dict[str, float], prefix: str = "") -> list[str]:
    """The task types present in a :func:`summarize` result, in order."""
    start = prefix + "type/"
    return [
        key[len(start) : -len("/success")]
        for key in metrics
        if key.startswith(start) and key.endswith("/success")
    ]
