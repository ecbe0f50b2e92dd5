"""``agentgym/WebShop-v0``: the contract, WebShop's pages and text, navigation, state keys,
bad input, the expert and random policies, and rollouts."""

from __future__ import annotations

import numpy as np
import pytest

import agentgym
from agentgym.env import SPLITS
from agentgym.envs.webshop import WebShopEnv
from agentgym.envs.webshop.expert import instruction_query, option_choices
from agentgym.errors import ConfigError
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


@pytest.fixture(scope="module")
def env() -> WebShopEnv:
    return WebShopEnv()


def play(env, policy, task_id: str, max_steps: int = 15) -> tuple[dict, list[str], list[str]]:
    """One episode; the last info, the actions and the observations."""
    obs, info = env.reset(seed=0, options={"task_id": task_id})
    actions, observations = [], [obs]
    for _ in range(max_steps):
        action = policy()
        obs, _, terminated, truncated, info = env.step(action)
        actions.append(action)
        observations.append(obs)
        if terminated or truncated:
            break
    return info, actions, observations


def task_with_options(env: WebShopEnv, n_options: int = 2) -> str:
    return next(g.task_id for g in env.catalog.goals if len(g.options) == n_options)


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("mode", ["text", "text_rich"])
def test_the_checker_passes(mode: str) -> None:
    agentgym.check_env("WebShop-v0", observation_mode=mode, tasks_per_split=5)


def test_registered_with_a_turn_limit_of_15_and_the_think_action_parser() -> None:
    env = agentgym.make("WebShop-v0")
    assert agentgym.registry.entry("WebShop-v0").max_steps == 15
    assert env.unwrapped.action_parser == "think_action"
    parsed = get_parser("think_action").parse("<think>x</think><action>click[< prev]</action>")
    assert parsed.action == "click[< prev]"
    env.reset(options={"task_id": env.unwrapped.task_ids("train")[0]})
    truncated = False
    for _ in range(15):
        *_, truncated, _ = env.step("click[nothing]")
    assert truncated


def test_expert_solves_every_goal_of_every_split(env: WebShopEnv) -> None:
    for split in SPLITS:
        results = [play(env, env.expert_action, t) for t in env.task_ids(split)]
        scores = [r[0]["score"] for r in results]
        assert np.mean(scores) >= 0.95, split
        assert np.mean([r[0]["success"] for r in results]) >= 0.9, split
        assert max(len(r[1]) for r in results) <= 15
        assert {r[0]["task_type"] for r in results} == {
            "beauty", "electronics", "fashion", "food", "furniture",
        }  # fmt: skip


def test_random_policy_scores_near_zero(env: WebShopEnv) -> None:
    rng = np.random.default_rng(0)
    for split in SPLITS:
        ids = env.task_ids(split)[:100]
        results = [play(env, lambda: env.random_action(rng), t)[0] for t in ids]
        assert np.mean([r["success"] for r in results]) < 0.05
        assert np.mean([r["score"] for r in results]) < 0.25


# ----------------------------------------------------------------------------- pages and text


def test_pages_read_like_webshops_text_mode(env: WebShopEnv) -> None:
    task = task_with_options(env)
    goal = env.catalog.goal(task)
    obs, info = env.reset(options={"task_id": task})
    assert obs == f"WebShop [SEP] Instruction: [SEP] {goal.instruction} [SEP] Search"
    assert info["instruction"] == goal.instruction and info["task_type"] == goal.category
    assert info["admissible_actions"] == ["search[<your query>]"]
    assert info["state_key"] == "search" and info["page"] == "search"

    query = instruction_query(goal.instruction)
    obs, *_, info = env.step(f"search[{query.upper()}]")
    results = env.catalog.search(query)
    first = env.catalog.products[results[0]]
    assert obs.startswith(
        f"Instruction: [SEP] {goal.instruction} [SEP] Back to Search [SEP] "
        f"Page 1 (Total results: {len(results)}) [SEP] Next > [SEP] "
        f"{first.asin} [SEP] {first.name} [SEP] {first.price_tag} [SEP] "
    )
    assert obs.count(" [SEP] B0") == 10
    assert info["admissible_actions"][:2] == ["click[back to search]", "click[next >]"]
    assert info["admissible_actions"][2:] == [f"click[{a.lower()}]" for a in results[:10]]

    obs, *_, info = env.step(f"click[{goal.asin.lower()}]" if goal.asin in results[:10] else
                             f"click[{results[0].lower()}]")  # fmt: skip
    product = env.catalog.products[env.page.asin]
    option_text = " [SEP] ".join(
        f"{name} [SEP] " + " [SEP] ".join(values) for name, values in product.options.items()
    )
    assert obs == (
        f"Instruction: [SEP] {goal.instruction} [SEP] Back to Search [SEP] < Prev [SEP] "
        f"{option_text} [SEP] {product.name} [SEP] Price: {product.price_tag} [SEP] "
        f"Rating: {product.rating} [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
    )
    values = [v for vs in product.options.values() for v in vs]
    assert info["admissible_actions"] == [
        "click[back to search]", "click[< prev]", "click[description]", "click[features]",
        "click[reviews]", "click[buy now]", *(f"click[{v}]" for v in values),
    ]  # fmt: skip

    obs, *_ = env.step("click[Features]")
    assert obs.endswith("< Prev [SEP] " + " [SEP] ".join(product.bullet_points))
    obs, *_ = env.step("click[< prev]")
    obs, *_ = env.step("click[description]")
    assert obs.endswith(f"< Prev [SEP] {product.description}")
    obs, *_ = env.step("click[< prev]")
    obs, *_ = env.step("click[reviews]")
    for review in product.reviews:
        assert f'"{review.title}" [SEP] {review.score} [SEP] {review.body}' in obs


def test_navigation_pages_options_and_purchase(env: WebShopEnv) -> None:
    env.reset(options={"task_id": task_with_options(env)})
    env.step("search[cotton t-shirt]")
    assert env.page.page == 1
    _, _, _, _, info = env.step("click[next >]")
    assert env.page.page == 2 and "click[< prev]" in info["admissible_actions"]
    second = env.catalog.search("cotton t-shirt")[10]
    env.step(f"click[{second.lower()}]")
    assert (env.page.kind, env.page.asin, env.page.page) == ("item", second, 2)
    product = env.catalog.products[second]
    name, values = next(iter(product.options.items()))
    env.step(f"click[{values[0]}]")
    env.step(f"click[{values[-1]}]")  # a second click in a group replaces the first
    assert env.page.option_dict == {name: values[-1]}
    env.step("click[reviews]")
    env.step("click[< prev]")
    assert env.page.kind == "item" and env.page.option_dict == {name: values[-1]}
    env.step("click[< prev]")
    assert (env.page.kind, env.page.page) == ("results", 2)
    env.step("click[back to search]")
    assert env.page.kind == "search"
    env.step("search[cotton t-shirt]")
    env.step(f"click[{env.catalog.search('cotton t-shirt')[0].lower()}]")
    obs, reward, terminated, _, info = env.step("click[buy now]")
    assert terminated and 0.0 <= reward <= 1.0 and info["score"] == reward
    thanks = "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0)"
    assert obs == f"{thanks} [SEP] {reward}"
    assert info["success"] == (reward == 1.0) and info["admissible_actions"] == []
    assert set(info["reward_info"]) >= {"r_type", "r_att", "r_option", "price_ok"}
    parts = info["reward_components"]
    assert set(parts) == {"attribute", "option", "price", "type"}
    assert sum(parts.values()) == pytest.approx(reward)


def test_last_results_page_has_no_next_button(env: WebShopEnv) -> None:
    env.reset(options={"task_id": env.task_ids("train")[0]})
    env.step("search[shampoo]")
    total = len(env.catalog.search("shampoo"))
    for _ in range((total - 1) // 10):
        env.step("click[next >]")
    _, _, _, _, info = env.step("click[next >]")
    assert not info["action_valid"] and "click[next >]" not in info["admissible_actions"]


def test_text_rich_mode_marks_buttons_and_choices() -> None:
    env = WebShopEnv(observation_mode="text_rich")
    task = task_with_options(env)
    obs, _ = env.reset(options={"task_id": task})
    assert obs.splitlines()[:3] == ["WebShop", "Instruction:", env.goal.instruction]
    assert "[button] Search [button_]" in obs
    while not env.page.options:
        obs, *_ = env.step(env.expert_action())
    chosen = next(iter(env.page.option_dict.values()))
    assert obs.startswith(f"You have clicked {chosen}.\n")
    assert f"  [clicked button] {chosen} [clicked button_]" in obs
    obs, *_ = env.step("click[< prev]")
    assert f"\n[clicked button] {env.goal.asin} [clicked button_]" in obs
    others = [a for a in env.shop.page_results(env.page) if a != env.goal.asin]
    assert f"\n[button] {others[0]} [button_]" in obs


# ----------------------------------------------------------------------------- state keys


def test_state_keys_name_the_page_not_the_history(env: WebShopEnv) -> None:
    task = task_with_options(env)
    env.reset(options={"task_id": task})
    keys = [env.step("search[running shoes]")[4]["state_key"]]
    asin = env.catalog.search("running shoes")[0]
    keys.append(env.step(f"click[{asin.lower()}]")[4]["state_key"])
    value = next(iter(env.catalog.products[asin].options.values()))[0]
    keys.append(env.step(f"click[{value}]")[4]["state_key"])
    keys.append(env.step("click[features]")[4]["state_key"])
    keys.append(env.step("click[< prev]")[4]["state_key"])
    assert len(set(keys[:4])) == 4 and keys[4] == keys[2]  # back on the item, option kept
    # the same results page reached by another route has the same key
    env.step("click[< prev]")
    again = env.step("click[back to search]")[4]["state_key"]
    assert again == "search"
    assert env.step("search[  RUNNING   shoes ]")[4]["state_key"] == keys[0]
    # another query, same page number: another key
    env.step("click[back to search]")
    assert env.step("search[running]")[4]["state_key"] != keys[0]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("click[", "is not an action"),
        ("click[]", "names no button"),
        ("search[]", "query is empty"),
        ("search[   ]", "query is empty"),
        ("search[" + "shoes " * 100 + "]", "at most 500 are allowed"),
        ("search[" + "x" * 100_000 + "]", "characters long"),
        ("buy now", "is not an action"),
        ("click[search]", "only has the search bar"),
        ("click[buy now]", "only has the search bar"),
    ],
)
def test_bad_actions_on_the_search_page(env: WebShopEnv, action: str, message: str) -> None:
    env.reset(options={"task_id": env.task_ids("train")[0]})
    obs, reward, terminated, _, info = env.step(action)
    assert message in obs and obs.endswith("[SEP] Search")
    assert (reward, terminated, info["action_valid"]) == (0, False, False)
    assert info["state_key"] == "search"


def test_bad_clicks_on_a_results_page_suggest_the_closest(env: WebShopEnv) -> None:
    env.reset(options={"task_id": env.task_ids("train")[0]})
    env.step("search[shampoo]")
    key = env.page.key()
    for action, message in (
        ("click[next]", "Did you mean 'next >'?"),
        ("click[buy now]", "there is no 'buy now' to click"),
        ("search[lipstick]", "no search bar on this page"),
        ("click[B0NOTHERE0]", "there is no 'b0nothere0'"),
        ("click[\x01\x02]", "names no button"),
        ("click[\x00]", "NUL character"),
    ):
        obs, _, terminated, _, info = env.step(action)
        assert message in obs, action
        assert not info["action_valid"] and not terminated and info["state_key"] == key
        assert "Page 1 (Total results:" in obs  # the page follows the feedback


def test_arguments_are_lowercased_and_spaced_like_webshop(env: WebShopEnv) -> None:
    env.reset(options={"task_id": env.task_ids("train")[0]})
    _, _, _, _, info = env.step("  SEARCH [ Shampoo ]  ")
    assert info["action_valid"] and env.page.query == "shampoo"
    asin = env.catalog.search("shampoo")[0]
    _, _, _, _, info = env.step(f"Click[{asin}]")
    assert info["action_valid"] and env.page.asin == asin


def test_bad_config_is_a_typed_error() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'text_rich'"):
        WebShopEnv(observation_mode="text-rich")
    with pytest.raises(ConfigError, match="max_query_chars"):
        WebShopEnv(max_query_chars=0)


# ----------------------------------------------------------------------------- expert details


def test_expert_picks_goal_options_and_searches_with_instruction_words(env: WebShopEnv) -> None:
    goal = env.catalog.goal(task_with_options(env))
    assert "price" not in instruction_query(goal.instruction)
    words = set(instruction_query(goal.instruction).split())
    assert not {"i", "need", "looking", "a", "the"} & words
    product = env.catalog.products[goal.asin]
    picked = dict(option_choices(product, goal))
    assert sorted(picked.values()) == sorted(goal.options)
    env.reset(options={"task_id": goal.task_id})
    info, actions, _ = play(env, env.expert_action, goal.task_id)
    assert info["success"] and actions[-1] == "click[buy now]"
    assert {f"click[{v}]" for v in goal.options} <= set(actions)


def test_expert_recovers_from_a_wrong_turn(env: WebShopEnv) -> None:
    goal = env.catalog.goal(env.task_ids("valid")[3])
    env.reset(options={"task_id": goal.task_id})
    env.step("search[dark chocolate]")
    wrong = next(a for a in env.catalog.search("dark chocolate") if a != goal.asin)
    env.step(f"click[{wrong.lower()}]")
    env.step("click[reviews]")
    for _ in range(14):
        *_, terminated, _, info = env.step(env.expert_action())
        if terminated:
            break
    assert info["success"]


# ----------------------------------------------------------------------------- rollouts


def engine(policy: str) -> RolloutEngine:
    parser = get_parser("think_action")
    return RolloutEngine(
        make_pool("inline", EnvSpec("WebShop-v0"), 8),
        make_policy(policy),
        parser,
        PromptBuilder(PromptConfig(style="window"), parser),
        SamplingParams(),
        max_steps=15,
    )


def test_rollout_engine_runs_expert_and_random_groups() -> None:
    tasks = sample_tasks(EnvSpec("WebShop-v0"), "test", 6, seed=0)
    expert = engine("expert").run(tasks, n=2)
    assert len(expert) == 12 and all(t.success and t.status == "terminated" for t in expert)
    step = expert[0].steps[0]
    assert step.response_text.startswith("<action>search[") and step.state_key == "search"
    assert "Available actions: search[<your query>]" in step.prompt_messages[-1]["content"]
    random = engine("random").run(tasks, n=2)
    assert len(random) == 12 and all(len(t.steps) <= 15 for t in random)
    assert sum(t.success for t in random) <= 2


def test_show_attrs_adds_the_attributes_page() -> None:
    env = WebShopEnv(show_attrs=True)
    env.reset(options={"task_id": env.task_ids("test")[0]})
    while env.page.kind != "item":
        _, _, _, _, info = env.step(env.expert_action())
    assert "click[attributes]" in info["admissible_actions"]
    product = env.catalog.products[env.page.asin]
    obs, *_ = env.step("click[attributes]")
    assert obs.endswith(
        " [SEP] ".join([*product.attributes, product.category, product.query])
        + f" [SEP] {product.product_category}"
    )


def test_synthetic_goals_are_option_combinations_the_expert_solves() -> None:
    env = WebShopEnv(goals="synthetic")
    assert len(env.catalog.goals) > 5 * len(env.catalog.products)
    for split in SPLITS:
        for task in env.task_ids(split)[:40]:
            goal = env.catalog.goal(task)
            assert " with " in goal.instruction and len(goal.option_names) == len(goal.options)
            info, _, _ = play(env, env.expert_action, task)
            assert info["success"], task
