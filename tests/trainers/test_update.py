"""The PPO update loop itself: epochs, mini-batches, the clip, and the direction of a step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from agentgym.config import ActorSection, from_dict
from agentgym.trainers.samples import Sample, collate, token_logprobs
from agentgym.trainers.update import fill_logprobs, ppo_update

VOCAB = 64


def tiny_model(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    return Qwen2ForCausalLM(config)


def make_samples(n: int, seed: int = 0) -> list[Sample]:
    """Samples of 6 prompt + 4 response tokens; the first half good (+1), the rest bad (-1)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        ids = rng.integers(1, VOCAB, size=10).tolist()
        adv = 1.0 if i < n // 2 else -1.0
        samples.append(
            Sample(
                input_ids=ids,
                mask=[0] * 6 + [1] * 4,
                advantages=[0.0] * 6 + [adv] * 4,
                old_logprobs=[float("nan")] * 10,
                traj_index=i,
            )
        )
    return samples


def actor(**overrides) -> ActorSection:
    """The real ``actor`` config section (validated like a loaded config)."""
    settings = {
        "ppo": {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 3.0},
        "micro_batch_size": 4,
    }
    settings.update(overrides)
    return from_dict(ActorSection, settings, "actor")


def response_logprob(model: torch.nn.Module, samples: list[Sample]) -> np.ndarray:
    """Summed log-prob of each sample's response under ``model``."""
    batch = collate(samples)
    with torch.no_grad():
        logp, _ = token_logprobs(model, batch)
    return (logp * batch.mask).sum(dim=1).numpy()


def run_update(settings: ActorSection, samples: list[Sample], lr: float):
    model = tiny_model()
    fill_logprobs(model, samples, "old_logprobs", micro_batch_size=8, pad_id=0)
    before = response_logprob(model, samples)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    steps = []
    metrics = ppo_update(
        model,
        optimizer,
        samples,
        settings,
        norm_length=4.0,
        pad_id=0,
        rng=np.random.default_rng(0),
        on_optimizer_step=lambda: steps.append(1),
    )
    return model, metrics, len(steps), before


def test_one_step_per_iteration_is_on_policy_and_never_clips() -> None:
    samples = make_samples(16)
    model, metrics, n_steps, before = run_update(actor(), samples, lr=1e-2)
    assert n_steps == 1
    assert metrics["actor/pg_clipfrac"] == 0.0
    assert metrics["actor/ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    after = response_logprob(model, samples)
    # a policy-gradient step makes the good responses likelier and the bad ones less likely
    assert (after - before)[:8].mean() > 0 > (after - before)[8:].mean()


def test_mini_batches_take_several_steps_and_the_clip_binds() -> None:
    samples = make_samples(16)
    settings = actor(ppo_epochs=2, mini_batch_size=4)
    model, metrics, n_steps, before = run_update(settings, samples, lr=5e-3)
    assert n_steps == 2 * 4  # epochs x ceil(16 / 4)
    # later mini-batches see weights already moved, so ratios leave 1 and some get clipped
    assert metrics["actor/pg_clipfrac"] > 0.0
    assert metrics["actor/ratio_mean"] != pytest.approx(1.0, abs=1e-4)
    after = response_logprob(model, samples)
    assert (after - before)[:8].mean() > 0 > (after - before)[8:].mean()


def test_a_mini_batch_that_does_not_divide_the_samples_keeps_the_rest() -> None:
    samples = make_samples(10)
    _, _, n_steps, _ = run_update(actor(mini_batch_size=4), samples, lr=1e-3)
    assert n_steps == 3  # 4 + 4 + 2: no sample is dropped
