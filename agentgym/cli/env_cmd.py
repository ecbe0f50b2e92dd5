"""``agentgym env list`` and ``agentgym env check``."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import typer
from rich.table import Table

from agentgym.cli.common import console, parse_kwargs, user_errors

_PARENTHETICAL = re.compile(r"\s*\([^()]*\)")


def _describe(env: object) -> str:
    """An env's (or env class's) ``description``, else its docstring's first line."""
    doc = (env.__doc__ if isinstance(env, type) else type(env).__doc__) or ""
    return getattr(env, "description", "") or (doc.strip().splitlines() or [""])[0]


def register(app: typer.Typer) -> None:
    env_app = typer.Typer(help="List and check registered environments.", no_args_is_help=True)
    app.add_typer(env_app, name="env")

    @env_app.command("list")
    def list_envs(
        ids: list[str] = typer.Argument(
            None, help="Only these ids (or ids containing these words, case-insensitive)."
        ),
        counts: bool = typer.Option(True, help="Build each env to count its tasks per split."),
    ) -> None:
        """List registered environments: id, description and tasks per split."""
        from agentgym.env import SPLITS
        from agentgym.registry import default_max_steps, entries, env_class, make

        listed = sorted(entries().items())
        if ids:
            words = [i.lower() for i in ids]
            listed = [(k, e) for k, e in listed if any(w in k.lower() for w in words)]
            if not listed:
                known = ", ".join(sorted(entries()))
                console.print(f"[red]no environment matches {' '.join(ids)}[/]; known: {known}")
                raise typer.Exit(2)
        # plugins say where they come from; with agentgym's own envs only, the column is noise
        show_source = any(entry.source != "agentgym" for _, entry in listed)
        # a narrow terminal gets descriptions without their parenthetical details
        short = console.width < 120
        table = Table(title="agentgym environments")
        table.add_column("id", no_wrap=True)
        table.add_column("description", overflow="fold", ratio=1)
        for col in (*SPLITS, "steps"):
            table.add_column(col, justify="right")
        if show_source:
            table.add_column("source", no_wrap=True)

        def row_of(env_id: str) -> tuple[str, list[str]]:
            """Description and tasks per split of one env (never raises)."""
            sizes = ["?"] * len(SPLITS)
            if not counts:  # the class says what it is without building anything
                try:
                    return _describe(env_class(env_id)), sizes
                except Exception as exc:
                    return f"[red]cannot be imported: {type(exc).__name__}: {exc}[/]", sizes
            try:
                env = make(env_id)
                try:
                    base = env.unwrapped
                    return _describe(base), [str(len(base.task_ids(s))) for s in SPLITS]
                finally:
                    env.close()
            except Exception as exc:  # one broken env must not hide the others
                return f"[red]cannot be built: {type(exc).__name__}: {exc}[/]", sizes

        # Envs are built side by side: most of the time goes to imports and to servers
        # (MCP, OpenEnv) starting in subprocesses, which overlap.
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(listed)))) as pool:
            rows = list(pool.map(row_of, [env_id for env_id, _ in listed]))
        for (env_id, entry), (description, sizes) in zip(listed, rows, strict=True):
            if short and not description.startswith("[red]"):
                description = _PARENTHETICAL.sub("", description)
            try:
                steps = str(default_max_steps(env_id))
            except Exception:  # an env whose class cannot even be imported
                steps = "?"
            row = [entry.id, description, *sizes, steps]
            table.add_row(*row, *([entry.source] if show_source else []))
        console.print(table)

    @env_app.command("check")
    def check(
        env_id: str = typer.Argument(..., help="Environment id, e.g. Sokoban-v0."),
        tasks_per_split: int = typer.Option(3, help="Tasks of each split to play."),
        max_steps: int = typer.Option(50, help="Steps per exploratory episode."),
        seed: int = typer.Option(0),
        kwarg: list[str] = typer.Option(None, "--kwarg", "-k", help="Env argument KEY=VALUE."),
    ) -> None:
        """Run the conformance checker (Gymnasium's checks plus the text-env rules)."""
        from agentgym.checker import check_env

        with user_errors():
            report = check_env(
                env_id,
                tasks_per_split=tasks_per_split,
                max_steps=max_steps,
                seed=seed,
                raise_on_failure=False,
                **parse_kwargs(kwarg),
            )
        skipped = _not_applicable(env_id)
        for name, error, seconds in report.results:
            if error is None and name in skipped:
                console.print(f"[dim]SKIP {name:<16} {skipped[name]}[/]", highlight=False)
                continue
            mark = "[green]PASS[/]" if error is None else "[red]FAIL[/]"
            console.print(f"{mark} {name:<16} {seconds * 1000:8.1f} ms", highlight=False)
            if error:
                console.print(f"     {error}", style="red", highlight=False, markup=False)
        if not report.ok:
            console.print(f"[red]{env_id}: {len(report.failures)} rule(s) broken[/]")
            raise typer.Exit(1)
        console.print(f"[green]{env_id} follows the text-env contract[/]")


def _not_applicable(env_id: str) -> dict[str, str]:
    """Rules the checker passes without testing anything for this env's class: ``expert``
    (no expert) and ``snapshot`` (no snapshots), each with the reason shown."""
    from agentgym.env import TextEnv
    from agentgym.registry import env_class

    try:
        cls = env_class(env_id)
    except Exception:  # the check itself reported what is wrong with the id
        return {}
    if not (isinstance(cls, type) and issubclass(cls, TextEnv)):
        return {"expert": "no expert (not a TextEnv)", "snapshot": "no snapshots"}
    out = {}
    if cls._expert_action is TextEnv._expert_action:
        out["expert"] = "no expert (the env has no _expert_action)"
    if cls._snapshot_state is TextEnv._snapshot_state:
        out["snapshot"] = "no snapshots (the env has no _snapshot_state)"
    return out
