"""Kill -9 and resume gives the same metrics as an uninterrupted run; torchrun DDP syncs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentgym.config import save_config
from agentgym.trainers.tracking import read_metrics
from tests.trainers.conftest import small_config

AGENTGYM = str(Path(sys.executable).with_name("agentgym"))


def _config_file(tmp_path: Path, run: Path, model: Path, *extra: str) -> Path:
    cfg = small_config(
        run,
        f"policy.model={model}",
        "sft.enabled=false",
        "trainer.test_tasks=0",
        "trainer.total_iterations=4",
        "trainer.val_every=2",
        "trainer.keep_checkpoints=5",
        *extra,
    )
    path = tmp_path / f"{run.name}.yaml"
    save_config(cfg, path)
    return path


def _learning_metrics(run: Path) -> dict[int, dict]:
    """Per-iteration metrics that do not depend on wall time."""
    out = {}
    for record in read_metrics(run):
        if "train/success" not in record:
            continue
        out[record["iteration"]] = {
            k: v
            for k, v in record.items()
            if not k.startswith("perf/") and not k.endswith(("seconds", "episodes_per_s"))
        }
    return out


#: SPO's tracker and task sampler carry state across iterations that decides which tasks
#: are played: the kill-and-resume test runs with them, so it covers the trainer's own
#: state (weights, optimizer, RNGs, metrics, health) and a provider's and a sampler's.
SPO = (
    "algorithm.adv_estimator=spo",
    "algorithm.task_sampler={name: spo}",
    "env.rollout.n=1",
    "trainer.tasks_per_iteration=4",
)


def test_sigkill_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    """A run killed after its second checkpoint and resumed logs what an uninterrupted run
    logs, iteration by iteration (SPO's tracker included: see :data:`SPO`)."""
    import torch

    straight = tmp_path / "straight"
    subprocess.run(
        [AGENTGYM, "train", str(_config_file(tmp_path, straight, tiny_frozenlake_model, *SPO))],
        check=True,
        capture_output=True,
        timeout=600,
    )
    killed = tmp_path / "killed"
    config = _config_file(tmp_path, killed, tiny_frozenlake_model, *SPO)
    proc = subprocess.Popen(
        [AGENTGYM, "train", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint = killed / "checkpoints" / "iter_000002"
    deadline = time.time() + 600
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {r["iteration"] for r in read_metrics(killed) if "train/success" in r}
    assert max(done) < 4, "the kill came too late to test anything"
    state = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
    saved = {p["name"]: p["state"] for p in state["methods"]["providers"]}
    assert len(saved["spo_tracker"]["alpha"]) > 0  # the tracker is in the checkpoint
    resumed = subprocess.run(
        [AGENTGYM, "train", str(config), "--resume"], capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _learning_metrics(straight), _learning_metrics(killed)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    for it in a:
        assert "spo/value_mean" in a[it] and "health/invalid_streak" in a[it]
        assert a[it].keys() == b[it].keys()
        for key in a[it]:
            assert b[it][key] == pytest.approx(a[it][key], rel=1e-5, abs=1e-7), (it, key)


def test_ctrl_c_names_the_last_checkpoint_and_the_resume_command(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    run = tmp_path / "stopped"
    config = _config_file(
        tmp_path, run, tiny_frozenlake_model, "trainer.total_iterations=200", "trainer.save_every=1"
    )
    proc = subprocess.Popen(
        [AGENTGYM, "train", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # as in a terminal, even when this test process was started with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    checkpoint = run / "checkpoints" / "iter_000001"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    message = " ".join(stderr.split())
    assert "interrupted: the last checkpoint is iteration" in message
    assert f"agentgym train {config} --resume" in message
    assert "Traceback" not in stderr


def test_torchrun_two_processes_keep_weights_in_sync(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    run = tmp_path / "ddp"
    config = _config_file(
        tmp_path,
        run,
        tiny_frozenlake_model,
        "trainer.total_iterations=2",
        "trainer.tasks_per_iteration=4",
    )
    script = tmp_path / "ddp_train.py"
    script.write_text(
        "import os, sys\n"
        "from agentgym.config import TrainConfig, load_config\n"
        "from agentgym.trainers.rl import train\n"
        f"result = train(load_config(TrainConfig, {str(config)!r}))\n"
        "print(f\"rank {os.environ['RANK']} norm {result.param_norm:.12f}\", flush=True)\n"
    )
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # the ranks print to one pipe at once: their lines may run into each other
    norms = dict(re.findall(r"rank (\d+) norm (\d+\.\d{12})", out.stdout))
    assert set(norms) == {"0", "1"} and norms["0"] == norms["1"], out.stdout
    records = [r for r in read_metrics(run) if "train/success" in r]
    assert [r["iteration"] for r in records] == [1, 2]
