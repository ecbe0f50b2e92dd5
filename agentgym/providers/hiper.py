"""HiPER's plan-execute response format (the ``hiper`` action parser) and its two-head
critic (``hiper_critic``) for the ``hiper`` estimator.

A HiPER response decides, each turn, whether to keep the current subgoal or switch, states
the subgoal, then acts::

    <switch>SWITCH</switch><subgoal>find the key</subgoal><action>go north</action>
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from agentgym.credit.gae import hierarchical_advantages
from agentgym.parsers import ThinkActionParser, find_tags
from agentgym.providers.base import ProviderContext, register_input_provider
from agentgym.providers.critic import Critic

__all__ = ["HiPERCritic", "HiPERParser", "read_plan", "tag_token_span"]

_SWITCH = re.compile(r"<switch>\s*(SWITCH|KEEP)\s*</switch>", re.IGNORECASE)


def read_plan(text: str) -> tuple[bool | None, str | None]:
    """(switch: True for SWITCH, False for KEEP, None when absent; the subgoal or None)."""
    match = _SWITCH.search(text)
    switch = None if match is None else match.group(1).upper() == "SWITCH"
    subgoals = [s.strip() for s in find_tags(text, "subgoal")]
    return switch, (subgoals[0] if subgoals else None)


class HiPERParser(ThinkActionParser):
    """``<switch>SWITCH|KEEP</switch><subgoal>...</subgoal><action>...</action>``: the action
    is the last complete ``<action>`` tag (the switch and subgoal are for credit, read by
    the ``hiper_critic``; a response without an action is invalid).

    :meth:`render` (expert demonstrations) writes the expert's plan step as the subgoal
    where the environment gives one (:meth:`agentgym.env.TextEnv.expert_subgoal`, e.g.
    ALFWorld's: the planner's next object interaction), with SWITCH at the step's first
    action and KEEP after; elsewhere each expert action is its own one-step subgoal with
    SWITCH, so SFT teaches the format but not planning."""

    name = "hiper"
    instructions = (
        "Each turn, first decide whether to keep your current subgoal or switch to a new one "
        "(<switch>KEEP</switch> or <switch>SWITCH</switch>), then state the subgoal inside "
        "<subgoal> </subgoal>, then give exactly one action inside <action> </action>."
    )

    # parse: the last <action> (ThinkActionParser's); the switch and subgoal tags are read
    # by the hiper_critic provider from the response text.

    #: The rollout engine hands the expert's plan step to :meth:`render`.
    renders_subgoals = True

    def render(self, action: str, subgoal: str | None = None, starts: bool = True) -> str:
        switch = "SWITCH" if starts or subgoal is None else "KEEP"
        return (
            f"<switch>{switch}</switch><subgoal>{subgoal or action}</subgoal>"
            f"<action>{action}</action>"
        )


def tag_token_span(tokenizer: Any, ids: list[int], tag: str) -> tuple[int, int] | None:
    """Token indices ``[a, b)`` of ``ids`` covering ``<tag>...</tag>`` (from the token that
    completes the opening tag to the one that completes the closing tag), or None.

    Found by decoding prefixes (a binary search each): token boundaries need not match
    the tags' characters."""

    def first_prefix_with(text: str) -> int | None:
        if text not in tokenizer.decode(ids, skip_special_tokens=False):
            return None
        low, high = 1, len(ids)
        while low < high:
            mid = (low + high) // 2
            if text in tokenizer.decode(ids[:mid], skip_special_tokens=False):
                high = mid
            else:
                low = mid + 1
        return low

    end = first_prefix_with(f"</{tag}>")
    start = first_prefix_with(f"<{tag}>")
    if end is None or start is None or start > end:
        return None
    return start - 1, end


@register_input_provider("hiper_critic")
class HiPERCritic(Critic):
    r"""HiPER's critic with two value heads, and its subgoal-token credit.

    Fills, per step: ``value_high`` (:math:`V^H(s_t)`, read at the end of the step's
    prompt: before the agent decides to switch), ``value_low`` (:math:`V^L(s_t, g_t)`, read
    after the response's ``</subgoal>``: conditioned on the subgoal it follows; at the end
    of the prompt when there is no subgoal) and ``switch`` (the response chose SWITCH; a
    step without a readable choice keeps its subgoal). After the samples are built it adds
    each segment's high-level advantage :math:`A^H` to the tokens of the ``<subgoal>`` of
    the segment's first step (:func:`~agentgym.credit.gae.hierarchical_advantages`, with
    the estimator's ``gamma``, ``lam_low`` and ``lam_high``). After the policy update the
    low head regresses on :math:`A^L + V^L` at every step and the high head on
    :math:`A^H + V^H` at segment starts (the clipped value loss of :class:`Critic`).

    Source: Peng et al. 2026, "HiPER" (arXiv:2602.16165) and its reference code
    (JonP07/HiPER-agent), which also reads :math:`V^H` at the response's first token and
    :math:`V^L` after ``</subgoal>`` (or after ``</switch>``) of a critic with two heads; it
    shares the policy's backbone there, a separate model here (see :class:`Critic`).
    """

    provides = ("value_low", "value_high", "switch")
    heads = ("value_low", "value_high")

    def _inputs(self, ctx: ProviderContext) -> tuple[list[list[int]], list[list[int]]]:
        seqs, positions = [], []
        self._spans: list[tuple[int, int] | None] = []
        for traj in ctx.columns.trajectories:
            for step in traj.steps:
                prompt = list(step.prompt_ids)[-self.max_context_tokens :] or [ctx.pad_id]
                span = tag_token_span(ctx.tokenizer, list(step.response_ids), "subgoal")
                self._spans.append(span)
                cut = span[1] if span is not None else 0
                seqs.append(prompt + list(step.response_ids[:cut]))
                positions.append([len(prompt) + cut - 1, len(prompt) - 1])
        return seqs, positions

    def provide(self, ctx: ProviderContext) -> dict[str, np.ndarray]:
        filled = super().provide(ctx)
        switch = [
            bool(read_plan(step.response_text)[0])
            for traj in ctx.columns.trajectories
            for step in traj.steps
        ]
        filled["switch"] = np.array(switch, dtype=bool)
        ctx.metrics["hiper/switch_rate"] = float(np.mean(switch)) if switch else 0.0
        self._spans_by_row = list(self._spans)
        return filled

    def _hae(self, ctx: ProviderContext) -> dict[str, np.ndarray]:
        return hierarchical_advantages(
            self._credit_batch(ctx),
            ctx.provided["value_low"],
            ctx.provided["value_high"],
            ctx.provided["switch"],
            self._setting(ctx, "gamma", self.gamma),
            self._setting(ctx, "lam_low", self.lam),
            self._setting(ctx, "lam_high", self.lam),
        )

    def targets(self, ctx: ProviderContext) -> tuple[np.ndarray, np.ndarray]:
        parts = self._hae(ctx)
        target = np.stack([parts["ret_low"], parts["ret_high"]], axis=1)
        mask = np.stack([np.ones(len(target)), parts["boundary"].astype(float)], axis=1)
        return target, mask

    def adjust_samples(self, ctx: ProviderContext) -> None:
        parts = self._hae(ctx)
        trajs = ctx.columns.trajectories
        lengths = np.array([len(t.steps) for t in trajs])
        first_row = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
        kept = [i for i in range(len(trajs)) if ctx.keep is None or ctx.keep[i]]
        touched = 0
        for sample in ctx.samples:
            k = kept[sample.traj_index]
            steps = [sample.step_index] if sample.step_index >= 0 else range(len(trajs[k].steps))
            for t in steps:
                row = first_row[k] + t
                span = self._spans_by_row[row]
                if not parts["boundary"][row] or span is None:
                    continue
                start = len(trajs[k].steps[t].prompt_ids)
                for j in range(start + span[0], min(start + span[1], len(sample.advantages))):
                    if sample.mask[j]:
                        sample.advantages[j] += float(parts["adv_high"][row])
                        touched += 1
        boundary = parts["boundary"]
        ctx.metrics["hiper/adv_high_mean"] = (
            float(parts["adv_high"][boundary].mean()) if boundary.any() else 0.0
        )
        ctx.metrics["hiper/subgoal_tokens"] = float(touched)
