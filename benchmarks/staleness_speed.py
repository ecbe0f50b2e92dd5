"""Wall time per iteration and rollout/trainer mismatch with ``trainer.max_staleness`` 0,
1 and 4 on the quickstart recipe (FrozenLake, the tiny model, GiGPO), as ratios to the
synchronous run (``max_staleness: 0``) measured in the same run.

The recipe's SFT warm start runs once; every arm then starts RL from the same SFT'd
model with the same seed (no validation, no test unless ``--test-tasks``). With k >= 1
the arms use truncated importance sampling (``actor.tis.clip``, ``--tis``); k = 0 is the
recipe as it is.

Figures per arm: the mean wall time of an iteration as the training loop sees it
(``perf/seconds_iteration``: rollout + update for k = 0; waiting for the rollout produced
ahead + update for k >= 1), the first iteration left out (nothing has been produced
ahead of it yet), and its ratio to k = 0; the rollout's own time, the update's, the wait;
the mean staleness of the trained steps and the trajectories dropped as too stale; and
``perf/mismatch_kl`` (k3 estimate of KL(rollout || trainer's old policy) over response
tokens) for every iteration.

Usage: ``python benchmarks/staleness_speed.py [--iterations 6 --staleness 0 1 4 --tasks 16
--n 8 --sft-tasks 500 --test-tasks 0 --seed 0 --repeats 1]``. With ``--test-tasks 200
--iterations 30`` it is a (one-seed) learning comparison: held-out success after RL per arm.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from agentgym.runtime import configure_cpu_runtime

configure_cpu_runtime()  # before torch starts its thread pool

from agentgym.config import TrainConfig, load_config  # noqa: E402
from agentgym.trainers.rl import train  # noqa: E402
from agentgym.trainers.tracking import read_metrics  # noqa: E402

QUICKSTART = Path(__file__).parents[1] / "examples" / "quickstart.yaml"
QUIET = ["trainer.progress=false", "trainer.plots=false", "trainer.save_rollouts=0"]


def _config(out: Path, *overrides: str) -> TrainConfig:
    return load_config(TrainConfig, QUICKSTART, [*QUIET, f"trainer.out_dir={out}", *overrides])


def sft_model(root: Path, args: argparse.Namespace) -> Path:
    """The quickstart's tiny model after its SFT warm start (one RL-free run)."""
    cfg = _config(
        root / "sft",
        f"seed={args.seed}",
        f"sft.tasks={args.sft_tasks}",
        "trainer.total_iterations=0",
        "trainer.test_tasks=0",
        "trainer.val_every=0",
    )
    train(cfg)
    return root / "sft" / "sft-model"


def run_arm(root: Path, model: Path, k: int, repeat: int, args: argparse.Namespace) -> dict:
    overrides = [
        f"seed={args.seed}",
        f"policy.model={model}",
        "sft.enabled=false",
        f"trainer.total_iterations={args.iterations}",
        f"trainer.tasks_per_iteration={args.tasks}",
        f"env.rollout.n={args.n}",
        "trainer.val_every=0",
        f"trainer.test_tasks={args.test_tasks}",
        "trainer.save_every=0",
        f"trainer.max_staleness={k}",
    ]
    if k and args.tis:
        overrides.append(f"actor.tis.clip={args.tis}")
    out = root / f"k{k}-r{repeat}"
    start = time.perf_counter()
    result = train(_config(out, *overrides), force=True)
    wall = time.perf_counter() - start
    records = [r for r in read_metrics(Path(result.run_dir)) if "train/success" in r]
    steady = records[1:] or records

    def mean(key: str, rows: list[dict] = steady) -> float:
        values = [r[key] for r in rows if key in r]
        return statistics.fmean(values) if values else float("nan")

    return {
        "k": k,
        "wall": wall,
        "iteration": mean("perf/seconds_iteration"),
        "rollout": mean("perf/seconds_rollout"),
        "update": mean("perf/seconds_update"),
        "wait": mean("perf/seconds_rollout_wait") if k else mean("perf/seconds_rollout"),
        "staleness": mean("perf/staleness_mean", records),
        "dropped": sum(r.get("perf/stale_dropped", 0.0) for r in records),
        "kl": [r.get("perf/mismatch_kl", float("nan")) for r in records],
        "tis": mean("perf/tis_weight_mean", records) if k and args.tis else float("nan"),
        "train_success": mean("train/success", records),
        "test_before": (result.test_before or {}).get("test/success"),
        "test_after": (result.test_after or {}).get("test/success"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--staleness", type=int, nargs="+", default=[0, 1, 4])
    parser.add_argument("--tasks", type=int, default=16, help="tasks per iteration")
    parser.add_argument("--n", type=int, default=8, help="rollouts per task")
    parser.add_argument("--sft-tasks", type=int, default=500)
    parser.add_argument("--test-tasks", type=int, default=0)
    parser.add_argument("--tis", type=float, default=2.0, help="actor.tis.clip for k >= 1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per arm, interleaved (medians reported)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    if 0 not in args.staleness:
        args.staleness = [0, *args.staleness]  # the baseline of the ratios

    with tempfile.TemporaryDirectory(prefix="staleness-speed-") as tmp:
        root = Path(tmp)
        model = sft_model(root, args)
        runs = [
            run_arm(root, model, k, rep, args)
            for rep in range(args.repeats)
            for k in args.staleness  # interleaved: a change in machine load hits every arm
        ]
    rows = [_median_row([r for r in runs if r["k"] == k]) for k in args.staleness]

    base = next(r for r in rows if r["k"] == 0)
    print(
        f"quickstart (FrozenLake, tiny model, GiGPO): {args.tasks} tasks x {args.n} rollouts, "
        f"{args.iterations} iterations, seed {args.seed}; means over iterations 2..N, "
        f"medians over {args.repeats} interleaved run(s) per arm"
    )
    print(
        f"{'k':>3} {'s/iter':>8} {'ratio':>6} {'rollout':>8} {'update':>7} {'wait':>6} "
        f"{'stale':>6} {'dropped':>7} {'tis_w':>6} {'train_succ':>10} {'test':>12}"
    )
    for r in rows:
        test = (
            f"{r['test_before']:.3f}->{r['test_after']:.3f}"
            if r["test_after"] is not None and r["test_before"] is not None
            else "-"
        )
        print(
            f"{r['k']:>3} {r['iteration']:>8.2f} {base['iteration'] / r['iteration']:>5.2f}x "
            f"{r['rollout']:>8.2f} {r['update']:>7.2f} {r['wait']:>6.2f} {r['staleness']:>6.2f} "
            f"{r['dropped']:>7.0f} {r['tis']:>6.3f} {r['train_success']:>10.3f} {test:>12}"
        )
    print("ratio: k=0's seconds per iteration / this arm's (>1: faster)")
    print("perf/mismatch_kl per iteration (k3, KL(rollout || old policy)), first run of each arm:")
    for k in args.staleness:
        first = next(r for r in runs if r["k"] == k)
        print(f"  k={k}: " + " ".join(f"{v:.2e}" for v in first["kl"]))
    if len(runs) > len(rows):
        print("s/iter of every run: " + ", ".join(f"k={r['k']} {r['iteration']:.2f}" for r in runs))
    if args.json is not None:
        args.json.write_text(json.dumps(runs, indent=1))


def _median_row(runs: list[dict]) -> dict:
    """One arm's runs as one row: medians of the numbers, the first run's lists."""
    row = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float) and key not in ("test_before", "test_after"):
            row[key] = statistics.median(r[key] for r in runs)
    return row


if __name__ == "__main__":
    main()
