"""``Search-v0`` snapshots: history, retrieved passages and counters come back exactly."""

from __future__ import annotations

import pickle

import pytest

import agentgym
from tests.core.snapshot_replay import branch_and_compare, expert_policy, random_policy

CONFIGS = {
    "tags": {"protocol": "tags"},
    "tools": {"protocol": "tools", "reward": "f1"},
    "search_r1": {"tag_mode": "search_r1", "reward": "format_em"},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("policy", [random_policy, expert_policy], ids=["random", "expert"])
def test_restores_exactly(name: str, policy) -> None:
    kwargs = {**CONFIGS[name], "max_steps": 8}
    branch = branch_and_compare(
        lambda: agentgym.make("Search-v0", **kwargs),
        "train-4",
        "test-2",
        before=2,
        after=6,
        policy=policy,
    )
    assert branch.snapshot.state[3] >= 1 or policy is random_policy  # searches were saved


def test_format_reward_remembers_the_turns_before_the_snapshot() -> None:
    """Search-R1's format reward reads the whole history (a malformed turn, the
    information shown): a restored episode is scored on its own past, not a clean one."""

    def make():
        return agentgym.make("Search-v0", tag_mode="search_r1", reward="format_em", max_steps=8)

    env = make()
    base = env.unwrapped
    env.reset(seed=0, options={"task_id": "train-1"})
    env.step("I think the answer is obvious.")  # no tag: an invalid, malformed turn
    while True:
        action = base.expert_action()
        if "<answer>" in action:
            break
        env.step(action)
    snap = agentgym.snapshot(env)
    reward = env.step(action)[1]

    clean = make()
    clean.reset(seed=0, options={"task_id": "train-1"})
    for _ in range(8):
        _, clean_reward, terminated, *_ = clean.step(clean.unwrapped.expert_action())
        if terminated:
            break
    assert reward != clean_reward  # the malformed turn costs format reward

    fresh = make()
    agentgym.restore(fresh, pickle.loads(pickle.dumps(snap)))
    assert fresh.unwrapped.expert_action() == action
    assert fresh.step(action)[1] == reward
