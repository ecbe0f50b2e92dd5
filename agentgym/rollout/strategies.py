"""Rollout strategies: how the episodes of one task are laid out (``env.rollout.strategy``).

A strategy decides which episodes the rollout engine plays for a task and where they
start; the engine's lock-step loop plays them all (:mod:`agentgym.rollout.engine`). Three
are built in, each with its own settings in ``env.rollout.<name>`` (read from the class's
signature, like an estimator's: a misspelt setting is refused when the config loads):

``group`` (default)
    N independent episodes per task, every one from ``reset``: GRPO's group.

``tree`` (TreePO, Li et al. 2025, arXiv:2508.17445)
    ``roots`` independent episodes per task; at the chosen depths a running episode
    branches into ``branch_factor`` children: its environment is snapshotted and each
    extra child restores the snapshot into a slot of its own, with a copy of the
    episode's prompt state. Branching stops at a budget of ``leaves`` per task (default
    ``env.rollout.n``). Every root-to-leaf path is one :class:`~agentgym.trajectory.
    Trajectory`; the steps before a branch are *the same* :class:`~agentgym.trajectory.
    Step` objects in every leaf below it (generated and stepped once, stored once, and
    trained once: see ``node`` in :mod:`agentgym.inputs`). A tree's leaves are its
    group.

``local`` (LoGo-GRPO, Memory-R2, Yan et al. 2026, arXiv:2605.21768)
    N global episodes per task as in ``group``; ``trajectories`` of them are snapshotted
    after every step. When they end, ``points`` intermediate states of each are picked
    at random and ``k`` alternatives are re-rolled from each state: the re-rolled step
    and a short ``continuation``. Each state's re-rolls form a *local group* (a group of
    their own, ``group_id`` ``<task group>@<source>.<step>``): siblings that start from
    exactly the same state, so comparing them is fair. A re-roll is a trajectory that
    starts mid-episode: its ``metadata`` has ``branch_of`` (the source trajectory's id)
    and ``branch_step`` (the source's step it re-plays), and the ``branch`` input of
    the estimators marks its rows.

Every strategy reports what it cost per *distinct* trajectory (a tree's leaves, the
re-rolls): ``perf/rollout_tokens_per_trajectory``, ``..._env_steps_per_trajectory`` and
``..._seconds_per_trajectory`` (:class:`~agentgym.rollout.engine.RolloutStats`), so the
saving of shared prefixes is measured (``benchmarks/branch_speed.py``). The branching
strategies need environments with snapshots (:func:`agentgym.supports_snapshot`) and work
with every env pool: ``snapshot`` and ``restore`` are env calls like ``reset`` and
``step``, and snapshots travel to worker processes and Ray actors as pickles.

Register a strategy of your own with :func:`register_strategy`: a class whose
keyword-only ``__init__`` parameters (all with defaults) are its settings and whose
``run(engine, tasks, n, *, group_prefix, metadata, on_trajectory, progress)`` returns the
trajectories, grouped by task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np

from agentgym.env import stable_hash
from agentgym.errors import ConfigError, SnapshotNotSupportedError, UnknownNameError
from agentgym.params import Interval, ParamInfo, PositiveInt, check_params, read_params
from agentgym.registries import Registry
from agentgym.trajectory import Trajectory

if TYPE_CHECKING:
    from agentgym.rollout.engine import RolloutEngine, TaskRequest, _Episode

__all__ = [
    "GroupStrategy",
    "LocalStrategy",
    "RolloutStrategy",
    "TreeStrategy",
    "UnknownStrategyError",
    "list_strategies",
    "make_strategy",
    "register_strategy",
    "strategy_params",
    "validate_strategy",
    "whole_episodes",
]


class UnknownStrategyError(UnknownNameError, ValueError):
    """No rollout strategy is registered under that name."""


class RolloutStrategy:
    """Base class of rollout strategies (see the module docstring)."""

    name = ""

    def run(
        self,
        engine: RolloutEngine,
        tasks: Sequence[TaskRequest],
        n: int,
        *,
        group_prefix: str = "",
        metadata: dict[str, Any] | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Trajectory]:
        """Play ``tasks`` with ``engine``; return the trajectories grouped by task."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({vars(self)})"


STRATEGIES: Registry[type[RolloutStrategy]] = Registry("rollout strategy", UnknownStrategyError)
_PARAMS: dict[str, dict[str, ParamInfo]] = {}


def register_strategy(name: str) -> Callable[[type[RolloutStrategy]], type[RolloutStrategy]]:
    """Register a rollout strategy class as ``name`` (decorator); its keyword-only
    ``__init__`` parameters are its settings (``env.rollout.<name>``)."""

    def decorate(cls: type[RolloutStrategy]) -> type[RolloutStrategy]:
        params = read_params(cls, f"rollout strategy {name!r}", skip=0, first="self")
        STRATEGIES.register(name, cls)
        _PARAMS[name] = params
        cls.name = name
        return cls

    return decorate


def list_strategies() -> list[str]:
    """Every registered rollout strategy, sorted."""
    return STRATEGIES.names()


def strategy_params(name: str) -> dict[str, ParamInfo]:
    """The settings of strategy ``name`` (name -> :class:`~agentgym.params.ParamInfo`)."""
    STRATEGIES.get(name)
    return dict(_PARAMS[name])


def validate_strategy(name: str, settings: Mapping[str, Any]) -> None:
    """Raise (UnknownNameError, ValueError, TypeError) for an unknown strategy, an unknown
    setting, or a value its signature or its own checks refuse."""
    make_strategy(name, settings)


def make_strategy(name: str, settings: Mapping[str, Any] | None = None) -> RolloutStrategy:
    """The strategy ``name`` with ``settings`` (checked against its signature first)."""
    cls = STRATEGIES.get(name)
    settings = dict(settings or {})
    check_params(f"rollout strategy {name!r}", _PARAMS[name], settings)
    return cls(**settings)


def whole_episodes(trajectories: Sequence[Trajectory]) -> list[Trajectory]:
    """The trajectories that start at the task's reset: everything but local re-rolls
    (which start mid-episode and end after a short continuation), e.g. for success rates."""
    return [t for t in trajectories if "branch_step" not in t.metadata]


def _require_snapshots(engine: RolloutEngine, strategy: str) -> None:
    """A clear error before anything is played when the env cannot take snapshots."""
    from agentgym.snapshots import supports_snapshot

    spec = engine.pool.spec
    checked = getattr(engine, "_snapshots_checked", None)
    if checked == spec.env_id:
        return
    env = spec.make()
    try:
        ok = supports_snapshot(env)
        name = type(env.unwrapped).__name__
    finally:
        env.close()
    if not ok:
        raise SnapshotNotSupportedError(
            name,
            f"env.rollout.strategy {strategy!r} branches episodes from snapshots; "
            f"{spec.env_id} has none, so use strategy 'group'",
        )
    engine._snapshots_checked = spec.env_id  # type: ignore[attr-defined]


def _uncertainty(ep: _Episode) -> float:
    """Mean surprisal (-log-prob) of the sampled tokens of the episode's last step: an
    unbiased estimate of the policy's token entropy there; 0 without log-probs."""
    if not ep.traj.steps:
        return 0.0
    logprobs = ep.traj.steps[-1].response_logprobs
    if not logprobs:
        return 0.0
    value = -float(np.mean(logprobs))
    return value if np.isfinite(value) else 0.0


# ---------------------------------------------------------------------------- group


@register_strategy("group")
class GroupStrategy(RolloutStrategy):
    """N independent episodes per task, each from ``reset`` (GRPO's group). No settings."""

    def run(
        self,
        engine: RolloutEngine,
        tasks: Sequence[TaskRequest],
        n: int,
        *,
        group_prefix: str = "",
        metadata: dict[str, Any] | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Trajectory]:
        start = time.perf_counter()
        episodes = engine._new_episodes(tasks, n, group_prefix, metadata)
        engine._play(episodes, on_trajectory, progress)
        engine.stats.seconds_total += time.perf_counter() - start
        return [ep.traj for ep in episodes]


# ---------------------------------------------------------------------------- tree

BranchOrder = Literal["schedule", "entropy", "logprob"]


@register_strategy("tree")
class TreeStrategy(RolloutStrategy):
    """TreePO-style tree rollouts (see the module docstring).

    Args:
        roots: independent episodes per task the trees grow from.
        branch_factor: children of a branch point (the branching episode continues as
            the first child).
        depths: the steps at which episodes may branch (step ``d``: the children share
            steps ``0 .. d-1`` and differ from step ``d`` on); ``null``: every step.
        branch_on: which episodes of a task branch first when the budget cannot branch
            them all at a depth: ``schedule`` in order; ``entropy`` the ones whose last
            step was sampled with the highest mean surprisal (-log-prob of the sampled
            tokens, an unbiased estimate of the policy's token entropy there); ``logprob``
            the most confident first (highest mean log-prob).
        per_depth: at most this many episodes of a task branch at one depth (``null``:
            as many as the budget allows). With ``branch_on: entropy`` and
            ``per_depth: 1`` the budget goes, depth by depth, to the step where the
            policy was least sure.
        leaves: the most leaves (trajectories) per task; ``null``: ``env.rollout.n``.
            Episodes that end before a depth leave the budget unspent (TreePO's fallback,
            re-growing short trees, is not implemented).

    Deviation from TreePO: its tree branches in fixed-length *token segments* of one
    response; here the unit is an environment step (the env's state is what a snapshot
    saves), so a segment is one turn.
    """

    def __init__(
        self,
        *,
        roots: PositiveInt = 2,
        branch_factor: Annotated[int, Interval(2)] = 2,
        depths: list[int] | None = None,
        branch_on: BranchOrder = "schedule",
        per_depth: PositiveInt | None = None,
        leaves: PositiveInt | None = None,
    ) -> None:
        if depths is not None:
            if isinstance(depths, str) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in depths
            ):
                raise ValueError(
                    f"rollout strategy 'tree', parameter 'depths': expected a list of steps "
                    f">= 1 (e.g. [1, 2]) or null, got {depths!r}"
                )
            depths = sorted(set(depths))
        if leaves is not None and leaves < roots:
            raise ValueError(
                f"rollout strategy 'tree': leaves ({leaves}) must be >= roots ({roots})"
            )
        self.roots, self.branch_factor, self.depths = roots, branch_factor, depths
        self.branch_on, self.per_depth, self.leaves = branch_on, per_depth, leaves

    def run(
        self,
        engine: RolloutEngine,
        tasks: Sequence[TaskRequest],
        n: int,
        *,
        group_prefix: str = "",
        metadata: dict[str, Any] | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Trajectory]:
        _require_snapshots(engine, "tree")
        start = time.perf_counter()
        budget = self.leaves or n
        roots = min(self.roots, budget)
        episodes = engine._new_episodes(tasks, roots, group_prefix, metadata)
        # where each episode is: (task index, path of child indices from its root)
        place: dict[int, tuple[int, tuple[int, ...]]] = {
            id(ep): (i // roots, (i % roots,)) for i, ep in enumerate(episodes)
        }
        count = [roots] * len(tasks)  # leaves per task so far (running or finished)
        depths = set(self.depths) if self.depths is not None else None

        def after_turn(active: list[_Episode]) -> list[_Episode]:
            by_task: dict[int, list[_Episode]] = {}
            for ep in active:
                depth = len(ep.traj.steps)
                if ep.done or (depths is not None and depth not in depths):
                    continue
                by_task.setdefault(place[id(ep)][0], []).append(ep)
            forks: list[tuple[_Episode, int]] = []
            for task, candidates in by_task.items():
                if self.branch_on != "schedule":
                    sign = -1.0 if self.branch_on == "entropy" else 1.0
                    candidates = sorted(candidates, key=lambda e: sign * _uncertainty(e))
                for ep in candidates[: self.per_depth]:
                    k = min(self.branch_factor, budget - count[task] + 1)
                    if k < 2:
                        break
                    forks.append((ep, k))
                    count[task] += k - 1
            snapshots = engine._snapshots([ep for ep, _ in forks])
            branches: list[_Episode] = []
            for (ep, k), snap in zip(forks, snapshots, strict=True):
                task, path = place[id(ep)]
                if snap is None:  # the env could not save its state: no branch here
                    count[task] -= k - 1
                    continue
                place[id(ep)] = (task, (*path, 0))
                ep.traj.traj_id = _tree_id(ep.traj.group_id, (*path, 0))
                for j in range(1, k):
                    child_path = (*path, j)
                    child = engine._branch(ep, snap, _tree_id(ep.traj.group_id, child_path))
                    place[id(child)] = (task, child_path)
                    branches.append(child)
            return branches

        engine._play(episodes, on_trajectory, progress, after_turn)
        leaves = sorted(episodes, key=lambda ep: place[id(ep)])
        trajectories = [ep.traj for ep in leaves]
        _number_nodes(trajectories)
        engine.stats.seconds_total += time.perf_counter() - start
        return trajectories


def _tree_id(group_id: str, path: tuple[int, ...]) -> str:
    """``<group>/<root>.<child>.<child>``: a root that never branched keeps ``<group>/k``."""
    return f"{group_id}/{'.'.join(str(p) for p in path)}"


def _number_nodes(trajectories: Sequence[Trajectory]) -> None:
    """``metadata["nodes"]``: per step, an id of the stored step within its group (steps a
    tree's leaves share have one id); :attr:`agentgym.trajectory.StepColumns.node` reads it."""
    codes: dict[str, dict[int, int]] = {}
    for traj in trajectories:
        table = codes.setdefault(traj.group_id, {})
        traj.metadata["nodes"] = [table.setdefault(id(s), len(table)) for s in traj.steps]


# ---------------------------------------------------------------------------- local


@register_strategy("local")
class LocalStrategy(RolloutStrategy):
    """LoGo-GRPO's local re-rollouts after the global ones (see the module docstring).

    Args:
        trajectories: global episodes per task whose intermediate states are re-rolled
            (chosen at random before they are played; they are snapshotted after every
            step).
        points: intermediate states re-rolled per chosen episode (at random among its
            steps 1 .. len-1; fewer when the episode is shorter).
        k: alternatives re-rolled from each state (the local group's size).
        continuation: steps each alternative plays after its re-rolled step before it is
            cut (``-1``: until the episode ends); its local return is the reward of the
            re-rolled step and the continuation.

    The global episodes are ``env.rollout.n`` per task; the re-rolls come on top
    (``trajectories x points x k`` per task at most).
    """

    def __init__(
        self,
        *,
        trajectories: PositiveInt = 2,
        points: PositiveInt = 1,
        k: Annotated[int, Interval(2)] = 4,
        continuation: Annotated[int, Interval(-1)] = 2,
    ) -> None:
        self.trajectories, self.points, self.k = trajectories, points, k
        self.continuation = continuation

    def run(
        self,
        engine: RolloutEngine,
        tasks: Sequence[TaskRequest],
        n: int,
        *,
        group_prefix: str = "",
        metadata: dict[str, Any] | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Trajectory]:
        _require_snapshots(engine, "local")
        start = time.perf_counter()
        seed = engine.sampling.seed if engine.sampling.seed is not None else 0
        rng = np.random.default_rng([stable_hash(seed, group_prefix) % (2**31), len(tasks)])
        episodes = engine._new_episodes(tasks, n, group_prefix, metadata)
        chosen = {
            id(episodes[t * n + int(i)]): (t, int(i))
            for t in range(len(tasks))
            for i in rng.choice(n, size=min(self.trajectories, n), replace=False)
        }
        # (task, source index) -> {step t: a template episode at the state before step t}
        states: dict[tuple[int, int], dict[int, _Episode]] = {key: {} for key in chosen.values()}

        def after_turn(active: list[_Episode]) -> list[_Episode]:
            running = [ep for ep in active if id(ep) in chosen and not ep.done]
            for ep, snap in zip(running, engine._snapshots(running), strict=True):
                if snap is not None:
                    states[chosen[id(ep)]][len(ep.traj.steps)] = engine._branch(
                        ep, snap, "", fresh=True
                    )
            return []

        engine._play(episodes, on_trajectory, progress, after_turn)
        rerolls: list[_Episode] = []
        for (t, i), by_step in sorted(states.items()):
            steps = sorted(by_step)
            picked = sorted(rng.choice(steps, size=min(self.points, len(steps)), replace=False))
            source = episodes[t * n + i].traj
            for point in (int(p) for p in picked):
                template = by_step[point]
                group = f"{source.group_id}@{i}.{point}"
                left = engine.max_steps - point
                limit = left if self.continuation < 0 else min(left, 1 + self.continuation)
                for j in range(self.k):
                    branch = engine._branch(
                        template,
                        template.start,
                        f"{group}/{j}",
                        fresh=True,
                        branch_of=source.traj_id,
                        branch_step=point,
                    )
                    branch.traj.group_id = group
                    branch.limit = limit
                    rerolls.append(branch)
        if rerolls:
            engine._play(rerolls, on_trajectory, progress)
        for ep in rerolls:
            traj = ep.traj
            if (
                traj.status == "truncated"
                and "truncated_by" not in traj.metadata
                and len(traj.steps) == ep.limit
                and ep.limit < engine.max_steps - int(traj.metadata["branch_step"])
            ):
                traj.metadata["truncated_by"] = "continuation"
        task_of = {ep.traj.traj_id: index // n for index, ep in enumerate(episodes)}
        by_task: dict[int, list[Trajectory]] = {}
        for ep in rerolls:
            by_task.setdefault(task_of[str(ep.traj.metadata["branch_of"])], []).append(ep.traj)
        out: list[Trajectory] = []
        for t in range(len(tasks)):
            out.extend(ep.traj for ep in episodes[t * n : (t + 1) * n])
            out.extend(by_task.get(t, []))
        engine.stats.seconds_total += time.perf_counter() - start
        return out


def check_strategy_section(name: str, sections: Mapping[str, Mapping[str, Any]]) -> None:
    """Config check of ``env.rollout``: the chosen strategy exists and every strategy's
    section holds valid settings (a :class:`~agentgym.errors.ConfigError` otherwise)."""
    names = list_strategies()
    if name not in names:
        unknown = UnknownStrategyError("rollout strategy", name, names)
        raise ConfigError(f"env.rollout.strategy: {unknown}")
    for key, settings in sections.items():
        try:
            validate_strategy(key, settings)
        except (ValueError, TypeError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise ConfigError(f"env.rollout.{key}: {message}") from exc
