"""``agentgym/MCP-v0``: the tools of any MCP server (stdio or streamable HTTP) as an env.

* :class:`MCPEnv` -- the environment (``env.py``);
* :class:`MCPConnection` -- a synchronous connection to one MCP server (``client.py``);
* :mod:`.tasks` -- JSONL tasks and their checkers (exact answer, regex, Python function);
* :mod:`.inventory` -- the shipped MCP server (a warehouse database) and its tasks.

Needs the ``mcp`` extra (``pip install 'agentgym[mcp]'``).
"""

from agentgym.envs.mcp.client import (
    MCPConnection,
    MCPConnectionError,
    ServerSpec,
    ToolInfo,
    ToolResult,
)
from agentgym.envs.mcp.env import MCPEnv
from agentgym.envs.mcp.tasks import MCPTask, load_tasks, normalize_answer, score_answer

__all__ = [
    "MCPConnection",
    "MCPConnectionError",
    "MCPEnv",
    "MCPTask",
    "ServerSpec",
    "ToolInfo",
    "ToolResult",
    "load_tasks",
    "normalize_answer",
    "score_answer",
]
