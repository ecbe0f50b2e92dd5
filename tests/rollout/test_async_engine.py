"""``env.rollout.mode: async``: one agent loop per episode gives the lock-step engine's
trajectories (same seeds, temperature 0, hint policies), keeps faults per episode, runs on
every pool, and batches concurrent generations."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from agentgym.env import stable_hash
from agentgym.errors import ConfigError
from agentgym.parsers import get_parser
from agentgym.policies import PolicyInput, SamplingParams, make_policy
from agentgym.policies.base import Generation
from agentgym.policies.builtin import ExpertPolicy
from agentgym.policies.hf import HFPolicy
from agentgym.rollout import (
    AsyncRolloutEngine,
    EnvSpec,
    PromptBuilder,
    PromptConfig,
    RolloutEngine,
    TaskRequest,
    make_pool,
    sample_tasks,
)
from agentgym.rollout.build import build_engine
from agentgym.rollout.strategies import make_strategy
from tests.policies.conftest import tiny_model_dir  # noqa: F401  (the shared session model)
from tests.policies.http_fakes import serve
from tests.rollout.faulty_envs import BAD_TASK


def make_engine(cls, env: str, policy, executor: str = "inline", size: int = 16, **kw):  # type: ignore[no-untyped-def]
    parser = get_parser("think_action")
    pool = make_pool(executor, EnvSpec(env), size, timeout=kw.pop("timeout", 60.0))
    return cls(
        pool,
        policy if not isinstance(policy, str) else make_policy(policy),
        parser,
        PromptBuilder(PromptConfig(style=kw.pop("style", "window")), parser),
        kw.pop("sampling", SamplingParams(seed=7)),
        max_steps=kw.pop("max_steps", 8),
        **kw,
    )


def play(cls, env: str, policy, tasks, n: int, **kw):  # type: ignore[no-untyped-def]
    with make_engine(cls, env, policy, **kw) as engine:
        return engine.run(tasks, n=n), engine.stats


def key(traj) -> tuple:  # type: ignore[no-untyped-def]
    steps = [
        (s.prompt_ids, s.response_ids, s.response_text, s.action, s.reward, s.action_valid)
        for s in traj.steps
    ]
    return (traj.traj_id, traj.group_id, traj.status, traj.success, traj.score, steps)


@pytest.mark.parametrize("env_id", ["FrozenLake-v0", "Sokoban-v0"])
@pytest.mark.parametrize("policy", ["expert", "random"])
def test_hint_policies_play_the_same_trajectories(env_id: str, policy: str) -> None:
    tasks = sample_tasks(EnvSpec(env_id), "train", 5, seed=2)
    sync, _ = play(RolloutEngine, env_id, policy, tasks, 3)
    asyn, stats = play(AsyncRolloutEngine, env_id, policy, tasks, 3)
    assert [key(t) for t in asyn] == [key(t) for t in sync]
    assert stats.trajectories == 15 and stats.env_steps == sum(len(t.steps) for t in sync)


@pytest.mark.parametrize("style", ["window", "chat"])
@pytest.mark.parametrize("env_id", ["FrozenLake-v0", "Sokoban-v0"])
def test_tiny_model_at_temperature_0_plays_the_same_trajectories(
    tiny_model_dir: Path,  # noqa: F811
    env_id: str,
    style: str,
) -> None:
    policy = HFPolicy("hf:tiny", str(tiny_model_dir))
    sampling = SamplingParams(temperature=0.0, max_tokens=12, seed=3)
    tasks = sample_tasks(EnvSpec(env_id), "train", 3, seed=1)
    kw = {"style": style, "sampling": sampling, "max_steps": 3}
    sync, _ = play(RolloutEngine, env_id, policy, tasks, 2, **kw)
    asyn, stats = play(AsyncRolloutEngine, env_id, policy, tasks, 2, **kw)
    policy.close()
    assert [key(t) for t in asyn] == [key(t) for t in sync]  # token ids end to end
    for a, s in zip(asyn, sync, strict=True):
        for x, y in zip(a.steps, s.steps, strict=True):  # other batch mates: float noise only
            np.testing.assert_allclose(x.response_logprobs, y.response_logprobs, atol=1e-4)
    assert stats.prompts_generated == sum(len(t.steps) for t in sync)
    assert 0 < stats.seconds_generate <= stats.seconds_total


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_every_pool_plays_the_same_trajectories(executor: str) -> None:
    tasks = sample_tasks(EnvSpec("Sokoban-v0"), "train", 2, seed=4)
    sync, _ = play(RolloutEngine, "Sokoban-v0", "random", tasks, 2, executor=executor, size=4)
    asyn, _ = play(AsyncRolloutEngine, "Sokoban-v0", "random", tasks, 2, executor=executor, size=4)
    assert [key(t) for t in asyn] == [key(t) for t in sync]


@pytest.mark.ray
@pytest.mark.slow
def test_the_ray_pool_plays_the_same_trajectories() -> None:
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    tasks = sample_tasks(EnvSpec("FrozenLake-v0"), "train", 3, seed=0)
    sync, _ = play(RolloutEngine, "FrozenLake-v0", "expert", tasks, 2, executor="ray", size=6)
    asyn, _ = play(AsyncRolloutEngine, "FrozenLake-v0", "expert", tasks, 2, executor="ray", size=6)
    assert [key(t) for t in asyn] == [key(t) for t in sync]
    assert all(t.success for t in asyn)


def test_more_episodes_than_slots_take_slots_in_turn() -> None:
    tasks = sample_tasks(EnvSpec("FrozenLake-v0"), "valid", 5, seed=0)
    trajs, stats = play(AsyncRolloutEngine, "FrozenLake-v0", "expert", tasks, 3, size=3)
    assert len(trajs) == 15 and all(t.success for t in trajs)
    assert [t.traj_id for t in trajs] == [
        f"{i}:{t.task_id}/{k}" for i, t in enumerate(tasks) for k in range(3)
    ]
    assert stats.trajectories == 15


@pytest.mark.parametrize("executor", ["inline", "threads", "processes"])
def test_env_that_raises_ends_only_its_episode(executor: str) -> None:
    env = "tests.rollout.faulty_envs:RaisesOnStep3"
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in range(4, 8)]
    trajs, _ = play(
        AsyncRolloutEngine, env, "random", tasks, 2, executor=executor, size=8, max_steps=5
    )
    bad = [t for t in trajs if t.task_id == BAD_TASK]
    good = [t for t in trajs if t.task_id != BAD_TASK]
    assert len(bad) == 2 and all(t.status == "error" and len(t.steps) == 3 for t in bad)
    assert all("simulated crash on step 3" in (t.error or "") for t in bad)
    assert all(t.status == "truncated" and len(t.steps) == 5 for t in good)


def test_env_that_hangs_ends_its_episode_while_the_others_finish() -> None:
    env = "tests.rollout.faulty_envs:HangsOnStep2"
    tasks = [TaskRequest(f"train-{i}", seed=0) for i in (3, 4, 5, 6)]
    trajs, _ = play(
        AsyncRolloutEngine,
        env,
        "random",
        tasks,
        1,
        executor="threads",
        size=4,
        max_steps=4,
        timeout=3.0,
    )
    by_task = {t.task_id: t for t in trajs}
    assert by_task[BAD_TASK].status == "error"
    assert "did not answer" in (by_task[BAD_TASK].error or "")
    assert all(by_task[t].status == "truncated" for t in ("train-3", "train-4", "train-6"))


class FailsOneStep(ExpertPolicy):
    """The expert, except that one (trajectory, step)'s generation fails."""

    def __init__(self, seed: int) -> None:
        super().__init__("expert")
        self.bad_seed = seed

    def generate(self, inputs, sampling):  # type: ignore[no-untyped-def]
        out = super().generate(inputs, sampling)
        return [
            Generation("", finish_reason="error", error="backend down")
            if item.seed == self.bad_seed
            else gen
            for item, gen in zip(inputs, out, strict=True)
        ]


@pytest.mark.parametrize("cls", [RolloutEngine, AsyncRolloutEngine])
def test_failed_generation_ends_only_its_episode(cls) -> None:  # type: ignore[no-untyped-def]
    tasks = sample_tasks(EnvSpec("Sokoban-v0"), "train", 2, seed=0)
    bad = f"1:{tasks[1].task_id}/0"
    seed = stable_hash(5, bad, 1) % (2**31)  # the engine's seed of that episode's 2nd step
    trajs, _ = play(
        cls, "Sokoban-v0", FailsOneStep(seed), tasks, 2, sampling=SamplingParams(seed=5)
    )
    failed = [t for t in trajs if t.status == "error"]
    assert [t.traj_id for t in failed] == [bad]
    assert "generation failed: backend down" in (failed[0].error or "")
    assert len(failed[0].steps) == 1
    assert all(t.success for t in trajs if t.traj_id != bad)


def test_context_limit_truncates_as_in_lock_step(tiny_model_dir: Path) -> None:  # noqa: F811
    policy = HFPolicy("hf:tiny", str(tiny_model_dir))
    tasks = sample_tasks(EnvSpec("Sokoban-v0"), "train", 2, seed=0)
    kw = {
        "style": "chat",
        "sampling": SamplingParams(temperature=0.0, max_tokens=8),
        "max_steps": 4,
    }
    full, _ = play(RolloutEngine, "Sokoban-v0", policy, tasks, 1, **kw)
    limit = len(full[0].steps[1].prompt_ids) - 1  # the second prompt no longer fits
    sync, _ = play(RolloutEngine, "Sokoban-v0", policy, tasks, 1, max_prompt_tokens=limit, **kw)
    asyn, _ = play(
        AsyncRolloutEngine, "Sokoban-v0", policy, tasks, 1, max_prompt_tokens=limit, **kw
    )
    policy.close()
    assert [key(t) for t in asyn] == [key(t) for t in sync]
    assert asyn[0].metadata.get("truncated_by") == "context_length"
    assert [t.metadata.get("truncated_by") for t in asyn] == [
        t.metadata.get("truncated_by") for t in sync
    ]


def test_branching_strategies_are_refused() -> None:
    tree = make_strategy("tree", {})
    with pytest.raises(ConfigError, match="independent episodes only"):
        make_engine(AsyncRolloutEngine, "FrozenLake-v0", "expert", strategy=tree)
    with pytest.raises(ConfigError, match="independent episodes only"):
        build_engine(
            EnvSpec("FrozenLake-v0"),
            make_policy("expert"),
            SamplingParams(),
            strategy=tree,
            mode="async",
        )
    with pytest.raises(ConfigError, match="not one of"):
        build_engine(
            EnvSpec("FrozenLake-v0"), make_policy("expert"), SamplingParams(), mode="asynch"
        )


def test_run_works_inside_a_running_event_loop() -> None:
    tasks = sample_tasks(EnvSpec("FrozenLake-v0"), "train", 2, seed=0)
    engine = make_engine(AsyncRolloutEngine, "FrozenLake-v0", "expert")

    async def inside() -> list:
        return engine.run(tasks, n=2)  # a notebook's loop is running: run uses a thread

    trajs = asyncio.run(inside())
    assert len(trajs) == 4 and all(t.success for t in trajs)
    again = asyncio.run(engine.arun(tasks, n=2))  # or await the coroutine itself
    assert [key(t) for t in again] == [key(t) for t in trajs]
    engine.close()


# ------------------------------------------------------------------ backends


def test_hf_batches_concurrent_requests_into_one_generate(tiny_model_dir: Path) -> None:  # noqa: F811
    policy = HFPolicy("hf:tiny", str(tiny_model_dir))
    sampling = SamplingParams(temperature=0.0, max_tokens=6)
    inputs = [PolicyInput(messages=[{"role": "user", "content": f"go {i}"}]) for i in range(6)]

    async def together() -> list[Generation]:
        return list(await asyncio.gather(*(policy.agenerate(x, sampling) for x in inputs)))

    gens = asyncio.run(together())
    queue = policy.batching_queue()
    assert queue.prompts == 6 and queue.calls < 6  # they shared generate calls
    direct = policy.generate(inputs, sampling)
    assert [g.token_ids for g in gens] == [g.token_ids for g in direct]
    assert all(g.prompt_ids and g.finish_reason != "error" for g in gens)
    policy.close()


def test_hf_agenerate_keeps_faults_per_prompt(tiny_model_dir: Path) -> None:  # noqa: F811
    policy = HFPolicy("hf:tiny", str(tiny_model_dir), max_model_len=64)
    sampling = SamplingParams(temperature=0.0, max_tokens=4)
    good = PolicyInput(prompt_ids=[5, 6, 7])
    bad = PolicyInput(prompt_ids=[5] * 100)  # longer than the context

    async def both() -> list[Generation]:
        return list(
            await asyncio.gather(policy.agenerate(good, sampling), policy.agenerate(bad, sampling))
        )

    ok, failed = asyncio.run(both())
    assert ok.finish_reason != "error" and len(ok.token_ids) > 0
    assert failed.finish_reason == "error" and failed.error
    policy.close()


def test_openai_agenerate_sends_concurrent_requests() -> None:
    def slow(method, path, body, n):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return 200, {
            "choices": [
                {
                    "index": 0,
                    "text": str(body["prompt"]),
                    "finish_reason": "stop",
                    "token_ids": [1, 2],
                }
            ]
        }

    with serve(slow) as (url, seen):
        policy = make_policy(f"openai:{url}#m", concurrency=8)
        sampling = SamplingParams(max_tokens=2, seed=10)

        async def many() -> list[Generation]:
            items = [PolicyInput(prompt_ids=[i]) for i in range(5)]
            return list(
                await asyncio.gather(
                    *(policy.agenerate(x, sampling, index=i) for i, x in enumerate(items))
                )
            )

        gens = asyncio.run(many())
        policy.close()
    assert [g.text for g in gens] == [str([i]) for i in range(5)]
    assert [g.token_ids for g in gens] == [[1, 2]] * 5
    assert seen.max_in_flight == 5  # all in flight at once, not one after the other
    assert sorted(b["seed"] for b in seen.bodies) == [10, 11, 12, 13, 14]  # seed streams
