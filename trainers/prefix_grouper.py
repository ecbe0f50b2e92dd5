"""Prefix Grouper: samples that share a prompt prefix encode it once (``actor.shared_prefix``).

The samples of one task share the start of their prompts: the system message and the
task text (window prompts), or the whole conversation up to a branch point (chat
prompts of a ``tree`` rollout's leaves). The plain update encodes that prefix once per
sample. Here the samples of a micro-batch are sorted so that those sharing a prefix sit
together, packed into one sequence each ``[prefix | suffix_1 | ... | suffix_k]`` and run
through the model once, with

* a block attention mask (4D, additive): a prefix token sees the prefix tokens before it;
  a token of suffix j sees the whole prefix and the tokens of suffix j before it, never
  another suffix;
* position ids that restart after the prefix for every suffix (suffix j's first token
  has position ``len(prefix)``, as in its own sequence).

Each token therefore sees exactly the tokens, at exactly the positions, that it sees in
its own sequence: the log-probs (and their gradients) are those of the plain forward,
up to the order of floating-point sums. The log-prob of a suffix's first token comes
from the prefix's last position, whose logits the suffixes share. Results are returned
in the plain layout (one row per sample, ``[B, L-1]``), so losses and aggregations are
unchanged.

Packing pays when prefixes are long and suffixes short (``benchmarks/branch_speed.py``
measures it): the model runs over ``P + sum(S_j)`` tokens instead of ``sum(P + S_j)``.
Samples are packed greedily, in sorted order, while adding one saves tokens.

Source: Liu et al. 2025, "Prefix Grouper: Efficient GRPO Training through Shared-Prefix
Forward", arXiv:2506.05433. The paper restructures self-attention into a prefix part and
a suffix part (its Eq. 4-6); this is the equivalent packed-sequence form, which needs no
change to the model: any Hugging Face causal LM whose attention takes a 4D mask (``sdpa``,
``eager``; not FlashAttention-2, which ignores custom masks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from agentgym.errors import ConfigError
from agentgym.trainers.samples import Sample

__all__ = ["Pack", "pack_samples", "shared_prefix_logprobs"]

#: Attention implementations that take a custom 4D mask.
MASKABLE_ATTENTION = ("sdpa", "eager")


@dataclass(frozen=True)
class Pack:
    """Samples encoded together: ``members`` (indices into the micro-batch) share their
    first ``prefix`` tokens."""

    members: tuple[int, ...]
    prefix: int


def _common(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def pack_samples(samples: Sequence[Sample]) -> list[Pack]:
    """Greedy packs of samples that share a prefix, in lexicographic order of their ids.

    A sample joins the current pack when that saves tokens: with k members sharing P
    tokens and the newcomer sharing ``P' <= P``, the pack then costs ``(k - 1) P - k P'``
    tokens less than before plus the newcomer alone; it joins when ``k P' > (k - 1) P``.
    """
    order = sorted(range(len(samples)), key=lambda i: samples[i].input_ids)
    packs: list[Pack] = []
    members: list[int] = []
    prefix = 0
    for i in order:
        ids = samples[i].input_ids
        if members:
            shared = _common(samples[members[-1]].input_ids, ids, prefix)
            if shared >= 1 and len(members) * shared > (len(members) - 1) * prefix:
                members.append(i)
                prefix = shared
                continue
            packs.append(Pack(tuple(members), prefix))
        members, prefix = [i], len(ids)
    if members:
        packs.append(Pack(tuple(members), prefix))
    return packs


def _check_attention(model: torch.nn.Module) -> None:
    inner = getattr(model, "module", model)  # DDP
    config = getattr(inner, "config", None)
    impl = getattr(config, "_attn_implementation", None) if config is not None else None
    if impl is not None and impl not in MASKABLE_ATTENTION:
        raise ConfigError(
            f"actor.shared_prefix packs samples with a block attention mask, which the "
            f"model's attention implementation {impl!r} does not take; load the model with "
            f"attn_implementation in {MASKABLE_ATTENTION} or set actor.shared_prefix: false"
        )


def shared_prefix_logprobs(
    model: torch.nn.Module,
    samples: Sequence[Sample],
    device: torch.device | str = "cpu",
    with_entropy: bool = False,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-prob of each target token (and the entropy there), as
    :func:`agentgym.trainers.samples.token_logprobs` returns them for
    ``collate(samples)``: ``[B, L-1]``, row ``i`` for ``samples[i]``, position ``j`` the
    token ``j + 1`` predicted from tokens ``0 .. j``; but every shared prefix encoded once.
    """
    _check_attention(model)
    packs = pack_samples(samples)
    rows: list[list[int]] = []
    positions: list[list[int]] = []
    segments: list[list[int]] = []
    # where each sample's tokens sit: (pack row, packed index of each of its positions)
    where: list[tuple[int, list[int]]] = [(0, [])] * len(samples)
    for r, pack in enumerate(packs):
        head = list(samples[pack.members[0]].input_ids[: pack.prefix])
        ids, pos, seg = list(head), list(range(pack.prefix)), [0] * pack.prefix
        for j, member in enumerate(pack.members, start=1):
            tail = samples[member].input_ids[pack.prefix :]
            start = len(ids)
            ids.extend(tail)
            pos.extend(range(pack.prefix, pack.prefix + len(tail)))
            seg.extend([j] * len(tail))
            where[member] = (r, list(range(pack.prefix)) + list(range(start, start + len(tail))))
        rows.append(ids)
        positions.append(pos)
        segments.append(seg)

    length = max(len(ids) for ids in rows)
    n = len(rows)
    input_ids = torch.full((n, length), pad_id, dtype=torch.long)
    position_ids = torch.zeros((n, length), dtype=torch.long)
    segment = torch.full((n, length), -1, dtype=torch.long)
    for r in range(n):
        k = len(rows[r])
        input_ids[r, :k] = torch.tensor(rows[r], dtype=torch.long)
        position_ids[r, :k] = torch.tensor(positions[r], dtype=torch.long)
        segment[r, :k] = torch.tensor(segments[r], dtype=torch.long)
    query, key = segment[:, :, None], segment[:, None, :]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    allowed = causal & (query >= 0) & ((key == 0) | (key == query))
    allowed |= torch.eye(length, dtype=torch.bool)  # padding attends to itself: no NaN
    dtype = next(model.parameters()).dtype
    mask = torch.zeros((n, 1, length, length), dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)

    out = model(
        input_ids=input_ids.to(device),
        attention_mask=mask.to(device),
        position_ids=position_ids.to(device),
        use_cache=False,
    )
    logp = torch.log_softmax(out.logits.float(), dim=-1)

    # gather every sample's (position -> next token) from its pack row
    width = max(len(s.input_ids) for s in samples) - 1
    sample_idx: list[int] = []
    target_pos: list[int] = []
    row_idx: list[int] = []
    src_idx: list[int] = []
    tokens: list[int] = []
    for i, s in enumerate(samples):
        r, packed = where[i]
        for p in range(len(s.input_ids) - 1):
            sample_idx.append(i)
            target_pos.append(p)
            row_idx.append(r)
            src_idx.append(packed[p])
            tokens.append(s.input_ids[p + 1])
    index = (torch.tensor(row_idx, device=logp.device), torch.tensor(src_idx, device=logp.device))
    place = (
        torch.tensor(sample_idx, device=logp.device),
        torch.tensor(target_pos, device=logp.device),
    )
    at = logp[index]  # [positions, vocab]
    picked = at.gather(-1, torch.tensor(tokens, device=logp.device)[:, None]).squeeze(-1)
    taken = torch.zeros((len(samples), width), dtype=logp.dtype, device=logp.device)
    taken = taken.index_put(place, picked)
    entropy = None
    if with_entropy:
        entropy = torch.zeros_like(taken).index_put(place, -(at.exp() * at).sum(-1))
    return taken, entropy


def prefix_stats(samples: Sequence[Sample]) -> dict[str, Any]:
    """Tokens the model runs over with and without packing (for logs and benchmarks)."""
    packs = pack_samples(samples)
    plain = sum(len(s.input_ids) for s in samples)
    packed = sum(
        pack.prefix + sum(len(samples[m].input_ids) - pack.prefix for m in pack.members)
        for pack in packs
    )
    return {"packs": len(packs), "tokens_plain": plain, "tokens_packed": packed}
