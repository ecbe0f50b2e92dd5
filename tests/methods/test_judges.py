"""Judges (batched, retried, cached, cost logged), ArenaRL's tournament and the ``arenarl``
and ``mapo`` estimators, with rule-based judges whose verdicts are known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agentgym.config import TrainConfig, load_config
from agentgym.credit import compute_advantages
from agentgym.errors import ConfigError
from agentgym.judges import (
    Judge,
    JudgeRequest,
    parse_pair_scores,
    parse_score,
    parse_winner,
    render_template,
)
from agentgym.providers import get_input_provider
from agentgym.providers.judged import SeededSingleElimination
from tests.methods.helpers import context, group_normalise, traj

# ---------------------------------------------------------------- parsers and the judge


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Score: 7", 7.0), ("<score>3.5</score>", 3.5), ("7/10, fine", 7.0), ("no idea", None)],
)
def test_score_parser(text: str, expected: float | None) -> None:
    assert parse_score(text) == expected


def test_pair_and_winner_parsers() -> None:
    assert parse_pair_scores("Score A: 7\nScore B: 4.5") == (7.0, 4.5)
    assert parse_pair_scores("A = 2, B = 9") == (2.0, 9.0)
    assert parse_pair_scores("Score A: 7") is None
    assert parse_winner("Winner: B") == (0.0, 1.0)
    assert parse_winner("it is a tie") == (0.5, 0.5)
    assert parse_winner("A is better") == (1.0, 0.0)
    assert parse_winner("neither") is None


CALLS: list[str] = []


class RulePolicy:
    """A policy answering with a rule, to test the model-judge path (cache, batches)."""

    def __init__(self, rule) -> None:  # type: ignore[no-untyped-def]
        self.rule, self.batches = rule, []

    def generate(self, inputs, sampling):  # type: ignore[no-untyped-def]
        from agentgym.policies import Generation

        self.batches.append(len(inputs))
        out = []
        for item in inputs:
            try:
                out.append(Generation(self.rule(JudgeRequest(item.messages[-1]["content"]))))
            except RuntimeError as exc:
                out.append(Generation("", finish_reason="error", error=str(exc)))
        return out


def counting_judge(request: JudgeRequest) -> str:
    """Answers "Score: <n>" with n the prompt's length; "garbage" for prompts starting
    with "bad"; fails on the first call for prompts starting with "flaky"."""
    CALLS.append(request.prompt)
    if request.prompt.startswith("bad"):
        return "garbage"
    if request.prompt.startswith("flaky") and CALLS.count(request.prompt) == 1:
        raise RuntimeError("transient")
    return f"Score: {len(request.prompt)}"


def test_judge_caches_retries_falls_back_and_counts() -> None:
    CALLS.clear()
    judge = Judge("tests.methods.test_judges:counting_judge", retries=2, batch_size=2)
    assert judge.is_rule
    judge._function, rule = None, judge._function  # as a model judge (cached) ...
    judge._policy = RulePolicy(rule)  # ... whose "model" is the rule
    prompts = ["abc", "abc", "bad one", "flaky!", "abcd"]
    verdicts = judge.judge([JudgeRequest(p) for p in prompts], "score", default=-1.0)
    assert verdicts == [3.0, 3.0, -1.0, 6.0, 4.0]
    m = judge.metrics()
    # distinct prompts: abc, bad one, flaky!, abcd (4 calls); then bad one and flaky! again
    # (2 calls), then bad one a third time (1 call)
    assert m["judge/calls"] == 7 and CALLS.count("bad one") == 3
    assert m["judge/cache_hits"] == 1  # the second "abc"
    assert m["judge/retries"] == 3 and m["judge/failures"] == 1
    assert judge._policy.batches == [2, 2, 2, 1]  # batch_size 2
    again = judge.judge([JudgeRequest("abc")], "score", default=-1.0)
    assert again == [3.0] and judge.metrics()["judge/cache_hits"] == 2  # cached in the iteration
    judge.new_iteration()
    assert judge.metrics()["judge/calls"] == 0
    judge.judge([JudgeRequest("abc")], "score", default=-1.0)
    assert judge.metrics()["judge/calls"] == 1  # the cache is per iteration


def test_bad_judge_specs_and_templates_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="neither a policy spec nor an importable"):
        Judge("tests.methods.nowhere:judge")
    with pytest.raises(ConfigError, match=r"\{task\}"):
        render_template("Rate {answer}", {"task": "x"})
    with pytest.raises(ConfigError, match="asks a judge"):
        load_config(TrainConfig, None, ["algorithm.adv_estimator=arenarl"])
    with pytest.raises(ConfigError, match="Did you mean 'parser'"):
        load_config(TrainConfig, None, ["algorithm.providers={arena: {parsr: x}}"])
    with pytest.raises(ConfigError, match="Did you mean 'pair_scores'"):
        load_config(TrainConfig, None, ["algorithm.providers={arena: {parser: pair_score}}"])


# ---------------------------------------------------------------- the tournament


def play(n: int, strength: list[float]) -> SeededSingleElimination:
    """A tournament where the judge scores each side by its strength."""
    tour = SeededSingleElimination(n)
    while not tour.done:
        tour.record([(strength[a], strength[b]) for a, b in tour.pending()])
    return tour


@pytest.mark.parametrize("n", range(1, 10))
def test_tournament_plays_2n_minus_2_matches_and_the_strongest_wins(n: int) -> None:
    rng = np.random.default_rng(n)
    strength = list(rng.permutation(n).astype(float))
    tour = play(n, strength)
    assert tour.matches_played == 2 * n - 2
    ranking = tour.ranking()
    assert sorted(ranking) == list(range(n))
    assert ranking[0] == int(np.argmax(strength))
    scores = tour.placement_scores()
    assert scores.max() == 1.0 and (n == 1 or scores.min() == 0.0)


def test_tournament_placements_by_hand() -> None:
    # 4 members, strength = index: seeds 3, 2, 1, 0; bracket (3 v 0), (2 v 1); final 3 v 2;
    # semifinal losers 1 and 0 ordered by their mean points (1 beats 0).
    assert play(4, [0.0, 1.0, 2.0, 3.0]).ranking() == [3, 2, 1, 0]
    # 5 members, strength = index: seeds s1..s5 = members 4, 3, 2, 1, 0; bracket of 8
    # [s1, -, s4, s5, s2, -, s3, -]: round 1 only s4 v s5 (1 beats 0); round 2 (4 v 1),
    # (3 v 2); final 4 v 3; then 2 and 1 (round-2 losers by mean points), then 0.
    tour = play(5, [0.0, 1.0, 2.0, 3.0, 4.0])
    assert tour.ranking() == [4, 3, 2, 1, 0]
    np.testing.assert_allclose(tour.placement_scores(), [0.0, 0.25, 0.5, 0.75, 1.0])
    # with weaker and stronger seeding, a strong member seeded low can knock out seed 2
    tour = SeededSingleElimination(4)
    tour.record([(1.0, 0.0), (2.0, 0.0), (0.5, 0.0)])  # seeds: 2, 1, 3, 0 (anchor 0.0)
    assert tour.pending() == [(2, 0), (1, 3)]


def test_seeding_puts_the_anchor_at_its_mean_and_ties_go_to_the_first_listed() -> None:
    tour = SeededSingleElimination(3)
    assert tour.pending() == [(1, 0), (2, 0)]
    tour.record([(5.0, 1.0), (5.0, 3.0)])  # the anchor scored 1 and 3: mean 2
    assert tour.mean_points(0) == 2.0
    # seeds: 1, 2 (tie at 5: index order), 0 -> bracket [s1, bye, s2, s3]: 1 waits
    assert tour.pending() == [(2, 0)]
    tour.record([(4.0, 4.0)])  # a tie: the first listed (the better seed) advances
    assert tour.pending() == [(1, 2)]
    tour.record([(0.0, 1.0)])
    assert tour.ranking() == [2, 1, 0]


# ---------------------------------------------------------------- ArenaRL end to end


def arena_batch() -> list:
    # group g0: a failure, a 3-step success, a 1-step success, a 2-step success
    # group g1: two equal failures (a tie everywhere)
    return [
        traj("g0", 0, steps=2, success=False),
        traj("g0", 1, steps=3, success=True),
        traj("g0", 2, steps=1, success=True),
        traj("g0", 3, steps=2, success=True),
        traj("g1", 0, steps=1, success=False),
        traj("g1", 1, steps=1, success=False),
    ]


def test_arena_with_the_fewer_steps_judge_gives_known_advantages() -> None:
    trajs = arena_batch()
    judge = Judge("agentgym.judges:fewer_steps")
    ctx = context(trajs, judge=judge)
    provider = get_input_provider("arena")()
    filled = provider.provide(ctx)
    # fewer_steps orders g0 as: 1-step success > 2-step success > 3-step success > failure,
    # a strict order, which a 4-member bracket sorts exactly -> scores 1, 2/3, 1/3, 0
    per_traj = {0: 0.0, 1: 1 / 3, 2: 1.0, 3: 2 / 3}
    cols = ctx.columns
    for row in range(len(cols)):
        t = int(cols.traj[row])
        if t < 4:
            assert filled["arena_score"][row] == pytest.approx(per_traj[t])
    # O(N): 2N-2 matches per group, both orders -> 4N-4 questions (minus cache hits)
    assert ctx.metrics["arena/matches"] == (2 * 4 - 2) + (2 * 2 - 2)
    m = judge.metrics()
    assert m["judge/calls"] + m["judge/cache_hits"] == 2 * ctx.metrics["arena/matches"]
    adv = compute_advantages("arenarl", **cols.credit_kwargs(), arena_score=filled["arena_score"])
    # g1's two equal failures tie everywhere: a tie goes to the first listed (the better
    # seed, here the anchor), so they still get placements 1 and 0 (as in the reference)
    expected = np.concatenate(
        [group_normalise([per_traj[t] for t in range(4)]), group_normalise([1.0, 0.0])]
    )
    np.testing.assert_allclose(adv, expected[cols.traj], atol=1e-9)
    # the judge's ranking differs from the binary reward: GRPO ties the three successes
    grpo = compute_advantages("grpo", **cols.credit_kwargs())
    assert len({round(grpo[r], 9) for r in range(len(cols)) if 1 <= cols.traj[r] <= 3}) == 1


def test_arena_without_both_orders_asks_half_as_many_questions() -> None:
    judge = Judge("agentgym.judges:fewer_steps")
    ctx = context(arena_batch(), judge=judge)
    get_input_provider("arena")(bidirectional=False).provide(ctx)
    m = judge.metrics()
    assert m["judge/calls"] + m["judge/cache_hits"] == ctx.metrics["arena/matches"]


def test_arenarl_estimator_by_hand_and_without_the_input() -> None:
    kw = {"group": [0, 0, 0, 0], "traj": [0, 0, 1, 2], "step": [0, 1, 0, 0], "reward": [0.0] * 4}
    score = np.array([0.0, 0.0, 0.5, 1.0])
    adv = compute_advantages("arenarl", **kw, arena_score=score)
    expected = group_normalise([0.0, 0.5, 1.0])
    np.testing.assert_allclose(adv, expected[[0, 0, 1, 2]], atol=1e-12)
    centred = compute_advantages("arenarl", **kw, arena_score=score, norm_by_std=False)
    np.testing.assert_allclose(centred, [-0.5, -0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="needs `arena_score`"):
        compute_advantages("arenarl", **kw)


# ---------------------------------------------------------------- MAPO


def mapo_batch() -> list:
    return [
        traj("g0", 0, steps=3, valid=[True, False, True]),
        traj("g0", 1, steps=2, valid=[False, True]),
        traj("g0", 2, steps=3, valid=[True, True, True], success=True),
        traj("g1", 0, steps=1, valid=[True]),
        traj("g1", 1, steps=2, valid=[False, False]),
    ]


def test_turn_judge_scores_each_turn_and_mapo_is_mixed_on_those_scores() -> None:
    trajs = mapo_batch()
    judge = Judge("agentgym.judges:valid_action")
    ctx = context(trajs, judge=judge)
    score = get_input_provider("turn_judge")().provide(ctx)["judge_score"]
    valid = [s.action_valid for t in trajs for s in t.steps]
    np.testing.assert_array_equal(score, np.array(valid, dtype=float))
    assert judge.metrics()["judge/calls"] == len(valid)
    cols = ctx.columns
    for gamma, weight in itertools.product((1.0, 0.9), (0.0, 0.5, 1.0)):
        adv = compute_advantages(
            "mapo", **cols.credit_kwargs(), judge_score=score, gamma=gamma, turn_weight=weight
        )
        kwargs = {**cols.credit_kwargs(), "reward": score}
        ref = compute_advantages("mixed", **kwargs, gamma=gamma, turn_weight=weight)
        np.testing.assert_allclose(adv, ref, atol=1e-12)


def test_mapo_by_hand_turn_level_only() -> None:
    # two trajectories of one group, judge scores per turn; gamma 1, turn-level only
    kw = {"group": [0, 0, 0, 0], "traj": [0, 0, 1, 1], "step": [0, 1, 0, 1], "reward": [0.0] * 4}
    score = np.array([1.0, 0.0, 0.0, 1.0])  # returns: [1, 0] and [1, 1]
    adv = compute_advantages("mapo", **kw, judge_score=score, gamma=1.0, turn_weight=1.0)
    # turn 0: returns 1, 1 -> 0, 0; turn 1: returns 0, 1 -> -/+ 1/(sqrt(.5)+eps)
    z = 0.5 / (np.sqrt(0.5) + 1e-6)
    np.testing.assert_allclose(adv, [0.0, -z, 0.0, z], atol=1e-12)
    with_env = compute_advantages(
        "mapo", **{**kw, "reward": [0, 0, 0, 2.0]}, judge_score=score, gamma=1.0,
        turn_weight=1.0, env_reward_weight=0.5,
    )  # fmt: skip
    # env reward 2 * 0.5 adds 1 to the last turn of trajectory 1: returns [1, 0], [2, 2]
    z1 = 1.0 / (np.sqrt(2.0) + 1e-6)
    np.testing.assert_allclose(with_env, [-z, -z1, z, z1], atol=1e-12)
