"""Prompt styles: how an episode's history becomes the messages a policy answers.

``window`` (verl-agent style)
    Each step is its own sample. The prompt is one user message: the task, the last
    ``history_length`` (observation, action) pairs, and the current observation.
    Prompt length stays bounded however long the episode runs.

``chat`` (Search-R1 / RAGEN style)
    One conversation grows turn by turn: system, the first observation, then the agent's
    responses (assistant) and the environment's observations (user or tool messages).
    Only assistant tokens are trained on.

Both render from format strings that configs may override (``env.prompt.*``); the
placeholders are listed on :class:`PromptConfig`.

Multi-agent environments whose agents have their own prompts (roles) name the prompt of the
agent whose turn it is in ``info["agent_prompt"]``; see :func:`agent_prompt`.

One episode's prompts come from one class, :class:`EpisodePrompt`: the rollout engine
(training rollouts and ``agentgym eval``), SFT (re-rendering demonstrations), and
``agentgym play`` (``:prompt``) all build them with it, and
:meth:`EpisodePrompt.token_ids` renders them with the chat template *and the env's tool
schemas* (``info["tools"]``), so a model is fine-tuned on exactly the tokens it is later
sampled with. ``tests/rollout/test_prompt_parity.py`` holds them byte-equal for every
built-in environment and both styles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agentgym.parsers import ActionParser
from agentgym.policies.base import Message

DEFAULT_SYSTEM = "You are an agent solving a task step by step. {format_instructions}"

DEFAULT_WINDOW = (
    "{instruction}\n{history}Current observation (step {step}):\n{observation}\n{admissible}"
)

DEFAULT_CHAT_FIRST = "{instruction}\n\n{observation}\n{admissible}"
DEFAULT_CHAT_NEXT = "{observation}\n{admissible}"


@dataclass(frozen=True)
class PromptConfig:
    """How prompts are built (``env.prompt`` in configs).

    Attributes:
        style: ``window`` or ``chat`` (see the module docstring).
        history_length: window style: how many past (observation, action) pairs to show.
        system: the system message; ``{format_instructions}`` is the action parser's
            one-line answer format. Empty string: no system message.
        window_template: window style user message. Placeholders: ``{instruction}``,
            ``{history}``, ``{observation}``, ``{step}`` (1-based), ``{admissible}``.
        chat_first_template: chat style first user message (``{instruction}``,
            ``{observation}``, ``{admissible}``).
        chat_next_template: chat style later user messages (``{observation}``,
            ``{admissible}``).
        observation_role: chat style role of the environment's messages: ``user`` or
            ``tool`` (for tool-calling agents whose chat template expects tool results).
        show_admissible: list the env's admissible actions, when it has them.
        max_admissible: show at most this many admissible actions.
    """

    style: Literal["window", "chat"] = "window"
    history_length: int = 2
    system: str = DEFAULT_SYSTEM
    window_template: str = DEFAULT_WINDOW
    chat_first_template: str = DEFAULT_CHAT_FIRST
    chat_next_template: str = DEFAULT_CHAT_NEXT
    observation_role: Literal["user", "tool"] = "user"
    show_admissible: bool = True
    max_admissible: int = 50

    def __post_init__(self) -> None:
        if self.style not in ("window", "chat"):
            raise ValueError(f"prompt style must be 'window' or 'chat', got {self.style!r}")
        if self.history_length < 0:
            raise ValueError(f"history_length must be >= 0, got {self.history_length}")
        if self.observation_role not in ("user", "tool"):
            raise ValueError(
                f"observation_role must be 'user' or 'tool', got {self.observation_role!r}"
            )


def agent_prompt(info: Mapping[str, Any] | None, parser: ActionParser) -> str:
    """The prompt of the agent whose turn it is, from ``info["agent_prompt"]`` ("" if none).

    A multi-agent environment whose agents play roles (e.g. ``SearchRoles-v0``: planner,
    searcher, answerer; one shared model) puts the prompt of the agent about to act in every
    ``info`` (reset and step, next to ``agent_id``); ``{format_instructions}`` in it becomes
    the action parser's answer format. The turn is then rendered with it: in ``window``
    style it is the system message (each step is its own sample); in ``chat`` style, where
    the agents share one conversation, it heads the turn's user message (the first one and
    every observation after).
    """
    text = (info or {}).get("agent_prompt")
    if not isinstance(text, str) or not text.strip():
        return ""
    return text.replace("{format_instructions}", parser.instructions)


class PromptBuilder:
    """Renders messages for one episode's turns under a :class:`PromptConfig`."""

    def __init__(self, config: PromptConfig, parser: ActionParser) -> None:
        self.config, self.parser = config, parser

    def _admissible(self, info: dict[str, Any]) -> str:
        actions = info.get("admissible_actions")
        if not self.config.show_admissible or not actions:
            return ""
        shown = list(actions)[: self.config.max_admissible]
        more = len(actions) - len(shown)
        suffix = f" (and {more} more)" if more > 0 else ""
        return "Available actions: " + ", ".join(shown) + suffix + "\n"

    def system_messages(self) -> list[Message]:
        if not self.config.system:
            return []
        text = self.config.system.format(format_instructions=self.parser.instructions)
        return [{"role": "system", "content": text}]

    def window(
        self,
        instruction: str,
        history: Sequence[tuple[str, str]],
        observation: str,
        info: dict[str, Any],
        step: int,
    ) -> list[Message]:
        """The messages for step ``step`` (0-based) in window style."""
        k = self.config.history_length
        shown = list(history)[-k:] if k else []
        if shown:
            first = step - len(shown) + 1
            lines = [f"Your last {len(shown)} step(s):"]
            for i, (obs, action) in enumerate(shown):
                lines.append(f"[Observation {first + i}]\n{obs}\n[Action {first + i}] {action}")
            history_text = "\n".join(lines) + "\n"
        else:
            history_text = ""
        user = self.config.window_template.format(
            instruction=instruction,
            history=history_text,
            observation=observation,
            step=step + 1,
            admissible=self._admissible(info),
        )
        own = agent_prompt(info, self.parser)
        system = [{"role": "system", "content": own}] if own else self.system_messages()
        return [*system, {"role": "user", "content": user}]

    def chat_first(self, instruction: str, observation: str, info: dict[str, Any]) -> list[Message]:
        """The opening messages of a chat-style episode."""
        user = self.config.chat_first_template.format(
            instruction=instruction, observation=observation, admissible=self._admissible(info)
        )
        own = agent_prompt(info, self.parser)
        user = f"{own}\n\n{user}" if own else user
        return [*self.system_messages(), {"role": "user", "content": user}]

    def chat_next(self, observation: str, info: dict[str, Any]) -> list[Message]:
        """The environment's reply after an assistant turn, as new messages."""
        text = self.config.chat_next_template.format(
            observation=observation, admissible=self._admissible(info)
        )
        own = agent_prompt(info, self.parser)
        text = f"{own}\n\n{text}" if own else text
        return [{"role": self.config.observation_role, "content": text}]


def prompt_tools(info: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The tool schemas a prompt is rendered with: the env's ``info["tools"]`` (OpenAI
    function schemas), or ``None`` when it has none."""
    tools = info.get("tools")
    return list(tools) if tools else None


class EpisodePrompt:
    """The prompts of one episode, turn by turn: the one place they are built.

    Start it with the episode's instruction, first observation and reset ``info``; after
    each turn call :meth:`advance` with what the agent did and what the env answered.
    :attr:`messages` is the prompt of the current turn (window or chat style, per the
    builder's config) and :attr:`tools` the tool schemas shown with it;
    :meth:`token_ids` renders both with a tokenizer's chat template.

    Args:
        builder: the prompt templates and action parser.
        instruction: the task's goal (``info["instruction"]`` at reset).
        observation: the first observation.
        info: the reset ``info`` (``admissible_actions``, ``tools``).
    """

    def __init__(
        self, builder: PromptBuilder, instruction: str, observation: str, info: dict[str, Any]
    ) -> None:
        self.builder, self.instruction = builder, instruction
        self.observation, self.info = observation, dict(info)
        self.step = 0
        self.history: list[tuple[str, str]] = []
        self._chat: list[Message] = (
            builder.chat_first(instruction, observation, self.info) if self.chat else []
        )

    @property
    def chat(self) -> bool:
        return self.builder.config.style == "chat"

    @property
    def messages(self) -> list[Message]:
        """The messages of the current turn's prompt (a new list each call)."""
        if self.chat:
            return list(self._chat)
        return self.builder.window(
            self.instruction, self.history, self.observation, self.info, self.step
        )

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        """The tool schemas shown with the current prompt (the env's latest ``info``)."""
        return prompt_tools(self.info)

    def token_ids(self, tokenizer: Any) -> list[int]:
        """The current prompt's token ids: :attr:`messages` and :attr:`tools` rendered
        with the tokenizer's chat template (generation prompt added)."""
        from agentgym.policies.chat import render_prompt_ids

        return render_prompt_ids(tokenizer, self.messages, tools=self.tools)

    def advance(
        self, action: str | None, response: str, observation: str, info: dict[str, Any]
    ) -> list[Message]:
        """Move to the next turn: the agent answered ``response`` (parsed as ``action``,
        ``None`` when it did not parse) and the env (or the engine's parse-error feedback)
        answered ``observation`` with ``info``. Returns the messages that a chat-style
        conversation gained after the assistant's turn (empty in window style)."""
        self.history.append((self.observation, action if action is not None else response))
        self.step += 1
        self.observation, self.info = observation, dict(info)
        if not self.chat:
            return []
        new = self.builder.chat_next(observation, self.info)
        self._chat = [*self._chat, {"role": "assistant", "content": response}, *new]
        return new
