"""Critics: values read where they should be, the clipped value loss by hand, learning,
state through a restart; HiPER's format, subgoal spans and subgoal-token credit."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agentgym.credit import CreditBatch, compute_advantages
from agentgym.credit.gae import hierarchical_advantages
from agentgym.parsers import get_parser
from agentgym.providers import get_input_provider
from agentgym.providers.critic import clipped_value_loss
from agentgym.providers.hiper import read_plan, tag_token_span
from agentgym.trainers.samples import build_samples
from tests.methods.helpers import context, traj


def test_clipped_value_loss_by_hand() -> None:
    value, old, target = (
        torch.tensor([1.0, 0.0]),
        torch.tensor([0.0, 0.0]),
        torch.tensor([0.0, 2.0]),
    )
    mask = torch.ones(2)
    # row 0: unclipped 1, clipped (0 + clip(1, .5) = .5) .25 -> max 1; row 1: 4 vs 2.25 -> 4
    assert float(clipped_value_loss(value, old, target, mask, 0.5)) == pytest.approx(0.5 * 5 / 2)
    assert float(clipped_value_loss(value, old, target, mask, None)) == pytest.approx(0.5 * 5 / 2)
    value = torch.tensor([-1.0, 3.0])  # moved past the clip: the clipped error is larger
    # row 0: (-1)^2 = 1 vs (-.5)^2; row 1: 1 vs (.5 - 2)^2 = 2.25 -> 2.25
    assert float(clipped_value_loss(value, old, target, mask, 0.5)) == pytest.approx(
        0.5 * (1 + 2.25) / 2
    )


def critic_batch(tokenizer) -> list:  # type: ignore[no-untyped-def]
    trajs = [traj("g", 0, steps=3, success=True), traj("g", 1, steps=2, success=False)]
    for t in trajs:
        for s in t.steps:
            s.prompt_ids = tokenizer.encode(
                f"The capital is Paris {s.index}", add_special_tokens=False
            )
    return trajs


def test_critic_values_are_read_at_the_end_of_each_prompt_and_learn(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer, _ = tiny_lm
    critic = get_input_provider("critic")(lr=1e-2, epochs=4)
    trajs = critic_batch(tokenizer)
    ctx = context(trajs, model=model, tokenizer=tokenizer, settings={"gamma": 0.9, "lam": 1.0})
    values = critic.provide(ctx)["value"]
    assert np.allclose(values, 0.0)  # the head starts at zero
    with torch.no_grad():  # a known head: the value is a fixed reading of the last hidden state
        critic.net.head.bias.fill_(0.25)
        critic.net.head.weight.normal_(generator=torch.Generator().manual_seed(0))
    values = critic.provide(ctx)["value"]
    steps = [s for t in trajs for s in t.steps]
    for v, s in zip(values, steps, strict=True):
        ids = torch.tensor([s.prompt_ids])
        with torch.no_grad():
            direct = critic.net(ids, torch.ones_like(ids))[0, -1, 0].item()
        assert v == pytest.approx(direct, abs=1e-5)
    # regression on GAE(lambda=1) returns: the discounted returns-to-go
    losses = []
    for _ in range(6):
        ctx = context(trajs, model=model, tokenizer=tokenizer, settings={"gamma": 0.9, "lam": 1.0})
        critic.provide(ctx)
        critic.after_update(ctx)
        losses.append(ctx.metrics["critic/value_loss"])
    assert losses[-1] < 0.5 * losses[0]
    target = CreditBatch.from_columns(**ctx.columns.credit_kwargs()).returns_to_go(0.9)
    assert ctx.metrics["critic/return_mean"] == pytest.approx(float(target.mean()), abs=0.3)
    # through a restart: the same weights, optimizer and values
    again = get_input_provider("critic")(lr=1e-2, epochs=4)
    again.load_state_dict(critic.state_dict())
    ctx2 = context(trajs, model=model, tokenizer=tokenizer)
    np.testing.assert_allclose(
        again.provide(ctx2)["value"], critic.provide(ctx2)["value"], atol=1e-6
    )
    assert (
        again.optimizer.state_dict()["state"].keys()
        == critic.optimizer.state_dict()["state"].keys()
    )


def test_hiper_parser_plan_and_spans(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    _, tokenizer, _ = tiny_lm
    parser = get_parser("hiper")
    text = "<switch>SWITCH</switch><subgoal>find Paris</subgoal><action>search Paris</action>"
    assert parser.parse(text).action == "search Paris"
    assert parser.parse("<subgoal>x</subgoal>").action is None
    assert read_plan(text) == (True, "find Paris")
    assert read_plan("<switch> keep </switch><action>a</action>") == (False, None)
    assert read_plan("<action>a</action>") == (None, None)
    assert parser.parse(parser.render("up")).action == "up"
    ids = tokenizer.encode(text, add_special_tokens=False)
    a, b = tag_token_span(tokenizer, ids, "subgoal")
    covered = tokenizer.decode(ids[a:b])
    assert "find Paris" in covered and "search" not in covered
    assert tag_token_span(tokenizer, ids, "nothing") is None


def test_hiper_critic_adds_the_high_level_advantage_to_subgoal_tokens(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer, _ = tiny_lm
    plans = [
        ["<switch>SWITCH</switch><subgoal>go to Paris</subgoal><action>a</action>",
         "<switch>KEEP</switch><subgoal>go to Paris</subgoal><action>b</action>",
         "<switch>SWITCH</switch><subgoal>find book</subgoal><action>c</action>"],
        ["<action>d</action>", "<switch>SWITCH</switch><subgoal>x</subgoal><action>e</action>"],
    ]  # fmt: skip
    trajs = [traj("g", k, steps=len(p), success=k == 0) for k, p in enumerate(plans)]
    for t, texts in zip(trajs, plans, strict=True):
        for s, text in zip(t.steps, texts, strict=True):
            s.response_text = text
            s.response_ids = tokenizer.encode(text, add_special_tokens=False)
            s.prompt_ids = tokenizer.encode(f"Who wrote {s.index}?", add_special_tokens=False)
    critic = get_input_provider("hiper_critic")()
    settings = {"gamma": 0.9, "lam_low": 0.8, "lam_high": 0.7}
    ctx = context(trajs, model=model, tokenizer=tokenizer, settings=settings)
    filled = critic.provide(ctx)
    assert filled["switch"].tolist() == [True, False, True, False, True]
    with torch.no_grad():  # distinct heads, so A^H is not zero
        critic.net.head.bias.copy_(torch.tensor([0.3, -0.2]))
    filled = critic.provide(ctx)
    ctx.provided.update(filled)
    cols = ctx.columns
    adv = compute_advantages("hiper", **cols.credit_kwargs(), **filled, **settings)
    per_traj = [[adv[r] for r in range(len(cols)) if cols.traj[r] == k] for k in range(2)]
    ctx.samples = build_samples(trajs, per_traj, "window")
    before = [list(s.advantages) for s in ctx.samples]
    critic.adjust_samples(ctx)
    hae = hierarchical_advantages(
        CreditBatch.from_columns(**cols.credit_kwargs()), filled["value_low"],
        filled["value_high"], filled["switch"], 0.9, 0.8, 0.7,
    )  # fmt: skip
    for row, (sample, old) in enumerate(zip(ctx.samples, before, strict=True)):
        step = trajs[sample.traj_index].steps[sample.step_index]
        diff = np.array(sample.advantages) - np.array(old)
        span = tag_token_span(tokenizer, step.response_ids, "subgoal")
        expected = np.zeros(len(diff))
        if hae["boundary"][row] and span is not None:
            start = len(step.prompt_ids)
            expected[start + span[0] : start + span[1]] = hae["adv_high"][row]
        np.testing.assert_allclose(diff, expected, atol=1e-6)
    # rows 0, 2 and 4 start segments with a subgoal; row 3 starts one (step 0) without
    assert ctx.metrics["hiper/subgoal_tokens"] > 0
    critic.after_update(ctx)
    assert ctx.metrics["critic/value_loss"] >= 0


def test_critic_copies_the_policy_it_is_given(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer, _ = tiny_lm
    policy = copy.deepcopy(model)
    critic = get_input_provider("critic")()
    ctx = context(critic_batch(tokenizer), model=policy, tokenizer=tokenizer)
    critic.provide(ctx)
    with torch.no_grad():
        for p in critic.net.parameters():
            p.add_(1.0)
    for a, b in zip(policy.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)  # training the critic never touches the policy
