"""Each estimator on small batches whose advantages were computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from agentgym.credit import CreditBatch, compute_advantages
from agentgym.credit.anchor import step_groups

from .batches import from_trajectories

# Group "a": three rollouts with returns 1, 0, 1; group "b": one rollout.
# Rows in order: (t0,s0) (t0,s1) (t1,s0) (t1,s1) (t2,s0) (t3,s0).
EPISODES = from_trajectories(
    [
        ("a", [0.0, 1.0], ["s0", "s1"]),
        ("a", [0.0, 0.0], ["s0", "s2"]),
        ("a", [1.0], ["s0"]),
        ("b", [2.0], ["s0"]),
    ]
)
# sample std of returns (1, 0, 1) is sqrt(1/3)
ROOT3 = np.sqrt(3.0)


NEEDS = {
    "salt": "action",
    "tempo": "action",
    "drmas": "agent",
    "gdpo": "reward_components",
}


def run(name, columns=EPISODES, **params):
    if name in NEEDS:
        params.setdefault(NEEDS[name], columns.input(NEEDS[name]))
    return compute_advantages(name, **columns.kwargs(), **params)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-9)


def test_grpo_mean_std_over_trajectories():
    a, b = 1 / ROOT3, -2 / ROOT3  # (1 - 2/3) / sqrt(1/3), (0 - 2/3) / sqrt(1/3)
    close(run("grpo"), [a, a, b, b, a, 0.0])


def test_grpo_mean_only_is_dr_grpo():
    close(run("grpo", norm_by_std=False), [1 / 3, 1 / 3, -2 / 3, -2 / 3, 1 / 3, 0.0])


def test_grpo_statistics_over_step_rows_like_verl_agent():
    # samples are rows: returns 1, 1, 0, 0, 1 -> mean 0.6, sample std sqrt(0.3)
    s = np.sqrt(0.3)
    close(run("grpo", stats_over="steps"), [0.4 / s, 0.4 / s, -0.6 / s, -0.6 / s, 0.4 / s, 0.0])


def test_rloo():
    close(run("rloo"), [0.5, 0.5, -1.0, -1.0, 0.5, 0.0])


def test_rloo_leaving_out_only_the_row_like_verl_agent():
    # group a as rows: returns 1, 1 (t0), 0, 0 (t1), 1 (t2); M = 5 rows, S = 3
    # A = (M R - S) / (M - 1): t0 (5 - 3) / 4, t1 -3 / 4, t2 (5 - 3) / 4
    expected = [0.5, 0.5, -0.75, -0.75, 0.5, 0.0]
    close(run("rloo", stats_over="steps", leave_out="row"), expected)
    # = the trajectory variant times (M - L_i) / (M - 1): 3/4 for t0, t1 and 1 for t2
    whole = run("rloo", stats_over="steps")
    close(whole * np.array([0.75, 0.75, 0.75, 0.75, 1.0, 1.0]), expected)


def test_rloo_weighting_others_by_their_steps():
    # t0: others t1 (2 steps, 0) and t2 (1 step, 1) -> baseline 1/3
    # t1: others t0 (2 steps, 1) and t2 (1 step, 1) -> baseline 1
    # t2: others t0 (2 steps, 1) and t1 (2 steps, 0) -> baseline 1/2
    close(run("rloo", stats_over="steps"), [2 / 3, 2 / 3, -1.0, -1.0, 0.5, 0.0])


def test_median_with_the_mean_absolute_deviation_fallback():
    # returns 1, 0, 1: median 1, MAD 0 -> fallback mean |R - med| = 1/3
    close(run("median"), [0.0, 0.0, -3.0, -3.0, 0.0, 0.0])
    close(run("median", scale="none"), [0.0, 0.0, -1.0, -1.0, 0.0, 0.0])


def test_median_with_a_mad():
    columns = from_trajectories([("g", [r], ["s"]) for r in (0.0, 1.0, 2.0, 10.0)])
    # median 1.5, deviations 1.5, .5, .5, 8.5 -> MAD 1.0
    close(run("median", columns), [-1.5, -0.5, 0.5, 8.5])


def test_median_treats_rounding_noise_as_a_tie():
    # returns 0.1 + 0.2 = 0.30000000000000004, 0.3, 0.3, 0: median 0.3, and the first
    # return is a tie, not a deviation of 5e-17 (which would make the MAD 3e-17 and
    # the last advantage about -3e5)
    columns = from_trajectories(
        [
            ("g", [0.1, 0.2], ["s", "s"]),
            ("g", [0.3], ["s"]),
            ("g", [0.3], ["s"]),
            ("g", [0.0], ["s"]),
        ]
    )
    close(run("median", columns, epsilon=1e-12), [0.0, 0.0, 0.0, 0.0, -0.3 / 0.075])


def test_gigpo_mean_norm():
    # episode part: 1/3, 1/3, -2/3, -2/3, 1/3, 0
    # returns-to-go with gamma 0.5: t0: 0.5, 1; t1: 0, 0; t2: 1; t3: 2
    # anchor (a, s0) = rows 0, 2, 4 with returns 0.5, 0, 1 -> -mean: 0, -0.5, 0.5;
    # every other anchor state is a singleton -> 0
    close(
        run("gigpo", gamma=0.5, mode="mean_norm"),
        [1 / 3, 1 / 3, -2 / 3 - 0.5, -2 / 3, 1 / 3 + 0.5, 0.0],
    )


def test_gigpo_mean_std_norm_and_step_weight():
    a, b = 1 / ROOT3, -2 / ROOT3
    # anchor (a, s0): returns 0.5, 0, 1 -> sample std 0.5 -> 0, -1, 1
    close(run("gigpo", gamma=0.5), [a, a, b - 1, b, a + 1, 0.0])
    close(run("gigpo", gamma=0.5, step_advantage_w=0.5), [a, a, b - 0.5, b, a + 0.5, 0.0])


def test_gigpo_similarity_merges_near_identical_text_states():
    columns = from_trajectories(
        [
            ("g", [1.0], ["You are in the kitchen. A fridge is here."]),
            ("g", [0.0], ["You are in the kitchen. A fridge is here!"]),
        ]
    )
    exact = run("gigpo", columns, mode="mean_norm")
    close(exact, [0.5, -0.5])  # distinct states: step part 0
    merged = run("gigpo", columns, mode="mean_norm", similarity_threshold=0.9)
    close(merged, [1.0, -1.0])
    jaccard = run(
        "gigpo", columns, mode="mean_norm", similarity_threshold=0.7, similarity="jaccard"
    )
    close(jaccard, [1.0, -1.0])


# HGPO and turn-level examples: gamma 1, mean_norm, so returns-to-go are
# t0: 1, 1   t1: 0, 0   t2: 0.5, 0.5
HISTORY = from_trajectories(
    [
        ("g", [0.0, 1.0], ["x", "z"]),
        ("g", [0.0, 0.0], ["y", "z"]),
        ("g", [0.0, 0.5], ["x", "z"]),
    ]
)


def test_hgpo_by_hand():
    # level 1: (x) = t0s0 1, t2s0 0.5 -> +.25, -.25; (y) singleton; (z) = 1, 0, .5 -> .5, -.5, 0
    # level 2: (x,z) = t0s1 1, t2s1 0.5 -> +.25, -.25; (y,z) singleton
    # weight_offset=0, weights l^1: level 1 -> 1, level 2 -> 2
    # t2s1 keeps level 1 although its value there is 0: its group has a signal
    expected = [0.25, (0.5 + 2 * 0.25) / 3, 0.0, -0.5, -0.25, (0.0 - 2 * 0.25) / 3]
    actual = run("hgpo", HISTORY, gamma=1.0, history_length=1, mode="mean_norm", weight_offset=0)
    close(actual, expected)


def test_hgpo_default_weights_are_the_reference_codes():
    # default weight_offset=1, the authors' code: level 1 -> 2, level 2 -> 3
    expected = [0.25, (2 * 0.5 + 3 * 0.25) / 5, 0.0, -0.5, -0.25, (0.0 - 3 * 0.25) / 5]
    close(run("hgpo", HISTORY, gamma=1.0, history_length=1, mode="mean_norm"), expected)
    actual = run("hgpo", HISTORY, gamma=1.0, history_length=1, mode="mean_norm", weight_offset=1)
    close(actual, expected)


def test_hgpo_with_the_episode_level():
    # episode level 0, weight (0 + 1)^1 = 1: returns 1, 0, .5 -> +.5, -.5, 0 (group has signal)
    expected = [
        (2 * 0.25 + 0.5) / 3,
        (2 * 0.5 + 3 * 0.25 + 0.5) / 6,
        -0.5 / 1,  # t1s0: only the episode level has a signal
        (2 * -0.5 - 0.5) / 3,
        (2 * -0.25 + 0.0) / 3,
        (0.0 - 3 * 0.25 + 0.0) / 6,
    ]
    actual = run(
        "hgpo",
        HISTORY,
        gamma=1.0,
        history_length=1,
        mode="mean_norm",
        weight_offset=1,
        include_episode=True,
    )
    close(actual, expected)


def test_hgpo_alpha_zero_is_a_plain_average_of_levels():
    expected = [0.25, (0.5 + 0.25) / 2, 0.0, -0.5, -0.25, (0.0 - 0.25) / 2]
    close(run("hgpo", HISTORY, gamma=1.0, history_length=1, mode="mean_norm", alpha=0.0), expected)


TURNS = from_trajectories(
    [
        ("g", [0.0, 1.0], ["x", "z"]),
        ("g", [0.0, 0.0], ["y", "z"]),
        ("g", [0.0, 0.5], ["x", "z"]),
        ("g", [2.0], ["x"]),
    ]
)


def test_turn_normalises_among_rows_of_the_same_turn():
    # turn 0 returns 1, 0, .5, 2 (mean .875); turn 1 returns 1, 0, .5 (mean .5)
    expected = [0.125, 0.5, -0.875, -0.5, -0.375, 0.0, 1.125]
    close(run("turn", TURNS, gamma=1.0, mode="mean_norm"), expected)


def test_mixed_blends_turn_and_batch_normalisation():
    turn_part = np.array([0.125, 0.5, -0.875, -0.5, -0.375, 0.0, 1.125])
    returns = np.array([1.0, 1.0, 0.0, 0.0, 0.5, 0.5, 2.0])
    batch_part = returns - returns.mean()
    actual = run("mixed", TURNS, gamma=1.0, mode="mean_norm", turn_weight=0.25)
    close(actual, 0.25 * turn_part + 0.75 * batch_part)


def test_stratified_blends_san_with_group_normalisation():
    columns = from_trajectories([("g", [r], ["s"]) for r in (1.0, 0.0, 0.0, 1.0)])
    stratum = np.array(["A", "A", "A", "B"])
    # SAN: stratum A returns 1, 0, 0 -> 2/3, -1/3, -1/3; B singleton -> 0
    # group: mean .5 -> .5, -.5, -.5, .5
    san = np.array([2 / 3, -1 / 3, -1 / 3, 0.0])
    whole = np.array([0.5, -0.5, -0.5, 0.5])
    for alpha in (0.0, 0.5, 1.0):
        actual = run("stratified", columns, stratum=stratum, alpha=alpha, norm_by_std=False)
        close(actual, alpha * san + (1 - alpha) * whole)


def test_stratified_requires_a_constant_stratum_per_trajectory():
    with pytest.raises(ValueError) as info:
        run("stratified", HISTORY, stratum=[0, 1, 0, 0, 0, 0])
    assert str(info.value).startswith(
        "row 1: stratum 1 differs from stratum 0 of step 0 of the same trajectory (row 0)"
    )
    with pytest.raises(ValueError, match="needs `stratum`: one structural key per row"):
        run("stratified", HISTORY)
    with pytest.raises(ValueError, match=r"`stratum` must have one value per row \(6 rows\)"):
        run("stratified", HISTORY, stratum=[0, 0])


@pytest.mark.parametrize(
    "name",
    ["grpo", "rloo", "median", "gigpo", "hgpo", "turn", "mixed", "salt", "tempo", "drmas", "gdpo"],
)
def test_degenerate_groups_give_zero(name):
    # one trajectory per group, and a group whose returns are all equal
    columns = from_trajectories(
        [("solo", [1.0, 5.0], ["a", "b"]), ("same", [2.0], ["a"]), ("same", [2.0], ["a"])]
    )
    advantage = run(name, columns)
    assert np.isfinite(advantage).all()
    if name != "mixed":  # mixed's batch-level term compares across groups
        assert advantage.tolist() == [0.0] * 4


def test_similarity_clusters_greedily_within_each_task_group():
    states = ["bbbb", "aaab", "aaaa", "aaab", "aaaa"]
    batch = CreditBatch.from_columns(
        group=[0, 0, 0, 1, 1],
        traj=[0, 1, 2, 3, 4],
        step=[0] * 5,
        reward=[0.0] * 5,
        state=states,
    )
    keys, n_keys = step_groups(batch, similarity_threshold=0.7)
    # "aaab" is 0.75 similar to "aaaa" (the cluster's first member in sorted order),
    # "bbbb" to neither; task groups are never merged
    assert n_keys == 3
    assert keys[1] == keys[2] != keys[0]
    assert keys[3] == keys[4] not in (keys[0], keys[1])
    with pytest.raises(ValueError, match="similarity_threshold < 1 compares state keys as text"):
        compute_advantages(
            "gigpo",
            group=[0, 0],
            traj=[0, 1],
            step=[0, 0],
            reward=[0.0, 1.0],
            state=[1, 2],
            similarity_threshold=0.5,
        )


# SALT / TEMPO: three rollouts of one task (gamma irrelevant: episode returns only)
#   t0: s0 --go--> s1 --take--> success  R = 1
#   t1: s0 --go--> s1 --drop--> failure  R = 0
#   t2: s2 --go--> s1 --take--> failure  R = 0
# mean-only GRPO: A = 2/3, -1/3, -1/3
GRAPH = from_trajectories(
    [
        ("g", [0.0, 1.0], ["s0", "s1"]),
        ("g", [0.0, 0.0], ["s0", "s1"]),
        ("g", [0.0, 0.0], ["s2", "s1"]),
    ],
    actions=[["go", "take"], ["go", "drop"], ["go", "take"]],
)


def test_salt_state_action_nodes_by_hand():
    # (s0,go): t0,t1 -> 1/6; (s1,take): t0,t2 -> 1/6; (s1,drop): -1/3; (s2,go): -1/3
    expected = [1 / 6, 1 / 6, 1 / 6, -1 / 3, -1 / 3, 1 / 6]
    close(run("salt", GRAPH, norm_by_std=False), expected)


def test_salt_history_action_nodes_by_hand():
    # (s0; go): t0,t1 -> 1/6; (s0 s1; take): t0 only -> 2/3; (s0 s1; drop): -1/3;
    # (s2; go) and (s2 s1; take): t2 only -> -1/3
    expected = [1 / 6, 2 / 3, 1 / 6, -1 / 3, -1 / 3, -1 / 3]
    close(run("salt", GRAPH, norm_by_std=False, node="history_action"), expected)


def test_salt_on_rloo_advantages():
    # RLOO: t0 1 - 0, t1 0 - 1/2, t2 0 - 1/2 -> 1, -1/2, -1/2
    expected = [0.25, 0.25, 0.25, -0.5, -0.5, 0.25]
    close(run("salt", GRAPH, base="rloo"), expected)


def test_salt_counts_a_trajectory_once_per_node():
    # t0 visits (a, x) twice; t1 once: the node's value is mean(+1/2, -1/2) = 0,
    # not the per-visit (1/2 + 1/2 - 1/2) / 3
    columns = from_trajectories(
        [("g", [0.0, 1.0], ["a", "a"]), ("g", [0.0, 0.0], ["a", "b"])],
        actions=[["x", "x"], ["x", "y"]],
    )
    close(run("salt", columns, norm_by_std=False), [0.0, 0.0, 0.0, -0.5])


def test_tempo_by_hand():
    # root and (go) hold all three: V = 0, no TD at step 0
    # (go,take): t0,t2 -> 1/6; (go,drop): t1 -> -1/3
    expected = [2 / 3, 2 / 3 + 1 / 6, -1 / 3, -1 / 3 - 1 / 3, -1 / 3, -1 / 3 + 1 / 6]
    close(run("tempo", GRAPH, norm_by_std=False), expected)
    half = [2 / 3, 2 / 3 + 1 / 12, -1 / 3, -1 / 3 - 1 / 6, -1 / 3, -1 / 3 + 1 / 12]
    close(run("tempo", GRAPH, norm_by_std=False, td_weight=0.5), half)
    close(run("tempo", GRAPH, norm_by_std=False, td_weight=0.0), [2 / 3, 2 / 3] + [-1 / 3] * 4)


def test_tempo_with_states_in_the_prefix():
    # step 0: (s0,go): t0,t1 -> 1/6; (s2,go): t2 -> -1/3; root 0
    # step 1: each prefix holds one trajectory: V = its A
    expected = [
        2 / 3 + 1 / 6,
        2 / 3 + (2 / 3 - 1 / 6),
        -1 / 3 + 1 / 6,
        -1 / 3 + (-1 / 3 - 1 / 6),
        -1 / 3 - 1 / 3,
        -1 / 3,  # the only child of (s2,go): same trajectories, no TD
    ]
    close(run("tempo", GRAPH, norm_by_std=False, prefix="states_and_actions"), expected)


def test_tempo_a_trajectory_ending_at_a_node_leaves_its_children():
    # t0 stops after (go); t1 goes on: (go, go) holds t1 alone although (go) has one child
    columns = from_trajectories(
        [("g", [1.0], ["a"]), ("g", [0.0, 0.0], ["a", "b"])], actions=[["go"], ["go", "go"]]
    )
    # A = 1/2, -1/2; V(go) = 0 = V(root); V(go, go) = -1/2
    close(run("tempo", columns, norm_by_std=False), [0.5, -0.5, -1.0])


# Dr. MAS: planner p and searcher s act in one episode; group g has three rollouts,
# group h one (a bucket with one row gets 0).
AGENTS = from_trajectories(
    [
        ("g", [0.0, 0.0, 1.0], ["x", "y", "z"]),
        ("g", [0.0, 0.0], ["x", "y"]),
        ("g", [0.5], ["x"]),
        ("h", [3.0], ["x"]),
    ]
)
AGENT_IDS = np.array(["p", "s", "s", "p", "s", "p", "p"])


def test_drmas_normalises_each_agents_rows_by_hand():
    # bucket (g, p): returns 1, 0, 0.5 -> mean 0.5, sample std 0.5
    # bucket (g, s): rows of t0, t0, t1 -> returns 1, 1, 0 -> mean 2/3, sample std sqrt(1/3)
    p, s = 0.5 + 1e-6, np.sqrt(1 / 3) + 1e-6
    expected = [0.5 / p, (1 / 3) / s, (1 / 3) / s, -0.5 / p, (-2 / 3) / s, 0.0, 0.0]
    close(run("drmas", AGENTS, agent=AGENT_IDS), expected)
    centred = [0.5, 1 / 3, 1 / 3, -0.5, -2 / 3, 0.0, 0.0]
    close(run("drmas", AGENTS, agent=AGENT_IDS, norm_by_std=False), centred)


def test_drmas_over_trajectories_counts_each_trajectory_once_per_agent():
    # bucket (g, s): t0 (1) and t1 (0) once each -> mean 1/2
    expected = [0.5, 0.5, 0.5, -0.5, -0.5, 0.0, 0.0]
    actual = run("drmas", AGENTS, agent=AGENT_IDS, norm_by_std=False, stats_over="trajectories")
    close(actual, expected)


def test_drmas_with_one_agent_is_grpo_over_step_rows():
    one = np.zeros(len(AGENTS), dtype=np.int64)
    np.testing.assert_array_equal(
        run("drmas", AGENTS, agent=one), run("grpo", AGENTS, stats_over="steps")
    )


# GDPO: groups g (t0, t1) and h (t2, t3); two components; t0 has two steps
COMPONENTS = from_trajectories(
    [
        ("g", [0.0, 0.0], ["a", "b"]),
        ("g", [0.0], ["a"]),
        ("h", [0.0], ["a"]),
        ("h", [0.0], ["a"]),
    ]
)
PARTS = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
# trajectory components: t0 (1, 0), t1 (0, 1), t2 (1, 1), t3 (0, 1)


def test_gdpo_by_hand():
    # per component, mean-only: g: (+1/2, -1/2) and (-1/2, +1/2) -> sums 0, 0
    #                           h: (+1/2, -1/2) and (0, 0)        -> sums 1/2, -1/2
    # batch: S = 0, 0, 1/2, -1/2 -> mean 0, sample std sqrt(1/6)
    scale = 0.5 / (np.sqrt(1 / 6) + 1e-6)
    expected = [0.0, 0.0, 0.0, scale, -scale]
    close(run("gdpo", COMPONENTS, reward_components=PARTS, norm_by_std=False), expected)


def test_gdpo_weights_and_std():
    # weights (2, 1): S = 1/2, -1/2, 1, -1 -> sample std sqrt(5/6)
    a, b = 0.5 / (np.sqrt(5 / 6) + 1e-6), 1.0 / (np.sqrt(5 / 6) + 1e-6)
    expected = [a, a, -a, b, -b]
    actual = run(
        "gdpo", COMPONENTS, reward_components=PARTS, component_weights=[2, 1], norm_by_std=False
    )
    close(actual, expected)
    # with the per-component std (sqrt(1/2) for every non-constant pair), S = 0, 0, c, -c
    c = 0.5 / (np.sqrt(0.5) + 1e-6)
    scale = c / (np.sqrt(2 * c * c / 3) + 1e-6)
    close(run("gdpo", COMPONENTS, reward_components=PARTS), [0.0, 0.0, 0.0, scale, -scale])


def test_gdpo_keeps_apart_what_grpo_on_the_sum_merges():
    # one group, components (1, 0), (0, 1), (0, 0): GRPO on the sum gives the first two
    # the same advantage; here too (symmetric), but (1, 1) vs (1, 0) vs (0, 0) differ
    columns = from_trajectories([("g", [0.0], ["a"])] * 3)
    parts = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    advantage = run("gdpo", columns, reward_components=parts, norm_by_std=False)
    # components centred: (1/3, 2/3), (1/3, -1/3), (-2/3, -1/3) -> S = 1, 0, -1
    close(advantage, [1.0 / (1.0 + 1e-6), 0.0, -1.0 / (1.0 + 1e-6)])


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("salt", {}, "credit estimator 'salt' needs `action`: the parsed action text"),
        ("tempo", {}, "credit estimator 'tempo' needs `action`"),
        ("drmas", {}, "credit estimator 'drmas' needs `agent`: the id of the agent acting"),
        ("gdpo", {}, "credit estimator 'gdpo' needs `reward_components`: one row of K"),
        ("salt", {"action": ["a"]}, "`action` must have one value per row (6 rows)"),
        ("drmas", {"agent": [0.5] * 6}, "`agent` must hold integer or string ids"),
        (
            "salt",
            {"action": np.array(["a", None, "b", "c", "d", "e"], dtype=object)},
            "row 1: action key None has type NoneType",
        ),
        (
            "gdpo",
            {"reward_components": np.zeros(6)},
            "`reward_components` must have shape (rows, K) with K >= 1 (6 rows), got shape (6,)",
        ),
        (
            "gdpo",
            {"reward_components": np.array([[0.0, 1.0]] * 3 + [[0.0, np.nan]] * 3)},
            "row 3: `reward_components` column 1 is nan",
        ),
        (
            "gdpo",
            {"reward_components": np.zeros((6, 2)), "component_weights": [1.0]},
            "`component_weights` has 1 weights but `reward_components` has 2 columns",
        ),
    ],
)
def test_missing_or_bad_inputs_are_named(name, params, message):
    with pytest.raises(ValueError) as info:
        compute_advantages(name, **HISTORY.kwargs(), **params)
    assert message in str(info.value)
