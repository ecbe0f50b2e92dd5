"""IGPO: the gold answer's probability by teacher forcing (against a plain per-step
forward), the information gain, and the ``igpo`` estimator against a loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agentgym.config import TrainConfig, load_config
from agentgym.credit import compute_advantages
from agentgym.errors import ConfigError
from agentgym.providers import get_input_provider
from agentgym.providers.info_gain import mean_target_logprob
from tests.methods.helpers import context, traj


def loop_igpo(trajs_rewards: dict, groups: dict, gamma: float, eps: float = 1e-6) -> dict:
    """``{traj: [advantage per turn]}``: normalise every turn reward of a group together,
    then accumulate backwards with gamma."""
    out = {}
    for members in groups.values():
        pooled = np.concatenate([trajs_rewards[t] for t in members])
        mean, std = pooled.mean(), pooled.std(ddof=1) if len(pooled) > 1 else 0.0
        for t in members:
            r = np.asarray(trajs_rewards[t])
            z = np.zeros_like(r) if np.all(pooled == pooled[0]) else (r - mean) / (std + eps)
            adv, acc = np.zeros_like(z), 0.0
            for k in range(len(z) - 1, -1, -1):
                acc = z[k] + gamma * acc
                adv[k] = acc
            out[t] = adv
    return out


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_igpo_matches_the_loop(gamma: float) -> None:
    rng = np.random.default_rng(0)
    lengths = {0: 3, 1: 1, 2: 2, 3: 4, 4: 2}
    groups = {0: [0, 1, 2], 1: [3, 4]}
    rows = [(g, t, k) for g, ts in groups.items() for t in ts for k in range(lengths[t])]
    group = [g for g, _, _ in rows]
    traj_ = [t for _, t, _ in rows]
    step = [k for _, _, k in rows]
    reward = rng.normal(size=len(rows)).round(2)
    gain = rng.normal(size=len(rows)).round(2)
    adv = compute_advantages(
        "igpo", group=group, traj=traj_, step=step, reward=reward, info_gain=gain, gamma=gamma
    )
    per_traj = {t: [] for t in lengths}
    for (_, t, _), r, ig in zip(rows, reward, gain, strict=True):
        per_traj[t].append(r + ig)
    expected = loop_igpo({t: np.array(v) for t, v in per_traj.items()}, groups, gamma)
    np.testing.assert_allclose(adv, [expected[t][k] for _, t, k in rows], atol=1e-12)
    with pytest.raises(ValueError, match="needs `info_gain`"):
        compute_advantages("igpo", group=group, traj=traj_, step=step, reward=reward)


def test_igpo_by_hand() -> None:
    # one group, two 2-turn trajectories; IG on turn 0, outcome on turn 1; gamma 1
    kw = {"group": [0] * 4, "traj": [0, 0, 1, 1], "step": [0, 1, 0, 1]}
    adv = compute_advantages(
        "igpo", **kw, reward=[0, 1, 0, 0], info_gain=[0.5, 0, -0.5, 0], gamma=1.0
    )
    # turn rewards 0.5, 1, -0.5, 0: mean 0.25, sample std sqrt(0.41667)
    z = (np.array([0.5, 1.0, -0.5, 0.0]) - 0.25) / (np.sqrt(1.25 / 3) + 1e-6)
    np.testing.assert_allclose(adv, [z[0] + z[1], z[1], z[2] + z[3], z[3]], atol=1e-12)


def test_gold_belief_is_the_teacher_forced_probability_per_turn(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer, _ = tiny_lm
    gold = "Ada Lovelace"
    trajs = [traj("g", k, steps=n) for k, n in ((0, 3), (1, 1), (2, 2))]
    texts = ["Who wrote the book?", " <search> author </search>", " <information> x </information>"]
    for t in trajs:
        for s in t.steps:
            s.prompt_ids = tokenizer.encode("".join(texts[: s.index + 1]), add_special_tokens=False)
            s.info = {"gold_answer": gold}
    ctx = context(trajs, model=model, tokenizer=tokenizer, micro_batch_size=2)
    filled = get_input_provider("gold_belief")().provide(ctx)
    prefix = tokenizer.encode("<answer>", add_special_tokens=False)
    answer = tokenizer.encode(gold, add_special_tokens=False)
    expected = []
    for t in trajs:
        for s in t.steps:  # one plain forward per step, no batching or padding
            ids = torch.tensor([s.prompt_ids + prefix + answer])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0].float(), -1)
            start = len(s.prompt_ids) + len(prefix) - 1
            lp = [logp[start + j, a].item() for j, a in enumerate(answer)]
            expected.append(np.exp(np.mean(lp)))
    np.testing.assert_allclose(filled["gold_belief"], expected, rtol=1e-5)
    # information gain: the next turn's belief minus this one's; 0 on last turns
    e = expected
    np.testing.assert_allclose(
        filled["info_gain"], [e[1] - e[0], e[2] - e[1], 0.0, 0.0, e[5] - e[4], 0.0], atol=1e-6
    )
    assert ctx.metrics["igpo/forward_tokens"] > 0


def test_mean_target_logprob_pads_without_changing_values(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    model, _, _ = tiny_lm
    prefixes, targets = [[5, 6, 7, 8, 9, 10], [5], [7, 8]], [[11, 12], [13], [14, 15, 16]]
    batched = mean_target_logprob(model, prefixes, targets, micro_batch_size=3)
    single = [
        mean_target_logprob(model, [p], [t])[0] for p, t in zip(prefixes, targets, strict=True)
    ]
    np.testing.assert_allclose(batched, single, rtol=1e-5)


def test_gold_belief_needs_the_gold_answer() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, "examples/quickstart.yaml", ["algorithm.adv_estimator=igpo"])
    assert "input provider 'gold_belief' needs the input 'gold_answer'" in str(info.value)
