"""SPO: the estimator by hand, the tracker's update against a by-hand KL-adaptive Beta
update with a real model, its state through a restart, and the prioritised sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from agentgym.config import TrainConfig, load_config
from agentgym.credit import compute_advantages
from agentgym.errors import ConfigError
from agentgym.providers import get_input_provider
from agentgym.rollout.executor import EnvSpec
from agentgym.task_samplers import TaskSamplerContext, build_task_sampler
from agentgym.trainers.samples import Sample
from tests.methods.helpers import context, traj


def test_spo_estimator_by_hand() -> None:
    # three trajectories (groups of one), returns 1, 0, 1 (two steps), baselines .5, .2, .9
    kw = {"group": [0, 1, 2, 2], "traj": [0, 1, 2, 2], "step": [0, 0, 0, 1]}
    reward, base = [1.0, 0.0, 0.0, 1.0], [0.5, 0.2, 0.9, 0.9]
    adv = compute_advantages("spo", **kw, reward=reward, spo_baseline=base)
    delta = np.array([0.5, -0.2, 0.1])
    z = (delta - delta.mean()) / (delta.std(ddof=1) + 1e-6)
    np.testing.assert_allclose(adv, z[[0, 1, 2, 2]], atol=1e-12)
    with pytest.raises(ValueError, match="needs `spo_baseline`"):
        compute_advantages("spo", **kw, reward=reward)


def _samples(trajs: list, tokenizer) -> list[Sample]:  # type: ignore[no-untyped-def]
    out = []
    for i, t in enumerate(trajs):
        prompt = tokenizer.encode(f"task {t.task_id}", add_special_tokens=False)
        response = tokenizer.encode(t.steps[0].response_text, add_special_tokens=False)
        ids = prompt + response
        mask = [0] * len(prompt) + [1] * len(response)
        out.append(Sample(ids, mask, [0.0] * len(ids), [float("nan")] * len(ids), i))
    return out


def _logprobs(model, sample: Sample) -> list[float]:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([sample.input_ids])).logits[0].float(), -1)
    return [logp[j - 1, sample.input_ids[j]].item() for j, m in enumerate(sample.mask) if m]


def test_tracker_updates_with_a_kl_adaptive_forgetting_factor(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer, _ = tiny_lm
    model = __import__("copy").deepcopy(model)
    tracker = get_input_provider("spo_tracker")(d_half=0.06, rho_min=0.5, rho_max=0.96)
    first = [traj("a", 0, success=True, task="A"), traj("b", 0, success=False, task="B")]
    ctx = context(first, model=model, tokenizer=tokenizer)
    assert list(tracker.provide(ctx)["spo_baseline"]) == [0.5, 0.5]  # the prior mean
    ctx.samples = _samples(first, tokenizer)
    tracker.after_update(ctx)
    # first plays: D = 0, rho = rho_max
    assert tracker.alpha == pytest.approx({"A": 0.96 * 0.5 + 1, "B": 0.96 * 0.5})
    assert tracker.beta == pytest.approx({"A": 0.96 * 0.5, "B": 0.96 * 0.5 + 1})
    kept = _logprobs(model, ctx.samples[0])
    # the policy moves; task A is played again (a failure this time)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p, generator=torch.Generator().manual_seed(1)))
    second = [traj("a2", 0, success=False, task="A")]
    ctx2 = context(second, model=model, tokenizer=tokenizer)
    v = tracker.provide(ctx2)["spo_baseline"][0]
    assert v == pytest.approx(1.48 / (1.48 + 0.48))
    ctx2.samples = _samples(second, tokenizer)
    tracker.after_update(ctx2)
    now = _logprobs(model, ctx.samples[0])  # the kept rollout under the moved policy
    d = float(np.mean(np.abs(np.array(kept) - np.array(now))))
    rho = min(max(2 ** (-d / 0.06), 0.5), 0.96)
    assert ctx2.metrics["spo/divergence"] == pytest.approx(d, rel=1e-4)
    assert tracker.alpha["A"] == pytest.approx(rho * 1.48, rel=1e-5)
    assert tracker.beta["A"] == pytest.approx(rho * 0.48 + 1, rel=1e-5)
    assert tracker.plays == {"A": 2, "B": 1}
    # the state survives a restart: the same values, the same kept rollout
    again = get_input_provider("spo_tracker")(d_half=0.06, rho_min=0.5, rho_max=0.96)
    again.load_state_dict(tracker.state_dict())
    assert again.alpha == tracker.alpha and again.beta == tracker.beta
    assert again.kept == tracker.kept and again.plays == tracker.plays


def test_spo_sampler_prefers_uncertain_tasks_and_repeats_for_a_seed() -> None:
    tracker = get_input_provider("spo_tracker")()
    spec = EnvSpec("FrozenLake-v0")
    sampler = build_task_sampler({"name": "spo", "epsilon": 0.0})
    ctx = TaskSamplerContext(spec, "train", 1, 0, 1, {"spo_tracker": tracker})
    ids = sampler.sample(ctx)  # every task at the prior: uniform
    from agentgym.rollout.tasks import split_task_ids

    all_ids = split_task_ids(spec, "train")
    # all tasks but two are solved for sure (weight 0); of the two, one is a coin flip
    for t in all_ids:
        tracker.alpha[t], tracker.beta[t] = 1e6, 1e-9
    hard, easy = all_ids[0], all_ids[1]
    tracker.alpha[hard], tracker.beta[hard] = 5.0, 5.0  # v = .5: weight .5
    tracker.alpha[easy], tracker.beta[easy] = 9.0, 1.0  # v = .9: weight .3
    counts = Counter(
        sampler.sample(TaskSamplerContext(spec, "train", 1, seed, 1, {"spo_tracker": tracker}))[
            0
        ].task_id
        for seed in range(400)
    )
    assert set(counts) == {hard, easy}
    assert counts[hard] / 400 == pytest.approx(0.5 / 0.8, abs=0.07)
    again = sampler.sample(ctx)
    assert [t.task_id for t in again] == [t.task_id for t in sampler.sample(ctx)]
    assert len(ids) == 1


def test_spo_sampler_needs_the_tracker_and_rho_bounds_are_checked() -> None:
    with pytest.raises(ConfigError, match="task sampler 'spo' reads input provider"):
        load_config(TrainConfig, None, ["algorithm.task_sampler={name: spo}"])
    cfg = load_config(
        TrainConfig,
        None,
        ["algorithm.adv_estimator=spo", "algorithm.task_sampler={name: spo, epsilon: 0.1}"],
    )
    assert cfg.algorithm.task_sampler == {"name": "spo", "epsilon": 0.1}
    with pytest.raises(ConfigError, match=r"rho_min 0\.99 > rho_max"):
        load_config(TrainConfig, None, ["algorithm.providers={spo_tracker: {rho_min: 0.99}}"])
    with pytest.raises(ConfigError, match="Did you mean 'epsilon'"):
        load_config(
            TrainConfig,
            None,
            ["algorithm.adv_estimator=spo", "algorithm.task_sampler={name: spo, epsilonn: 1}"],
        )
    with pytest.raises(ConfigError, match="Did you mean 'spo'"):
        load_config(TrainConfig, None, ["algorithm.task_sampler={name: sop}"])
