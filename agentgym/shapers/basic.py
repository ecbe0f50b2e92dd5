"""Plain efficiency costs: a cost per step and a cost per tool call."""

from __future__ import annotations

import numpy as np

from agentgym.shaping import RewardContext, register_reward_shaper

__all__ = ["step_cost", "tool_call_cost"]


@register_reward_shaper("step_cost")
def step_cost(ctx: RewardContext, *, cost: float = 0.01) -> np.ndarray:
    r"""A constant cost per step: :math:`r'_t = r_t - c`.

    Favours shorter solutions among equally successful ones (an efficiency term, as in
    the "step penalty" of many agent recipes). With group-normalised credit a constant
    per-step cost only matters between trajectories of different lengths.
    """
    return ctx.rewards - cost


@register_reward_shaper("tool_call_cost")
def tool_call_cost(ctx: RewardContext, *, cost: float = 0.05) -> np.ndarray:
    r"""A cost per tool call, charged at the step that made it:
    :math:`r'_t = r_t - c\,(n_t - n_{t-1})`, with :math:`n_t` the env's cumulative
    ``info["num_tool_calls"]`` after step t (0 where the env reports none).

    A plain efficiency penalty on tool use; ``otc`` is the outcome-coupled version of
    the OTC paper.
    """
    calls = np.array(
        [float(s.info.get("num_tool_calls", 0) or 0) for s in ctx.columns.steps()],
        dtype=np.float64,
    )
    previous = np.zeros_like(calls)
    later = ctx.columns.step > 0
    previous[later] = calls[np.flatnonzero(later) - 1]
    return ctx.rewards - cost * np.maximum(calls - previous, 0.0)
