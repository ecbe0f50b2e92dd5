"""Checkpoints: a Hugging Face model directory plus the trainer's state, resumable.

Layout of a run directory::

    RUN_DIR/
      config.yaml              the resolved config
      metrics.jsonl            one JSON object per logged iteration
      checkpoints/
        iter_000010/
          model/               Hugging Face model directory (LoRA merged): load it with
                               transformers, vLLM, or ``agentgym eval --policy RUN_DIR``
          trainer_state.pt     optimizer, trainable weights (LoRA included), RNG states,
                               iteration and data position
        latest -> iter_000010  (symlink to the newest complete checkpoint)

A checkpoint is written to a temporary directory and renamed into place, and ``latest``
is switched only after that, so a run killed at any moment (even SIGKILL) leaves the
previous checkpoint intact and loses at most the iteration in flight.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentgym.trainers.model import base_model, save_pretrained

CHECKPOINTS = "checkpoints"
LATEST = "latest"


def checkpoint_dir(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"iter_{iteration:06d}"


def checkpoint_iteration(path: str | Path) -> int:
    """The iteration a checkpoint directory was saved after."""
    return int(json.loads((Path(path) / "checkpoint.json").read_text())["iteration"])


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or ``None``."""
    link = Path(run_dir) / CHECKPOINTS / LATEST
    if link.exists():
        return link.resolve()
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
) -> Path:
    """Write checkpoint ``iteration`` atomically, point ``latest`` at it, prune old ones."""
    final = checkpoint_dir(run_dir, iteration)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_pretrained(model, tokenizer, str(tmp / "model"))
    trainable = {
        k: v.detach().cpu() for k, v in base_model(model).named_parameters() if v.requires_grad
    }
    torch.save(
        {
            "iteration": iteration,
            "trainable": trainable,
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(),
            **extra,
        },
        tmp / "trainer_state.pt",
    )
    (tmp / "checkpoint.json").write_text(json.dumps({"iteration": iteration}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    link = final.parent / LATEST
    tmp_link = final.parent / f".{LATEST}.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(final.name)
    os.replace(tmp_link, link)
    _prune(final.parent, keep)
    return final


def _prune(folder: Path, keep: int) -> None:
    done = sorted(p for p in folder.glob("iter_*") if p.is_dir() and not p.name.endswith(".tmp"))
    for old in done[: max(0, len(done) - max(keep, 1))]:
        shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(path: str | Path, model: Any, optimizer: torch.optim.Optimizer) -> dict:
    """Restore trainable weights, optimizer and RNG from a checkpoint; return its state."""
    state = torch.load(Path(path) / "trainer_state.pt", map_location="cpu", weights_only=False)
    params = dict(base_model(model).named_parameters())
    missing = [k for k in state["trainable"] if k not in params]
    if missing:
        raise ValueError(
            f"checkpoint {path} does not fit the model (e.g. {missing[0]!r}); was it written "
            "with another actor.lora_rank or model?"
        )
    with torch.no_grad():
        for key, value in state["trainable"].items():
            params[key].copy_(value.to(params[key].device))
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state
