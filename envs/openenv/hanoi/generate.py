"""Writes the task file of the shipped Hanoi server (``data/hanoi_tasks.jsonl``).

One task per unsolved 3- and 4-disk position (target peg C); its split is decided by the
position itself (:func:`agentgym.env.split_of_level`), so no held-out position is ever a
training one. ``python -m agentgym.envs.openenv.hanoi.generate`` rewrites the file (a test
checks the shipped file is what this writes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from agentgym.env import split_of_level
from agentgym.envs.openenv.hanoi.puzzle import decode, levels

OUT = Path(__file__).resolve().parent.parent / "data" / "hanoi_tasks.jsonl"
INSTRUCTION = (
    "Tower of Hanoi: move every disk onto the goal peg, one disk at a time, never putting "
    "a disk on a smaller one. An action is two pegs, e.g. A C (the top disk of A onto C)."
)


def all_tasks() -> list[dict[str, Any]]:
    rows = []
    for i, code in enumerate(levels()):
        pegs, _ = decode(code)
        n = sum(len(d) for d in pegs.values())
        rows.append(
            {
                "task_id": f"hanoi{n}-{i:03d}",
                "split": split_of_level(f"hanoi\x1f{code}"),
                "instruction": INSTRUCTION,
                "reset": {"level": code},
                "task_type": f"{n} disks",
            }
        )
    return rows


def render() -> str:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in all_tasks())


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.write_text(render(), encoding="utf-8")
    print(f"wrote {len(all_tasks())} tasks to {out}")


if __name__ == "__main__":
    main()
