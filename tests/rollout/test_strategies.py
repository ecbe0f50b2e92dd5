"""Rollout strategies: ``group`` unchanged, ``tree`` and ``local`` branching from snapshots
in every env pool, replayed step by step against fresh environments."""

from __future__ import annotations

from collections import defaultdict

import pytest

import agentgym
from agentgym.envs.frozenlake import FrozenLakeEnv
from agentgym.errors import SnapshotNotSupportedError
from agentgym.parsers import get_parser
from agentgym.policies import SamplingParams, make_policy
from agentgym.rollout import (
    EnvCall,
    EnvSpec,
    PromptBuilder,
    PromptConfig,
    RolloutEngine,
    TaskRequest,
    make_pool,
    sample_tasks,
)
from agentgym.rollout.strategies import (
    list_strategies,
    make_strategy,
    strategy_params,
    validate_strategy,
    whole_episodes,
)
from agentgym.trajectory import Trajectory


class NoSnapshots(FrozenLakeEnv):
    """FrozenLake that cannot save its state."""

    @property
    def supports_snapshot(self) -> bool:
        return False


class SnapshotFailsOnce(FrozenLakeEnv):
    """Its snapshots raise on task ``train-1`` (the env breaks mid-run)."""

    def _snapshot_state(self):
        if self._task_id == "train-1":
            raise RuntimeError("cannot save this one")
        return super()._snapshot_state()


def engine(
    strategy: str | None = None,
    executor: str = "inline",
    env: str = "Sokoban-v0",
    size: int = 4,
    style: str = "window",
    pool_options: dict | None = None,
    **settings,
) -> RolloutEngine:
    parser = get_parser("think_action")
    return RolloutEngine(
        make_pool(executor, EnvSpec(env), size, **(pool_options or {})),
        make_policy("random"),
        parser,
        PromptBuilder(PromptConfig(style=style), parser),
        SamplingParams(seed=3),
        max_steps=6,
        strategy=None if strategy is None else make_strategy(strategy, settings),
    )


def replay(traj: Trajectory, env_id: str, source: Trajectory | None = None) -> None:
    """Play the trajectory's actions in a fresh env from reset (a re-roll: its source's
    first ``branch_step`` actions first) and check every step is what the rollout got."""
    env = agentgym.make(env_id)
    try:
        _obs, info = env.reset(seed=traj.seed, options={"task_id": traj.task_id})
        if source is not None:
            for step in source.steps[: traj.metadata["branch_step"]]:
                _obs, _r, _te, _tr, info = env.step(step.action)
        for step in traj.steps:
            assert step.state_key == info["state_key"], traj.traj_id
            if step.action is None:  # did not parse: the env was not called
                continue
            _obs, reward, terminated, _truncated, info = env.step(step.action)
            # (the engine's own turn limit, 6, truncates where this env goes on)
            assert (reward, terminated) == (step.env_reward, step.terminated), traj.traj_id
            assert info == step.info, traj.traj_id
    finally:
        env.close()


def by_group(trajs: list[Trajectory]) -> dict[str, list[Trajectory]]:
    out: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajs:
        out[t.group_id].append(t)
    return out


def test_registry_settings_and_errors() -> None:
    assert {"group", "tree", "local"} <= set(list_strategies())
    assert set(strategy_params("tree")) >= {"roots", "branch_factor", "depths", "leaves"}
    with pytest.raises(KeyError, match="Did you mean 'tree'"):
        make_strategy("tre")
    with pytest.raises(KeyError, match="Did you mean 'roots'"):
        validate_strategy("tree", {"rots": 2})
    with pytest.raises(ValueError, match="must lie in"):
        validate_strategy("local", {"k": 1})
    with pytest.raises(ValueError, match="steps >= 1"):
        validate_strategy("tree", {"depths": [0, 2]})
    with pytest.raises(ValueError, match=r"leaves \(2\) must be >= roots"):
        validate_strategy("tree", {"roots": 4, "leaves": 2})


def test_group_strategy_is_the_plain_engine_bit_for_bit() -> None:
    tasks = sample_tasks(EnvSpec("Sokoban-v0"), "train", 3, seed=0)
    plain = engine().run(tasks, n=3)
    grouped = engine("group").run(tasks, n=3)
    assert [t.to_json() for t in plain] == [t.to_json() for t in grouped]


@pytest.mark.parametrize("executor", ["inline", "threads", "processes"])
def test_tree_branches_share_their_prefix_and_replay_exactly(executor: str) -> None:
    eng = engine("tree", executor, roots=2, depths=[1, 3], leaves=8)
    tasks = sample_tasks(EnvSpec("Sokoban-v0"), "train", 3, seed=1)
    trajs = eng.run(tasks, n=99)  # leaves=8 overrides n
    eng.close()
    groups = by_group(trajs)
    assert len(groups) == 3
    total_steps = 0
    for leaves in groups.values():
        assert 2 <= len(leaves) <= 8 and len({t.traj_id for t in leaves}) == len(leaves)
        for a in leaves:
            for b in leaves:
                shared = [x is y for x, y in zip(a.steps, b.steps, strict=False)]
                # a common prefix of the same Step objects, then nothing shared
                k = shared.index(False) if False in shared else len(shared)
                assert not any(shared[k:])
                assert a.metadata["nodes"][:k] == b.metadata["nodes"][:k]
                if a is not b and k < min(len(a.steps), len(b.steps)):
                    assert a.metadata["nodes"][k] != b.metadata["nodes"][k]
                    root_a, root_b = (t.traj_id.rpartition("/")[2].split(".")[0] for t in (a, b))
                    # they part at a branching depth, or were apart from their roots on
                    assert k in (1, 3) if root_a == root_b else k == 0
        for t in leaves:
            replay(t, "Sokoban-v0")
            total_steps += sum(1 for s in t.steps if s.action is not None)
    assert max(len(leaves) for leaves in groups.values()) > 2
    # shared steps were stepped once: fewer env steps than the leaves hold
    assert eng.stats.env_steps < total_steps
    assert eng.stats.trajectories == len(trajs) and eng.stats.snapshots > 0
    metrics = eng.stats.as_metrics("perf/rollout_")
    assert metrics["perf/rollout_env_steps_per_trajectory"] == eng.stats.env_steps / len(trajs)


def test_tree_budget_and_branch_order() -> None:
    tasks = sample_tasks(EnvSpec("FrozenLake-v0"), "train", 2, seed=0)
    for order in ("schedule", "entropy", "logprob"):
        trajs = engine(
            "tree", env="FrozenLake-v0", roots=1, branch_factor=3, per_depth=1, branch_on=order
        ).run(tasks, n=5)
        for leaves in by_group(trajs).values():
            assert 1 <= len(leaves) <= 5
            assert all("nodes" in t.metadata for t in leaves)


def test_tree_with_more_leaves_than_slots_restores_into_freed_slots() -> None:
    eng = engine("tree", size=2, roots=2, branch_factor=2, depths=[1, 2])
    trajs = eng.run(sample_tasks(EnvSpec("Sokoban-v0"), "train", 2, seed=4), n=8)
    assert len(trajs) > 4 and eng.stats.restores > 0
    for t in trajs:
        replay(t, "Sokoban-v0")


def test_tree_chat_prompts_extend_the_shared_conversation() -> None:
    trajs = engine("tree", style="chat", roots=1, depths=[2]).run(
        sample_tasks(EnvSpec("Sokoban-v0"), "train", 1, seed=2), n=2
    )
    a, b = trajs
    assert a.steps[:2] == b.steps[:2] and a.steps[0] is b.steps[0]
    if len(a.steps) > 2 and len(b.steps) > 2:
        assert a.steps[2].prompt_messages == b.steps[2].prompt_messages


def test_a_failed_snapshot_leaves_the_episode_unbranched() -> None:
    eng = engine("tree", env="tests.rollout.test_strategies:SnapshotFailsOnce", roots=1)
    tasks = [TaskRequest("train-1", seed=0), TaskRequest("train-2", seed=0)]
    trajs = eng.run(tasks, n=4)
    assert all(t.status != "error" for t in trajs)
    groups = by_group(trajs)
    assert [len(groups[t.group_id]) for t in trajs[:1]] == [1]  # train-1: no branch
    assert len(trajs) > 2  # train-2 branched


def test_branching_needs_snapshots() -> None:
    eng = engine("tree", env="tests.rollout.test_strategies:NoSnapshots")
    with pytest.raises(SnapshotNotSupportedError, match="strategy 'tree' branches"):
        eng.run(sample_tasks(EnvSpec("FrozenLake-v0"), "train", 1, seed=0), n=4)


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_local_rerolls_start_from_the_source_state(executor: str) -> None:
    eng = engine("local", executor, trajectories=2, points=2, k=3, continuation=1)
    tasks = sample_tasks(EnvSpec("Sokoban-v0"), "train", 2, seed=5)
    trajs = eng.run(tasks, n=3)
    eng.close()
    whole = whole_episodes(trajs)
    assert len(whole) == 6 and all("branch_step" not in t.metadata for t in whole)
    sources = {t.traj_id: t for t in whole}
    rerolls = [t for t in trajs if "branch_step" in t.metadata]
    assert rerolls, "no intermediate state to re-roll"
    for group_id, members in by_group(rerolls).items():
        assert len(members) == 3 and "@" in group_id
        point = members[0].metadata["branch_step"]
        source = sources[members[0].metadata["branch_of"]]
        assert 1 <= point < len(source.steps)
        for t in members:
            assert t.metadata["branch_step"] == point and t.task_id == source.task_id
            assert 1 <= len(t.steps) <= 2  # the re-rolled step and one more
            assert t.steps[0].state_key == source.steps[point].state_key
            assert t.steps[0].observation == source.steps[point].observation
            replay(t, "Sokoban-v0", source)
    # whole episodes first, then their re-rolls, task by task
    order = [t.task_id for t in trajs]
    assert order == sorted(order, key=[x.task_id for x in tasks].index)


def test_local_rerolls_play_until_the_end_without_a_continuation_limit() -> None:
    trajs = engine("local", trajectories=1, points=1, k=2, continuation=-1).run(
        sample_tasks(EnvSpec("Sokoban-v0"), "train", 1, seed=6), n=2
    )
    for t in trajs:
        if "branch_step" in t.metadata:
            assert t.metadata["branch_step"] + len(t.steps) <= 6
            assert t.metadata.get("truncated_by") != "continuation"


def test_pools_answer_snapshot_and_restore_calls() -> None:
    pool = make_pool("processes", EnvSpec("FrozenLake-v0"), 2)
    try:
        pool.run([EnvCall(0, "reset", seed=0, options={"task_id": "train-0"})])
        first = pool.run([EnvCall(0, "step", action="right")])[0]
        snap = pool.run([EnvCall(0, "snapshot")])[0].snapshot
        pool.run([EnvCall(0, "step", action="down")])
        # the snapshot travelled to the parent and back into another worker
        assert pool.run([EnvCall(1, "restore", snapshot=snap)])[0].error is None
        again = pool.run([EnvCall(1, "step", action="down")])[0]
        restored = pool.run([EnvCall(0, "restore", snapshot=snap)])[0]
        same = pool.run([EnvCall(0, "step", action="down")])[0]
        assert restored.error is None and first.error is None
        assert (again.observation, again.info) == (same.observation, same.info)
        bad = pool.run([EnvCall(1, "restore", snapshot="not a snapshot")])[0]
        assert bad.error is not None and "EnvSnapshot" in bad.error
    finally:
        pool.close()


def test_tree_and_local_in_ray_actors() -> None:
    ray = pytest.importorskip("ray", reason="needs Ray: pip install -e '.[distributed]'")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tasks = sample_tasks(EnvSpec("Sokoban-v0"), "train", 2, seed=7)
        one_actor = {"envs_per_actor": 4}
        tree = engine("tree", "ray", pool_options=one_actor, roots=2, depths=[1, 2])
        local = engine("local", "ray", pool_options=one_actor, trajectories=1, k=2)
        try:
            leaves = tree.run(tasks, n=6)
            rerolled = local.run(tasks, n=2)
        finally:
            tree.close()
            local.close()
        assert tree.stats.restores > 0 and local.stats.restores > 0
        for t in leaves:
            replay(t, "Sokoban-v0")
        sources = {t.traj_id: t for t in rerolled}
        for t in rerolled:
            if "branch_of" in t.metadata:
                replay(t, "Sokoban-v0", sources[t.metadata["branch_of"]])
    finally:
        if started:
            ray.shutdown()
