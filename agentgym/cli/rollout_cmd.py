"""``agentgym rollout``: play groups of episodes with a policy and write the trajectories."""

from __future__ import annotations

from pathlib import Path

import typer

from agentgym.cli.common import console, err_console, parse_kwargs, user_errors


def register(app: typer.Typer) -> None:
    @app.command("rollout")
    def rollout(
        env: str = typer.Option(..., "--env", help="Environment id, e.g. Sokoban-v0."),
        policy: str = typer.Option(
            ...,
            help="Policy spec: hf:DIR, vllm:DIR, openai:URL#MODEL, "
            "expert, random, or a training run directory.",
        ),
        out: Path = typer.Option(..., help="JSONL file to write (one trajectory per line)."),
        tasks: int = typer.Option(4, help="Tasks to sample (each is one group)."),
        n: int = typer.Option(8, "--n", help="Rollouts per task (the group size)."),
        split: str = typer.Option("train", help="Split the tasks come from."),
        seed: int = typer.Option(0, help="Seeds the task sample and sampling."),
        temperature: float = typer.Option(1.0, help="0 = greedy."),
        top_p: float = typer.Option(1.0, "--top-p"),
        max_tokens: int = typer.Option(256, help="Response length limit."),
        max_steps: int = typer.Option(None, help="Turn limit (default: the env's)."),
        parser: str = typer.Option(None, help="Action parser (default: the env's)."),
        prompt_style: str = typer.Option(
            None, help="window or chat (default: a training run's, else window)."
        ),
        history_length: int = typer.Option(
            None, help="Window style: past steps shown (default: a training run's, else 2)."
        ),
        executor: str = typer.Option(
            "inline", help="Where envs run: inline, threads, processes or ray."
        ),
        num_envs: int = typer.Option(64, help="Episodes played at once."),
        kwarg: list[str] = typer.Option(None, "--kwarg", "-k", help="Env argument KEY=VALUE."),
        policy_option: list[str] = typer.Option(
            None, "--policy-option", help="Policy backend argument KEY=VALUE."
        ),
    ) -> None:
        """Roll out TASKS x N episodes and write them to a JSONL file.

        Token ids and log-probs are included: for inspection, SFT data and debugging."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from agentgym.evaluation.config import EvalConfig, run_defaults
        from agentgym.evaluation.session import Runtime, build_engine, resolve_config
        from agentgym.rollout import EnvSpec, sample_tasks
        from agentgym.trajectory import write_jsonl

        with user_errors():
            given = {
                "env_id": env,
                "policy": policy,
                "split": split,
                "episodes_per_task": n,
                "num_tasks": tasks,
                "seed": seed,
                "temperature": temperature,
                "top_p": top_p,
                "max_tokens": max_tokens,
                "max_steps": max_steps,
                "parser": parser,
                "prompt_style": prompt_style,
                "history_length": history_length,
                "env_kwargs": parse_kwargs(kwarg),
            }
            # a run's settings, but not its evaluation seed: rollouts sample with --seed
            defaults = {
                k: v for k, v in run_defaults(policy).items() if v is not None and k != "seed"
            }
            config = resolve_config(
                EvalConfig(
                    **{**defaults, **{k: v for k, v in given.items() if v is not None and v != {}}}
                )
            )
            runtime = Runtime(
                executor=executor, num_envs=num_envs, policy_options=parse_kwargs(policy_option)
            )
            engine = build_engine(config, runtime, tasks * n)
            spec = EnvSpec(config.env_id, dict(config.env_kwargs), config.max_steps)
            requests = sample_tasks(spec, split, tasks, seed=seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("")
        progress = Progress(
            "[bold]rollout[/]",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
        )
        try:
            with progress:
                bar = progress.add_task("episodes", total=tasks * n)
                trajs = engine.run(
                    requests,
                    n=n,
                    metadata={"policy": config.policy, "temperature": temperature},
                    on_trajectory=lambda t: write_jsonl(out, [t], append=True),
                    progress=lambda k: progress.advance(bar, k),
                )
        finally:
            engine.close()
            engine.policy.close()
        ok = [t for t in trajs if t.status != "error"]
        success = sum(t.success for t in trajs) / max(len(trajs), 1)
        console.print(
            f"wrote {len(trajs)} trajectories ({len(trajs) - len(ok)} errors) to {out}; "
            f"success {success:.1%}, {sum(t.num_steps for t in trajs)} steps, "
            f"{sum(t.num_generated_tokens for t in trajs)} tokens generated"
        )
