"""``agentgym/ReasoningGym-v0`` and ``agentgym/ReasoningGymTools-v0``: reasoning-gym's
procedural generators as single-turn tasks, or multi-turn with a calculator/Python tool.

* :class:`ReasoningGymEnv` -- the environment (``env.py``);
* :func:`calculate` -- the calculator tool (``calculator.py``).

Needs the ``reasoning-gym`` extra (``pip install 'agentgym[reasoning-gym]'``).
"""

from agentgym.envs.reasoning.calculator import CalculatorError, calculate
from agentgym.envs.reasoning.env import ReasoningGymEnv, tool_schemas

__all__ = ["CalculatorError", "ReasoningGymEnv", "calculate", "tool_schemas"]
