"""The ``llds`` loss term and the ``balanced`` aggregation: by hand, against plain loops,
micro-batches adding up to the mini-batch loss, masked tokens changing nothing, and real
training from YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agentgym.config import TrainConfig, load_config
from agentgym.errors import ConfigError
from agentgym.trainers.balanced import balanced_weights
from agentgym.trainers.llds import llds_penalty, llds_term
from agentgym.trainers.losses import Aggregation, LossInputs, list_loss_terms, ppo_loss
from agentgym.trainers.samples import Sample
from tests.trainers.test_every_method import SEARCH, run_one, tiny_search_model  # noqa: F401


def inputs(
    logp: list[list[float]],
    old: list[list[float]],
    adv: list[list[float]],
    mask: list[list[float]],
    segment: list[list[int]] | None = None,
    grad: bool = False,
) -> LossInputs:
    lp = torch.tensor(logp, requires_grad=grad)
    return LossInputs(
        log_prob=lp,
        old_log_prob=torch.tensor(old),
        advantages=torch.tensor(adv),
        mask=torch.tensor(mask),
        entropy=torch.zeros_like(lp),
        segment=None if segment is None else torch.tensor(segment),
    )


# ---------------------------------------------------------------- LLDS


def test_llds_by_hand_response_level() -> None:
    # sample 0 lost likelihood overall (drops 0.5 and 0.3, gain 0.2): penalised on the
    # tokens that dropped; sample 1 gained overall: nothing, although one token dropped
    x = inputs(
        logp=[[-1.5, -1.3, -0.8, 0.0], [-1.0, -0.5, -1.3, -2.0]],
        old=[[-1.0, -1.0, -1.0, 0.0], [-1.0, -1.0, -1.1, -2.0]],
        adv=[[1.0, 1.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.0]],
        mask=[[1, 1, 1, 0], [1, 1, 1, 0]],
        grad=True,
    )
    agg = Aggregation("token-mean", total_tokens=6.0)
    loss, metrics = llds_term(x, agg, coef=2.0)
    assert float(loss.detach()) == pytest.approx(2.0 * (0.5 + 0.3) / 6)
    assert metrics["actor/llds_active_share"] == pytest.approx(3 / 6)
    loss.backward()
    # d/dlogp of coef * max(0, old - logp) / 6 = -coef/6 on penalised tokens only
    expected = torch.tensor([[-1 / 3, -1 / 3, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(x.log_prob.grad, expected)


def test_llds_turn_level_gates_each_turn() -> None:
    # one chat sample with two turns: turn 0 lost likelihood, turn 1 gained overall
    x = inputs(
        logp=[[-2.0, -1.0, 0.0, -1.2, -0.1]],
        old=[[-1.0, -1.0, 0.0, -1.0, -1.0]],
        adv=[[1.0, 1.0, 0.0, 1.0, 1.0]],
        mask=[[1, 1, 0, 1, 1]],
        segment=[[0, 0, -1, 1, 1]],
    )
    agg = Aggregation("token-mean", total_tokens=4.0)
    turn, _ = llds_term(x, agg, coef=1.0, granularity="turn")
    assert float(turn) == pytest.approx(1.0 / 4)
    whole, _ = llds_term(x, agg, coef=1.0, granularity="response")  # sum 1.0 - 0.7 > 0
    assert float(whole) == pytest.approx((1.0 + 0.2) / 4)


def test_llds_preserves_only_nonnegative_advantages_by_default() -> None:
    x = inputs(
        logp=[[-2.0, -2.0]], old=[[-1.0, -1.0]], adv=[[1.0, -1.0]], mask=[[1, 1]]
    )  # fmt: skip
    agg = Aggregation("token-mean", total_tokens=2.0)
    assert float(llds_term(x, agg, coef=1.0)[0]) == pytest.approx(1.0 / 2)
    assert float(llds_term(x, agg, coef=1.0, preserve="all")[0]) == pytest.approx(2.0 / 2)


def loop_llds(x: LossInputs, granularity: str, preserve: str) -> torch.Tensor:
    """The per-token penalty written token by token from the definition."""
    out = torch.zeros_like(x.log_prob)
    b, n = x.log_prob.shape
    for i in range(b):
        units: dict[int, list[int]] = {}
        for t in range(n):
            keep = x.mask[i, t] > 0 and (preserve == "all" or x.advantages[i, t] >= 0)
            if keep:
                unit = int(x.segment[i, t]) if granularity == "turn" else 0
                units.setdefault(unit, []).append(t)
        for tokens in units.values():
            drop = [float(x.old_log_prob[i, t] - x.log_prob[i, t]) for t in tokens]
            if sum(drop) > 0:
                for t, d in zip(tokens, drop, strict=True):
                    out[i, t] = max(0.0, d)
    return out


@pytest.mark.parametrize("granularity", ["response", "turn"])
@pytest.mark.parametrize("preserve", ["nonnegative", "all"])
def test_llds_matches_a_loop(granularity: str, preserve: str) -> None:
    g = torch.Generator().manual_seed(3)
    b, n = 6, 12
    mask = (torch.rand(b, n, generator=g) > 0.25).float()
    turns, _ = torch.sort(torch.randint(0, 3, (b, n), generator=g), dim=1)
    segment = torch.where(mask > 0, turns, -1)  # turns in order, -1 outside responses
    x = LossInputs(
        log_prob=torch.randn(b, n, generator=g),
        old_log_prob=torch.randn(b, n, generator=g),
        advantages=torch.randn(b, n, generator=g),
        mask=mask,
        entropy=torch.zeros(b, n),
        segment=segment,
    )
    penalty, _gate = llds_penalty(x, granularity, preserve)  # type: ignore[arg-type]
    torch.testing.assert_close(penalty, loop_llds(x, granularity, preserve))


def test_llds_is_zero_at_the_first_step_and_masked_tokens_change_nothing() -> None:
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(3, 7, generator=g)
    mask = (torch.rand(3, 7, generator=g) > 0.3).float()
    base = dict(advantages=torch.randn(3, 7, generator=g), mask=mask, entropy=torch.zeros(3, 7))
    agg = Aggregation("token-mean", total_tokens=float(mask.sum()))
    same = LossInputs(log_prob=logp, old_log_prob=logp.clone(), **base)
    assert float(llds_term(same, agg, coef=1.0)[0]) == 0.0
    old = logp + torch.rand(3, 7, generator=g)
    one = float(llds_term(LossInputs(log_prob=logp, old_log_prob=old, **base), agg, coef=1.0)[0])
    noise = torch.randn(3, 7, generator=g) * 5 * (1 - mask)
    two = float(
        llds_term(LossInputs(log_prob=logp + noise, old_log_prob=old - noise, **base), agg)[0]
    )
    assert one > 0 and two == pytest.approx(0.1 * one)  # coef default 0.1


# ---------------------------------------------------------------- Balanced Aggregation


def sample(group: int, adv: float, tokens: int, prompt: int = 2) -> Sample:
    n = prompt + tokens
    return Sample(
        input_ids=list(range(n)),
        mask=[0] * prompt + [1] * tokens,
        advantages=[0.0] * prompt + [adv] * tokens,
        old_logprobs=[0.0] * n,
        traj_index=0,
        group=group,
    )


def loop_balanced(samples: list[Sample], values: list[list[float]]) -> float:
    """BA written from its definition: per group, token means of P and N weighted by their
    response counts; groups weighted by their share of the responses."""
    live = [i for i, s in enumerate(samples) if sum(s.mask)]
    total = 0.0
    for g in sorted({samples[i].group for i in live}):
        members = [i for i in live if samples[i].group == g]
        parts = {}
        for sign in (True, False):
            subset = [
                i
                for i in members
                if (sum(a for a, m in zip(samples[i].advantages, samples[i].mask, strict=True) if m)
                    >= 0) == sign
            ]  # fmt: skip
            tok = [v for i in subset for v, m in zip(values[i], samples[i].mask, strict=True) if m]
            parts[sign] = (len(subset), sum(tok) / len(tok) if tok else 0.0)
        n_g = len(members)
        loss_g = sum(count / n_g * mean for count, mean in parts.values())
        total += n_g / len(live) * loss_g
    return total


def tensors(samples: list[Sample], values: list[list[float]]) -> tuple[torch.Tensor, ...]:
    width = max(len(s.input_ids) for s in samples)
    v = torch.zeros(len(samples), width)
    m = torch.zeros(len(samples), width)
    for i, s in enumerate(samples):
        v[i, : len(values[i])] = torch.tensor(values[i])
        m[i, : len(s.mask)] = torch.tensor(s.mask, dtype=torch.float32)
    return v, m


def test_balanced_aggregation_by_hand() -> None:
    # group 0: P = {2 tokens of 1.0, 3 tokens of 4.0}, N = {1 token of 10.0}
    # group 1: N only = {2 tokens of 2.0}
    samples = [sample(0, 1.0, 2), sample(0, 0.5, 3), sample(0, -1.0, 1), sample(1, -2.0, 2)]
    values = [[0, 0, 1, 1], [0, 0, 4, 4, 4], [0, 0, 10], [0, 0, 2, 2]]
    v, m = tensors(samples, values)
    agg = Aggregation("balanced", samples=samples)
    g0 = 2 / 3 * (1 + 1 + 12) / 5 + 1 / 3 * 10.0
    g1 = 2.0
    assert float(agg(v, m)) == pytest.approx(3 / 4 * g0 + 1 / 4 * g1)
    assert float(agg(v, m)) == pytest.approx(loop_balanced(samples, values))


def test_balanced_aggregation_matches_a_loop_and_adds_up_over_micro_batches() -> None:
    g = torch.Generator().manual_seed(5)
    samples, values = [], []
    for i in range(11):
        tokens = int(torch.randint(1, 6, (1,), generator=g))
        adv = float(torch.randn(1, generator=g)) if i != 4 else 0.0  # a zero counts as P
        samples.append(sample(int(torch.randint(0, 3, (1,), generator=g)), adv, tokens))
        values.append(torch.randn(2 + tokens, generator=g).tolist())
    samples.append(sample(-1, 0.0, 0))  # padding: no tokens, no weight
    values.append([0.0, 0.0])
    v, m = tensors(samples, values)
    agg = Aggregation("balanced", samples=samples)
    full = float(agg(v, m))
    assert full == pytest.approx(loop_balanced(samples, values))
    parts = 0.0
    for rows in ([0, 5, 11], [1, 2, 3], [4, 6, 7, 8, 9, 10]):
        parts += float(agg.for_rows(rows)(v[rows], m[rows]))
    assert parts == pytest.approx(full)
    assert "balanced" in agg.cache  # computed once per mini-batch, shared by micro-batches
    # masked positions change nothing
    noise = torch.randn(v.shape, generator=g) * (1 - m) * 100
    assert float(agg(v + noise, m)) == pytest.approx(full)


def test_balanced_equals_token_mean_within_one_sign_and_group() -> None:
    samples = [sample(0, 1.0, 2), sample(0, 2.0, 5), sample(0, 0.1, 1)]
    values = [[0, 0, 1, 2], [0, 0, 3, 3, 3, 3, 3], [0, 0, 7]]
    v, m = tensors(samples, values)
    bal = Aggregation("balanced", samples=samples)
    tok = Aggregation("token-mean", total_tokens=8.0)
    assert float(bal(v, m)) == pytest.approx(float(tok(v, m)))
    assert sum(balanced_weights(samples)[i] * sum(s.mask) for i, s in enumerate(samples)) == 1.0


def test_balanced_ppo_loss_over_micro_batches_equals_the_mini_batch_loss() -> None:
    g = torch.Generator().manual_seed(1)
    samples = [
        sample(i % 3, float(torch.randn(1, generator=g)), 1 + i % 4, prompt=0) for i in range(9)
    ]
    width = max(len(s.input_ids) for s in samples)
    logp = torch.randn(9, width, generator=g, requires_grad=True)
    old = logp.detach() + 0.1 * torch.randn(9, width, generator=g)
    adv = torch.zeros(9, width)
    mask = torch.zeros(9, width)
    for i, s in enumerate(samples):
        adv[i, : len(s.advantages)] = torch.tensor(s.advantages)
        mask[i, : len(s.mask)] = torch.tensor(s.mask, dtype=torch.float32)
    agg = Aggregation("balanced", samples=samples)
    whole, _ = ppo_loss(logp, old, adv, mask, agg)
    whole.backward()
    grad = logp.grad.clone()
    logp.grad = None
    for rows in ([0, 1, 2, 3], [4, 5], [6, 7, 8]):
        part, _ = ppo_loss(logp[rows], old[rows], adv[rows], mask[rows], agg.for_rows(rows))
        part.backward()
    torch.testing.assert_close(logp.grad, grad)


def test_balanced_needs_the_mini_batch_samples() -> None:
    with pytest.raises(ValueError, match="needs the mini-batch's samples"):
        Aggregation("balanced")(torch.ones(1, 2), torch.ones(1, 2))


# ---------------------------------------------------------------- from YAML


def test_llds_settings_are_checked_at_load() -> None:
    cfg = load_config(
        TrainConfig, None, ["actor.loss_terms={llds: {coef: 0.5, granularity: turn}}"]
    )
    assert cfg.actor.terms() == {"llds": {"coef": 0.5, "granularity": "turn"}}
    with pytest.raises(ConfigError, match="choose one of 'response', 'turn'"):
        load_config(TrainConfig, None, ["actor.loss_terms={llds: {granularity: step}}"])
    with pytest.raises(ConfigError, match="Did you mean 'llds'"):
        load_config(TrainConfig, None, ["actor.loss_terms={lld: {coef: 0.5}}"])


@pytest.mark.parametrize("term", list_loss_terms())
def test_every_loss_term_trains_one_iteration(
    tmp_path: Path, tiny_frozenlake_model: Path, term: str
) -> None:
    record, _ = run_one(
        tmp_path,
        tiny_frozenlake_model,
        f"actor.loss_terms={{{term}: {{coef: 0.1}}}}",
        "actor.mini_batch_size=4",  # several optimizer steps, so the policy moves in between
    )
    assert torch.isfinite(torch.tensor(record["actor/pg_loss"]))


@pytest.mark.parametrize("granularity", ["response", "turn"])
def test_llds_and_balanced_train_on_multi_turn_chat(
    tmp_path: Path,
    tiny_search_model: Path,  # noqa: F811
    granularity: str,
) -> None:
    record, _ = run_one(
        tmp_path,
        tiny_search_model,
        *SEARCH,
        "env.prompt.style=chat",
        "algorithm.adv_estimator=grpo",
        "actor.loss_agg_mode=balanced",
        f"actor.loss_terms={{llds: {{coef: 1.0, granularity: {granularity}}}}}",
        "actor.mini_batch_size=2",
        "actor.ppo_epochs=2",
        "actor.lr=1e-2",
    )
    # the policy moved between the optimizer steps, and some responses lost likelihood
    assert record["actor/llds_penalty"] > 0.0
    assert 0.0 < record["actor/llds_active_share"] <= 1.0
    assert torch.isfinite(torch.tensor(record["actor/pg_loss"]))
