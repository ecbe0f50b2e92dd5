"""``agentgym view``: browse a training run or an evaluation in a local web page."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import typer

from agentgym.cli.common import INTERRUPTED, console, err_console, user_errors


def register(app: typer.Typer) -> None:
    @app.command("view")
    def view_command(
        directory: Path = typer.Argument(
            ..., help="A training run directory or an agentgym eval results directory."
        ),
        port: int = typer.Option(8765, "--port", help="TCP port; 0 picks a free one."),
        host: str = typer.Option(
            "127.0.0.1", "--host", help="Interface; the default serves this machine only."
        ),
        open_browser: bool = typer.Option(
            False, "--open", help="Open the page in this machine's web browser."
        ),
    ) -> None:
        """Browse a training run or an evaluation in a local web page.

        Runs: curves, and each sampled iteration's task groups side by side.

        Steps are coloured by advantage; hover one to see its state group.

        Evaluations: per-task results and pass@k. Ctrl-C stops the server.
        """
        from agentgym.viewer import ViewerServer

        with user_errors():
            try:
                server = ViewerServer(directory, host=host, port=port)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                err_console.print(
                    f"[bold red]error:[/] port {port} on {host} is taken; pick another "
                    "with --port (0 picks a free one)",
                    highlight=False,
                )
                raise typer.Exit(2) from exc
        kind = "evaluation" if server.source.kind == "eval" else "training run"
        console.print(
            f"Serving the {kind} {directory} at {server.url}  (Ctrl-C to stop)",
            highlight=False,
            soft_wrap=True,  # one line, so the address can be copied (or read by a script)
        )
        sys.stdout.flush()  # the address, now, even when stdout is a pipe
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED) from None
        finally:
            server.stop()
