"""Warnings about a run that is not learning for a mechanical reason.

:class:`InvalidActionWatch` watches ``train/invalid_action_rate``: when nearly every step
of several iterations in a row is invalid (the model's responses do not parse, or the env
rejects every action), RL has no signal to learn from; the usual cause is a response
format the model was never taught (an SFT prompt that differs from the rollout prompt, a
parser that does not match the env, ``max_tokens`` that cuts every tool call short). The
trainer logs the warning once per streak and the metric ``health/invalid_streak`` every
iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InvalidActionWatch"]


@dataclass
class InvalidActionWatch:
    """Counts iterations in a row whose invalid-action rate is at least ``threshold``.

    Attributes:
        threshold: a rate at or above this counts as "near 100%".
        patience: warn once this many iterations in a row reached the threshold.
        streak: the current count.
    """

    threshold: float = 0.95
    patience: int = 3
    streak: int = 0
    _warned: bool = False

    def state_dict(self) -> dict[str, int | bool]:
        """The streak, saved in checkpoints so a resumed run counts on."""
        return {"streak": self.streak, "warned": self._warned}

    def load_state_dict(self, state: dict[str, int | bool]) -> None:
        self.streak = int(state.get("streak", 0))
        self._warned = bool(state.get("warned", False))

    def update(self, metrics: dict[str, float]) -> str | None:
        """Read one iteration's metrics; return a warning to show (once per streak) or
        ``None``. Adds ``health/invalid_streak`` to ``metrics``."""
        rate = metrics.get("train/invalid_action_rate")
        if rate is None:
            return None
        if rate >= self.threshold:
            self.streak += 1
        else:
            self.streak, self._warned = 0, False
        metrics["health/invalid_streak"] = float(self.streak)
        if self.streak < self.patience or self._warned:
            return None
        self._warned = True
        return (
            f"warning: {rate:.0%} of the steps were invalid actions in each of the last "
            f"{self.streak} iterations, so RL has almost nothing to learn from. Look at a "
            "response (RUN_DIR/rollouts, `agentgym view`): a response format the model was "
            "not taught (sft.enabled), an action parser that does not match the env "
            "(env.action_parser), or policy.sampling.max_tokens cutting responses short "
            "are the usual causes."
        )
