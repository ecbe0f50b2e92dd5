"""The ``ray`` env pool: the behaviour every pool has, plus actors (several slots each,
killed from outside, replaced after a hang), placement, lazy import and config options."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from agentgym.env import StepResult
from agentgym.envs.frozenlake import FrozenLakeEnv
from agentgym.errors import ConfigError
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
from agentgym.rollout.ray_pool import RayPool, RayPoolError
from tests.rollout import test_engine_envs as shared
from tests.rollout.faulty_envs import BAD_TASK, RaisesOnStep3

ray = pytest.importorskip("ray", reason="needs Ray: pip install -e '.[distributed]'")

HANGS = "tests.rollout.faulty_envs:HangsOnStep2"
ENDLESS = "tests.rollout.faulty_envs:RaisesOnStep3"  # never ends unless on BAD_TASK


class HogsTheGilOnStep2(RaisesOnStep3):
    """Stuck in C code that never releases the GIL (a regular expression that backtracks
    for ever) on the second step of ``BAD_TASK``: its process cannot even answer Ray."""

    def _step(self, action: str) -> StepResult:
        self._steps += 1
        if self._task_id == BAD_TASK and self._steps == 2:
            re.match(r"(a+)+$", "a" * 64 + "b")
        return StepResult(observation=f"step {self._steps}", reward=0.1)


class SleepsHalfASecond(FrozenLakeEnv):
    """Every step waits 0.5 s (on a server, say)."""

    def __init__(self, **kw):
        super().__init__(hole_prob=0.0, **kw)

    def _step(self, action: str) -> StepResult:
        time.sleep(0.5)
        return StepResult(observation="waited", reward=0.1)


class ExitsOnStep2(RaisesOnStep3):
    """Ends its own process on the second step of ``BAD_TASK`` (a crash Python can't catch)."""

    def _step(self, action: str) -> StepResult:
        self._steps += 1
        if self._task_id == BAD_TASK and self._steps == 2:
            os._exit(3)
        return StepResult(observation=f"step {self._steps}", reward=0.1)


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """One local Ray instance for the module (2 CPUs, ~2 s to start)."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def dead(actor, within: float = 30.0) -> bool:
    """Whether Ray reports ``actor`` dead within ``within`` seconds (``ray.kill`` only
    asks for a kill)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            ray.get(actor.where.remote(), timeout=within)
        except ray.exceptions.RayActorError:
            return True
        time.sleep(0.05)
    return False


def kill(actor) -> None:
    """Kill an actor from outside, as an operator or a failing node would."""
    ray.kill(actor)
    assert dead(actor)


def engine(pool, policy="random", max_steps: int = 6) -> RolloutEngine:
    parser = get_parser("think_action")
    policy = make_policy(policy) if isinstance(policy, str) else policy
    return RolloutEngine(
        pool,
        policy,
        parser,
        PromptBuilder(PromptConfig(), parser),
        SamplingParams(),
        max_steps=max_steps,
    )


# ---------------------------------------------------------------------- what every pool does


def test_env_that_raises_ends_only_its_episode() -> None:
    shared.test_env_that_raises_ends_only_its_episode("ray")


@pytest.mark.parametrize("env_id", ["Sokoban-v0", "FrozenLake-v0"])
def test_expert_reaches_full_success_with_more_slots_than_actors(env_id: str) -> None:
    spec = EnvSpec(env_id)
    with make_pool("ray", spec, 7, timeout=30, envs_per_actor=3) as pool:
        assert len(pool.actors) == 3 and all(p.count(":") == 1 for p in pool.placement)
        trajs = engine(pool, "expert", max_steps=20).run(sample_tasks(spec, "test", 5), n=3)
    assert len(trajs) == 15
    assert all(t.success and t.status == "terminated" for t in trajs)


def test_random_hints_do_not_depend_on_the_pool() -> None:
    """Hints draw from one generator per slot, so ray plays exactly what inline plays."""
    spec = EnvSpec("Sokoban-v0")
    tasks = sample_tasks(spec, "train", 4, seed=1)
    runs = []
    for name, options in (("inline", {}), ("ray", {"num_actors": 2})):
        with make_pool(name, spec, 3, **options) as pool:
            trajs = engine(pool, max_steps=8).run(tasks, n=2)
        runs.append([[(s.action, s.reward, s.state_key) for s in t.steps] for t in trajs])
    assert runs[0] == runs[1]


# ---------------------------------------------------------------------- hangs and deaths


def test_hung_env_kills_its_actor_and_the_run_goes_on() -> None:
    """One slot per actor: only the hung episode ends (as ``processes`` does)."""
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in (3, 4, 5, 6)]
    with make_pool("ray", EnvSpec(HANGS), 4, timeout=1.5, envs_per_actor=1) as pool:
        eng = engine(pool, max_steps=4)
        start = time.perf_counter()
        trajs = eng.run(tasks)
        assert time.perf_counter() - start < 30
        by_task = {t.task_id: t for t in trajs}
        assert by_task[BAD_TASK].status == "error"
        assert "did not answer within 1.5 s" in by_task[BAD_TASK].error
        assert all(by_task[t].status == "truncated" for t in ("train-3", "train-4", "train-6"))
        # The replacement actor serves the slot's next episodes.
        again = eng.run([TaskRequest("train-1", seed=0)] * 4)
        assert all(t.status == "truncated" and len(t.steps) == 4 for t in again)


def test_hung_env_ends_the_episodes_that_share_its_actor() -> None:
    # Slots 0..3 hold train-3..6; two actors hold slots {0, 2} and {1, 3}, so train-5
    # (slot 2) shares its actor with train-3 (slot 0).
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in (3, 4, 5, 6)]
    with make_pool("ray", EnvSpec(HANGS), 4, timeout=1.5, num_actors=2) as pool:
        assert pool.actor_of(0) == pool.actor_of(2) != pool.actor_of(1)
        by_task = {t.task_id: t for t in engine(pool, max_steps=4).run(tasks)}
    assert "did not answer within 1.5 s" in by_task[BAD_TASK].error
    assert by_task["train-3"].status == "error"
    assert by_task["train-3"].error.startswith("env step failed: lost: its env's Ray actor")
    assert all(by_task[t].status == "truncated" for t in ("train-4", "train-6"))


def test_threads_per_actor_run_waiting_envs_at_once() -> None:
    spec = EnvSpec("tests.rollout.test_ray_pool:SleepsHalfASecond")
    with make_pool("ray", spec, 4, num_actors=1, threads_per_actor=4) as pool:
        resets = [EnvCall(s, "reset", seed=0, options={"task_id": "train-1"}) for s in range(4)]
        assert not any(o.error for o in pool.run(resets))
        start = time.perf_counter()
        steps = pool.run([EnvCall(s, "step", action="up") for s in range(4)])
        assert time.perf_counter() - start < 1.5  # one after the other: 2 s
    assert [o.observation for o in steps] == ["waited"] * 4


def test_hung_env_among_threads_is_the_one_blamed() -> None:
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in (3, 4, 5, 6)]
    options = {"num_actors": 1, "threads_per_actor": 4}
    with make_pool("ray", EnvSpec(HANGS), 4, timeout=1.5, **options) as pool:
        by_task = {t.task_id: t for t in engine(pool, max_steps=4).run(tasks)}
    assert "did not answer within 1.5 s" in by_task[BAD_TASK].error
    for task in ("train-3", "train-4", "train-6"):  # same actor: their envs are gone too
        assert by_task[task].error.startswith("env step failed: lost: its env's Ray actor")


class KillsAnActor:
    """A random policy that, on its third turn, kills actor 0 of the pool from outside."""

    wants_hints = frozenset({"random_action"})
    tokenizer = None

    def __init__(self, pool: RayPool) -> None:
        self.pool, self.turns = pool, 0
        self.random = make_policy("random")

    def generate(self, inputs, sampling):
        self.turns += 1
        if self.turns == 3:
            kill(self.pool.actors[0])
        return self.random.generate(inputs, sampling)


def test_actor_killed_mid_run_ends_only_its_episodes() -> None:
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in (0, 1, 2, 3, 4, 6, 7, 8)]
    with make_pool("ray", EnvSpec(ENDLESS), 4, timeout=20, num_actors=2) as pool:
        trajs = engine(pool, KillsAnActor(pool), max_steps=6).run(tasks)
    errors = [t for t in trajs if t.status == "error"]
    # The first four episodes run in slots 0..3; actor 0 holds slots 0 and 2.
    assert [t.task_id for t in errors] == ["train-0", "train-2"]
    assert all("Ray actor" in t.error and "died" in t.error for t in errors)
    assert all(len(t.steps) == 3 for t in errors)
    # The other episodes, including those played later on the replacement actor, finish.
    assert all(t.status == "truncated" and len(t.steps) == 6 for t in trajs if t not in errors)


def test_env_that_holds_the_gil_is_killed_too() -> None:
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in (4, 5, 6)]
    spec = EnvSpec("tests.rollout.test_ray_pool:HogsTheGilOnStep2")
    with make_pool("ray", spec, 3, timeout=1.5, envs_per_actor=1) as pool:
        start = time.perf_counter()
        by_task = {t.task_id: t for t in engine(pool, max_steps=4).run(tasks)}
        assert time.perf_counter() - start < 30
    assert by_task[BAD_TASK].status == "error"
    assert "nor did its Ray actor" in by_task[BAD_TASK].error
    assert by_task["train-4"].status == by_task["train-6"].status == "truncated"


def test_env_that_ends_its_process_ends_its_episode() -> None:
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in (4, 5, 6)]
    spec = EnvSpec("tests.rollout.test_ray_pool:ExitsOnStep2")
    with make_pool("ray", spec, 3, timeout=20, envs_per_actor=1) as pool:
        by_task = {t.task_id: t for t in engine(pool, max_steps=4).run(tasks)}
    assert by_task[BAD_TASK].status == "error" and "died" in by_task[BAD_TASK].error
    assert by_task["train-4"].status == by_task["train-6"].status == "truncated"


def test_episode_not_called_when_its_actor_died_fails_at_its_next_step() -> None:
    with make_pool("ray", EnvSpec(ENDLESS), 2, timeout=20, num_actors=1) as pool:
        resets = [EnvCall(s, "reset", seed=0, options={"task_id": "train-1"}) for s in (0, 1)]
        assert not any(o.error for o in pool.run(resets))
        kill(pool.actors[0])
        [died] = pool.run([EnvCall(0, "step", action="up")])
        assert "died" in died.error
        [lost] = pool.run([EnvCall(1, "step", action="up")])
        assert lost.error.startswith("lost: its env's Ray actor was replaced")
        [fresh] = pool.run([resets[1]])
        assert fresh.error is None and fresh.observation
        [step] = pool.run([EnvCall(1, "step", action="up")])
        assert step.error is None


# ---------------------------------------------------------------------- life cycle, config


def test_close_releases_the_actors() -> None:
    pool = make_pool("ray", EnvSpec("FrozenLake-v0"), 4, envs_per_actor=2)
    actors = pool.actors
    assert len(actors) == 2
    pool.close()
    assert all(dead(actor) for actor in actors)
    pool.close()  # twice is fine


def test_actors_that_cannot_be_placed_fail_fast_with_advice() -> None:
    with pytest.raises(RayPoolError, match=r"did not start within 1\.0 s.*Use fewer actors"):
        make_pool(
            "ray", EnvSpec("FrozenLake-v0"), 2, actor_options={"num_cpus": 64}, start_timeout=1.0
        )


def test_bad_pool_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not both"):
        make_pool("ray", EnvSpec("FrozenLake-v0"), 2, envs_per_actor=1, num_actors=2)
    with pytest.raises(ConfigError, match="envs_per_actor must be >= 1"):
        make_pool("ray", EnvSpec("FrozenLake-v0"), 2, envs_per_actor=0)
    with pytest.raises(ConfigError, match="threads_per_actor must be >= 1"):
        make_pool("ray", EnvSpec("FrozenLake-v0"), 2, threads_per_actor=0)


def test_default_is_one_actor_per_cpu_and_no_more_than_slots() -> None:
    cpus = int(ray.cluster_resources()["CPU"])
    with make_pool("ray", EnvSpec("FrozenLake-v0"), 3 * cpus) as pool:
        assert len(pool.actors) == cpus
    with make_pool("ray", EnvSpec("FrozenLake-v0"), 1) as pool:
        assert len(pool.actors) == 1


def test_config_options_reach_the_pool() -> None:
    from agentgym.config import TrainConfig, load_config
    from agentgym.rollout.build import build_engine

    cfg = load_config(
        TrainConfig,
        overrides=["env.rollout.executor=ray", "env.rollout.executor_options.num_actors=3"],
    )
    rollout = cfg.env.rollout
    eng = build_engine(
        EnvSpec("FrozenLake-v0"),
        make_policy("expert"),
        SamplingParams(),
        executor=rollout.executor,
        executor_options=rollout.executor_options,
        pool_size=6,
    )
    try:
        assert isinstance(eng.pool, RayPool) and len(eng.pool.actors) == 3
    finally:
        eng.pool.close()
    with pytest.raises(ConfigError, match="Did you mean 'envs_per_actor'"):
        load_config(
            TrainConfig,
            overrides=["env.rollout.executor=ray", "env.rollout.executor_options.env_per_actor=2"],
        )
    with pytest.raises(ConfigError, match=r"set env\.rollout\.timeout instead"):
        load_config(TrainConfig, overrides=["env.rollout.executor_options.timeout=2"])


def test_importing_agentgym_imports_no_ray() -> None:
    code = (
        "import sys, agentgym, agentgym.rollout, agentgym.config\n"
        "from agentgym.rollout.executor import pool_factory\n"
        "assert pool_factory('ray').__name__ == 'RayPool'\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_missing_ray_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(RayPoolError, match=r"pip install 'agentgym\[distributed\]'"):
        make_pool("ray", EnvSpec("FrozenLake-v0"), 2)
