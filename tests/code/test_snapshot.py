"""``CodeSandbox-v0`` snapshots: the attempt history comes back; a fresh env (its own
sandbox, nothing memoised) replays the same tool results."""

from __future__ import annotations

import json

import pytest

import agentgym
from tests.core.snapshot_replay import branch_and_compare, expert_policy, random_policy

FAST = {"wall_time_s": 3.0, "cpu_time_s": 3.0}


@pytest.mark.parametrize("policy", [random_policy, expert_policy], ids=["random", "expert"])
def test_restores_exactly(policy) -> None:
    env = agentgym.make("CodeSandbox-v0", limits=FAST)
    task_id, other = env.unwrapped.task_ids("train")[0], env.unwrapped.task_ids("test")[0]
    branch = branch_and_compare(
        lambda: agentgym.make("CodeSandbox-v0", limits=FAST),
        task_id,
        other,
        before=1,
        after=4,
        policy=policy,
        env=env,
    )
    env.close()
    if policy is expert_policy:  # ran the solution before the snapshot: submits after it
        assert json.loads(branch.actions[0])["name"] == "submit"
        assert branch.steps[0][4]["success"] and branch.steps[0][1] == 1.0


def test_the_state_key_and_tool_count_come_back() -> None:
    env = agentgym.make("CodeSandbox-v0", limits=FAST)
    base = env.unwrapped
    task_id = base.task_ids("train")[1]
    _, info = env.reset(seed=0, options={"task_id": task_id})
    start_key = info["state_key"]
    code = f"def {base.task.entry_point}(*args):\n    return 0\n"
    _, _, _, _, info = env.step(json.dumps({"name": "run", "arguments": {"code": code}}))
    snap = agentgym.snapshot(env)
    env.reset(seed=0, options={"task_id": task_id})
    fresh = agentgym.make("CodeSandbox-v0", limits=FAST)
    agentgym.restore(fresh, snap)
    _, _, _, _, again = fresh.step("not a tool call")  # invalid: the state stays put
    assert again["state_key"] == info["state_key"] != start_key
    assert again["num_tool_calls"] == info["num_tool_calls"] == 1
    env.close()
    fresh.close()
