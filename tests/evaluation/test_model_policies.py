"""Evaluating real models: the ``openai:`` policy against an OpenAI-compatible HTTP server
on loopback, and ``hf`` on a model directory or a training run directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agentgym.cli import app
from agentgym.evaluation import load_results

REPO = Path(__file__).resolve().parents[2]
SMALL = (
    "--env",
    "FrozenLake-v0",
    "--tasks",
    "3",
    "-K",
    "2",
    "--max-tokens",
    "12",
    "--max-steps",
    "3",
    "--history-length",
    "0",
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from agentgym.models import build_tiny_model, env_corpus

    out = tmp_path_factory.mktemp("tiny")
    build_tiny_model(
        env_corpus("FrozenLake-v0", episodes=8),
        out,
        vocab_size=768,
        hidden=64,
        layers=1,
        max_positions=2048,
    )
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def openai_url(tiny_model: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.evaluation.openai_server",
            "--model",
            str(tiny_model),
            "--name",
            "tiny",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_for(url, proc, 90)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, ["eval", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_eval_against_an_openai_compatible_server(openai_url: str, tmp_path: Path) -> None:
    spec = f"openai:{openai_url}#tiny"
    output = cli(*SMALL, "--policy", spec, "--temperature", "1.0", "--out", str(tmp_path))
    assert "success" in output and "tokens generated" in output
    summary = json.loads((tmp_path / "summary.json").read_text())
    m = summary["metrics"]
    assert summary["policy"]["spec"] == spec and summary["sampling"]["temperature"] == 1.0
    assert m["episodes"] == 6 and m["error_rate"] == 0.0, summary["errors"]
    assert m["tokens_generated"] > 0 and 0.0 <= m["success"] <= m["success_ci_high"] <= 1.0
    steps = [s for t in load_results(tmp_path / "results.jsonl") for s in t.steps]
    assert steps and all(s.response_ids and s.prompt_ids for s in steps)
    assert all(len(s.response_logprobs) == len(s.response_ids) for s in steps)


def test_greedy_evaluation_repeats_exactly(openai_url: str, tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        cli(
            *SMALL,
            "--policy",
            f"openai:{openai_url}#tiny",
            "--temperature",
            "0",
            "--out",
            str(tmp_path / name),
        )
        runs.append(
            [
                (t.traj_id, [s.response_text for s in t.steps], t.success)
                for t in load_results(tmp_path / name / "results.jsonl")
            ]
        )
    assert runs[0] == runs[1]


def test_model_directory_and_training_run_directory(tiny_model: Path, tmp_path: Path) -> None:
    cli(*SMALL, "--policy", str(tiny_model), "--out", str(tmp_path / "model"))
    summary = json.loads((tmp_path / "model" / "summary.json").read_text())
    assert summary["policy"]["spec"] == f"hf:{tiny_model}"
    assert summary["metrics"]["tokens_generated"] > 0 and summary["metrics"]["error_rate"] == 0

    run = tmp_path / "run"
    (run / "checkpoints" / "iter_000002").mkdir(parents=True)
    (run / "checkpoints" / "iter_000002" / "model").symlink_to(tiny_model)
    (run / "checkpoints" / "latest").symlink_to("iter_000002")
    cli(*SMALL, "--policy", str(run), "--out", str(tmp_path / "run-eval"))
    summary = json.loads((tmp_path / "run-eval" / "summary.json").read_text())
    assert summary["policy"]["spec"] == f"hf:{tiny_model.resolve()}"


def _wait_for(url: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/models", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer within {seconds} s")
        time.sleep(0.5)
