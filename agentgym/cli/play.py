"""``agentgym play ID``: a person plays an environment in the terminal.

What a person types is treated like a model's response: when it parses with the env's
action parser (``<action>up</action>``, ``<tool_call>{...}</tool_call>``) the parsed action
goes to the environment, exactly as in training and evaluation; when it does not, the
text itself is the action (so ``up`` works in Sokoban). Lines starting with ``:`` are
commands handled here and never sent to the game (``:help`` lists them); arrow keys edit
the line (readline) or, alone on a line, mean ``up``/``down``/``left``/``right``.
``:prompt`` shows the prompt a model would get at this turn, built by the same
:class:`~agentgym.rollout.prompts.EpisodePrompt` as training, SFT and evaluation.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.markup import escape

from agentgym.cli.common import console, parse_kwargs, user_errors
from agentgym.parsers import ActionParser, render_expert
from agentgym.rollout.prompts import EpisodePrompt, PromptBuilder

COMMANDS = {
    ":help": "this list",
    ":expert": "let the environment's solver play one step",
    ":prompt": "show the prompt a model gets at this turn (messages and tool names)",
    ":new": "give up this episode and start the next one",
    ":quit": "leave (Ctrl-D too)",
}

#: Terminal escape sequences of the arrow keys (normal and application cursor mode).
ARROWS = {
    "\x1b[A": "up",
    "\x1b[B": "down",
    "\x1b[C": "right",
    "\x1b[D": "left",
    "\x1bOA": "up",
    "\x1bOB": "down",
    "\x1bOC": "right",
    "\x1bOD": "left",
}
_ESCAPE = re.compile(r"\x1b(\[[0-9;]*[A-Za-z~]|O[A-Za-z])")


def arrow_action(line: str) -> str | None:
    """``"up"`` etc. for a line that is one arrow key; ``None`` for anything else."""
    return ARROWS.get(line.strip())


def has_escape(line: str) -> bool:
    """Whether ``line`` holds terminal escape sequences (keys that are not text)."""
    return bool(_ESCAPE.search(line)) or "\x1b" in line


@dataclass
class PlaySession:
    """A person's episodes of one environment: turns typed text into actions the way the
    rollout engine turns responses into actions, and keeps the agent's prompt.

    Attributes:
        env: the environment (from :func:`agentgym.make`, turn limit included).
        parser: the env's action parser (or the one asked for).
        prompts: the prompt templates (``:prompt`` shows what they give).
    """

    env: Any
    parser: ActionParser
    prompts: PromptBuilder
    prompt: EpisodePrompt | None = None
    info: dict[str, Any] = field(default_factory=dict)
    observation: str = ""

    def reset(self, seed: int | None, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.observation, self.info = self.env.reset(seed=seed, options=options)
        instruction = str(self.info.get("instruction", ""))
        self.prompt = EpisodePrompt(self.prompts, instruction, self.observation, self.info)
        return self.observation, self.info

    def action_of(self, text: str) -> tuple[str, bool]:
        """The action typed ``text`` stands for, and whether the parser read it (else the
        text itself is the action)."""
        parsed = self.parser.parse(text)
        if parsed.ok and parsed.action is not None:
            return parsed.action, True
        return text.strip(), False

    def expert_response(self) -> str:
        """The expert's next action as a response in the parser's format (with its plan
        step where the env gives one and the format writes them)."""
        base = self.env.unwrapped
        action = base.expert_action()
        plan_step = base.expert_subgoal() if hasattr(base, "expert_subgoal") else None
        return render_expert(self.parser, action, *(plan_step or ()))

    def step(self, text: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Play the typed (or expert) response ``text``."""
        action, _ = self.action_of(text)
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.prompt is not None:
            self.prompt.advance(action, text, obs, info)
        self.observation, self.info = obs, info
        return obs, reward, terminated, truncated, info

    def show_prompt(self) -> str:
        """The current prompt as text: each message with its role, then the tool names."""
        if self.prompt is None:
            return "(no episode)"
        parts = [f"[{m['role']}]\n{m['content']}" for m in self.prompt.messages]
        tools = self.prompt.tools
        if tools:
            names = [t.get("function", t).get("name", "?") for t in tools]
            parts.append("[tools] " + ", ".join(names) + " (schemas go in the system turn)")
        return "\n".join(parts)


def _read_line() -> str:
    with contextlib.suppress(ImportError):  # arrow keys edit the line; a history
        import readline  # noqa: F401
    return console.input("[bold cyan]> [/]")


def register(app: typer.Typer) -> None:
    @app.command("play")
    def play(
        env_id: str = typer.Argument(..., help="Environment id, e.g. Sokoban-v0."),
        task: str = typer.Option(None, help="Task id to play first (default: drawn from --split)."),
        split: str = typer.Option("train", help="Split to draw tasks from."),
        seed: int = typer.Option(None, help="Seed of the first reset (the next ones count up)."),
        episodes: int = typer.Option(0, help="Episodes to play (default: until :quit)."),
        parser: str = typer.Option(None, "--parser", help="Action parser (default: the env's)."),
        prompt_style: str = typer.Option("window", help="window or chat (for :prompt)."),
        kwarg: list[str] = typer.Option(None, "--kwarg", "-k", help="Env argument KEY=VALUE."),
    ) -> None:
        """Play an environment yourself in the terminal.

        Type an action, or a response in the model's format (it is parsed the same way);
        ':help' lists the commands (':expert', ':prompt', ':new', ':quit')."""
        from agentgym.parsers import get_parser
        from agentgym.registry import make
        from agentgym.rollout.prompts import PromptConfig

        with user_errors():
            env = make(env_id, **parse_kwargs(kwarg))
            action_parser = get_parser(
                parser or str(getattr(env.unwrapped, "action_parser", "think_action"))
            )
            session = PlaySession(
                env, action_parser, PromptBuilder(PromptConfig(style=prompt_style), action_parser)
            )
        played = solved = 0
        first = True
        try:
            while not episodes or played < episodes:
                options = {"task_id": task} if (task and first) else {"split": split}
                episode_seed = None if seed is None else seed + played
                with user_errors():
                    session.reset(episode_seed, options)
                first = False
                outcome = _episode(env_id, session)
                if outcome is None:
                    break
                played += 1
                solved += int(outcome)
                console.print(f"[dim]episodes: {played} played, {solved} solved[/]")
        finally:
            env.close()
        console.print(f"bye ({played} episode(s), {solved} solved)")


def _episode(env_id: str, session: PlaySession) -> bool | None:
    """Play one episode; its success, or ``None`` when the person quits."""
    info, obs = session.info, session.observation
    console.rule(f"{env_id} · task {info['task_id']} ({info['split']})")
    console.print(f"[bold]Goal:[/] {escape(str(info.get('instruction', '')))}", highlight=False)
    total, steps = 0.0, 0
    while True:
        console.print(obs, highlight=False, markup=False)
        if info.get("admissible_actions"):
            console.print(
                "[dim]actions: " + escape(", ".join(info["admissible_actions"][:40])) + "[/]",
                highlight=False,
            )
        while True:  # local commands and unreadable keys never reach the game
            try:
                line = _read_line()
            except (EOFError, KeyboardInterrupt):
                console.print()
                return None
            text = _local(line, session)
            if text is not None:
                break
            if line.strip() == ":quit":
                return None
            if line.strip() == ":new":
                return False
        obs, reward, terminated, truncated, info = session.step(text)
        total, steps = total + reward, steps + 1
        if not info.get("action_valid", True):
            console.print("[yellow](invalid action)[/]")
        console.print(f"[dim]reward {reward:+.2f} · total {total:+.2f} · step {steps}[/]")
        if terminated or truncated:
            console.print(obs, highlight=False, markup=False)
            verdict = "[green]success[/]" if info.get("success") else "[red]not solved[/]"
            why = "turn limit" if truncated else "episode over"
            console.print(f"{why}: {verdict}, score {info.get('score', 0):.2f}")
            return bool(info.get("success"))


def _local(line: str, session: PlaySession) -> str | None:
    """The response to play for a typed line, or ``None`` when the line was handled here
    (a command, an unreadable key, an empty line)."""
    from agentgym.errors import NoExpertError

    arrow = arrow_action(line)
    if arrow is not None:
        return arrow
    if has_escape(line):
        console.print("[yellow]that line holds special keys; type the action as text[/]")
        return None
    stripped = line.strip()
    if not stripped:
        return None
    if not stripped.startswith(":"):
        return line
    if stripped == ":help":
        for name, what in COMMANDS.items():
            console.print(f"  {name:<8} {what}", highlight=False)
        console.print(
            "  anything else is played: a response in the model's format "
            f"({escape(session.parser.instructions)}) or the action itself",
            highlight=False,
        )
        return None
    if stripped == ":prompt":
        console.print(session.show_prompt(), highlight=False, markup=False)
        return None
    if stripped == ":expert":
        try:
            response = session.expert_response()
        except NoExpertError as exc:
            console.print(f"[yellow]{escape(str(exc))}[/]")
            return None
        console.print(f"[dim]expert: {escape(response)}[/]", highlight=False)
        return response
    if stripped in (":quit", ":new"):
        return None
    console.print(f"[yellow]unknown command {escape(stripped)}; :help lists them[/]")
    return None
