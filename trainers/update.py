"""One policy update from a list of samples: PPO epochs, mini-batches, micro-batches.

Standalone and testable: give it a model, an optimizer and samples; it returns metrics.
With ``actor.shared_prefix`` every forward encodes the prompt prefix that samples share
once (:mod:`agentgym.trainers.prefix_grouper`); the log-probs, losses and gradients are
those of the plain forward.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from agentgym.trainers.losses import (
    Aggregation,
    LossInputs,
    get_loss_term,
    get_policy_loss,
    masked_mean,
)
from agentgym.trainers.prefix_grouper import shared_prefix_logprobs
from agentgym.trainers.samples import Sample, collate, token_logprobs


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _sort_key(samples: Sequence[Sample], shared_prefix: bool) -> Callable[[int], Any]:
    """Micro-batch order: by length (little padding), or, with shared prefixes, by token
    ids, so that samples sharing a prefix land in the same micro-batch."""
    if shared_prefix:
        return lambda i: samples[i].input_ids
    return lambda i: len(samples[i].input_ids)


@torch.no_grad()
def fill_logprobs(
    model: torch.nn.Module,
    samples: Sequence[Sample],
    field: str,
    micro_batch_size: int,
    pad_id: int,
    device: torch.device | str = "cpu",
    shared_prefix: bool = False,
) -> None:
    """Compute ``model``'s log-probs of every sample's tokens into ``sample.<field>``
    (``old_logprobs`` or ``ref_logprobs``), in eval mode, micro-batch by micro-batch
    (``shared_prefix``: shared prompt prefixes encoded once, see ``actor.shared_prefix``)."""
    was_training = model.training
    model.eval()
    try:
        order = sorted(range(len(samples)), key=_sort_key(samples, shared_prefix))
        for chunk in _chunks(order, micro_batch_size):
            micro = [samples[i] for i in chunk]
            if shared_prefix:
                logp, _ = shared_prefix_logprobs(model, micro, device, pad_id=pad_id)
            else:
                logp, _ = token_logprobs(model, collate(micro, pad_id).to(device))
            for row, i in enumerate(chunk):
                n = len(samples[i].input_ids)
                values = [float("nan"), *logp[row, : n - 1].tolist()]
                setattr(samples[i], field, values)
    finally:
        model.train(was_training)


def ppo_update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    samples: Sequence[Sample],
    actor: Any,
    *,
    norm_length: float,
    pad_id: int,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
    on_optimizer_step: Callable[[], None] | None = None,
    no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> dict[str, float]:
    """Run ``actor.ppo_epochs`` passes of the policy loss over ``samples``.

    ``samples`` must carry ``old_logprobs`` (and ``ref_logprobs`` when
    ``actor.use_kl_loss``). ``no_sync`` (DDP's ``model.no_sync``) skips gradient
    all-reduce on all but the last micro-batch of each optimizer step.
    """
    if not samples:
        return {}
    loss_fn = get_policy_loss(actor.policy_loss)
    params = actor.loss_settings()
    terms = [(name, get_loss_term(name), p) for name, p in actor.terms().items()]
    mini_size = actor.mini_batch_size or len(samples)
    shared_prefix = bool(getattr(actor, "shared_prefix", False))
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    model.train()
    for _epoch in range(actor.ppo_epochs):
        order = rng.permutation(len(samples))
        for mini_idx in _chunks(order, mini_size):
            mini = [samples[i] for i in mini_idx]
            agg = Aggregation(
                actor.loss_agg_mode,
                total_tokens=float(sum(s.num_response_tokens for s in mini)),
                total_seqs=float(len(mini)),
                norm_length=norm_length,
                samples=mini,
            )
            optimizer.zero_grad(set_to_none=True)
            by_length = sorted(range(len(mini)), key=_sort_key(mini, shared_prefix))
            micro_batches = list(_chunks(by_length, actor.micro_batch_size))
            for k, rows in enumerate(micro_batches):
                last = k == len(micro_batches) - 1
                ctx = no_sync() if (no_sync is not None and not last) else contextlib.nullcontext()
                micro = [mini[i] for i in rows]
                with ctx:
                    metrics = _micro_step(
                        model,
                        micro,
                        agg.for_rows(rows),
                        loss_fn,
                        params,
                        terms,
                        pad_id,
                        device,
                        shared_prefix=shared_prefix,
                    )
                for key, value in metrics.items():
                    if key == "actor/pg_loss_part":  # parts of one mini-batch loss add up
                        sums["actor/pg_loss"] += value
                        continue
                    sums[key] += value
                    counts[key] += 1
            counts["actor/pg_loss"] += 1
            if actor.grad_clip is not None:
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], actor.grad_clip
                )
            else:
                grad_norm = torch.sqrt(
                    sum(
                        (p.grad.detach() ** 2).sum()
                        for p in model.parameters()
                        if p.grad is not None
                    )
                )
            gn = float(grad_norm)
            if math.isfinite(gn):
                optimizer.step()
            else:  # a non-finite gradient would poison the weights: skip this step
                sums["actor/skipped_steps"] += 1
            sums["actor/grad_norm"] += gn if math.isfinite(gn) else 0.0
            counts["actor/grad_norm"] += 1
            if on_optimizer_step is not None:
                on_optimizer_step()
    out = {k: sums[k] / max(counts[k], 1) for k in sums if k != "actor/skipped_steps"}
    out["actor/skipped_steps"] = sums.get("actor/skipped_steps", 0.0)
    return out


def _micro_step(
    model: torch.nn.Module,
    micro: list[Sample],
    agg: Aggregation,
    loss_fn: Callable[..., tuple[torch.Tensor, dict[str, float]]],
    params: dict[str, Any],
    terms: list[tuple[str, Callable[..., tuple[torch.Tensor, dict[str, float]]], dict[str, Any]]],
    pad_id: int,
    device: torch.device | str,
    shared_prefix: bool = False,
) -> dict[str, float]:
    """Forward and backward one micro-batch. Returned metrics are micro-batch means,
    except ``actor/pg_loss_part``: this micro-batch's share of the mini-batch loss."""
    batch = collate(micro, pad_id).to(device)
    if shared_prefix:
        logp, entropy = shared_prefix_logprobs(
            model, micro, device, with_entropy=True, pad_id=pad_id
        )
    else:
        logp, entropy = token_logprobs(model, batch, with_entropy=True)
    assert entropy is not None
    old = torch.nan_to_num(batch.old_logprobs, nan=0.0)
    pg_loss, metrics = loss_fn(logp, old, batch.advantages, batch.mask, agg, **params)
    loss = pg_loss
    inputs = LossInputs(
        log_prob=logp,
        old_log_prob=old,
        advantages=batch.advantages,
        mask=batch.mask,
        entropy=entropy,
        ref_log_prob=batch.ref_logprobs if any(s.ref_logprobs is not None for s in micro) else None,
        segment=batch.segment,
    )
    for _name, term, term_params in terms:
        value, term_metrics = term(inputs, agg, **term_params)
        loss = loss + value
        metrics.update(term_metrics)
    loss.backward()
    metrics["actor/entropy"] = float(masked_mean(entropy.detach(), batch.mask))
    metrics["actor/pg_loss_part"] = float(pg_loss.detach())
    return metrics
