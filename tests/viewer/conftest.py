"""Fixtures of the viewer tests: a run directory and an eval directory made for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.trainers import conftest as trainer_fixtures
from tests.viewer.helpers import sample_iterations

#: The trainer tests' tiny FrozenLake model, shared (built once per session).
tiny_frozenlake_model = trainer_fixtures.tiny_frozenlake_model

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_frozenlake_model: Path) -> Path:
    """A real ``agentgym train`` run of one iteration (the tiny FrozenLake model, 2 task
    groups of 4 rollouts): its metrics.jsonl and the rollout sample the trainer saved."""
    from agentgym.cli import app

    run = tmp_path_factory.mktemp("viewer-train") / "run"
    overrides = [
        *trainer_fixtures.SMALL,
        f"policy.model={tiny_frozenlake_model}",
        "trainer.total_iterations=1",
        "sft.enabled=false",
        "trainer.test_tasks=0",
        "trainer.plots=false",
        f"trainer.out_dir={run}",
    ]
    result = CliRunner().invoke(app, ["train", str(QUICKSTART), *overrides])
    assert result.exit_code == 0, result.output
    assert (run / "rollouts" / "iter_000001.jsonl").exists(), "training saved no rollouts"
    return run


@pytest.fixture(scope="session")
def rollout_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two iterations of real FrozenLake rollouts (random policy, 6 tasks x 4), GiGPO
    advantages, saved by write_rollout_sample with the metrics the trainer logs."""
    run = tmp_path_factory.mktemp("viewer-run")
    sample_iterations(run, 2, estimator="gigpo", tasks=6, n=4, max_groups=4)
    return run


@pytest.fixture(scope="session")
def eval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``agentgym eval``: random policy on 8 FrozenLake test tasks, 4 episodes each."""
    from agentgym.cli import app

    out = tmp_path_factory.mktemp("viewer-eval") / "eval"
    args = ["eval", "--env", "FrozenLake-v0", "--policy", "random", "--tasks", "8", "-K", "4"]
    result = CliRunner().invoke(app, [*args, "--max-steps", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def typed_eval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``agentgym eval`` on Search-v0, whose tasks have types (1-hop, 2-hop)."""
    from agentgym.cli import app

    out = tmp_path_factory.mktemp("viewer-eval-typed") / "eval"
    args = ["eval", "--env", "Search-v0", "--policy", "random", "--tasks", "6", "-K", "2"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out
