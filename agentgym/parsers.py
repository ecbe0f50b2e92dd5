"""Action parsers: from a model's response text to the action an environment receives.

A parser is small and pluggable (``env.action_parser`` in configs). Each one:

* ``parse(text) -> ParsedAction``: the action, or ``None`` with a reason the agent is told;
* ``render(action) -> str``: the response a well-behaved agent would write for ``action``
  (used to turn expert actions into demonstrations, so SFT teaches the same format);
* ``instructions``: one sentence for the system prompt saying how to answer.

Built in:

``think_action``  ``<think>...</think><action>...</action>`` (verl-agent / RAGEN style);
                  the action is the text inside the last complete ``<action>`` tag.
``search_r1``     Search-R1's ``<search>query</search>`` / ``<answer>text</answer>``; the
                  first complete tag wins and is passed on as that tag.
``tool_call``     Hermes/Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
                  passed on as canonical JSON ``{"name": ..., "arguments": ...}``.
``raw``           the whole response, stripped.
``hiper``         HiPER's ``<switch>KEEP|SWITCH</switch><subgoal>..</subgoal><action>..</action>``
                  (:mod:`agentgym.providers.hiper`); the action is the last ``<action>``.

Add one with :func:`register_parser`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentgym.registries import Registry


@dataclass(frozen=True)
class ParsedAction:
    """The result of parsing a response: ``action`` or, when it is ``None``, ``error``."""

    action: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.action is not None


class ActionParser:
    """Base class of action parsers (see the module docstring)."""

    name: str = ""
    instructions: str = ""

    def parse(self, text: str) -> ParsedAction:
        raise NotImplementedError

    def render(self, action: str) -> str:
        raise NotImplementedError


def render_expert(
    parser: ActionParser, action: str, subgoal: str | None = None, starts: bool = True
) -> str:
    """The expert's ``action`` as a response in ``parser``'s format. A parser that writes
    plan steps (``renders_subgoals``, e.g. ``hiper``) also gets the expert's ``subgoal`` and
    whether the action ``starts`` it (:meth:`agentgym.env.TextEnv.expert_subgoal`), where
    the environment gives one."""
    if subgoal and getattr(parser, "renders_subgoals", False):
        return parser.render(action, subgoal=subgoal, starts=starts)  # type: ignore[call-arg]
    return parser.render(action)


_TAG_CACHE: dict[str, re.Pattern[str]] = {}


def find_tags(text: str, tag: str) -> list[str]:
    """Contents of every complete ``<tag>...</tag>`` in ``text``, in order (non-greedy)."""
    if tag not in _TAG_CACHE:
        _TAG_CACHE[tag] = re.compile(rf"<{tag}>(.*?)</{tag}>", re.DOTALL)
    return _TAG_CACHE[tag].findall(text)


class ThinkActionParser(ActionParser):
    name = "think_action"
    instructions = (
        "Think step by step inside <think> </think>, then give exactly one action inside "
        "<action> </action>."
    )

    def parse(self, text: str) -> ParsedAction:
        actions = [a.strip() for a in find_tags(text, "action")]
        if not actions or not actions[-1]:
            return ParsedAction(None, "no <action>...</action> in the response")
        return ParsedAction(actions[-1])

    def render(self, action: str) -> str:
        return f"<action>{action}</action>"


class SearchR1Parser(ActionParser):
    """Search-R1's tags; the first complete ``<search>`` or ``<answer>`` tag wins."""

    name = "search_r1"
    instructions = (
        "Reason inside <think> </think>. To look something up, write <search> query </search> "
        "and the results come back inside <information> </information>. When you know the "
        "answer, write <answer> answer </answer>."
    )
    _pattern = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)

    def parse(self, text: str) -> ParsedAction:
        match = self._pattern.search(text)
        if match is None:
            return ParsedAction(None, "no <search>...</search> or <answer>...</answer> tag")
        return ParsedAction(f"<{match.group(1)}>{match.group(2).strip()}</{match.group(1)}>")

    def render(self, action: str) -> str:
        return action


#: The deepest nesting a tool call's JSON may have. Deeper is an invalid action: Python's
#: JSON reader and writer recurse, and ~1,000 levels would raise ``RecursionError`` here
#: or in whatever handles the call next.
MAX_TOOL_CALL_DEPTH = 64
_TOO_DEEP = f"the tool call's JSON is nested more than {MAX_TOOL_CALL_DEPTH} levels deep"
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> int:
    """The index of the first lone surrogate in ``text`` (``"\\ud800"``: not a character,
    and no UTF-8 writer accepts it), or -1."""
    match = _SURROGATE.search(text)
    return -1 if match is None else match.start()


def json_depth(value: Any, limit: int = MAX_TOOL_CALL_DEPTH) -> int:
    """How deeply lists and dicts nest in ``value`` (a scalar is 0), counted without
    recursion; the count stops once it passes ``limit``."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        todo.extend((child, depth + 1) for child in children)
    return deepest


def _load_json(text: str) -> Any:
    """``json.loads``; nesting past :data:`MAX_TOOL_CALL_DEPTH` and lone surrogates in
    the decoded strings are a ``ValueError`` with the reason."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None
    if json_depth(value) > MAX_TOOL_CALL_DEPTH:
        raise ValueError(_TOO_DEEP)
    # Escapes decode too ("\\ud800"): search what was decoded, keys included.
    if lone_surrogate(json.dumps(value, ensure_ascii=False)) >= 0:
        raise ValueError(
            "the tool call contains a lone surrogate (e.g. \\ud800), which is not text"
        )
    return value


def parse_tool_call_json(payload: str) -> dict[str, Any] | str:
    """``{"name", "arguments"}`` from a tool-call JSON payload, or an error message.

    Any text gives one or the other, never an exception: invalid JSON, JSON nested past
    :data:`MAX_TOOL_CALL_DEPTH` and lone surrogates (``"\\ud800"``, which no UTF-8 writer
    accepts) are error messages.
    """
    try:
        call = _load_json(payload)
    except json.JSONDecodeError as exc:
        return f"the tool call is not valid JSON ({exc.msg} at character {exc.pos})"
    except ValueError as exc:
        return str(exc)
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return 'a tool call must be a JSON object with a "name" and "arguments"'
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):  # some models emit the arguments JSON-encoded
        try:
            arguments = _load_json(arguments)
        except json.JSONDecodeError:
            return "the tool call's arguments are a string that is not JSON"
        except ValueError as exc:
            return str(exc)
    if not isinstance(arguments, dict):
        return 'the tool call\'s "arguments" must be a JSON object'
    return {"name": call["name"], "arguments": arguments}


class ToolCallParser(ActionParser):
    """Hermes/Qwen tool calls; the first ``<tool_call>`` is the action."""

    name = "tool_call"
    instructions = (
        'Call a tool by writing <tool_call>{"name": tool name, "arguments": {...}}</tool_call>.'
    )

    def parse(self, text: str) -> ParsedAction:
        calls = find_tags(text, "tool_call")
        if not calls:
            return ParsedAction(None, "no <tool_call>...</tool_call> in the response")
        call = parse_tool_call_json(calls[0].strip())
        if isinstance(call, str):
            return ParsedAction(None, call)
        return ParsedAction(json.dumps(call, ensure_ascii=False))

    def render(self, action: str) -> str:
        return f"<tool_call>{action}</tool_call>"


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """A tool call as an environment's ``_step`` receives it from the ``tool_call`` parser
    (canonical JSON ``{"name": ..., "arguments": {...}}``). Return this from
    ``_expert_action`` of a tool environment: the engine renders it as the response
    ``<tool_call>{...}</tool_call>`` for demonstrations (:meth:`ToolCallParser.render`)."""
    return json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)


def read_tool_call(action: str) -> dict[str, Any] | str:
    """The tool call in an action an environment's ``_step`` received, as ``{"name",
    "arguments"}``, or an error message (never an exception) to give back as feedback.

    Takes every form a tool call reaches an environment in: the ``tool_call`` parser's
    canonical JSON (training, ``agentgym eval``, ``agentgym play`` when the typed text
    parses), a whole response with ``<tool_call>...</tool_call>`` (the first one counts:
    an env used directly, or a ``raw`` parser), and the bare JSON object typed in
    ``agentgym play``.
    """
    calls = find_tags(action, "tool_call")
    payload = calls[0].strip() if calls else action.strip()
    if not payload.startswith("{"):
        return 'no tool call: write <tool_call>{"name": ..., "arguments": {...}}</tool_call>'
    return parse_tool_call_json(payload)


class RawParser(ActionParser):
    name = "raw"
    instructions = "Answer with the action only."

    def parse(self, text: str) -> ParsedAction:
        stripped = text.strip()
        return ParsedAction(stripped) if stripped else ParsedAction(None, "the response is empty")

    def render(self, action: str) -> str:
        return action


PARSERS: Registry[type[ActionParser]] = Registry("action parser")


def register_parser(name: str) -> Callable[[type[ActionParser]], type[ActionParser]]:
    """Class decorator: ``@register_parser("my_format")``. A name registers once."""

    def deco(cls: type[ActionParser]) -> type[ActionParser]:
        PARSERS.register(name, cls)
        cls.name = name
        return cls

    return deco


for _cls in (ThinkActionParser, SearchR1Parser, ToolCallParser, RawParser):
    register_parser(_cls.name)(_cls)
# HiPER's plan-execute format (switch/subgoal/action) lives with its critic; loaded on use.
PARSERS.register("hiper", "agentgym.providers.hiper:HiPERParser")


def get_parser(name: str) -> ActionParser:
    """A new parser by name; an unknown name lists the registered ones."""
    return PARSERS.get(name)()


def list_parsers() -> list[str]:
    return PARSERS.names()
