"""What each model-in-the-loop method adds to a training iteration, as a ratio to GRPO.

Trains the same tiny model on the same tasks for a few iterations with each method (no
SFT, no validation, no test) and reports the mean wall time of an iteration
(``perf/seconds_iteration``, the first iteration left out: it builds critics and warms
caches) next to the plain GRPO iteration measured in the same run, plus where the extra
time goes: the input providers before credit (judge calls, the policy's extra forwards,
critic values), their work after the update (critic training, SPO's tracker forwards)
and the judge's calls and tokens. FrozenLake for every method except IGPO, which needs a
gold answer: it runs on Search-v0 against a GRPO baseline on Search-v0.

Judges: ``rule`` is the rule-based judge (no model: the cost of the tournament and the
bookkeeping), ``tiny`` the run's own tiny model loaded as a second model in process
(``hf:DIR``, greedy, ``--judge-tokens`` tokens per verdict), a stand-in for a model
judge's generation cost on this machine. An untrained tiny judge rarely writes a verdict
its parser reads, so each question is asked ``judge.retries + 1`` times (``judge calls``
counts every attempt; ``unreadable verdicts`` those that fell back to the default).

Usage: ``python benchmarks/method_cost.py [--iterations 3 --tasks 4 --n 4 --methods all]``
(``--methods grpo arenarl-rule ...`` for a subset; ``--markdown FILE`` writes the table).
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
from agentgym.trainers.setup import ensure_model  # noqa: E402
from agentgym.trainers.tracking import read_metrics  # noqa: E402

BASE = [
    "env.max_steps=3",
    "env.history_length=0",
    "env.prompt.system=",
    "env.prompt.show_admissible=false",
    "policy.sampling.max_tokens=16",
    "policy.tiny.layers=1",
    "policy.tiny.hidden=64",
    "policy.tiny.vocab_size=320",
    "policy.tiny.episodes=20",
    "sft.enabled=false",
    "actor.micro_batch_size=16",
    "trainer.val_every=0",
    "trainer.test_tasks=0",
    "trainer.save_every=0",
    "trainer.progress=false",
    "trainer.plots=false",
    "trainer.save_rollouts=0",
]
FROZENLAKE = ["env.id=FrozenLake-v0"]
SEARCH = [
    "env.id=Search-v0",
    "env.max_steps=2",
    "env.rollout.max_prompt_tokens=4096",
    "policy.tiny.vocab_size=400",
    "policy.tiny.episodes=8",
]

#: label -> (environment, overrides); "{model}" is replaced by the tiny model's directory.
METHODS: dict[str, tuple[str, list[str]]] = {
    "grpo": ("frozenlake", ["algorithm.adv_estimator=grpo"]),
    "arenarl-rule": (
        "frozenlake",
        ["algorithm.adv_estimator=arenarl", "judge.model=agentgym.judges:rule_based"],
    ),
    "arenarl-tiny": (
        "frozenlake",
        [
            "algorithm.adv_estimator=arenarl",
            "judge.model=hf:{model}",
            "algorithm.providers={arena: {parser: winner}}",
        ],
    ),
    "mapo-rule": (
        "frozenlake",
        ["algorithm.adv_estimator=mapo", "judge.model=agentgym.judges:rule_based"],
    ),
    "mapo-tiny": ("frozenlake", ["algorithm.adv_estimator=mapo", "judge.model=hf:{model}"]),
    "spo": (
        "frozenlake",
        ["algorithm.adv_estimator=spo", "algorithm.task_sampler={name: spo}"],
    ),
    "gae": ("frozenlake", ["algorithm.adv_estimator=gae"]),
    "hiper": ("frozenlake", ["algorithm.adv_estimator=hiper", "env.action_parser=hiper"]),
    "seeupo": (
        "frozenlake",
        [
            "algorithm.adv_estimator=grpo",
            "actor.policy_loss=gspo",
            "actor.update_schedule={name: seeupo}",
        ],
    ),
    "grpo-search": ("search", ["algorithm.adv_estimator=grpo"]),
    "igpo-search": ("search", ["algorithm.adv_estimator=igpo"]),
}
BASELINE = {"frozenlake": "grpo", "search": "grpo-search"}


def run(label: str, env: str, overrides: list[str], model: str, out: Path, args) -> dict:  # type: ignore[no-untyped-def]
    extra = [o.replace("{model}", model) for o in overrides]
    cfg = load_config(
        TrainConfig,
        None,
        [
            *BASE,
            *(FROZENLAKE if env == "frozenlake" else SEARCH),
            f"policy.model={model}",
            f"trainer.total_iterations={args.iterations}",
            f"trainer.tasks_per_iteration={args.tasks}",
            f"env.rollout.n={args.n}",
            f"judge.max_tokens={args.judge_tokens}",
            f"trainer.out_dir={out / label}",
            *extra,
        ],
    )
    train(cfg, force=True)
    records = [r for r in read_metrics(out / label) if "train/success" in r][1:]

    def mean(key: str) -> float:
        values = [r.get(key, 0.0) for r in records]
        return statistics.fmean(values) if values else 0.0

    provider = sum(
        mean(k) for k in records[0] if k.startswith("perf/seconds_provider_")
    ) if records else 0.0  # fmt: skip
    after = sum(
        mean(k) for k in records[0] if k.startswith("perf/seconds_after_update_")
    ) if records else 0.0  # fmt: skip
    return {
        "seconds": mean("perf/seconds_iteration"),
        "rollout": mean("perf/seconds_rollout"),
        "update": mean("perf/seconds_update"),
        "provider": provider,
        "after_update": after,
        "judge_calls": mean("judge/calls"),
        "judge_tokens": mean("judge/prompt_tokens") + mean("judge/completion_tokens"),
        "judge_failures": mean("judge/failures"),
        "samples": mean("train/samples"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--judge-tokens", type=int, default=8)
    parser.add_argument("--methods", nargs="+", default=["all"])
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    if args.iterations < 2:
        raise SystemExit("--iterations must be >= 2 (the first one is left out)")
    wanted = list(METHODS) if args.methods == ["all"] else args.methods
    unknown = [m for m in wanted if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    for env, base in BASELINE.items():  # every ratio needs its baseline in the same run
        if any(METHODS[m][0] == env for m in wanted) and base not in wanted:
            wanted.insert(0, base)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="method-cost-") as tmp:
        out = Path(tmp)
        models = {}
        for env in {METHODS[m][0] for m in wanted}:
            cfg = load_config(
                TrainConfig,
                None,
                [*BASE, *(FROZENLAKE if env == "frozenlake" else SEARCH),
                 f"trainer.out_dir={out / ('model-' + env)}"],
            )  # fmt: skip
            models[env] = ensure_model(cfg, out / f"model-{env}")
        results = {}
        for label in wanted:
            env, overrides = METHODS[label]
            try:
                results[label] = run(label, env, overrides, models[env], out, args)
            except Exception as exc:  # report and go on: one method's failure is a result
                results[label] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{label}: {json.dumps(results[label])}", flush=True)
    lines = [
        "| method | env | s/iteration | ratio to GRPO | providers (s) | after update (s) "
        "| policy update (s) | judge calls | judge tokens | unreadable verdicts |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label in wanted:
        env = METHODS[label][0]
        r, base = results[label], results.get(BASELINE[env], {})
        if "error" in r:
            lines.append(f"| {label} | {env} | failed: {r['error'][:80]} | | | | | | | |")
            continue
        ratio = r["seconds"] / base["seconds"] if base.get("seconds") else float("nan")
        lines.append(
            f"| {label} | {env} | {r['seconds']:.2f} | {ratio:.2f}x | {r['provider']:.2f} "
            f"| {r['after_update']:.2f} | {r['update']:.2f} | {r['judge_calls']:.0f} "
            f"| {r['judge_tokens']:.0f} | {r['judge_failures']:.0f} |"
        )
    head = (
        f"{args.iterations} iterations x {args.tasks} tasks x {args.n} rollouts, mean of "
        f"iterations 2..{args.iterations}; {(time.perf_counter() - started) / 60:.1f} min in all"
    )
    print(f"\n{head}\n" + "\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text(head + "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
