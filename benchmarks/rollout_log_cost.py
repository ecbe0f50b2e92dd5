"""What saving the viewer's rollout sample costs a training iteration.

Plays real batches (the rollout engine, a real environment, the ``random`` policy, window
prompts tokenised by a real tiny model's tokenizer so steps carry prompt and response token
ids as in training), computes GiGPO advantages, and times
:func:`agentgym.trainers.rollout_log.write_rollout_sample` (``trainer.save_rollouts`` groups)
against two baselines measured in the same run on the same batch:

* credit: ``flatten`` + ``compute_advantages`` (work every iteration does anyway);
* every group of the batch through the same function (what an unbounded log would cost);
* every group through ``write_jsonl`` (``Trajectory.to_json``, whose ``dataclasses.asdict``
  deep copy the rollout log avoids; timed 3 times only, it is slow).

Prints milliseconds per call (median of ``--repeat``), the file size, and the ratios.

Usage: ``python benchmarks/rollout_log_cost.py [--env Sokoban-v0 --tasks 16 --n 8
--max-steps 20 --groups 4 --repeat 20]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from agentgym import flatten
from agentgym.credit import compute_advantages
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
from agentgym.trainers.rollout_log import write_rollout_sample
from agentgym.trajectory import Trajectory, write_jsonl


def play(env_id: str, tasks: int, n: int, max_steps: int, tokenizer: str) -> list[Trajectory]:
    parser = get_parser("think_action")
    engine = RolloutEngine(
        make_pool("inline", EnvSpec(env_id), 16),
        make_policy("random", tokenizer=tokenizer),
        parser,
        PromptBuilder(PromptConfig(style="window", history_length=2), parser),
        SamplingParams(seed=0),
        max_steps=max_steps,
    )
    with engine:
        return engine.run(sample_tasks(EnvSpec(env_id), "train", tasks, seed=0), n=n)


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Sokoban-v0")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from agentgym.models import build_tiny_model, env_corpus

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny"
        build_tiny_model(env_corpus(args.env, episodes=20), model, layers=1, hidden=64)
        trajs = play(args.env, args.tasks, args.n, args.max_steps, str(model))
        steps = sum(len(t.steps) for t in trajs)
        tokens = sum(len(s.prompt_ids) + len(s.response_ids) for t in trajs for s in t.steps)

        def credit() -> list[list[float]]:
            cols = flatten(trajs)
            values = compute_advantages("gigpo", **cols.credit_kwargs())
            out = [[0.0] * len(t.steps) for t in trajs]
            for row in range(len(cols)):
                out[cols.traj[row]][cols.step[row]] = float(values[row])
            return out

        advantages = credit()
        run = Path(tmp) / "run"
        sample_ms = median_ms(
            lambda: write_rollout_sample(
                run, 1, trajs, advantages, estimator="gigpo", max_groups=args.groups
            ),
            args.repeat,
        )
        size = (run / "rollouts" / "iter_000001.jsonl").stat().st_size
        credit_ms = median_ms(credit, args.repeat)
        all_ms = median_ms(
            lambda: write_rollout_sample(
                run, 2, trajs, advantages, estimator="gigpo", max_groups=len(trajs)
            ),
            args.repeat,
        )
        all_size = (run / "rollouts" / "iter_000002.jsonl").stat().st_size
        to_json_ms = median_ms(lambda: write_jsonl(Path(tmp) / "all.jsonl", trajs), 3)

    print(
        f"{args.env}: {args.tasks} groups x {args.n} rollouts, {steps} steps, "
        f"{tokens} prompt+response tokens"
    )
    print(f"write_rollout_sample, {args.groups} groups: {sample_ms:8.2f} ms  {size / 1e6:.2f} MB")
    print(f"baseline credit (flatten + gigpo): {credit_ms:8.2f} ms")
    print(f"baseline every group, same code:   {all_ms:8.2f} ms  {all_size / 1e6:.2f} MB")
    print(f"baseline every group, to_json:     {to_json_ms:8.2f} ms")
    print(
        f"ratios: sample / credit = {sample_ms / credit_ms:.1f}x, sample / every group = "
        f"{sample_ms / all_ms:.2f}, to_json / same code (every group) = {to_json_ms / all_ms:.0f}x"
    )


if __name__ == "__main__":
    main()
