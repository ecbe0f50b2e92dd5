"""WebShop's purchase reward against hand-computed cases, term by term."""

from __future__ import annotations

import math

import pytest

from agentgym.envs.webshop.loader import Goal, Product
from agentgym.envs.webshop.reward import (
    attribute_matches,
    option_matches,
    type_reward,
    webshop_reward,
)
from agentgym.envs.webshop.text import (
    COLOR_WORDS,
    full_process,
    normalize_color,
    parse_pricing,
    price_tag,
    title_words,
    token_set_ratio,
)

PATH = "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos"


def product(**kw) -> Product:
    fields = dict(
        asin="B0TEST0001",
        name="Velmo Sulfate Free Argan Oil Shampoo",
        category="beauty",
        query="sulfate free shampoo",
        product_category=PATH,
        description="A gentle shampoo with natural ingredients.",
        bullet_points=["Color safe formula", "Smells like lemons"],
        pricing=[12.0],
        options={"scent": ["lavender", "citrus"], "size": ["8 fl oz", "16 fl oz"]},
        attributes=["sulfate free", "argan oil"],
        price=12.0,
    )
    fields.update(kw)
    return Product(**fields)


def goal(**kw) -> Goal:
    fields = dict(
        index=0,
        asin="B0TEST0001",
        instruction="i need a sulfate free shampoo",
        attributes=("sulfate free", "argan oil"),
        options=("lavender", "8 fl oz"),
        price_upper=30.0,
        query="sulfate free shampoo",
        category="beauty",
        product_category=PATH,
        name="Velmo Sulfate Free Argan Oil Shampoo",
        split="test",
    )
    fields.update(kw)
    return Goal(**fields)


# ----------------------------------------------------------------------------- fuzzy text


@pytest.mark.parametrize(
    ("a", "b", "score"),
    [
        ("cool powder snow", "powder snow", 100),  # one word set contains the other
        ("pack of 12", "Pack of 12", 100),
        ("pack of 1", "pack of 12", 95),  # 2*9/(9+10) = 94.7
        ("x-large", "xx-large", 93),  # "large x" vs "large xx": 2*7/15
        ("essential oil", "essential oils", 96),  # 2*13/27
        ("tea tree", "tea bag", 60),  # best pair: "tea" vs "tea bag", 2*3/10
        ("", "anything", 0),
        ("café", "caf", 100),  # characters U+0080-U+00FF are dropped
        # thefuzz 0.19 (WebShop's pin) keeps "_" inside a word: "x_large" is one word,
        # so it shares none with "large": 2*5/12 = 83 (thefuzz 0.20+ would say 100)
        ("x_large", "large", 83),
        ("x large", "large", 100),
        ("blue\u2013green", "green", 100),  # an en dash separates words
    ],
)
def test_token_set_ratio_matches_thefuzz(a: str, b: str, score: int) -> None:
    assert token_set_ratio(a, b) == score


def test_token_set_ratio_agrees_with_rapidfuzz_where_installed() -> None:
    fuzz = pytest.importorskip("rapidfuzz.fuzz")
    utils = pytest.importorskip("rapidfuzz.utils")
    words = ["black", "navy blue", "x-large", "pack of 6", "sulfate free", "argan oil", "6.5"]
    for a in words:
        for b in words:
            text = f"{a} {b}"
            for c in words:
                ref = fuzz.token_set_ratio(text, c, processor=utils.default_process)
                assert token_set_ratio(text, c) == round(ref)


@pytest.mark.parametrize(
    ("text", "processed"),
    [
        ("Navy Blue", "navy blue"),
        ("X_Large", "x_large"),  # underscores stay (thefuzz 0.19's \W keeps them)
        ("Pack_of_6\u2122", "pack_of_6"),  # (TM) is past U+00FF: a space, then stripped
        ("\u0141\u00f3d\u017a", "\u0142d\u017a"),  # o-acute (U+00F3) dropped, the others kept
        ("8 fl. oz / 240ml", "8 fl  oz   240ml"),
    ],
)
def test_full_process_is_thefuzz_0_19s(text: str, processed: str) -> None:
    assert full_process(text) == processed


def test_colour_words_are_webshops_color_set() -> None:
    assert len(COLOR_WORDS) == 102 and list(COLOR_WORDS) == sorted(set(COLOR_WORDS))
    for word in ("light", "dark", "ash", "midnight", "champagne", "crystal", "royal",
                 "heather", "stone", "stonewash", "alabaster", "wheat"):  # fmt: skip
        assert word in COLOR_WORDS
    assert "amber" not in COLOR_WORDS


@pytest.mark.parametrize(
    ("value", "colour"),
    [
        ("light pink", "light"),  # "light" < "pink"
        ("hot pink", "pink"),
        ("dark brown", "brown"),  # "brown" < "dark"
        ("heather grey", "grey"),
        ("royal blue", "blue"),
        ("midnight navy", "midnight"),
        ("champagne gold", "champagne"),
        ("stone wash", "ash"),  # substrings count: "wash" contains "ash"
        ("amber", "amber"),  # not one of WebShop's colours: unchanged
    ],
)
def test_normalize_color_with_webshops_list(value: str, colour: str) -> None:
    assert normalize_color(value) == colour


def test_light_and_dark_shades_miss_the_plain_colour_as_in_webshop() -> None:
    assert option_matches(["light pink"], ["pink"]) == 0
    assert option_matches(["pink"], ["light pink"]) == 0
    assert option_matches(["light pink"], ["dark pink"]) == 0  # "light" vs "dark"
    assert option_matches(["light blue"], ["dark blue"]) == 1  # both "blue" ("blue" < "dark")
    assert option_matches(["hot pink"], ["pink"]) == 1
    assert option_matches(["x_large"], ["large"]) == 0 and option_matches(["x-large"], ["large"])
    # the case: one attribute (matched), the option "pink", price ok:
    # WebShop (1 + 0 + 1) / 3 = 0.667 for "light pink", 1.0 for "hot pink"
    g = goal(attributes=("sulfate free",), options=("pink",))
    p = product(options={"color": ["light pink", "hot pink"]})
    assert webshop_reward(p, g, 12.0, {"color": "light pink"}).reward == pytest.approx(2 / 3)
    assert webshop_reward(p, g, 12.0, {"color": "hot pink"}).reward == 1.0


def test_normalize_color_keeps_the_first_colour_word_alphabetically() -> None:
    assert normalize_color("navy blue") == "blue"  # "blue" < "navy"
    assert normalize_color("light grey heather") == "grey"
    assert normalize_color("x-large") == "x-large"


def test_prices_parse_and_print_like_webshop() -> None:
    assert parse_pricing("$10.99 - $15.99") == [10.99, 15.99]
    assert parse_pricing("$7") == [7.0]
    assert parse_pricing("") == [100.0] and parse_pricing(None) == [100.0]
    assert price_tag([12.99]) == "$12.99" and price_tag([100.0]) == "$100.0"
    assert price_tag([10.99, 15.99]) == "$10.99 to $15.99"


# ----------------------------------------------------------------------------- each term


def test_attributes_match_fuzzily_or_as_page_text() -> None:
    p = product(attributes=["essential oil", "natural ingredients"])
    assert attribute_matches(p, ["essential oils"]) == 1  # fuzzy, 96 > 85
    assert attribute_matches(p, ["tea tree"]) == 0
    assert attribute_matches(p, ["color safe"]) == 1  # in a bullet point (lowercased)
    assert attribute_matches(p, ["gentle shampoo"]) == 1  # in the description
    assert attribute_matches(p, ["velmo"]) == 1  # in the title
    assert attribute_matches(p, ["tea tree", "essential oils", "natural ingredients"]) == 2


def test_options_match_after_colour_reduction() -> None:
    assert option_matches(["navy blue", "x-large"], ["royal blue", "x-large"]) == 2
    assert option_matches(["black"], ["white"]) == 0
    assert option_matches(["pack of 12"], ["pack of 12", "grey"]) == 1
    assert option_matches([], ["grey"]) == 0


def test_type_reward_branches() -> None:
    g = goal()
    assert type_reward(product(), g) == (1.0, True, True, 1.0)
    # another query and category, but 2 of the goal title's 6 type words: 1/3 > 0.2 -> 1.0
    other = product(query="x", product_category="A › B", name="Zed Argan Oil Lotion")
    r_type, q, c, title = type_reward(other, g)
    assert (q, c) == (False, False) and title == pytest.approx(2 / 6) and r_type == 1.0
    # one of six words (1/6: not above 0.2, not below 0.1) and nothing else: 0.5
    one = product(query="x", product_category="A › B", name="Zed Oil Lamp")
    assert type_reward(one, g)[0] == 0.5
    # category paths sharing two levels match, whatever the title's overlap
    cat = product(query="x", product_category="Beauty & Personal Care › Hair Care › X", name="Oil")
    assert type_reward(cat, g)[:3] == (1.0, False, True)
    # fewer than 10% of the words: 0.1; none: 0.0 (even with the same query)
    long_goal = goal(name=" ".join(f"word{c}" for c in "abcdefghijk") + " oil")
    assert type_reward(product(name="Oil"), long_goal)[0] == 0.1
    assert type_reward(product(name="Hammer"), goal())[0] == 0.0
    # a goal title without type words counts as 0.2
    assert type_reward(product(), goal(name="the and for"))[3] == 0.2


def test_title_words_drop_stop_words_sizes_and_filler() -> None:
    assert title_words("Women's Cotton T-Shirt, Pack of 2 - Best Quality") == ["cotton", "shirt"]


# ----------------------------------------------------------------------------- the formula


def test_the_right_purchase_earns_one() -> None:
    r = webshop_reward(product(), goal(), 12.0, {"scent": "lavender", "size": "8 fl oz"})
    assert r.reward == 1.0 and r.r_att == 1.0 and r.r_option == 1.0 and r.price_ok


def test_reward_is_matches_over_constraints_times_r_type() -> None:
    # 2 attributes (1 matches), 2 options (1 matches), price over the limit:
    # (1 + 1 + 0) / (2 + 2 + 1) = 0.4
    p = product(attributes=["sulfate free"], description="", bullet_points=[], name="Shampoo")
    g = goal(name="Shampoo", price_upper=10.0)
    r = webshop_reward(p, g, 12.0, {"scent": "lavender", "size": "16 fl oz"})
    assert (r.attribute_matches, r.option_matches, r.price_ok) == (1, 1, False)
    assert r.reward == pytest.approx(0.4)
    # the same purchase of a product of another type (r_type 0.5): half
    other = product(
        attributes=["sulfate free"], description="", bullet_points=[], name="Shampoo Brush",
        query="brushes", product_category="Tools › Brushes",
    )  # fmt: skip
    g2 = goal(name="Shampoo Bottle Pump", price_upper=10.0)  # title score 1/3 > 0.2 -> 1.0
    assert webshop_reward(other, g2, 12.0, {"scent": "lavender"}).r_type == 1.0
    g3 = goal(name="Shampoo Bottle Pump Refill Kit", price_upper=10.0)  # 1/5 -> 0.5
    r3 = webshop_reward(other, g3, 12.0, {"scent": "lavender"})
    assert r3.r_type == 0.5 and r3.reward == pytest.approx(0.5 * 2 / 5)


def test_no_options_chosen_and_no_price_limit() -> None:
    g = goal(options=(), price_upper=1_000_000.0)
    r = webshop_reward(product(), g, 999.0, {})
    assert r.r_option is None and r.reward == 1.0  # (2 + 0 + 1) / (2 + 0 + 1)
    r = webshop_reward(product(), goal(), 12.0, {})
    assert r.reward == pytest.approx(3 / 5)
    assert math.isclose(r.as_dict()["r_option"], 0.0)


def test_reward_components_add_up_to_the_reward() -> None:
    # (1 + 1 + 0) / 5 with r_type 1: attribute 1/5, option 1/5, price 0, type 0
    p = product(attributes=["sulfate free"], description="", bullet_points=[], name="Shampoo")
    r = webshop_reward(p, goal(name="Shampoo", price_upper=10.0), 12.0, {"scent": "lavender"})
    assert r.components() == pytest.approx(
        {"attribute": 0.2, "option": 0.2, "price": 0.0, "type": 0.0}
    )
    # r_type 0.5 takes half of the 2/5 away
    other = product(
        attributes=["sulfate free"], description="", bullet_points=[], name="Shampoo Brush",
        query="brushes", product_category="Tools › Brushes",
    )  # fmt: skip
    g = goal(name="Shampoo Bottle Pump Refill Kit", price_upper=10.0)
    r = webshop_reward(other, g, 12.0, {"scent": "lavender"})
    parts = r.components()
    assert parts["type"] == pytest.approx(-0.2)
    assert sum(parts.values()) == pytest.approx(r.reward)
