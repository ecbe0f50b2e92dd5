"""``agentgym/TextArena-v0`` and ``TextArenaSelfPlay-v0`` on the real ``textarena`` games
(its rules, messages and move syntax), against rule bots, a random opponent, a trained
model as opponent, and in self-play."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("textarena", reason="needs the textarena extra")

import itertools

import agentgym
from agentgym.checker import check_env
from agentgym.env import SPLITS
from agentgym.envs.textarena import GAMES, TextArenaEnv
from agentgym.errors import ConfigError
from tests.integrations.helpers import evaluate_cli, train_one_iteration


def play_out(env: TextArenaEnv, task_id: str, seed: int = 0) -> tuple[list[dict], float]:
    _, info = env.reset(seed=seed, options={"task_id": task_id})
    infos = [info]
    for _ in range(30):
        _, reward, terminated, _, info = env.step(env.expert_action())
        infos.append(info)
        if terminated:
            return infos, reward
    raise AssertionError("the game did not end")


@pytest.mark.parametrize("game", sorted(GAMES))
def test_levels_are_split_by_position(game: str) -> None:
    env = TextArenaEnv(game=game)
    ids = {s: set(env.task_ids(s)) for s in SPLITS}
    assert all(ids.values())
    assert not (ids["train"] & ids["test"]) and not (ids["train"] & ids["valid"])
    assert sum(map(len, ids.values())) == len(GAMES[game].levels())


@pytest.mark.parametrize("opponent", ["rule", "random", "expert"])
def test_nim_expert_wins_every_level_against_any_opponent(opponent: str) -> None:
    env = TextArenaEnv(game="Nim-v0", opponent=opponent)
    for split in SPLITS:
        for task_id in env.task_ids(split):
            infos, reward = play_out(env, task_id)
            assert reward == 1.0 and infos[-1]["success"] and infos[-1]["score"] == 1.0
            assert {i["agent_id"] for i in infos} == {"player0"}


def test_tictactoe_against_the_rule_bot() -> None:
    env = TextArenaEnv(game="TicTacToe-v0")
    obs, info = env.reset(seed=0, options={"task_id": "tictactoe-opening-4"})
    assert "Current Board" in obs and "You are Player 1" in info["instruction"]
    assert "[4]" not in info["admissible_actions"] and len(info["admissible_actions"]) == 8
    key = info["state_key"]
    obs, _, terminated, _, info = env.step("[4]")  # occupied: TextArena refuses it
    assert not info["action_valid"] and not terminated and info["state_key"] == key
    assert obs.startswith("Invalid move")
    obs, _, _, _, info = env.step("[0]")  # accepted; the bot answers (blocking or at random)
    assert info["action_valid"] and info["state_key"] != key
    assert obs.count("placed their symbol") >= 3
    # the minimax expert never loses to the bot
    for task_id in env.task_ids("test"):
        infos, reward = play_out(env, task_id, seed=3)
        assert reward >= 0.0 and infos[-1]["score"] >= 0.5


def test_selfplay_tags_each_step_with_the_player_who_moved() -> None:
    env = agentgym.make("TextArenaSelfPlay-v0").unwrapped
    infos, reward = play_out(env, "tictactoe-opening-4")  # O took the centre; X moves
    # every info names the player to move: the one who makes the next step
    movers = [i["agent_id"] for i in infos[:-1]]
    assert movers == ["player1", "player0"] * (len(movers) // 2) + ["player1"] * (len(movers) % 2)
    end = infos[-1]
    assert end["agent_rewards"] == {"player0": 0.0, "player1": 0.0}  # perfect play draws
    assert end["success"] and end["score"] == 1.0 and reward == 0.0
    # a decided game: the loser's reward is in agent_rewards
    nim = TextArenaEnv(game="Nim-v0", mode="selfplay")
    infos, reward = play_out(nim, nim.task_ids("train")[0])
    winner = infos[-2]["agent_id"]  # the player who made the last move
    assert reward == 1.0 and infos[-1]["agent_rewards"][winner] == 1.0
    assert sorted(infos[-1]["agent_rewards"].values()) == [-1.0, 1.0]


def test_both_ids_pass_the_checker_and_bad_settings_are_errors() -> None:
    check_env("TextArena-v0")
    check_env("TextArena-v0", game="TicTacToe-v0")
    check_env("TextArenaSelfPlay-v0")
    with pytest.raises(ConfigError, match="Did you mean 'Nim-v0'"):
        TextArenaEnv(game="nim-v0")
    with pytest.raises(ConfigError, match="'opponent' or 'selfplay'"):
        TextArenaEnv(mode="coop")


@pytest.mark.slow
def test_train_one_iteration_then_the_model_is_the_opponent(tmp_path: Path) -> None:
    result = train_one_iteration(
        tmp_path / "run", "TextArena-v0", "env.max_steps=6", "policy.tiny.vocab_size=400"
    )
    summary = evaluate_cli(
        tmp_path / "eval", "TextArena-v0", result.run_dir, "--tasks", "2", "--max-tokens", "8"
    )
    assert summary["num_tasks"] == 2
    # self-play: both seats are the trained policy
    selfplay = evaluate_cli(
        tmp_path / "selfplay", "TextArenaSelfPlay-v0", result.run_dir, "--tasks", "2",
        "--max-tokens", "8",
    )  # fmt: skip
    assert selfplay["num_tasks"] == 2
    # any policy spec as the fixed opponent: here the trained tiny model
    env = TextArenaEnv(game="Nim-v0", opponent=str(result.run_dir), opponent_max_tokens=8)
    try:
        for task_id in env.task_ids("test")[:2]:
            infos, reward = play_out(env, task_id)
            assert reward == 1.0  # the expert beats it, whatever it answers
        assert env._opponent_policy is not None
    finally:
        env.close()


def test_rollouts_file_each_selfplay_step_under_the_player_who_moved() -> None:
    from agentgym.parsers import get_parser
    from agentgym.policies import SamplingParams, make_policy
    from agentgym.rollout import (
        EnvSpec,
        PromptBuilder,
        PromptConfig,
        RolloutEngine,
        make_pool,
        sample_tasks,
    )

    spec = EnvSpec("TextArenaSelfPlay-v0")
    parser = get_parser("think_action")
    engine = RolloutEngine(
        make_pool("inline", spec, 2, seed=0),
        make_policy("expert"),
        parser,
        PromptBuilder(PromptConfig(), parser),
        SamplingParams(),
        max_steps=20,
    )
    try:
        trajectories = engine.run(sample_tasks(spec, "test", 2, seed=0))
    finally:
        engine.close()
    for traj in trajectories:
        agents = [step.agent for step in traj.steps]
        assert set(agents) == {"player0", "player1"}
        assert all(a != b for a, b in itertools.pairwise(agents))  # they alternate
        assert traj.steps[-1].info["agent_rewards"].keys() == {"player0", "player1"}
