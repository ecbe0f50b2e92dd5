"""The outcome of each trajectory, as the outcome shapers (``otc``, ``egrpo``) read and
replace it."""

from __future__ import annotations

import numpy as np

from agentgym.shaping import RewardContext


def outcome_rows(ctx: RewardContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trajectory: the row of its last step, its outcome reward and the rollout
    engine's penalty on that row.

    The outcome is the last row's current reward (the env's reward there, after any earlier
    shaper) without the penalty the rollout engine added to that step (an invalid-action
    penalty), so chained outcome shapers edit each other's outcome, never the penalty.
    """
    last = ctx.last_rows()
    penalty = np.array(
        [t.steps[-1].reward - t.steps[-1].env_reward for t in ctx.columns.trajectories],
        dtype=np.float64,
    )
    return last, ctx.rewards[last] - penalty, penalty


def with_outcome(ctx: RewardContext, outcome: np.ndarray) -> np.ndarray:
    """New per-row rewards: each trajectory's outcome replaced by ``outcome`` (per
    trajectory); the engine's penalty and every other row are kept."""
    last, _old, penalty = outcome_rows(ctx)
    rewards = np.array(ctx.rewards, dtype=np.float64)
    rewards[last] = np.asarray(outcome, dtype=np.float64) + penalty
    return rewards
