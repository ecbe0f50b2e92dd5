"""The built-in reward shapers (``algorithm.reward_shaping``), registered on import.

* :mod:`.basic` -- ``step_cost`` and ``tool_call_cost``: plain efficiency costs;
* :mod:`.otc` -- ``otc``: OTC-PO's tool-call-aware outcome reward (Wang et al. 2025);
* :mod:`.entities` -- ``egrpo``: E-GRPO's entity-aware partial credit (Zhao et al. 2025).

:mod:`agentgym.shaping` (the registry) imports this package, so every shaper here is
selectable by name wherever the registry is. Plugins register theirs the same way
(``@register_reward_shaper``; see ``docs/credit.md``).
"""

from agentgym.shapers import basic, entities, otc
from agentgym.shapers.basic import step_cost, tool_call_cost
from agentgym.shapers.entities import egrpo, entity_match_rate
from agentgym.shapers.otc import OTC, otc_tool_reward

__all__ = [
    "OTC",
    "basic",
    "egrpo",
    "entities",
    "entity_match_rate",
    "otc",
    "otc_tool_reward",
    "step_cost",
    "tool_call_cost",
]
