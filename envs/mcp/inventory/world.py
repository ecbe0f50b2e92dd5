"""The inventory database behind the shipped MCP server: seeded scenarios and their rules.

A scenario is a small warehouse: about ten items, each with a SKU, a name, a category, a
quantity, a unit price (kept in cents, so sums are exact) and a bin location. Scenario
``s`` is the same on every machine (``random.Random(s)``). The server
(:mod:`.server`) exposes it through MCP tools; the task generator (:mod:`.generate`)
reads it directly to write tasks and their expert solutions.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass

CATEGORIES: dict[str, tuple[str, ...]] = {
    "hardware": (
        "steel bolt M6",
        "steel bolt M8",
        "brass hinge",
        "wood screw 40mm",
        "wall anchor",
        "hex nut M6",
        "padlock",
        "cabinet handle",
    ),
    "electrical": (
        "copper wire 2mm",
        "wall socket",
        "light switch",
        "LED bulb E27",
        "cable tie pack",
        "fuse 10A",
        "junction box",
        "extension lead",
    ),
    "plumbing": (
        "PVC pipe 32mm",
        "pipe elbow",
        "tap washer",
        "sink trap",
        "ball valve",
        "hose clamp",
        "plumber tape",
        "shower head",
    ),
    "paint": (
        "white emulsion 5L",
        "primer 1L",
        "paint roller",
        "masking tape",
        "brush set",
        "wood stain",
        "paint tray",
        "gloss black 1L",
    ),
}
AISLES = "ABCD"


@dataclass
class Item:
    """One stock line."""

    sku: str
    name: str
    category: str
    quantity: int
    price_cents: int
    location: str

    def line(self) -> str:
        """How tools show an item."""
        return (
            f"{self.sku} | {self.name} | {self.category} | qty {self.quantity} | "
            f"${format_cents(self.price_cents)} | bin {self.location}"
        )


def format_cents(cents: int) -> str:
    """``1234`` -> ``"12.34"``."""
    return f"{cents // 100}.{cents % 100:02d}"


def scenario(seed: int) -> dict[str, Item]:
    """The items of scenario ``seed``, by SKU (sorted)."""
    rng = random.Random(int(seed))
    items: dict[str, Item] = {}
    for category, names in CATEGORIES.items():
        for name in rng.sample(names, k=rng.randint(2, 3)):
            sku = f"{category[:2].upper()}-{rng.randint(100, 999)}"
            while sku in items:
                sku = f"{category[:2].upper()}-{rng.randint(100, 999)}"
            items[sku] = Item(
                sku=sku,
                name=name,
                category=category,
                quantity=rng.randint(0, 60),
                price_cents=rng.randint(50, 4000),
                location=f"{rng.choice(AISLES)}{rng.randint(1, 6)}",
            )
    return dict(sorted(items.items()))


def state_json(items: dict[str, Item]) -> str:
    """The whole database as canonical JSON (the server's ``inventory_state`` tool)."""
    return json.dumps([asdict(items[k]) for k in sorted(items)], sort_keys=True)
