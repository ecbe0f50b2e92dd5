"""Credit on branching rollouts: ``treepo`` and ``logo`` against plain loops over random
trees, invariants, GiGPO's step groups at branch points, and shared steps trained once."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest

from agentgym.credit import compute_advantages, estimator_inputs
from agentgym.credit.anchor import step_groups
from agentgym.credit.batch import CreditBatch
from agentgym.inputs import fill_inputs
from agentgym.parsers import get_parser
from agentgym.policies import SamplingParams, make_policy
from agentgym.rollout import (
    EnvSpec,
    PromptBuilder,
    PromptConfig,
    RolloutEngine,
    make_pool,
    sample_tasks,
)
from agentgym.rollout.strategies import make_strategy
from agentgym.trainers.batch import IterationBatch
from agentgym.trajectory import flatten

# ----------------------------------------------------------------------------- data


def random_forest(rng: np.random.Generator, groups: int = 4) -> dict[str, np.ndarray]:
    """Columns of random rollout trees: per group 1-3 roots, segments of 1-3 steps, 2-3
    children per branch point; a shared step has one reward in every leaf."""
    rows: dict[str, list] = defaultdict(list)
    next_node = [0]
    rewards: dict[int, float] = {}
    traj = [0]

    def grow(g: int, path: list[int], depth: int) -> None:
        segment = []
        for _ in range(int(rng.integers(1, 4))):
            node = next_node[0]
            next_node[0] += 1
            rewards[node] = float(rng.choice([0.0, 0.0, 1.0, -0.5]))
            segment.append(node)
        path = path + segment
        if depth < 2 and rng.random() < 0.7:
            for _ in range(int(rng.integers(2, 4))):
                grow(g, path, depth + 1)
            return
        for step, node in enumerate(path):
            rows["group"].append(g)
            rows["traj"].append(traj[0])
            rows["step"].append(step)
            rows["reward"].append(rewards[node])
            rows["node"].append(node)
        traj[0] += 1

    for g in range(groups):
        for _ in range(int(rng.integers(1, 4))):
            grow(g, [], 0)
    return {k: np.asarray(v) for k, v in rows.items()}


def leaves_by_node(cols: dict[str, np.ndarray]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for node, traj in zip(cols["node"], cols["traj"], strict=True):
        out[int(node)].add(int(traj))
    return out


def paths(cols: dict[str, np.ndarray]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for node, traj in zip(cols["node"], cols["traj"], strict=True):
        out[int(traj)].append(int(node))
    return out


def returns(cols: dict[str, np.ndarray]) -> dict[int, float]:
    out: dict[int, float] = defaultdict(float)
    for r, traj in zip(cols["reward"], cols["traj"], strict=True):
        out[int(traj)] += float(r)
    return out


def group_of(cols: dict[str, np.ndarray]) -> dict[int, int]:
    return {int(t): int(g) for t, g in zip(cols["traj"], cols["group"], strict=True)}


def grpo_loop(values: dict, members: list, eps: float = 1e-6, scale: bool = True) -> dict:
    """GRPO among ``members`` (keys of ``values``): mean/std (ddof=1); 0 when all equal."""
    xs = np.array([values[m] for m in members], dtype=float)
    if len(xs) < 2 or np.all(xs == xs[0]):
        return dict.fromkeys(members, 0.0)
    centred = xs - xs.mean()
    if scale:
        centred = centred / (xs.std(ddof=1) + eps)
    return dict(zip(members, centred, strict=True))


# ----------------------------------------------------------------------------- loops


def treepo_loop(cols, aggregate="mean", root_group=True, norm="batch_std", eps=1e-6):
    below = leaves_by_node(cols)
    ret, grp, path = returns(cols), group_of(cols), paths(cols)
    group_leaves: dict[int, set[int]] = defaultdict(set)
    for t, g in grp.items():
        group_leaves[g].add(t)
    leaf: dict[int, float] = {}
    for t in sorted(path):
        terms = []  # (weight, term)
        whole = group_leaves[grp[t]]
        if root_group and len(whole) >= 2:
            mean = np.mean([ret[j] for j in whole])
            terms.append((len(whole) if aggregate == "size" else 1.0, ret[t] - mean))
        previous = whole
        for node in path[t]:
            s = below[node]
            if len(s) >= 2 and s != previous:
                mean = np.mean([ret[j] for j in s])
                terms.append((len(s) if aggregate == "size" else 1.0, ret[t] - mean))
            previous = s
        weight = sum(w for w, _ in terms)
        leaf[t] = sum(w * x for w, x in terms) / weight if weight else 0.0
    values = np.array([leaf[t] for t in sorted(leaf)])
    if norm != "none" and len(values) >= 2:
        centre = values.mean() if norm == "whiten" else 0.0
        values = (values - centre) / (values.std(ddof=1) + eps)
    leaf = dict(zip(sorted(leaf), values, strict=True))
    return np.array([np.mean([leaf[j] for j in below[int(n)]]) for n in cols["node"]])


def logo_loop(cols, branch=None, weight=1.0, scope="step", eps=1e-6):
    ret, grp, path = returns(cols), group_of(cols), paths(cols)
    below = leaves_by_node(cols)
    start = dict.fromkeys(path, -1)
    if branch is not None:
        start.update({int(t): int(b) for t, b in zip(cols["traj"], branch, strict=True)})
    by_group: dict[tuple[bool, int], list[int]] = defaultdict(list)
    for t in sorted(path):
        by_group[(start[t] >= 0, grp[t])].append(t)
    adv = {}
    for members in by_group.values():
        adv.update(grpo_loop(ret, members, eps))
    parent: dict[int, int] = {}
    for nodes in path.values():
        for a, b in itertools.pairwise(nodes):
            parent[b] = a
    children: dict[int, set[int]] = defaultdict(set)
    for child, p in parent.items():
        children[p].add(child)
    value = {n: np.mean([ret[j] for j in below[n]]) for n in below}
    tree_local: dict[int, float] = {}
    for kids in children.values():
        if len(kids) >= 2:
            tree_local.update(grpo_loop(value, sorted(kids), eps))
    out = []
    for t, s, node in zip(cols["traj"], cols["step"], cols["node"], strict=True):
        t, s, node = int(t), int(s), int(node)
        rerolled = start[t] >= 0
        a = 0.0 if rerolled else adv[t]
        local = adv[t] if rerolled and (s == 0 or scope == "continuation") else 0.0
        local += tree_local.get(node, 0.0)
        out.append(a + weight * local)
    return np.array(out)


def run(name: str, cols: dict[str, np.ndarray], **kw) -> np.ndarray:
    base = {k: cols[k] for k in ("group", "traj", "step", "reward")}
    return compute_advantages(name, **base, **kw)


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"aggregate": "size"},
        {"root_group": False},
        {"norm": "whiten"},
        {"norm": "none"},
    ],
)
def test_treepo_matches_a_loop_over_subtrees(seed: int, settings: dict) -> None:
    cols = random_forest(np.random.default_rng(seed))
    got = run("treepo", cols, node=cols["node"], **settings)
    np.testing.assert_allclose(got, treepo_loop(cols, **settings), atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_logo_matches_a_loop_on_trees(seed: int) -> None:
    cols = random_forest(np.random.default_rng(100 + seed))
    for weight in (0.0, 0.5):
        got = run("logo", cols, node=cols["node"], local_weight=weight)
        np.testing.assert_allclose(got, logo_loop(cols, weight=weight), atol=1e-9)


def test_logo_on_local_rerolls() -> None:
    # group 0: three whole episodes; group 1: three re-rolls of step 2 of one of them
    cols = {
        "group": np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
        "traj": np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 5]),
        "step": np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1]),
        "reward": np.array([0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.25, 0.0, 0.0, 1.0, 0.0]),
    }
    branch = np.array([-1] * 6 + [2] * 5)
    cols["node"] = np.arange(11)
    for scope in ("step", "continuation"):
        got = run("logo", cols, branch=branch, local_weight=0.5, scope=scope)
        np.testing.assert_allclose(got, logo_loop(cols, branch, 0.5, scope), atol=1e-9)
    got = run("logo", cols, branch=branch, local_weight=0.5)
    # the global term is GRPO of the whole episodes alone
    whole = {k: v[:6] for k, v in cols.items()}
    np.testing.assert_allclose(got[:6], run("grpo", whole), atol=1e-12)
    assert got[7] == 0.0 and got[6] != 0.0  # continuation steps: no term (scope "step")


def test_without_trees_treepo_is_centred_and_logo_is_grpo() -> None:
    rng = np.random.default_rng(3)
    group = np.repeat(np.arange(5), 8)
    cols = {"group": group, "traj": np.arange(40), "step": np.zeros(40, int)}
    cols["reward"] = rng.choice([0.0, 1.0], size=40)
    got = run("treepo", cols)
    centred = cols["reward"] - np.repeat(cols["reward"].reshape(5, 8).mean(1), 8)
    np.testing.assert_allclose(got, centred / (centred.std(ddof=1) + 1e-6), atol=1e-12)
    np.testing.assert_allclose(run("logo", cols), run("grpo", cols), atol=1e-12)


@pytest.mark.parametrize("name", ["treepo", "logo"])
def test_invariants(name: str) -> None:
    cols = random_forest(np.random.default_rng(9))
    base = run(name, cols, node=cols["node"])
    # every return shifted alike (the last step of a leaf is its own): nothing changes
    last = np.r_[cols["traj"][1:] != cols["traj"][:-1], True]
    shifted = dict(cols, reward=cols["reward"] + 3.0 * last)
    np.testing.assert_allclose(run(name, shifted, node=cols["node"]), base, atol=1e-9)
    # rows in any order give the same advantages
    perm = np.random.default_rng(1).permutation(len(cols["traj"]))
    shuffled = {k: v[perm] for k, v in cols.items()}
    np.testing.assert_allclose(run(name, shuffled, node=shuffled["node"]), base[perm], atol=1e-9)


def test_a_node_that_is_not_one_shared_step_is_refused() -> None:
    cols = random_forest(np.random.default_rng(0))
    bad = cols["node"].copy()
    bad[1] = bad[0]  # two steps of one trajectory named as one node
    with pytest.raises(ValueError, match="`node` must name one step of one task group"):
        run("treepo", cols, node=bad)


def tree_rollouts(style: str = "window"):
    parser = get_parser("think_action")
    eng = RolloutEngine(
        make_pool("inline", EnvSpec("Sokoban-v0"), 8),
        make_policy("random"),
        parser,
        PromptBuilder(PromptConfig(style=style), parser),
        SamplingParams(seed=0),
        max_steps=6,
        strategy=make_strategy("tree", {"roots": 2, "depths": [1, 3]}),
    )
    trajs = eng.run(sample_tasks(EnvSpec("Sokoban-v0"), "train", 4, seed=0), n=8)
    eng.close()
    # tokens for the samples: every stored step gets its own (prompt, response) ids
    for number, step in enumerate({id(s): s for t in trajs for s in t.steps}.values()):
        step.response_ids, step.response_logprobs = [number % 50 + 3, 7], [-1.0, -0.5]
        step.prompt_ids = [1, 2, number % 50 + 60]
    return trajs


def test_gigpo_gives_every_branching_step_a_step_group() -> None:
    trajs = tree_rollouts()
    cols = flatten(trajs)
    batch = CreditBatch.from_columns(**cols.credit_kwargs())
    keys, _ = step_groups(batch)
    nodes_of_key: dict[int, set[int]] = defaultdict(set)
    for key, node in zip(keys, cols.node, strict=True):
        nodes_of_key[int(key)].add(int(node))
    # a branching step: the first step of a child of a branch point (or of a root)
    parent = {}
    for t in trajs:
        for a, b in zip(t.metadata["nodes"], t.metadata["nodes"][1:], strict=False):
            parent[(t.group_id, b)] = a
    children: dict[tuple[str, int], set[int]] = defaultdict(set)
    for (group, child), p in parent.items():
        children[(group, p)].add(child)
    branching = {
        (group, kid) for (group, _), kids in children.items() if len(kids) >= 2 for kid in kids
    }
    assert branching, "the trees never branched"
    row_keys = [
        (trajs[t].group_id, trajs[t].metadata["nodes"][s])
        for t, s in zip(cols.traj, cols.step, strict=True)
    ]
    checked = 0
    for row, key in enumerate(row_keys):
        if key in branching:
            assert len(nodes_of_key[int(keys[row])]) >= 2, key  # siblings share a state
            checked += 1
    assert checked >= len(branching)
    adv = compute_advantages("gigpo", **cols.credit_kwargs())
    assert np.isfinite(adv).all()


@pytest.mark.parametrize("style", ["window", "chat"])
def test_shared_steps_are_trained_once_with_their_subtree_mean(style: str) -> None:
    trajs = tree_rollouts(style)
    if style == "chat":  # each leaf one growing conversation (shared steps: shared ids)
        done: set[int] = set()
        for t in trajs:
            previous = None
            for step in t.steps:
                if id(step) not in done:
                    head = [1, 2] if previous is None else previous.prompt_ids
                    tail = [] if previous is None else [*previous.response_ids, 9]
                    step.prompt_ids = head + tail
                    done.add(id(step))
                previous = step
    batch = IterationBatch.from_rollouts(1, trajs)
    batch.compute_advantages("gigpo", {})
    batch.build_samples(style)
    nodes = batch.columns.node
    assert batch.columns.has_shared_steps
    if style == "chat":  # one sample per leaf; each stored step's response masked once
        assert len(batch.samples) == len(trajs)
        trained = sum(len({x for x in s.segment if x >= 0}) for s in batch.samples)
        assert trained == len(np.unique(nodes)) < len(nodes)
        return
    assert len(batch.samples) == len(np.unique(nodes)) < len(nodes)
    per_traj = batch.step_advantages()
    mean = np.bincount(nodes, weights=batch.advantages) / np.bincount(nodes)
    for row, (t, s) in enumerate(zip(batch.columns.traj, batch.columns.step, strict=True)):
        assert per_traj[t][s] == pytest.approx(mean[nodes[row]])
    for sample in batch.samples:
        node = nodes[
            (batch.columns.traj == sample.traj_index) & (batch.columns.step == sample.step_index)
        ]
        assert sample.advantages[-1] == pytest.approx(mean[node[0]])


def test_inputs_are_filled_by_name() -> None:
    assert estimator_inputs("treepo") == ["node"]
    assert set(estimator_inputs("logo")) == {"node", "branch"}
    cols = flatten(tree_rollouts())
    filled = fill_inputs(["node", "branch"], cols)
    assert (filled["branch"] == -1).all() and filled["node"].max() + 1 < len(cols)
