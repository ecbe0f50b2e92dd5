"""``agentgym/Search-v0``: the contract, both protocols, rewards, state keys, bad input."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import agentgym
from agentgym.env import SPLITS
from agentgym.envs.search import SearchEnv
from agentgym.envs.search.env import SEARCH_R1_INVALID_ACTION
from agentgym.errors import ConfigError
from agentgym.parsers import get_parser
from agentgym.rollout.prompts import prompt_tools
from agentgym.tools.retrieval import Passage
from tests.search.conftest import free_port

PROTOCOLS = ("tags", "tools")


def play(env, policy, task_id: str) -> tuple[dict, list[str]]:
    """Play one episode; return the last info and the observations."""
    obs, info = env.reset(seed=0, options={"task_id": task_id})
    observations = [obs]
    for _ in range(20):
        obs, _, terminated, truncated, info = env.step(policy())
        observations.append(obs)
        if terminated or truncated:
            break
    return info, observations


def first_task(env, task_type: str, split: str = "train") -> str:
    base = env.unwrapped
    return next(t for t in base.task_ids(split) if base.qa[t].task_type == task_type)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_checker_passes(protocol: str) -> None:
    agentgym.check_env("Search-v0", protocol=protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_expert_answers_every_question_of_every_split(protocol: str) -> None:
    env = agentgym.make("Search-v0", protocol=protocol)
    base = env.unwrapped
    for split in SPLITS:
        ids = base.task_ids(split)
        results = [play(env, base.expert_action, t)[0] for t in ids]
        em = np.mean([r["success"] for r in results])
        assert em >= 0.95, f"{protocol} expert EM on {split} is {em:.3f}"
        assert {r["task_type"] for r in results} == {"1-hop", "2-hop", "3-hop"}
        for r in results:  # a k-hop question takes k searches
            assert r["num_tool_calls"] == int(r["task_type"][0])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_random_policy_scores_near_zero(protocol: str) -> None:
    env = agentgym.make("Search-v0", protocol=protocol)
    base, rng = env.unwrapped, np.random.default_rng(0)
    ids = base.task_ids("train")[:300]
    results = [play(env, lambda: base.random_action(rng), t)[0] for t in ids]
    assert np.mean([r["success"] for r in results]) < 0.05
    assert np.mean([r["score"] for r in results]) < 0.05


def test_tags_protocol_speaks_search_r1() -> None:
    env = agentgym.make("Search-v0", max_steps=10)
    task = first_task(env, "1-hop")
    obs, info = env.reset(options={"task_id": task})
    assert "<search>" in obs and info["instruction"] == obs and "tools" not in info
    hop = env.unwrapped.question.hops[0]
    obs, reward, terminated, _, info = env.step(f"<think>x</think>\n<search> {hop.query} </search>")
    assert obs.startswith("\n\n<information>Doc 1(Title: ") and obs.endswith("</information>\n\n")
    assert f'Doc 1(Title: "{hop.query.removesuffix(" city")}") ' in obs  # the raw first line
    assert (reward, terminated, info["action_valid"], info["num_tool_calls"]) == (0, False, True, 1)
    obs, *_ = env.step("<search> born in </search>")
    assert obs.count("\nDoc ") == 2 and "\nDoc 3(Title: " in obs  # topk=3, one per line
    _, _, _, _, info = env.step(f"<search> {hop.query} </search>")  # already retrieved
    key = info["state_key"]
    obs, reward, terminated, _, info = env.step("I have no idea what to do")
    assert obs == SEARCH_R1_INVALID_ACTION and not info["action_valid"] and not terminated
    assert info["state_key"] == key and info["num_tool_calls"] == 3
    gold = env.unwrapped.question.golden_answers[0]
    # the first complete tag is the action, as in Search-R1
    obs, reward, terminated, _, info = env.step(
        f"<answer> {gold} </answer> <search> more </search>"
    )
    assert terminated and reward == 1.0 and info["success"] and info["score"] == 1.0


def test_tags_protocol_takes_the_search_r1_parser_output() -> None:
    env = agentgym.make("Search-v0")
    parser = get_parser("search_r1")
    env.reset(options={"task_id": first_task(env, "2-hop")})
    raw = "<think>Let me look.</think> <search> Couvburg city </search> trailing text"
    parsed = parser.parse(raw)
    _, _, _, _, via_parser = env.step(parsed.action)
    env.reset(options={"task_id": first_task(env, "2-hop")})
    _, _, _, _, raw_info = env.step(raw)
    assert via_parser["state_key"] == raw_info["state_key"] and via_parser["action_valid"]
    expert = env.unwrapped.expert_action()
    assert parser.parse(expert).ok and "<think>" in expert


def test_tools_protocol_accepts_hermes_calls_and_canonical_json() -> None:
    env = agentgym.make("Search-v0", protocol="tools")
    task = first_task(env, "1-hop")

    def call(q: str) -> dict:
        return {"name": "search", "arguments": {"query": q}}

    forms = [
        lambda q: f"Let me search.\n<tool_call>\n{json.dumps(call(q))}\n</tool_call> done",
        lambda q: json.dumps(call(q)),
        lambda q: json.dumps({"name": "search", "arguments": json.dumps({"query": q})}),
    ]
    keys = set()
    for form in forms:
        obs, info = env.reset(options={"task_id": task})
        names = [t["function"]["name"] for t in info["tools"]]
        assert names == ["search", "answer"]
        query = env.unwrapped.question.hops[0].query
        obs, _, _, _, info = env.step(form(query))
        assert info["action_valid"] and obs.startswith("Doc 1(Title: ")
        keys.add(info["state_key"])
    assert len(keys) == 1
    parser = get_parser("tool_call")
    expert = env.unwrapped.expert_action()
    assert parser.parse(parser.render(expert)).action == expert
    _, reward, terminated, _, info = env.step(expert)
    assert terminated and reward == 1.0


def test_tool_schemas_can_be_left_out_of_the_prompt() -> None:
    """``show_tool_schemas=False``: no ``info["tools"]`` (so no tools block in any prompt),
    the same calls, observations and rewards."""
    shown = agentgym.make("Search-v0", protocol="tools")
    hidden = agentgym.make("Search-v0", protocol="tools", show_tool_schemas=False)
    task = first_task(shown, "2-hop")
    _, info_shown = shown.reset(options={"task_id": task})
    _, info_hidden = hidden.reset(options={"task_id": task})
    assert info_shown["tools"] and not info_hidden.get("tools")
    for _ in range(3):
        action = shown.unwrapped.expert_action()
        assert hidden.unwrapped.expert_action() == action
        a, b = shown.step(action), hidden.step(action)
        assert a[:4] == b[:4] and a[4]["state_key"] == b[4]["state_key"]
        if a[2]:
            break
    assert a[1] == 1.0 and b[4]["success"]
    assert prompt_tools(info_hidden) is None


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ('{"name": "serch", "arguments": {"query": "x"}}', "Did you mean 'search'"),
        ('{"name": "search", "arguments": {"q": "x"}}', 'needs a string argument "query"'),
        ('{"name": "answer", "arguments": {"text": 3}}', 'needs a string argument "text"'),
        ('<tool_call>{"name": "search", </tool_call>', "not valid JSON"),
        ("I would search for Velmora", "no tool call"),
        ('{"name": "answer", "arguments": {"text": "  "}}', "the answer is empty"),
    ],
)
def test_bad_tool_calls_are_explained(action: str, message: str) -> None:
    env = agentgym.make("Search-v0", protocol="tools")
    _, info = env.reset(seed=0)
    obs, reward, terminated, _, after = env.step(action)
    assert obs.startswith("Invalid tool call: ") and message in obs
    assert not after["action_valid"] and not terminated and reward == 0
    assert after["state_key"] == info["state_key"]


def test_state_key_names_the_question_and_the_set_of_passages() -> None:
    env = SearchEnv()
    task = first_task(env, "2-hop")
    hops = env.qa[task].hops

    def key_after(*queries: str) -> str:
        _, info = env.reset(options={"task_id": task})
        for q in queries:
            _, _, _, _, info = env.step(f"<search>{q}</search>")
        return info["state_key"]

    start = key_after()
    ab, ba = key_after(hops[0].query, hops[1].query), key_after(hops[1].query, hops[0].query)
    assert ab == ba != start  # order does not matter, the passages do
    assert key_after(hops[0].query, hops[0].query) == key_after(hops[0].query)
    assert key_after("zzzz nothing") == start  # no passage found: same state
    assert env.canonical_state().startswith(env.question.question)
    other = first_task(env, "2-hop", "test")
    _, info = env.reset(options={"task_id": other})
    assert info["state_key"] != start  # another question, another state


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_queries_get_clear_observations(protocol: str) -> None:
    env = agentgym.make("Search-v0", protocol=protocol)

    def search(query: str) -> str:
        if protocol == "tags":
            return f"<search>{query}</search>"
        return json.dumps({"name": "search", "arguments": {"query": query}})

    _, start = env.reset(options={"task_id": first_task(env, "2-hop")})
    cases = {
        "   ": "empty",
        "Velmora " * 300: "at most 1024",
        "x" * 100_000: "100",  # over the action limit: rejected before parsing
    }
    for query, message in cases.items():
        obs, reward, terminated, truncated, info = env.step(search(query))
        assert message in obs and not info["action_valid"] and not terminated
        assert info["state_key"] == start["state_key"] and info["num_tool_calls"] == 0
        env.reset(options={"task_id": start["task_id"]})
    hop = env.unwrapped.question.hops[0].query
    obs, _, _, _, info = env.step(search(f"\x07{hop}\x1b\n\t"))
    assert info["action_valid"] and info["query"] == hop and "Doc 1" in obs


def test_a_retriever_that_is_down_or_slow_is_an_observation(stub_server) -> None:
    down = f"http://127.0.0.1:{free_port()}/retrieve"
    slow = stub_server(lambda body, n: (time.sleep(1.5), (200, {"result": [[]]}))[1])
    for url, problem in ((down, "could not connect"), (slow, "timed out")):
        env = agentgym.make("Search-v0", retriever=url, retriever_timeout=0.2, retriever_retries=1)
        _, start = env.reset(seed=0, options={"split": "valid"})
        started = time.monotonic()
        obs, reward, terminated, truncated, info = env.step("<search> Velmora </search>")
        assert time.monotonic() - started < 2.0
        assert obs.startswith("\n\n<information>Search failed: ") and problem in obs
        assert info["action_valid"] and not terminated and not truncated
        assert problem in info["retrieval_error"] and info["num_tool_calls"] == 1
        assert info["state_key"] == start["state_key"]
        gold = env.unwrapped.question.golden_answers[0]
        _, reward, terminated, _, info = env.step(f"<answer>{gold}</answer>")
        assert terminated and reward == 1.0
        env.close()


def test_rewards_em_f1_and_format() -> None:
    def final(reward: str, actions: list[str], **kw) -> tuple[float, dict]:
        env = SearchEnv(reward=reward, **kw)
        env.reset(options={"task_id": task})
        out = (0.0, {})
        for a in actions:
            _, r, _, _, info = env.step(a)
            out = (r, info)
        return out

    env = SearchEnv()
    task = next(t for t in env.task_ids("train") if len(env.qa[t].golden_answers[0].split()) == 2)
    gold = env.qa[task].golden_answers[0]
    first, last = gold.split()
    think = "<think>ok</think>"
    assert final("em", [f"<answer>{gold}</answer>"])[0] == 1.0
    assert final("em", [f"<answer>{first}</answer>"])[0] == 0.0
    r, info = final("f1", [f"<answer>{first}</answer>"])
    assert r == pytest.approx(2 / 3) and info["score"] == pytest.approx(2 / 3)
    assert not info["success"] and info["em"] == 0.0
    good, bad_search = f"{think}<search>{last}</search>", f"<search>{last}</search>"
    assert final("format_em", [good, f"{think}<answer>{gold}</answer>"])[0] == 1.0
    assert final("format_em", [bad_search, f"{think}<answer>{gold}</answer>"])[0] == 0.8
    assert final("format_em", ["junk", f"{think}<answer>{gold}</answer>"])[0] == 0.8
    assert final("format_em", ["", f"{think}<answer>{gold}</answer>"])[0] == 0.8
    assert final("format_em", [good, f"{think}<answer>nope</answer>"])[0] == 0.2
    assert final("format_em", [bad_search, "<answer>nope</answer>"])[0] == 0.1
    relaxed = final(
        "format_em", [bad_search, f"<answer>{gold}</answer>"], format_require_think=False
    )
    assert relaxed[0] == 1.0


def test_the_answer_reports_em_and_format_components() -> None:
    env = SearchEnv()
    task = env.task_ids("train")[0]
    gold = env.qa[task].golden_answers[0]

    def parts(reward: str, actions: list[str]) -> tuple[float, dict]:
        env = SearchEnv(reward=reward)
        env.reset(options={"task_id": task})
        for a in actions:
            _, r, _, _, info = env.step(a)
        return r, info["reward_components"]

    think = "<think>ok</think>"
    # format_em: the parts add up to the reward
    for actions, expected in [
        ([f"{think}<answer>{gold}</answer>"], {"em": 1.0, "format": 0.0}),
        (["junk", f"{think}<answer>{gold}</answer>"], {"em": 1.0, "format": -0.2}),
        ([f"{think}<answer>nope</answer>"], {"em": 0.0, "format": 0.2}),
        (["<answer>nope</answer>"], {"em": 0.0, "format": 0.1}),
    ]:
        reward, components = parts("format_em", actions)
        assert components == pytest.approx(expected)
        assert sum(components.values()) == pytest.approx(reward)
    # em / f1: the reward itself, and the format term format_em would add
    assert parts("em", ["junk", f"<answer>{gold}</answer>"])[1] == pytest.approx(
        {"em": 1.0, "format": -0.2}
    )
    assert parts("f1", [f"<answer>{gold}</answer>"])[1] == pytest.approx(
        {"f1": 1.0, "format": -0.2}  # no <think>: malformed for Search-R1
    )


def test_info_reports_searches_task_type_and_source() -> None:
    env = agentgym.make("Search-v0")
    _, info = env.reset(options={"task_id": first_task(env, "3-hop")})
    assert (info["num_tool_calls"], info["task_type"]) == (0, "3-hop")
    assert info["data_source"] == "agentgym_world"
    # the question's entity chain: one entity per hop, then the answer when it is one
    row = env.unwrapped.question
    assert info["gold_entities"] == list(row.entities) and len(row.entities) >= 3
    assert row.entities[-1] in (row.golden_answers[0], *row.entities[:3])
    for expected in (1, 2):
        _, _, _, _, info = env.step(env.unwrapped.expert_action())
        assert info["num_tool_calls"] == expected


def test_any_retriever_object_can_be_plugged_in() -> None:
    class Fixed:
        def search(self, query: str, topk: int = 3) -> list[Passage]:
            return [Passage("p1", f'"Echo"\n{query}')]

        def search_batch(self, queries, topk=3):
            return [self.search(q, topk) for q in queries]

    env = SearchEnv(retriever=Fixed())
    env.reset(seed=0)
    obs, *_ = env.step("<search>hello</search>")
    assert obs == '\n\n<information>Doc 1(Title: "Echo") hello</information>\n\n'


def test_configuration_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'tags'"):
        SearchEnv(protocol="tag")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Did you mean 'format_em'"):
        SearchEnv(reward="format-em")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="use 'bm25'"):
        SearchEnv(retriever="faiss")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SearchEnv(corpus="/no/such/corpus.jsonl")
    with pytest.raises(ConfigError, match="topk"):
        SearchEnv(topk=0)
