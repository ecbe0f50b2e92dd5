"""Generates the inventory tasks of ``agentgym/MCP-v0`` with the solutions its expert replays.

Four task types, one of each per scenario (database):

``lookup``    how many units of an item are in stock (exact answer);
``value``     the total stock value of a category in dollars (regex on the amount);
``cheapest``  the SKU of a category's cheapest item (exact answer);
``restock``   bring an item's stock to a target and submit ``done`` (a Python checker
              reads the database: that item changed, nothing else).

Splits are by scenario, so held-out tasks run on databases never seen in training:
scenarios 0-2 are ``train``, 3 is ``valid``, 4 is ``test``. Each solution is computed from
the scenario itself, the way an agent would solve it with the server's tools.

``python -m agentgym.envs.mcp.inventory.generate`` rewrites ``data/inventory_tasks.jsonl``
(a test checks the shipped file is what this writes).
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from agentgym.envs.mcp.inventory.world import CATEGORIES, format_cents, scenario

SPLIT_OF_SCENARIO = {0: "train", 1: "train", 2: "train", 3: "valid", 4: "test"}
ANSWER_TOOL = "submit_answer"
CHECKER = "agentgym.envs.mcp.inventory.checkers:state_is"
OUT = Path(__file__).resolve().parent.parent / "data" / "inventory_tasks.jsonl"


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def tasks_of_scenario(scenario_id: int) -> list[dict[str, Any]]:
    """The four tasks of one scenario, as JSONL rows."""
    items = scenario(scenario_id)
    rng = random.Random(f"tasks-{scenario_id}")
    split = SPLIT_OF_SCENARIO[scenario_id]
    setup = [_call("reset_inventory", scenario_id=scenario_id)]
    skus = sorted(items)
    rows: list[dict[str, Any]] = []

    it = items[rng.choice(skus)]
    rows.append(
        {
            "task_id": f"inv{scenario_id}-lookup",
            "instruction": f"How many units of '{it.name}' are in stock?",
            "answer": str(it.quantity),
            "solution": [
                _call("search_items", query=it.name),
                _call(ANSWER_TOOL, answer=str(it.quantity)),
            ],
        }
    )
    row_type = ["lookup"]

    category = rng.choice(sorted(CATEGORIES))
    in_cat = [items[s] for s in skus if items[s].category == category]
    total = format_cents(sum(i.quantity * i.price_cents for i in in_cat))
    rows.append(
        {
            "task_id": f"inv{scenario_id}-value",
            "instruction": (
                f"What is the total stock value (quantity times unit price, summed) of the "
                f"{category} items? Answer in dollars with cents, e.g. 123.45."
            ),
            "answer_regex": rf"\$?\s*{re.escape(total)}",
            "solution": [
                _call("list_items", category=category),
                _call(ANSWER_TOOL, answer=total),
            ],
        }
    )
    row_type.append("value")

    category = rng.choice(sorted(CATEGORIES))
    in_cat = [items[s] for s in skus if items[s].category == category]
    low = min(i.price_cents for i in in_cat)
    cheapest = [i.sku for i in in_cat if i.price_cents == low]
    rows.append(
        {
            "task_id": f"inv{scenario_id}-cheapest",
            "instruction": (
                f"Which {category} item has the lowest unit price? Answer with its SKU."
            ),
            "answer": cheapest,
            "solution": [
                _call("list_items", category=category),
                _call(ANSWER_TOOL, answer=cheapest[0]),
            ],
        }
    )
    row_type.append("cheapest")

    it = items[rng.choice(skus)]
    target = it.quantity + rng.randint(5, 40)
    rows.append(
        {
            "task_id": f"inv{scenario_id}-restock",
            "instruction": (
                f"Restock '{it.name}': bring its stock to exactly {target} units and change "
                "nothing else. Then submit the answer 'done'."
            ),
            "checker": CHECKER,
            "checker_args": {
                "scenario_id": scenario_id,
                "changes": {it.sku: {"quantity": target}},
            },
            "solution": [
                _call("search_items", query=it.name),
                _call("adjust_stock", sku=it.sku, delta=target - it.quantity),
                _call(ANSWER_TOOL, answer="done"),
            ],
        }
    )
    row_type.append("restock")

    for row, kind in zip(rows, row_type, strict=True):
        row.update(split=split, setup=setup, task_type=kind)
    return rows


def all_tasks() -> list[dict[str, Any]]:
    """Every shipped task, in file order."""
    return [row for s in sorted(SPLIT_OF_SCENARIO) for row in tasks_of_scenario(s)]


def render() -> str:
    """The JSONL text of :func:`all_tasks`."""
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in all_tasks())


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.write_text(render(), encoding="utf-8")
    print(f"wrote {len(all_tasks())} tasks to {out}")


if __name__ == "__main__":
    main()
