"""Third-party environments through the entry point, and the env CLI commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.core.packages import AGENTGYM, install_package

PLUGIN_ENV = '''
from agentgym.envs.frozenlake import FrozenLakeEnv


class TinyLake(FrozenLakeEnv):
    """A 3x3 lake from a third-party package."""

    description = "Third-party tiny lake"

    def __init__(self, **kw):
        super().__init__(size=3, hole_prob=0.0, **kw)
'''


def test_third_party_env_registers_through_the_entry_point(tmp_path: Path) -> None:
    site = install_package(
        tmp_path,
        "tinylake-plugin",
        {"tinylake_plugin/__init__.py": PLUGIN_ENV},
        {"agentgym.envs": {"TinyLake-v0": "tinylake_plugin:TinyLake"}},
    )
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    # --no-counts: the layout is the same, and nothing is built (counts: the next tests)
    listing = subprocess.run(
        [AGENTGYM, "env", "list", "--no-counts"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "TinyLake-v0" in listing and "tinylake-plugin" in listing
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gymnasium, agentgym; e = gymnasium.make('agentgym/TinyLake-v0'); "
            "print(e.reset(seed=0)[0].count(chr(10)) + 1)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert made.strip() == "3"
    check = subprocess.run(
        [AGENTGYM, "env", "check", "TinyLake-v0"], env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_env_list_fits_a_narrow_terminal() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    # --no-counts: the layout is the same, and nothing is built (counts: the next tests)
    listing = subprocess.run(
        [AGENTGYM, "env", "list", "--no-counts"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(len(line) <= 80 for line in listing.splitlines())
    for env_id in ("Sokoban-v0", "FrozenLake-v0", "Search-v0"):
        assert env_id in listing  # ids are never wrapped
    assert "BFS expert" not in listing  # parenthetical details go when narrow
    assert "source" not in listing  # only agentgym's own envs here
    wide = subprocess.run(
        [AGENTGYM, "env", "list", "--no-counts"],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "BFS expert" in wide


def test_env_list_filters_ids_and_counts_tasks() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    listing = subprocess.run(
        [AGENTGYM, "env", "list", "sokoban", "FrozenLake"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line for line in listing.splitlines() if "-v0" in line]
    assert [row.split()[1] for row in rows] == ["FrozenLake-v0", "Sokoban-v0"]
    assert all("10000" in row and " 500 " in row for row in rows)  # built and counted
    none = subprocess.run([AGENTGYM, "env", "list", "Nothing"], capture_output=True, text=True)
    assert none.returncode == 2 and "no environment matches Nothing" in none.stdout


def test_env_check_cli_fails_with_the_rule_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [AGENTGYM, "env", "check", "Sokoban-v9"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "Did you mean 'Sokoban-v0'" in result.stderr


def test_play_cli_with_a_scripted_player() -> None:
    moves = "\n".join([":expert"] * 30) + "\n"
    result = subprocess.run(
        [AGENTGYM, "play", "FrozenLake-v0", "--task", "test-4"],
        input=moves,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "episode over: success" in result.stdout
