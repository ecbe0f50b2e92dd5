"""A second MCP server for the MCP adapter tests: a counter, plus tools that misbehave.

``python -m tests.integrations.mcp_fault_server`` serves it over stdio. ``counter_is`` is a
Python task checker that reads the counter back through the server.
"""

from __future__ import annotations

import os
import time
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

app = MCPServer("fault-server", log_level="WARNING")
COUNTER = {"value": 0}


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def read() -> str:
    """The counter's value."""
    return str(COUNTER["value"])


@app.tool()
def bump(by: int) -> str:
    """Add to the counter."""
    COUNTER["value"] += by
    return f"counter is {COUNTER['value']}"


@app.tool()
def reset() -> str:
    """(Environment use) Set the counter to zero."""
    COUNTER["value"] = 0
    return "reset"


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def nap(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return "awake"


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def refuse() -> str:
    """Always fails."""
    raise ToolError("I never work")


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def crash() -> str:
    """Kills the server process."""
    os._exit(3)


def counter_is(answer: str, task: Any, call_tool: Any, value: int) -> float:
    """Task checker: 1 when the counter reads ``value``."""
    result = call_tool("read", {})
    return float(result.ok and result.text.strip() == str(value))


def broken_checker(answer: str, task: Any, call_tool: Any) -> float:
    """Task checker with a bug."""
    raise KeyError("oops")


if __name__ == "__main__":
    app.run()
