"""Bad model output and bad data files are feedback or typed errors, never a traceback:
tool-call JSON nested 1,000 levels, lone surrogates, trajectory files with the wrong
schema or binary bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentgym.errors import AgentGymError
from agentgym.parsers import MAX_TOOL_CALL_DEPTH, get_parser, json_depth, parse_tool_call_json
from agentgym.trajectory import Step, Trajectory, read_jsonl, write_jsonl

DEEP = "[" * 1000 + "]" * 1000


DEEP_IN_A_STRING = json.dumps(json.dumps({"code": json.loads("[" * 70 + "]" * 70)}))


@pytest.mark.parametrize(
    "payload",
    [
        '{"name": "run", "arguments": {"code": ' + DEEP + "}}",
        '{"name": "run", "arguments": ' + DEEP_IN_A_STRING + "}",
        "[" * 100_000,
        '{"name": "run", "arguments": {"code": "' + "[" * 50_000 + '"}}',
    ],
    ids=["deep", "deep-in-string-arguments", "unclosed-100k", "brackets-in-a-string"],
)
def test_deep_tool_calls_are_errors_not_exceptions(payload: str) -> None:
    result = parse_tool_call_json(payload)
    if payload.endswith('"}}'):  # brackets inside a string are just text
        assert isinstance(result, dict) and result["name"] == "run"
    else:
        assert isinstance(result, str) and ("nested more than" in result or "JSON" in result)
    parsed = get_parser("tool_call").parse(f"<tool_call>{payload}</tool_call>")
    assert parsed.ok == isinstance(result, dict)


def test_nesting_up_to_the_limit_is_fine() -> None:
    ok = '{"name": "f", "arguments": {"x": ' + "[" * 62 + "]" * 62 + "}}"
    call = parse_tool_call_json(ok)
    assert isinstance(call, dict) and json_depth(call) == MAX_TOOL_CALL_DEPTH


@pytest.mark.parametrize(
    "payload",
    [
        '{"name": "run", "arguments": {"code": "\ud800"}}',
        r'{"name": "run", "arguments": {"code": "\ud800"}}',
        r'{"name": "r\udfff", "arguments": {}}',
        r'{"name": "run", "arguments": {"\ud800": 1}}',
    ],
    ids=["raw", "escaped", "in-the-name", "in-a-key"],
)
def test_lone_surrogates_in_tool_calls_are_errors(payload: str) -> None:
    result = parse_tool_call_json(payload)
    assert isinstance(result, str) and "lone surrogate" in result
    # A real pair, escaped, is one character: fine.
    assert parse_tool_call_json(r'{"name": "run", "arguments": {"c": "\ud83d\ude00"}}') == {
        "name": "run",
        "arguments": {"c": "\U0001f600"},
    }


def test_trajectories_with_lone_surrogates_are_written_and_read_back(tmp_path: Path) -> None:
    text = "a\ud800b \udfff \U0001f600 ü"
    step = Step(index=0, response_text=text, action=text, observation=text, info={"k": text})
    traj = Trajectory(env_id="e", task_id="t", steps=[step], metadata={text: text})
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [traj])
    path.read_bytes().decode("utf-8")  # valid UTF-8
    (back,) = read_jsonl(path)
    assert back.steps[0].response_text == text and back.steps[0].info == {"k": text}
    assert back.metadata == {text: text}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\xff\xfe\x00garbage\n", "not UTF-8 text (byte 0xff at 0)"),
        (b"[1, 2]\n", "a JSON list, not an object"),
        (b'{"task_id": "t"}\n', "env_id"),
        (b'{"env_id": "e", "task_id": "t", "steps": "nope"}\n', "steps is str, not list"),
        (b'{"env_id": "e", "task_id": "t", "steps": [1]}\n', "steps[0] is int, not an object"),
        (b'{"env_id": "e", "task_id": "t", "steps": [{"index": 0, "reward": "high"}]}\n',
         "steps[0].reward is str, not float"),
        (b'{"env_id": "e", "task_id": "t", "steps": [{"reward": 1}]}\n', "index"),
        (b'{"env_id": "e", "task_id": "t", "score": true}\n', "score is bool, not float"),
        (b"[" * 100_000 + b"\n", "nested too deeply"),
    ],
)  # fmt: skip
def test_a_bad_row_is_named(tmp_path: Path, content: bytes, why: str) -> None:
    good = Trajectory(env_id="e", task_id="t", steps=[Step(index=0)]).to_json().encode()
    path = tmp_path / "data.jsonl"
    path.write_bytes(good + b"\n" + content + good + b"\n")
    with pytest.raises(AgentGymError, match=r"data.jsonl:2: ") as caught:
        read_jsonl(path)
    assert why in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AgentGymError, match=r"nope\.jsonl: cannot read"):
        read_jsonl(tmp_path / "nope.jsonl")
