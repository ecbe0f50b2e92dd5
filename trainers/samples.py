"""Training samples from trajectories: token ids, loss masks and per-token advantages.

A step's advantage reaches that step's response tokens only.

* ``window`` prompts: each step is one sample, ``prompt_ids + response_ids``; the mask
  covers the response.
* ``chat`` prompts: each trajectory is one sample, its last prompt + last response; the
  mask covers every assistant response in it, each with its own step's advantage. This
  needs each step's prompt to extend the previous prompt + response token for token (the
  rollout engine guarantees it); otherwise the trajectory falls back to one sample per
  step, which trains the same tokens with the same advantages.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agentgym.trajectory import Trajectory


@dataclass
class Sample:
    """One training sequence.

    Attributes:
        input_ids: prompt and response tokens.
        mask: 1 on tokens the loss trains (response tokens), per position of input_ids.
        advantages: per position (0 outside the mask).
        old_logprobs: per position, the log-probs of the policy that sampled the data
            (the inference engine's, or recomputed by the trainer); NaN where unknown.
        traj_index, step_index: where the sample came from (step -1 for whole chats).
        ref_logprobs: per position, the frozen reference model's log-probs (KL loss).
        group: the index of the task group the sample's trajectory belongs to (-1 when
            unknown); aggregations that balance within groups read it.
        segment: per position, the step (turn) index whose response the token belongs
            to, -1 outside responses; ``None`` means "every response token belongs to
            ``step_index``".
    """

    input_ids: list[int]
    mask: list[int]
    advantages: list[float]
    old_logprobs: list[float]
    traj_index: int
    step_index: int = -1
    ref_logprobs: list[float] | None = None
    group: int = -1
    segment: list[int] | None = None

    @property
    def num_response_tokens(self) -> int:
        return int(sum(self.mask))


def _is_prefix_chain(traj: Trajectory) -> bool:
    steps = traj.steps
    for prev, nxt in itertools.pairwise(steps):
        head = prev.prompt_ids + prev.response_ids
        if nxt.prompt_ids[: len(head)] != head:
            return False
    return True


def _step_sample(traj_index: int, step_index: int, traj: Trajectory, adv: float) -> Sample | None:
    step = traj.steps[step_index]
    if not step.response_ids or not step.prompt_ids:
        return None
    p, r = len(step.prompt_ids), len(step.response_ids)
    logprobs = list(step.response_logprobs) if len(step.response_logprobs) == r else [np.nan] * r
    return Sample(
        input_ids=list(step.prompt_ids) + list(step.response_ids),
        mask=[0] * p + [1] * r,
        advantages=[0.0] * p + [adv] * r,
        old_logprobs=[np.nan] * p + logprobs,
        traj_index=traj_index,
        step_index=step_index,
    )


def build_samples(
    trajectories: Sequence[Trajectory],
    step_advantages: Sequence[Sequence[float]],
    style: str = "window",
    groups: Sequence[int] | None = None,
    nodes: Sequence[Sequence[int]] | None = None,
) -> list[Sample]:
    """Samples for training; ``step_advantages[i][t]`` is step ``t`` of trajectory ``i``.

    ``groups[i]``, when given, is trajectory ``i``'s task-group index (else its
    ``group_id`` is interned here). ``nodes[i][t]``, when given, names the stored step
    behind step ``t`` of trajectory ``i`` (``StepColumns.node``): a step that several
    trajectories share (a tree's common prefix) is trained once, in the first trajectory
    that holds it (window style: one sample; chat style: its tokens stay in the later
    trajectories' contexts, masked out).
    """
    samples: list[Sample] = []
    codes: dict[str, int] = {}
    if groups is None:
        groups = [codes.setdefault(t.group_id, len(codes)) for t in trajectories]
    trained: set[int] = set()

    def group_of(i: int) -> int:
        return int(groups[i])

    def first_time(i: int, t: int) -> bool:
        if nodes is None:
            return True
        node = int(nodes[i][t])
        if node in trained:
            return False
        trained.add(node)
        return True

    for i, (traj, advs) in enumerate(zip(trajectories, step_advantages, strict=True)):
        if style == "chat" and traj.steps and _is_prefix_chain(traj):
            last = traj.steps[-1]
            ids = list(last.prompt_ids) + list(last.response_ids)
            if not last.response_ids:
                continue
            mask, adv_row, lp_row = [0] * len(ids), [0.0] * len(ids), [np.nan] * len(ids)
            segment = [-1] * len(ids)
            for t, step in enumerate(traj.steps):
                if not first_time(i, t):
                    continue
                start, r = len(step.prompt_ids), len(step.response_ids)
                lps = step.response_logprobs if len(step.response_logprobs) == r else [np.nan] * r
                for j in range(r):
                    mask[start + j] = 1
                    adv_row[start + j] = float(advs[t])
                    lp_row[start + j] = float(lps[j])
                    segment[start + j] = t
            if any(mask):
                samples.append(
                    Sample(ids, mask, adv_row, lp_row, i, group=group_of(i), segment=segment)
                )
            continue
        for t in range(len(traj.steps)):
            if not first_time(i, t):
                continue
            sample = _step_sample(i, t, traj, float(advs[t]))
            if sample is not None:
                sample.group = group_of(i)
                samples.append(sample)
    return samples


@dataclass
class TensorBatch:
    """Right-padded tensors of a list of samples. Position ``j`` of ``targets`` is the
    token predicted from ``input_ids[:, : j + 1]`` (shifted by one)."""

    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    targets: torch.Tensor  # [B, L-1]
    mask: torch.Tensor  # [B, L-1], on targets
    advantages: torch.Tensor  # [B, L-1]
    old_logprobs: torch.Tensor  # [B, L-1], NaN where unknown
    ref_logprobs: torch.Tensor  # [B, L-1], zeros when there is no reference
    segment: torch.Tensor  # [B, L-1], long: the step index of each response token, -1 elsewhere

    def to(self, device: torch.device | str) -> TensorBatch:
        return TensorBatch(*(t.to(device) for t in self.__dict__.values()))


def collate(samples: Sequence[Sample], pad_id: int = 0) -> TensorBatch:
    """Pad samples to one batch (right padding; the mask is zero on padding)."""
    length = max(len(s.input_ids) for s in samples)
    n = len(samples)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    attn = torch.zeros((n, length), dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.float32)
    adv = torch.zeros((n, length), dtype=torch.float32)
    old = torch.full((n, length), float("nan"), dtype=torch.float32)
    ref = torch.zeros((n, length), dtype=torch.float32)
    seg = torch.full((n, length), -1, dtype=torch.long)
    for i, s in enumerate(samples):
        k = len(s.input_ids)
        ids[i, :k] = torch.tensor(s.input_ids, dtype=torch.long)
        attn[i, :k] = 1
        mask[i, :k] = torch.tensor(s.mask, dtype=torch.float32)
        adv[i, :k] = torch.tensor(s.advantages, dtype=torch.float32)
        old[i, :k] = torch.tensor(s.old_logprobs, dtype=torch.float32)
        if s.ref_logprobs is not None:
            ref[i, :k] = torch.tensor(s.ref_logprobs, dtype=torch.float32)
        if s.segment is not None:
            seg[i, :k] = torch.tensor(s.segment, dtype=torch.long)
        else:
            seg[i, :k] = torch.where(
                mask[i, :k] > 0, torch.tensor(max(s.step_index, 0)), torch.tensor(-1)
            )
    return TensorBatch(
        input_ids=ids,
        attention_mask=attn,
        targets=ids[:, 1:],
        mask=mask[:, 1:],
        advantages=adv[:, 1:],
        old_logprobs=old[:, 1:],
        ref_logprobs=ref[:, 1:],
        segment=seg[:, 1:],
    )


def token_logprobs(
    model: torch.nn.Module, batch: TensorBatch, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-prob of each target token under ``model`` (and the entropy at each position).

    Returns ``[B, L-1]`` tensors. Log-probs are of the raw distribution (no temperature),
    the same convention as the inference backends.
    """
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    logits = out.logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)
    taken = logp.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)
    entropy = None
    if with_entropy:
        entropy = -(logp.exp() * logp).sum(-1)
    return taken, entropy
