"""``agentgym play ID``: a person plays an environment in the terminal."""

from __future__ import annotations

import typer
from rich.markup import escape

from agentgym.cli.common import console, parse_kwargs, user_errors


def register(app: typer.Typer) -> None:
    @app.command("play")
    def play(
        env_id: str = typer.Argument(..., help="Environment id, e.g. Sokoban-v0."),
        task: str = typer.Option(None, help="Task id to play (default: drawn from --split)."),
        split: str = typer.Option("train", help="Split to draw a task from."),
        seed: int = typer.Option(None, help="Seed for reset."),
        kwarg: list[str] = typer.Option(None, "--kwarg", "-k", help="Env argument KEY=VALUE."),
    ) -> None:
        """Play an environment yourself in the terminal.

        Type an action; ':expert' asks the solver, ':quit' leaves."""
        from agentgym.errors import NoExpertError
        from agentgym.registry import make

        with user_errors():
            env = make(env_id, **parse_kwargs(kwarg))
            options = {"task_id": task} if task else {"split": split}
            obs, info = env.reset(seed=seed, options=options)
        console.rule(f"{env_id} · task {info['task_id']} ({info['split']})")
        console.print(f"[bold]Goal:[/] {escape(info['instruction'])}", highlight=False)
        total, steps = 0.0, 0
        while True:
            console.print(obs, highlight=False, markup=False)
            if info.get("admissible_actions"):
                console.print(
                    "[dim]actions: " + escape(", ".join(info["admissible_actions"][:40])) + "[/]",
                    highlight=False,
                )
            try:
                action = console.input("[bold cyan]> [/]")
            except (EOFError, KeyboardInterrupt):
                console.print("\nbye")
                return
            if action.strip() == ":quit":
                return
            if action.strip() == ":expert":
                try:
                    action = env.unwrapped.expert_action()
                except NoExpertError as exc:
                    console.print(f"[yellow]{exc}[/]")
                    continue
                console.print(f"[dim]expert: {escape(action)}[/]", highlight=False)
            obs, reward, terminated, truncated, info = env.step(action)
            total, steps = total + reward, steps + 1
            if not info.get("action_valid", True):
                console.print("[yellow](invalid action)[/]")
            console.print(f"[dim]reward {reward:+.2f} · total {total:+.2f} · step {steps}[/]")
            if terminated or truncated:
                console.print(obs, highlight=False, markup=False)
                verdict = "[green]success[/]" if info.get("success") else "[red]not solved[/]"
                why = "turn limit" if truncated else "episode over"
                console.print(f"{why}: {verdict}, score {info.get('score', 0):.2f}")
                return
