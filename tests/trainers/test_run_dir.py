"""A run never deletes or truncates what it did not write, and resume survives a dangling
``latest`` and a damaged newest checkpoint (real training runs of a tiny model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agentgym.runs import RunDir, RunDirError
from agentgym.trainers.rl import train
from agentgym.trainers.tracking import read_metrics
from tests.trainers.conftest import small_config

FAST = [
    "sft.enabled=false",
    "trainer.val_every=0",
    "trainer.test_tasks=0",
    "trainer.plots=false",
    "trainer.keep_checkpoints=2",
]


def config(run: Path, model: Path, iterations: int, *more: str):
    return small_config(
        run, f"policy.model={model}", *FAST, f"trainer.total_iterations={iterations}", *more
    )


def snapshot_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_a_new_run_refuses_a_directory_with_files_and_force_moves_them_aside(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    run = tmp_path / "run"
    train(config(run, tiny_frozenlake_model, 2))
    before = snapshot_files(run)
    with pytest.raises(RunDirError) as info:
        train(config(run, tiny_frozenlake_model, 1))
    assert "--resume" in str(info.value) and "--force" in str(info.value)
    assert snapshot_files(run) == before  # nothing touched
    result = train(config(run, tiny_frozenlake_model, 1), force=True)
    assert snapshot_files(tmp_path / "run.1") == before  # moved, byte for byte
    assert [r["iteration"] for r in read_metrics(result.run_dir) if "train/success" in r] == [1]
    assert sorted(p.name for p in RunDir(run).checkpoint_dirs()) == ["iter_000001"]


def test_pruning_keeps_checkpoints_the_run_did_not_write(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    run = tmp_path / "run"
    train(config(run, tiny_frozenlake_model, 1))
    rundir = RunDir(run)
    # a checkpoint of another run (iteration 60 of an older experiment) in the folder
    foreign = rundir.checkpoint(60)
    shutil.copytree(rundir.checkpoint(1), foreign)
    (foreign / "checkpoint.json").write_text(json.dumps({"iteration": 60, "run_id": "other"}))
    result = train(config(run, tiny_frozenlake_model, 4, "trainer.keep_checkpoints=1"), resume=True)
    assert result.iterations == 4  # resumed from its own checkpoint 1, not the foreign 60
    names = sorted(p.name for p in rundir.checkpoint_dirs())
    assert names == ["iter_000004", "iter_000060"]
    assert rundir.latest_link.resolve().name == "iter_000004"


def test_resume_falls_back_past_a_dangling_latest(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    run = tmp_path / "run"
    train(config(run, tiny_frozenlake_model, 2))
    rundir = RunDir(run)
    link = rundir.latest_link
    link.unlink()
    link.symlink_to("iter_000099")  # dangles
    lines_before = rundir.metrics.read_text().splitlines()
    result = train(config(run, tiny_frozenlake_model, 3), resume=True)
    assert result.iterations == 3
    lines_after = rundir.metrics.read_text().splitlines()
    assert lines_after[: len(lines_before)] == lines_before  # the run's metrics were kept
    its = [r["iteration"] for r in read_metrics(run) if "train/success" in r]
    assert its == [1, 2, 3]


def test_resume_survives_a_damaged_newest_checkpoint(
    tmp_path: Path, tiny_frozenlake_model: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    train(config(run, tiny_frozenlake_model, 2))
    rundir = RunDir(run)
    state = rundir.checkpoint(2) / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:100])  # truncated
    result = train(config(run, tiny_frozenlake_model, 3), resume=True)
    out = capsys.readouterr().out
    assert str(state) in out and "trying an older one" in out
    assert "resuming from the older checkpoint" in out
    assert result.iterations == 3
    its = [r["iteration"] for r in read_metrics(run) if "train/success" in r]
    assert its == [1, 2, 3]  # iteration 2 is replayed from checkpoint 1


def test_a_damaged_checkpoint_with_nothing_older_names_the_file(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    run = tmp_path / "run"
    train(config(run, tiny_frozenlake_model, 1))
    rundir = RunDir(run)
    state = rundir.checkpoint(1) / "trainer_state.pt"
    state.write_bytes(b"not a checkpoint")
    config_before = rundir.config.read_text()
    with pytest.raises(RunDirError) as info:
        train(config(run, tiny_frozenlake_model, 2, "actor.lr=5e-4"), resume=True)
    assert str(state) in str(info.value)
    assert rundir.config.read_text() == config_before  # not overwritten by the failed resume
    bad_json = rundir.checkpoint(1) / "checkpoint.json"
    bad_json.write_text("{")
    from agentgym.runs import checkpoint_info

    with pytest.raises(RunDirError, match=str(bad_json)):
        checkpoint_info(rundir.checkpoint(1))


def test_resume_without_any_checkpoint_moves_the_files_aside(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    result = train(config(run, tiny_frozenlake_model, 1), resume=True)
    assert result.iterations == 1
    assert (tmp_path / "run.1" / "notes.txt").read_text() == "mine"


def test_rollout_of_a_run_follows_its_prompt_style(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    from typer.testing import CliRunner

    from agentgym.cli import app
    from agentgym.trajectory import read_jsonl

    run = tmp_path / "run"
    train(config(run, tiny_frozenlake_model, 1, "env.prompt.style=chat", "env.history_length=0"))
    out = tmp_path / "r.jsonl"
    done = CliRunner().invoke(
        app,
        [
            "rollout",
            "--env",
            "FrozenLake-v0",
            "--policy",
            str(run),
            "--tasks",
            "1",
            "--n",
            "2",
            "--out",
            str(out),
        ],
    )
    assert done.exit_code == 0, done.output
    trajs = read_jsonl(out)
    assert [t.metadata["prompt_style"] for t in trajs] == ["chat", "chat"]
