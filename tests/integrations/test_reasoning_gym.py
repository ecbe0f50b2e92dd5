"""``agentgym/ReasoningGym-v0`` and ``ReasoningGymTools-v0`` on the real ``reasoning_gym``
generators and their own scoring, with the calculator and the Python (sandbox) tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("reasoning_gym", reason="needs the reasoning-gym extra")

import reasoning_gym

import agentgym
from agentgym.env import SPLITS
from agentgym.envs.reasoning import CalculatorError, ReasoningGymEnv, calculate
from agentgym.errors import ConfigError
from tests.integrations.helpers import evaluate_cli, train_one_iteration

SMALL = {"train": 30, "valid": 10, "test": 10}


def call(name: str, **arguments) -> str:
    return json.dumps({"name": name, "arguments": arguments})


def test_splits_are_seed_ranges_and_never_share_a_question() -> None:
    env = ReasoningGymEnv(generators=["gcd"], sizes=SMALL, seed=100)
    seeds = {s: [int(t.rsplit("-", 1)[1]) for t in env.task_ids(s)] for s in SPLITS}
    assert seeds["train"] == list(range(100, 130))
    assert min(seeds["valid"]) >= 130 and max(seeds["valid"]) < 140 <= min(seeds["test"])
    # the item with seed s is reasoning-gym's item of that seed
    own = reasoning_gym.create_dataset("gcd", seed=100, size=50)
    assert env.entry("gcd-137")["question"] == own[37]["question"]
    # a tiny generator repeats itself: held-out repeats of training questions are dropped
    tiny = ReasoningGymEnv(
        generators={"gcd": {"min_value": 1, "max_value": 5}},
        sizes={"train": 60, "valid": 30, "test": 30},
    )
    questions = {s: {tiny.entry(t)["question"] for t in tiny.task_ids(s)} for s in SPLITS}
    assert len(tiny.task_ids("test")) < 30
    assert not (questions["test"] & (questions["train"] | questions["valid"]))
    assert not (questions["valid"] & questions["train"])


def test_scores_are_the_generators_own() -> None:
    env = ReasoningGymEnv(sizes=SMALL)
    for task_id in env.task_ids("test")[:6]:
        entry = env.entry(task_id)
        name = task_id.rsplit("-", 1)[0]
        dataset = env._datasets[name]
        for answer in (entry["answer"], f"about {entry['answer']}", "nonsense"):
            env.reset(options={"task_id": task_id})
            _, reward, terminated, _, info = env.step(f"think... <answer>{answer}</answer>")
            assert terminated and reward == pytest.approx(dataset.score_answer(answer, entry))
            assert info["success"] == (reward == 1.0) and info["task_type"] == name
    env.reset(options={"task_id": env.task_ids("test")[0]})
    obs, _, terminated, _, info = env.step("the answer is 3")  # no <answer> tag
    assert not info["action_valid"] and not terminated and "<answer>" in obs


@pytest.mark.parametrize("env_id", ["ReasoningGym-v0", "ReasoningGymTools-v0"])
def test_expert_solves_every_held_out_task(env_id: str) -> None:
    env = agentgym.make(env_id).unwrapped
    for task_id in env.task_ids("test"):
        env.reset(options={"task_id": task_id})
        for _ in range(3):
            _, reward, terminated, _, info = env.step(env.expert_action())
            if terminated:
                break
        assert reward == 1.0 and info["success"], task_id


def test_calculator() -> None:
    assert calculate("(3 + 4) * 2") == "14" and calculate("7 / 2") == "3.5"
    assert calculate("2^10") == "1024" and calculate("-3 // 2") == "-2"
    assert calculate("10 / 4 * 2") == "5"
    for bad, message in [
        ("__import__('os')", "not allowed"),
        ("x + 1", "not allowed"),
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "too large"),
        ("(" * 240 + "1" + ")" * 240, "parse|nested"),
        ("1" * 600, "longer than 500"),
        ("", "empty"),
    ]:
        with pytest.raises(CalculatorError, match=message):
            calculate(bad)


def test_tool_calls_and_the_state_key() -> None:
    env = ReasoningGymEnv(generators=["basic_arithmetic"], sizes=SMALL, tools="calculator")
    task = env.task_ids("train")[0]
    _, info = env.reset(options={"task_id": task})
    assert [t["function"]["name"] for t in info["tools"]] == ["calculator", "answer"]
    start = info["state_key"]
    obs, _, _, _, info = env.step(call("calculator", expression="6*7"))
    assert obs == "42" and info["num_tool_calls"] == 1
    after = info["state_key"]
    _, _, _, _, info = env.step(call("calculator", expression="7*6"))
    k2 = info["state_key"]
    _, _, _, _, info = env.step(f"<tool_call>{call('calculator', expression='42')}</tool_call>")
    # the state is the set of results seen: 42 again, however computed, changes nothing
    assert info["state_key"] == k2 == after != start
    for action, message in [
        (call("calculator", expression="import os"), "Calculator error"),
        (call("python", code="print(1)"), "there is no tool 'python'"),
        (call("calculator", expr="1"), 'one argument, "expression"'),
        ("just text", "no tool call"),
    ]:
        obs, _, terminated, _, info = env.step(action)
        assert message in obs and not terminated, action
    entry = env.entry(task)
    _, reward, terminated, _, info = env.step(call("answer", answer=entry["answer"]))
    assert terminated and reward == 1.0 and info["state_key"].endswith("|end")


def test_python_tool_runs_in_the_sandbox() -> None:
    env = ReasoningGymEnv(generators=["gcd"], sizes=SMALL, tools="python", python_timeout_s=2)
    try:
        env.reset(options={"task_id": env.task_ids("train")[0]})
        obs, _, _, _, info = env.step(call("python", code="import math\nprint(math.gcd(84, 36))"))
        assert obs == "12" and info["action_valid"]
        obs, *_ = env.step(call("python", code="raise ValueError('nope')"))
        assert "ValueError: nope" in obs and "exit status 1" in obs
        obs, *_ = env.step(call("python", code="while True: pass"))
        assert "stopped after 2 s" in obs
    finally:
        env.close()


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'basic_arithmetic'"):
        ReasoningGymEnv(generators=["basic_arithmetc"])
    with pytest.raises(ConfigError, match="sizes must give"):
        ReasoningGymEnv(sizes={"train": 5})
    with pytest.raises(ConfigError, match="tools="):
        ReasoningGymEnv(tools="abacus")  # type: ignore[arg-type]


@pytest.mark.parametrize("env_id", ["ReasoningGym-v0", "ReasoningGymTools-v0"])
def test_train_one_iteration_and_evaluate(tmp_path: Path, env_id: str) -> None:
    result = train_one_iteration(
        tmp_path / "run",
        env_id,
        "env.max_steps=3",
        "policy.tiny.vocab_size=400",
        "env.kwargs.sizes={train: 40, valid: 8, test: 8}",
    )
    summary = evaluate_cli(
        tmp_path / "eval", env_id, result.run_dir, "--tasks", "2", "--max-tokens", "8"
    )
    assert summary["num_tasks"] == 2
