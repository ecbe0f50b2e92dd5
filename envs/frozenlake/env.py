"""``agentgym/FrozenLake-v0``: walk from the start to the goal without falling into a hole."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from agentgym.env import Split, StepResult
from agentgym.envs.grid import MOVE_NAMES, MOVES, GridMoves, parse_move
from agentgym.errors import SnapshotError
from agentgym.generated import GeneratedTaskEnv
from agentgym.snapshots import rng_from_state, rng_state

#: Moves the ice may turn each move into (the intended one and its two perpendiculars),
#: as in Gymnasium's slippery FrozenLake.
_SLIPS = {
    "up": ("left", "up", "right"),
    "down": ("right", "down", "left"),
    "left": ("down", "left", "up"),
    "right": ("up", "right", "down"),
}


@dataclass(frozen=True)
class LakeMap:
    """A square lake: ``S`` start, ``G`` goal, ``H`` hole, ``F`` frozen (safe) ice."""

    rows: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.rows)

    def find(self, symbol: str) -> tuple[int, int]:
        for r, row in enumerate(self.rows):
            if symbol in row:
                return r, row.index(symbol)
        raise ValueError(f"no {symbol!r} on the map")

    def at(self, r: int, c: int) -> str:
        return self.rows[r][c]

    def render(self, player: tuple[int, int], sep: str = " ") -> str:
        lines = []
        for r, row in enumerate(self.rows):
            cells = list(row)
            if r == player[0]:
                cells[player[1]] = "P"
            lines.append(sep.join(cells))
        return "\n".join(lines)


def _move(size: int, pos: tuple[int, int], move: str) -> tuple[int, int]:
    dr, dc = MOVES[move]
    return min(max(pos[0] + dr, 0), size - 1), min(max(pos[1] + dc, 0), size - 1)


def shortest_path(lake: LakeMap, start: tuple[int, int] | None = None) -> list[str] | None:
    """The shortest list of moves from ``start`` (default ``S``) to ``G`` avoiding holes."""
    start = lake.find("S") if start is None else start
    goal = lake.find("G")
    parent: dict[tuple[int, int], tuple[tuple[int, int], str] | None] = {start: None}
    frontier = deque([start])
    while frontier:
        pos = frontier.popleft()
        if pos == goal:
            path = []
            while parent[pos] is not None:
                pos, move = parent[pos]  # type: ignore[misc]
                path.append(move)
            return path[::-1]
        for move in MOVE_NAMES:
            nxt = _move(lake.size, pos, move)
            if nxt not in parent and lake.at(*nxt) != "H":
                parent[nxt] = (pos, move)
                frontier.append(nxt)
    return None


def generate_map(
    rng: np.random.Generator, size: int = 4, hole_prob: float = 0.2, min_path: int = 2
) -> LakeMap | None:
    """A random lake with start and goal at random cells and a safe path between them.

    Every cell other than start and goal is a hole with probability ``hole_prob``. Maps
    whose shortest path is shorter than ``min_path`` moves, or that have no path, are
    rejected (``None``).
    """
    cells = ["H" if rng.random() < hole_prob else "F" for _ in range(size * size)]
    start, goal = rng.choice(size * size, size=2, replace=False)
    cells[int(start)], cells[int(goal)] = "S", "G"
    lake = LakeMap(tuple("".join(cells[r * size : (r + 1) * size]) for r in range(size)))
    path = shortest_path(lake)
    if path is None or len(path) < min_path:
        return None
    return lake


class FrozenLakeEnv(GridMoves, GeneratedTaskEnv[LakeMap]):
    """FrozenLake on random solvable maps, one per task seed.

    The map shows ``P`` (you), ``S`` start, ``G`` goal, ``H`` holes and ``F`` frozen ice,
    cells separated by ``cell_sep`` (a space by default: one token per cell for small
    byte-level BPE tokenizers).
    Actions are ``up``, ``down``, ``left`` and ``right``; moving off the edge leaves you
    in place. With ``slippery`` the ice turns a move into one of its two perpendicular
    moves with probability 1/3 each, as in Gymnasium's FrozenLake; the draw comes from
    the episode's seeded generator, so ``(task_id, seed)`` fixes it.

    Reward ``1.0`` on reaching the goal; falling into a hole ends the episode with 0.
    ``score`` is 1 at the goal, else 0. ``state_key`` is the player cell, ``"r2c3"``.
    The expert walks a shortest safe path (optimal when not slippery; on slippery ice it
    re-plans from wherever it lands).

    Snapshots (:meth:`snapshot`) hold the player's cell and the state of the episode's
    generator, so restored slippery ice slides exactly as it did.
    """

    description = "Cross a frozen lake to the goal without falling into a hole (BFS expert)."

    def __init__(
        self,
        size: int = 4,
        hole_prob: float = 0.2,
        slippery: bool = False,
        min_path: int = 2,
        cell_sep: str = " ",
        num_tasks: dict[str, int] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(num_tasks=num_tasks, render_mode=render_mode)
        self.cell_sep = cell_sep
        if size < 2:
            raise ValueError(f"size must be >= 2, got {size}")
        if not 0.0 <= hole_prob < 1.0:
            raise ValueError(f"hole_prob must be in [0, 1), got {hole_prob}")
        self.size, self.hole_prob, self.slippery, self.min_path = (
            size,
            hole_prob,
            slippery,
            min_path,
        )
        self._lake: LakeMap | None = None
        self._pos = (0, 0)
        self._rng = np.random.default_rng(0)

    def _signature(self) -> str:
        return f"frozenlake-v0|{self.size}|{self.hole_prob}|{self.min_path}"

    def _generate_level(self, rng: np.random.Generator) -> LakeMap | None:
        return generate_map(rng, self.size, self.hole_prob, self.min_path)

    def _level_text(self, level: LakeMap) -> str:
        return "\n".join(level.rows)

    def _load_task(self, task_id: str, split: str, rng: np.random.Generator) -> str:
        self._lake = self.level(task_id)
        self._pos = self._lake.find("S")
        self._rng = rng
        return self._render_state()

    def _render_state(self) -> str:
        assert self._lake is not None
        return self._lake.render(self._pos, self.cell_sep)

    def _step(self, action: str) -> StepResult:
        lake = self._lake
        assert lake is not None
        move = parse_move(action)
        if move is None:
            return self._not_a_move(action)
        actual = _SLIPS[move][int(self._rng.integers(3))] if self.slippery else move
        before = self._pos
        self._pos = _move(lake.size, self._pos, actual)
        cell = lake.at(*self._pos)
        if actual != move:
            feedback = f"The ice is slippery: you slid {actual} instead of {move}."
        elif self._pos == before:
            feedback = f"You cannot move {move}: that is the edge of the lake."
        else:
            feedback = f"You moved {move}."
        if cell == "H":
            return StepResult(
                observation=f"{feedback} You fell into a hole. Game over.\n{self._render_state()}",
                terminated=True,
            )
        if cell == "G":
            return StepResult(
                observation=f"{feedback} You reached the goal!\n{self._render_state()}",
                reward=1.0,
                terminated=True,
                success=True,
                score=1.0,
            )
        return StepResult(observation=f"{feedback}\n{self._render_state()}")

    def _state_key(self) -> str:
        return f"r{self._pos[0]}c{self._pos[1]}"

    def _snapshot_state(self) -> tuple:
        return self._signature(), self._pos, rng_state(self._rng)

    def _restore_state(self, task_id: str, split: Split, state: tuple) -> None:
        signature, pos, rng = state
        if signature != self._signature():
            raise SnapshotError(
                f"the snapshot comes from a FrozenLake generator {signature!r}, this env is "
                f"{self._signature()!r}: build it with the same arguments"
            )
        self._lake = self.level(task_id)
        self._pos = (int(pos[0]), int(pos[1]))
        self._rng = rng_from_state(rng, reuse=self._rng)  # the env's own: set in place

    def _instruction(self) -> str:
        return (
            "Walk from where you are (P) to the goal (G) without stepping into a hole (H). "
            "F is safe frozen ice. Move up, down, left or right."
        )

    def _expert_action(self) -> str:
        assert self._lake is not None
        path = shortest_path(self._lake, self._pos)
        return path[0] if path else MOVE_NAMES[0]
