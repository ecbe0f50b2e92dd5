"""The shipped MCP server: a small warehouse inventory database.

Run it over stdio (what ``agentgym/MCP-v0`` does by default)::

    python -m agentgym.envs.mcp.inventory.server

or over streamable HTTP on loopback (one server for many environment instances)::

    python -m agentgym.envs.mcp.inventory.server --http --port 8765   # URL: http://127.0.0.1:8765/mcp

Agent tools: ``list_items``, ``search_items`` and ``get_item`` (read-only),
``adjust_stock``, ``set_price`` and ``move_item`` (they change the database). Two more
tools are for the environment, which hides them from the agent: ``reset_inventory``
(load a seeded scenario, see :mod:`.world`) and ``inventory_state`` (the whole database
as canonical JSON, the environment's ``state_key`` source).

Over HTTP every client gets its own database, keyed by the ``agentgym-workspace`` header
that :class:`agentgym.envs.mcp.MCPConnection` sends (clients without it share one), so
parallel environments do not see each other's changes. At most ``MAX_WORKSPACES`` are
kept (least recently used go first).
"""

from __future__ import annotations

import argparse
import re
from collections import OrderedDict
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from agentgym.envs.mcp.inventory.world import Item, format_cents, scenario, state_json

WORKSPACE_HEADER = "agentgym-workspace"  # same as agentgym.envs.mcp.client.WORKSPACE_HEADER
MAX_WORKSPACES = 1024
_LOCATION = re.compile(r"^[A-D][1-6]$")
READ_ONLY = ToolAnnotations(read_only_hint=True)
CHANGES = ToolAnnotations(read_only_hint=False, destructive_hint=False)


class Workspaces:
    """One inventory per workspace id, least recently used evicted first."""

    def __init__(self, limit: int = MAX_WORKSPACES) -> None:
        self.limit = limit
        self._dbs: OrderedDict[str, dict[str, Item]] = OrderedDict()

    def get(self, workspace: str) -> dict[str, Item]:
        if workspace not in self._dbs:
            self._dbs[workspace] = scenario(0)
            while len(self._dbs) > self.limit:
                self._dbs.popitem(last=False)
        self._dbs.move_to_end(workspace)
        return self._dbs[workspace]

    def replace(self, workspace: str, items: dict[str, Item]) -> None:
        self.get(workspace)
        self._dbs[workspace] = items


def build_server(workspaces: Workspaces | None = None) -> MCPServer:
    """The inventory MCP server (a new one, with its own workspaces)."""
    dbs = workspaces or Workspaces()
    app = MCPServer(
        "agentgym-inventory",
        instructions="A warehouse inventory: look items up, change stock, prices and bins.",
        log_level="WARNING",
    )

    def db(ctx: Context) -> dict[str, Item]:
        headers = ctx.headers or {}
        return dbs.get(str(headers.get(WORKSPACE_HEADER, "default")))

    def item(ctx: Context, sku: str) -> Item:
        items = db(ctx)
        key = sku.strip().upper()
        if key not in items:
            raise ToolError(f"no item with SKU {sku!r}; use search_items or list_items")
        return items[key]

    @app.tool(annotations=READ_ONLY)
    def list_items(ctx: Context, category: str = "") -> str:
        """List the items in stock, one per line (SKU | name | category | quantity | unit
        price | bin). Give a category (hardware, electrical, plumbing, paint) to list only
        that category."""
        items = list(db(ctx).values())
        if category.strip():
            wanted = category.strip().lower()
            items = [i for i in items if i.category == wanted]
            if not items:
                raise ToolError(
                    f"no items in category {category!r}; categories: hardware, electrical, "
                    "plumbing, paint"
                )
        return "\n".join(i.line() for i in items)

    @app.tool(annotations=READ_ONLY)
    def search_items(ctx: Context, query: str) -> str:
        """Find items whose name contains every word of the query (case-insensitive)."""
        words = query.lower().split()
        if not words:
            raise ToolError("the query is empty")
        hits = [i for i in db(ctx).values() if all(w in i.name.lower() for w in words)]
        return "\n".join(i.line() for i in hits) if hits else f"no item matches {query!r}"

    @app.tool(annotations=READ_ONLY)
    def get_item(ctx: Context, sku: str) -> str:
        """Show one item by its SKU (e.g. HA-123)."""
        return item(ctx, sku).line()

    @app.tool(annotations=CHANGES)
    def adjust_stock(ctx: Context, sku: str, delta: int) -> str:
        """Add delta units to an item's stock (negative to remove). Stock cannot go
        below zero."""
        it = item(ctx, sku)
        if it.quantity + delta < 0:
            raise ToolError(f"{it.sku} has {it.quantity} units; cannot remove {-delta}")
        it.quantity += delta
        return f"{it.sku} now has {it.quantity} units"

    @app.tool(annotations=CHANGES)
    def set_price(ctx: Context, sku: str, price: float) -> str:
        """Set an item's unit price in dollars (e.g. 12.5)."""
        if not 0 < price <= 100_000:
            raise ToolError(f"price must be between 0 and 100000 dollars, got {price}")
        it = item(ctx, sku)
        it.price_cents = round(price * 100)
        return f"{it.sku} now costs ${format_cents(it.price_cents)}"

    @app.tool(annotations=CHANGES)
    def move_item(ctx: Context, sku: str, location: str) -> str:
        """Move an item to another bin (aisle A-D and shelf 1-6, e.g. B4)."""
        where = location.strip().upper()
        if not _LOCATION.match(where):
            raise ToolError(f"bin {location!r} does not exist; bins are A1..D6")
        it = item(ctx, sku)
        it.location = where
        return f"{it.sku} is now in bin {where}"

    @app.tool(annotations=CHANGES)
    def reset_inventory(ctx: Context, scenario_id: int) -> str:
        """(Environment use) Load the seeded scenario scenario_id."""
        headers = ctx.headers or {}
        dbs.replace(str(headers.get(WORKSPACE_HEADER, "default")), scenario(scenario_id))
        return f"scenario {scenario_id} loaded"

    @app.tool(annotations=READ_ONLY)
    def inventory_state(ctx: Context) -> str:
        """(Environment use) The whole database as canonical JSON."""
        return state_json(db(ctx))

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP, not stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    app = build_server()
    if args.http:
        kwargs: dict[str, Any] = {"host": args.host, "port": args.port}
        app.run("streamable-http", **kwargs)
    else:
        app.run()


if __name__ == "__main__":
    main()
