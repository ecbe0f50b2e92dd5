"""``WebShop-v0`` snapshots: the page, the visited products and the purchase come back."""

from __future__ import annotations

import pytest

import agentgym
from tests.core.snapshot_replay import branch_and_compare, expert_policy, random_policy


@pytest.mark.parametrize("mode", ["text", "text_rich"])
@pytest.mark.parametrize("policy", [random_policy, expert_policy], ids=["random", "expert"])
@pytest.mark.parametrize("before", [0, 3])
def test_restores_exactly(mode: str, policy, before: int) -> None:
    branch = branch_and_compare(
        lambda: agentgym.make("WebShop-v0", observation_mode=mode),
        "ws-3",
        "ws-15",
        before=before,
        after=12,
        policy=policy,
    )
    if policy is expert_policy:  # the expert buys: the purchase's reward replays too
        assert any(step[2] and step[1] > 0 for step in branch.steps)


def test_visited_products_stay_marked_after_a_restore() -> None:
    """``text_rich`` marks visited products: that memory is part of the snapshot."""
    env = agentgym.make("WebShop-v0", observation_mode="text_rich")
    base = env.unwrapped
    env.reset(seed=0, options={"task_id": "ws-3"})
    for _ in range(3):  # search, open a product, back to the results
        env.step(base.expert_action())
    env.step("click[< prev]")
    snap = agentgym.snapshot(env)
    assert snap.state[1] and "[clicked button]" in snap.last_obs
    fresh = agentgym.make("WebShop-v0", observation_mode="text_rich")
    agentgym.restore(fresh, snap)
    assert fresh.unwrapped.page == base.page
    assert fresh.step("click[next >]") == env.step("click[next >]")
