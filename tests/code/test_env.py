"""``agentgym/CodeSandbox-v0``: the contract on both backends, the expert on every split,
random play, state keys, actions, bad programs, external tasks, rollouts in processes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import agentgym
from agentgym.env import SPLITS
from agentgym.envs.code import CodeSandboxEnv, CodeTask, TestCase, normalize_code, task_from_row
from agentgym.parsers import get_parser
from agentgym.policies import SamplingParams, make_policy
from agentgym.rollout import EnvSpec, sample_tasks
from agentgym.rollout.build import build_engine
from agentgym.tools.sandbox import ExecResult, Limits
from tests.code.test_tasks import HUMANEVAL_ROW, MBPP_ROW

FAST = {"wall_time_s": 3.0, "cpu_time_s": 3.0}


def call(name: str, code: str, **extra: str) -> str:
    return json.dumps({"name": name, "arguments": {"code": code, **extra}})


def play_expert(env, task_id: str) -> dict:
    env.reset(seed=0, options={"task_id": task_id})
    for _ in range(4):
        _, _, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        if terminated or truncated:
            return info
    raise AssertionError(f"the expert did not finish {task_id}")


@pytest.fixture(scope="module")
def env():
    e = agentgym.make("CodeSandbox-v0", limits=FAST)
    yield e
    e.close()


@pytest.mark.docker
def test_the_checker_passes_on_docker(docker_ready) -> None:
    agentgym.check_env("CodeSandbox-v0", backend="docker")


def test_the_expert_solves_every_task_of_every_split() -> None:
    """Every shipped task's reference solution passes all its hidden tests in the
    sandbox (submitted directly; the run-first expert is covered below)."""
    env = agentgym.make("CodeSandbox-v0", expert_runs_first=False, cache_size=0)
    try:
        for split in SPLITS:
            for task_id in env.unwrapped.task_ids(split):
                info = play_expert(env, task_id)
                assert info["success"] and info["score"] == 1.0, (split, task_id)
                assert info["num_tool_calls"] == 1
    finally:
        env.close()


def test_the_expert_runs_then_submits(backend: str) -> None:
    env = agentgym.make("CodeSandbox-v0", backend=backend)
    try:
        for split in SPLITS:
            for task_id in env.unwrapped.task_ids(split)[:4]:
                env.reset(seed=0, options={"task_id": task_id})
                first = env.unwrapped.expert_action()
                obs, reward, terminated, _, info = env.step(first)
                assert json.loads(first)["name"] == "run" and not terminated and reward == 0
                assert "Examples: 3 of 3 passed." in obs and info["tests_passed"] == 3
                obs, reward, terminated, _, info = env.step(env.unwrapped.expert_action())
                assert terminated and reward == 1.0 and info["success"], obs
                assert info["num_tool_calls"] == 2 and info["sandbox"] == backend
    finally:
        env.close()


def test_random_play_scores_near_zero() -> None:
    env = agentgym.make("CodeSandbox-v0", limits=FAST)
    base = env.unwrapped
    rng = np.random.default_rng(0)
    scores, successes = [], 0
    try:
        for task_id in base.task_ids("train")[::8]:
            _, info = env.reset(seed=1, options={"task_id": task_id})
            for _ in range(8):
                _, _, terminated, truncated, info = env.step(base.random_action(rng))
                if terminated or truncated:
                    break
            scores.append(info["score"])
            successes += info["success"]
    finally:
        env.close()
    assert len(scores) >= 30
    assert np.mean(scores) < 0.1 and successes <= 1, (np.mean(scores), successes)


def test_info_tools_parser_and_prompt(env) -> None:
    obs, info = env.reset(seed=0, options={"task_id": "rotate-left-6"})
    assert env.unwrapped.action_parser == "tool_call"
    assert [t["function"]["name"] for t in info["tools"]] == ["run", "submit"]
    assert info["task_type"] == "rotate" and info["num_tool_calls"] == 0
    assert "def rotate(xs: list) -> list:" in obs and "rotate([]) == []" in obs
    assert info["instruction"] == obs


def test_state_key_follows_the_code_not_its_formatting(env) -> None:
    _, info = env.reset(seed=0, options={"task_id": "rotate-left-6"})
    start = info["state_key"]
    wrong = "def rotate(xs):\n    return xs\n"
    same_code = "# a comment\ndef rotate(xs):   # another\n\n    return (xs)\n"
    k1 = env.step(call("run", wrong))[4]["state_key"]
    k2 = env.step(call("run", same_code))[4]["state_key"]
    assert k1 == k2 != start
    assert env.step("no tool call here")[4]["state_key"] == k2
    assert env.step(call("run", wrong, stdin="ignored input"))[4]["state_key"] == k2
    k3 = env.step(call("run", "def rotate(xs):\n    return xs[:]\n"))[4]["state_key"]
    assert k3 != k2
    final = env.step(call("submit", wrong))[4]["state_key"]
    assert final.endswith("|end") and final != k2
    assert normalize_code("x = 1  # c") == normalize_code("x=1")


@pytest.mark.parametrize(
    "action, message",
    [
        ('{"name": "exec", "arguments": {"code": "1"}}', "there is no tool 'exec'"),
        ('{"name": "run", "arguments": {}}', 'needs a non-empty string argument "code"'),
        ('{"name": "run", "arguments": {"code": "1", "x": 2}}', "not 'x'"),
        ('{"name": "submit", "arguments": {"code": "1", "stdin": ""}}', "not 'stdin'"),
        ('{"name": "run", "arguments": {"code": "1", "stdin": 5}}', '"stdin" must be a string'),
        ('{"name": "run", "arguments": ', "not valid JSON"),
        ("I would write a loop.", "has no tool call"),
    ],
)
def test_invalid_actions_explain_and_change_nothing(env, action: str, message: str) -> None:
    _, info = env.reset(seed=0, options={"task_id": "rotate-left-6"})
    obs, reward, terminated, _, after = env.step(action)
    assert message in obs and not after["action_valid"] and not terminated and reward == 0
    assert after["state_key"] == info["state_key"] and after["num_tool_calls"] == 0


def test_raw_tool_call_text_and_fenced_code_are_accepted(env) -> None:
    env.reset(seed=0, options={"task_id": "rotate-left-6"})
    solution = env.unwrapped.task.solution
    obs, *_ = env.step(f"Let me test.\n<tool_call>\n{call('run', solution)}\n</tool_call>")
    assert "3 of 3 passed" in obs
    obs, reward, terminated, _, info = env.step(f"Here it is:\n```python\n{solution}```\n")
    assert terminated and info["success"] and reward == 1.0
    # the fenced-code fallback is not a tool call: full tests, format 0
    assert info["reward_components"] == {"tests": 1.0, "format": 0.0}
    strict = agentgym.make("CodeSandbox-v0", accept_fenced_code=False)
    strict.reset(seed=0, options={"task_id": "rotate-left-6"})
    assert not strict.step(f"```python\n{solution}```")[4]["action_valid"]
    strict.close()


def test_the_submission_reports_tests_and_format_components(env) -> None:
    env.reset(seed=0, options={"task_id": "rotate-left-6"})
    solution = env.unwrapped.task.solution
    *_, info = env.step(call("submit", solution))
    assert info["reward_components"] == {"tests": 1.0, "format": 1.0}
    # an invalid action earlier in the episode spoils the format, not the tests
    env.reset(seed=0, options={"task_id": "rotate-left-6"})
    assert not env.step("no tool call here")[4]["action_valid"]
    _, reward, _, _, info = env.step(call("submit", "def rotate(xs):\n    return xs\n"))
    assert info["reward_components"] == {"tests": reward, "format": 0.0} and reward < 1.0
    env.reset(seed=0, options={"task_id": "rotate-left-6"})
    *_, info = env.step(call("submit", solution))
    assert info["reward_components"]["format"] == 1.0  # reset clears it


STUB = "def rotate(xs):\n    return None\n"
BAD_PROGRAMS = [
    ("def rotate(xs)\n    return xs", "could not be loaded", "SyntaxError"),
    ("while True:\n    pass\n", "stopped after 1.5 s", "not run"),
    ("def rotate(xs):\n    while True:\n        pass\n", "timed out after 0.5 s", "FAIL"),
    ("x = bytearray(10**10)\n", "could not be loaded", "MemoryError"),
    ("print('spam ' * 10**6)\n" + STUB, "[truncated]", "printed more than"),
    ("import os\nprint(os.listdir('/'))\n" + STUB, "exited normally", "'work'"),
    (
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\n",
        "could not be loaded",
        "OSError",
    ),
    ("import os\nwhile True:\n    os.fork()\n", "", ""),
    ("import sys\nsys.exit(3)\n", "could not be loaded", "exit(3)"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "killed by signal 9", ""),
]


@pytest.mark.parametrize("program", BAD_PROGRAMS, ids=lambda p: p[0][:25])
def test_bad_programs_get_a_clear_observation(backend: str, program: tuple) -> None:
    code, first, second = program
    limits = {"wall_time_s": 1.5, "cpu_time_s": 1.5}
    env = CodeSandboxEnv(backend=backend, limits=limits, test_timeout_s=0.5)
    try:
        env.reset(seed=0, options={"task_id": "rotate-left-6"})
        obs, reward, terminated, _, info = env.step(call("run", code))
        assert info["action_valid"] and not terminated and reward == 0
        assert first in obs and second in obs, obs
        assert "Examples: 0 of 3 passed." in obs or "could not be loaded" in obs, obs
        assert len(obs) < 6000
        obs, reward, terminated, _, info = env.step(call("submit", code))
        assert terminated and reward == 0 and not info["success"]
        assert "Hidden tests passed: 0 of 10" in obs
    finally:
        env.close()


def test_forged_harness_records_pass_nothing(env) -> None:
    """A submission cannot fake results: call tests are judged on the host."""
    env.reset(seed=0, options={"task_id": "rotate-left-6"})
    forged = (
        "import json, os, sys\n"
        "with open('results.jsonl', 'a') as f:\n"
        "    f.write(json.dumps({'load': 'ok'}) + '\\n')\n"
        "    for i in range(10):\n"
        "        f.write(json.dumps({'i': i, 'ok': True, 'value': [1, 2, 3]}) + '\\n')\n"
        "def rotate(xs):\n"
        "    print(json.dumps({'i': 0, 'ok': True}))\n"
        "    return 'PASS'\n"
    )
    obs, reward, *_ = env.step(call("submit", forged))
    assert reward == 0, obs


def test_results_are_memoised_but_sandbox_failures_are_not() -> None:
    class Flaky:
        backend, limits = "flaky", Limits()

        def __init__(self) -> None:
            self.calls = 0

        def run(self, code, **kw):
            self.calls += 1
            return ExecResult.sandbox_error("engine restarted")

        def session(self):
            raise NotImplementedError

        def close(self) -> None:
            pass

        def describe(self) -> str:
            return "flaky"

    sandbox = Flaky()
    env = CodeSandboxEnv(backend=sandbox)
    _, info = env.reset(seed=0, options={"task_id": "rotate-left-6"})
    code = env.task.solution
    for tool in ("run", "submit", "submit"):
        obs, reward, terminated, _, after = env.step(call(tool, code))
        assert "sandbox failed" in obs and "engine restarted" in obs
        assert not terminated and reward == 0 and after["state_key"] == info["state_key"]
    assert sandbox.calls == 3
    local = CodeSandboxEnv()
    local.reset(seed=0, options={"task_id": "rotate-left-6"})
    first = local.step(call("run", "print(1)\ndef rotate(xs):\n    return xs\n"))[0]
    runs = local.grader.sandbox.run
    local.grader.sandbox.run = None  # a second identical call must not reach the sandbox
    try:
        assert local.step(call("run", "print(1)\ndef rotate(xs):\n    return xs\n"))[0] == first
    finally:
        local.grader.sandbox.run = runs
        local.close()


def test_humaneval_mbpp_and_program_tasks_play_through_the_env(backend: str) -> None:
    echo = CodeTask(
        task_id="upper",
        prompt="Read a line and print it in capitals.",
        tests=(
            TestCase("stdio", stdin="abc\n", stdout="ABC\n"),
            TestCase("stdio", stdin="x y\n", stdout="X Y"),
        ),
        visible_tests=(TestCase("stdio", stdin="hi\n", stdout="HI\n"),),
        solution="print(input().upper())\n",
    )
    tasks = [task_from_row(HUMANEVAL_ROW), task_from_row(MBPP_ROW), echo]
    tasks = [dataclasses.replace(t, split="train") for t in tasks]
    env = CodeSandboxEnv(backend=backend, tasks=tasks, limits=FAST)
    try:
        for task in tasks:
            info = play_expert(env, task.task_id)
            assert info["success"], task.task_id
        env.reset(seed=0, options={"task_id": "upper"})
        obs, *_ = env.step(call("run", "print(input()[::-1])", stdin="abc"))
        assert "cba" in obs and "FAIL input 'hi\\n' -> output 'HI\\n' -- printed 'ih\\n'" in obs
        half = "s = input()\nprint(s.upper() if ' ' in s else s)"
        obs, reward, *_ = env.step(call("submit", half))
        assert reward == 0.5 and "1 of 2" in obs, obs
    finally:
        env.close()


@pytest.mark.parametrize(
    "backend_name", ["local", pytest.param("docker", marks=pytest.mark.docker)]
)
def test_rollouts_in_worker_processes(backend_name: str, request) -> None:
    if backend_name == "docker":
        request.getfixturevalue("docker_ready")
    spec = EnvSpec("CodeSandbox-v0", kwargs={"backend": backend_name, "limits": FAST})
    engine = build_engine(
        spec, make_policy("expert"), SamplingParams(), executor="processes", pool_size=2
    )
    tasks = sample_tasks(spec, "test", 2, seed=0)
    with engine:
        trajs = engine.run(tasks, n=2)
    assert len(trajs) == 4 and all(t.success and t.status == "terminated" for t in trajs)
    step = trajs[0].steps[0]
    assert step.response_text.startswith("<tool_call>") and json.loads(step.action)["name"] == "run"
    assert get_parser("tool_call").parse(step.response_text).action == step.action
    assert len({t.steps[-1].state_key for t in trajs if t.task_id == trajs[0].task_id}) == 1
