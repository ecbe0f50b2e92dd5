"""``agentgym model tiny``: build a tiny Qwen2 model for CPU runs and tests."""

from __future__ import annotations

from pathlib import Path

import typer

from agentgym.cli.common import console, user_errors


def register(app: typer.Typer) -> None:
    model_app = typer.Typer(help="Build models agentgym can train on a CPU.", no_args_is_help=True)
    app.add_typer(model_app, name="model")

    @model_app.command("tiny")
    def tiny(
        env: list[str] = typer.Option(
            ..., "--env", "-e", help="Environment whose text trains the tokenizer (repeatable)."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Model directory to write."),
        layers: int = typer.Option(2, help="Transformer blocks."),
        hidden: int = typer.Option(128, help="Hidden size, a multiple of 64 (head size 64)."),
        intermediate: int | None = typer.Option(
            None,
            min=1,
            help="MLP inner size (default 4 x hidden); --layers 24 --hidden 1152 "
            "--intermediate 4608 makes about 0.5B parameters.",
        ),
        vocab_size: int = typer.Option(2048, help="Tokenizer vocabulary, special tokens included."),
        max_positions: int = typer.Option(4096, help="Context length."),
        episodes: int = typer.Option(256, help="Episodes played per environment for the corpus."),
        text: list[Path] = typer.Option(
            None, "--text", help="A text file added to the tokenizer corpus (repeatable)."
        ),
        seed: int = typer.Option(0, help="Seeds the episodes and the weight initialisation."),
    ) -> None:
        """Build a tiny Qwen2 model and a tokenizer for an environment.

        Trains a BPE tokenizer on the environments' own text (expert and random episodes
        on the train split) and saves a randomly initialised Qwen2 model (head size 64)
        as a Hugging Face directory that transformers and vLLM load."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from transformers.utils import logging as hf_logging

        from agentgym.models import build_tiny_model, env_corpus
        from agentgym.models.tiny import check_shape
        from agentgym.registry import entry

        with user_errors():
            check_shape(
                layers=layers, hidden=hidden, vocab_size=vocab_size, max_positions=max_positions
            )
            for env_id in env:
                entry(env_id)  # unknown ids fail here, before any work
            extra = [path.read_text() for path in text or []]
            texts: list[str] = list(extra)
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, console=console, transient=True) as progress:
                for env_id in env:
                    task = progress.add_task(f"playing {env_id}", total=episodes)
                    texts.extend(
                        env_corpus(
                            env_id,
                            episodes=episodes,
                            seed=seed,
                            on_episode=lambda _i, task=task: progress.advance(task),
                        )
                    )
            hf_logging.disable_progress_bar()  # this command shows its own status line
            with console.status("building the model") as status:
                info = build_tiny_model(
                    texts,
                    out,
                    layers=layers,
                    hidden=hidden,
                    vocab_size=vocab_size,
                    max_positions=max_positions,
                    intermediate=intermediate,
                    seed=seed,
                    on_stage=lambda stage: status.update(stage),
                )
        console.print(
            f"[green]wrote {info.path}[/]: Qwen2, {info.parameters:,} parameters, "
            f"{info.layers} layers x {info.hidden} hidden ({info.heads} heads of 64), "
            f"vocabulary {info.vocab_size}, context {info.max_positions}; tokenizer trained on "
            f"{info.corpus_texts:,} texts ({info.corpus_chars:,} characters); "
            f"built in {info.seconds:.1f} s",
            highlight=False,
        )
