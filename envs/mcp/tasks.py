"""Tasks of ``agentgym/MCP-v0``: JSONL rows, their splits, and how an answer is checked.

One JSON object per line::

    {"task_id": "stock-3", "split": "train",
     "instruction": "How many units of 'padlock' are in stock?",
     "answer": "17",                                   # or "answer_regex", or "checker"
     "setup": [{"name": "reset_inventory", "arguments": {"scenario_id": 3}}],
     "solution": [{"name": "search_items", "arguments": {"query": "padlock"}},
                  {"name": "submit_answer", "arguments": {"answer": "17"}}],
     "task_type": "lookup"}

Fields:

``task_id`` (str, required, unique), ``instruction`` (str, required)
``split``
    ``train``/``valid``/``test``. Rows without one are placed by a hash of their
    ``task_id`` (80/10/10), so adding rows never moves old ones. A file per split
    (``{split: path}``) sets it for every row of that file.
A checker -- exactly one of:
    ``answer`` (str or list of str): the answer equals one of them after normalisation
    (case, surrounding space and punctuation, inner runs of space, a leading ``$``);
    ``answer_regex`` (str): the whole answer matches (``re.fullmatch``, case-insensitive);
    ``checker`` (``"module:function"``) with optional ``checker_args`` (object): the
    function is called as ``function(answer, task, call_tool, **checker_args)`` and returns
    a bool or a score in [0, 1]. ``call_tool(name, arguments)`` calls the server (hidden
    tools included) and returns a :class:`~agentgym.envs.mcp.client.ToolResult`, so a
    checker can inspect the state the agent left behind.
``setup`` (list of calls)
    Tool calls run at every reset before the agent acts, e.g. to load the task's data.
    They make episodes repeatable: the same task always starts from the same state.
``solution`` (list of calls)
    A call sequence that solves the task, ending with the answer tool: the environment's
    expert replays it (SFT demonstrations, conformance checks).
``task_type`` (str): a category for per-type reports.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentgym.env import SPLITS, Split, split_of_level
from agentgym.errors import ConfigError

ToolCall = dict[str, Any]  # {"name": str, "arguments": dict}
_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n.,;:!?\"'`"


@dataclass(frozen=True)
class MCPTask:
    """One task (see the module docstring for the fields)."""

    task_id: str
    instruction: str
    split: Split
    answers: tuple[str, ...] = ()
    answer_regex: str | None = None
    checker: str | None = None
    checker_args: Mapping[str, Any] = field(default_factory=dict)
    setup: tuple[ToolCall, ...] = ()
    solution: tuple[ToolCall, ...] = ()
    task_type: str | None = None


def normalize_answer(text: str) -> str:
    """Case-folded, inner whitespace folded, surrounding punctuation and a leading ``$``
    removed: ``" $12.50. "`` -> ``"12.50"``."""
    folded = _SPACE.sub(" ", str(text)).strip(_EDGE_PUNCT).casefold()
    return folded.removeprefix("$").strip()


def _calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of {{'name', 'arguments'}} objects")
    out = []
    for call in value:
        if not (isinstance(call, dict) and isinstance(call.get("name"), str)):
            raise ConfigError(f"{where} has {call!r}; each call needs a 'name' and 'arguments'")
        arguments = call.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise ConfigError(f"{where}: the arguments of {call['name']!r} must be an object")
        out.append({"name": call["name"], "arguments": arguments})
    return tuple(out)


def task_from_row(row: Mapping[str, Any], where: str, split: Split | None = None) -> MCPTask:
    """An :class:`MCPTask` from one JSON row; ``where`` names it in error messages."""
    known = {
        "task_id", "instruction", "split", "answer", "answer_regex", "checker",
        "checker_args", "setup", "solution", "task_type",
    }  # fmt: skip
    unknown = sorted(set(row) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown field(s) {unknown}; valid: {sorted(known)}")
    for key in ("task_id", "instruction"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ConfigError(f"{where} needs a non-empty string {key!r}")
    task_id = row["task_id"]
    kinds = [k for k in ("answer", "answer_regex", "checker") if row.get(k) is not None]
    if len(kinds) != 1:
        raise ConfigError(
            f"{where} (task {task_id!r}) needs exactly one of 'answer', 'answer_regex' or "
            f"'checker', got {kinds or 'none'}"
        )
    answers = row.get("answer")
    if answers is not None:
        answers = [answers] if isinstance(answers, str | int | float) else answers
        if not isinstance(answers, list) or not answers:
            raise ConfigError(f"{where}: 'answer' must be a string or a list of strings")
    regex = row.get("answer_regex")
    if regex is not None:
        try:
            re.compile(regex)
        except (re.error, TypeError) as exc:
            raise ConfigError(f"{where}: 'answer_regex' {regex!r} does not compile: {exc}") from exc
    checker = row.get("checker")
    if checker is not None and (not isinstance(checker, str) or ":" not in checker):
        raise ConfigError(f"{where}: 'checker' must be 'module:function', got {checker!r}")
    row_split = row.get("split", split)
    if row_split is None:
        row_split = split_of_level(f"mcp-task\x1f{task_id}")
    if row_split not in SPLITS:
        raise ConfigError(f"{where}: split {row_split!r} is not one of {list(SPLITS)}")
    if split is not None and row_split != split:
        raise ConfigError(f"{where}: row says split {row_split!r} in the {split!r} file")
    checker_args = row.get("checker_args") or {}
    if not isinstance(checker_args, dict):
        raise ConfigError(f"{where}: 'checker_args' must be an object")
    return MCPTask(
        task_id=task_id,
        instruction=row["instruction"].strip(),
        split=row_split,
        answers=tuple(str(a) for a in answers or ()),
        answer_regex=regex,
        checker=checker,
        checker_args=checker_args,
        setup=_calls(row.get("setup"), f"{where} 'setup'"),
        solution=_calls(row.get("solution"), f"{where} 'solution'"),
        task_type=str(row["task_type"]) if row.get("task_type") is not None else None,
    )


def load_tasks(source: str | Path | Mapping[str, str | Path]) -> list[MCPTask]:
    """Tasks from a JSONL file, or from ``{split: file}``; task ids must be unique."""
    files: list[tuple[Path, Split | None]]
    if isinstance(source, Mapping):
        bad = sorted(set(source) - set(SPLITS))
        if bad:
            raise ConfigError(f"tasks has unknown split(s) {bad}; valid: {list(SPLITS)}")
        files = [(Path(p).expanduser(), s) for s, p in source.items()]  # type: ignore[misc]
    else:
        files = [(Path(source).expanduser(), None)]
    tasks: list[MCPTask] = []
    seen: dict[str, str] = {}
    for path, split in files:
        if not path.is_file():
            raise FileNotFoundError(f"task file {str(path)!r} does not exist")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where} is not JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise ConfigError(f"{where} must be a JSON object")
            task = task_from_row(row, where, split)
            if task.task_id in seen:
                raise ConfigError(
                    f"{where}: task id {task.task_id!r} is also at {seen[task.task_id]}"
                )
            seen[task.task_id] = where
            tasks.append(task)
    if not tasks:
        raise ConfigError(f"no tasks in {source!r}")
    return tasks


def load_checker(spec: str) -> Callable[..., Any]:
    """The function named by ``"module:function"``."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"checker {spec!r}: cannot import {module_name!r}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"checker {spec!r}: {module_name!r} has no function {attr!r}")
    return fn


def score_answer(
    task: MCPTask, answer: str, call_tool: Callable[[str, Mapping[str, Any]], Any]
) -> tuple[float, str | None]:
    """``(score in [0, 1], error)`` of ``answer``; ``error`` names a checker that failed
    (its score is then 0)."""
    if task.answers:
        got = normalize_answer(answer)
        return float(any(got == normalize_answer(a) for a in task.answers)), None
    if task.answer_regex is not None:
        hit = re.fullmatch(task.answer_regex, answer.strip(), flags=re.IGNORECASE | re.DOTALL)
        return float(hit is not None), None
    assert task.checker is not None
    try:
        value = load_checker(task.checker)(answer, task, call_tool, **dict(task.checker_args))
    except Exception as exc:  # a broken checker must not crash the run
        return 0.0, f"checker {task.checker} raised {type(exc).__name__}: {exc}"
    try:
        score = float(value)
    except (TypeError, ValueError):
        return 0.0, f"checker {task.checker} returned {value!r}, not a bool or a number"
    if not math.isfinite(score):
        return 0.0, f"checker {task.checker} returned {value!r}"
    return min(1.0, max(0.0, score)), None


def split_ids(tasks: Sequence[MCPTask]) -> dict[Split, list[str]]:
    """Task ids by split, in file order."""
    ids: dict[Split, list[str]] = {s: [] for s in SPLITS}
    for task in tasks:
        ids[task.split].append(task.task_id)
    return ids
