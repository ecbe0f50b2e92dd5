"""The viewer's data and HTTP API on loopback, and the ``agentgym view`` command."""

from __future__ import annotations

import json
import math
import re
import signal
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agentgym.cli import app
from agentgym.evaluation.stats import pass_at_k
from agentgym.trajectory import read_jsonl
from agentgym.viewer import ViewerError, ViewerServer, open_source


def get(server: ViewerServer, path: str) -> httpx.Response:
    return httpx.get(server.url.rstrip("/") + path, timeout=10)


def test_run_overview_and_iterations_match_the_files(rollout_run: Path) -> None:
    with ViewerServer(rollout_run, port=0) as server:
        overview = get(server, "/api/overview").json()
        assert overview["kind"] == "run" and overview["iterations"] == [1, 2]
        assert [r["iteration"] for r in overview["metrics"]] == [1, 2]
        assert "train/success" in overview["metrics"][0]
        for iteration in (1, 2):
            data = get(server, f"/api/iteration/{iteration}").json()
            saved = read_jsonl(rollout_run / "rollouts" / f"iter_{iteration:06d}.jsonl")
            assert data["estimator"] == "gigpo"
            assert [g["group_id"] for g in data["groups"]] == list(
                dict.fromkeys(t.group_id for t in saved)
            )
            shown = [t for g in data["groups"] for t in g["trajectories"]]
            assert [t["traj_id"] for t in shown] == [t.traj_id for t in saved]
            for page, traj in zip(shown, saved, strict=True):
                assert [s["advantage"] for s in page["steps"]] == traj.metadata["advantages"]
                assert [s["state_key"] for s in page["steps"]] == [s.state_key for s in traj.steps]
                assert [s["action"] for s in page["steps"]] == [s.action for s in traj.steps]
                assert page["success"] == traj.success


def test_unknown_requests_are_json_errors(rollout_run: Path) -> None:
    with ViewerServer(rollout_run, port=0) as server:
        missing = get(server, "/api/iteration/7")
        assert missing.status_code == 404
        assert "no rollout sample for iteration 7; saved: [1, 2]" in missing.json()["error"]
        assert get(server, "/api/iteration/abc").status_code == 404
        assert "no evaluation tasks" in get(server, "/api/task?id=x").json()["error"]
        for path in ("/static/../data.py", "/static/%2e%2e/data.py", "/etc/passwd", "/api"):
            assert get(server, path).status_code == 404, path
        head = httpx.head(server.url, timeout=10)
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/html")


def test_non_finite_numbers_reach_the_page_as_null(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        '{"iteration": 1, "actor/grad_norm": NaN, "train/success": 0.5}\n{"iteration": 2, "trai'
    )
    with ViewerServer(run, port=0) as server:
        body = get(server, "/api/overview").text
    data = json.loads(body)  # strict JSON: no NaN token
    assert data["metrics"] == [{"iteration": 1, "actor/grad_norm": None, "train/success": 0.5}]
    assert data["iterations"] == []


def test_eval_overview_has_per_task_results_and_pass_at_k(eval_dir: Path) -> None:
    summary = json.loads((eval_dir / "summary.json").read_text())
    episodes = read_jsonl(eval_dir / "results.jsonl")
    with ViewerServer(eval_dir, port=0) as server:
        overview = get(server, "/api/overview").json()
        assert overview["kind"] == "eval" and overview["pass_ks"] == [1, 2, 3, 4]
        assert overview["metrics"]["pass@4"] == summary["metrics"]["pass@4"]
        rows = {r["task_id"]: r for r in overview["tasks"]}
        assert list(rows) == list(summary["per_task"])
        for task_id, row in rows.items():
            mine = [t for t in episodes if t.task_id == task_id]
            wins = sum(t.success for t in mine)
            assert (row["episodes"], row["successes"]) == (len(mine), wins)
            assert row["pass_at_k"]["2"] == pass_at_k(len(mine), wins, 2)
        # the mean of the per-task pass@k is the summary's pass@k
        for k in (1, 4):
            mean = sum(r["pass_at_k"][str(k)] for r in rows.values()) / len(rows)
            assert math.isclose(mean, summary["metrics"][f"pass@{k}"])
        task_id = next(iter(rows))
        task = get(server, f"/api/task?id={task_id}").json()
        assert task["task_id"] == task_id
        assert [t["episode"] for t in task["trajectories"]] == [0, 1, 2, 3]
        assert all(s["advantage"] is None for t in task["trajectories"] for s in t["steps"])
        assert get(server, "/api/task?id=nope").status_code == 404
        assert get(server, "/api/iteration/1").status_code == 404


def test_directories_that_are_neither_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ViewerError, match="neither a training run"):
        open_source(tmp_path)
    with pytest.raises(ViewerError, match="is not a directory"):
        open_source(tmp_path / "missing")
    result = CliRunner().invoke(app, ["view", str(tmp_path)])
    assert result.exit_code == 2
    assert "neither a training run" in " ".join(result.output.split())


def test_a_taken_port_is_a_clear_error(rollout_run: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["view", str(rollout_run), "--port", str(port)])
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is taken" in " ".join(result.output.split())


def test_static_files_fetch_nothing_from_elsewhere() -> None:
    folder = resources.files("agentgym.viewer").joinpath("static")
    for name in ("index.html", "app.js", "style.css"):
        text = folder.joinpath(name).read_text(encoding="utf-8")
        # the only absolute URL is SVG's XML namespace name, which is never fetched
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'`)]*", text)) - {
            "http://www.w3.org/2000/svg"
        }
        assert not urls, (name, urls)
        assert "@import" not in text and "url(" not in text


@pytest.mark.timeout(120)
def test_view_command_serves_until_ctrl_c(rollout_run: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentgym", "view", str(rollout_run), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        assert "training run" in line
        overview = httpx.get(url.group(0) + "api/overview", timeout=10).json()
        assert overview["iterations"] == [1, 2]
        page = httpx.get(url.group(0), timeout=10).text
        assert '<script src="/static/app.js">' in page
    finally:
        proc.send_signal(signal.SIGINT)
        # quick alone (3 s); under the full suite and other jobs on 2 cores it once took over 20 s
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
