"""SFT-only runs, the inputs a run refuses before it creates anything, the trainer's test
and ``agentgym eval``'s default agreeing, and the invalid-action warning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from agentgym.cli import app
from agentgym.config import save_config
from agentgym.policies import SamplingParams
from agentgym.trainers.health import InvalidActionWatch
from agentgym.trainers.rl import train
from agentgym.trainers.tracking import read_metrics
from tests.trainers.conftest import small_config

CLI = str(Path(sys.executable).with_name("agentgym"))


def _text(output: str) -> str:
    """The CLI's output with rich's line wrapping undone."""
    return " ".join(output.split())


def _expert_demos(env_id: str, out: Path, tasks: int) -> Path:
    args = ["--env", env_id, "--policy", "expert", "--out", str(out), "--tasks", str(tasks)]
    subprocess.run(
        [CLI, "rollout", *args, "--n", "1", "--history-length", "0"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_sft_only_run_reports_its_test_and_eval_replays_it(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    demos = _expert_demos("FrozenLake-v0", tmp_path / "demos.jsonl", 12)
    config = tmp_path / "c.yaml"
    run = tmp_path / "run"
    save_config(small_config(run, f"policy.model={tiny_frozenlake_model}"), config)
    out = CliRunner().invoke(app, ["sft", str(config), "--data", str(demos)])
    assert out.exit_code == 0, out.output
    summary = json.loads((run / "summary.json").read_text())
    measured = summary["test_before"]
    text = _text(out.output)
    assert f"held-out (test) after SFT: success {measured['test/success']:.1%}" in text
    assert "on 4 tasks x 1 episode(s)" in text

    # eval --policy RUN_DIR: no --env, no --tasks; the SFT model, the trainer's test tasks
    result = CliRunner().invoke(app, ["eval", "--policy", str(run), "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    evaluated = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert evaluated["policy"]["spec"] == f"hf:{(run / 'sft-model').resolve()}"
    assert evaluated["num_tasks"] == 4
    for key in ("success", "steps", "invalid_action_rate", "tokens_generated"):
        assert evaluated["metrics"][key] == measured[f"test/{key}"], key


def test_demonstrations_of_another_env_are_refused_before_anything_is_made(
    tmp_path: Path,
) -> None:
    demos = _expert_demos("Sokoban-v0", tmp_path / "sokoban.jsonl", 2)
    config = tmp_path / "c.yaml"
    run = tmp_path / "run"
    save_config(small_config(run), config)  # FrozenLake, policy.model: tiny
    out = CliRunner().invoke(app, ["sft", str(config), "--data", str(demos)])
    assert out.exit_code == 2
    assert "were recorded on Sokoban-v0 (2 trajectories)" in _text(out.output)
    assert "trains 'FrozenLake-v0'" in _text(out.output)
    assert not run.exists()


def test_a_hub_id_with_no_local_copy_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    run = tmp_path / "run"
    save_config(small_config(run, "policy.model=Qwen/Qwen2.5-0.5B-Instruct"), config)
    out = CliRunner().invoke(app, ["train", str(config)])  # tests run with HF_HUB_OFFLINE=1
    assert out.exit_code == 2
    text = _text(out.output)
    assert "the model directory Qwen/Qwen2.5-0.5B-Instruct does not exist" in text
    assert "not a Hugging Face Hub model in the local cache (HF_HUB_OFFLINE is set)" in text
    assert "Traceback" not in out.output
    assert not run.exists()


def test_a_small_test_split_is_played_once_per_task_and_eval_agrees(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    """trainer.test_tasks=8 on a 3-task split: 3 distinct tasks once each, said so, and
    ``agentgym eval --policy RUN`` (no --tasks) replays exactly that test."""
    run = tmp_path / "run"
    cfg = small_config(
        run,
        f"policy.model={tiny_frozenlake_model}",
        "env.kwargs.num_tasks={train: 50, valid: 5, test: 3}",
        "sft.enabled=false",
        "trainer.total_iterations=1",
        "trainer.test_tasks=8",
    )
    messages: list[str] = []

    class Say:
        def print(self, text: str, *args, **kwargs) -> None:
            messages.append(str(text))

    result = train(cfg, console=Say())
    assert "the test split has 3 tasks: each is played once (8 were asked for)" in messages
    assert result.test_after["test/tasks"] == result.test_after["test/episodes"] == 3
    assert "health/invalid_streak" in [k for r in read_metrics(run) for k in r]

    out = CliRunner().invoke(app, ["eval", "--policy", str(run), "--out", str(tmp_path / "e")])
    assert out.exit_code == 0, out.output
    evaluated = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert evaluated["num_tasks"] == evaluated["distinct_tasks"] == 3
    assert evaluated["requested_tasks"] == 8
    assert "3 tasks x 1 episode(s) (the whole split; 8 asked for)" in _text(out.output)
    for key in ("success", "steps", "invalid_action_rate", "tokens_generated"):
        assert evaluated["metrics"][key] == result.test_after[f"test/{key}"], key


def test_invalid_action_watch_warns_once_per_streak() -> None:
    watch = InvalidActionWatch(threshold=0.95, patience=3)
    rates = [1.0, 0.97, 1.0, 1.0, 0.2, 1.0, 1.0, 1.0]
    warned = []
    for i, rate in enumerate(rates):
        metrics = {"train/invalid_action_rate": rate}
        if watch.update(metrics):
            warned.append(i)
        assert metrics["health/invalid_streak"] == watch.streak
    assert warned == [2, 7]  # the third bad iteration of each streak, once
    assert watch.update({"train/success": 0.5}) is None  # no rate, no change


def test_prompt_loss_weights_the_prompt_tokens(tiny_frozenlake_model: Path) -> None:
    """sft.prompt_loss puts that weight on prompt tokens and 1 on response tokens."""
    from transformers import AutoTokenizer

    from agentgym.config.settings import env_spec, prompt_builder
    from agentgym.policies.builtin import ExpertPolicy
    from agentgym.rollout import sample_tasks
    from agentgym.trainers.setup import build_engine
    from agentgym.trainers.sft import sft_samples

    cfg = small_config(Path("unused"), "env.prompt.style=chat")
    tokenizer = AutoTokenizer.from_pretrained(tiny_frozenlake_model)
    engine = build_engine(cfg, ExpertPolicy("expert"), SamplingParams())
    demos = engine.run(sample_tasks(env_spec(cfg), "train", 2, seed=0))
    engine.close()
    plain = sft_samples(demos, tokenizer, "chat", prompts=prompt_builder(cfg))
    weighted = sft_samples(demos, tokenizer, "chat", prompts=prompt_builder(cfg), prompt_loss=0.25)
    for a, b in zip(plain, weighted, strict=True):
        assert a.input_ids == b.input_ids
        assert [0.25 if m == 0 else m for m in a.mask] == b.mask
        assert set(a.mask) == {0, 1}
