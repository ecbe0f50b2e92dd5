"""WebShop's action syntax: ``strict=True`` reads actions exactly as WebShop's text env
does; the default is agentgym's looser reading. Each case is written out with what
WebShop does with it."""

from __future__ import annotations

import pytest

import agentgym
from agentgym.envs.webshop import WebShopEnv
from agentgym.envs.webshop.actions import parse_loose, parse_strict


@pytest.fixture(scope="module")
def strict_env() -> WebShopEnv:
    return WebShopEnv(strict=True)


@pytest.fixture(scope="module")
def loose_env() -> WebShopEnv:
    return WebShopEnv()


# ----------------------------------------------------------------------------- the parsers


@pytest.mark.parametrize(
    ("action", "webshop"),
    [
        ("search[red shoes]", ("search", "red shoes")),
        ("click[buy now]", ("click", "buy now")),
        ("click[buy now] please", ("click", "buy now")),  # the tail is ignored: WebShop buys
        ("search[red shoes]  ", ("search", "red shoes")),
        ("click[Buy Now]", ("click", "Buy Now")),  # lowercased later, so it buys
        ("click[buy now]\nI bought it.", ("click", "buy now")),  # only the first line counts
        ("I will buy it.\nclick[buy now]", None),  # ... so this one is no action
        ("search[red\nshoes]", None),
        ("search[]", None),  # the argument needs a character
        ("[x]", None),  # so does the name
        ("Click[buy now]", ("Click", "buy now")),  # a name WebShop does not know
        ("click [buy now]", ("click ", "buy now")),
        (" click[buy now]", (" click", "buy now")),
        ("click[buy  now]", ("click", "buy  now")),  # kept as written: no such button
        ("click[a]b]", ("click", "a]b")),  # up to the last "]"
        ("click[[x]]", ("click[", "x]")),  # from the last "[" before it
        ("search[x] and click[buy now]", ("search[x] and click", "buy now")),
        ("a[]]", ("a", "]")),
        ("buy now", None),
    ],
)
def test_strict_parsing_splits_as_webshop_does(action: str, webshop) -> None:
    assert parse_strict(action) == webshop


@pytest.mark.parametrize(
    ("action", "loose"),
    [
        ("search[red shoes]", ("search", "red shoes")),
        ("click[buy now] please", None),  # the whole action must be the command
        ("Search[red shoes]", ("search", "red shoes")),
        ("click [buy now]", ("click", "buy now")),
        ("  click[buy now]\n", ("click", "buy now")),
        ("search[red\nshoes]", ("search", "red\nshoes")),
        ("search[]", ("search", "")),  # an action, answered as an empty query
        ("click[[x]]", ("click", "[x]")),
        ("I will buy it.\nclick[buy now]", None),
        ("buy now", None),
    ],
)
def test_loose_parsing(action: str, loose) -> None:
    assert parse_loose(action) == loose


# ----------------------------------------------------------------------------- in the env


def test_the_checker_passes_in_strict_mode() -> None:
    agentgym.check_env("WebShop-v0", strict=True, tasks_per_split=5)


def to_item_page(env: WebShopEnv) -> str:
    """Reset a task and follow the expert to its product's item page; the asin."""
    env.reset(options={"task_id": env.task_ids("test")[0]})
    while env.page.kind != "item":
        env.step(env.expert_action())
    return env.page.asin


@pytest.mark.parametrize(
    "action",
    ["click[buy now] please", "click[Buy Now]", "click[buy now]\nthanks", "click[buy now]!"],
)
def test_strict_buys_where_webshop_buys(strict_env: WebShopEnv, action: str) -> None:
    asin = to_item_page(strict_env)
    _, reward, terminated, _, info = strict_env.step(action)
    assert terminated and info["action_valid"] and info["purchased"] == asin
    assert reward == info["reward_info"]["reward"]


@pytest.mark.parametrize(
    "action",
    [
        "Click[buy now]",
        "click [buy now]",
        " click[buy now]",
        "click[buy  now]",
        "click[ buy now ]",
        "click[buy now]]",  # the argument runs to the last "]": "buy now]"
        "I am done.\nclick[buy now]",
        "click[]",
    ],
)
def test_strict_refuses_what_webshop_ignores(strict_env: WebShopEnv, action: str) -> None:
    to_item_page(strict_env)
    key = strict_env.page.key()
    obs, reward, terminated, _, info = strict_env.step(action)
    assert (reward, terminated, info["action_valid"]) == (0.0, False, False)
    assert obs.startswith("Invalid action: ") and info["state_key"] == key


def test_strict_names_the_syntax_rule(strict_env: WebShopEnv) -> None:
    to_item_page(strict_env)
    obs, *_ = strict_env.step("Click[buy now]")
    assert "WebShop's syntax: the name in lower case, directly followed by [" in obs


def test_strict_search_takes_the_first_line_and_ignores_the_tail(strict_env: WebShopEnv) -> None:
    strict_env.reset(options={"task_id": strict_env.task_ids("test")[0]})
    _, _, _, _, info = strict_env.step("search[Green TEA] now\nplease")
    assert info["action_valid"] and info["query"] == "green tea"
    assert strict_env.page.kind == "results"
    strict_env.step("click[back to search]")
    _, _, _, _, info = strict_env.step("Search[green tea]")
    assert not info["action_valid"] and strict_env.page.kind == "search"


def test_loose_default_refuses_a_tail_and_accepts_case_and_spaces(loose_env: WebShopEnv) -> None:
    to_item_page(loose_env)
    _, _, terminated, _, info = loose_env.step("click[buy now] please")
    assert not terminated and not info["action_valid"]
    _, _, _, _, info = loose_env.step("click [ Description ]")
    assert info["action_valid"] and loose_env.page.kind == "description"
    loose_env.step("Click[< prev]")
    _, _, terminated, _, info = loose_env.step("click[ buy  now ]")
    assert terminated and info["action_valid"]
