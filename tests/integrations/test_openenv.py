"""``agentgym/OpenEnv-v0`` against a real OpenEnv server (``openenv-core``'s
``create_app`` serving the shipped Tower of Hanoi environment) on loopback, cross-checked
against ``openenv``'s own client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("openenv", reason="needs the openenv extra: pip install 'agentgym[openenv]'")

import agentgym
from agentgym.checker import check_env
from agentgym.env import SPLITS
from agentgym.envs.openenv import OpenEnvConnectionError, OpenEnvEnv, text_field_of
from agentgym.envs.openenv.env import HANOI_TASKS
from agentgym.envs.openenv.hanoi import generate
from agentgym.errors import ConfigError
from tests.integrations.helpers import evaluate_cli, free_port, serve, train_one_iteration


@pytest.fixture(scope="module")
def hanoi_url() -> Iterator[str]:
    port = free_port()
    with serve(["-m", "agentgym.envs.openenv.hanoi.server", "--port", str(port)], port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def env(hanoi_url: str) -> Iterator[OpenEnvEnv]:
    e = OpenEnvEnv(server=hanoi_url, tasks=HANOI_TASKS)
    yield e
    e.close()


def test_shipped_tasks_are_what_the_generator_writes() -> None:
    assert HANOI_TASKS.read_text() == generate.render()
    rows = [json.loads(line) for line in HANOI_TASKS.read_text().splitlines()]
    levels = {s: {r["reset"]["level"] for r in rows if r["split"] == s} for s in SPLITS}
    assert all(levels.values()) and sum(map(len, levels.values())) == len(rows) == 106
    assert not (levels["train"] & levels["test"]) and not (levels["train"] & levels["valid"])


def test_the_http_server_passes_the_checker(hanoi_url: str) -> None:
    report = check_env("OpenEnv-v0", server=hanoi_url, tasks=str(HANOI_TASKS))
    assert report.ok


def test_same_episode_as_openenvs_own_client(hanoi_url: str, env: OpenEnvEnv) -> None:
    from openenv.core.generic_client import GenericEnvClient

    level = "A:3,2,1|B:|C:>C"
    theirs = GenericEnvClient(base_url=hanoi_url).sync()
    with theirs:
        result = theirs.reset(level=level)
        obs, info = env.reset(options={"task_id": "hanoi3-000"})
        assert obs == result.observation["text"]
        for _ in range(7):
            move = result.observation["expert_action"]
            assert env.expert_action() == move
            result = theirs.step({"move": move})
            obs, reward, terminated, _, info = env.step(move)
            assert obs == result.observation["text"] and reward == result.reward
            assert terminated == result.done
    assert terminated and info["success"] and reward == 1.0 and info["score"] == 1.0


def test_actions_text_json_and_invalid(env: OpenEnvEnv) -> None:
    assert env.text_field == "move" == text_field_of(env.action_schema)
    _, info = env.reset(options={"task_id": "hanoi3-000"})  # A:3,2,1 -> C
    start = info["state_key"]
    assert info["admissible_actions"] == ["A B", "A C"]
    assert "Answer with the move as plain text" in info["instruction"]
    obs, _, _, _, info = env.step('{"move": "A C"}')
    assert info["action_valid"] and "C: 1" in obs and info["state_key"] != start
    moved = info["state_key"]
    for action, message in [
        ("B C", "Peg B is empty"),  # refused by the server's rules
        ("A C", "cannot go on the smaller disk"),
        ('{"mv": "A C"}', "action schema rejects it"),
        ('{"move": ', "not valid JSON"),
        ('{"move": 3}', "is not of type 'string'"),
    ]:
        obs, _, terminated, _, info = env.step(action)
        assert message in obs and not info["action_valid"] and not terminated, action
        assert info["state_key"] == moved
    # the state key is the pegs (from /state), not the path: undoing returns to start
    _, _, _, _, info = env.step("C A")
    assert info["state_key"] == start


def test_seed_tasks_and_bad_settings(hanoi_url: str) -> None:
    seeds = {"train": [0, 50], "valid": [50, 60], "test": [60, 70]}
    env = OpenEnvEnv(server=hanoi_url, seeds=seeds)
    try:
        assert env.task_ids("test")[:2] == ["seed-60", "seed-61"]
        assert len(env.task_ids("train")) == 50
        first, _ = env.reset(seed=3, options={"task_id": "seed-5"})
        again, _ = env.reset(seed=3, options={"task_id": "seed-5"})
        assert first == again and "Goal: every disk on peg" in first
    finally:
        env.close()
    with pytest.raises(ConfigError, match="overlap"):
        OpenEnvEnv(server=hanoi_url, seeds={"train": [0, 10], "test": [5, 20]})
    with pytest.raises(ConfigError, match="not a field"):
        OpenEnvEnv(server=hanoi_url, text_field="direction")
    with pytest.raises(ConfigError, match="unknown key"):
        OpenEnvEnv(server={"command": ["x"], "port": 1})
    with pytest.raises(ConfigError, match="base URL"):
        OpenEnvEnv(server="localhost:1")
    with pytest.raises(OpenEnvConnectionError, match="could not read the schema"):
        OpenEnvEnv(server=f"http://127.0.0.1:{free_port()}", connect_timeout=5)


@pytest.mark.slow
def test_registered_id_starts_its_server_and_survives_its_death() -> None:
    env = agentgym.make("OpenEnv-v0")
    base = env.unwrapped
    try:
        server = base._launched
        assert server is not None and server.proc.poll() is None
        _, info = env.reset(options={"task_id": "hanoi4-030"})
        for _ in range(20):
            _, reward, terminated, _, info = env.step(base.expert_action())
            if terminated:
                break
        assert info["success"] and reward == 1.0
        env.reset(options={"task_id": "hanoi4-030"})
        server.proc.kill()
        server.proc.wait()
        obs, _, terminated, _, info = env.step("A B")
        assert info["server_failure"] == "disconnected" and not terminated
        assert "server failed" in obs
        with pytest.raises(OpenEnvConnectionError):
            env.reset(options={"task_id": "hanoi4-030"})
    finally:
        env.close()
    assert server.proc.poll() is not None


@pytest.mark.slow
def test_train_one_iteration_and_evaluate(tmp_path: Path, hanoi_url: str) -> None:
    env_args = [f"env.kwargs.server={hanoi_url}", f"env.kwargs.tasks={HANOI_TASKS}"]
    result = train_one_iteration(
        tmp_path / "run", "OpenEnv-v0", "env.max_steps=15", "policy.tiny.vocab_size=400", *env_args
    )
    summary = evaluate_cli(
        tmp_path / "eval", "OpenEnv-v0", result.run_dir, "--tasks", "2", "--max-tokens", "8"
    )
    assert summary["num_tasks"] == 2 and summary["env"]["kwargs"]["server"] == hanoi_url
    expert = evaluate_cli(
        tmp_path / "expert", "OpenEnv-v0", "expert", "--tasks", "4", "-k", f"server={hanoi_url}",
        "-k", f"tasks={HANOI_TASKS}",
    )  # fmt: skip
    assert expert["metrics"]["success"] == 1.0
