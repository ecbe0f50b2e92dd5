"""``agentgym/CodeSandbox-v0``: write a Python function with a code-execution tool; hidden
tests grade the final submission.

Each task is a small programming problem (the shipped generator's, or yours from a JSONL
file: agentgym, HumanEval or MBPP rows, see :mod:`.tasks`). The agent has two tools,
described by ``info["tools"]`` (OpenAI function schemas):

``run(code, stdin="")``
    Executes ``code`` in the sandbox as a script (its ``__main__`` block runs with
    ``stdin``), shows what it printed and how it ended, then runs the *visible* tests
    (the examples of the prompt) against it and shows each verdict. The episode goes on.
``submit(code)``
    Grades ``code`` on the *hidden* tests and ends the episode. The reward and ``score``
    are the fraction of hidden tests passed; ``success`` is all of them passing. Its
    ``info["reward_components"]`` is ``{"tests": reward, "format": 1 or 0}``: ``format``
    is 1 when every action of the episode was a well-formed tool call (no invalid action,
    no fenced-code fallback). It is a second signal for multi-reward credit such as
    ``gdpo``, not part of the reward.

Actions are tool calls: the canonical JSON ``{"name": ..., "arguments": {...}}`` the
``tool_call`` parser passes on (the env's default ``action_parser``), or raw
``<tool_call>...</tool_call>`` text (the first call counts). With
``accept_fenced_code=True`` (the default) a response with no tool call but a fenced
Python block (```` ```python ... ``` ````) submits its last block, so plain
"write the code" prompts work too.

``state_key``: a short hash of (task, the normalised code of the latest run or submission,
the vector of tests it passed, whether it was submitted). The code is normalised with
``ast.unparse(ast.parse(code))`` -- comments and formatting do not change the state, while
any change to what the code does does -- and the test vector separates equal code that
behaved differently (a timeout under load). Invalid actions and sandbox failures leave it
unchanged. So two rollouts that tried the same program are in the same state for GiGPO,
whatever they said around it. ``info["num_tool_calls"]`` counts valid tool calls;
``info["task_type"]`` is the problem family (or the rows' ``task_type``).

Bad code is never an exception: syntax errors, exceptions, infinite loops, fork bombs, huge
allocations or outputs, file or network access come back as observations (exit status,
the captured output, "stopped after 10 s", ...), within the sandbox's isolation
(``backend="local"`` or ``"docker"``; see docs/code_sandbox.md). Results are memoised per
environment instance (``cache_size``): the same code with the same input gives the same
observation.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from agentgym.env import Split, StepResult, TextEnv
from agentgym.envs.code.families import generate_tasks
from agentgym.envs.code.grading import Grader, Report, clip
from agentgym.envs.code.tasks import CodeTask, TaskSet, load_jsonl
from agentgym.errors import ConfigError, NoExpertError, did_you_mean
from agentgym.parsers import find_tags, lone_surrogate, parse_tool_call_json
from agentgym.tools.sandbox import ExecResult, Limits, Sandbox, make_sandbox

#: Limits of one sandbox run in this env (one run grades all tests of one call).
DEFAULT_LIMITS = Limits(wall_time_s=10.0, cpu_time_s=10.0, memory_mb=512)
TOOLS = ("run", "submit")
_FENCE = re.compile(r"```(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL)
#: What a restore hands to ``_load_task`` (loading a task here draws nothing at random).
_NO_RANDOMNESS = np.random.default_rng(0)


def tool_schemas() -> list[dict[str, Any]]:
    """OpenAI function schemas of the ``run`` and ``submit`` tools."""
    code = {"type": "string", "description": "Python source code."}
    return [
        {
            "type": "function",
            "function": {
                "name": "run",
                "description": (
                    "Run Python code in a sandbox: it is executed as a script (what it prints "
                    "and any error are shown), then checked against the visible examples. "
                    "Does not end the episode."
                ),
                "parameters": {
                    "type": "object",
                    "properties": {
                        "code": code,
                        "stdin": {"type": "string", "description": "Standard input (optional)."},
                    },
                    "required": ["code"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "submit",
                "description": (
                    "Submit your final code. It is graded on hidden tests and the episode "
                    "ends; the reward is the fraction of hidden tests passed."
                ),
                "parameters": {
                    "type": "object",
                    "properties": {"code": code},
                    "required": ["code"],
                },
            },
        },
    ]


def normalize_code(code: str) -> str:
    """Code without comments and formatting (``ast.unparse``), or with whitespace folded
    when it does not parse."""
    try:
        return ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "\n".join(line.rstrip() for line in code.strip().splitlines())


def _digest(text: str, size: int = 6) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).hexdigest()


def _is_tool_call(action: str) -> bool:
    """Whether the action is a tool call (``<tool_call>`` or bare JSON), as
    :meth:`CodeSandboxEnv.parse_action` reads it, rather than a fenced code block."""
    calls = find_tags(action, "tool_call")
    return (calls[0] if calls else action).strip().startswith("{")


def _checked_text(name: str, code: str, stdin: str) -> tuple[str, str, str] | str:
    """The call, or why its text cannot be run: a lone surrogate (``"\\ud800"``) is not
    a character, so no Python source or UTF-8 input can hold it."""
    for what, text in (("code", code), ("stdin", stdin)):
        at = lone_surrogate(text)
        if at >= 0:
            return (
                f"the {what} contains a lone surrogate ({text[at]!r} at character {at}), "
                "which is not text"
            )
    return name, code, stdin


class CodeSandboxEnv(TextEnv):
    """Coding tasks with ``run`` and ``submit`` tools (see the module docstring).

    Args:
        backend: ``"local"``, ``"docker"`` (or another registered sandbox backend), or a
            ready :class:`~agentgym.tools.sandbox.Sandbox` (not closed by the env).
        tasks: ``None`` for the shipped generated tasks, a JSONL file, ``{split: file}``,
            or a sequence of :class:`~agentgym.envs.code.tasks.CodeTask`.
        num_visible: for JSONL rows without ``visible_tests``: how many of their tests the
            prompt shows.
        limits: sandbox limits of one run (a :class:`~agentgym.tools.sandbox.Limits` or a
            dict of its fields; default 10 s, 512 MB).
        test_timeout_s: time limit of one call/assert test.
        sandbox_options: more arguments for the backend (``isolation=``, ``image=``,
            ``reuse=``, ``runtime=``...).
        accept_fenced_code: a response with a fenced code block and no tool call submits.
        expert_runs_first: the expert runs the reference solution once before submitting.
        cache_size: results memoised per instance (0: off).
        max_output_chars: how much of a program's stdout/stderr an observation shows.
        task_seed: redraws the generated tasks' tests (not the problems or splits).
    """

    description: ClassVar[str] = (
        "Write Python functions with run/submit tools in a sandbox (local or Docker); "
        "reward = fraction of hidden tests passed."
    )
    max_action_chars: ClassVar[int] = 32768
    #: ``reward_components`` (tests passed, format) comes with the submission.
    info_keys: ClassVar[tuple[str, ...]] = ("reward_components",)

    def __init__(
        self,
        backend: str | Sandbox = "local",
        tasks: str | Path | Mapping[str, str | Path] | Sequence[CodeTask] | None = None,
        num_visible: int = 1,
        limits: Limits | Mapping[str, Any] | None = None,
        test_timeout_s: float = 2.0,
        sandbox_options: Mapping[str, Any] | None = None,
        accept_fenced_code: bool = True,
        expert_runs_first: bool = True,
        cache_size: int = 256,
        max_output_chars: int = 2000,
        task_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        self.action_parser = "tool_call"
        if isinstance(limits, Mapping):
            limits = DEFAULT_LIMITS.replace(**limits)
        self.limits = limits or DEFAULT_LIMITS
        if test_timeout_s <= 0:
            raise ConfigError(f"test_timeout_s must be > 0, got {test_timeout_s}")
        if isinstance(backend, str):
            self.sandbox: Sandbox = make_sandbox(
                backend, limits=self.limits, **dict(sandbox_options or {})
            )
            self._owns_sandbox = True
        elif isinstance(backend, Sandbox):
            self.sandbox, self._owns_sandbox = backend, False
        else:
            raise ConfigError(
                f"backend={backend!r} must be 'local', 'docker' or a Sandbox instance"
            )
        self.backend = self.sandbox.backend
        self.tasks = TaskSet(self._load_tasks(tasks, num_visible, task_seed))
        if not self.tasks.ids["train"] and tasks is None:
            raise ConfigError("the generated task set has no train tasks")
        self.grader = Grader(self.sandbox, self.limits, test_timeout_s)
        self.accept_fenced_code = bool(accept_fenced_code)
        self.expert_runs_first = bool(expert_runs_first)
        self.max_output_chars = int(max_output_chars)
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = int(cache_size)
        self._tool_schemas = tool_schemas()
        # episode state
        self._task: CodeTask | None = None
        self._prompt = ""
        self._task_digest = ""
        self._code_norm: str | None = None
        self._vector = ""
        self._submitted = False
        self._num_tool_calls = 0
        self._format_ok = True

    @staticmethod
    def _load_tasks(tasks: Any, num_visible: int, task_seed: int) -> list[CodeTask]:
        if tasks is None:
            return list(generate_tasks(task_seed))
        if isinstance(tasks, str | Path | Mapping):
            return load_jsonl(tasks, num_visible=num_visible)  # type: ignore[arg-type]
        out = list(tasks)
        bad = [t for t in out if not isinstance(t, CodeTask)]
        if bad:
            raise ConfigError(f"tasks must be CodeTask objects, got {type(bad[0]).__name__}")
        return out

    def close(self) -> None:
        if self._owns_sandbox:
            self.sandbox.close()
        super().close()

    # ------------------------------------------------------------ tasks

    def task_ids(self, split: Split) -> Sequence[str]:
        return self.tasks.ids[split]

    @property
    def task(self) -> CodeTask:
        """The current task (``reset()`` first)."""
        if self._task is None:
            raise RuntimeError("call reset() first")
        return self._task

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        task = self.tasks[task_id]
        self._task = task
        self._task_digest = _digest(f"{task.task_id}\x1f{task.prompt}", 4)
        self._code_norm, self._vector, self._submitted = None, "", False
        self._num_tool_calls = 0
        self._format_ok = True  # every action so far a well-formed tool call
        self._prompt = self._render_prompt(task)
        return self._prompt

    def _render_prompt(self, task: CodeTask) -> str:
        parts = [task.prompt.rstrip()]
        if task.starter.strip() and task.starter.strip() not in task.prompt:
            parts.append(f"Starter code:\n```python\n{task.starter.rstrip()}\n```")
        if task.visible_tests:
            shown = "\n".join(f"  {t.show(task.entry_point)}" for t in task.visible_tests)
            parts.append(f"Examples:\n{shown}")
        what = f"the function `{task.entry_point}`" if task.entry_point else "the program"
        parts.append(
            f"Use the run tool to execute code and check it against the examples, as often "
            f"as you like; when {what} is ready, call submit with the complete code. It is "
            "graded on hidden tests."
        )
        return "\n\n".join(parts) + "\n"

    def _instruction(self) -> str:
        return self._prompt

    def _tools(self) -> list[dict[str, Any]] | None:
        return self._tool_schemas

    def _task_type(self) -> str | None:
        return self._task.task_type if self._task else None

    def _extra_info(self) -> dict[str, Any]:
        return {"num_tool_calls": self._num_tool_calls, "sandbox": self.backend}

    # ------------------------------------------------------------ state

    def _state_key(self) -> str:
        code = "-" if self._code_norm is None else _digest(self._code_norm)
        key = f"{self._task_digest}|{code}|{self._vector}"
        return key + ("|end" if self._submitted else "")

    def canonical_state(self) -> str:
        """The task, the normalised code of the latest attempt, its test vector, and
        whether it was submitted."""
        code = "<none>" if self._code_norm is None else self._code_norm
        return f"{self.task.task_id}\n{code}\n{self._vector}\n{self._submitted}"

    def _last_obs_tail(self) -> str:
        return self._prompt

    def _snapshot_state(self) -> tuple:
        """The history that later steps read: the normalised code of the latest attempt,
        its test vector, whether it was submitted, the tool-call count.

        The sandbox holds nothing between steps (each run starts in a wiped working
        directory, with the code and its files written afresh), so there is nothing to
        save or rewrite there; the memo of results (``cache_size``) is per instance.
        """
        return (
            self._code_norm,
            self._vector,
            self._submitted,
            self._num_tool_calls,
            self._format_ok,
        )

    def _restore_state(self, task_id: str, split: Split, state: tuple) -> None:
        self._load_task(task_id, split, _NO_RANDOMNESS)  # the task
        code_norm, vector, submitted, num_tool_calls, format_ok = state
        self._code_norm, self._vector = code_norm, str(vector)
        self._submitted, self._num_tool_calls = bool(submitted), int(num_tool_calls)
        self._format_ok = bool(format_ok)

    # ------------------------------------------------------------ acting

    def parse_action(self, action: str) -> tuple[str, str, str] | str:
        """``(tool, code, stdin)`` from an action, or the reason it is not valid."""
        calls = find_tags(action, "tool_call")
        payload = calls[0].strip() if calls else action.strip()
        if not payload.startswith("{"):
            blocks = _FENCE.findall(action) if self.accept_fenced_code else []
            if blocks and blocks[-1].strip():
                return _checked_text("submit", blocks[-1], "")
            return "the response has no tool call"
        call = parse_tool_call_json(payload)
        if isinstance(call, str):
            return call
        name, arguments = call["name"], call["arguments"]
        if name not in TOOLS:
            return f"there is no tool {name!r}.{did_you_mean(name, TOOLS)}"
        allowed = {"code", "stdin"} if name == "run" else {"code"}
        unknown = sorted(set(arguments) - allowed)
        if unknown:
            return f"{name} takes {sorted(allowed)}, not {unknown[0]!r}"
        code, stdin = arguments.get("code"), arguments.get("stdin", "")
        if not isinstance(code, str) or not code.strip():
            return f'{name} needs a non-empty string argument "code"'
        if not isinstance(stdin, str):
            return f'"stdin" must be a string, got {type(stdin).__name__}'
        return _checked_text(name, code, stdin)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        ended_before = self._done
        result = super().step(action)
        if not ended_before and not result[4]["action_valid"]:
            self._format_ok = False
        return result

    def _step(self, action: str) -> StepResult:
        parsed = self.parse_action(action)
        if isinstance(parsed, str):
            return self._invalid(parsed)
        if not _is_tool_call(action):
            self._format_ok = False  # the fenced-code fallback
        name, code, stdin = parsed
        self._num_tool_calls += 1
        return self._run(code, stdin) if name == "run" else self._submit(code)

    def _invalid(self, message: str) -> StepResult:
        example = json.dumps({"name": "run", "arguments": {"code": "print(1 + 1)"}})
        observation = (
            f"Invalid action: {message}. Call run(code, stdin) to execute code or "
            f"submit(code) to hand in the final code, e.g. <tool_call>{example}</tool_call>"
        )
        return self.invalid(message, observation=observation)

    def _cached(self, key: tuple, compute, failed):
        """``compute()``, memoised under ``key`` unless ``failed(value)`` (sandbox errors
        are never remembered)."""
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = compute()
        if self._cache_size > 0 and not failed(value):
            self._cache[key] = value
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    def _sandbox_failure(self, tool: str, error: str) -> StepResult:
        return StepResult(
            f"The sandbox failed to run your code (not a problem with the code): {error}. "
            f"Call {tool} again.",
            info={"tool": tool, "sandbox_error": error},
        )

    def _run(self, code: str, stdin: str) -> StepResult:
        task = self.task
        key = ("run", task.task_id, code, stdin)
        if task.entry_point:
            report: Report = self._cached(
                key,
                lambda: self.grader.run_tests(task, code, task.visible_tests, True, stdin),
                lambda r: r.sandbox_error is not None,
            )
            program = report.program
            failure = report.sandbox_error
        else:

            def both() -> tuple[ExecResult, Report]:
                return (
                    self.grader.run_program(code, stdin),
                    self.grader.run_tests(task, code, task.visible_tests),
                )

            program, report = self._cached(
                key, both, lambda v: v[0].status == "sandbox_error" or v[1].sandbox_error
            )
            failure = program.error if program.status == "sandbox_error" else report.sandbox_error
        if failure:
            return self._sandbox_failure("run", failure)
        self._code_norm, self._vector = normalize_code(code), "v" + report.vector
        lines = []
        if report.load_error:
            lines.append(f"Your code could not be loaded:\n{clip(report.load_error, 1500)}")
        elif program is not None:
            lines.append(program.describe(self.limits))
        if program is not None:
            for stream in ("stdout", "stderr"):
                text = getattr(program, stream)
                if text.strip() and not (stream == "stderr" and report.load_error):
                    truncated = getattr(program, f"{stream}_truncated")
                    more = " [truncated]" if truncated else ""
                    lines.append(f"{stream}:\n{clip(text, self.max_output_chars)}{more}")
        if report.total:
            lines.append(f"Examples: {report.passed} of {report.total} passed.")
            for outcome in report.outcomes:
                shown = clip(outcome.test.show(task.entry_point), 300)
                verdict = "PASS" if outcome.passed else "FAIL"
                detail = f" -- {outcome.detail}" if outcome.detail else ""
                lines.append(f"{verdict} {shown}{detail}")
        return StepResult(
            "\n".join(lines),
            info={
                "tool": "run",
                "tests_passed": report.passed,
                "tests_total": report.total,
                "exec_status": program.status if program is not None else None,
            },
        )

    def _submit(self, code: str) -> StepResult:
        task = self.task
        report: Report = self._cached(
            ("submit", task.task_id, code),
            lambda: self.grader.run_tests(task, code, task.tests),
            lambda r: r.sandbox_error is not None,
        )
        if report.sandbox_error:
            return self._sandbox_failure("submit", report.sandbox_error)
        self._code_norm, self._vector, self._submitted = (
            normalize_code(code),
            "h" + report.vector,
            True,
        )
        score = report.fraction
        success = report.total > 0 and report.passed == report.total
        text = f"Submitted. Hidden tests passed: {report.passed} of {report.total}"
        text += " -- all correct." if success else f" (score {score:.2f})."
        if report.load_error:
            first = report.load_error.strip().splitlines()[-1]
            text += f"\nYour code could not be loaded: {clip(first, 300)}"
        return StepResult(
            text,
            reward=score,
            terminated=True,
            success=success,
            score=score,
            info={
                "tool": "submit",
                "tests_passed": report.passed,
                "tests_total": report.total,
                "reward_components": {"tests": score, "format": float(self._format_ok)},
            },
        )

    # ------------------------------------------------------------ policies

    def _expert_action(self) -> str:
        """Run the reference solution once (``expert_runs_first``), then submit it."""
        solution = self.task.solution
        if not solution:
            raise NoExpertError(f"task {self.task.task_id!r} has no reference solution")
        if self.expert_runs_first and self._code_norm != normalize_code(solution):
            arguments = {"code": solution}
            if not self.task.entry_point and self.task.visible_tests:
                arguments["stdin"] = self.task.visible_tests[0].stdin
            return json.dumps({"name": "run", "arguments": arguments}, ensure_ascii=False)
        return json.dumps({"name": "submit", "arguments": {"code": solution}}, ensure_ascii=False)

    def random_action(self, rng: np.random.Generator) -> str:
        """What an untrained agent tries: plausible-looking but (mostly) wrong code, run
        or submitted, and now and then a malformed call."""
        u = float(rng.random())
        if u < 0.1:
            junk = [
                "I will write the function now.",
                '{"name": "execute", "arguments": {"code": "print(1)"}}',
                '<tool_call>{"name": "run", "arguments": {}}</tool_call>',
                '{"name": "run", "arguments": ',
            ]
            return junk[int(rng.integers(len(junk)))]
        code = self._random_program(rng)
        name = "run" if u < 0.7 else "submit"
        call = json.dumps({"name": name, "arguments": {"code": code}})
        return f"<tool_call>\n{call}\n</tool_call>" if rng.random() < 0.5 else call

    def _random_program(self, rng: np.random.Generator) -> str:
        task = self.task
        if not task.entry_point:
            bodies = [
                "print(input())",
                "print(0)",
                "print(input()[::-1])",
                "import sys\nprint(len(sys.stdin.read()))",
            ]
            return bodies[int(rng.integers(len(bodies)))]
        bodies = [
            "return None",
            "return 0",
            "return ''",
            "return []",
            "return args[0]",
            "return str(args[0])",
            "return args[0][::-1]",
            "return len(args[0])",
            "return sorted(args[0])",
            "return args[0] + 1",
            "return not args[0]",
            "raise NotImplementedError",
            "print(args)\n    return args",
        ]
        body = bodies[int(rng.integers(len(bodies)))]
        code = f"def {task.entry_point}(*args):\n    {body}\n"
        if rng.random() < 0.1:
            code = code.replace("):", ")", 1)  # a syntax error now and then
        return code
