"""Shared by the adapter tests: servers on loopback, one training iteration, an evaluation."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from agentgym.trainers.rl import RunResult, train
from agentgym.trainers.tracking import read_metrics
from tests.trainers.conftest import small_config

#: One RL iteration of a tiny model (SFT on expert demonstrations first, so it emits the
#: env's action format at all), 2 tasks x 2 rollouts, short generations.
ONE_ITERATION = (
    "trainer.total_iterations=1",
    "trainer.tasks_per_iteration=2",
    "env.rollout.n=2",
    "trainer.val_tasks=2",
    "trainer.test_tasks=2",
    "sft.tasks=4",
    "policy.tiny.episodes=4",
    "env.rollout.max_prompt_tokens=4096",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@contextmanager
def serve(args: Sequence[str], port: int) -> Iterator[subprocess.Popen]:
    """Run ``python ARGS`` (a server listening on ``port``) for the duration."""
    # Output goes to a file: a pipe nobody reads fills up and then blocks the server.
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed after the server stops
    proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def train_one_iteration(out_dir: Path, env_id: str, *overrides: str) -> RunResult:
    """Train one RL iteration on ``env_id`` and check that it really ran."""
    cfg = small_config(out_dir, f"env.id={env_id}", *ONE_ITERATION, *overrides)
    result = train(cfg)
    records = read_metrics(result.run_dir)
    rl = [r for r in records if "train/success" in r]
    assert [r["iteration"] for r in rl] == [1]
    assert rl[0]["perf/rollout_generated_tokens"] > 0
    assert "actor/grad_norm" in rl[0]
    assert (Path(result.run_dir) / "checkpoints" / "latest" / "model").is_dir()
    assert result.test_after is not None
    return result


def evaluate_cli(out_dir: Path, env_id: str, policy: str, *args: str) -> dict[str, Any]:
    """``agentgym eval`` on the test split; returns its summary.json."""
    from agentgym.cli import app

    result = CliRunner().invoke(
        app,
        ["eval", "--env", env_id, "--policy", policy, "--out", str(out_dir), *args],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["complete"] and summary["split"] == "test"
    return summary
