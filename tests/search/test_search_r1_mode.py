"""``tag_mode="search_r1"``: raw responses read as Search-R1's generation manager and
reward read them. Every case is written out with what Search-R1 does with it (and, where
it differs, what the default ``lenient`` mode does)."""

from __future__ import annotations

import pytest

import agentgym
from agentgym.envs.search import SearchEnv
from agentgym.envs.search.env import SEARCH_R1_INVALID_ACTION
from agentgym.envs.search.reward import search_r1_truncate, turn_format_ok
from agentgym.errors import ConfigError

TASK = "train-20"  # "In which city was the founder of Keapiork Shipworks born?" Sandal


def make(tag_mode: str, reward: str = "format_em") -> SearchEnv:
    env = SearchEnv(tag_mode=tag_mode, reward=reward)  # type: ignore[arg-type]
    env.reset(options={"task_id": TASK})
    return env


def gold(env: SearchEnv) -> str:
    return env.question.golden_answers[0]


# ----------------------------------------------------------------------------- the pieces


@pytest.mark.parametrize(
    ("response", "kept"),
    [
        ("<think>a</think><search> q </search> and more", "<think>a</think><search> q </search>"),
        ("<answer> x </answer> and more", "<answer> x </answer>"),
        # a later </search> wins over an earlier </answer>
        ("<answer> x </answer> sure </search> more", "<answer> x </answer> sure </search>"),
        ("<think>a</search></think><answer> x </answer>", "<think>a</search>"),
        ("<search> q </search><search> r </search>", "<search> q </search>"),
        ("no tags at all", "no tags at all"),
    ],
)
def test_truncation_is_search_r1s(response: str, kept: str) -> None:
    assert search_r1_truncate(response) == kept


@pytest.mark.parametrize(
    ("response", "lenient", "search_r1"),
    [
        ("<think>t</think>\n<answer> x </answer>", True, True),
        ("<think>t</think><answer> x </answer>  \n", True, True),
        ("<think>t</think><answer> x </answer> sure", True, False),
        ("<think>t</think><answer> x </answer></search>", True, False),
        ("<think>t</think><answer> x </answer><search> q </search>", True, False),
        ("<answer> x </answer>", False, False),  # no think block
    ],
)
def test_nothing_may_follow_the_action_tag_in_search_r1s_check(
    response: str, lenient: bool, search_r1: bool
) -> None:
    assert turn_format_ok(response) is lenient
    assert turn_format_ok(response, ignore_after_action=False) is search_r1


# ----------------------------------------------------------------------------- the episode


def test_a_stray_closing_search_tag_before_the_answer_makes_the_turn_invalid() -> None:
    response = "<think>I know it</search></think>\n<answer> {} </answer>"
    env = make("search_r1", reward="em")
    obs, reward, terminated, _, info = env.step(response.format(gold(env)))
    # Search-R1 keeps "<think>I know it</search>": no complete tag, its invalid message
    assert (obs, reward, terminated, info["action_valid"]) == (
        SEARCH_R1_INVALID_ACTION, 0.0, False, False,
    )  # fmt: skip
    env = make("lenient", reward="em")
    _, reward, terminated, _, info = env.step(response.format(gold(env)))
    assert terminated and reward == 1.0


@pytest.mark.parametrize(
    ("tail", "search_r1_reward"),
    [
        (" I am sure. </search>", 0.8),  # kept up to </search>: not well formed, 1 - 0.2
        ("<search> more </search>", 0.8),
        (" I am sure.", 1.0),  # no </search>: Search-R1 cuts at </answer>
    ],
)
def test_text_after_the_answer_costs_the_format_score_where_search_r1_keeps_it(
    tail: str, search_r1_reward: float
) -> None:
    env = make("search_r1")
    response = f"<think>It is {gold(env)}.</think>\n<answer> {gold(env)} </answer>{tail}"
    _, reward, terminated, _, info = env.step(response)
    assert terminated and info["em"] == 1.0 and reward == pytest.approx(search_r1_reward)
    assert info["format_ok"] is (search_r1_reward == 1.0)
    env = make("lenient")
    _, reward, terminated, _, _ = env.step(response)
    assert terminated and reward == 1.0  # lenient ignores what follows </answer>


def test_an_empty_answer_ends_the_episode() -> None:
    env = make("search_r1")
    obs, reward, terminated, _, info = env.step("<think>No idea.</think>\n<answer></answer>")
    # a wrong answer in a well-formed sequence: structure_format_score
    assert terminated and info["action_valid"] and info["answer"] == ""
    assert info["em"] == 0.0 and reward == pytest.approx(0.2) and not info["success"]
    env = make("lenient")
    _, reward, terminated, _, info = env.step("<think>No idea.</think>\n<answer></answer>")
    assert not terminated and not info["action_valid"]


def test_an_empty_search_is_a_valid_search() -> None:
    env = SearchEnv(tag_mode="search_r1")
    _, start = env.reset(options={"task_id": TASK})
    obs, reward, terminated, _, info = env.step("<think>Look.</think>\n<search>  </search>")
    assert obs == "\n\n<information></information>\n\n"  # BM25 finds nothing for ""
    assert info["action_valid"] and not terminated and info["num_tool_calls"] == 1
    assert info["query"] == "" and info["retrieved_ids"] == []
    assert info["state_key"] == start["state_key"]  # nothing new was read
    env = make("lenient")
    _, _, _, _, info = env.step("<think>Look.</think>\n<search></search>")
    assert not info["action_valid"] and info["num_tool_calls"] == 0


def test_the_last_answer_of_the_kept_text_is_scored() -> None:
    env = make("search_r1", reward="em")
    response = f"<think>t</think><answer> Rome </answer><answer> {gold(env)} </answer></search>"
    _, reward, terminated, _, info = env.step(response)
    # the turn ends at the first tag (an answer); the reward reads the last <answer>
    assert terminated and info["answer"] == gold(env) and reward == 1.0
    env = make("lenient", reward="em")
    _, reward, terminated, _, info = env.step(response)
    assert terminated and info["answer"] == "Rome" and reward == 0.0


def test_a_search_then_an_answer_in_one_response_is_a_search() -> None:
    env = make("search_r1")
    response = (
        f"<think>t</think><search> Keapiork Shipworks </search><answer> {gold(env)} </answer>"
    )
    obs, _, terminated, _, info = env.step(response)
    assert not terminated and info["num_tool_calls"] == 1 and obs.startswith("\n\n<information>")
    _, reward, terminated, _, _ = env.step(f"<think>t</think><answer> {gold(env)} </answer>")
    assert terminated and reward == 1.0  # both turns were well formed once cut


def test_queries_are_sent_stripped_as_written() -> None:
    env = make("search_r1")
    _, _, _, _, info = env.step("<think>t</think><search>  Keapiork   Shipworks \n</search>")
    assert info["query"] == "Keapiork   Shipworks"
    env = make("lenient")
    _, _, _, _, info = env.step("<think>t</think><search>  Keapiork   Shipworks \n</search>")
    assert info["query"] == "Keapiork Shipworks"


def test_the_expert_scores_one_in_search_r1_mode() -> None:
    env = make("search_r1")
    for _ in range(4):
        _, reward, terminated, _, info = env.step(env.expert_action())
        if terminated:
            break
    assert terminated and reward == 1.0 and info["format_ok"]


def test_the_checker_passes_in_search_r1_mode() -> None:
    agentgym.check_env("Search-v0", tag_mode="search_r1", reward="format_em")


def test_bad_tag_modes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"tag_mode='searchr1' is not one of .*search_r1"):
        SearchEnv(tag_mode="searchr1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs protocol='tags', got protocol='tools'"):
        SearchEnv(protocol="tools", tag_mode="search_r1")
