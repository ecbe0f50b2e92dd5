"""The tool environment of docs/environments.md, written from the page alone: its files
are taken from the page's code blocks, installed as a real package (pip, into a target
folder), then listed, checked, played, trained (SFT on its expert, then RL) and evaluated
with the page's own config, each in a fresh process that only has the package on its
path. Only the run's size is turned down (tiny model, one iteration); nothing is worked
around."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "environments.md"
AGENTGYM = str(Path(sys.executable).with_name("agentgym"))


def doc_file(name: str) -> str:
    """The code block of the page whose first line is ``# {name}``."""
    for block in re.findall(r"```[a-z]*\n(.*?)```", DOC.read_text(), re.DOTALL):
        if block.startswith(f"# {name}\n"):
            return block
    raise AssertionError(f"docs/environments.md has no block starting with '# {name}'")


@pytest.fixture(scope="module")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("probe")
    src = root / "src"
    (src / "my_probe").mkdir(parents=True)
    (src / "my_probe" / "__init__.py").write_text("")
    (src / "my_probe" / "env.py").write_text(doc_file("my_probe/env.py"))
    (src / "pyproject.toml").write_text(doc_file("pyproject.toml"))
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run([*pip, "--no-build-isolation", "--target", str(site), str(src)], check=True)
    (root / "probe.yaml").write_text(doc_file("probe.yaml"))
    return site


def run(args: list[str], site: Path, cwd: Path, stdin: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    return subprocess.run(
        args, env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=600
    )


def test_the_documented_tool_env_lists_checks_and_plays(probe_site: Path) -> None:
    cwd = probe_site.parent
    listing = run([AGENTGYM, "env", "list", "Probe-v0"], probe_site, cwd)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if "Probe-v0" in line)
    assert " 8 " in row  # default_max_steps, not agentgym's 50
    check = run([AGENTGYM, "env", "check", "Probe-v0"], probe_site, cwd)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "PASS expert" in check.stdout
    typed = '<tool_call>{"name": "probe", "arguments": {"x": 16}}</tool_call>'
    play = run(
        [AGENTGYM, "play", "Probe-v0", "--split", "test", "--episodes", "1"],
        probe_site,
        cwd,
        stdin="\n".join([":prompt", typed, *[":expert"] * 8]) + "\n",
    )
    assert play.returncode == 0, play.stdout + play.stderr
    assert "probe(16):" in play.stdout  # the typed call reached _step as a call
    assert "# Tools" not in play.stdout and "[tools] probe, answer" in play.stdout
    assert "episode over: success" in play.stdout


def test_the_documented_tool_env_trains_and_evaluates(probe_site: Path) -> None:
    cwd = probe_site.parent
    small = [
        "policy.tiny.layers=1",
        "policy.tiny.hidden=64",
        "policy.tiny.vocab_size=400",
        "policy.tiny.episodes=20",
        "sft.tasks=24",
        "sft.epochs=1",
        "trainer.total_iterations=1",
        "trainer.tasks_per_iteration=2",
        "env.rollout.n=2",
        "trainer.val_every=0",
        "trainer.test_tasks=4",
        "trainer.progress=false",
        "trainer.plots=false",
    ]
    trained = run([AGENTGYM, "train", "probe.yaml", *small], probe_site, cwd)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    out = cwd / "runs" / "probe"
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("sft/loss" in m for m in metrics) and any("train/success" in m for m in metrics)
    # the SFT demonstrations were the expert's tool calls, in the tool_call format
    rollouts = (out / "rollouts" / "iter_000001.jsonl").read_text()
    assert '"tools"' in rollouts
    evaluated = run([AGENTGYM, "eval", "--policy", str(out)], probe_site, cwd)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    summary_path = next((cwd / "runs" / "eval").glob("Probe-v0-test-*/summary.json"))
    summary = json.loads(summary_path.read_text())
    assert summary["num_tasks"] == 4 and summary["max_steps"] == 8
    assert summary["prompt"]["parser"] == "tool_call"
    run_summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["success"] == run_summary["test_after"]["test/success"]
