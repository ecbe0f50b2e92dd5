"""LLDS: a likelihood-preserving loss term against lazy likelihood displacement."""

from __future__ import annotations

from typing import Literal

import torch

from agentgym.params import NonNegativeFloat
from agentgym.trainers.losses import Aggregation, LossInputs, masked_mean, register_loss_term

__all__ = ["llds_penalty", "llds_term"]

Granularity = Literal["response", "turn"]
Preserve = Literal["nonnegative", "all"]


def llds_penalty(
    inputs: LossInputs, granularity: Granularity = "response", preserve: Preserve = "nonnegative"
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-token LLDS penalty and the (detached) gate, both ``[batch, tokens]``.

    For each unit u (a whole sample with ``granularity="response"``; one turn, from
    ``inputs.segment``, with ``"turn"``) over its preserved tokens :math:`P_u` (the
    response tokens, only those with advantage :math:`\ge 0` when ``preserve=
    "nonnegative"``):

    .. math::
        g_u = \mathbb{1}\Big[\sum_{t \in P_u} \log\pi_{old}(y_t) - \log\pi_\theta(y_t) > 0\Big],
        \qquad \ell_t = g_u \max\big(0,\ \log\pi_{old}(y_t) - \log\pi_\theta(y_t)\big),
        \ t \in P_u

    The gate is computed without gradient: only the token term is differentiated.
    """
    mask = inputs.mask.to(inputs.log_prob.dtype)
    keep = mask if preserve == "all" else mask * (inputs.advantages >= 0).to(mask.dtype)
    drop = inputs.old_log_prob - inputs.log_prob
    with torch.no_grad():
        fell = drop.detach() * keep
        if granularity == "response" or inputs.segment is None:
            gate = (fell.sum(-1, keepdim=True) > 0).expand_as(fell)
        else:
            seg = inputs.segment.clamp_min(0).long()
            sums = torch.zeros(
                fell.shape[0], int(seg.max()) + 1, dtype=fell.dtype, device=fell.device
            )
            sums.scatter_add_(1, seg, fell)
            gate = sums.gather(1, seg) > 0
        gate = gate.to(mask.dtype) * keep
    return torch.clamp(drop, min=0.0) * gate, gate


@register_loss_term("llds")
def llds_term(
    inputs: LossInputs,
    agg: Aggregation,
    *,
    coef: NonNegativeFloat = 0.1,
    granularity: Granularity = "response",
    preserve: Preserve = "nonnegative",
) -> tuple[torch.Tensor, dict[str, float]]:
    r"""LLDS: penalise the likelihood the update takes away from sampled responses.

    .. math::
        L_{LLDS} = \lambda\ \mathrm{agg}(\ell_t)

    with the gated per-token penalty :math:`\ell_t` of :func:`llds_penalty`: for every
    response (``granularity: response``, the paper's response-level gate, "v1") or every
    turn (``turn``, the action-level gate, "v2") whose log-likelihood under the current
    policy fell below the rollout policy's, :math:`\max(0, \log\pi_{old}(y_t) -
    \log\pi_\theta(y_t))` on its tokens; other responses add nothing. ``agg`` is the run's
    aggregation (``actor.loss_agg_mode``), with its mini-batch-global normaliser, so the
    term is exact under gradient accumulation.

    Source: Deng, Li, Gong, Ren, Thrampoulidis, Li 2025, "On GRPO Collapse in Search-R1:
    The Lazy Likelihood-Displacement Death Spiral", arXiv:2512.04220. Reference code:
    vengdeng/LLDS-On-Group-Relative-Policy-Optimization-Collapse-in-Search-R1 (``dp_actor``).

    Deviations and choices: ``preserve: nonnegative`` (the default) regularises only
    tokens with advantage :math:`\ge 0`, as the reference code does (its "preserving
    set"); ``preserve: all`` regularises every response token, as the bare definition
    reads. The reference normalises by the micro-batch's tokens (verl's ``masked_mean``);
    here the run's aggregation normalises over the mini-batch. A turn is a step of the
    trajectory (one assistant response), the reference's "action" chunk. The reference
    also weights answer tokens separately (``answer_no_reduce_lambda``); not here.
    ``coef`` defaults to 0.1 (ours).

    When to use: GRPO on multi-turn tool use whose success first stalls, then decays
    (the likelihood of sampled responses sinking, gradients growing). It only acts when an
    iteration takes several optimizer steps (``actor.mini_batch_size`` below the batch, or
    ``actor.ppo_epochs > 1``): at the first step the current policy is the rollout policy.
    """
    penalty, gate = llds_penalty(inputs, granularity, preserve)
    with torch.no_grad():
        metrics = {
            "actor/llds_penalty": float(masked_mean(penalty.detach(), inputs.mask)),
            "actor/llds_active_share": float(masked_mean(gate, inputs.mask)),
        }
    return coef * agg(penalty, inputs.mask), metrics
