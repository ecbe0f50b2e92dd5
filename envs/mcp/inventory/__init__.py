"""The shipped MCP server of ``agentgym/MCP-v0``: a warehouse inventory database.

* :mod:`.world` -- seeded scenarios (the database contents);
* :mod:`.server` -- the MCP server (``python -m agentgym.envs.mcp.inventory.server``);
* :mod:`.generate` -- writes the tasks and their expert solutions;
* :mod:`.checkers` -- Python checkers that inspect the database.

Nothing here imports the ``mcp`` SDK except :mod:`.server`.
"""
