"""Tower of Hanoi from any legal position: the rules, levels and an optimal solver.

A position is three pegs ``A``, ``B``, ``C``, each a bottom-to-top list of disk sizes
(1 is the smallest). The goal is every disk on the target peg. Levels are all positions
of 3 and 4 disks that are not already solved, target ``C``; a level's code reads
``"A:3,1|B:2|C:>C"``. Nothing here imports ``openenv``: the server and the task generator
both use it.
"""

from __future__ import annotations

import itertools

PEGS = "ABC"
Position = dict[str, list[int]]


def encode(pegs: Position, target: str) -> str:
    """``"A:3,1|B:2|C:>C"``."""
    return "|".join(f"{p}:{','.join(map(str, pegs[p]))}" for p in PEGS) + f">{target}"


def decode(code: str) -> tuple[Position, str]:
    """The position and target of a level code; ``ValueError`` if it is not legal."""
    try:
        body, target = code.rsplit(">", 1)
        pegs: Position = {}
        for part in body.split("|"):
            peg, _, disks = part.partition(":")
            pegs[peg] = [int(d) for d in disks.split(",") if d]
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"level {code!r} is not of the form 'A:3,1|B:2|C:>C'") from exc
    sizes = sorted(d for disks in pegs.values() for d in disks)
    if set(pegs) != set(PEGS) or target not in PEGS or sizes != list(range(1, len(sizes) + 1)):
        raise ValueError(f"level {code!r} is not a Hanoi position of disks 1..n")
    if any(disks != sorted(disks, reverse=True) for disks in pegs.values()):
        raise ValueError(f"level {code!r} has a larger disk on a smaller one")
    return pegs, target


def levels(sizes: tuple[int, ...] = (3, 4)) -> list[str]:
    """Every unsolved position of ``sizes`` disks with target ``C``, in a fixed order."""
    out = []
    for n in sizes:
        for where in itertools.product(PEGS, repeat=n):  # where[d-1]: the peg of disk d
            pegs: Position = {p: [] for p in PEGS}
            for disk in range(n, 0, -1):
                pegs[where[disk - 1]].append(disk)
            if len(pegs["C"]) != n:
                out.append(encode(pegs, "C"))
    return out


def legal_moves(pegs: Position) -> list[str]:
    """Moves ``"A C"`` (top disk of A onto C) that the rules allow."""
    return [
        f"{a} {b}"
        for a in PEGS
        for b in PEGS
        if a != b and pegs[a] and (not pegs[b] or pegs[b][-1] > pegs[a][-1])
    ]


def solved(pegs: Position, target: str) -> bool:
    return all(not pegs[p] for p in PEGS if p != target)


def _first_move(where: dict[int, str], k: int, target: str) -> str | None:
    """The first move of the optimal way to gather disks 1..k on ``target``."""
    if k == 0:
        return None
    if where[k] == target:
        return _first_move(where, k - 1, target)
    spare = next(p for p in PEGS if p not in (where[k], target))
    first = _first_move(where, k - 1, spare)
    return first if first is not None else f"{where[k]} {target}"


def optimal_move(pegs: Position, target: str) -> str | None:
    """The next move of a shortest solution (``None`` when solved)."""
    where = {d: p for p in PEGS for d in pegs[p]}
    return _first_move(where, len(where), target)
