"""Balanced Aggregation: token means within the positive and the negative responses of
each group, weighted by how many responses each holds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from agentgym.trainers.losses import Aggregation, register_loss_agg

__all__ = ["balanced_aggregation", "balanced_weights"]


def balanced_weights(samples: Sequence[Any]) -> list[float]:
    r"""Per sample, the weight of each of its response tokens under Balanced Aggregation.

    A sample s of group g is positive (P) when the mean advantage over its response tokens
    is :math:`\ge 0`, else negative (N). With :math:`n_{g,\sigma}` samples and
    :math:`T_{g,\sigma}` response tokens in subset :math:`\sigma` of group g, and
    :math:`S` samples (with response tokens) in the mini-batch:

    .. math::
        w_s = \frac{n_{g,\sigma}}{S\ T_{g,\sigma}}

    so :math:`\sum_t w_s \ell_t` over the mini-batch is
    :math:`\sum_g \frac{n_g}{S}\big(\frac{n_{g,P}}{n_g}\bar\ell_{g,P} +
    \frac{n_{g,N}}{n_g}\bar\ell_{g,N}\big)` (:math:`\bar\ell` a token mean). Samples without
    response tokens (padding) weigh 0 and do not count.
    """
    keys: list[tuple[int, bool] | None] = []
    count: dict[tuple[int, bool], int] = defaultdict(int)
    tokens: dict[tuple[int, bool], int] = defaultdict(int)
    for s in samples:
        n_tok = int(sum(s.mask))
        if n_tok == 0:
            keys.append(None)
            continue
        adv = sum(a for a, m in zip(s.advantages, s.mask, strict=True) if m) / n_tok
        key = (int(s.group), adv >= 0)
        keys.append(key)
        count[key] += 1
        tokens[key] += n_tok
    total = sum(count.values())
    return [0.0 if k is None else count[k] / (total * tokens[k]) for k in keys]


@register_loss_agg("balanced")
def balanced_aggregation(
    values: torch.Tensor, mask: torch.Tensor, agg: Aggregation
) -> torch.Tensor:
    r"""Balanced Aggregation (BA): within each task group, split the responses by the sign
    of their advantage into P and N, and combine the token means of the two by their
    response counts:

    .. math::
        L_g = \frac{n_P}{n_P + n_N}\,\bar\ell_P + \frac{n_N}{n_P + n_N}\,\bar\ell_N,
        \qquad L = \sum_g \frac{n_g}{\sum_h n_h} L_g

    (:math:`\bar\ell_P` the mean of the token losses over all tokens of P). Token-mean
    couples a response's weight to its length and sign, sequence-mean down-weights long
    responses; BA keeps token means inside each sign and balances the signs by count.

    Source: Zeng, Huang, Yin, Liu, Li, Li, Wu, Zheng, Zhang, Huang, Qiu 2026, "Balanced
    Aggregation: Understanding and Fixing Aggregation Bias in GRPO", arXiv:2605.04077.

    Choices: a response's sign is the sign of its mean advantage over its tokens (chat
    samples carry one advantage per turn); a response with advantage exactly 0 counts as
    positive (its policy-gradient term is 0, but it still carries KL and entropy terms);
    groups are weighted by their share of the mini-batch's responses (equal weights for
    equal group sizes). The normalisers come from the whole mini-batch
    (``agg.samples``, computed once per mini-batch in ``agg.cache``), so the micro-batch
    losses add up to the mini-batch loss under gradient accumulation.
    """
    if not agg.samples:
        raise ValueError(
            "the 'balanced' aggregation needs the mini-batch's samples (Aggregation.samples) "
            "to split responses by group and advantage sign"
        )
    weights = agg.cache.get("balanced")
    if weights is None:
        weights = agg.cache["balanced"] = balanced_weights(agg.samples)
    rows = list(agg.rows) if agg.rows else list(range(values.shape[0]))
    if len(rows) != values.shape[0]:
        raise ValueError(
            f"the micro-batch has {values.shape[0]} rows but Aggregation.rows names {len(rows)}"
        )
    w = torch.tensor([weights[r] for r in rows], dtype=values.dtype, device=values.device)
    return (values * mask * w.unsqueeze(-1)).sum()
