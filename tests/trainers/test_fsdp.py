"""FSDP2 under torchrun (gloo, 2 processes): trains like DDP, checkpoints consolidated,
resumes under another world size."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agentgym.config import TrainConfig, load_config, save_config
from agentgym.trainers.tracking import read_metrics
from tests.trainers.conftest import small_config

SCRIPT = (
    "import os, sys\n"
    "from agentgym.config import TrainConfig, load_config\n"
    "from agentgym.trainers.rl import train\n"
    "result = train(load_config(TrainConfig, sys.argv[1]))\n"
    "print(f\"PARAM_NORM {os.environ['RANK']} {result.param_norm:.12f}\", flush=True)\n"
)


def _torchrun(tmp_path: Path, config: Path, nproc: int = 2) -> dict[str, float]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    out = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", str(nproc), str(script), str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # the ranks print to one pipe at once: their lines may run into each other
    found = re.findall(r"PARAM_NORM (\d+) (\d+\.\d{12})", out.stdout)
    return {rank: float(norm) for rank, norm in found}


def _config(tmp_path: Path, run: Path, model: Path, *extra: str) -> Path:
    cfg = small_config(
        run,
        f"policy.model={model}",
        "sft.enabled=false",
        "trainer.test_tasks=0",
        "trainer.val_every=0",
        "trainer.tasks_per_iteration=4",
        "actor.use_kl_loss=true",  # a reference model too (unsharded, built before FSDP)
        *extra,
    )
    path = tmp_path / f"{run.name}.yaml"
    save_config(cfg, path)
    return path


def _iterations(run: Path) -> dict[int, dict]:
    return {r["iteration"]: r for r in read_metrics(run) if "train/success" in r}


@pytest.mark.slow
def test_fsdp_trains_like_ddp_and_resumes_with_one_process(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    from transformers import AutoModelForCausalLM

    from agentgym.trainers.checkpoint import load_checkpoint, read_trainer_state
    from agentgym.trainers.rl import train

    fsdp_run, ddp_run = tmp_path / "fsdp", tmp_path / "ddp"
    fsdp_config = _config(tmp_path, fsdp_run, tiny_frozenlake_model, "trainer.strategy=fsdp")
    norms = _torchrun(tmp_path, fsdp_config)
    assert set(norms) == {"0", "1"} and norms["0"] == norms["1"]
    ddp_config = _config(tmp_path, ddp_run, tiny_frozenlake_model, "trainer.total_iterations=1")
    _torchrun(tmp_path, ddp_config)

    # The same rollouts at iteration 1 (same start weights): the same loss and gradient.
    fsdp_metrics, ddp_metrics = _iterations(fsdp_run), _iterations(ddp_run)
    assert sorted(fsdp_metrics) == [1, 2]
    for key in ("train/reward", "actor/pg_loss", "actor/grad_norm", "actor/kl_loss"):
        assert fsdp_metrics[1][key] == pytest.approx(ddp_metrics[1][key], rel=1e-4, abs=1e-6), key

    # The checkpoint is consolidated: a plain model and optimizer take it whole.
    checkpoint = fsdp_run / "checkpoints" / "latest"
    state = read_trainer_state(checkpoint)
    assert state["optimizer_format"] == "fqn" and state["iteration"] == 2
    saved = AutoModelForCausalLM.from_pretrained(checkpoint / "model", dtype=torch.float32)
    with torch.no_grad():
        norm = float(sum(p.double().pow(2).sum() for p in saved.parameters()) ** 0.5)
    assert norm == pytest.approx(norms["0"], rel=1e-9)
    fresh = AutoModelForCausalLM.from_pretrained(tiny_frozenlake_model, dtype=torch.float32)
    optimizer = torch.optim.AdamW([p for p in fresh.parameters() if p.requires_grad], lr=1e-3)
    load_checkpoint(checkpoint, fresh, optimizer)
    assert all(
        torch.equal(a, b) for a, b in zip(fresh.parameters(), saved.parameters(), strict=True)
    )
    steps = {float(s["step"]) for s in optimizer.state.values()}
    assert len(optimizer.state) == len(list(fresh.parameters())) and steps == {2.0}
    for p in fresh.parameters():
        assert optimizer.state[p]["exp_avg"].shape == p.shape  # whole, not a shard

    # Resume the 2-process FSDP run in one process, one iteration further.
    cfg = load_config(TrainConfig, fsdp_config, ["trainer.total_iterations=3"])
    result = train(cfg, resume=True)
    assert result.iterations == 3 and sorted(_iterations(fsdp_run)) == [1, 2, 3]
    assert result.param_norm != pytest.approx(norms["0"], rel=1e-9)  # it trained on
