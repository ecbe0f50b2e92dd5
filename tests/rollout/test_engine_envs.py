"""The rollout engine with model-free policies: groups, faults, executors, hints."""

from __future__ import annotations

import time

import pytest

from agentgym.parsers import get_parser
from agentgym.policies import SamplingParams, make_policy
from agentgym.rollout import (
    EnvSpec,
    PromptBuilder,
    PromptConfig,
    RolloutEngine,
    TaskRequest,
    make_pool,
    sample_tasks,
)
from agentgym.rollout.executor import EnvCall
from tests.rollout.faulty_envs import BAD_TASK


def engine(env: str, policy: str, executor: str = "inline", size: int = 8, **kw) -> RolloutEngine:
    parser = get_parser("think_action")
    pool = make_pool(executor, EnvSpec(env), size, timeout=kw.pop("timeout", 60.0))
    return RolloutEngine(
        pool,
        make_policy(policy),
        parser,
        PromptBuilder(PromptConfig(style=kw.pop("style", "window")), parser),
        SamplingParams(),
        max_steps=kw.pop("max_steps", 20),
        **kw,
    )


@pytest.mark.parametrize("env_id", ["Sokoban-v0", "FrozenLake-v0"])
def test_expert_groups_share_task_and_seed_and_succeed(env_id: str) -> None:
    eng = engine(env_id, "expert")
    tasks = sample_tasks(EnvSpec(env_id), "test", 6, seed=3)
    trajs = eng.run(tasks, n=4)
    assert len(trajs) == 24
    for g in range(6):
        group = trajs[4 * g : 4 * g + 4]
        assert len({(t.task_id, t.seed, t.group_id) for t in group}) == 1
        assert len({t.traj_id for t in group}) == 4
    assert all(t.success and t.status == "terminated" for t in trajs)
    step = trajs[0].steps[0]
    assert step.response_text.startswith("<action>") and step.action in (
        "up",
        "down",
        "left",
        "right",
    )
    assert step.state_key and step.prompt_messages[-1]["role"] == "user"


def test_random_policy_mostly_fails_and_respects_the_turn_limit() -> None:
    eng = engine("Sokoban-v0", "random", max_steps=5)
    trajs = eng.run(sample_tasks(EnvSpec("Sokoban-v0"), "train", 10, seed=0), n=2)
    assert all(len(t.steps) <= 5 for t in trajs)
    assert sum(t.success for t in trajs) < 10


@pytest.mark.parametrize("executor", ["inline", "threads", "processes"])
def test_env_that_raises_ends_only_its_episode(executor: str) -> None:
    env = "tests.rollout.faulty_envs:RaisesOnStep3"
    eng = engine(env, "random", executor=executor, size=8, max_steps=6)
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in range(8)]
    trajs = eng.run(tasks, n=4)
    assert len(trajs) == 32
    bad = [t for t in trajs if t.task_id == BAD_TASK]
    good = [t for t in trajs if t.task_id != BAD_TASK]
    assert len(bad) == 4 and all(t.status == "error" for t in bad)
    assert all("simulated crash on step 3" in t.error for t in bad)
    assert all(len(t.steps) == 3 for t in bad)
    assert all(t.status == "truncated" and len(t.steps) == 6 for t in good)


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_env_that_hangs_times_out_and_the_run_goes_on(executor: str) -> None:
    env = "tests.rollout.faulty_envs:HangsOnStep2"
    # 6 s: worker processes that start on a loaded 2-core machine must not time out too
    eng = engine(env, "random", executor=executor, size=4, max_steps=4, timeout=6.0)
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in (3, 4, 5, 6)]
    start = time.perf_counter()
    trajs = eng.run(tasks, n=1)
    assert time.perf_counter() - start < 50  # the hung step sleeps 60 s
    by_task = {t.task_id: t for t in trajs}
    assert by_task[BAD_TASK].status == "error" and "did not answer" in by_task[BAD_TASK].error
    others = {t: (by_task[t].status, by_task[t].error) for t in ("train-3", "train-4", "train-6")}
    assert all(status == "truncated" for status, _ in others.values()), others


def test_more_episodes_than_slots_reuse_slots() -> None:
    eng = engine("FrozenLake-v0", "expert", size=3)
    trajs = eng.run(sample_tasks(EnvSpec("FrozenLake-v0"), "valid", 5, seed=0), n=3)
    assert len(trajs) == 15 and all(t.success for t in trajs)


def test_chat_style_grows_one_conversation() -> None:
    eng = engine("Sokoban-v0", "expert", style="chat")
    traj = eng.run([TaskRequest("test-2", seed=0)], n=1)[0]
    assert traj.success and len(traj.steps) >= 2
    last = traj.steps[-1].prompt_messages
    roles = [m["role"] for m in last]
    assert roles[:2] == ["system", "user"] and roles[2::2] == ["assistant"] * (len(traj.steps) - 1)


def test_unparsable_responses_are_invalid_steps_with_penalty() -> None:
    class Babbler:
        wants_hints = frozenset()
        tokenizer = None

        def generate(self, inputs, sampling):
            from agentgym.policies import Generation

            return [Generation("I think I will go up") for _ in inputs]

    parser = get_parser("think_action")
    pool = make_pool("inline", EnvSpec("FrozenLake-v0"), 2)
    eng = RolloutEngine(
        pool,
        Babbler(),
        parser,
        PromptBuilder(PromptConfig(), parser),
        SamplingParams(),
        max_steps=3,
        invalid_action_penalty=-0.5,
    )
    traj = eng.run([TaskRequest("train-1", seed=0)], n=1)[0]
    assert [s.reward for s in traj.steps] == [-0.5] * 3
    assert all(not s.action_valid for s in traj.steps)
    assert traj.status == "truncated"
    assert "could not be understood" in traj.steps[1].observation
    assert len({s.state_key for s in traj.steps}) == 1


def test_processes_sharing_a_worker_with_a_hung_env_are_lost_not_misreported() -> None:
    """Two workers for four slots: the episode sharing the hung env's worker ends with a
    'lost' error at its next step, never a misleading 'reset needed'."""
    parser = get_parser("think_action")
    spec = EnvSpec("tests.rollout.faulty_envs:HangsOnStep2")
    pool = make_pool("processes", spec, 4, timeout=6.0, num_workers=2)
    eng = RolloutEngine(
        pool,
        make_policy("random"),
        parser,
        PromptBuilder(PromptConfig(), parser),
        SamplingParams(),
        max_steps=4,
    )
    try:
        trajs = eng.run([TaskRequest(f"train-{i}", seed=0) for i in (3, 4, 5, 6)], n=1)
    finally:
        pool.close()
    by_task = {t.task_id: t for t in trajs}
    assert "did not answer" in by_task[BAD_TASK].error
    errors = [t.error for t in trajs if t.status == "error" and t.task_id != BAD_TASK]
    assert errors and all("lost" in e for e in errors), errors
    assert not any("reset" in (t.error or "").lower() for t in trajs)
    assert sum(t.status == "truncated" for t in trajs) == 4 - 1 - len(errors)


def test_a_worker_whose_env_cannot_be_built_says_why_in_every_episode() -> None:
    spec = EnvSpec("tests.rollout.faulty_envs:CannotBeBuilt")
    pool = make_pool("processes", spec, 2, timeout=6.0)
    try:
        first = pool.run([EnvCall(0, "reset", seed=0), EnvCall(1, "reset", seed=1)])
        again = pool.run([EnvCall(0, "reset", seed=0)])  # a fresh worker tries again
    finally:
        pool.close()
    for outcome in (*first, *again):
        assert outcome.error and "could not build the env" in outcome.error
        assert "levels.txt is missing" in outcome.error


def test_processes_start_a_bounded_number_of_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big pool (training runs get env.rollout.max_concurrent slots) starts at most
    WORKERS_PER_CORE workers per core by default; the slots share them and play on."""
    import os

    from agentgym.rollout import executor

    monkeypatch.setattr(executor, "WORKERS_PER_CORE", 1)
    cores = os.cpu_count() or 1
    size = cores + 3
    pool = make_pool("processes", EnvSpec("FrozenLake-v0"), size, timeout=60.0)
    try:
        assert len(pool._procs) == cores
        outcomes = pool.run([EnvCall(s, "reset", seed=s) for s in range(size)])
    finally:
        pool.close()
    assert all(o.error is None and o.observation for o in outcomes)
    explicit = make_pool("processes", EnvSpec("FrozenLake-v0"), 3, num_workers=3)
    try:
        assert len(explicit._procs) == 3  # num_workers is taken as given
    finally:
        explicit.close()
