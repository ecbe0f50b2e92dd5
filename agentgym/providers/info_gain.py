"""IGPO's information gain: the policy's probability of the gold answer, turn by turn.

The ``gold_belief`` provider scores, by teacher forcing with the *current* policy, the gold
answer after each turn's context, in batched extra forward passes, and fills
``info_gain`` for the ``igpo`` estimator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agentgym.params import PositiveInt
from agentgym.providers.base import InputProvider, ProviderContext, register_input_provider

__all__ = ["GoldBelief", "mean_target_logprob"]


def mean_target_logprob(
    model: Any,
    prefixes: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    *,
    pad_id: int = 0,
    device: Any = "cpu",
    micro_batch_size: int = 32,
) -> np.ndarray:
    r"""Per pair, :math:`\frac{1}{L}\sum_j \log\pi(y_j \mid x, y_{<j})`: the mean log-prob of
    ``targets[i]`` (length L) after ``prefixes[i]``, by teacher forcing, in right-padded
    micro-batches of similar lengths, without gradient."""
    import torch

    out = np.zeros(len(prefixes))
    if not len(prefixes):
        return out
    order = sorted(range(len(prefixes)), key=lambda i: len(prefixes[i]) + len(targets[i]))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), micro_batch_size):
                chunk = order[start : start + micro_batch_size]
                seqs = [list(prefixes[i]) + list(targets[i]) for i in chunk]
                width = max(len(s) for s in seqs)
                ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
                attn = torch.zeros((len(seqs), width), dtype=torch.long)
                for r, seq in enumerate(seqs):
                    ids[r, : len(seq)] = torch.tensor(seq)
                    attn[r, : len(seq)] = 1
                ids, attn = ids.to(device), attn.to(device)
                logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits
                logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
                taken = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
                for r, i in enumerate(chunk):
                    p, n = len(prefixes[i]), len(targets[i])
                    out[i] = float(taken[r, p - 1 : p - 1 + n].mean())
    finally:
        model.train(was_training)
    return out


@register_input_provider("gold_belief")
class GoldBelief(InputProvider):
    r"""IGPO's turn rewards: how much each turn raised the policy's belief in the gold answer.

    For a trajectory of T turns, with :math:`c_t` the context the policy acted on at turn
    t (the step's prompt token ids: the task and, in chat style, every earlier turn and
    observation),

    .. math::
        p_t = \exp\Big(\frac{1}{|a|}\sum_j \log\pi_\theta(a_j \mid c_t, \text{prefix},
        a_{<j})\Big),\qquad \mathrm{IG}_t = p_{t+1} - p_t \quad (t < T - 1)

    so :math:`p_0` is the belief from the prompt alone and :math:`p_{t+1}` the belief after
    turn t and its observation. The last turn gets no information gain (its reward is the
    outcome). Fills ``info_gain`` (per row; 0 on each trajectory's last row) and
    ``gold_belief`` (:math:`p_t` per row). :math:`a` is ``info["gold_answer"]`` (an
    environment must report it: Search-v0 does), scored after the answer template's
    ``prefix``, which follows the context (the generation prompt) as the policy would
    write it; only :math:`a`'s tokens are averaged (a closing tag after them changes
    nothing, so none is scored).

    Source: Wang et al. 2026, "Information Gain-based Policy Optimization: A Simple and
    Effective Approach for Multi-Turn LLM Agents" (arXiv:2510.14967), and its reference
    code (GuoqingWang1/IGPO) for the choices the paper leaves open: the probability, not
    the log-probability, is differenced (its default ``prob_diff``); the template wraps
    the answer in answer tags after the model's turn header. Deviations: the reference's
    template also closes a ``<think>`` block with a fixed sentence; here ``prefix`` is
    just ``"<answer>"`` (set it to match your prompt format). The answer is tokenised on
    its own, not jointly with the template (the reference uses offset mappings), so a BPE
    merge across the template boundary can differ. Contexts longer than
    ``max_context_tokens`` keep their end.

    Cost: one extra forward pass per step (contexts plus a few answer tokens), batched by
    ``actor.micro_batch_size``; measured as ``igpo/forward_seconds`` and
    ``igpo/forward_tokens``.
    """

    provides = ("info_gain", "gold_belief")
    requires_info = ("gold_answer",)

    def __init__(
        self,
        *,
        prefix: str = "<answer>",
        max_context_tokens: PositiveInt = 8192,
    ) -> None:
        self.prefix, self.max_context_tokens = prefix, max_context_tokens

    def provide(self, ctx: ProviderContext) -> dict[str, np.ndarray]:
        model = ctx.require_model(self.name)
        tokenizer = ctx.tokenizer
        prefix_ids = tokenizer.encode(self.prefix, add_special_tokens=False)
        contexts, targets = [], []
        for traj in ctx.columns.trajectories:
            gold = next(
                (
                    s.info.get("gold_answer")
                    for s in reversed(traj.steps)
                    if s.info.get("gold_answer")
                ),
                None,
            )
            if not isinstance(gold, str) or not gold:
                raise ValueError(
                    f"trajectory {traj.traj_id!r} has no info['gold_answer']: IGPO needs the "
                    "environment to report the gold answer on its steps"
                )
            target = tokenizer.encode(gold, add_special_tokens=False)
            for step in traj.steps:
                context = list(step.prompt_ids)[-self.max_context_tokens :] + prefix_ids
                contexts.append(context)
                targets.append(target)
        started = time.perf_counter()
        logp = mean_target_logprob(
            model,
            contexts,
            targets,
            pad_id=ctx.pad_id,
            device=ctx.device,
            micro_batch_size=ctx.micro_batch_size,
        )
        belief = np.exp(logp)  # rows of StepColumns are in (trajectory, step) order
        gain = np.zeros_like(belief)
        traj, step = ctx.columns.traj, ctx.columns.step
        nxt = np.arange(len(belief)) + 1
        has_next = np.zeros(len(belief), dtype=bool)
        has_next[:-1] = traj[1:] == traj[:-1]
        gain[has_next] = belief[nxt[has_next]] - belief[has_next]
        first = step == 0
        ctx.metrics.update(
            {
                "igpo/forward_seconds": time.perf_counter() - started,
                "igpo/forward_tokens": float(
                    sum(len(c) + len(t) for c, t in zip(contexts, targets, strict=True))
                ),
                "igpo/gold_prob_first_turn": float(belief[first].mean()) if first.any() else 0.0,
                "igpo/gold_prob_mean": float(belief.mean()) if belief.size else 0.0,
                "igpo/info_gain_mean": float(gain[has_next].mean()) if has_next.any() else 0.0,
            }
        )
        return {"info_gain": gain, "gold_belief": belief}
