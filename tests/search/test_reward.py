"""Answer scoring agrees with Search-R1 (normalisation, EM, F1, format reward)."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.envs.search.reward import (
    exact_match,
    f1_score,
    format_reward,
    normalize_answer,
    substring_match,
    turn_format_ok,
)


def search_r1_normalize(text: str) -> str:
    """Search-R1's ``normalize_answer`` (verl/utils/reward_score/qa_em.py), spelled out
    step by step in the order it applies them: lower-case; drop every character of
    ``string.punctuation``; replace each whole word a/an/the (regex word boundaries) by a
    space; split on whitespace and join with single spaces."""
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if ch not in set(string.punctuation))
    no_articles = re.sub(r"\b(a|an|the)\b", " ", no_punct)
    return " ".join(no_articles.split())


# (input, what Search-R1's normalisation gives), worked out by hand
CASES = [
    # articles
    ("The Beatles", "beatles"),
    ("A Tale of Two Cities", "tale of two cities"),
    ("an apple", "apple"),
    ("The The", ""),
    ("Theatre anthem Anna", "theatre anthem anna"),  # only whole words are articles
    ("a.n", ""),  # punctuation goes first, so "a.n" becomes the article "an"
    ("l'the", "lthe"),
    # punctuation
    ("U.S.A.", "usa"),
    ("rock-n-roll!", "rocknroll"),
    ("don't", "dont"),
    ("1,000", "1000"),
    ('"Velmora"', "velmora"),
    # case
    ("ÉCOLE Normale", "école normale"),
    ("STRASSE", "strasse"),
    ("Straße", "straße"),  # lower(), not casefold(): ß stays
    # whitespace
    ("  the   BEATLES!! ", "beatles"),
    ("New\tYork\n City", "new york city"),
    ("New\u00a0York", "new york"),  # no-break space is whitespace to str.split
    # unicode punctuation is not in string.punctuation, so it stays
    ("“Quoted”", "“quoted”"),
    ("naïve—the test", "naïve— test"),
    ("Café, the", "café"),
    ("ＡＢＣ", "ａｂｃ"),
    ("漢字 the 字", "漢字 字"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_normalisation_matches_search_r1_by_hand(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected
    assert search_r1_normalize(text) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [*"aAnNtThHeE .,!?'\"-_()\t\nxyz", "the", "an", "ß", "É", "—", "\u00a0", "İ"]
        ),
        max_size=30,
    ).map("".join)
)
def test_normalisation_agrees_with_search_r1_on_random_text(text: str) -> None:
    assert normalize_answer(text) == search_r1_normalize(text)


def test_exact_match_against_any_gold_answer() -> None:
    assert exact_match("the Beatles.", ["Rolling Stones", "Beatles"]) == 1.0
    assert exact_match("Beatles", "The Beatles") == 1.0  # a single gold string
    assert exact_match("Straße", ["STRASSE"]) == 0.0
    assert exact_match("", ["x"]) == 0.0
    assert substring_match("it was the Beatles, I think", ["beatles"]) == 1.0


def test_f1_is_token_overlap_with_the_best_gold() -> None:
    assert f1_score("Talia Brennick", ["Brennick"]) == pytest.approx(2 / 3)
    assert f1_score("Brennick", ["x", "Talia Brennick"]) == pytest.approx(2 / 3)
    assert f1_score("the Velmora", ["Velmora"]) == 1.0
    assert f1_score("nothing", ["Velmora"]) == 0.0
    assert f1_score("yes", ["no"]) == 0.0 and f1_score("yes", ["Yes."]) == 1.0


@pytest.mark.parametrize(
    ("response", "require_think", "ok"),
    [
        ("<think>x</think><search>q</search>", True, True),
        ("<think>x</think>\n<answer> a </answer>", True, True),
        ("  <think> x </think>  <search> q </search>\n", True, True),
        ("<search>q</search>", True, False),
        ("<search>q</search>", False, True),
        ("<think>x</think> so <search>q</search>", True, False),
        ("Sure! <think>x</think><answer>a</answer>", True, False),
        # Search-R1 stops generating at the first </search>: what follows does not count
        ("<think>x</think><search>q</search> <answer> junk", True, True),
        ("<think>a<think>b</think><search>q</search>", True, False),
        ("<think>x</think><information>made up</information><search>q</search>", True, False),
        ("<think>x</think><search>q", True, False),
        ("no tags at all", True, False),
    ],
)
def test_turn_format_follows_search_r1_structure(
    response: str, require_think: bool, ok: bool
) -> None:
    assert turn_format_ok(response, require_think) is ok


def test_format_reward_table() -> None:
    gold = ["Velmora"]
    assert format_reward("Velmora", gold, format_ok=True) == 1.0
    assert format_reward("Velmora", gold, format_ok=False) == pytest.approx(0.8)
    assert format_reward("Ostrecht", gold, format_ok=True) == pytest.approx(0.2)
    assert format_reward("Ostrecht", gold, format_ok=False) == pytest.approx(0.1)
    assert format_reward(None, gold, format_ok=True) == 0.0
    info = ["Doc 1(Title: x) born in Velmora."]
    with_retrieval = format_reward("Ostrecht", gold, True, info, retrieval_score=0.1)
    assert with_retrieval == pytest.approx(0.3)
    assert format_reward("Ostrecht", gold, False, info, retrieval_score=0.1) == pytest.approx(0.1)
