"""Small CLI behaviours: --version, env check's SKIP lines, play's local keys and several
episodes, and the training plots (smoothing, test marks, no KL float noise)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agentgym.cli import app
from agentgym.env import StepResult, TextEnv


class NoExpertEnv(TextEnv):
    """Say "done" to finish; no expert, no snapshots."""

    def task_ids(self, split):
        return {"train": ["a"], "valid": ["b"], "test": ["c"]}[split]

    def _load_task(self, task_id, split, rng):
        self.word = task_id
        return f"Task {task_id}: say done."

    def _step(self, action):
        if action.strip() == "done":
            return StepResult("Finished.", reward=1.0, terminated=True, success=True, score=1.0)
        return self.invalid("say done")

    def _state_key(self):
        return "start"

    def canonical_state(self):
        return f"{self.word}|start"

    def _instruction(self):
        return "Say done."

    def _admissible_actions(self):
        return ["done", "wait"]


def test_version() -> None:
    import agentgym

    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"agentgym {agentgym.__version__}"


def test_env_check_says_skip_for_an_env_without_expert_or_snapshots() -> None:
    out = CliRunner().invoke(app, ["env", "check", f"{__name__}:NoExpertEnv"])
    assert out.exit_code == 0, out.output
    assert "SKIP expert" in out.output and "no expert" in out.output
    assert "SKIP snapshot" in out.output
    assert "PASS expert" not in out.output
    sokoban = CliRunner().invoke(app, ["env", "check", "Sokoban-v0", "--tasks-per-split", "1"])
    assert "PASS expert" in sokoban.output and "SKIP" not in sokoban.output


def test_play_keeps_commands_and_keys_local_and_plays_several_episodes() -> None:
    lines = [
        ":help",  # listed locally, never sent
        ":prompt",  # the agent's prompt
        ":bogus",  # unknown command: a local message
        "\x1b[A",  # the up arrow alone means "up"
        "\x1b[Ax",  # a key inside text: refused locally
        *[":expert"] * 25,
        ":new",  # gives up an episode, if one is still in play
    ]
    out = CliRunner().invoke(
        app,
        ["play", "FrozenLake-v0", "--task", "test-4", "--episodes", "3"],
        input="\n".join(lines) + "\n",
    )
    assert out.exit_code == 0, out.output
    text = out.output
    assert ":expert" in text and "let the environment's solver" in text  # :help
    assert "[user]" in text  # :prompt shows the messages
    assert "unknown command :bogus" in text
    assert "special keys" in text
    assert "step 1" in text  # the arrow was played as a move
    assert "episode over: success" in text
    assert "episodes: 3 played, 2 solved" in text and "bye (3 episode(s), 2 solved)" in text


def test_play_parses_a_typed_tool_call_like_the_engine() -> None:
    """A typed <tool_call> reaches the env as the parser's canonical JSON."""
    from agentgym.cli.play import PlaySession
    from agentgym.parsers import get_parser
    from agentgym.registry import make
    from agentgym.rollout import PromptBuilder, PromptConfig

    env = make("Search-v0", protocol="tools")
    parser = get_parser("tool_call")
    session = PlaySession(env, parser, PromptBuilder(PromptConfig(), parser))
    session.reset(0, {"task_id": "train-0"})
    typed = '<tool_call>{"name": "search", "arguments": {"query": "Jakriath Thioley"}}</tool_call>'
    action, parsed = session.action_of(typed)
    assert parsed and json.loads(action) == {
        "name": "search",
        "arguments": {"query": "Jakriath Thioley"},
    }
    _, _, _, _, info = session.step(typed)
    assert info["action_valid"] and info["num_tool_calls"] == 1
    env.close()


def _write_run(run: Path, kl: float) -> None:
    run.mkdir()
    rows = [
        {
            "iteration": i,
            "train/success": 0.3 + 0.01 * i,
            "actor/ppo_kl": kl,
            "actor/grad_norm": 1.0,
            "train/tool_calls": 2.0,
        }
        for i in range(1, 31)
    ]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    test = {"test/success": 0.4, "test/success_ci_low": 0.3, "test/success_ci_high": 0.5}
    (run / "summary.json").write_text(
        json.dumps({"test_before": test, "test_after": test, "iterations": 30})
    )


def test_plots_leave_out_kl_noise_and_mark_the_test(tmp_path: Path) -> None:
    from agentgym.trainers.plots import panel_series, plot_run, smooth

    _write_run(tmp_path / "quiet", 3e-9)
    names = {p.name for p in plot_run(tmp_path / "quiet")}
    assert "kl.png" not in names and {"success.png", "tool_calls.png", "overview.png"} <= names
    _write_run(tmp_path / "kl", 0.02)
    assert "kl.png" in {p.name for p in plot_run(tmp_path / "kl")}
    assert smooth([0.0, 2.0, 4.0, 6.0], window=2) == [0.0, 1.0, 3.0, 5.0]
    assert panel_series([{"iteration": 1, "a": 1e-9}], ("a",)) == {}
