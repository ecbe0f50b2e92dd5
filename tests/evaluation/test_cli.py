"""``agentgym eval`` end to end: reports, compare, Ctrl-C and resume, refusing to mix runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentgym.cli import app
from agentgym.evaluation import episode_key, load_results, resolve_policy_spec

REPO = Path(__file__).resolve().parents[2]
SLOW_ENV = "tests.evaluation.slow_env:SlowFrozenLake"


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["eval", *args])
    return result.exit_code, result.output


def test_eval_prints_a_table_and_writes_the_report(tmp_path: Path) -> None:
    code, out = cli(
        "--env",
        "Sokoban-v0",
        "--policy",
        "expert",
        "--tasks",
        "5",
        "-K",
        "2",
        "--out",
        str(tmp_path / "a"),
    )
    assert code == 0, out
    assert "success" in out and "100.0%" in out and "pass@2" in out and "95% CI" in out
    for name in ("results.jsonl", "summary.json", "success_by_type.png", "eval_config.json"):
        assert (tmp_path / "a" / name).exists(), name
    lines = (tmp_path / "a" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 10 and all(json.loads(line)["steps"] for line in lines)


def test_compare_reports_the_difference_and_its_interval(tmp_path: Path) -> None:
    for policy in ("expert", "random"):
        code, out = cli(
            "--env",
            "Sokoban-v0",
            "--policy",
            policy,
            "--tasks",
            "12",
            "--out",
            str(tmp_path / policy),
        )
        assert code == 0, out
    code, out = cli(
        "--compare",
        str(tmp_path / "expert"),
        str(tmp_path / "random"),
        "--out",
        str(tmp_path / "cmp"),
    )
    assert code == 0, out
    assert "paired by task" in out and "yes" in out
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    success = next(r for r in data["rows"] if r["metric"] == "success")
    assert data["paired"] and success["excludes_zero"] and success["diff_ci_low"] > 0.3
    # different task samples are compared unpaired
    code, out = cli(
        "--env",
        "Sokoban-v0",
        "--policy",
        "random",
        "--tasks",
        "12",
        "--seed",
        "9",
        "--out",
        str(tmp_path / "other"),
    )
    code, out = cli("--compare", str(tmp_path / "random"), str(tmp_path / "other"))
    assert code == 0 and "unpaired" in out


def test_other_settings_in_the_same_dir_are_refused(tmp_path: Path) -> None:
    base = ("--env", "FrozenLake-v0", "--tasks", "3", "--out", str(tmp_path))
    assert cli(*base, "--policy", "expert")[0] == 0
    code, out = cli(*base, "--policy", "random")
    assert code == 2 and "other settings" in out and "policy" in out
    code, out = cli(*base, "--policy", "random", "--overwrite")
    assert code == 0
    assert json.loads((tmp_path / "summary.json").read_text())["policy"]["spec"] == "random"
    code, out = cli("--resume", "--out", str(tmp_path), "--seed", "3")
    assert code == 2 and "--seed" in out
    code, out = cli("--resume", "--out", str(tmp_path), "--policy", "random", "--tasks", "3")
    assert code == 0, out


def test_a_cut_off_last_line_is_dropped_and_the_episode_replayed(tmp_path: Path) -> None:
    args = (
        "--env",
        "FrozenLake-v0",
        "--policy",
        "expert",
        "--tasks",
        "4",
        "-K",
        "2",
        "--out",
        str(tmp_path),
    )
    assert cli(*args)[0] == 0
    path = tmp_path / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:5]) + lines[5][: len(lines[5]) // 2])
    code, out = cli(*args)
    assert code == 0, out
    trajs = load_results(path)
    assert len(trajs) == 8 and len({episode_key(t) for t in trajs}) == 8


def test_ctrl_c_keeps_finished_episodes_and_resume_completes(tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    results = out_dir / "results.jsonl"
    total = 30 * 2  # about 4 s of work left after the interrupt: room on a busy machine
    cmd = [
        sys.executable,
        "-c",
        "from agentgym.cli import main; main()",
        "eval",
        "--env",
        SLOW_ENV,
        "--policy",
        "expert",
        "--tasks",
        "30",
        "-K",
        "2",
        "--num-envs",
        "2",
        "--out",
        str(out_dir),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A shell without job control starts background commands with SIGINT ignored
    # (`make test &` in a script), and every child inherits that; the eval under test
    # must see Ctrl-C as it would in a terminal.
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_bytes().splitlines()) >= 4:
            break
        if proc.poll() is not None:
            pytest.fail(f"eval ended before it was interrupted: {proc.communicate()}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "interrupted" in stderr and "--resume" in " ".join(stderr.split())
    raw = results.read_text()
    assert raw.endswith("\n")
    kept = [json.loads(line) for line in raw.splitlines()]  # every line parses
    assert 4 <= len(kept) < total
    assert not (out_dir / "summary.json").exists()

    resumed = subprocess.run(
        [*cmd[:4], "--resume", "--out", str(out_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} of {total} episodes already done" in " ".join(resumed.stderr.split())
    trajs = load_results(results)
    keys = [episode_key(t) for t in trajs]
    assert len(keys) == total and len(set(keys)) == total
    assert [json.loads(line)["traj_id"] for line in raw.splitlines()] == [
        t.traj_id for t in trajs[: len(kept)]
    ]
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["complete"] and summary["metrics"]["episodes"] == total
    assert summary["metrics"]["success"] == 1.0


def test_run_directories_resolve_to_their_latest_checkpoint(tmp_path: Path) -> None:
    model = tmp_path / "run" / "checkpoints" / "iter_000010" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (tmp_path / "run" / "checkpoints" / "latest").symlink_to("iter_000010")
    run = str(tmp_path / "run")
    assert resolve_policy_spec(run) == f"hf:{model}"
    assert resolve_policy_spec(f"vllm:{run}") == f"vllm:{model}"
    assert resolve_policy_spec(f"hf:{model.parent}") == f"hf:{model}"
    assert resolve_policy_spec(f"hf:{model}") == f"hf:{model}"
    for spec in ("expert", "random", "openai:http://127.0.0.1:1/v1#m"):
        assert resolve_policy_spec(spec) == spec


def test_missing_env_or_policy_is_a_clear_error() -> None:
    code, out = cli("--env", "Sokoban-v0")
    assert code == 2 and "--policy" in out
    code, out = cli("--env", "Sokobn-v0", "--policy", "expert")
    assert code == 2 and "Did you mean 'Sokoban-v0'" in out


def test_ctrl_c_during_a_result_write_waits_for_the_line(tmp_path: Path) -> None:
    from agentgym.evaluation.session import ResultsWriter, _sigint_deferred
    from agentgym.trajectory import Trajectory

    done = []
    with pytest.raises(KeyboardInterrupt), _sigint_deferred():
        signal.raise_signal(signal.SIGINT)
        done.append(True)
    assert done == [True]
    writer = ResultsWriter(tmp_path / "r.jsonl")
    writer.write(Trajectory(env_id="X-v0", task_id="t"))
    writer.close()
    assert load_results(tmp_path / "r.jsonl")[0].task_id == "t"
