"""Code sandbox speed: program executions/s per backend and CodeSandbox-v0 steps/s.

Measures, for each backend (``local`` with its best isolation, ``docker``):

* executions/s of a trivial program (``print(1)``) with a warm box reused for every run
  (the default), and with a fresh box per run (``reuse=False``: a new bubblewrap process,
  or a new container);
* executions/s of a typical grading run: the harness running 10 call tests of a shipped
  task against its reference solution;
* ``CodeSandbox-v0`` steps/s: the expert (a ``run`` then a ``submit``) over the test split,
  and a random policy, with result memoisation off (``cache_size=0``) so every step
  executes code.

Each figure is given as the median and the best of ``--repeats`` rounds (the best round is
the better estimate of the uncontended cost on a shared machine; the load average is
printed too). The Docker backend needs the engine and
the image (``python -m agentgym.tools.sandbox.image setup``); pass ``--backends local`` to
skip it. Usage: ``python benchmarks/sandbox_speed.py [--runs 40] [--repeats 3]``

``--baseline-runner REV`` also measures the warm-box rates with the in-box runner of git
revision ``REV`` (e.g. the one before a change to ``runner.py``), in the same run and in
alternating rounds, and prints the ratio: the cost of what the runner does per run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from agentgym.envs.code import CodeSandboxEnv
from agentgym.envs.code.grading import Grader
from agentgym.tools.sandbox import docker as docker_backend
from agentgym.tools.sandbox import local as local_backend
from agentgym.tools.sandbox import make_sandbox


def rate(n: int, fn) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def median_rate(repeats: int, n: int, fn) -> tuple[float, float]:
    rates = [rate(n, fn) for _ in range(repeats)]
    return statistics.median(rates), max(rates)


def exec_rates(backend: str, runs: int, repeats: int) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    with make_sandbox(backend) as box:
        box.run("print(1)")  # start the warm box
        out["print(1), warm box"] = median_rate(repeats, runs, lambda: box.run("print(1)"))
        env = CodeSandboxEnv(backend=box)
        task = env.tasks[env.task_ids("test")[0]]
        grader = Grader(box, env.limits)
        out["10 tests, warm box"] = median_rate(
            repeats, runs, lambda: grader.run_tests(task, task.solution, task.tests)
        )
    fresh_runs = max(4, runs // 5)
    with make_sandbox(backend, reuse=False) as box:
        out["print(1), fresh box per run"] = median_rate(
            repeats, fresh_runs, lambda: box.run("print(1)")
        )
    return out


def env_rates(backend: str, repeats: int) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    env = CodeSandboxEnv(backend=backend, cache_size=0)
    ids = list(env.task_ids("test"))[:30]

    def play(policy) -> int:
        steps = 0
        for task_id in ids:
            env.reset(seed=0, options={"task_id": task_id})
            for _ in range(8):
                steps += 1
                if env.step(policy())[2]:
                    break
        return steps

    rng = np.random.default_rng(0)
    play(env.expert_action)  # warm-up
    for name, policy in (("expert", env.expert_action), ("random", lambda: env.random_action(rng))):
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            steps = play(policy)
            rates.append(steps / (time.perf_counter() - start))
        out[f"env steps/s, {name}"] = (statistics.median(rates), max(rates))
    env.close()
    return out


@contextlib.contextmanager
def runner_of(source: str | None) -> Iterator[None]:
    """Boxes started inside use the runner ``source`` (``None``: the current one)."""
    if source is None:
        yield
        return
    saved = local_backend.runner_source, docker_backend.runner_source
    local_backend.runner_source = docker_backend.runner_source = lambda: source
    try:
        yield
    finally:
        local_backend.runner_source, docker_backend.runner_source = saved


def compare_runners(backend: str, baseline: str, runs: int, repeats: int) -> None:
    """Per-run latency of warm boxes with the current runner and with ``baseline``'s: both
    boxes live at once and take turns run by run, so load on a shared machine hits both
    alike; the medians and their difference are printed."""
    old = subprocess.run(
        ["git", "show", f"{baseline}:tools/sandbox/runner.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    with contextlib.ExitStack() as stack:
        boxes = {}
        for label, source in (("current", None), (baseline, old)):
            with runner_of(source):
                boxes[label] = stack.enter_context(make_sandbox(backend))
                boxes[label].run("print(1)")  # the warm box starts with this runner
        env = CodeSandboxEnv(backend=boxes["current"])
        task = env.tasks[env.task_ids("test")[0]]
        work = {
            "print(1)": lambda box: box.run("print(1)"),
            "10 tests": lambda box: Grader(box, env.limits).run_tests(
                task, task.solution, task.tests
            ),
        }
        for what, fn in work.items():
            times: dict[str, list[float]] = {label: [] for label in boxes}
            for _ in range(runs * repeats):
                for label, box in boxes.items():
                    start = time.perf_counter()
                    fn(box)
                    times[label].append(time.perf_counter() - start)
            now = 1000 * statistics.median(times["current"])
            then = 1000 * statistics.median(times[baseline])
            print(
                f"{backend:7s} {what + ', warm box':24s} median ms per run: runner "
                f"{baseline} {then:6.1f}, current {now:6.1f} ({now - then:+.1f} ms, "
                f"ratio {now / then:.2f})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="local,docker")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-runner", metavar="REV", default=None)
    args = parser.parse_args()
    if args.baseline_runner:
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        for backend in args.backends.split(","):
            compare_runners(backend, args.baseline_runner, args.runs, args.repeats)
        print(f"load average {os.getloadavg()[0]:.1f}")
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'backend':7s} {'what':32s} {'median':>8s} {'best':>8s}  (per second)")
    for backend in args.backends.split(","):
        with make_sandbox(backend) as box:
            print(f"== {box.describe()}")
        for name, (median, best) in {
            **exec_rates(backend, args.runs, args.repeats),
            **env_rates(backend, args.repeats),
        }.items():
            print(f"{backend:7s} {name:32s} {median:8.1f} {best:8.1f}")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
