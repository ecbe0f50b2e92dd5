"""Time every credit estimator on 6,400 and 64,000 rows, against its plain-loop version.

    python benchmarks/credit_speed.py [--repeats 20] [--loop-repeats 3] [--only salt tempo]

The batch looks like an agent run: G task groups x 8 rollouts x 50 steps (16 groups
for 6,400 rows, 160 for 64,000), string state keys from a random walk over a few
dozen states per task (so states repeat within a group), the action text of each move
(left/wait/right, so rollouts share action prefixes), two agents taking turns
(planner/actor), a small step penalty and a 0/1 success reward at the end (also given as
two reward components), rows shuffled. Actions and agent ids are passed as strings.
Each timing is the median of several
calls of ``compute_advantages`` on the columns, so it includes validating them and
interning ids and state keys; the first table passes state keys as int codes (as
``agentgym.flatten`` does), the second as raw strings. The loop versions are the references in
``tests/credit/reference.py`` (loaded from that file). NumPy is kept to one thread.
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentgym.credit import compute_advantages  # noqa: E402

ROLLOUTS = 8
STEPS = 50
STATES_PER_TASK = 40
# label -> (estimator, settings)
CASES: dict[str, tuple[str, dict]] = {
    "grpo": ("grpo", {}),
    "rloo": ("rloo", {}),
    "rloo (row)": ("rloo", {"stats_over": "steps", "leave_out": "row"}),
    "median": ("median", {}),
    "gigpo": ("gigpo", {}),
    "hgpo": ("hgpo", {"history_length": 2}),
    "turn": ("turn", {}),
    "mixed": ("mixed", {}),
    "stratified": ("stratified", {}),
    "salt": ("salt", {}),
    "salt (hist)": ("salt", {"node": "history_action"}),
    "tempo": ("tempo", {}),
    "drmas": ("drmas", {}),
    "gdpo": ("gdpo", {}),
}
# the per-row inputs each estimator takes (filled from the batch by name)
INPUTS = {
    "stratified": ("stratum",),
    "salt": ("action",),
    "tempo": ("action",),
    "drmas": ("agent",),
    "gdpo": ("reward_components",),
}


def load_reference():
    path = ROOT / "tests" / "credit" / "reference.py"
    spec = importlib.util.spec_from_file_location("credit_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_batch(n_groups: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_traj = n_groups * ROLLOUTS
    group = np.repeat(np.arange(n_groups), ROLLOUTS * STEPS)
    traj = np.repeat(np.arange(n_traj), STEPS)
    step = np.tile(np.arange(STEPS), n_traj)
    # random walk on a ring of states per task: rollouts of one task revisit states;
    # the action at step t is the move that leads to step t + 1's state (a deterministic
    # env, so rollouts that share their first actions share their states)
    moves = rng.integers(-1, 2, size=(n_traj, STEPS + 1))
    position = np.cumsum(moves[:, :STEPS] * (np.arange(STEPS) > 0), axis=1) % STATES_PER_TASK
    state = np.array([f"task{g}/room{p}" for g, p in zip(group, position.ravel(), strict=True)])
    names = np.array(["left", "wait", "right"], dtype=object)
    action = names[moves[:, 1:].ravel() + 1]
    agent = np.where(step % 2 == 0, "planner", "actor")  # two roles taking turns
    success = rng.integers(0, 2, size=n_traj)
    reward = np.full(n_traj * STEPS, -0.01)
    reward[STEPS - 1 :: STEPS] += success
    components = np.zeros((n_traj * STEPS, 2))  # (success, step cost): they sum to reward
    components[STEPS - 1 :: STEPS, 0] = success
    components[:, 1] = -0.01
    stratum = np.repeat(rng.integers(0, 3, size=n_traj), STEPS)  # e.g. number of tool calls
    perm = rng.permutation(group.size)
    return {
        "group": group[perm],
        "traj": traj[perm],
        "step": step[perm],
        "reward": reward[perm],
        "state": state[perm],
        "stratum": stratum[perm],
        "action": action[perm],
        "agent": agent[perm],
        "reward_components": components[perm],
    }


def split(batch: dict[str, np.ndarray], label: str) -> tuple[str, dict, dict]:
    name, settings = CASES[label]
    columns = {k: batch[k] for k in ("group", "traj", "step", "reward", "state")}
    params = dict(settings)
    for needed in INPUTS.get(name, ()):
        params[needed] = batch[needed]
    return name, columns, params


def time_vectorised(batch: dict, label: str, repeats: int) -> tuple[float, np.ndarray]:
    name, columns, params = split(batch, label)
    result = compute_advantages(name, **columns, **params)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        compute_advantages(name, **columns, **params)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def time_loop(reference, batch: dict, label: str, repeats: int) -> tuple[float, np.ndarray]:
    name, columns, params = split(batch, label)
    lists = {k: v.tolist() for k, v in columns.items()}
    for needed in INPUTS.get(name, ()):
        params[needed] = params[needed].tolist()
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = reference.LOOPS[name](**lists, **params)
        times.append(time.perf_counter() - start)
    return statistics.median(times), np.asarray(result)


def with_int_states(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same batch with state keys interned to ints, as ``agentgym.flatten`` gives them."""
    _, codes = np.unique(batch["state"], return_inverse=True)
    return {**batch, "state": codes.reshape(-1)}


def table(title: str, sizes: dict[str, dict], reference, args) -> None:
    print(f"\n{title}")
    header = (
        f"{'estimator':<13}{'6,400 rows':>12}{'loop':>10}{'speed-up':>10}"
        f"{'64,000 rows':>14}{'loop':>10}{'speed-up':>10}{'max |diff|':>12}"
    )
    print(header)
    print("-" * len(header))
    for label in CASES:
        if args.only and CASES[label][0] not in args.only:
            continue
        cells = []
        worst = 0.0
        for batch in sizes.values():
            fast, fast_result = time_vectorised(batch, label, args.repeats)
            slow, slow_result = time_loop(reference, batch, label, args.loop_repeats)
            worst = max(worst, float(np.max(np.abs(fast_result - slow_result))))
            cells.append(f"{fast * 1e3:>9.2f} ms{slow * 1e3:>7.0f} ms{slow / fast:>9.0f}x")
        print(f"{label:<13}{cells[0]}   {cells[1]}{worst:>12.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per estimator")
    parser.add_argument("--loop-repeats", type=int, default=3, help="timed loop calls")
    parser.add_argument("--only", nargs="+", help="time only these estimators (default: all)")
    args = parser.parse_args()

    reference = load_reference()
    raw = {"6,400": make_batch(16), "64,000": make_batch(160)}
    print(
        f"credit estimators: numpy {np.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}, one thread; median of {args.repeats} calls "
        f"(loop versions: median of {args.loop_repeats}); max |diff| = largest difference "
        "between the two on the same batch"
    )
    table(
        "state keys as int codes (what agentgym.flatten passes):",
        {size: with_int_states(batch) for size, batch in raw.items()},
        reference,
        args,
    )
    table("state keys as raw strings (interned inside compute_advantages):", raw, reference, args)


if __name__ == "__main__":
    main()
