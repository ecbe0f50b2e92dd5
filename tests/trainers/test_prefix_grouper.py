"""Prefix Grouper (``actor.shared_prefix``): packed shared-prefix forwards give the plain
update's log-probs, entropies, losses and gradients on the tiny model."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from agentgym.config.schema import ActorSection
from agentgym.errors import ConfigError
from agentgym.trainers.model import load_model
from agentgym.trainers.prefix_grouper import pack_samples, prefix_stats, shared_prefix_logprobs
from agentgym.trainers.samples import Sample, collate, token_logprobs
from agentgym.trainers.update import fill_logprobs, ppo_update

TOLERANCE = 2e-5


def make_samples(vocab: int, seed: int = 0) -> list[Sample]:
    """Three groups of four responses to one shared prompt each, a sample repeated, one
    that shares nothing, and two that share only their first tokens."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(3):
        prompt = rng.integers(3, vocab, size=int(rng.integers(20, 40))).tolist()
        for _ in range(4):
            response = rng.integers(3, vocab, size=int(rng.integers(1, 9))).tolist()
            samples.append(_sample(prompt, response, float(rng.normal())))
    samples.append(copy.deepcopy(samples[0]))
    samples.append(_sample([5, 6], [7], 1.0))
    head = rng.integers(3, vocab, size=3).tolist()
    for _ in range(2):
        samples.append(_sample(head + rng.integers(3, vocab, size=30).tolist(), [8, 9], -1.0))
    return samples


def _sample(prompt: list[int], response: list[int], advantage: float) -> Sample:
    p, r = len(prompt), len(response)
    return Sample(
        input_ids=prompt + response,
        mask=[0] * p + [1] * r,
        advantages=[0.0] * p + [advantage] * r,
        old_logprobs=[np.nan] * (p + r),
        traj_index=0,
    )


@pytest.fixture(scope="module")
def tiny(tiny_frozenlake_model: Path):
    model, _tokenizer = load_model(str(tiny_frozenlake_model), "float32", "cpu")
    return model


def eager_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=200,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=64,
        tie_word_embeddings=True,
        use_sliding_window=False,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    return Qwen2ForCausalLM(config)


def test_packs_group_shared_prefixes_and_save_tokens() -> None:
    samples = make_samples(300)
    packs = pack_samples(samples)
    assert sorted(m for p in packs for m in p.members) == list(range(len(samples)))
    for pack in packs:
        first = samples[pack.members[0]].input_ids[: pack.prefix]
        assert all(samples[m].input_ids[: pack.prefix] == first for m in pack.members)
    stats = prefix_stats(samples)
    assert stats["packs"] == 5  # three prompts, and the lone and the two 3-token heads
    assert stats["tokens_packed"] < 0.5 * stats["tokens_plain"]


@pytest.mark.parametrize("which", ["tiny", "eager"])
def test_log_probs_and_entropies_match_the_plain_forward(which: str, request) -> None:
    model = request.getfixturevalue("tiny") if which == "tiny" else eager_model()
    samples = make_samples(model.config.vocab_size)
    batch = collate(samples, 0)
    with torch.no_grad():
        plain, plain_entropy = token_logprobs(model, batch, with_entropy=True)
        packed, packed_entropy = shared_prefix_logprobs(model, samples, with_entropy=True)
    assert packed.shape == plain.shape
    valid = torch.zeros_like(batch.mask, dtype=torch.bool)
    for i, s in enumerate(samples):
        valid[i, : len(s.input_ids) - 1] = True
    assert (plain - packed)[valid].abs().max() < TOLERANCE
    assert (plain_entropy - packed_entropy)[valid].abs().max() < TOLERANCE


def run_update(model, samples, shared: bool, agg_mode: str, micro: int) -> tuple:
    model = copy.deepcopy(model)
    samples = copy.deepcopy(samples)
    actor = ActorSection(
        micro_batch_size=micro,
        mini_batch_size=None,
        loss_agg_mode=agg_mode,
        shared_prefix=shared,
        grad_clip=None,
        loss_terms={"kl": {"coef": 0.1}},
    )
    fill_logprobs(model, samples, "old_logprobs", micro, 0, shared_prefix=shared)
    reference = copy.deepcopy(model)
    torch.manual_seed(0)
    with torch.no_grad():  # a reference that differs from the policy, so KL has a gradient
        for p in reference.parameters():
            p.add_(0.01 * torch.randn_like(p))
    fill_logprobs(reference, samples, "ref_logprobs", micro, 0, shared_prefix=shared)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keep the gradients to compare
    metrics = ppo_update(
        model,
        optimizer,
        samples,
        actor,
        norm_length=8.0,
        pad_id=0,
        rng=np.random.default_rng(0),
    )
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    return metrics, grads, samples


@pytest.mark.parametrize("micro", [5, 100])
@pytest.mark.parametrize("agg_mode", ["token-mean", "seq-mean-token-mean", "balanced"])
def test_the_update_matches_the_plain_update(tiny, agg_mode: str, micro: int) -> None:
    samples = make_samples(tiny.config.vocab_size, seed=1)
    for i, s in enumerate(samples):
        s.group = i // 4
    plain, plain_grads, plain_samples = run_update(tiny, samples, False, agg_mode, micro)
    shared, shared_grads, shared_samples = run_update(tiny, samples, True, agg_mode, micro)
    for a, b in zip(plain_samples, shared_samples, strict=True):
        np.testing.assert_allclose(a.old_logprobs, b.old_logprobs, atol=TOLERANCE)
        np.testing.assert_allclose(a.ref_logprobs, b.ref_logprobs, atol=TOLERANCE)
    # the loss adds up over micro-batches; the other metrics are means of micro-batch
    # means, so they agree when both updates cut the samples alike (one micro-batch)
    keys = ["actor/pg_loss", "actor/grad_norm"]
    if micro >= len(samples):
        keys += ["actor/entropy", "actor/kl_loss", "actor/ppo_kl"]
    for key in keys:
        assert shared[key] == pytest.approx(plain[key], abs=TOLERANCE, rel=1e-4), key
    assert plain["actor/grad_norm"] > 0
    assert len(plain_grads) == len(shared_grads)
    worst = max(float((a - b).abs().max()) for a, b in zip(plain_grads, shared_grads, strict=True))
    scale = max(float(a.abs().max()) for a in plain_grads)
    assert worst <= TOLERANCE * max(1.0, scale), (worst, scale)


def test_flash_attention_is_refused_with_a_clear_error() -> None:
    model = eager_model()
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ConfigError, match=r"actor\.shared_prefix"):
        shared_prefix_logprobs(model, make_samples(200)[:2])


def test_the_config_key() -> None:
    from agentgym.config import TrainConfig, load_config

    assert ActorSection().shared_prefix is False
    assert load_config(TrainConfig, None, ["actor.shared_prefix=true"]).actor.shared_prefix
