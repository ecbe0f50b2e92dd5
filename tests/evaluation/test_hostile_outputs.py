"""``agentgym eval`` against an OpenAI-compatible server (a real one, on loopback) whose
model answers with what breaks naive code: tool-call JSON nested 1,000 levels deep and
lone surrogates (``"\\ud800"``). Every episode completes and is written; those answers are
invalid actions, never a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentgym.cli import app
from agentgym.evaluation import load_results
from tests.policies.http_fakes import serve

DEEP = "[" * 1000 + "]" * 1000


def hostile_message(n: int) -> dict[str, Any]:
    """The n-th answer: one of the hostile outputs, in turn."""
    kind = n % 5
    if kind == 0:  # deep JSON in the text
        return {
            "content": f'<tool_call>{{"name": "run", "arguments": {{"code": {DEEP}}}}}</tool_call>'
        }
    if kind == 1:  # a lone surrogate in the text
        return {"content": "I will answer \ud800 now <answer>\ud800</answer>"}
    if kind == 2:  # the server parsed a tool call whose arguments are deep JSON
        call = {"type": "function", "function": {"name": "search", "arguments": DEEP}}
        return {"content": None, "tool_calls": [call]}
    if kind == 3:  # a lone surrogate inside a tool call's arguments
        args = json.dumps({"code": "print('\ud800')", "query": "\ud800"})
        call = {"type": "function", "function": {"name": "run", "arguments": args}}
        return {"content": None, "tool_calls": [call]}
    return {"content": '<tool_call>{"name": "submit", "arguments": {"code": "x = \\ud800"}}'}


def answer(method: str, path: str, body: dict[str, Any], n: int) -> tuple[int, Any]:
    if path.endswith("/models"):
        return 200, {"data": [{"id": "m"}]}
    message = {"role": "assistant", **hostile_message(n)}
    return 200, {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


@pytest.mark.parametrize(
    ("env", "kwargs"),
    [("CodeSandbox-v0", []), ("Search-v0", ["-k", "protocol=tools"]), ("Search-v0", [])],
    ids=["code", "search-tools", "search-tags"],
)
def test_eval_completes_and_writes_every_episode(
    env: str, kwargs: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    with serve(answer) as (url, seen):
        result = CliRunner().invoke(
            app,
            ["eval", "--env", env, *kwargs, "--policy", f"openai:{url}#m", "--tasks", "4",
             "--max-steps", "5", "--prompt-style", "chat", "--out", str(out)],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    trajectories = load_results(out / "results.jsonl")
    assert len(trajectories) == 4
    steps = [s for t in trajectories for s in t.steps]
    assert len(steps) == 4 * 5 and seen.count >= 20
    assert all(t.status != "error" for t in trajectories), [t.error for t in trajectories]
    assert not any(s.action_valid for s in steps)  # all answered as invalid actions
    # The model's text is on disk exactly as it came, surrogates included.
    texts = [s.response_text for s in steps]
    assert any("\ud800" in t for t in texts) and any(DEEP in t for t in texts)
    (out / "results.jsonl").read_bytes().decode("utf-8")  # valid UTF-8 throughout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["complete"] and summary["metrics"]["success"] == 0.0
