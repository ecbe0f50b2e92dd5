"""``agentgym train`` and ``agentgym plot``."""

from __future__ import annotations

from pathlib import Path

import typer

from agentgym.cli.common import INTERRUPTED, console, err_console, user_errors


def register(app: typer.Typer) -> None:
    @app.command(
        "train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )
    def train(
        ctx: typer.Context,
        config: Path = typer.Argument(..., help="YAML config, e.g. examples/quickstart.yaml."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
        force: bool = typer.Option(
            False,
            "--force",
            help="Start a new run in a directory that holds files (they are moved to "
            "RUN_DIR.N, not deleted).",
        ),
    ) -> None:
        """Train an agent: (tiny model) -> (SFT) -> RL -> held-out test.

        Dotted overrides follow the config, e.g.
        `agentgym train x.yaml algorithm.adv_estimator=hgpo env.rollout.n=8`."""
        from agentgym.config import TrainConfig, load_config

        with user_errors():
            cfg = load_config(TrainConfig, config, list(ctx.args))
        from agentgym.trainers.rl import train as run

        try:
            with user_errors(typed_only=True):
                result = run(cfg, resume=resume, console=console, force=force)
        except KeyboardInterrupt:
            _report_interrupt(cfg, config, list(ctx.args))
            raise typer.Exit(INTERRUPTED) from None
        _report(result)

    @app.command("sft", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def sft(
        ctx: typer.Context,
        config: Path = typer.Argument(..., help="YAML config (its sft and policy sections)."),
        data: str = typer.Option(
            None, help="'expert' or a JSONL file from `agentgym rollout` (default: sft.data)."
        ),
        force: bool = typer.Option(
            False, "--force", help="Use a run directory that holds files (moved to RUN_DIR.N)."
        ),
    ) -> None:
        """Supervised fine-tuning only: the config's SFT stage, no RL.

        The model is saved in RUN_DIR/sft-model; start RL from it with
        policy.model=RUN_DIR/sft-model."""
        from agentgym.config import TrainConfig, load_config

        overrides = ["sft.enabled=true", "trainer.total_iterations=0", *ctx.args]
        if data:
            overrides.append(f"sft.data={data}")
        with user_errors():
            cfg = load_config(TrainConfig, config, overrides)
        from agentgym.trainers.rl import train as run

        with user_errors(typed_only=True):
            result = run(cfg, console=console, force=force)
        from agentgym.runs import RunDir

        console.print(f"SFT model: {RunDir(result.run_dir).sft_model}")
        _report(result)
        if result.test_before:
            console.print(f"[bold]held-out (test) after SFT: {_result(result.test_before)}[/]")
        console.print(f"evaluate it: agentgym eval --policy {result.run_dir}", highlight=False)

    @app.command("plot")
    def plot(
        run_dir: Path = typer.Argument(..., help="A training run directory."),
        out: Path = typer.Option(None, help="Where to write PNGs (default RUN_DIR/plots)."),
    ) -> None:
        """Write PNG curves of a run (success, reward, entropy, KL, grad norm, advantages)."""
        from agentgym.trainers.plots import plot_run

        with user_errors():
            paths = plot_run(run_dir, out)
        for path in paths:
            console.print(f"wrote {path}")


def _report_interrupt(cfg, config: Path, overrides: list[str]) -> None:
    """Say what Ctrl-C kept: the last checkpoint, and the command that continues from it."""
    import shlex

    from agentgym.trainers.checkpoint import checkpoint_iteration, latest_checkpoint

    run_dir = Path(cfg.trainer.out_dir)
    ckpt = latest_checkpoint(run_dir)
    command = shlex.join(["agentgym", "train", str(config), *overrides, "--resume"])
    if ckpt is None:
        err_console.print(
            f"\n[yellow]interrupted[/] before the first checkpoint of {run_dir}; "
            f"`{command}` starts it again.",
            highlight=False,
            soft_wrap=True,  # never break the command in two (copy-paste)
        )
        return
    err_console.print(
        f"\n[yellow]interrupted:[/] the last checkpoint is iteration "
        f"{checkpoint_iteration(ckpt)} ({ckpt}); the iteration in flight is lost. "
        f"Continue with `{command}`.",
        highlight=False,
        soft_wrap=True,  # never break the command in two (copy-paste)
    )


def _result(m: dict[str, float]) -> str:
    """``45.0% [33.1%, 57.4%] on 45 tasks x 1 episode, 1.8 tool calls/episode``."""
    text = (
        f"success {m['test/success']:.1%} "
        f"[{m['test/success_ci_low']:.1%}, {m['test/success_ci_high']:.1%}]"
    )
    if "test/tasks" in m and "test/episodes" in m:
        tasks, episodes = int(m["test/tasks"]), int(m["test/episodes"])
        text += f" on {tasks} tasks x {episodes // max(tasks, 1)} episode(s)"
    if m.get("test/tool_calls"):
        text += f", {m['test/tool_calls']:.2f} tool calls/episode"
    return text


def _report(result) -> None:
    before, after = result.test_before, result.test_after
    console.print(f"run directory: {result.run_dir}  ({result.iterations} iterations)")
    if before and after:
        b, a = before["test/success"], after["test/success"]
        console.print(f"[bold]held-out (test) before RL: {_result(before)}[/]", highlight=False)
        console.print(
            f"[bold]held-out (test) after RL:  {_result(after)}  ({a - b:+.1%})[/]",
            highlight=False,
        )
    plots = Path(result.run_dir) / "plots"
    if plots.is_dir():
        console.print(f"plots: {plots}/ (overview.png, success.png, ...)", highlight=False)
