"""``agentgym/MCP-v0`` against real MCP server processes (the ``mcp`` SDK): the shipped
inventory server over stdio and over streamable HTTP on loopback, and a server whose tools
misbehave. Tool errors, timeouts, bad arguments and a dying server are feedback, never
exceptions."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="needs the mcp extra: pip install 'agentgym[mcp]'")

import agentgym
from agentgym.checker import check_env
from agentgym.envs.mcp import MCPEnv, load_tasks, normalize_answer, score_answer
from agentgym.envs.mcp.client import ServerSpec, ToolResult
from agentgym.envs.mcp.env import INVENTORY_TASKS
from agentgym.envs.mcp.inventory import generate
from agentgym.envs.mcp.tasks import MCPTask
from agentgym.errors import ConfigError
from tests.integrations.helpers import evaluate_cli, free_port, serve, train_one_iteration

REPO = Path(__file__).resolve().parents[2]
FAULT_SERVER = {
    "command": sys.executable,
    "args": ["-m", "tests.integrations.mcp_fault_server"],
    "cwd": str(REPO),
}


@pytest.fixture(scope="module")
def inventory_url() -> Iterator[str]:
    port = free_port()
    args = ["-m", "agentgym.envs.mcp.inventory.server", "--http", "--port", str(port)]
    with serve(args, port):
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture(scope="module")
def stdio_env() -> Iterator[MCPEnv]:
    env = MCPEnv()
    yield env
    env.close()


def play(env, task_id: str, actions: list[str]) -> list[tuple]:
    env.reset(seed=0, options={"task_id": task_id})
    return [env.step(a) for a in actions]


def call(name: str, **arguments) -> str:
    return json.dumps({"name": name, "arguments": arguments})


# ---------------------------------------------------------------- tasks and checkers


def test_shipped_tasks_are_what_the_generator_writes() -> None:
    assert INVENTORY_TASKS.read_text() == generate.render()
    tasks = load_tasks(INVENTORY_TASKS)
    by_split = {s: [t for t in tasks if t.split == s] for s in ("train", "valid", "test")}
    assert [len(v) for v in by_split.values()] == [12, 4, 4]
    # held-out tasks run on databases (scenarios) never seen in training
    scenarios = {
        s: {t.setup[0]["arguments"]["scenario_id"] for t in v} for s, v in by_split.items()
    }
    assert scenarios == {"train": {0, 1, 2}, "valid": {3}, "test": {4}}
    assert {t.task_type for t in tasks} == {"lookup", "value", "cheapest", "restock"}


def test_answers_are_normalised_and_checked_three_ways() -> None:
    assert normalize_answer("  $12.50. ") == "12.50"
    assert normalize_answer("Hello   World!") == "hello world"

    def no_server(name, arguments):
        raise AssertionError("exact and regex checks never call the server")

    exact = MCPTask("a", "q", "train", answers=("EL-673", "EL-100"))
    assert score_answer(exact, " el-100 ", no_server) == (1.0, None)
    assert score_answer(exact, "EL-67", no_server) == (0.0, None)
    regex = MCPTask("b", "q", "train", answer_regex=r"\$?\s*17\.50")
    assert score_answer(regex, "$ 17.50", no_server)[0] == 1.0
    assert score_answer(regex, "17.5", no_server)[0] == 0.0
    counter = MCPTask(
        "c",
        "q",
        "train",
        checker="tests.integrations.mcp_fault_server:counter_is",
        checker_args={"value": 2},
    )
    assert score_answer(counter, "", lambda n, a: ToolResult("2"))[0] == 1.0
    assert score_answer(counter, "", lambda n, a: ToolResult("3"))[0] == 0.0
    broken = MCPTask(
        "d", "q", "train", checker="tests.integrations.mcp_fault_server:broken_checker"
    )
    score, error = score_answer(broken, "x", no_server)
    assert score == 0.0 and "KeyError" in error


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"task_id": "a", "instruction": "q"}, "exactly one of 'answer'"),
        ({"task_id": "a", "instruction": "q", "answer": "1", "answer_regex": "1"}, "exactly one"),
        ({"task_id": "a", "instruction": "q", "answer_regex": "("}, "does not compile"),
        ({"task_id": "a", "instruction": "q", "checker": "nocolon"}, "'module:function'"),
        ({"task_id": "a", "instruction": "q", "answer": "1", "split": "dev"}, "not one of"),
        ({"task_id": "a", "instruction": "q", "answer": "1", "hint": "x"}, "unknown field"),
        ({"task_id": "a", "instruction": "", "answer": "1"}, "non-empty string 'instruction'"),
        ({"task_id": "a", "instruction": "q", "answer": "1", "setup": [{"x": 1}]}, "'name'"),
    ],
)
def test_bad_task_rows_are_clear_errors(tmp_path: Path, row: dict, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(ConfigError, match=message):
        load_tasks(path)


def test_duplicate_ids_and_split_files(tmp_path: Path) -> None:
    row = {"task_id": "a", "instruction": "q", "answer": "1"}
    (tmp_path / "dup.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ConfigError, match="also at"):
        load_tasks(tmp_path / "dup.jsonl")
    (tmp_path / "tr.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "te.jsonl").write_text(json.dumps({**row, "task_id": "b"}) + "\n")
    tasks = load_tasks({"train": tmp_path / "tr.jsonl", "test": tmp_path / "te.jsonl"})
    assert [(t.task_id, t.split) for t in tasks] == [("a", "train"), ("b", "test")]
    # rows without a split are placed by their id, the same way every time
    unsplit = [{**row, "task_id": f"t{i}"} for i in range(60)]
    (tmp_path / "u.jsonl").write_text("".join(json.dumps(r) + "\n" for r in unsplit))
    splits = [t.split for t in load_tasks(tmp_path / "u.jsonl")]
    assert splits == [t.split for t in load_tasks(tmp_path / "u.jsonl")]
    assert set(splits) == {"train", "valid", "test"}


def test_server_specs() -> None:
    assert ServerSpec.parse("http://127.0.0.1:9/mcp").transport == "http"
    spec = ServerSpec.parse("python -m my.server --flag 'a b'")
    assert spec.command == ("python", "-m", "my.server", "--flag", "a b")
    spec = ServerSpec.parse({"command": "node", "args": ["srv.js"], "env": {"K": 1}})
    assert spec.command == ("node", "srv.js") and spec.env == {"K": "1"}
    with pytest.raises(ConfigError, match="unknown key"):
        ServerSpec.parse({"command": "x", "port": 1})
    with pytest.raises(ConfigError, match="not a server spec"):
        ServerSpec.parse(42)


# ---------------------------------------------------------------- the shipped server over stdio


def test_tools_come_from_the_server_as_openai_schemas(stdio_env: MCPEnv) -> None:
    _, info = stdio_env.reset(seed=0, options={"task_id": "inv0-lookup"})
    names = [t["function"]["name"] for t in info["tools"]]
    assert names == [
        "list_items",
        "search_items",
        "get_item",
        "adjust_stock",
        "set_price",
        "move_item",
        "submit_answer",
    ]  # the environment's hidden tools (reset_inventory, inventory_state) are not offered
    adjust = info["tools"][3]["function"]
    assert adjust["parameters"]["required"] == ["sku", "delta"]
    assert adjust["parameters"]["properties"]["delta"]["type"] == "integer"
    assert "adjust_stock(sku: string, delta: integer)" in info["instruction"]
    assert stdio_env.action_parser == "tool_call"


def test_expert_solves_every_task_through_the_server(stdio_env: MCPEnv) -> None:
    for split in ("train", "valid", "test"):
        for task_id in stdio_env.task_ids(split):
            stdio_env.reset(seed=0, options={"task_id": task_id})
            for _ in range(5):
                _, reward, terminated, _, info = stdio_env.step(stdio_env.expert_action())
                if terminated:
                    break
            assert info["success"] and reward == 1.0, task_id


def test_state_key_follows_the_database_not_the_calls(stdio_env: MCPEnv) -> None:
    # inv0-restock: PA-601 ("brush set") has 6 units and must reach 20
    _, info = stdio_env.reset(seed=0, options={"task_id": "inv0-restock"})
    start = info["state_key"]
    keys = [step[4]["state_key"] for step in (
        stdio_env.step(call("search_items", query="brush")),  # read-only: same state
        stdio_env.step(call("adjust_stock", sku="PA-601", delta=4)),
        stdio_env.step(call("adjust_stock", sku="PA-601", delta=10)),
    )]  # fmt: skip
    assert keys[0] == start and len({start, keys[1], keys[2]}) == 3
    # another way to the same database gives the same key
    stdio_env.reset(seed=0, options={"task_id": "inv0-restock"})
    _, _, _, _, info = stdio_env.step(call("adjust_stock", sku="pa-601", delta=14))
    assert info["state_key"] == keys[2]
    _, reward, terminated, _, info = stdio_env.step(call("submit_answer", answer="done"))
    assert terminated and reward == 1.0 and info["state_key"] == keys[2] + "|end"
    # a wrong change fails the state checker
    stdio_env.reset(seed=0, options={"task_id": "inv0-restock"})
    stdio_env.step(call("adjust_stock", sku="PA-601", delta=14))
    stdio_env.step(call("set_price", sku="PA-601", price=1.0))
    _, reward, _, _, info = stdio_env.step(call("submit_answer", answer="done"))
    assert reward == 0.0 and not info["success"]


def test_bad_calls_are_feedback(stdio_env: MCPEnv) -> None:
    _, info = stdio_env.reset(seed=0, options={"task_id": "inv0-lookup"})
    key = info["state_key"]
    cases = {
        "no tool call here": "has no tool call",
        '{"name": "adjust_stock", "arguments": ': "not valid JSON",
        call("inventory_state"): "there is no tool 'inventory_state'",
        call("get_itme", sku="x"): "Did you mean 'get_item'",
        call("adjust_stock", sku=3): "'delta' is a required property",
        call("set_price", sku="PA-601", price="cheap"): "is not of type 'number'",
        call("submit_answer", answer=["a"]): 'one argument, "answer"',
    }
    for action, message in cases.items():
        obs, reward, terminated, _, info = stdio_env.step(action)
        assert message in obs and not info["action_valid"] and not terminated, action
        assert info["state_key"] == key
    # a tool error is the server's answer to a valid call
    obs, _, terminated, _, info = stdio_env.step(call("get_item", sku="ZZ-000"))
    assert info["action_valid"] and not terminated and info["tool_failure"] == "tool_error"
    assert "no item with SKU 'ZZ-000'" in obs and info["state_key"] == key
    obs, _, _, _, info = stdio_env.step(f"<tool_call>{call('get_item', sku='PA-601')}</tool_call>")
    assert "brush set" in obs and "tool_failure" not in info
    assert info["num_tool_calls"] == 2


def test_registered_id_makes_the_shipped_env() -> None:
    env = agentgym.make("MCP-v0")
    try:
        assert isinstance(env.unwrapped, MCPEnv)
        assert env.unwrapped.connection.spec.transport == "stdio"
    finally:
        env.close()


# ---------------------------------------------------------------- a misbehaving server


def fault_tasks(tmp_path: Path) -> Path:
    rows = [
        {
            "task_id": "count-to-2",
            "split": "train",
            "instruction": "Bump the counter to 2, then answer 'ok'.",
            "checker": "tests.integrations.mcp_fault_server:counter_is",
            "checker_args": {"value": 2},
            "setup": [{"name": "reset", "arguments": {}}],
            "solution": [
                {"name": "bump", "arguments": {"by": 2}},
                {"name": "submit_answer", "arguments": {"answer": "ok"}},
            ],
        },
        {"task_id": "say-hi", "split": "test", "instruction": "Say hi.", "answer": "hi"},
    ]
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_timeouts_errors_and_a_dead_server_are_feedback(tmp_path: Path) -> None:
    env = MCPEnv(
        server=FAULT_SERVER, tasks=fault_tasks(tmp_path), hidden_tools=["reset"], call_timeout=1
    )
    try:
        _, info = env.reset(seed=0, options={"task_id": "count-to-2"})
        assert "read()" in info["instruction"] and "reset(" not in info["instruction"]
        obs, _, _, _, info = env.step(call("nap", seconds=5))
        assert info["tool_failure"] == "timeout" and "timed out after 1 s" in obs
        obs, _, _, _, info = env.step(call("refuse"))
        assert info["tool_failure"] == "tool_error" and "I never work" in obs
        # without a state tool the key is the history of successful writes
        k0 = info["state_key"]
        _, _, _, _, info = env.step(call("bump", by=1))
        k1 = info["state_key"]
        _, _, _, _, info = env.step(call("read"))
        assert info["state_key"] == k1 != k0
        obs, _, _, _, info = env.step(call("crash"))
        assert info["action_valid"] and info["tool_failure"] == "disconnected"
        obs, _, terminated, _, info = env.step(call("read"))
        assert info["tool_failure"] == "disconnected" and not terminated
        # the next reset starts the server again
        env.reset(seed=0, options={"task_id": "count-to-2"})
        assert env.connection.alive
        _, reward, terminated, _, info = env.step(call("bump", by=2))
        _, reward, terminated, _, info = env.step(call("submit_answer", answer="ok"))
        assert terminated and reward == 1.0 and info["success"]
    finally:
        env.close()


def test_misconfigured_servers_are_clear_errors(tmp_path: Path) -> None:
    tasks = fault_tasks(tmp_path)
    with pytest.raises(ConfigError, match=r"no tool 'rest'.*Did you mean 'reset'"):
        MCPEnv(server=FAULT_SERVER, tasks=tasks, hidden_tools=["rest"])
    with pytest.raises(ConfigError, match="needs tasks"):
        MCPEnv(server=FAULT_SERVER)
    from agentgym.envs.mcp import MCPConnectionError

    with pytest.raises(MCPConnectionError, match="could not connect"):
        MCPEnv(server=[sys.executable, "-c", "import sys; sys.exit(2)"], tasks=tasks)
    with pytest.raises(MCPConnectionError, match="could not connect"):
        MCPEnv(server=f"http://127.0.0.1:{free_port()}/mcp", tasks=tasks, connect_timeout=10)


# ---------------------------------------------------------------- streamable HTTP on loopback


def test_http_server_passes_the_checker_and_keeps_envs_apart(inventory_url: str) -> None:
    check_env("MCP-v0", server=inventory_url, tasks=str(INVENTORY_TASKS),
              hidden_tools=["reset_inventory", "inventory_state"],
              state_tool="inventory_state")  # fmt: skip
    kwargs = {
        "server": inventory_url,
        "tasks": INVENTORY_TASKS,
        "hidden_tools": ["reset_inventory", "inventory_state"],
        "state_tool": "inventory_state",
    }
    a, b = MCPEnv(**kwargs), MCPEnv(**kwargs)
    try:
        assert a.connection.spec.transport == "http"
        a.reset(seed=0, options={"task_id": "inv0-restock"})
        b.reset(seed=0, options={"task_id": "inv0-restock"})
        a.step(call("adjust_stock", sku="PA-601", delta=14))
        obs_a = a.step(call("get_item", sku="PA-601"))[0]
        obs_b = b.step(call("get_item", sku="PA-601"))[0]
        assert "qty 20" in obs_a and "qty 6" in obs_b  # one database per connection
    finally:
        a.close()
        b.close()


@pytest.mark.slow
def test_train_one_iteration_and_evaluate(tmp_path: Path, inventory_url: str) -> None:
    env_args = [
        f"env.kwargs.server={inventory_url}",
        "env.kwargs.hidden_tools=[reset_inventory,inventory_state]",
        "env.kwargs.state_tool=inventory_state",
        f"env.kwargs.tasks={INVENTORY_TASKS}",
    ]
    result = train_one_iteration(
        tmp_path / "run",
        "MCP-v0",
        "env.max_steps=3",
        "env.prompt.style=chat",
        "policy.sampling.max_tokens=24",
        "policy.val_sampling.max_tokens=24",
        "policy.tiny.vocab_size=600",
        *env_args,
    )
    summary = evaluate_cli(
        tmp_path / "eval", "MCP-v0", result.run_dir, "--tasks", "2", "--max-tokens", "24"
    )
    assert summary["num_tasks"] == 2 and summary["env"]["kwargs"]["server"] == inventory_url
    assert all(t.startswith("inv4-") for t in summary["task_ids"])  # the test scenario
    expert = evaluate_cli(
        tmp_path / "expert", "MCP-v0", "expert", "--tasks", "4",
        "-k", f"server={inventory_url}", "-k", f"tasks={INVENTORY_TASKS}",
        "-k", 'hidden_tools=["reset_inventory", "inventory_state"]',
        "-k", "state_tool=inventory_state",
    )  # fmt: skip
    assert expert["metrics"]["success"] == 1.0
