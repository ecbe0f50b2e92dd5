"""Policies that need no model: ``expert`` (the env's solver) and ``random``."""

from __future__ import annotations

from collections.abc import Sequence

from agentgym.policies.base import Generation, Policy, PolicyInput, SamplingParams


class HintPolicy(Policy):
    """Answers each prompt with a hint the rollout engine computed from the environment.

    The engine asks the environment (wherever it runs) for the action and renders it in the
    configured response format, so the response parses like a model's would.
    """

    hint: str = ""

    def __init__(self, spec: str, tokenizer: str | None = None) -> None:
        super().__init__(spec)
        self.wants_hints = frozenset({self.hint})  # type: ignore[misc]
        if tokenizer:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)

    def generate(self, inputs: Sequence[PolicyInput], sampling: SamplingParams) -> list[Generation]:
        out = []
        for item in inputs:
            text = item.hints.get(self.hint)
            if text is None:
                out.append(Generation("", finish_reason="error", error=f"no {self.hint} hint"))
                continue
            ids = self.tokenizer.encode(text, add_special_tokens=False) if self.tokenizer else []
            out.append(
                Generation(text, token_ids=list(ids), prompt_ids=list(item.prompt_ids or []))
            )
        return out

    async def agenerate(
        self, item: PolicyInput, sampling: SamplingParams, index: int = 0
    ) -> Generation:
        """The hint, at once: there is nothing to batch or wait for."""
        return self.generate([item], sampling)[0]


class ExpertPolicy(HintPolicy):
    """``expert``: the environment's solver (``TextEnv.expert_action``)."""

    hint = "expert_action"


class RandomPolicy(HintPolicy):
    """``random``: the environment's random action (``TextEnv.random_action``)."""

    hint = "random_action"
