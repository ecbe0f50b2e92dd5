"""Small helpers shared by the grid environments (Sokoban, FrozenLake)."""

from __future__ import annotations

import string

from agentgym.env import StepResult

#: (row delta, column delta) of each move word.
MOVES: dict[str, tuple[int, int]] = {
    "up": (-1, 0),
    "down": (1, 0),
    "left": (0, -1),
    "right": (0, 1),
}
MOVE_NAMES: list[str] = list(MOVES)

_STRIP = string.punctuation + string.whitespace


def parse_move(action: str) -> str | None:
    """The move word in ``action`` (``"Up."``, ``" left "`` and ``"move right"`` all parse).

    Returns ``None`` when the text names no move or more than one.
    """
    words = {w.strip(_STRIP).lower() for w in action.split()}
    found = [m for m in MOVE_NAMES if m in words]
    return found[0] if len(found) == 1 else None


class GridMoves:
    """What the grid environments share: four move words as admissible actions, the
    rendered grid as the canonical state, and the feedback for text that is no move.

    Mixed into :class:`agentgym.TextEnv` subclasses that define ``_render_state``.
    """

    def canonical_state(self) -> str:
        return self._render_state()  # type: ignore[attr-defined]

    def _admissible_actions(self) -> list[str]:
        return list(MOVE_NAMES)

    def _not_a_move(self, action: str) -> StepResult:
        return self.invalid(  # type: ignore[attr-defined]
            f"{action[:80]!r} is not a move. Answer with one of: {', '.join(MOVE_NAMES)}."
        )
