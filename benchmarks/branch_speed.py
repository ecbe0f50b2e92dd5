"""What branching rollouts and the Prefix Grouper save, measured on the CPU.

1. Rollouts: generated tokens, env steps and wall time per *distinct* trajectory for
   ``tree`` and ``local`` against ``group`` at the same number of trajectories per task
   (8: ``group`` n=8; ``tree`` 2 roots branching in two at steps 1 and 2, up to 8
   leaves; ``local`` 4 whole episodes + 2 states x 2 re-rolls with a 2-step
   continuation), on FrozenLake with a tiny model after a short SFT (episodes end at
   different steps). Also: steps per trajectory (what a trajectory holds) and generated /
   held tokens (below 1: the trajectories hold steps that were generated once and
   shared).
2. The update (one PPO step, forward + backward) with and without ``actor.shared_prefix``
   (Prefix Grouper) for group sizes 4, 8, 16 and shared prompts of 64-1,024 tokens
   (32-token responses, 2 groups per micro-batch), on the same tiny model and on a
   larger one (``--update-hidden``).

Ratios are against the baseline measured in the same run (``group``; the plain update).
Wall times are medians of ``--repeats``; the machine's load moves them, the token counts
do not. Usage::

    python benchmarks/branch_speed.py [--model DIR] [--tasks 8] [--repeats 3]
    python benchmarks/branch_speed.py --skip-rollouts      # the update only
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from agentgym.runtime import configure_cpu_runtime

configure_cpu_runtime()  # before torch starts its thread pool (see agentgym.runtime)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agentgym.config import TrainConfig, load_config  # noqa: E402
from agentgym.config.schema import ActorSection  # noqa: E402
from agentgym.policies import make_policy  # noqa: E402
from agentgym.rollout import sample_tasks  # noqa: E402
from agentgym.trainers.prefix_grouper import prefix_stats  # noqa: E402
from agentgym.trainers.samples import Sample  # noqa: E402
from agentgym.trainers.setup import build_engine, env_spec, sampling_params  # noqa: E402
from agentgym.trainers.update import ppo_update  # noqa: E402

RECIPE = "examples/quickstart.yaml"


def prepare_model(workdir: Path) -> str:
    """A tiny FrozenLake model after a quick SFT (the quickstart's, shorter)."""
    from agentgym.trainers.rl import train

    cfg = load_config(
        TrainConfig,
        RECIPE,
        [
            f"trainer.out_dir={workdir}",
            "trainer.total_iterations=0",
            "trainer.test_tasks=0",
            "sft.tasks=300",
            "sft.epochs=2",
            "trainer.progress=false",
        ],
    )
    train(cfg)
    return str(workdir / "sft-model")


STRATEGIES = {
    "group": (8, []),
    "tree": (8, ["env.rollout.strategy=tree", "env.rollout.tree={roots: 2, depths: [1, 2]}"]),
    "local": (
        4,
        [
            "env.rollout.strategy=local",
            "env.rollout.local={trajectories: 2, points: 1, k: 2, continuation: 2}",
        ],
    ),
}


def rollouts(model: str, tasks_per_run: int, repeats: int) -> list[str]:
    policy = make_policy(f"hf:{model}")
    rows = []
    base: dict[str, float] = {}
    try:
        for name, (n, overrides) in STRATEGIES.items():
            cfg = load_config(TrainConfig, RECIPE, [f"policy.model={model}", *overrides])
            engine = build_engine(
                cfg, policy, sampling_params(cfg.policy.sampling, seed=0), training=True
            )
            measured = []
            try:
                for r in range(repeats):
                    tasks = sample_tasks(env_spec(cfg), "train", tasks_per_run, seed=100 + r)
                    engine.stats = type(engine.stats)()
                    trajs = engine.run(tasks, n=n, group_prefix=f"r{r}-")
                    # what the trajectories hold (a shared step once per trajectory)
                    held = sum(len(s.response_ids) for t in trajs for s in t.steps)
                    measured.append((engine.stats, held, sum(len(t.steps) for t in trajs)))
            finally:
                engine.close()
            per = {
                "trajectories": _median(s.trajectories / tasks_per_run for s, _, _ in measured),
                "tokens": _median(s.generated_tokens / s.trajectories for s, _, _ in measured),
                "steps": _median(s.env_steps / s.trajectories for s, _, _ in measured),
                "length": _median(steps / s.trajectories for s, _, steps in measured),
                "share": _median(s.generated_tokens / held for s, held, _ in measured),
                "ms": _median(1e3 * s.seconds_total / s.trajectories for s, _, _ in measured),
            }
            if name == "group":
                base = per
            rows.append(
                f"| {name} | {per['trajectories']:.1f} | {per['length']:.2f} | "
                f"{per['tokens']:.1f} ({per['tokens'] / base['tokens']:.2f}x) | "
                f"{per['steps']:.2f} ({per['steps'] / base['steps']:.2f}x) | "
                f"{per['share']:.2f} | {per['ms']:.1f} ({per['ms'] / base['ms']:.2f}x) |"
            )
    finally:
        policy.close()
    head = [
        "| strategy | trajectories per task | steps per trajectory | generated tokens per "
        "trajectory | env steps per trajectory | generated / held tokens | ms per trajectory |",
        "|---|---|---|---|---|---|---|",
    ]
    return head + rows


def _median(values) -> float:
    return statistics.median(list(values))


def group_samples(group: int, prompt: int, groups: int, vocab: int, rng) -> list[Sample]:
    samples = []
    for g in range(groups):
        shared = rng.integers(3, vocab, size=prompt).tolist()
        for _ in range(group):
            response = rng.integers(3, vocab, size=32).tolist()
            advantage = float(rng.normal())
            samples.append(
                Sample(
                    input_ids=shared + response,
                    mask=[0] * prompt + [1] * 32,
                    advantages=[0.0] * prompt + [advantage] * 32,
                    old_logprobs=[float("nan")] * prompt + [-5.0] * 32,
                    traj_index=g,
                    group=g,
                )
            )
    return samples


def update_seconds(model, samples: list[Sample], shared: bool, repeats: int) -> float:
    actor = ActorSection(micro_batch_size=len(samples), shared_prefix=shared)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the same model every repeat
    times = []
    for r in range(repeats + 1):
        start = time.perf_counter()
        ppo_update(
            model, optimizer, samples, actor, norm_length=32.0, pad_id=0,
            rng=np.random.default_rng(r),
        )  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first one warms up


def updates(models: dict[str, torch.nn.Module], repeats: int) -> list[str]:
    rng = np.random.default_rng(0)
    rows = [
        "| model | group size | prompt tokens | tokens plain / packed | update s plain | "
        "update s Prefix Grouper | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, model in models.items():
        for group in (4, 8, 16):
            for prompt in (64, 256, 1024):
                samples = group_samples(group, prompt, 2, model.config.vocab_size, rng)
                stats = prefix_stats(samples)
                plain = update_seconds(model, samples, False, repeats)
                packed = update_seconds(model, samples, True, repeats)
                rows.append(
                    f"| {label} | {group} | {prompt} | {stats['tokens_plain']} / "
                    f"{stats['tokens_packed']} | {plain:.3f} | {packed:.3f} | "
                    f"{plain / packed:.2f}x |"
                )
                print(rows[-1], flush=True)
    return rows


def larger_model(vocab: int, hidden: int, layers: int) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        head_dim=64,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        use_sliding_window=False,
    )
    torch.manual_seed(0)
    return Qwen2ForCausalLM(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a FrozenLake model directory (default: build one)")
    parser.add_argument("--tasks", type=int, default=8, help="tasks per rollout run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--update-hidden", type=int, default=256)
    parser.add_argument("--update-layers", type=int, default=2)
    parser.add_argument("--skip-rollouts", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or prepare_model(Path(tmp) / "run")
        if not args.skip_rollouts:
            print("\n".join(rollouts(model_dir, args.tasks, args.repeats)), flush=True)
        from agentgym.trainers.model import load_model

        tiny, _ = load_model(model_dir, "float32", "cpu")
        models = {
            "tiny (quickstart)": tiny,
            f"{args.update_layers}x{args.update_hidden}": larger_model(
                tiny.config.vocab_size, args.update_hidden, args.update_layers
            ),
        }
        print("\n".join(updates(models, args.repeats)))


if __name__ == "__main__":
    main()
