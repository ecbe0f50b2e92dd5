"""``SearchRoles-v0``: Search-v0 played by a planner, a searcher and an answerer of one
model. The env's turns and roles, the rollout engine rendering each turn with the acting
role's prompt (both prompt styles), and ``drmas`` training on it end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import agentgym
from agentgym.checker import check_env
from agentgym.credit import compute_advantages
from agentgym.envs.search import ROLE_PROMPTS, ROLES, SearchRolesEnv
from agentgym.errors import ConfigError
from agentgym.inputs import missing_inputs
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
from agentgym.trainers.rl import train
from agentgym.trainers.tracking import read_metrics
from agentgym.trajectory import Trajectory, flatten, read_jsonl
from tests.trainers.conftest import small_config


def fresh(**kwargs) -> tuple[SearchRolesEnv, str, dict]:
    env = agentgym.make("SearchRoles-v0", **kwargs)
    obs, info = env.reset(seed=0, options={"task_id": "train-0"})
    return env, obs, info


def test_the_conformance_checker_passes() -> None:
    report = check_env("SearchRoles-v0")
    assert all(problem is None for _rule, problem, _t in report.results)


def test_the_expert_plans_searches_and_answers_in_turn() -> None:
    env, obs, info = fresh()
    assert info["agent_id"] == "planner" and "Now it is the planner's turn." in obs
    roles, prompts = [info["agent_id"]], {info["agent_id"]: info["agent_prompt"]}
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        done = terminated or truncated
        roles.append(info["agent_id"])
        prompts[info["agent_id"]] = info["agent_prompt"]
    hops = len(env.unwrapped.question.hops)
    # planner, one search per hop, the searcher's hand-over (unless the budget ran out), answer
    handover = 1 if hops < env.unwrapped.max_searches else 0
    assert roles[: 2 + hops] == ["planner"] + ["searcher"] * (hops + 1)
    assert len(roles) == 1 + 1 + hops + handover + 1
    assert terminated and reward == 1.0 and info["success"]
    assert info["num_tool_calls"] == hops and info["reward_components"]["em"] == 1.0
    assert set(prompts) == set(ROLES) and len(set(prompts.values())) == 3
    assert "{max_searches}" not in prompts["searcher"] and "3 searches" in prompts["searcher"]


def test_a_role_that_does_another_roles_job_keeps_the_turn() -> None:
    env, _obs, _info = fresh(max_searches=2)
    obs, _, _, _, info = env.step("just search it")  # the planner must write <plan>
    assert not info["action_valid"] and info["agent_id"] == "planner"
    assert "planner writes the facts to look up inside <plan> </plan>" in obs
    env.step("<plan> find the person </plan>")
    obs, _, term, _, info = env.step("<answer> linguist </answer>")
    assert not info["action_valid"] and not term and info["agent_id"] == "searcher"
    assert "answering is the answerer's turn" in obs
    for k in range(2):  # the budget of two searches passes the turn on
        _, _, _, _, info = env.step(f"<search> Jakriath Thioley {k} </search>")
        assert info["action_valid"]
    assert info["agent_id"] == "answerer" and info["num_tool_calls"] == 2
    obs, _, term, _, info = env.step("<search> more </search>")
    assert not info["action_valid"] and not term and "searching was" in obs
    _, reward, term, _, info = env.step("<answer> linguist </answer>")
    assert term and reward == 1.0 and info["agent_id"] == "answerer"


def test_done_hands_over_early_and_the_board_shows_the_passages() -> None:
    env, _obs, _info = fresh()
    env.step("<plan> find the person </plan>")
    obs, _, _, _, info = env.step("<search> Jakriath Thioley </search>")
    assert "Plan: find the person" in obs and "<information>Doc 1(" in obs
    assert "2 searches left" in obs
    obs, _, _, _, info = env.step("<done></done>")
    assert info["agent_id"] == "answerer" and info["num_tool_calls"] == 1
    assert "Now it is the answerer's turn." in obs and "<information>Doc 1(" in obs


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="tags only"):
        SearchRolesEnv(protocol="tools")
    with pytest.raises(ConfigError, match="Did you mean 'planner'"):
        SearchRolesEnv(role_prompts={"planer": "x"})
    with pytest.raises(ConfigError, match="max_searches"):
        SearchRolesEnv(max_searches=0)
    env = SearchRolesEnv(role_prompts={"answerer": "Answer it. {format_instructions}"})
    assert env.role_prompts["answerer"] == "Answer it. {format_instructions}"
    assert env.role_prompts["planner"] == ROLE_PROMPTS["planner"]


def test_the_env_declares_the_agent_keys_drmas_and_egrpo_read() -> None:
    assert {"agent_id", "agent_prompt", "gold_entities"} <= set(SearchRolesEnv.info_keys)
    assert missing_inputs(["gold_entities", "reward_components"], "SearchRoles-v0", {}) == []


def play(style: str, policy: str = "expert", n: int = 2) -> list[Trajectory]:
    parser = get_parser("think_action")
    engine = RolloutEngine(
        make_pool("inline", EnvSpec("SearchRoles-v0"), 4),
        make_policy(policy),
        parser,
        PromptBuilder(PromptConfig(style=style), parser),
        SamplingParams(seed=0),
        max_steps=8,
    )
    with engine:
        return engine.run(sample_tasks(EnvSpec("SearchRoles-v0"), "train", 3, seed=1), n=n)


def rendered(role: str) -> str:
    return (
        ROLE_PROMPTS[role]
        .replace("{max_searches}", "3")
        .replace("{format_instructions}", get_parser("think_action").instructions)
    )


def test_the_engine_renders_each_window_turn_with_the_acting_roles_prompt() -> None:
    trajectories = play("window")
    assert all(t.success for t in trajectories)
    for t in trajectories:
        assert t.steps[0].agent == "planner" and t.steps[-1].agent == "answerer"
        for step in t.steps:
            system = step.prompt_messages[0]
            assert system == {"role": "system", "content": rendered(step.agent)}
        assert t.metadata["reset_info"]["agent_prompt"] == ROLE_PROMPTS["planner"]


def test_the_engine_heads_each_chat_turn_with_the_acting_roles_prompt() -> None:
    trajectories = play("chat")
    assert all(t.success for t in trajectories)
    for t in trajectories:
        messages = t.steps[-1].prompt_messages
        users = [m["content"] for m in messages if m["role"] == "user"]
        assert len(users) == len(t.steps)
        for step, text in zip(t.steps, users, strict=True):
            assert text.startswith(rendered(step.agent) + "\n\n")


def test_drmas_normalises_each_role_on_its_own() -> None:
    trajectories = play("window", policy="random", n=4)
    columns = flatten(trajectories)
    assert set(columns.agent) <= set(ROLES) and "planner" in set(columns.agent)
    adv = compute_advantages("drmas", **columns.credit_kwargs(), agent=columns.agent)
    for g in np.unique(columns.group):
        for role in ROLES:
            rows = (columns.group == g) & (columns.agent == role)
            if rows.sum() > 1 and np.ptp(columns.reward[rows]) == 0:
                assert np.allclose(adv[rows], 0.0)


@pytest.mark.slow
def test_drmas_trains_on_search_roles(tmp_path: Path) -> None:
    cfg = small_config(
        tmp_path / "run",
        "env.id=SearchRoles-v0",
        "env.max_steps=6",
        "env.kwargs={max_searches: 2}",
        "env.history_length=0",
        "policy.tiny.episodes=16",
        "policy.tiny.vocab_size=600",
        "policy.sampling.max_tokens=24",
        "policy.val_sampling.max_tokens=24",
        "env.rollout.max_prompt_tokens=4096",
        "algorithm.adv_estimator=drmas",
        "trainer.total_iterations=1",
        "trainer.val_every=0",
        "trainer.test_tasks=0",
        "trainer.save_rollouts=2",
        "trainer.plots=false",
    )
    result = train(cfg)
    record = [r for r in read_metrics(result.run_dir) if "train/success" in r][-1]
    assert record["train/samples"] > 0 and "credit/adv_std" in record
    saved = read_jsonl(Path(result.run_dir) / "rollouts" / "iter_000001.jsonl")
    assert saved and all(s.agent in ROLES for t in saved for s in t.steps)
    # the advantages the update used are drmas's over (group, role) buckets
    columns = flatten(saved)
    want = compute_advantages("drmas", **columns.credit_kwargs(), agent=columns.agent)
    got = np.concatenate([t.metadata["advantages"] for t in saved])
    np.testing.assert_allclose(got, want, atol=1e-6)
