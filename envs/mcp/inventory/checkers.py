"""Python checkers of the inventory tasks: they read the database the agent left behind.

A checker is called as ``checker(answer, task, call_tool, **checker_args)`` (see
:mod:`agentgym.envs.mcp.tasks`) and returns a score in [0, 1].
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from agentgym.envs.mcp.inventory.world import scenario, state_json


def state_is(
    answer: str,
    task: Any,
    call_tool: Callable[[str, Mapping[str, Any]], Any],
    scenario_id: int,
    changes: Mapping[str, Mapping[str, Any]],
) -> float:
    """1 when the database is scenario ``scenario_id`` with exactly ``changes`` applied
    (``{sku: {field: value}}``) and nothing else touched, else 0. The answer is ignored."""
    result = call_tool("inventory_state", {})
    if not result.ok:
        return 0.0
    expected = scenario(scenario_id)
    for sku, fields in changes.items():
        for key, value in fields.items():
            setattr(expected[sku], key, value)
    return float(json.loads(result.text) == json.loads(state_json(expected)))
