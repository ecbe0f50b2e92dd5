"""The TextArena games agentgym plays, with their levels, rule bots and experts.

Each :class:`Game` knows, from TextArena's ``game_state`` alone (no TextArena import):
its legal moves in TextArena's action syntax, a rule bot (the fixed opponent), and, where
one exists, an expert. Levels are starting positions, so held-out tasks start from
positions never seen in training:

``Nim-v0``
    Three piles of 1-7 objects whose nim-sum is not 0; the player to move first (the agent
    against an opponent) can always win. Move ``[pile quantity]``; who takes the last
    object wins. Expert: the nim-sum strategy (always wins). Bot: the nim-sum move half
    the time, else a random legal move.
``TicTacToe-v0``
    An opening of one or two random moves already on the board. Move ``[cell]`` (0-8).
    Expert: minimax (never loses). Bot: win if it can, else block, else a random cell.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

GameState = dict[str, Any]
_LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


@dataclass(frozen=True)
class Level:
    """A starting position: TextArena constructor arguments and opening moves."""

    code: str
    kwargs: dict[str, Any]
    opening: tuple[str, ...] = ()


@dataclass(frozen=True)
class Game:
    """What agentgym knows of one TextArena game (see the module docstring)."""

    ta_id: str
    levels: Callable[[], list[Level]]
    legal: Callable[[GameState, int], list[str]]
    bot: Callable[[GameState, int, np.random.Generator], str]
    expert: Callable[[GameState, int], str] | None
    #: whether :attr:`expert` wins every level against any opponent (moving first)
    expert_wins: bool
    rules: str


# ---------------------------------------------------------------- Nim


def _nim_levels() -> list[Level]:
    out = []
    for piles in itertools.combinations_with_replacement(range(1, 8), 3):
        if piles[0] ^ piles[1] ^ piles[2]:
            out.append(Level("piles " + " ".join(map(str, piles)), {"piles": list(piles)}))
    return out


def _nim_legal(gs: GameState, pid: int) -> list[str]:
    return [f"[{i} {q}]" for i, n in enumerate(gs["piles"]) for q in range(1, n + 1)]


def _nim_expert(gs: GameState, pid: int) -> str:
    piles = gs["piles"]
    total = functools.reduce(lambda a, b: a ^ b, piles, 0)
    if total:
        for i, n in enumerate(piles):
            if n ^ total < n:
                return f"[{i} {n - (n ^ total)}]"
    i = max(range(len(piles)), key=lambda k: piles[k])  # lost position: take one, wait
    return f"[{i} 1]"


def _nim_bot(gs: GameState, pid: int, rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return _nim_expert(gs, pid)
    moves = _nim_legal(gs, pid)
    return moves[int(rng.integers(len(moves)))]


# ---------------------------------------------------------------- Tic Tac Toe


def _ttt_mark(pid: int) -> str:
    return "X" if pid == 1 else "O"  # TextArena's assignment


def _ttt_cells(gs: GameState) -> list[str]:
    return [c for row in gs["board"] for c in row]


def _ttt_winner(cells: tuple[str, ...] | list[str]) -> str:
    for a, b, c in _LINES:
        if cells[a] and cells[a] == cells[b] == cells[c]:
            return cells[a]
    return ""


def _ttt_levels() -> list[Level]:
    out = []
    for first in range(9):
        out.append(Level(f"opening {first}", {}, (f"[{first}]",)))
        for second in range(9):
            if second != first:
                out.append(Level(f"opening {first} {second}", {}, (f"[{first}]", f"[{second}]")))
    return out


def _ttt_legal(gs: GameState, pid: int) -> list[str]:
    return [f"[{i}]" for i, c in enumerate(_ttt_cells(gs)) if not c]


@functools.cache
def _minimax(cells: tuple[str, ...], me: str, other: str) -> tuple[int, int]:
    """(value for ``me`` to move: 1 win, 0 draw, -1 loss; best cell)."""
    best = (-2, -1)
    for i, c in enumerate(cells):
        if c:
            continue
        after = (*cells[:i], me, *cells[i + 1 :])
        if _ttt_winner(after) == me:
            return 1, i
        value = 0 if all(after) else -_minimax(after, other, me)[0]
        if value > best[0]:
            best = (value, i)
    return best


def _ttt_expert(gs: GameState, pid: int) -> str:
    me = _ttt_mark(pid)
    other = "O" if me == "X" else "X"
    return f"[{_minimax(tuple(_ttt_cells(gs)), me, other)[1]}]"


def _ttt_bot(gs: GameState, pid: int, rng: np.random.Generator) -> str:
    cells = _ttt_cells(gs)
    me = _ttt_mark(pid)
    other = "O" if me == "X" else "X"
    free = [i for i, c in enumerate(cells) if not c]
    for mark in (me, other):  # win, else block
        for i in free:
            if _ttt_winner([mark if k == i else c for k, c in enumerate(cells)]) == mark:
                return f"[{i}]"
    return f"[{free[int(rng.integers(len(free)))]}]"


GAMES: dict[str, Game] = {
    "Nim-v0": Game(
        ta_id="Nim-v0",
        levels=_nim_levels,
        legal=_nim_legal,
        bot=_nim_bot,
        expert=_nim_expert,
        expert_wins=True,
        rules="Nim: remove one or more objects from one pile; whoever takes the last wins.",
    ),
    "TicTacToe-v0": Game(
        ta_id="TicTacToe-v0",
        levels=_ttt_levels,
        legal=_ttt_legal,
        bot=_ttt_bot,
        expert=_ttt_expert,
        expert_wins=False,
        rules="Tic Tac Toe: get three of your marks in a row.",
    ),
}
