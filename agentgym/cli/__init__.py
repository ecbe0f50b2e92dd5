"""The ``agentgym`` command line.

Each command lives in its own module under ``agentgym.cli`` with a ``register(app)``
function; modules import heavy libraries (torch, vLLM) inside the commands, so
``agentgym --help`` and ``agentgym env list`` start fast.
"""

from __future__ import annotations

import importlib

import typer

from agentgym.runtime import configure_cpu_runtime

configure_cpu_runtime()  # the CLI is a process entry point; see agentgym.runtime

app = typer.Typer(
    name="agentgym",
    help="Train and evaluate LLM agents on multi-turn tasks with reinforcement learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: Command modules, in the order their commands appear in ``--help``.
_COMMAND_MODULES = (
    "agentgym.cli.env_cmd",
    "agentgym.cli.play",
    "agentgym.cli.model",
    "agentgym.cli.eval_cmd",
    "agentgym.cli.rollout_cmd",
    "agentgym.cli.train",
    "agentgym.cli.view_cmd",
    "agentgym.cli.retriever",
)

for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def _show_version(value: bool) -> None:
    if value:
        from agentgym import __version__

        typer.echo(f"agentgym {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Train and evaluate LLM agents on multi-turn tasks with reinforcement learning."""


def main() -> None:
    """Entry point of the ``agentgym`` console script."""
    app()
