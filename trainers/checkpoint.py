"""Checkpoints: a Hugging Face model directory plus the trainer's state, resumable.

The layout is :mod:`agentgym.runs`'s (``RUN_DIR/checkpoints/iter_000010/{model,
trainer_state.pt, checkpoint.json}`` and ``latest``). A checkpoint is written to a
temporary directory and renamed into place, and ``latest`` is switched only after that,
so a run killed at any moment (even SIGKILL) leaves the previous checkpoint intact and
loses at most the iteration in flight. Pruning removes only checkpoints the same run
wrote (their ``checkpoint.json`` carries its id) that are older than the newest ``keep``.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentgym.runs import (
    CHECKPOINT_INFO,
    LATEST,
    MODEL,
    TRAINER_STATE,
    RunDir,
    RunDirError,
    checkpoint_info,
    write_json,
)
from agentgym.trainers.model import base_model, save_pretrained

__all__ = [
    "checkpoint_dir",
    "checkpoint_iteration",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]


def checkpoint_dir(run_dir: str | Path, iteration: int) -> Path:
    return RunDir(run_dir).checkpoint(iteration)


def checkpoint_iteration(path: str | Path) -> int:
    """The iteration a checkpoint directory was saved after."""
    return int(checkpoint_info(Path(path))["iteration"])


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest intact checkpoint of a run (``latest``, or the newest complete one when
    ``latest`` dangles), or ``None``."""
    for path, _why in RunDir(run_dir).resume_candidates():
        return path
    return None


def rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(
    run_dir: str | Path,
    iteration: int,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, Any],
    keep: int = 2,
    run_id: str | None = None,
    consolidated: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``iteration`` atomically, point ``latest`` at it, prune old ones
    (only those of ``run_id``, see the module docstring).

    ``consolidated`` (:func:`agentgym.trainers.fsdp.consolidated_state`, for a sharded
    model) gives the full weights and the optimizer state keyed by parameter name, which
    are written instead of the model's own (sharded) ones."""
    run = RunDir(run_dir)
    final = run.checkpoint(iteration)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)  # our own unfinished write of this very checkpoint
    tmp.mkdir(parents=True)
    if consolidated is None:
        save_pretrained(model, tokenizer, str(tmp / MODEL))
        trainable = {
            k: v.detach().cpu() for k, v in base_model(model).named_parameters() if v.requires_grad
        }
        optimizer_state, layout = optimizer.state_dict(), {}
    else:  # FSDP: the gathered weights; the optimizer state by name, for any world size
        full = consolidated["model"]
        save_pretrained(model, tokenizer, str(tmp / MODEL), state_dict=full)
        names = [k for k, v in base_model(model).named_parameters() if v.requires_grad]
        trainable = {k: full[k].detach().cpu() for k in names}
        optimizer_state, layout = consolidated["optimizer"], {"optimizer_format": "fqn"}
    torch.save(
        {
            "iteration": iteration,
            "trainable": trainable,
            "optimizer": optimizer_state,
            **layout,
            "rng": rng_state(),
            **extra,
        },
        tmp / TRAINER_STATE,
    )
    write_json(tmp / CHECKPOINT_INFO, {"iteration": iteration, "run_id": run_id})
    if final.exists():
        shutil.rmtree(final)  # the same iteration of the same run, written again
    os.replace(tmp, final)
    link = final.parent / LATEST
    tmp_link = final.parent / f".{LATEST}.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(final.name)
    os.replace(tmp_link, link)
    _prune(run, iteration, keep, run_id)
    return final


def _prune(run: RunDir, iteration: int, keep: int, run_id: str | None) -> None:
    """Delete this run's checkpoints older than the newest ``keep`` it wrote up to
    ``iteration``; checkpoints of another run, or newer ones, are never touched."""
    ours = []
    for path in run.checkpoint_dirs():
        try:
            info = checkpoint_info(path)
        except RunDirError:
            continue
        if info.get("run_id") == run_id and info["iteration"] <= iteration:
            ours.append((info["iteration"], path))
    ours.sort()
    for _it, old in ours[: max(0, len(ours) - max(keep, 1))]:
        shutil.rmtree(old, ignore_errors=True)


def read_trainer_state(path: str | Path) -> dict:
    """A checkpoint's ``trainer_state.pt``; :class:`~agentgym.runs.RunDirError` naming the
    file when it is missing, truncated or not a trainer state."""
    file = Path(path) / TRAINER_STATE
    try:
        state = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise RunDirError(f"{file} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict) or not {"trainable", "optimizer", "rng", "iteration"} <= set(
        state
    ):
        raise RunDirError(f"{file} is not a trainer state written by agentgym")
    return state


def load_checkpoint(path: str | Path, model: Any, optimizer: torch.optim.Optimizer) -> dict:
    """Restore trainable weights, optimizer and RNG from a checkpoint; return its state.

    The whole state is read and checked before anything is changed, so a damaged
    checkpoint leaves the model and optimizer as they were (and the caller may try an
    older one).
    """
    state = read_trainer_state(path)
    params = dict(base_model(model).named_parameters())
    missing = [k for k in state["trainable"] if k not in params]
    if missing:
        raise ValueError(
            f"checkpoint {path} does not fit the model (e.g. {missing[0]!r}); was it written "
            "with another actor.lora_rank or model?"
        )
    from agentgym.trainers import fsdp

    if fsdp.is_sharded(model) or state.get("optimizer_format") == "fqn":
        # FSDP, or an FSDP checkpoint in a plain model: any world size either way
        fsdp.load_sharded(model, optimizer, state["trainable"], state["optimizer"])
        set_rng_state(state["rng"])
        return state
    with torch.no_grad():
        for key, value in state["trainable"].items():
            params[key].copy_(value.to(params[key].device))
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state
