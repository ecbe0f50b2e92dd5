"""The shipped OpenEnv server: Tower of Hanoi, built on ``openenv``'s server side.

Run it on loopback (``agentgym/OpenEnv-v0`` then connects to it)::

    python -m agentgym.envs.openenv.hanoi.server --port 8000   # base URL http://127.0.0.1:8000

It is an ordinary OpenEnv environment: :class:`HanoiEnvironment` subclasses
``openenv.core.env_server.interfaces.Environment`` and ``create_app`` serves it over
HTTP and WebSocket (one environment per WebSocket session, so many agentgym environments
can share one server). ``reset(seed=None, episode_id=None, level=None)`` loads ``level`` (a
code such as ``"A:3,1|B:2|C:>C"``, see :mod:`.puzzle`) or, without one, a level drawn with
``seed``. An action is ``{"move": "A C"}``: the top disk of peg A onto peg C.

The observation follows the conventions agentgym's adapter reads (all optional for
other servers): ``text`` (what the agent sees), ``action_valid``, ``success``, ``score``,
``admissible_actions`` and ``expert_action`` (the next move of a shortest solution). The
state (``/state``) carries the pegs and the target besides OpenEnv's ``episode_id`` and
``step_count``.
"""

from __future__ import annotations

import argparse
import random
from typing import Any

from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, Observation, State
from pydantic import Field

from agentgym.envs.openenv.hanoi.puzzle import (
    PEGS,
    decode,
    legal_moves,
    levels,
    optimal_move,
    solved,
)

MAX_SESSIONS = 64


class HanoiAction(Action):
    """Move the top disk of one peg onto another."""

    move: str = Field(..., description="Source and target peg, e.g. 'A C'.")


class HanoiObservation(Observation):
    """The pegs as text, and what the last move did."""

    text: str = Field(default="", description="The pegs and feedback, as the agent sees them.")
    action_valid: bool = Field(default=True, description="Whether the last move was legal.")
    success: bool = Field(default=False, description="Every disk is on the target peg.")
    score: float = Field(default=0.0, description="1 when solved, else 0.")
    admissible_actions: list[str] = Field(default_factory=list, description="Legal moves.")
    expert_action: str | None = Field(default=None, description="An optimal next move.")


class HanoiState(State):
    pegs: dict[str, list[int]] = Field(default_factory=dict)
    target: str = "C"


def render(pegs: dict[str, list[int]], target: str) -> str:
    rows = [f"{p}: {' '.join(map(str, pegs[p])) or '(empty)'}" for p in PEGS]
    return "Pegs, bottom to top:\n" + "\n".join(rows) + f"\nGoal: every disk on peg {target}."


class HanoiEnvironment(Environment):
    """Tower of Hanoi from any legal position (see the module docstring)."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self._state = HanoiState()

    def _observe(self, feedback: str, valid: bool = True) -> HanoiObservation:
        pegs, target = self._state.pegs, self._state.target
        done = solved(pegs, target)
        return HanoiObservation(
            text=f"{feedback}\n{render(pegs, target)}".strip(),
            action_valid=valid,
            success=done,
            score=float(done),
            admissible_actions=[] if done else legal_moves(pegs),
            expert_action=optimal_move(pegs, target),
            done=done,
            reward=1.0 if done and valid and feedback.startswith("Moved") else 0.0,
        )

    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        level: str | None = None,
        **kwargs: Any,
    ) -> HanoiObservation:
        if level is None:
            level = random.Random(seed).choice(levels())
        pegs, target = decode(level)
        self._state = HanoiState(episode_id=episode_id, step_count=0, pegs=pegs, target=target)
        return self._observe("")

    def step(  # type: ignore[override]
        self, action: HanoiAction, timeout_s: float | None = None, **kwargs: Any
    ) -> HanoiObservation:
        self._state.step_count += 1
        parts = action.move.upper().replace(",", " ").replace("->", " ").split()
        pegs = self._state.pegs
        if len(parts) != 2 or not all(p in PEGS for p in parts) or parts[0] == parts[1]:
            feedback = f"'{action.move}' is not a move; write two pegs, e.g. 'A C'."
            return self._observe(feedback, False)
        a, b = parts
        if not pegs[a]:
            return self._observe(f"Peg {a} is empty.", False)
        if pegs[b] and pegs[b][-1] < pegs[a][-1]:
            feedback = f"Disk {pegs[a][-1]} cannot go on the smaller disk {pegs[b][-1]}."
            return self._observe(feedback, False)
        pegs[b].append(pegs[a].pop())
        return self._observe(f"Moved disk {pegs[b][-1]} from {a} to {b}.")

    @property
    def state(self) -> HanoiState:
        return self._state


def build_app() -> Any:
    """The FastAPI app of the Hanoi server."""
    return create_app(
        HanoiEnvironment,
        HanoiAction,
        HanoiObservation,
        env_name="hanoi",
        max_concurrent_envs=MAX_SESSIONS,
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="The Tower of Hanoi OpenEnv server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(build_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
