"""Credit ablation: a CPU recipe trained with different credit methods, same budget.

For each seed the tiny model and its SFT warm start are built once; then RL runs from that
same SFT model with each method for the same number of iterations, validating greedily on
the ``valid`` split every few iterations and testing on the held-out ``test`` split at the
end. A *method* is a set of config overrides: an estimator (``--estimators``), a reward
shaper on top of the base estimator (``--shapers``), or anything else (``--method``, e.g. a
loss term or an aggregation). Prints, per method, held-out success (mean ± std over seeds,
per seed, and the mean of the runs' 95% Wilson intervals), invalid-action rate, tool
calls, episode length (steps, share truncated at the turn limit), seconds per RL iteration
and the gain over SFT; ``--markdown`` also writes that table as Markdown. When both ``grpo``
and an OTC arm ran, it adds OTC's verdict (tool calls at equal EM).

Recipes (``--recipe``): ``quickstart`` (``examples/quickstart.yaml``, FrozenLake) and
``search`` (``examples/search_cpu.yaml``, Search-v0 with its search tool); ``--config``
takes any other YAML. A method whose inputs the recipe's environment does not provide
(``gdpo`` on FrozenLake) is skipped and named.

Three claims have their own runs (``--claim``):

``llds``  the GRPO run of the quickstart that collapsed (seed 1, test success 0.06):
          ``grpo`` and ``grpo+llds`` as in the recipe (one optimizer step per iteration,
          where LLDS cannot act: the current policy is the rollout policy), then both with
          ``actor.mini_batch_size=128`` (about five optimizer steps per iteration, at the
          recipe's learning rate), where it can.
``otc``   Search-v0: ``grpo`` against ``grpo+otc`` (OTC-GRPO) and ``grpo+otc_ppo``, seeds
          0-2: tool calls per episode at equal exact match (EM = test success).
``branching``  the quickstart (FrozenLake): ``group+gigpo`` (8 independent episodes per
          task) against ``tree+gigpo`` and ``tree+treepo`` (TreePO trees: 4 roots, each
          branching into 3 at step 4, 12 leaves) at the same generation budget: 8 x
          ``max_steps`` turns per task when every episode runs to the turn limit (the
          generated tokens each run spent per iteration are printed too), seeds 0-2.

Usage::

    python benchmarks/credit_ablation.py                       # quickstart, grpo/gigpo/hgpo
    python benchmarks/credit_ablation.py --recipe search --estimators all --shapers all
    python benchmarks/credit_ablation.py --estimators grpo \\
        --method "grpo+balanced:algorithm.adv_estimator=grpo;actor.loss_agg_mode=balanced"
    python benchmarks/credit_ablation.py --claim llds
    python benchmarks/credit_ablation.py --claim otc --markdown runs/otc.md
    python benchmarks/credit_ablation.py --claim branching --markdown runs/branching.md
    python benchmarks/credit_ablation.py --smoke --estimators grpo --shapers otc   # 1 iteration
    python benchmarks/credit_ablation.py --estimators grpo arenarl mapo spo gae hiper seeupo
    python benchmarks/credit_ablation.py --recipe search --estimators grpo igpo
    # a training metric by iteration next to the table (here: rollout/trainer mismatch)
    python benchmarks/credit_ablation.py --estimators gigpo --curve perf/mismatch_kl \
        --method "staleness 1:env.rollout.mode=async;trainer.max_staleness=1;actor.tis={clip: 2.0}"
    # seeds side by side (one core each), then one table from the finished runs:
    OMP_NUM_THREADS=1 python benchmarks/credit_ablation.py --seeds 0 --reuse &
    OMP_NUM_THREADS=1 python benchmarks/credit_ablation.py --seeds 1 --reuse; wait
    python benchmarks/credit_ablation.py --reuse --markdown runs/table.md

Methods with a model in the loop (ArenaRL and MAPO with the rule judge, SPO, SeeUPO, HiPER,
GAE, IGPO) take the overrides in ``IN_LOOP``; ``seeupo`` is an update schedule, selected by
that name in ``--estimators``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agentgym.runtime import configure_cpu_runtime

configure_cpu_runtime()  # before torch starts its thread pool (see agentgym.runtime)

import numpy as np  # noqa: E402

from agentgym.config import TrainConfig, load_config  # noqa: E402
from agentgym.credit import estimator_inputs, list_estimators  # noqa: E402
from agentgym.inputs import missing_inputs  # noqa: E402
from agentgym.shaping import list_reward_shapers, required_info  # noqa: E402
from agentgym.trainers.rl import train  # noqa: E402
from agentgym.trainers.tracking import read_metrics  # noqa: E402

RECIPES = {"quickstart": "examples/quickstart.yaml", "search": "examples/search_cpu.yaml"}

#: ``--smoke``: the smallest run that goes through every part (not a measurement).
SMOKE = [
    "sft.tasks=16",
    "sft.epochs=1",
    "policy.tiny.episodes=16",
    "trainer.tasks_per_iteration=2",
    "env.rollout.n=4",
    "trainer.val_tasks=4",
    "trainer.test_tasks=4",
]

#: Printed per run and averaged per method: (summary key, column title).
COLUMNS = [
    ("test/success", "success"),
    ("test/invalid_action_rate", "invalid"),
    ("test/tool_calls", "tool calls"),
]


@dataclass(frozen=True)
class Method:
    """One arm of the ablation: a label and the overrides that select it."""

    label: str
    overrides: tuple[str, ...]


@dataclass
class Results:
    """What the runs of one method measured, one entry per seed."""

    test: list[dict[str, float]] = field(default_factory=list)
    #: metric -> iteration -> one value per seed (``val/success`` and each ``--curve KEY``)
    curves: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)  # mean seconds per RL iteration


def _settings(cfg: TrainConfig) -> dict:
    """A run's config without its output folder (a finished run may have been moved)."""
    settings = asdict(cfg)
    settings["trainer"].pop("out_dir")
    return settings


def run(config: str, out: Path, overrides: Sequence[str], reuse: bool = False) -> Path:
    """Train one arm into ``out``; with ``reuse``, a finished run there (with the same
    config) is read instead of trained again. A run's summary.json holds the test before
    RL from its start; ``iterations`` is added when it finishes."""
    cfg = load_config(TrainConfig, config, [*overrides, f"trainer.out_dir={out}"])
    summary = out / "summary.json"
    if reuse and summary.exists() and "iterations" in json.loads(summary.read_text()):
        saved = load_config(TrainConfig, str(out / "config.yaml"), [])
        if _settings(saved) == _settings(cfg):
            print(f"reusing {out}", flush=True)
            return out
        print(f"{out} was run with another config: training it again", flush=True)
    train(cfg, force=True)
    return out


def methods_from(
    args: argparse.Namespace, config: str, overrides: Sequence[str]
) -> tuple[list[Method], list[str]]:
    """The methods the flags name, and the ones skipped because the env lacks an input."""
    base = load_config(TrainConfig, config, list(overrides))
    env_id, env_kwargs = base.env.id, dict(base.env.kwargs)
    # IN_LOOP overrides may name the base config's episodes per iteration
    episodes = base.trainer.tasks_per_iteration * base.env.rollout.n
    chosen: list[Method] = []
    skipped: list[str] = []
    estimators = [*list_estimators(), "seeupo"] if args.estimators == ["all"] else args.estimators
    for name in estimators:
        if name == "none":
            continue
        missing = missing_inputs(needed_info(name), env_id, env_kwargs)
        if missing:
            skipped.append(f"{name} (needs {', '.join(missing)})")
            continue
        arm = IN_LOOP.get(name, (f"algorithm.adv_estimator={name}",))
        chosen.append(Method(name, tuple(o.replace("{episodes}", str(episodes)) for o in arm)))
    shapers = list_reward_shapers() if args.shapers == ["all"] else (args.shapers or [])
    for name in shapers:
        missing = missing_inputs(list(required_info(name)), env_id, env_kwargs)
        if missing:
            skipped.append(f"{args.base}+{name} (needs {', '.join(missing)})")
            continue
        chosen.append(
            Method(
                f"{args.base}+{name}",
                (
                    f"algorithm.adv_estimator={args.base}",
                    f"algorithm.reward_shaping=[{{name: {name}}}]",
                ),
            )
        )
    for spec in args.method or []:
        label, _, rest = spec.partition(":")
        if not rest:
            raise SystemExit(f"--method {spec!r}: write LABEL:override;override;...")
        chosen.append(Method(label, tuple(o for o in rest.split(";") if o.strip())))
    return chosen, skipped


#: Methods with a model in the loop (issue 16): what each needs besides its estimator's
#: name. ArenaRL and MAPO ask the rule judge (``agentgym.judges:rule_based``: pairwise,
#: success first then fewer steps -- a ranking that differs from the binary reward; per
#: turn, 10 for a valid action); SPO plays one rollout per task with its prioritised
#: sampler, on as many tasks per iteration as the other arms play episodes (the same
#: budget: ``{episodes}`` is the base config's tasks x rollouts per iteration); SeeUPO is
#: an update schedule on GRPO advantages with GSPO's sequence ratio; HiPER answers in its
#: switch/subgoal/action format. ``--estimators seeupo`` selects it.
IN_LOOP: dict[str, tuple[str, ...]] = {
    "arenarl": ("algorithm.adv_estimator=arenarl", "judge.model=agentgym.judges:rule_based"),
    "mapo": ("algorithm.adv_estimator=mapo", "judge.model=agentgym.judges:rule_based"),
    "spo": (
        "algorithm.adv_estimator=spo",
        "algorithm.task_sampler={name: spo}",
        "env.rollout.n=1",
        "trainer.tasks_per_iteration={episodes}",
    ),
    # HiPER's responses have their own format: its arm runs SFT again (on the expert's
    # demonstrations rendered in that format) from the shared SFT model, so it gets more
    # SFT than the others -- say so next to its figures. The format is longer than a bare
    # action: in the quickstart's 12 tokens every response was cut before </action> (100%
    # invalid, each feedback message making the next prompt longer), hence 24.
    "hiper": (
        "algorithm.adv_estimator=hiper",
        "env.action_parser=hiper",
        "sft.enabled=true",
        "policy.sampling.max_tokens=24",
        "policy.val_sampling.max_tokens=24",
    ),
    "seeupo": (
        "algorithm.adv_estimator=grpo",
        "actor.policy_loss=gspo",
        "actor.update_schedule={name: seeupo}",
    ),
}


def needed_info(name: str) -> list[str]:
    """The env inputs a method needs: its estimator's inputs that no input provider fills,
    and the ``info`` keys its providers read (IGPO's ``gold_answer``)."""
    if name == "seeupo":
        return []
    from agentgym.providers import get_input_provider, provider_for_input, providers_for

    inputs = estimator_inputs(name)
    own = [n for n in inputs if provider_for_input(n) is None]
    return own + [key for p in providers_for(inputs) for key in get_input_provider(p).requires_info]


LLDS = "actor.loss_terms={llds: {coef: 0.1}}"


def claim_setup(claim: str) -> tuple[str, list[int], list[Method]]:
    """Recipe, seeds and methods of a claim (see the module docstring)."""
    if claim == "llds":
        steps = "actor.mini_batch_size=128"
        grpo = "algorithm.adv_estimator=grpo"
        return (
            RECIPES["quickstart"],
            [1],
            [
                Method("grpo", (grpo,)),
                Method("grpo+llds", (grpo, LLDS)),
                Method("grpo, mini-batches", (grpo, steps)),
                Method("grpo+llds, mini-batches", (grpo, steps, LLDS)),
            ],
        )
    if claim == "otc":
        grpo = "algorithm.adv_estimator=grpo"
        return (
            RECIPES["search"],
            [0, 1, 2],
            [
                Method("grpo", (grpo,)),
                Method("grpo+otc", (grpo, "algorithm.reward_shaping=[{name: otc}]")),
                Method(
                    "grpo+otc_ppo",
                    (grpo, "algorithm.reward_shaping=[{name: otc, variant: ppo}]"),
                ),
            ],
        )
    if claim == "branching":
        tree = (
            "env.rollout.strategy=tree",
            "env.rollout.tree={roots: 4, branch_factor: 3, depths: [4], leaves: 12}",
        )
        return (
            RECIPES["quickstart"],
            [0, 1, 2],
            [
                Method("group+gigpo", ("algorithm.adv_estimator=gigpo", "env.rollout.n=8")),
                Method("tree+gigpo", ("algorithm.adv_estimator=gigpo", *tree)),
                Method("tree+treepo", ("algorithm.adv_estimator=treepo", *tree)),
            ],
        )
    raise SystemExit(f"unknown claim {claim!r}: choose llds, otc or branching")


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "-"


def table(
    methods: list[Method], results: dict[str, Results], sft: list[dict[str, float]]
) -> list[str]:
    """The result table as Markdown lines."""
    lines = [
        "| method | test success (mean ± std) | per seed | 95% interval (mean) | invalid rate "
        "| tool calls | steps | truncated | s / iteration | gain over SFT |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = [r["test/success"] for r in sft]

    def row(label: str, runs: list[dict[str, float]], seconds: list[float], gain: bool) -> str:
        success = [r["test/success"] for r in runs]
        low = np.mean([r.get("test/success_ci_low", np.nan) for r in runs])
        high = np.mean([r.get("test/success_ci_high", np.nan) for r in runs])
        invalid = [r.get("test/invalid_action_rate", np.nan) for r in runs]
        calls = [r.get("test/tool_calls", np.nan) for r in runs]
        steps = [r.get("test/steps", np.nan) for r in runs]
        truncated = [r.get("test/truncated_rate", np.nan) for r in runs]
        pace = f"{np.mean(seconds):.1f}" if seconds else ""
        diff = np.array(success) - np.array(base[: len(success)])
        return (
            f"| {label} | {_mean_std(success)} | {', '.join(f'{s:.3f}' for s in success)} "
            f"| [{low:.3f}, {high:.3f}] | {np.mean(invalid):.3f} | {np.mean(calls):.2f} "
            f"| {np.mean(steps):.2f} | {np.mean(truncated):.3f} | {pace} "
            f"| {f'{np.mean(diff):+.3f} ± {np.std(diff):.3f}' if gain else ''} |"
        )

    if sft:
        lines.append(row("SFT only", sft, [], gain=False))
    for m in methods:
        if results[m.label].test:
            r = results[m.label]
            lines.append(row(m.label, r.test, r.seconds, gain=True))
    return lines


def curve_table(
    key: str, methods: list[Method], results: dict[str, Results], every: int
) -> list[str]:
    """A training metric by iteration (every ``every``-th, and the first and last), mean
    over seeds, one column per method that logged it, as Markdown lines."""
    logged = [m for m in methods if results[m.label].curves.get(key)]
    if not logged:
        return [f"(no run logged {key})"]
    points = sorted({it for m in logged for it in results[m.label].curves[key]})
    shown = [it for it in points if it in (points[0], points[-1]) or it % every == 0]
    lines = [
        f"`{key}` by iteration, mean over seeds",
        "",
        "| iteration | " + " | ".join(m.label for m in logged) + " |",
        "|---" * (len(logged) + 1) + "|",
    ]
    for it in shown:
        cells = []
        for m in logged:
            values = results[m.label].curves[key].get(it, [])
            cells.append(f"{np.mean(values):.2g}" if values else "")
        lines.append(f"| {it} | " + " | ".join(cells) + " |")
    return lines


def otc_verdict(results: dict[str, Results]) -> list[str]:
    """Tool calls of each OTC arm against GRPO, and whether EM stayed equal (the per-seed
    differences of test success within two standard errors of 0); empty unless both ran."""
    out = []
    ref = results.get("grpo")
    if ref is None or not ref.test:
        return out
    em0 = np.array([r["test/success"] for r in ref.test])
    calls0 = np.array([r["test/tool_calls"] for r in ref.test])
    for label in ("grpo+otc", "grpo+otc_ppo"):
        if label not in results or not results[label].test:
            continue
        em = np.array([r["test/success"] for r in results[label].test])
        calls = np.array([r["test/tool_calls"] for r in results[label].test])
        diff = em - em0[: len(em)]
        se = np.std(diff, ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        equal = bool(np.isfinite(se) and abs(diff.mean()) <= 2 * se)
        out.append(
            f"{label}: tool calls {calls.mean():.2f} vs grpo {calls0.mean():.2f} "
            f"({calls.mean() / max(calls0.mean(), 1e-9):.2f}x); EM {em.mean():.3f} vs "
            f"{em0.mean():.3f} (difference {diff.mean():+.3f}, "
            f"{'equal within 2 standard errors' if equal else 'NOT equal (or too few seeds)'})"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="quickstart")
    parser.add_argument("--config", default=None, help="a YAML instead of --recipe's")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1 2")
    parser.add_argument(
        "--estimators",
        nargs="+",
        default=None,
        help="estimators to run ('all': every registered one; 'none'); default grpo gigpo hgpo",
    )
    parser.add_argument(
        "--shapers", nargs="+", default=None, help="reward shapers on top of --base ('all')"
    )
    parser.add_argument("--base", default="grpo", help="the estimator under --shapers")
    parser.add_argument(
        "--method",
        action="append",
        help="LABEL:override;override;... (repeatable), e.g. 'bal:actor.loss_agg_mode=balanced'",
    )
    parser.add_argument("--claim", choices=["llds", "otc", "branching"], default=None)
    parser.add_argument("--iterations", type=int, default=None, help="default: the config's")
    parser.add_argument(
        "--val-every", type=int, default=None, help="0: no validation; default: the config's"
    )
    parser.add_argument("--smoke", action="store_true", help="1 iteration, tiny sizes")
    parser.add_argument("--out", default="runs/credit_ablation")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="read runs already finished under --out instead of training them again (to "
        "resume, or to run seeds in separate processes and then build one table)",
    )
    parser.add_argument(
        "--curve",
        action="append",
        default=[],
        help="a training metric to print by iteration, mean over seeds (repeatable), e.g. "
        "perf/mismatch_kl",
    )
    parser.add_argument(
        "--curve-every", type=int, default=5, help="--curve's rows: every N iterations"
    )
    parser.add_argument("overrides", nargs="*", help="extra dotted overrides for every run")
    args = parser.parse_args()

    overrides = [*(SMOKE if args.smoke else []), *args.overrides]
    if args.claim:
        config, seeds, methods = claim_setup(args.claim)
        config = args.config or config
        seeds = args.seeds or seeds
        skipped: list[str] = []
    else:
        config = args.config or RECIPES[args.recipe]
        seeds = args.seeds or [0, 1, 2]
        if args.estimators is None and not args.shapers and not args.method:
            args.estimators = ["grpo", "gigpo", "hgpo"]
        args.estimators = args.estimators or []
        methods, skipped = methods_from(args, config, overrides)
    if not methods:
        raise SystemExit("no method to run (see --estimators, --shapers, --method)")
    base = load_config(TrainConfig, config, overrides)
    iterations = 1 if args.smoke else (args.iterations or base.trainer.total_iterations)
    if args.val_every is not None:  # 0: no validation
        val_every = args.val_every
    else:
        val_every = 0 if args.smoke else base.trainer.val_every
    out = Path(args.out)
    print(
        f"{config}: {len(methods)} method(s) x seeds {seeds}, {iterations} iterations each"
        + (f"; skipped: {'; '.join(skipped)}" if skipped else ""),
        flush=True,
    )

    results = {m.label: Results() for m in methods}
    sft: list[dict[str, float]] = []
    started = time.perf_counter()
    for seed in seeds:
        sft_dir = run(
            config,
            out / f"seed{seed}" / "sft",
            [*overrides, f"seed={seed}", "trainer.total_iterations=0", "trainer.progress=false"],
            reuse=args.reuse,
        )
        sft.append(json.loads((sft_dir / "summary.json").read_text())["test_before"])
        print(f"seed {seed}: SFT test success {sft[-1]['test/success']:.3f}", flush=True)
        for m in methods:
            folder = m.label.replace(" ", "_").replace("/", "_").replace(",", "")
            rl_dir = run(
                config,
                out / f"seed{seed}" / folder,
                [
                    *overrides,
                    f"seed={seed}",
                    f"policy.model={sft_dir / 'sft-model'}",
                    "sft.enabled=false",
                    *m.overrides,
                    f"trainer.total_iterations={iterations}",
                    f"trainer.val_every={val_every}",
                    "trainer.progress=false",
                ],
                reuse=args.reuse,
            )
            records = list(read_metrics(rl_dir))
            paces = [r["perf/seconds_iteration"] for r in records if "perf/seconds_iteration" in r]
            if paces:
                results[m.label].seconds.append(float(np.mean(paces)))
            for record in records:
                for key in ("val/success", *args.curve):
                    if key in record:
                        by_iteration = results[m.label].curves.setdefault(key, {})
                        by_iteration.setdefault(record["iteration"], []).append(record[key])
            if args.claim == "branching":  # the generation budget the arm spent
                spent = [
                    r["perf/rollout_generated_tokens"]
                    for r in records
                    if "perf/rollout_generated_tokens" in r
                ]
                print(f"seed {seed}: {m.label}: {np.mean(spent):.0f} tokens generated per "
                      "iteration", flush=True)  # fmt: skip
            after = json.loads((rl_dir / "summary.json").read_text())["test_after"]
            results[m.label].test.append(after)
            cells = ", ".join(
                f"{title} {after.get(key, float('nan')):.3f}" for key, title in COLUMNS
            )
            print(f"seed {seed}: {m.label}: {cells}", flush=True)

    minutes = (time.perf_counter() - started) / 60
    validation = {label: r.curves.get("val/success", {}) for label, r in results.items()}
    points = sorted({it for curve in validation.values() for it in curve})
    if points:
        print("\nvalidation success (greedy, valid split) by iteration, mean ± std over seeds")
        print(f"{'iteration':>10}" + "".join(f"{m.label[:22]:>24}" for m in methods))
        for it in points:
            cells = [_mean_std(validation[m.label].get(it, [])) for m in methods]
            print(f"{it:>10}" + "".join(f"{c:>24}" for c in cells))
    lines = table(methods, results, sft)
    for key in args.curve:
        lines += ["", *curve_table(key, methods, results, args.curve_every)]
    head = (
        f"{config}, seeds {seeds}, {iterations} RL iterations from the same SFT model per "
        f"seed; held-out test split; {minutes:.0f} min in all"
        + (" (runs read back with --reuse not counted)" if args.reuse else "")
    )
    print(f"\n{head}\n" + "\n".join(lines))
    verdict = otc_verdict(results)
    for line in verdict:
        print(line)
    if args.markdown:
        path = Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([head, "", *lines, "", *verdict]) + "\n")
        print(f"table written to {path}")


if __name__ == "__main__":
    main()
