"""``agentgym eval``: evaluate a policy on held-out tasks, or compare two evaluations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from agentgym.cli.common import INTERRUPTED, console, err_console, parse_kwargs, user_errors


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        env: str | None = typer.Option(None, "--env", help="Environment id, e.g. Sokoban-v0."),
        policy: str | None = typer.Option(
            None,
            "--policy",
            help="expert, random, hf:DIR, vllm:DIR, openai:URL#MODEL, a model directory or "
            "a training run directory (its latest checkpoint).",
        ),
        split: str | None = typer.Option(None, help="Split to evaluate on. (default: test)"),
        episodes_per_task: int | None = typer.Option(
            None,
            "--episodes-per-task",
            "-K",
            help="Attempts per task (pass@k for k <= K). (default: 1)",
        ),
        tasks: int | None = typer.Option(
            None, "--tasks", help="Tasks to sample from the split. (default: all)"
        ),
        temperature: float | None = typer.Option(None, help="0 = greedy. (default: 0)"),
        top_p: float | None = typer.Option(None, "--top-p", help="(default: 1.0)"),
        max_tokens: int | None = typer.Option(
            None, "--max-tokens", help="Tokens per response. (default: 256)"
        ),
        max_steps: int | None = typer.Option(
            None, "--max-steps", help="Turn limit. (default: the environment's)"
        ),
        seed: int | None = typer.Option(
            None,
            help="Seeds the task sample, episodes and sampling. (default: 0; for a training "
            "run, the seed its trainer drew this split's tasks with)",
        ),
        parser: str | None = typer.Option(
            None, "--parser", help="Action parser. (default: the environment's)"
        ),
        prompt_style: str | None = typer.Option(
            None, "--prompt-style", help="window or chat. (default: window)"
        ),
        history_length: int | None = typer.Option(
            None, "--history-length", help="Window style: past steps shown. (default: 2)"
        ),
        kwarg: list[str] | None = typer.Option(
            None, "--kwarg", "-k", help="Environment argument KEY=VALUE (repeatable)."
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            help="Results directory. (default: runs/eval/ENV-SPLIT-POLICY-sSEED) Running "
            "again with the same settings continues an interrupted evaluation.",
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Continue the evaluation saved in --out with its settings."
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Discard what --out holds and start over."
        ),
        executor: str = typer.Option(
            "inline", help="Where environments run: inline, threads, processes or ray."
        ),
        num_envs: int = typer.Option(16, "--num-envs", help="Episodes played at once."),
        env_timeout: float = typer.Option(60.0, help="Seconds an env call may take."),
        policy_option: list[str] | None = typer.Option(
            None, "--policy-option", help="Policy backend argument KEY=VALUE (repeatable)."
        ),
        compare: tuple[Path, Path] | None = typer.Option(
            None, "--compare", metavar="DIR_A DIR_B", help="Compare two results directories."
        ),
    ) -> None:
        """Evaluate a policy on held-out tasks, or compare two evaluations.

        Reports success and score with 95% intervals, pass@k, steps, invalid actions,
        errors and a breakdown by task type; writes results.jsonl, summary.json and a
        PNG. With --compare DIR_A DIR_B, shows two evaluations side by side."""
        if compare is not None:
            with user_errors():
                _compare(compare[0], compare[1], out)
            return
        given = {
            "env_id": env,
            "policy": policy,
            "split": split,
            "episodes_per_task": episodes_per_task,
            "num_tasks": tasks,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "max_steps": max_steps,
            "seed": seed,
            "parser": parser,
            "prompt_style": prompt_style,
            "history_length": history_length,
            "env_kwargs": parse_kwargs(kwarg) if kwarg else None,
        }
        with user_errors():
            config, out_dir = _config(given, out, resume)
            from agentgym.evaluation.session import Runtime

            runtime = Runtime(
                executor=executor,
                num_envs=num_envs,
                env_timeout=env_timeout,
                policy_options=parse_kwargs(policy_option),
            )
            _run(config, out_dir, runtime, overwrite)


def _default_out(config: Any) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", config.policy.rstrip("/").split("/")[-1])
    return Path("runs") / "eval" / f"{config.env_id}-{config.split}-{slug}-s{config.seed}"


def _config(given: dict[str, Any], out: Path | None, resume: bool) -> tuple[Any, Path]:
    from agentgym.evaluation.config import EvalConfig, resolve_policy_spec
    from agentgym.evaluation.session import load_saved

    explicit = {k: v for k, v in given.items() if v is not None}
    if resume:
        if out is None:
            raise ValueError("--resume needs --out DIR, the results directory to continue")
        saved = load_saved(out)
        if saved is None:
            raise ValueError(f"nothing to resume in {out}: it has no eval_config.json")
        config = saved[0]
        saved_values = config.to_dict()
        if "policy" in explicit:  # saved resolved: a run directory became its checkpoint
            explicit["policy"] = resolve_policy_spec(explicit["policy"])
        clash = {k: (saved_values[k], v) for k, v in explicit.items() if saved_values[k] != v}
        if clash:
            listing = "; ".join(
                f"--{k.replace('_', '-')}: {a!r} saved, {b!r} given" for k, (a, b) in clash.items()
            )
            raise ValueError(
                f"--resume continues {out} with its saved settings ({listing}); "
                "drop those options, or use another --out"
            )
        return config, out
    if "policy" in explicit:  # a training run: evaluate it the way it was trained
        from agentgym.evaluation.config import run_defaults

        explicit = {
            **{
                k: v
                for k, v in run_defaults(explicit["policy"], explicit.get("split", "test")).items()
                if v is not None
            },
            **explicit,
        }
    missing = [name for name in ("env_id", "policy") if name not in explicit]
    if missing:
        flags = " and ".join("--env" if m == "env_id" else "--policy" for m in missing)
        raise ValueError(f"agentgym eval needs {flags} (or --compare DIR_A DIR_B)")
    config = EvalConfig(**explicit)
    model_free = config.policy in ("expert", "random")
    if config.episodes_per_task > 1 and config.temperature == 0 and not model_free:
        err_console.print(
            "[yellow]note:[/] at temperature 0 a deterministic policy answers the same way in "
            "all K episodes of a task; only the environment's randomness differs. Use "
            "--temperature > 0 for a meaningful pass@k.",
            highlight=False,
        )
    return config, out or _default_out(config)


def _run(config: Any, out_dir: Path, runtime: Any, overwrite: bool) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from agentgym.evaluation.session import RESULTS_FILE, load_results, run_in_dir

    progress = Progress(
        TextColumn("[bold]eval[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    bar = progress.add_task(f"{config.env_id} · {config.policy}", total=None)

    def on_start(done: int, total: int) -> None:
        if done:
            err_console.print(f"resuming {out_dir}: {done} of {total} episodes already done")
        progress.update(bar, total=total, completed=done)

    try:
        with progress:
            run = run_in_dir(
                config,
                out_dir,
                runtime,
                overwrite=overwrite,
                progress=lambda k: progress.advance(bar, k),
                on_start=on_start,
            )
    except KeyboardInterrupt:
        kept = len(load_results(out_dir / RESULTS_FILE))
        err_console.print(
            f"\n[yellow]interrupted:[/] {kept} finished episode(s) kept in "
            f"{out_dir / RESULTS_FILE}. Run the same command again, or "
            f"`agentgym eval --resume --out {out_dir}`, to continue."
        )
        raise typer.Exit(INTERRUPTED) from None
    _print_summary(run.summary)
    console.print(
        f"results: {out_dir / RESULTS_FILE}\nsummary: {out_dir / 'summary.json'}\n"
        f"plot:    {run.plot}",
        highlight=False,
    )


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def _ci(metrics: dict[str, float], key: str, fmt=_pct) -> str:
    return f"[{fmt(metrics[key + '_ci_low'])}, {fmt(metrics[key + '_ci_high'])}]"


def _print_summary(summary: dict[str, Any]) -> None:
    from agentgym.evaluation.metrics import task_types

    m = summary["metrics"]
    k = summary["episodes_per_task"]
    asked = summary.get("requested_tasks")
    whole = (
        f" (the whole split; {asked} asked for)" if asked and asked > summary["num_tasks"] else ""
    )
    title = (
        f"{summary['env']['id']} · {summary['split']} · {summary['policy']['spec']}\n"
        f"{summary['num_tasks']} tasks x {k} episode(s){whole}, "
        f"T={summary['sampling']['temperature']}, seed {summary['seed']}"
    )
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_row("success", _pct(m["success"]), _ci(m, "success"))
    table.add_row("score", f"{m['score']:.3f}", _ci(m, "score", lambda x: f"{x:.3f}"))
    for key in sorted((x for x in m if x.startswith("pass@")), key=lambda x: int(x[5:])):
        table.add_row(key, _pct(m[key]), "")
    table.add_row("steps / episode", f"{m['steps']:.2f}", "")
    table.add_row("invalid action rate", _pct(m["invalid_action_rate"]), "")
    table.add_row("tool calls / episode", f"{m['tool_calls']:.2f}", "")
    table.add_row("error rate (counted as failures)", _pct(m["error_rate"]), "")
    table.add_row("truncated", _pct(m["truncated_rate"]), "")
    table.add_row(
        "tokens generated",
        f"{int(m['tokens_generated']):,}",
        f"{m['tokens_per_episode']:.1f} / episode",
    )
    table.add_row("wall time", f"{summary['wall_seconds']:.1f} s", "")
    console.print(table)
    types = task_types(m)
    if types:
        by_type = Table(title="by task type")
        for col in ("type", "episodes", "success", "95% CI", "score"):
            by_type.add_column(col, justify="left" if col == "type" else "right")
        for name in types:
            key = f"type/{name}/"
            by_type.add_row(
                name,
                str(int(m[key + "episodes"])),
                _pct(m[key + "success"]),
                _ci(m, key + "success"),
                f"{m[key + 'score']:.3f}",
            )
        console.print(by_type)
    if summary.get("errors"):
        first = summary["errors"][0]["error"].strip().splitlines()[0]
        err_console.print(
            f"[yellow]warning:[/] {int(m['error_rate'] * m['episodes'])} episode(s) ended in an "
            f"error (counted as failures); first: {first}",
            highlight=False,
        )


def _compare(dir_a: Path, dir_b: Path, out: Path | None) -> None:
    import json

    from agentgym.evaluation.compare import compare_dirs

    comparison = compare_dirs(dir_a, dir_b)
    table = Table(
        title=f"A = {comparison.label_a}\nB = {comparison.label_b}\n"
        + ("paired by task" if comparison.paired else "unpaired")
    )
    table.add_column("metric", no_wrap=True)
    for col in ("A", "B", "A - B", "95% CI of A - B", "excludes 0"):
        table.add_column(col, justify="right")
    for row in comparison.rows:
        rate = row.metric in ("success", "invalid_action_rate", "error_rate", "truncated_rate") or (
            row.metric.startswith("pass@")
        )
        fmt = _pct if rate else (lambda x: f"{x:.3f}")
        if row.diff is None:
            table.add_row(row.metric, fmt(row.a), fmt(row.b), fmt(row.a - row.b), "", "")
            continue
        verdict = "[green]yes[/]" if row.excludes_zero else "no"
        table.add_row(
            row.metric,
            fmt(row.a),
            fmt(row.b),
            fmt(row.diff.estimate),
            f"[{fmt(row.diff.low)}, {fmt(row.diff.high)}]",
            verdict,
        )
    console.print(table)
    for note in comparison.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(comparison.to_dict(), indent=2) + "\n")
        console.print(f"comparison: {out / 'compare.json'}", highlight=False)
