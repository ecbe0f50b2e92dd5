"""``agentgym/MCP-v0``: the tools of any MCP server as an environment.

The environment connects to one MCP server (a stdio subprocess or a streamable-HTTP
URL, see :class:`~agentgym.envs.mcp.client.ServerSpec`), lists its tools and offers them
to the agent as OpenAI function schemas in ``info["tools"]`` (the MCP input schemas are
JSON Schema already), plus one tool of its own, ``submit_answer(answer)``, which ends the
episode. Tasks come from a JSONL file (:mod:`.tasks`): an instruction and a checker (an
exact answer, a regex, or a ``module:function`` that may query the server).

With no arguments it plays the shipped inventory server (:mod:`.inventory.server`) over
stdio with its generated tasks (``data/inventory_tasks.jsonl``).

Actions are tool calls: the canonical JSON ``{"name": ..., "arguments": {...}}`` that the
``tool_call`` parser passes on (the env's default ``action_parser``), or raw text with a
``<tool_call>...</tool_call>`` (the first one counts). One call per turn.

What the agent sees: ``info["instruction"]`` holds the task, every tool with its
arguments and description, and how to answer; each step's observation is the tool's
result (text content; other content as a placeholder), cut to ``max_result_chars``.

Invalid actions (``action_valid=False``, the server is not called, the state is
unchanged): no parseable tool call, an unknown or hidden tool, arguments that break the
tool's input schema (checked with ``jsonschema`` before sending). Failures of a valid
call are feedback too, never exceptions, with ``info["tool_failure"]`` naming the kind:
``tool_error`` (the tool said it failed), ``timeout`` (``call_timeout`` passed),
``disconnected`` (the server went away; the next reset reconnects), ``protocol``.

Reward: the checker's score of the submitted answer (0 when the turn limit cuts the
episode). ``success`` is a full score.

``state_key``: a short hash of the task and the server's state. Where the server offers
a state tool (``state_tool=``, e.g. the inventory's ``inventory_state``), the state is
what it returns after every call that may change something, so equal databases share a
key however they were reached. Otherwise the state is the sequence of successful calls to
tools not annotated ``readOnlyHint`` (read-only calls leave the key alone; two orders of
the same writes get two keys, which splits anchor groups but never merges different
states). A submitted answer adds ``|end``.

Episodes repeat exactly when each task's ``setup`` calls put the server in the task's
start state (the inventory tasks load their seeded scenario). Over HTTP each connection
sends an ``agentgym-workspace`` header with its own id; a server that keys its state on
it (as the inventory server does) serves many environments at once, otherwise give each
environment its own server.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from agentgym.env import Split, StepResult, TextEnv
from agentgym.envs.mcp.client import MCPConnection, MCPConnectionError, ToolInfo, ToolResult
from agentgym.envs.mcp.tasks import MCPTask, load_tasks, score_answer, split_ids
from agentgym.errors import ConfigError, NoExpertError, did_you_mean
from agentgym.parsers import find_tags, parse_tool_call_json

DATA = Path(__file__).parent / "data"
INVENTORY_TASKS = DATA / "inventory_tasks.jsonl"
#: The shipped server, and the tools it keeps for the environment.
INVENTORY_SERVER = (sys.executable, "-m", "agentgym.envs.mcp.inventory.server")
INVENTORY_HIDDEN = ("reset_inventory", "inventory_state")
INVENTORY_STATE_TOOL = "inventory_state"
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]+")


def _digest(text: str, size: int = 6) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).hexdigest()


def canonical_call(name: str, arguments: Mapping[str, Any]) -> str:
    """A tool call as canonical JSON (sorted keys): what the ``tool_call`` parser yields."""
    return json.dumps({"name": name, "arguments": dict(arguments)}, sort_keys=True)


def answer_tool_schema(name: str) -> dict[str, Any]:
    """The OpenAI schema of the environment's own answer tool."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": "Give your final answer (short, no explanation). Ends the episode.",
            "parameters": {
                "type": "object",
                "properties": {"answer": {"type": "string", "description": "The answer."}},
                "required": ["answer"],
            },
        },
    }


def describe_tool(schema: Mapping[str, Any]) -> str:
    """One line per tool: ``name(arg: type, opt?: type): description``."""
    fn = schema["function"]
    params = fn.get("parameters") or {}
    required = set(params.get("required") or ())
    args = []
    for arg, spec in (params.get("properties") or {}).items():
        kind = spec.get("type", "any") if isinstance(spec, dict) else "any"
        kind = "|".join(kind) if isinstance(kind, list) else kind
        args.append(f"{arg}{'' if arg in required else '?'}: {kind}")
    description = " ".join(str(fn.get("description") or "").split())
    return f"- {fn['name']}({', '.join(args)}){': ' + description if description else ''}"


class MCPEnv(TextEnv):
    """Tasks solved with the tools of an MCP server (see the module docstring).

    Args:
        server: the MCP server: an ``http(s)://`` URL (streamable HTTP), a command line
            (string or list) to run over stdio, or ``{"command", "args", "env", "cwd"}`` /
            ``{"url", "headers"}``. ``None``: the shipped inventory server over stdio.
        tasks: a JSONL task file or ``{split: file}`` (:mod:`.tasks`). ``None`` with the
            shipped server: its generated tasks.
        hidden_tools: server tools the agent neither sees nor may call (for setup and
            checkers). ``None``: the inventory's with the shipped server, else none.
        state_tool: a (read-only) tool whose result is the server's whole state, the
            ``state_key`` source (``None``: the write history; see the module docstring).
            Default: ``inventory_state`` with the shipped server.
        answer_tool: the name of the environment's answer tool.
        call_timeout: seconds one tool call may take.
        connect_timeout: seconds to start the server and list its tools.
        max_result_chars: longer tool results are cut (with a note).
    """

    description: ClassVar[str] = (
        "The tools of any MCP server (stdio or HTTP) with JSONL tasks; ships an inventory "
        "database server."
    )
    max_action_chars: ClassVar[int] = 16384

    def __init__(
        self,
        server: Any = None,
        tasks: str | Path | Mapping[str, str | Path] | None = None,
        hidden_tools: Sequence[str] | None = None,
        state_tool: str | None = None,
        answer_tool: str = "submit_answer",
        call_timeout: float = 30.0,
        connect_timeout: float = 60.0,
        max_result_chars: int = 4000,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        self.action_parser = "tool_call"
        shipped = server is None
        if shipped:
            server = list(INVENTORY_SERVER)
            tasks = INVENTORY_TASKS if tasks is None else tasks
            hidden_tools = INVENTORY_HIDDEN if hidden_tools is None else hidden_tools
            state_tool = INVENTORY_STATE_TOOL if state_tool is None else state_tool
        if tasks is None:
            raise ConfigError(
                "MCP-v0 with your own server needs tasks: a JSONL file (see "
                "docs/integrations.md), e.g. tasks=my_tasks.jsonl"
            )
        if max_result_chars < 100:
            raise ConfigError(f"max_result_chars must be >= 100, got {max_result_chars}")
        if not answer_tool or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", answer_tool):
            raise ConfigError(f"answer_tool={answer_tool!r} is not a valid tool name")
        self.tasks: dict[str, MCPTask] = {t.task_id: t for t in load_tasks(tasks)}
        self._ids = split_ids(list(self.tasks.values()))
        self.answer_tool = answer_tool
        self.hidden_tools = tuple(hidden_tools or ())
        self.state_tool = state_tool
        self.call_timeout = float(call_timeout)
        self.connect_timeout = float(connect_timeout)
        self.max_result_chars = int(max_result_chars)
        self._server_spec = server
        self._conn = self._connect()
        self._check_tool_names()
        self._visible: dict[str, ToolInfo] = {
            t.name: t for t in self._conn.tools if t.name not in self.hidden_tools
        }
        self._schemas = [t.openai_schema() for t in self._visible.values()]
        self._schemas.append(answer_tool_schema(answer_tool))
        self._validators = {name: _validator(t.input_schema) for name, t in self._visible.items()}
        self._tool_text = "\n".join(describe_tool(s) for s in self._schemas)
        # episode state
        self._task: MCPTask | None = None
        self._history: list[str] = []
        self._state_text = ""
        self._answered = False
        self._num_tool_calls = 0
        self._expert_pos = 0
        self._last_failure: str | None = None

    # ------------------------------------------------------------ server

    def _connect(self) -> MCPConnection:
        return MCPConnection(
            self._server_spec,
            connect_timeout=self.connect_timeout,
            call_timeout=self.call_timeout,
        )

    def _check_tool_names(self) -> None:
        names = [t.name for t in self._conn.tools]
        for name in [*self.hidden_tools, *([self.state_tool] if self.state_tool else [])]:
            if name not in names:
                self._conn.close()
                raise ConfigError(
                    f"the MCP server has no tool {name!r} (hidden_tools/state_tool)."
                    + did_you_mean(name, names)
                    + f" Its tools: {names}"
                )
        if self.answer_tool in names and self.answer_tool not in self.hidden_tools:
            self._conn.close()
            raise ConfigError(
                f"the MCP server has its own tool {self.answer_tool!r}; pick another "
                "answer_tool= name"
            )

    @property
    def connection(self) -> MCPConnection:
        """The live connection to the server."""
        return self._conn

    def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        """Call any server tool (hidden ones included), as setup and checkers do."""
        return self._conn.call_tool(name, arguments, timeout=self.call_timeout)

    def close(self) -> None:
        conn = self.__dict__.get("_conn")
        if conn is not None:
            conn.close()
        super().close()

    # ------------------------------------------------------------ tasks

    def task_ids(self, split: Split) -> Sequence[str]:
        return self._ids[split]

    @property
    def task(self) -> MCPTask:
        """The current task (``reset()`` first)."""
        if self._task is None:
            raise RuntimeError("call reset() first")
        return self._task

    @property
    def has_expert(self) -> bool:
        """Whether every task carries a ``solution`` the expert can replay."""
        return all(t.solution for t in self.tasks.values())

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        if not self._conn.alive:  # the server went away during the last episode
            self._conn.close()
            self._conn = self._connect()
        task = self.tasks[task_id]
        for call in task.setup:
            result = self.call_tool(call["name"], call["arguments"])
            if not result.ok:
                kind = MCPConnectionError if result.failure == "disconnected" else ConfigError
                raise kind(
                    f"task {task_id!r}: setup call {call['name']}({call['arguments']}) "
                    f"failed ({result.failure}): {result.text[:500]}"
                )
        self._task = task
        self._history, self._answered = [], False
        self._num_tool_calls, self._expert_pos, self._last_failure = 0, 0, None
        self._state_text = self._read_state()
        return "No tool has been called yet. Call a tool."

    def _instruction(self) -> str:
        return (
            f"{self.task.instruction}\n\nTools:\n{self._tool_text}\n"
            f"Call one tool per turn. When you know the answer, call {self.answer_tool}."
        )

    def _tools(self) -> list[dict[str, Any]] | None:
        return self._schemas

    def _task_type(self) -> str | None:
        return self._task.task_type if self._task else None

    def _extra_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"num_tool_calls": self._num_tool_calls}
        if self._last_failure:
            info["tool_failure"] = self._last_failure
        return info

    # ------------------------------------------------------------ state

    def _read_state(self) -> str:
        if self.state_tool is None:
            return "\n".join(self._history)
        result = self.call_tool(self.state_tool, {})
        return result.text if result.ok else f"<state unavailable: {result.failure}>"

    def _state_key(self) -> str:
        key = f"{_digest(self.task.task_id, 4)}|{_digest(self._state_text)}"
        return key + ("|end" if self._answered else "")

    def canonical_state(self) -> str:
        """The task, the server state (or write history) and whether it was answered."""
        return f"{self.task.task_id}\n{self._state_text}\n{self._answered}"

    def _last_obs_tail(self) -> str:
        return f"Available tools: {', '.join(s['function']['name'] for s in self._schemas)}."

    # ------------------------------------------------------------ acting

    def parse_action(self, action: str) -> tuple[str, dict[str, Any]] | str:
        """``(tool, arguments)`` from an action, or the reason it is not valid."""
        calls = find_tags(action, "tool_call")
        payload = calls[0].strip() if calls else action.strip()
        if not payload.startswith("{"):
            return (
                'the response has no tool call; write <tool_call>{"name": ..., "arguments": '
                "{...}}</tool_call>"
            )
        call = parse_tool_call_json(payload)
        if isinstance(call, str):
            return call
        name, arguments = call["name"], call["arguments"]
        if name == self.answer_tool:
            answer = arguments.get("answer")
            if set(arguments) - {"answer"} or not isinstance(answer, str | int | float):
                return f'{name} takes one argument, "answer" (a string)'
            if isinstance(answer, bool):
                return f'{name} takes one argument, "answer" (a string)'
            return name, {"answer": str(answer)}
        if name not in self._visible:
            known = [s["function"]["name"] for s in self._schemas]
            return f"there is no tool {name!r}.{did_you_mean(name, known)} Tools: {known}"
        problem = _schema_problem(self._validators[name], arguments)
        if problem:
            return f"bad arguments for {name}: {problem}"
        return name, arguments

    def _step(self, action: str) -> StepResult:
        parsed = self.parse_action(action)
        self._last_failure = None
        if isinstance(parsed, str):
            return StepResult(
                observation=f"Invalid action: {parsed}",
                action_valid=False,
                success=self._success,
                score=self._score,
            )
        name, arguments = parsed
        self._num_tool_calls += 1
        self._advance_expert(name, arguments)
        if name == self.answer_tool:
            return self._submit(arguments["answer"])
        result = self.call_tool(name, arguments)
        self._last_failure = result.failure
        tool = self._visible[name]
        if not tool.read_only:
            if result.ok and self.state_tool is None:
                self._history.append(canonical_call(name, arguments))
            self._state_text = self._read_state()
        text = result.text
        if len(text) > self.max_result_chars:
            cut = len(text) - self.max_result_chars
            text = f"{text[: self.max_result_chars]}\n[... {cut} more characters cut]"
        if result.ok:
            observation = f"{name} returned:\n{text}" if text else f"{name} returned nothing."
        else:
            observation = f"{name} failed ({result.failure}): {text}"
        return StepResult(observation=observation, success=self._success, score=self._score)

    def _submit(self, answer: str) -> StepResult:
        score, error = score_answer(self.task, answer, self.call_tool)
        self._answered = True
        info: dict[str, Any] = {"answer": answer}
        if error:
            info["checker_error"] = error
        verdict = "correct" if score >= 1.0 else ("partly correct" if score > 0 else "not correct")
        return StepResult(
            observation=f"Answer submitted: {answer!r}. It is {verdict} (score {score:.2f}).",
            reward=score,
            terminated=True,
            success=score >= 1.0,
            score=score,
            info=info,
        )

    # ------------------------------------------------------------ expert and exploration

    def _advance_expert(self, name: str, arguments: Mapping[str, Any]) -> None:
        solution = self.task.solution
        if self._expert_pos < len(solution):
            step = solution[self._expert_pos]
            if canonical_call(step["name"], step["arguments"]) == canonical_call(name, arguments):
                self._expert_pos += 1

    def _expert_action(self) -> str:
        """The next call of the task's ``solution`` not yet made (calls the agent made in
        the solution's order count as done)."""
        solution = self.task.solution
        if not solution:
            raise NoExpertError(f"task {self.task.task_id!r} has no solution to replay")
        step = solution[min(self._expert_pos, len(solution) - 1)]
        return canonical_call(step["name"], step["arguments"])

    def random_action(self, rng: np.random.Generator) -> str:
        """A random tool call with schema-shaped arguments (words from what the agent has
        seen), sometimes an answer, sometimes malformed."""
        words = _WORD.findall(f"{self.task.instruction} {self._last_obs}") or ["item"]

        def word() -> str:
            return words[int(rng.integers(len(words)))]

        u = float(rng.random())
        if u < 0.1:
            junk = [
                '{"name": "list_items", "arguments": ',
                f"I think the answer is {word()}.",
                json.dumps({"name": "no_such_tool", "arguments": {}}),
            ]
            return junk[int(rng.integers(len(junk)))]
        if u < 0.25 or not self._visible:
            return canonical_call(self.answer_tool, {"answer": word()})
        tool = list(self._visible.values())[int(rng.integers(len(self._visible)))]
        params = tool.input_schema.get("properties") or {}
        required = set(tool.input_schema.get("required") or ())
        arguments: dict[str, Any] = {}
        for arg, spec in params.items():
            if arg not in required and rng.random() < 0.5:
                continue
            kind = spec.get("type") if isinstance(spec, dict) else None
            if kind == "integer":
                arguments[arg] = int(rng.integers(-5, 6))
            elif kind == "number":
                arguments[arg] = round(float(rng.uniform(0, 50)), 2)
            elif kind == "boolean":
                arguments[arg] = bool(rng.random() < 0.5)
            else:
                arguments[arg] = word()
        return canonical_call(tool.name, arguments)


def _validator(schema: Mapping[str, Any]) -> Any:
    """A jsonschema validator for a tool's input schema, or ``None`` where the schema
    itself is not valid JSON Schema (then the server judges the arguments)."""
    import jsonschema

    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        return cls(schema)
    except jsonschema.SchemaError:
        return None


def _schema_problem(validator: Any, arguments: Mapping[str, Any]) -> str | None:
    if validator is None:
        return None
    errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: list(e.path))
    if not errors:
        return None
    parts = []
    for err in errors[:3]:
        where = ".".join(str(p) for p in err.path)
        parts.append(f"{where + ': ' if where else ''}{err.message}")
    return "; ".join(parts)
