"""Helpers shared by CLI commands: user errors as clean messages, console, kwargs parsing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console

from agentgym.errors import AgentGymError

console = Console()
err_console = Console(stderr=True)


#: Exit status after Ctrl-C (the shell's convention for SIGINT).
INTERRUPTED = 130


@contextlib.contextmanager
def user_errors(typed_only: bool = False) -> Iterator[None]:
    """Print agentgym's typed errors (and, unless ``typed_only``, ValueErrors and missing
    files) as one red line and exit 2. Long work (a training run) passes ``typed_only``
    so that a bug deep inside still shows its traceback."""
    caught: tuple[type[BaseException], ...] = (
        (AgentGymError,) if typed_only else (AgentGymError, ValueError, FileNotFoundError)
    )
    try:
        yield
    except caught as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc


def parse_kwargs(pairs: list[str] | None) -> dict[str, Any]:
    """``["size=7", "slippery=true"]`` -> ``{"size": 7, "slippery": True}`` (values as JSON,
    falling back to the raw string)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
