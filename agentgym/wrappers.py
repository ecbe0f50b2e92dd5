"""Cross-cutting episode rules, composed by :func:`agentgym.make` rather than copied into envs."""

from __future__ import annotations

from typing import Any

import gymnasium


class TurnLimit(gymnasium.Wrapper[str, str, str, str]):
    """Truncate the episode after ``max_steps`` steps (``env.max_steps`` in configs).

    Unlike :class:`gymnasium.wrappers.TimeLimit` it also marks why the episode stopped
    (``info["truncated_by"] = "turn_limit"``) and exposes ``max_steps`` and
    ``elapsed_steps`` for prompt templates ("step 3 of 20"). Its state takes part in
    snapshots (:func:`agentgym.snapshot` / :func:`agentgym.restore`).
    """

    def __init__(self, env: gymnasium.Env[str, str], max_steps: int) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        super().__init__(env)
        self.max_steps = int(max_steps)
        self.elapsed_steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        self.elapsed_steps = 0
        self._final: tuple[str, dict[str, Any]] | None = None
        return self.env.reset(seed=seed, options=options)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if getattr(self, "_final", None) is not None:
            # Stepping after truncation: like stepping after termination, answer, don't act.
            obs, info = self._final  # type: ignore[misc]
            info = {**info, "action_valid": False, "error": "the episode has ended; call reset()"}
            return obs, 0.0, False, True, info
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.elapsed_steps += 1
        if self.elapsed_steps >= self.max_steps and not terminated:
            truncated = True
            info["truncated_by"] = "turn_limit"
            self._final = (obs, info)
        return obs, reward, terminated, truncated, info

    def snapshot_state(self) -> tuple[int, tuple[str, dict[str, Any]] | None]:
        """The turn count and, after truncation, the final answer (for
        :func:`agentgym.snapshot`, which saves every wrapper's state with the env's)."""
        final = getattr(self, "_final", None)
        return self.elapsed_steps, None if final is None else (final[0], dict(final[1]))

    def restore_state(self, state: tuple[int, tuple[str, dict[str, Any]] | None]) -> None:
        """Put back what :meth:`snapshot_state` saved (used by :func:`agentgym.restore`)."""
        elapsed, final = state
        self.elapsed_steps = int(elapsed)
        self._final = None if final is None else (final[0], dict(final[1]))
