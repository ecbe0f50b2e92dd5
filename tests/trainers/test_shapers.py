"""The built-in outcome shapers ``otc`` and ``egrpo``: against plain loops written from
their definitions, by hand, invariants, state across iterations and checkpoints, and one
real training iteration each on Search-v0 (which reports tool calls and gold entities)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from agentgym.config import TrainConfig, load_config
from agentgym.errors import ConfigError
from agentgym.shapers import OTC, egrpo, entity_match_rate, otc_tool_reward
from agentgym.shaping import RewardContext, apply_shapers, build_shapers
from agentgym.trajectory import Step, Trajectory, flatten
from tests.trainers.test_every_method import SEARCH, run_one, tiny_search_model  # noqa: F401

# ---------------------------------------------------------------- batches


def traj(
    task: str,
    k: int,
    *,
    calls: int = 0,
    success: bool = False,
    outcome: float | None = None,
    texts: tuple[str, ...] = ("",),
    entities: tuple[str, ...] = (),
    status: str = "terminated",
    last_valid: bool = True,
    penalty: float = 0.0,
) -> Trajectory:
    """A rollout of ``task`` (group ``g-task``) with one step per text; the last step
    carries the outcome (1 for a success unless given) plus an engine ``penalty``."""
    outcome = float(success) if outcome is None else outcome
    steps = []
    for i, text in enumerate(texts):
        last = i == len(texts) - 1
        info = {"num_tool_calls": calls if last else min(i, calls)}
        if entities:
            info["gold_entities"] = list(entities)
        env_reward = outcome if last else 0.0
        steps.append(
            Step(
                index=i,
                response_text=text,
                reward=env_reward + (penalty if last else 0.0),
                env_reward=env_reward,
                action_valid=last_valid or not last,
                info=info,
            )
        )
    return Trajectory(
        env_id="Search-v0",
        task_id=task,
        group_id=f"g-{task}",
        traj_id=f"{task}/{k}",
        steps=steps,
        status=status,  # type: ignore[arg-type]
        success=success,
    )


def context(trajectories: list[Trajectory], iteration: int = 1) -> RewardContext:
    columns = flatten(trajectories)
    return RewardContext(columns, columns.reward.copy(), iteration)


def last_rewards(ctx: RewardContext, rewards: np.ndarray) -> list[float]:
    return [float(rewards[r]) for r in ctx.last_rows()]


# ---------------------------------------------------------------- OTC


def loop_tool_reward(m: int, n: float | None, c: float, remap: str) -> float:
    """r_tool written case by case from the paper's definition (n None: OTC-PPO)."""
    if n is None:
        return math.cos(m * math.pi / (2 * m + c))
    if math.isnan(n):
        return 1.0
    if n == 0:
        return 1.0 if m == 0 else math.cos(m * math.pi / (2 * m + c))
    f = m if remap == "linear_below" and m <= n else 2 * n * m / (m + n)
    return math.sin(f * math.pi / (2 * n))


@pytest.mark.parametrize("remap", ["harmonic", "linear_below"])
@pytest.mark.parametrize("c", [0.5, 1.0, 3.0])
def test_otc_tool_reward_matches_the_case_by_case_definition(remap: str, c: float) -> None:
    m = np.repeat(np.arange(8), 9)
    n = np.tile(np.array([np.nan, 0, 1, 2, 3, 4, 5, 6, 7], dtype=float), 8)
    got = otc_tool_reward(m, n, c=c, remap=remap)  # type: ignore[arg-type]
    want = [loop_tool_reward(int(a), float(b), c, remap) for a, b in zip(m, n, strict=True)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        otc_tool_reward(m, None, c=c), [loop_tool_reward(int(a), None, c, remap) for a in m]
    )
    assert np.all((got >= 0) & (got <= 1 + 1e-12))


def test_otc_tool_reward_by_hand() -> None:
    n = np.array([2.0])
    # the optimum scores 1, under- and over-calling less
    assert otc_tool_reward(np.array([2]), n)[0] == pytest.approx(1.0)
    assert otc_tool_reward(np.array([1]), n)[0] == pytest.approx(math.sin(math.pi / 3))  # f=4/3
    linear = otc_tool_reward(np.array([1]), n, remap="linear_below")[0]
    assert linear == pytest.approx(math.sin(math.pi / 4))  # f=m=1
    assert otc_tool_reward(np.array([6]), n)[0] == pytest.approx(math.sin(3 * math.pi / 4))
    assert otc_tool_reward(np.array([0]), np.array([0.0]))[0] == 1.0
    assert otc_tool_reward(np.array([1]), np.array([0.0]), c=1.0)[0] == pytest.approx(0.5)
    assert otc_tool_reward(np.array([2]), None, c=1.0)[0] == pytest.approx(math.cos(0.4 * math.pi))


def test_otc_grpo_uses_the_fewest_calls_of_correct_rollouts_so_far() -> None:
    shaper = OTC()
    # task a: correct with 3 and 2 calls, wrong with 1; task b: nothing correct yet
    first = [
        traj("a", 0, calls=3, success=True),
        traj("a", 1, calls=2, success=True),
        traj("a", 2, calls=1),
        traj("b", 0, calls=4, outcome=0.0),
    ]
    ctx = context(first)
    rewards = shaper.shape(ctx)
    assert last_rewards(ctx, rewards) == pytest.approx(
        [math.sin(2 * 2 * 3 / 5 * math.pi / 4), 1.0, 0.0, 0.0]
    )
    assert shaper.fewest == {"a": 2}
    # a later iteration: no correct rollout of a this time, yet n=2 from the history
    second = [traj("a", 0, calls=4, success=True), traj("b", 0, calls=1, success=True)]
    ctx = context(second, iteration=2)
    rewards = shaper.shape(ctx)
    assert last_rewards(ctx, rewards) == pytest.approx([math.sin(8 / 6 * math.pi / 2), 1.0])
    assert shaper.fewest == {"a": 2, "b": 1}


def loop_otc(batches: list[list[Trajectory]], variant: str, c: float, alpha: float) -> list:
    """OTC over several iterations, one trajectory at a time."""
    fewest: dict[str, int] = {}
    out = []
    for batch in batches:
        if variant == "grpo":
            for t in batch:
                if t.success:
                    fewest[t.task_id] = min(fewest.get(t.task_id, 10**9), t.num_tool_calls)
        shaped = []
        for t in batch:
            n = None if variant == "ppo" else fewest.get(t.task_id, math.nan)
            r_tool = loop_tool_reward(t.num_tool_calls, n, c, "harmonic")
            rewards = [s.reward for s in t.steps]
            last = t.steps[-1]
            rewards[-1] = alpha * r_tool * last.env_reward + (last.reward - last.env_reward)
            shaped.extend(rewards)
        out.append(shaped)
    return out


@pytest.mark.parametrize("variant", ["grpo", "ppo"])
def test_otc_matches_a_loop_over_iterations(variant: str) -> None:
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(4):
        batch = []
        for task in "abc":
            for k in range(4):
                ok = bool(rng.random() < 0.5)
                batch.append(
                    traj(
                        task,
                        k,
                        calls=int(rng.integers(0, 5)),
                        success=ok,
                        outcome=float(ok) if rng.random() < 0.8 else 0.3,
                        texts=("x",) * int(rng.integers(1, 4)),
                        penalty=-0.1 if rng.random() < 0.3 else 0.0,
                    )
                )
        batches.append(batch)
    shaper = OTC(variant=variant, c=2.0, alpha=0.5)  # type: ignore[arg-type]
    got = [shaper.shape(context(b, i + 1)).tolist() for i, b in enumerate(batches)]
    want = loop_otc(batches, variant, 2.0, 0.5)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-12)


def test_otc_leaves_optimal_rollouts_and_wrong_answers_alone() -> None:
    batch = [
        traj("a", 0, calls=2, success=True, texts=("x", "y")),
        traj("a", 1, calls=2, success=True, penalty=-0.1),
        traj("a", 2, calls=0, penalty=-0.1),
        traj("a", 3, calls=5),
    ]
    ctx = context(batch)
    np.testing.assert_allclose(OTC().shape(ctx), ctx.rewards)


def test_otc_state_survives_a_restart_through_its_state_dict() -> None:
    history = [traj("a", 0, calls=1, success=True), traj("b", 0, calls=3, success=True)]
    later = [traj("a", 0, calls=3, success=True), traj("b", 0, calls=2, success=True)]
    one = OTC()
    one.shape(context(history))
    saved = json.loads(json.dumps(one.state_dict()))  # what a checkpoint keeps
    two = OTC()
    two.load_state_dict(saved)
    ctx = context(later, 2)
    np.testing.assert_allclose(two.shape(ctx), one.shape(ctx))
    assert two.fewest == {"a": 1, "b": 2}
    fresh = OTC().shape(context(later, 2))
    assert not np.allclose(fresh, two.shape(context(later, 2)))  # the history mattered


# ---------------------------------------------------------------- E-GRPO

ENTITIES = ("Ada Lovelace", "Velmora", "Orvex Dynamics")


def loop_egrpo(batch: list[Trajectory], alpha: float, strict: bool) -> list[float]:
    """E-GRPO's outcome per trajectory, written from the definition."""

    def gamma(t: Trajectory) -> float:
        text = " ".join(s.response_text for s in t.steps).lower()
        words = " " + " ".join("".join(ch if ch.isalnum() else " " for ch in text).split()) + " "
        ents = t.steps[-1].info.get("gold_entities", [])
        found = [e for e in ents if " " + " ".join(e.lower().split()) + " " in words]
        return len(found) / len(ents) if ents else 0.0

    out = []
    for t in batch:
        best = max(gamma(u) for u in batch if u.group_id == t.group_id)
        error = t.status != "terminated" or not t.steps[-1].action_valid
        error = error or (strict and any(not s.action_valid for s in t.steps))
        if t.success:
            out.append(1.0)
        elif error:
            out.append(0.0)
        else:
            out.append(alpha * gamma(t) / best if best > 0 else 0.0)
    return out


def entity_batch() -> list[Trajectory]:
    e = ENTITIES
    return [
        # group a: a correct answer, near misses and failures
        traj("a", 0, success=True, texts=("ada lovelace", "Velmora!"), entities=e),
        traj("a", 1, texts=("<search> Ada Lovelace </search>", "velmora"), entities=e),
        traj("a", 2, texts=("Adams of Velmoran",), entities=e),  # whole words only: none
        traj("a", 3, texts=("Orvex Dynamics",), entities=e, status="truncated"),
        traj("a", 4, texts=("Velmora", "Orvex-Dynamics"), entities=e, last_valid=False),
        # group b: wrong answers only; the best near miss gets the full alpha
        traj("b", 0, texts=("Velmora",), entities=e),
        traj("b", 1, texts=("Velmora and Ada Lovelace",), entities=e, penalty=-0.1),
        traj("b", 2, texts=("nothing",), entities=e),
        # group c: no rollout mentions anything
        traj("c", 0, texts=("nothing",), entities=e),
    ]


def test_egrpo_by_hand() -> None:
    batch = entity_batch()
    ctx = context(batch)
    rewards = egrpo(ctx, alpha=0.3)
    outcome = [r - (t.steps[-1].reward - t.steps[-1].env_reward) for r, t in zip(
        last_rewards(ctx, rewards), batch, strict=True)]  # fmt: skip
    # group a: max gamma = 2/3 (rollouts 0 and 1); b: max 2/3
    assert outcome == pytest.approx([1.0, 0.3, 0.0, 0.0, 0.0, 0.3 * 0.5, 0.3, 0.0, 0.0])
    assert last_rewards(ctx, rewards)[6] == pytest.approx(0.3 - 0.1)  # the penalty stays


@pytest.mark.parametrize("strict", [False, True])
def test_egrpo_matches_a_loop(strict: bool) -> None:
    rng = np.random.default_rng(1)
    words = ["Ada Lovelace", "Velmora", "Orvex Dynamics", "Adams", "velmora.", "orvex", "x"]
    batch = []
    for task in "abcd":
        for k in range(5):
            texts = tuple(
                " ".join(rng.choice(words, size=int(rng.integers(1, 4))))
                for _ in range(int(rng.integers(1, 4)))
            )
            batch.append(
                traj(
                    task,
                    k,
                    success=bool(rng.random() < 0.2),
                    texts=texts,
                    entities=ENTITIES,
                    status="terminated" if rng.random() < 0.8 else "truncated",
                    last_valid=bool(rng.random() < 0.9),
                    penalty=-0.1 if rng.random() < 0.3 else 0.0,
                )
            )
            batch[-1].steps[0].action_valid = bool(rng.random() < 0.7) or len(texts) == 1
    ctx = context(batch)
    got = egrpo(ctx, alpha=0.4, strict_format=strict)
    penalty = [t.steps[-1].reward - t.steps[-1].env_reward for t in batch]
    want = [o + p for o, p in zip(loop_egrpo(batch, 0.4, strict), penalty, strict=True)]
    assert last_rewards(ctx, got) == pytest.approx(want)


def test_entity_match_rate_counts_whole_words_once() -> None:
    assert entity_match_rate(["ADA-LOVELACE met ada lovelace"], ["Ada Lovelace"]) == 1.0
    assert entity_match_rate(["Adams"], ["Ada"]) == 0.0
    assert entity_match_rate(["x"], []) == 0.0
    assert entity_match_rate(["Velmora"], ["Velmora", "velmora", "Orvex"]) == 0.5


def test_egrpo_is_refused_at_load_where_no_gold_entities_exist() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            TrainConfig, "examples/quickstart.yaml", ["algorithm.reward_shaping=[{name: egrpo}]"]
        )
    assert "reward shaper 'egrpo' needs the input 'gold_entities'" in str(info.value)
    cfg = load_config(
        TrainConfig, None, ["env.id=Search-v0", "algorithm.reward_shaping=[{name: egrpo}]"]
    )
    assert cfg.algorithm.reward_shaping == [{"name": "egrpo"}]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{name: otc, variant: grpo_}", "choose one of 'grpo', 'ppo'"),
        ("{name: otc, c: 0}", "c"),
        ("{name: egrpo, alpha: 1.5}", "alpha"),
    ],
)
def test_bad_shaper_settings_are_refused_at_load(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(TrainConfig, None, ["env.id=Search-v0", f"algorithm.reward_shaping=[{spec}]"])


def test_shapers_chain_on_the_outcome() -> None:
    batch = entity_batch()
    for t in batch:  # tool calls for OTC: one per response
        t.steps[-1].info["num_tool_calls"] = len(t.steps)
    ctx = context(batch)
    shapers = build_shapers([{"name": "egrpo"}, {"name": "otc", "variant": "ppo"}])
    rewards, metrics = apply_shapers(shapers, ctx)
    first = egrpo(ctx)
    again = OTC(variant="ppo").shape(RewardContext(ctx.columns, first, 1))
    np.testing.assert_allclose(rewards, again)
    assert set(metrics) == {"shaping/egrpo/reward_delta", "shaping/otc/reward_delta"}


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize(
    "shaping",
    ["[{name: otc}]", "[{name: otc, variant: ppo, c: 2.0}]", "[{name: egrpo, alpha: 0.5}]"],
)
def test_outcome_shapers_train_on_search(
    tmp_path: Path,
    tiny_search_model: Path,  # noqa: F811
    shaping: str,
) -> None:
    record, run = run_one(
        tmp_path,
        tiny_search_model,
        *SEARCH,
        f"algorithm.reward_shaping={shaping}",
        "algorithm.adv_estimator=grpo",
        "env.rollout.n=4",
    )
    name = "otc" if "otc" in shaping else "egrpo"
    assert f"shaping/{name}/reward_delta" in record and record["train/samples"] > 0
    state = torch.load(run / "checkpoints" / "latest" / "trainer_state.pt", weights_only=False)
    saved = state["shapers"]
    assert [s["name"] for s in saved] == [name]
    if "variant: ppo" not in shaping and name == "otc":
        assert isinstance(saved[0]["state"]["fewest"], dict)  # OTC-GRPO's table is kept
