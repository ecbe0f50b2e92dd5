"""Batches for the credit tests: hypothesis strategies and hand-built examples."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st


@dataclass(frozen=True)
class Columns:
    """The columns `compute_advantages` takes, plus the estimators' per-row inputs."""

    group: np.ndarray
    traj: np.ndarray
    step: np.ndarray
    reward: np.ndarray
    state: np.ndarray
    stratum: np.ndarray
    action: np.ndarray
    """Parsed action text per row (object array; "" = did not parse)."""
    agent: np.ndarray
    reward_components: np.ndarray
    """(rows, K) reward parts per step."""

    def kwargs(self) -> dict[str, np.ndarray]:
        return {
            "group": self.group,
            "traj": self.traj,
            "step": self.step,
            "reward": self.reward,
            "state": self.state,
        }

    def lists(self) -> dict[str, list]:
        return {name: values.tolist() for name, values in self.kwargs().items()}

    def take(self, rows: np.ndarray) -> Columns:
        return Columns(**{name: getattr(self, name)[rows] for name in _FIELDS})

    def input(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def with_reward(self, reward: np.ndarray) -> Columns:
        return replace(self, reward=np.asarray(reward, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.reward)


_FIELDS = (
    "group",
    "traj",
    "step",
    "reward",
    "state",
    "stratum",
    "action",
    "agent",
    "reward_components",
)
INPUTS = ("stratum", "action", "agent", "reward_components")
"""The per-row inputs estimators ask for by name."""
ACTIONS = ("", "go", "look", "go north")

# Dyadic rewards add up exactly, so ties stay ties however the sums are ordered.
_DYADIC_VALUES = [0.0, 0.0, 1.0, -0.5, 0.25, 2.0]
DYADIC_REWARDS = st.sampled_from(_DYADIC_VALUES)
REAL_REWARDS = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def batches(
    draw: st.DrawFn,
    *,
    max_groups: int = 3,
    max_trajs: int = 5,
    max_len: int = 6,
    n_states: int = 3,
    rewards: st.SearchStrategy[float] | None = None,
    equal_lengths: bool = False,
    shuffle: bool = True,
    n_actions: int = 3,
    n_agents: int = 2,
) -> Columns:
    """Random batches with repeated states and actions, singleton groups and ties."""
    reward_values = rewards if rewards is not None else st.one_of(DYADIC_REWARDS, REAL_REWARDS)
    n_components = draw(st.integers(1, 3))
    inputs_rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows: list[tuple] = []
    traj_id = 0
    for g in range(draw(st.integers(1, max_groups))):
        group_len = draw(st.integers(1, max_len))
        for _ in range(draw(st.integers(1, max_trajs))):
            length = group_len if equal_lengths else draw(st.integers(1, max_len))
            states = draw(st.lists(st.integers(0, n_states - 1), min_size=length, max_size=length))
            values = draw(st.lists(reward_values, min_size=length, max_size=length))
            # the inputs come from a drawn seed: drawing them value by value would
            # triple the cost of every credit test for columns most estimators ignore
            actions = inputs_rng.integers(0, n_actions, size=length)
            agents = inputs_rng.integers(0, n_agents, size=length)
            parts = inputs_rng.choice(_DYADIC_VALUES, size=(length, n_components))
            stratum = draw(st.integers(0, 2))
            for t in range(length):
                # sparse, non-zero-based ids: the library must intern them
                rows.append(
                    (
                        10 * g + 7,
                        100 * traj_id + 3,
                        t,
                        values[t],
                        f"s{states[t]}",
                        stratum,
                        ACTIONS[int(actions[t])],
                        f"agent{int(agents[t])}",
                        parts[t].tolist(),
                    )
                )
            traj_id += 1
    if shuffle:
        rows = draw(st.permutations(rows))
    group, traj, step, reward, state, stratum, action, agent, components = zip(*rows, strict=True)
    return Columns(
        group=np.array(group),
        traj=np.array(traj),
        step=np.array(step),
        reward=np.array(reward, dtype=np.float64),
        state=np.array(state),
        stratum=np.array(stratum),
        action=_objects(action),
        agent=np.array(agent),
        reward_components=np.array(components, dtype=np.float64),
    )


def _objects(values) -> np.ndarray:
    """A 1-D object array of strings, as the trainer passes parsed actions."""
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def from_trajectories(
    trajectories: list[tuple[object, list[float], list[str]]],
    actions: list[list[str]] | None = None,
) -> Columns:
    """Columns from (group, rewards, states) per trajectory, rows in trajectory order.

    ``actions`` (one list per trajectory) fills the action column ("" otherwise); agent is
    "agent" and the reward components are the reward itself (K = 1).
    """
    group, traj, step, reward, state, action = [], [], [], [], [], []
    for index, (g, rewards, states) in enumerate(trajectories):
        acts = actions[index] if actions is not None else [""] * len(rewards)
        for t, (r, s, a) in enumerate(zip(rewards, states, acts, strict=True)):
            group.append(g)
            traj.append(index)
            step.append(t)
            reward.append(r)
            state.append(s)
            action.append(a)
    reward_arr = np.array(reward, dtype=np.float64)
    return Columns(
        group=np.array(group),
        traj=np.array(traj),
        step=np.array(step),
        reward=reward_arr,
        state=np.array(state),
        stratum=np.zeros(len(group), dtype=np.int64),
        action=_objects(action),
        agent=np.array(["agent"] * len(group)),
        reward_components=reward_arr[:, None].copy(),
    )
