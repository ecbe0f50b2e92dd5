"""``agentgym/Sokoban-v0``: push every box onto a target, in a text grid."""

from __future__ import annotations

import numpy as np

from agentgym.env import Split, StepResult
from agentgym.envs.grid import MOVE_NAMES, GridMoves, parse_move
from agentgym.envs.sokoban.level import Level, generate_level, solve, step_state
from agentgym.errors import SnapshotError
from agentgym.generated import GeneratedTaskEnv

_FEEDBACK = {
    "moved": "You moved {move}.",
    "pushed": "You pushed a box {move}.",
    "wall": "You walked into a wall; nothing moved.",
    "blocked": "The box cannot move {move}: something is behind it.",
}


class SokobanEnv(GridMoves, GeneratedTaskEnv[Level]):
    """Sokoban puzzles in a text grid, generated from the task seed and always solvable.

    The grid uses the classic symbols: ``#`` wall, space floor, ``.`` target, ``$`` box,
    ``*`` box on a target, ``@`` player, ``+`` player on a target. Actions are
    ``up``, ``down``, ``left`` and ``right`` (any case, punctuation ignored). Walking into
    a wall is a valid action that changes nothing; any other text is an invalid action.

    Reward: ``1.0`` when the last box reaches its target (the episode terminates), plus
    ``box_reward`` for each box pushed onto (minus for each pushed off) a target and
    ``step_penalty`` per step (both default 0). With ``end_on_deadlock`` the episode
    terminates unsuccessfully as soon as a box is pushed onto a dead square (a cell from
    which it can never reach a target). ``score`` is the fraction of boxes on targets.

    ``cell_sep=" "`` puts a space between cells (floor then drawn as ``_``), which gives
    small models one token per cell. ``state_key`` is the player cell and the sorted box
    cells, e.g. ``"p8|b14,20"``.
    The expert is an optimal breadth-first solver.

    Snapshots (:meth:`snapshot`) hold the player, the boxes and the expert's current plan.
    """

    description = "Push every box onto a target in a text grid (levels from seeds, BFS expert)."

    def __init__(
        self,
        size: int = 6,
        num_boxes: int = 1,
        extra_walls: tuple[int, int] = (0, 3),
        min_moves: int = 2,
        max_moves: int = 30,
        end_on_deadlock: bool = True,
        box_reward: float = 0.0,
        step_penalty: float = 0.0,
        cell_sep: str = "",
        num_tasks: dict[str, int] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(num_tasks=num_tasks, render_mode=render_mode)
        self.cell_sep = cell_sep
        if size < 4:
            raise ValueError(f"size must be >= 4 (a wall border around a 2x2 room), got {size}")
        if num_boxes < 1:
            raise ValueError(f"num_boxes must be >= 1, got {num_boxes}")
        self.size, self.num_boxes = size, num_boxes
        self.extra_walls = (int(extra_walls[0]), int(extra_walls[1]))
        self.min_moves, self.max_moves = min_moves, max_moves
        self.end_on_deadlock = end_on_deadlock
        self.box_reward, self.step_penalty = box_reward, step_penalty
        self._level: Level | None = None
        self._player = 0
        self._boxes: frozenset[int] = frozenset()
        self._plan: dict[tuple[int, frozenset[int]], str] = {}

    # ------------------------------------------------------------ generated tasks

    def _signature(self) -> str:
        return (
            f"sokoban-v0|{self.size}|{self.num_boxes}|{self.extra_walls}|"
            f"{self.min_moves}|{self.max_moves}"
        )

    def _generate_level(self, rng: np.random.Generator) -> Level | None:
        return generate_level(
            rng,
            height=self.size,
            width=self.size,
            num_boxes=self.num_boxes,
            extra_walls=self.extra_walls,
            min_moves=self.min_moves,
            max_moves=self.max_moves,
        )

    def _level_text(self, level: Level) -> str:
        return level.render()

    # ------------------------------------------------------------ episode

    def _load_task(self, task_id: str, split: str, rng: np.random.Generator) -> str:
        self._level = self.level(task_id)
        self._player, self._boxes = self._level.player, self._level.boxes
        self._plan = {}
        return self._render_state()

    def _render_state(self) -> str:
        assert self._level is not None
        return self._level.render(self._player, self._boxes, self.cell_sep)

    def _on_target(self, boxes: frozenset[int]) -> int:
        assert self._level is not None
        return len(boxes & self._level.targets)

    def _step(self, action: str) -> StepResult:
        level = self._level
        assert level is not None
        move = parse_move(action)
        if move is None:
            return self._not_a_move(action)
        before = self._on_target(self._boxes)
        self._player, self._boxes, outcome = step_state(level, self._player, self._boxes, move)
        after = self._on_target(self._boxes)
        solved = after == len(self._boxes)
        reward = self.step_penalty + self.box_reward * (after - before) + (1.0 if solved else 0.0)
        feedback = _FEEDBACK[outcome].format(move=move)
        deadlocked = outcome == "pushed" and bool(self._boxes & level.dead_squares)
        terminated = solved or (self.end_on_deadlock and deadlocked)
        if solved:
            feedback += " Every box is on a target: puzzle solved!"
        elif deadlocked and self.end_on_deadlock:
            feedback += " A box is stuck where it can never reach a target: puzzle failed."
        return StepResult(
            observation=f"{feedback}\n{self._render_state()}",
            reward=reward,
            terminated=terminated,
            success=solved,
            score=after / len(self._boxes),
        )

    def _state_key(self) -> str:
        return f"p{self._player}|b{','.join(map(str, sorted(self._boxes)))}"

    def _snapshot_state(self) -> tuple:
        # The plan dict is replaced, never changed, once built: sharing it is safe.
        return self._signature(), self._player, self._boxes, self._plan

    def _restore_state(self, task_id: str, split: Split, state: tuple) -> None:
        signature, player, boxes, plan = state
        if signature != self._signature():
            raise SnapshotError(
                f"the snapshot comes from a Sokoban generator {signature!r}, this env is "
                f"{self._signature()!r}: build it with the same arguments"
            )
        self._level = self.level(task_id)
        self._player, self._boxes, self._plan = int(player), frozenset(boxes), plan

    def _instruction(self) -> str:
        return (
            "Push every box ($) onto a target (.) by moving up, down, left or right. "
            "You are @ (+ when standing on a target); # is a wall; * is a box on a target."
        )

    def _expert_action(self) -> str:
        assert self._level is not None
        state = (self._player, self._boxes)
        if state not in self._plan:
            moves = solve(self._level, self._player, self._boxes)
            if not moves:
                # Deadlocked or already solved: any move keeps the contract of returning one.
                return MOVE_NAMES[0]
            self._plan, p, b = {}, self._player, self._boxes
            for move in moves:
                self._plan[(p, b)] = move
                p, b, _ = step_state(self._level, p, b, move)
        return self._plan[state]
