"""Plain-Python loop versions of the credit estimators, written from the papers' formulas.

They are deliberately naive (dicts of lists, one row at a time) and share no code
with ``agentgym.credit``; the tests check the vectorised estimators against them and
``benchmarks/credit_speed.py`` times them. Conventions are the library's documented
ones: sample std (n - 1), ``std + epsilon`` in denominators, and advantage 0 in a
group with fewer than two members or with all values equal.

Every function takes the columns as sequences (``group, traj, step, reward, state``)
plus the estimator's keyword parameters, and returns a list with one float per row.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _std(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _normalize(groups: dict, scale: bool, epsilon: float) -> dict:
    """groups: key -> list of (item, value). Returns item -> value relative to its group.

    A group with fewer than two members or with all values equal gives 0.
    """
    out = {}
    for members in groups.values():
        values = [v for _, v in members]
        if len(values) < 2 or max(values) == min(values):
            for item, _ in members:
                out[item] = 0.0
            continue
        m = _mean(values)
        s = _std(values) + epsilon if scale else 1.0
        for item, v in members:
            out[item] = (v - m) / s
    return out


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _trajectories(traj, step) -> dict:
    """Trajectory id -> its row indices in step order."""
    rows = defaultdict(list)
    for i, t in enumerate(traj):
        rows[t].append(i)
    for members in rows.values():
        members.sort(key=lambda i: step[i])
    return rows


def episode_returns(traj, reward) -> dict:
    returns: dict = defaultdict(float)
    for t, r in zip(traj, reward, strict=True):
        returns[t] += r
    return returns


def returns_to_go(traj, step, reward, gamma: float) -> list[float]:
    out = [0.0] * len(reward)
    for rows in _trajectories(traj, step).values():
        running = 0.0
        for i in reversed(rows):
            running = reward[i] + gamma * running
            out[i] = running
    return out


def _traj_groups(group, traj) -> dict:
    """Trajectory id -> its task group."""
    return {t: g for g, t in zip(group, traj, strict=True)}


def _episode(group, traj, reward, scale, epsilon, stats_over) -> list[float]:
    returns = episode_returns(traj, reward)
    groups = defaultdict(list)
    if stats_over == "trajectories":
        for t, g in _traj_groups(group, traj).items():
            groups[g].append((t, returns[t]))
        per_traj = _normalize(groups, scale, epsilon)
        return [per_traj[t] for t in traj]
    for i, (g, t) in enumerate(zip(group, traj, strict=True)):
        groups[g].append((i, returns[t]))
    per_row = _normalize(groups, scale, epsilon)
    return [per_row[i] for i in range(len(traj))]


def grpo(
    group,
    traj,
    step,
    reward,
    state=None,
    *,
    norm_by_std=True,
    epsilon=1e-6,
    stats_over="trajectories",
):
    return _episode(group, traj, reward, norm_by_std, epsilon, stats_over)


def rloo(
    group, traj, step, reward, state=None, *, stats_over="trajectories", leave_out="trajectory"
):
    returns = episode_returns(traj, reward)
    if leave_out == "row":
        # verl-agent: every row is a sample; leave out only the row itself
        total: dict = defaultdict(float)
        count: dict = defaultdict(int)
        for g, t in zip(group, traj, strict=True):
            total[g] += returns[t]
            count[g] += 1
        out = []
        for g, t in zip(group, traj, strict=True):
            others = count[g] - 1
            out.append(returns[t] - (total[g] - returns[t]) / others if others else 0.0)
        return out
    lengths: dict = defaultdict(int)
    for t in traj:
        lengths[t] += 1
    members = defaultdict(list)
    for t, g in _traj_groups(group, traj).items():
        members[g].append(t)
    per_traj = {}
    for trajs in members.values():
        for t in trajs:
            others = [u for u in trajs if u != t]
            if not others:
                per_traj[t] = 0.0
                continue
            weight = {u: 1.0 if stats_over == "trajectories" else lengths[u] for u in others}
            baseline = sum(weight[u] * returns[u] for u in others) / sum(weight.values())
            per_traj[t] = returns[t] - baseline
    return [per_traj[t] for t in traj]


def median(
    group, traj, step, reward, state=None, *, scale="mad", epsilon=1e-6, stats_over="trajectories"
):
    returns = episode_returns(traj, reward)
    samples = defaultdict(list)
    if stats_over == "trajectories":
        for t, g in _traj_groups(group, traj).items():
            samples[g].append(returns[t])
    else:
        for g, t in zip(group, traj, strict=True):
            samples[g].append(returns[t])

    def from_median(x, g):
        # rounding-level distances to the median are ties (documented tolerance 1e-12)
        d = x - centre[g]
        return 0.0 if abs(d) <= 1e-12 * magnitude[g] else d

    centre, spread, magnitude = {}, {}, {}
    for g, xs in samples.items():
        centre[g] = _median(xs)
        magnitude[g] = max(abs(x) for x in xs)
        deviations = [abs(from_median(x, g)) for x in xs]
        spread[g] = _median(deviations) or _mean(deviations)
    out = []
    for g, t in zip(group, traj, strict=True):
        a = from_median(returns[t], g)
        out.append(a / (spread[g] + epsilon) if scale == "mad" else a)
    return out


def _anchor_advantage(group, state, g_t, scale, epsilon) -> list[float]:
    anchors = defaultdict(list)  # (task group, state) -> (row, return-to-go)
    for i in range(len(g_t)):
        anchors[(group[i], state[i])].append((i, g_t[i]))
    per_row = _normalize(anchors, scale, epsilon)
    return [per_row[i] for i in range(len(g_t))]


def gigpo(
    group,
    traj,
    step,
    reward,
    state,
    *,
    gamma=0.95,
    step_advantage_w=1.0,
    mode="mean_std_norm",
    epsilon=1e-6,
    stats_over="trajectories",
):
    """GiGPO, arXiv:2505.10978: A = A_episode + w * A_step (Eq. 3, 5-8)."""
    scale = mode == "mean_std_norm"
    episode = _episode(group, traj, reward, scale, epsilon, stats_over)
    g_t = returns_to_go(traj, step, reward, gamma)
    step_part = _anchor_advantage(group, state, g_t, scale, epsilon)
    return [e + step_advantage_w * a for e, a in zip(episode, step_part, strict=True)]


def _has_signal(values) -> bool:
    return len(values) >= 2 and max(values) != min(values)


def hgpo(
    group,
    traj,
    step,
    reward,
    state,
    *,
    gamma=0.95,
    history_length=2,
    alpha=1.0,
    weight_offset=1,
    include_episode=False,
    mode="mean_std_norm",
    epsilon=1e-6,
):
    """HGPO, arXiv:2602.22817: levels of equal last-l states, weighted by (l + offset)^alpha."""
    scale = mode == "mean_std_norm"
    g_t = returns_to_go(traj, step, reward, gamma)
    n = len(reward)
    history = {}  # row -> its trajectory's states up to and including the row's step
    for rows in _trajectories(traj, step).values():
        for position, i in enumerate(rows):
            history[i] = tuple(state[j] for j in rows[: position + 1])

    items = [[] for _ in range(n)]  # row -> (weight, advantage) of levels with a signal
    for level in range(1, history_length + 2):
        groups = defaultdict(list)
        for i in range(n):
            if len(history[i]) >= level:
                groups[(group[i], history[i][-level:])].append((i, g_t[i]))
        relative = _normalize(groups, scale, epsilon)
        weight = (level + weight_offset) ** alpha
        for members in groups.values():
            if _has_signal([v for _, v in members]):
                for i, _ in members:
                    items[i].append((weight, relative[i]))
    if include_episode:
        returns = episode_returns(traj, reward)
        groups = defaultdict(list)
        for t, g in _traj_groups(group, traj).items():
            groups[g].append((t, returns[t]))
        relative = _normalize(groups, scale, epsilon)
        weight = float(weight_offset) ** alpha
        with_signal = {g for g, m in groups.items() if _has_signal([v for _, v in m])}
        for i in range(n):
            if group[i] in with_signal:
                items[i].append((weight, relative[traj[i]]))

    out = []
    for row_items in items:
        total = sum(w for w, _ in row_items)
        out.append(sum(w * a for w, a in row_items) / total if total > 0 else 0.0)
    return out


def turn(group, traj, step, reward, state=None, *, gamma=0.95, mode="mean_std_norm", epsilon=1e-6):
    g_t = returns_to_go(traj, step, reward, gamma)
    same_turn = defaultdict(list)
    for i in range(len(reward)):
        same_turn[(group[i], step[i])].append((i, g_t[i]))
    per_row = _normalize(same_turn, mode == "mean_std_norm", epsilon)
    return [per_row[i] for i in range(len(reward))]


def mixed(
    group,
    traj,
    step,
    reward,
    state=None,
    *,
    gamma=0.95,
    turn_weight=0.5,
    mode="mean_std_norm",
    epsilon=1e-6,
):
    per_turn = turn(group, traj, step, reward, gamma=gamma, mode=mode, epsilon=epsilon)
    g_t = returns_to_go(traj, step, reward, gamma)
    whole = _normalize({0: list(enumerate(g_t))}, mode == "mean_std_norm", epsilon)
    return [turn_weight * per_turn[i] + (1 - turn_weight) * whole[i] for i in range(len(reward))]


def stratified(
    group, traj, step, reward, state=None, *, stratum, alpha=0.5, norm_by_std=True, epsilon=1e-6
):
    returns = episode_returns(traj, reward)
    by_group = defaultdict(list)
    by_stratum = defaultdict(list)
    for t, (g, s) in {t: (g, s) for g, t, s in zip(group, traj, stratum, strict=True)}.items():
        by_group[g].append((t, returns[t]))
        by_stratum[(g, s)].append((t, returns[t]))
    san = _normalize(by_stratum, norm_by_std, epsilon)
    whole = _normalize(by_group, norm_by_std, epsilon)
    return [alpha * san[t] + (1 - alpha) * whole[t] for t in traj]


def _base_advantage(group, traj, reward, base, norm_by_std, epsilon) -> dict:
    """Trajectory id -> its grpo (over trajectories) or rloo advantage."""
    returns = episode_returns(traj, reward)
    groups = defaultdict(list)
    for t, g in _traj_groups(group, traj).items():
        groups[g].append((t, returns[t]))
    if base == "grpo":
        return _normalize(groups, norm_by_std, epsilon)
    out = {}
    for members in groups.values():
        for t, r in members:
            others = [v for u, v in members if u != t]
            out[t] = r - _mean(others) if others else 0.0
    return out


def _steps_so_far(traj, step) -> dict:
    """Row -> the rows of its trajectory up to and including it, in step order."""
    out = {}
    for rows in _trajectories(traj, step).values():
        for position, i in enumerate(rows):
            out[i] = rows[: position + 1]
    return out


def salt(
    group,
    traj,
    step,
    reward,
    state,
    *,
    action,
    node="state_action",
    base="grpo",
    norm_by_std=True,
    epsilon=1e-6,
):
    """SALT, arXiv:2510.20022: mean base advantage of the distinct trajectories in a node."""
    advantage = _base_advantage(group, traj, reward, base, norm_by_std, epsilon)
    so_far = _steps_so_far(traj, step)

    def key(i):
        if node == "state_action":
            return (group[i], state[i], action[i])
        return (group[i], tuple(state[j] for j in so_far[i]), action[i])

    through = defaultdict(set)  # node -> trajectories with a step in it
    for i in range(len(reward)):
        through[key(i)].add(traj[i])
    return [_mean([advantage[t] for t in through[key(i)]]) for i in range(len(reward))]


def tempo(
    group,
    traj,
    step,
    reward,
    state=None,
    *,
    action,
    td_weight=1.0,
    prefix="actions",
    base="grpo",
    norm_by_std=True,
    epsilon=1e-6,
):
    """TEMPO at step level, arXiv:2509.18314: A_i + lambda (V(a_0..a_t) - V(a_0..a_{t-1}))."""
    advantage = _base_advantage(group, traj, reward, base, norm_by_std, epsilon)
    so_far = _steps_so_far(traj, step)

    def token(j):
        return action[j] if prefix == "actions" else (state[j], action[j])

    through = defaultdict(set)  # (group, prefix tuple) -> trajectories; () is the root
    for i in range(len(reward)):
        path = tuple(token(j) for j in so_far[i])
        through[(group[i], path)].add(traj[i])
        through[(group[i], ())].add(traj[i])

    def value(node):
        return _mean([advantage[t] for t in through[node]])

    out = []
    for i in range(len(reward)):
        path = tuple(token(j) for j in so_far[i])
        td = value((group[i], path)) - value((group[i], path[:-1]))
        out.append(advantage[traj[i]] + td_weight * td)
    return out


def drmas(
    group,
    traj,
    step,
    reward,
    state=None,
    *,
    agent,
    norm_by_std=True,
    epsilon=1e-6,
    stats_over="steps",
):
    """Dr. MAS, arXiv:2602.08847: R_i normalised within (task group, agent)."""
    returns = episode_returns(traj, reward)
    buckets = defaultdict(list)
    if stats_over == "steps":
        for i in range(len(reward)):
            buckets[(group[i], agent[i])].append((i, returns[traj[i]]))
        per_row = _normalize(buckets, norm_by_std, epsilon)
        return [per_row[i] for i in range(len(reward))]
    seen = set()
    for i in range(len(reward)):
        pair = (group[i], agent[i], traj[i])
        if pair not in seen:
            seen.add(pair)
            buckets[(group[i], agent[i])].append((pair, returns[traj[i]]))
    per_pair = _normalize(buckets, norm_by_std, epsilon)
    return [per_pair[(group[i], agent[i], traj[i])] for i in range(len(reward))]


def gdpo(
    group,
    traj,
    step,
    reward,
    state=None,
    *,
    reward_components,
    component_weights=None,
    norm_by_std=True,
    epsilon=1e-6,
):
    """GDPO, arXiv:2601.05242: per-component group normalisation, weighted sum, batch norm."""
    k_count = len(reward_components[0])
    weights = component_weights if component_weights is not None else [1.0] * k_count
    sums: dict = defaultdict(lambda: [0.0] * k_count)
    for i, t in enumerate(traj):
        for k in range(k_count):
            sums[t][k] += reward_components[i][k]
    groups = _traj_groups(group, traj)
    total = defaultdict(float)
    for k in range(k_count):
        by_group = defaultdict(list)
        for t, g in groups.items():
            by_group[g].append((t, sums[t][k]))
        normalized = _normalize(by_group, norm_by_std, epsilon)
        for t in groups:
            total[t] += weights[k] * normalized[t]
    whole = _normalize({0: list(total.items())}, True, epsilon)
    return [whole[t] for t in traj]


LOOPS = {
    "grpo": grpo,
    "rloo": rloo,
    "median": median,
    "gigpo": gigpo,
    "hgpo": hgpo,
    "turn": turn,
    "mixed": mixed,
    "stratified": stratified,
    "salt": salt,
    "tempo": tempo,
    "drmas": drmas,
    "gdpo": gdpo,
}
