"""Asynchronous vs lock-step rollouts: wall time per rollout batch and generation busy share.

For each environment, the same tasks x rollouts are played by the lock-step engine
(``env.rollout.mode: sync``) and by the asynchronous one (``async``: one agent loop per
episode, :mod:`agentgym.rollout.async_engine`), in alternating rounds (so a change in the
machine's load hits both), and it prints per mode the median wall seconds per rollout
batch, the generation busy share (the fraction of wall time during which the backend had at
least one generate call in flight) and the env busy share, then the ratio sync / async
measured in the same run.

Equal samples: the policy is the environment's expert *paced by a real model*: every
prompt goes through the tiny model's batched ``generate`` (``hf``, ``--max-tokens`` new
tokens, real batching, real cost), and the response is then the expert's action. Both modes
therefore play exactly the same trajectories (the script checks it) and step the same
environments the same number of times; what differs is only how generation and environment
steps overlap. (A randomly initialised tiny model's responses do not parse as CodeSandbox
tool calls or ALFWorld commands, so its episodes would never step those environments.)

Environments and pools (``--envs``):

``FrozenLake-v0``   fast env (microseconds per step), ``inline`` pool;
``CodeSandbox-v0``  slow env: each ``run``/``submit`` executes code in a subprocess (the
                    ``local`` sandbox runner), ``threads`` pool;
``ALFWorld-v0``     slow env: TextWorld's PDDL engine with games generated offline,
                    ``processes`` pool (its engine is CPU-bound and not thread-safe);
``SlowLake``        FrozenLake-v0 with an *artificial* wait of 50-350 ms per step
                    (``--wait-ms``; drawn per task and step, the same in both modes),
                    standing for an env that waits on something else (a remote sandbox,
                    a web server, a simulator in another process); ``threads`` pool.

Usage::

    python benchmarks/async_speed.py [--envs FrozenLake-v0 CodeSandbox-v0 ALFWorld-v0 SlowLake]
        [--tasks 8 --n 4 --repeats 3 --max-tokens 24 --model DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentgym.runtime import configure_cpu_runtime

configure_cpu_runtime()  # before torch starts its thread pool (see agentgym.runtime)

from agentgym.env import StepResult, stable_hash  # noqa: E402
from agentgym.envs.frozenlake import FrozenLakeEnv  # noqa: E402
from agentgym.policies.base import Generation, PolicyInput, SamplingParams  # noqa: E402
from agentgym.policies.hf import HFPolicy  # noqa: E402
from agentgym.rollout import EnvSpec, sample_tasks  # noqa: E402
from agentgym.rollout.build import build_engine  # noqa: E402

MODULE = Path(__file__).stem  # the env class below is imported by this file's name


class SlowLake(FrozenLakeEnv):
    """FrozenLake-v0 that waits ``wait_ms`` (low, high) per step: an artificial delay, drawn
    from the task and the step index so both rollout modes wait the same."""

    def __init__(self, wait_ms: tuple[float, float] = (50.0, 350.0), **kw: Any) -> None:
        super().__init__(**kw)
        self.wait_ms = wait_ms

    def _step(self, action: str) -> StepResult:
        self._waits = getattr(self, "_waits", 0) + 1
        low, high = self.wait_ms
        share = (stable_hash(self._task_id, self._waits) % 1000) / 1000
        time.sleep((low + (high - low) * share) / 1000)
        return super()._step(action)

    def _load_task(self, task_id: str, split: str, rng: Any) -> Any:
        self._waits = 0
        return super()._load_task(task_id, split, rng)


#: name -> (env id, pool, pool options, max steps)
ENVS: dict[str, tuple[str, str, dict[str, Any], int | None]] = {
    "FrozenLake-v0": ("FrozenLake-v0", "inline", {}, None),
    "CodeSandbox-v0": ("CodeSandbox-v0", "threads", {}, None),
    "ALFWorld-v0": ("ALFWorld-v0", "processes", {"num_workers": 4}, 20),
    "SlowLake": (f"{MODULE}:SlowLake", "threads", {}, None),
}


class ModelPaced:
    """The env's expert, paying a real ``generate`` of the model for every prompt.

    Generation runs on the model exactly as its backend does (the cost of inference, with
    the backend's own batching), then each prompt is answered with the expert's action (so
    every turn steps the environment, and both rollout modes play the same trajectories).
    """

    wants_hints = frozenset({"expert_action"})
    tokenizer: Any

    def _as_expert(self, item: PolicyInput, gen: Generation) -> Generation:
        text = item.hints.get("expert_action") or ""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return Generation(text, token_ids=ids, prompt_ids=gen.prompt_ids)

    def generate(self, inputs: Sequence[PolicyInput], sampling: SamplingParams) -> list[Generation]:
        gens = super().generate(inputs, sampling)  # type: ignore[misc]
        return [self._as_expert(item, gen) for item, gen in zip(inputs, gens, strict=True)]

    async def agenerate(
        self, item: PolicyInput, sampling: SamplingParams, index: int = 0
    ) -> Generation:
        return self._as_expert(item, await super().agenerate(item, sampling, index))  # type: ignore[misc]


class PacedHF(ModelPaced, HFPolicy):
    """``hf``: transformers ``generate``; async requests through the batching queue."""


def paced_policy(backend: str, model: str) -> Any:
    if backend == "hf":
        return PacedHF("hf:" + model, model)
    from agentgym.policies.vllm import VLLMPolicy

    class PacedVLLM(ModelPaced, VLLMPolicy):
        """``vllm``: the in-process engine, batching continuously."""

    return PacedVLLM("vllm:" + model, model, max_model_len=4096)


def build_model(out: Path, envs: Sequence[str]) -> str:
    from agentgym.models import env_corpus
    from agentgym.models.tiny import build_tiny_model

    texts = [t for env in envs for t in env_corpus(env, episodes=16)]
    build_tiny_model(texts, out, layers=2, hidden=128, vocab_size=1024)
    return str(out)


def measure(env: str, policy: Any, args: argparse.Namespace) -> dict[str, Any]:
    env_id, pool, options, max_steps = ENVS[env]
    kwargs = {"wait_ms": tuple(args.wait_ms)} if env == "SlowLake" else {}
    spec = EnvSpec(env_id, kwargs, max_steps=max_steps)
    sampling = SamplingParams(temperature=1.0, max_tokens=args.max_tokens, seed=0)
    tasks = sample_tasks(spec, "train", args.tasks, seed=0)
    size = args.tasks * args.n
    engines = {
        mode: build_engine(
            spec,
            policy,
            sampling,
            executor=pool,
            executor_options=options,
            pool_size=size,
            timeout=300,
            mode=mode,
        )
        for mode in ("sync", "async")
    }
    walls: dict[str, list[float]] = {m: [] for m in engines}
    gen_share: dict[str, list[float]] = {m: [] for m in engines}
    env_share: dict[str, list[float]] = {m: [] for m in engines}
    results: dict[str, Any] = {}
    try:
        for engine in engines.values():  # warm-up: pool start, imports, first generate
            engine.run(tasks[:1], n=1)
        for _ in range(args.repeats):
            for mode, engine in engines.items():
                engine.stats = type(engine.stats)()
                start = time.perf_counter()
                trajs = engine.run(tasks, n=args.n)
                walls[mode].append(time.perf_counter() - start)
                stats = engine.stats
                gen_share[mode].append(stats.seconds_generate / stats.seconds_total)
                env_share[mode].append(stats.seconds_env / stats.seconds_total)
                results[mode] = (trajs, stats.env_steps)
    finally:
        for engine in engines.values():
            engine.close()
    same = [_key(t) for t in results["sync"][0]] == [_key(t) for t in results["async"][0]]
    errors = sum(t.status == "error" for t in results["async"][0])
    row = {"env": env, "pool": pool, "episodes": size, "same": same, "errors": errors}
    for mode in engines:
        row[f"{mode}_s"] = statistics.median(walls[mode])
        row[f"{mode}_gen"] = statistics.median(gen_share[mode])
        row[f"{mode}_env"] = statistics.median(env_share[mode])
        row[f"{mode}_steps"] = results[mode][1]
    return row


def _key(traj: Any) -> tuple:
    return (traj.traj_id, traj.status, [(s.action, s.reward) for s in traj.steps])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--tasks", type=int, default=8, help="tasks per rollout batch")
    parser.add_argument("--n", type=int, default=4, help="rollouts per task")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (median kept)")
    parser.add_argument("--max-tokens", type=int, default=24, help="new tokens per turn")
    parser.add_argument("--model", default=None, help="a model directory (default: tiny)")
    parser.add_argument(
        "--wait-ms",
        nargs=2,
        type=float,
        default=[50.0, 350.0],
        metavar=("LOW", "HIGH"),
        help="SlowLake's artificial wait per step, drawn in [LOW, HIGH] ms",
    )
    parser.add_argument("--backends", nargs="+", default=["hf", "vllm"], choices=["hf", "vllm"])
    args = parser.parse_args()

    model = args.model
    if model is None:
        folder = Path(tempfile.mkdtemp(prefix="async-speed-"))
        started = time.perf_counter()
        model = build_model(folder / "tiny", ["FrozenLake-v0", "CodeSandbox-v0"])
        print(f"built a tiny model in {time.perf_counter() - started:.0f} s")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{os.cpu_count()} cores, load average {load}; {args.tasks} tasks x {args.n} rollouts "
        f"per batch, {args.max_tokens} new tokens per turn, median of {args.repeats} rounds"
    )
    header = (
        f"{'backend':<8}{'env':<16}{'pool':<10}{'steps':>6}{'sync s':>8}{'async s':>9}"
        f"{'sync/async':>11}{'gen busy sync':>14}{'async':>7}{'env busy sync':>14}{'async':>7}"
        "  same"
    )
    print(header)
    for backend in args.backends:
        policy = paced_policy(backend, model)
        for env in args.envs:
            row = measure(env, policy, args)
            errors = f" ({row['errors']} errors)" if row["errors"] else ""
            print(
                f"{backend:<8}{row['env']:<16}{row['pool']:<10}{row['sync_steps']:>6}"
                f"{row['sync_s']:>8.2f}{row['async_s']:>9.2f}"
                f"{row['sync_s'] / row['async_s']:>11.2f}"
                f"{row['sync_gen']:>14.2f}{row['async_gen']:>7.2f}"
                f"{row['sync_env']:>14.2f}{row['async_env']:>7.2f}  "
                f"{'yes' if row['same'] else 'NO'}{errors}",
                flush=True,
            )
        policy.close()


if __name__ == "__main__":
    main()
