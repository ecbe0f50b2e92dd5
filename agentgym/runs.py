"""The training run directory: the one place that knows its layout.

::

    RUN_DIR/
      config.yaml              the resolved config (written once the run has started
                               cleanly: after a resumed checkpoint has loaded)
      run.json                 the run's id and start time (checkpoints carry the id)
      metrics.jsonl            one JSON object per logged iteration
      summary.json             test before/after RL, iterations
      tiny-model/              the model built for ``policy.model: tiny``
      sft-model/               the model after the SFT warm start
      rollouts/iter_000001.jsonl  a sample of each iteration's trajectories with their
                               advantages (``trainer.save_rollouts``; ``agentgym view``)
      plots/*.png              training curves
      checkpoints/
        iter_000010/           model/ (Hugging Face directory), trainer_state.pt,
                               checkpoint.json (iteration, run id)
        latest -> iter_000010

Rules that keep a run's data safe (each tested):

* a new run refuses a directory that already holds files (:func:`prepare_new`), unless
  told to move the old contents aside (``--force``), never deleting them;
* resuming takes the newest *intact* checkpoint (:meth:`RunDir.resume_candidates`): a
  dangling ``latest`` or a corrupt newest checkpoint falls back to the previous one, and
  says so;
* pruning deletes only checkpoints this run wrote (its run id), older than the ones kept.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agentgym.errors import AgentGymError

__all__ = ["RunDir", "RunDirError", "find_run", "is_run_dir"]

CONFIG = "config.yaml"
RUN_INFO = "run.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
TINY_MODEL = "tiny-model"
SFT_MODEL = "sft-model"
ROLLOUTS = "rollouts"
PLOTS = "plots"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
CHECKPOINT_INFO = "checkpoint.json"
TRAINER_STATE = "trainer_state.pt"
MODEL = "model"


class RunDirError(AgentGymError):
    """A run directory that cannot be used as asked (not empty, nothing to resume...)."""


@dataclass(frozen=True)
class RunDir:
    """Paths inside one training run directory (see the module docstring)."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    # ------------------------------------------------------------------ paths
    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def run_info(self) -> Path:
        return self.path / RUN_INFO

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def tiny_model(self) -> Path:
        return self.path / TINY_MODEL

    @property
    def sft_model(self) -> Path:
        return self.path / SFT_MODEL

    @property
    def rollouts(self) -> Path:
        return self.path / ROLLOUTS

    @property
    def plots(self) -> Path:
        return self.path / PLOTS

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def latest_link(self) -> Path:
        return self.checkpoints / LATEST

    def checkpoint(self, iteration: int) -> Path:
        return self.checkpoints / f"iter_{iteration:06d}"

    def rollout_file(self, iteration: int) -> Path:
        return self.rollouts / f"iter_{iteration:06d}.jsonl"

    @property
    def latest_model(self) -> Path:
        """The model of the newest checkpoint (what ``--policy RUN_DIR`` evaluates)."""
        return self.latest_link / MODEL

    # ------------------------------------------------------------------ identity
    def run_id(self) -> str | None:
        """The id of the run that owns this directory (None before it started)."""
        try:
            return str(json.loads(self.run_info.read_text())["run_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def start(self) -> str:
        """Write ``run.json`` for a new run and return its id."""
        run_id = uuid.uuid4().hex[:12]
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.run_info, {"run_id": run_id, "started": time.time()})
        return run_id

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_dirs(self) -> list[Path]:
        """Every finished checkpoint directory (``iter_*``, not ``.tmp``), oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = [
            p
            for p in self.checkpoints.iterdir()
            if p.is_dir() and p.name.startswith("iter_") and not p.name.endswith(".tmp")
        ]
        return sorted(found, key=lambda p: p.name)

    def resume_candidates(self) -> Iterator[tuple[Path, str | None]]:
        """Checkpoints to try when resuming, best first, each with why it is not the
        first choice (None for ``latest`` itself): ``latest`` if it resolves, then every
        complete-looking checkpoint from the newest down. Only checkpoints of this run
        (its id in ``run.json``) are offered when the run has an id."""
        own = self.run_id()

        def ours(path: Path) -> bool:
            if own is None:
                return True
            try:
                return checkpoint_info(path).get("run_id") == own
            except RunDirError:
                return False

        seen: set[Path] = set()
        link = self.latest_link
        if link.is_symlink() or link.exists():
            target = link.resolve()
            if target.is_dir() and checkpoint_problem(target) is None and ours(target):
                seen.add(target)
                yield target, None
        for ckpt in reversed(self.checkpoint_dirs()):
            if ckpt.resolve() in seen or not ours(ckpt):
                continue
            if checkpoint_problem(ckpt) is None:
                yield ckpt, "the newer checkpoint could not be used"

    def holds_files(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete checkpoint, or None when it looks complete."""
    info = path / CHECKPOINT_INFO
    if not info.is_file():
        return f"{info} is missing"
    try:
        data = json.loads(info.read_text())
        int(data["iteration"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{info} is not valid ({type(exc).__name__}: {exc})"
    if not (path / TRAINER_STATE).is_file():
        return f"{path / TRAINER_STATE} is missing"
    if not (path / MODEL).is_dir():
        return f"{path / MODEL} is missing"
    return None


def checkpoint_info(path: Path) -> dict:
    """``checkpoint.json`` of a checkpoint; :class:`RunDirError` naming the file if bad."""
    info = path / CHECKPOINT_INFO
    try:
        data = json.loads(info.read_text())
        data["iteration"] = int(data["iteration"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{info} cannot be read: {type(exc).__name__}: {exc}") from exc
    return data


def prepare_new(run: RunDir, force: bool) -> Path | None:
    """Make ``run`` ready for a new run. A directory that already holds files is refused,
    or with ``force`` renamed to the first free ``RUN_DIR.N`` (returned); nothing is
    deleted."""
    if not run.holds_files():
        return None
    if not force:
        what = "a training run" if is_run_dir(run.path) else "files"
        raise RunDirError(
            f"{run.path} already holds {what}. Continue it with --resume, start over with "
            f"--force (the old contents are moved to {run.path}.1 or the next free "
            "number, not deleted), or choose another trainer.out_dir."
        )
    n = 1
    while run.path.with_name(f"{run.path.name}.{n}").exists():
        n += 1
    moved = run.path.with_name(f"{run.path.name}.{n}")
    os.replace(run.path, moved)
    return moved


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a training run directory: a config, and checkpoints or (an
    SFT-only run) the SFT model."""
    p = Path(path)
    return (p / CONFIG).is_file() and ((p / CHECKPOINTS).is_dir() or (p / SFT_MODEL).is_dir())


def find_run(path: str | Path, depth: int = 4) -> Path | None:
    """The training run a path lies in (the run itself, a checkpoint, its model...)."""
    p = Path(path)
    for candidate in (p, *p.resolve().parents[:depth]):
        if is_run_dir(candidate):
            return candidate
    return None


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (a temporary file renamed into place)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
