"""ALFWorld-v0 on the real TextWorld-PDDL engine: contract, expert, state keys, splits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import agentgym
from agentgym.env import SPLITS
from agentgym.envs.alfworld import TASK_TYPES, ALFWorldEnv, MissingDependencyError
from agentgym.envs.alfworld.env import NOTHING_HAPPENS, ends_subgoal
from agentgym.envs.alfworld.scenes import seen_floor_plans, unseen_floor_plans
from agentgym.errors import NoExpertError
from tests.alfworld.conftest import NUM_GAMES

pytestmark = pytest.mark.alfworld

AGENTGYM = str(Path(sys.executable).with_name("agentgym"))


def all_tasks(env: ALFWorldEnv) -> list[str]:
    return [t for split in SPLITS for t in env.task_ids(split)]


def game_record(env: ALFWorldEnv, task_id: str) -> dict:
    with open(env.game_file(task_id)) as f:
        return json.load(f)


def play(env, actions):
    """Step through ``actions``; return the last (observation, info)."""
    obs, info = None, None
    for action in actions:
        obs, _, _, _, info = env.step(action)
    return obs, info


def test_first_observation_is_alfworlds(env: ALFWorldEnv) -> None:
    obs, info = env.reset(seed=0, options={"task_id": "train-0"})
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-")
    assert "You are in the middle of a room. Looking quickly around you, you see a " in obs
    assert f"Your task is to: {info['instruction']}" in obs
    assert info["task_type"] == "pick_and_place_simple"
    assert info["admissible_actions"] and all(
        a.startswith(("go to ", "help", "inventory", "look")) for a in info["admissible_actions"]
    )
    assert info["split"] == "train" and info["action_valid"] and not info["success"]


def test_the_six_task_types_appear_in_every_split(env: ALFWorldEnv) -> None:
    for split in SPLITS:
        kinds = set()
        for task_id in env.task_ids(split):
            _, info = env.reset(seed=0, options={"task_id": task_id})
            kinds.add(info["task_type"])
        assert kinds == set(TASK_TYPES), split


def test_expert_solves_every_task_of_every_split(env: ALFWorldEnv) -> None:
    for task_id in all_tasks(env):
        _, info = env.reset(seed=0, options={"task_id": task_id})
        walkthrough = game_record(env, task_id)["walkthrough"]
        taken = []
        for _ in range(50):
            taken.append(env.expert_action())
            _, reward, terminated, _, info = env.step(taken[-1])
            if terminated:
                break
        assert info["success"] and info["score"] == 1.0 and reward == 1.0, task_id
        assert taken == walkthrough  # the planner's plan, checked when the game was made


def test_expert_replans_after_the_agent_leaves_the_plan(env: ALFWorldEnv) -> None:
    for i, task_id in enumerate(all_tasks(env)):
        env.reset(seed=0, options={"task_id": task_id})
        env.expert_action()  # a plan exists, then the agent goes its own way
        rng = np.random.default_rng(i)
        terminated = False
        for _ in range(6):
            _, _, terminated, _, info = env.step(env.random_action(rng))
            if terminated:
                break
        for _ in range(40):
            if terminated:
                break
            _, _, terminated, _, info = env.step(env.expert_action())
        assert info["success"], task_id


def test_expert_subgoals_are_the_plans_object_interactions(env: ALFWorldEnv) -> None:
    """Each expert action serves the plan's next object interaction (take, move, heat, ...)
    and starts it at the episode's start and right after the previous interaction."""
    keeps = 0
    for task_id in env.task_ids("train"):
        env.reset(seed=0, options={"task_id": task_id})
        played: list[tuple[str, str, bool]] = []
        terminated = False
        while not terminated and len(played) < 50:
            subgoal, starts = env.expert_subgoal()
            played.append((env.expert_action(), subgoal, starts))
            _, _, terminated, _, _ = env.step(played[-1][0])
        assert terminated, task_id
        actions = [a for a, _, _ in played]
        assert ends_subgoal(actions[-1])  # the goal is reached by an interaction
        for i, (_, subgoal, starts) in enumerate(played):
            assert subgoal == next(a for a in actions[i:] if ends_subgoal(a)), (task_id, i)
            assert starts == (i == 0 or ends_subgoal(actions[i - 1])), (task_id, i)
        keeps += sum(not starts for _, _, starts in played)
    assert keeps >= 5  # most interactions need a walk (and an opening) first
    with pytest.raises(NoExpertError):  # the episode has ended
        env.expert_subgoal()


def test_a_snapshot_keeps_the_subgoal_under_way(env: ALFWorldEnv) -> None:
    env.reset(seed=0, options={"task_id": "train-0"})
    env.step(env.expert_action())  # 'go to ...': on the way to the first interaction
    under_way = env.expert_subgoal()
    assert under_way[1] is False
    snap = env.snapshot()
    env.reset(seed=0, options={"task_id": "train-1"})
    assert env.expert_subgoal()[1] is True
    env.restore(snap)
    assert env.expert_subgoal() == under_way


def test_random_policy_rarely_succeeds(cache_dir: Path) -> None:
    env = agentgym.make("ALFWorld-v0", num_games=NUM_GAMES, cache_dir=str(cache_dir))
    wins = 0
    for task_id in all_tasks(env.unwrapped):
        _, info = env.reset(seed=1, options={"task_id": task_id})
        rng = np.random.default_rng(1)
        terminated = truncated = False
        while not (terminated or truncated):  # the registered turn limit (50) ends it
            _, _, terminated, truncated, info = env.step(env.unwrapped.random_action(rng))
        wins += info["success"]
    env.close()
    assert wins <= 3, f"a random walk solved {wins} of 18 games"


def _openable_receptacle(env: ALFWorldEnv) -> tuple[str, str]:
    """(a train task, a receptacle in it that opens)."""
    for task_id in env.task_ids("train"):
        _, info = env.reset(seed=0, options={"task_id": task_id})
        for go in [a for a in info["admissible_actions"] if a.startswith("go to ")]:
            _, _, _, _, there = env.step(go)
            name = go.removeprefix("go to ")
            if f"open {name}" in there["admissible_actions"]:
                return task_id, name
    raise AssertionError("no openable receptacle in the train games")


def test_equal_states_reached_by_different_paths_share_a_key(env: ALFWorldEnv) -> None:
    task_id, box = _openable_receptacle(env)
    _, info = env.reset(seed=0, options={"task_id": task_id})
    others = [a for a in info["admissible_actions"] if a.startswith("go to ") and box not in a]
    _, direct = play(env, [f"go to {box}"])
    env.reset(seed=3, options={"task_id": task_id})
    # a detour, a look around, opening and closing: the same world state in the end
    _, detour = play(env, [others[0], "look", f"go to {box}", f"open {box}", f"close {box}"])
    assert detour["state_key"] == direct["state_key"]
    _, opened = play(env, [f"open {box}"])
    assert opened["state_key"] != direct["state_key"]


def test_nothing_happens_from_different_states_gets_different_keys(env: ALFWorldEnv) -> None:
    _, start = env.reset(seed=0, options={"task_id": "train-2"})
    obs_a, _, _, _, a = env.step("take the moon from the sky")
    go = next(x for x in start["admissible_actions"] if x.startswith("go to "))
    play(env, [go])
    obs_b, reward, terminated, _, b = env.step("take the moon from the sky")
    assert obs_a == obs_b == NOTHING_HAPPENS
    assert not a["action_valid"] and not b["action_valid"] and reward == 0 and not terminated
    assert a["state_key"] == start["state_key"]  # an invalid action changes nothing
    assert b["state_key"] != a["state_key"]


def test_invalid_actions_leave_the_state_and_plan_alone(env: ALFWorldEnv) -> None:
    _, info = env.reset(seed=0, options={"task_id": "valid-3"})
    first = env.expert_action()
    before = env.canonical_state()
    for junk in ("dance", "go to the moon", "open fridge 99", "💥", "x" * 5000, ""):
        _, _, _, _, after = env.step(junk)
        assert after["action_valid"] is False and after["state_key"] == info["state_key"]
    assert env.canonical_state() == before and env.expert_action() == first


def test_invalid_action_messages_do_not_pile_up(env: ALFWorldEnv) -> None:
    first, _ = env.reset(seed=0, options={"task_id": "valid-3"})
    for _ in range(40):
        obs, *_ = env.step("")
    assert obs == f"Invalid action: the action is empty.\n\n{first}"
    assert env.step("dance")[0] == "Nothing happens."
    for _ in range(3):
        obs, *_ = env.step("")
    assert obs == "Invalid action: the action is empty.\n\nNothing happens."


def test_commands_are_matched_after_folding_case_and_whitespace(env: ALFWorldEnv) -> None:
    _, info = env.reset(seed=0, options={"task_id": "test-0"})
    go = next(x for x in info["admissible_actions"] if x.startswith("go to "))
    obs, _, _, _, after = env.step(f"  {go.upper().replace(' ', '  ')}. ")
    assert after["action_valid"] and obs.startswith("You arrive at ")


def test_canonical_state_lists_the_facts_actions_change(env: ALFWorldEnv) -> None:
    env.reset(seed=0, options={"task_id": "train-1"})
    facts = env.canonical_state().splitlines()
    assert facts == sorted(facts)
    assert any(f.startswith("atlocation(agent1, loc_bar_") for f in facts)
    assert any(f.startswith("inreceptacle(") for f in facts)
    assert not any(f.startswith(("checked(", "canContain(", "receptacletype(")) for f in facts)


def test_same_task_and_seed_give_the_same_episode(env: ALFWorldEnv, cache_dir: Path) -> None:
    other = ALFWorldEnv(num_games=NUM_GAMES, cache_dir=cache_dir)
    for task_id in ("train-4", "test-5"):
        runs = []
        for e in (env, other, env):
            obs, info = e.reset(seed=5, options={"task_id": task_id})
            rng = np.random.default_rng(5)
            seen = [(obs, info["state_key"], tuple(info["admissible_actions"]))]
            for _ in range(25):
                obs, reward, terminated, _, info = e.step(e.random_action(rng))
                seen.append((obs, reward, info["state_key"], tuple(info["admissible_actions"])))
                if terminated:
                    break
            runs.append(seen)
        assert runs[0] == runs[1] == runs[2]
    other.close()


def test_generation_is_deterministic_from_the_seed(tmp_path: Path, cache_dir: Path) -> None:
    fresh = ALFWorldEnv(num_games=NUM_GAMES, cache_dir=tmp_path)
    session = ALFWorldEnv(num_games=NUM_GAMES, cache_dir=cache_dir)
    for task_id in ("train-0", "valid-5", "test-3"):
        assert game_record(fresh, task_id) == game_record(session, task_id)
    reseeded = ALFWorldEnv(num_games=NUM_GAMES, cache_dir=tmp_path, seed=1)
    assert (
        game_record(reseeded, "train-0")["pddl_problem"]
        != game_record(fresh, "train-0")["pddl_problem"]
    )
    for e in (fresh, session, reseeded):
        e.close()


def test_test_floor_plans_are_never_used_in_train_or_valid(env: ALFWorldEnv) -> None:
    plans = {s: set() for s in SPLITS}
    for split in SPLITS:
        for task_id in env.task_ids(split):
            plans[split].add(int(game_record(env, task_id)["agentgym"]["floor_plan"][9:]))
    assert plans["test"] <= set(unseen_floor_plans())
    assert plans["train"] | plans["valid"] <= set(seen_floor_plans())
    assert not set(seen_floor_plans()) & set(unseen_floor_plans())


def test_train_and_valid_never_start_alike(env: ALFWorldEnv) -> None:
    starts = {}
    for split in ("train", "valid"):
        for task_id in env.task_ids(split):
            obs, _ = env.reset(seed=0, options={"task_id": task_id})
            assert starts.setdefault(obs, split) == split


def test_an_unknown_task_is_refused_with_the_id_format(env: ALFWorldEnv) -> None:
    with pytest.raises(ValueError, match="ids look like 'train-0'"):
        env.reset(options={"task_id": "train-6"})


def test_without_textworld_making_the_env_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "textworld", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'agentgym\[alfworld\]'"):
        agentgym.make("ALFWorld-v0")


def test_importing_agentgym_does_not_import_textworld() -> None:
    code = (
        "import sys, gymnasium, agentgym, agentgym.envs.alfworld; "
        "gymnasium.spec('agentgym/ALFWorld-v0'); "
        "print(sorted(m for m in ('textworld', 'alfworld', 'fast_downward') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_env_check_cli_passes(tmp_path: Path) -> None:
    env = {**os.environ, "AGENTGYM_CACHE_DIR": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run(
        [AGENTGYM, "env", "check", "ALFWorld-v0"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ALFWorld-v0 follows the text-env contract" in done.stdout
