"""Weight-sync latency and rollout throughput of the ``vllm_server`` backend, 1 vs 2 servers.

For each model size (random Qwen2 models built like ``agentgym model tiny``):

* **weight sync**: seconds of ``load_weights`` (the whole push: pause, start, the chunks,
  finish, resume) to one server and to two servers at once (``transfer: pull``), to one
  server with ``transfer: inline``, and the in-process ``vllm`` backend's
  ``load_weights`` as the baseline, all in this run;
* **rollout throughput**: generated tokens/s for a batch of prompts (``--prompts`` x up to
  ``--tokens`` tokens, temperature 1) with one server and with two, where the two servers
  each run on their own share of the cores (the layout of ``servers: 2`` on one machine,
  and of one server per machine), and with one server on all the cores.

Medians of ``--repeats`` runs; ratios against the one-server figure of the same run.
Usage::

    python benchmarks/server_speed.py [--sizes 1x64 4x512] [--prompts 64 --tokens 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agentgym.runtime import configure_cpu_runtime

configure_cpu_runtime()  # before torch starts its thread pool (see agentgym.runtime)

from agentgym.policies import PolicyInput, SamplingParams, make_policy  # noqa: E402
from agentgym.policies.vllm_launch import LocalVLLMServer  # noqa: E402

SERVER = {"max_model_len": 512, "kv_cache_memory_bytes": 256 << 20}


def build_model(layers: int, hidden: int, out: Path) -> Path:
    from agentgym.models import build_tiny_model, env_corpus

    texts = env_corpus("FrozenLake-v0", episodes=32, seed=0)
    build_tiny_model(texts, out, layers=layers, hidden=hidden, vocab_size=512, seed=0)
    return out


def state_dict(model_dir: Path, seed: int) -> dict[str, Any]:
    """The model's weights, perturbed (each push carries different numbers)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return {
            k: v + 0.01 * torch.randn(v.shape, generator=gen) for k, v in model.state_dict().items()
        }


def sync_seconds(policy: Any, model_dir: Path, syncs: int) -> float:
    weights = [state_dict(model_dir, seed) for seed in range(2)]
    policy.load_weights(weights[1])  # warm-up
    times = []
    for i in range(syncs):
        start = time.perf_counter()
        policy.load_weights(weights[i % 2])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tokens_per_s(policy: Any, prompts: int, tokens: int, repeats: int) -> float:
    tok = policy.tokenizer
    inputs = [
        PolicyInput(prompt_ids=tok.encode(f"FFFF\nHHHF\nFPFG step {i}", add_special_tokens=False))
        for i in range(prompts)
    ]
    sampling = SamplingParams(temperature=1.0, max_tokens=tokens, seed=0)
    policy.generate(inputs[:4], sampling)  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        gens = policy.generate(inputs, sampling)
        seconds = time.perf_counter() - start
        bad = [g.error for g in gens if g.finish_reason == "error"]
        if bad:
            raise RuntimeError(f"generation failed: {bad[0]}")
        rates.append(sum(len(g.token_ids) for g in gens) / seconds)
    return statistics.median(rates)


def params_of(model_dir: Path) -> tuple[int, int]:
    """Parameters, and the bytes one push carries (every state-dict name, float32)."""
    import json

    weights = state_dict(model_dir, 0)
    pushed = sum(v.numel() * v.element_size() for v in weights.values())
    return int(json.loads((model_dir / "agentgym_tiny.json").read_text())["parameters"]), pushed


def measure(model_dir: Path, args: argparse.Namespace, logs: Path) -> dict[str, float]:
    spec = f"vllm_server:{model_dir}"
    out: dict[str, float] = {}
    pair = make_policy(spec, servers=2, log_dir=str(logs / "pair"), **SERVER)
    try:
        urls = [slot.url for slot in pair.servers]
        one = make_policy(spec, servers=urls[:1])
        try:
            out["sync_1"] = sync_seconds(one, model_dir, args.syncs)
            out["sync_2"] = sync_seconds(pair, model_dir, args.syncs)
            one.transfer = "inline"  # the bytes base64 in the requests, not pulled
            out["sync_1_inline"] = sync_seconds(one, model_dir, args.syncs)
            out["tps_1"] = tokens_per_s(one, args.prompts, args.tokens, args.repeats)
            out["tps_2"] = tokens_per_s(pair, args.prompts, args.tokens, args.repeats)
        finally:
            one.close()
    finally:
        pair.close()
    if args.all_cores:
        server = LocalVLLMServer(model_dir, log_path=logs / "all-cores.log", **SERVER)
        try:
            server.wait_ready()
            with make_policy(spec, servers=[server.url]) as whole:
                out["tps_all"] = tokens_per_s(whole, args.prompts, args.tokens, args.repeats)
        finally:
            server.close()
    if args.inprocess:
        with make_policy(f"vllm:{model_dir}", **SERVER) as local:
            out["sync_inprocess"] = sync_seconds(local, model_dir, args.syncs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["1x64", "4x512"], help="LAYERSxHIDDEN")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--syncs", type=int, default=5)
    parser.add_argument("--no-all-cores", dest="all_cores", action="store_false")
    parser.add_argument("--no-inprocess", dest="inprocess", action="store_false")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="server-speed-") as tmp:
        for size in args.sizes:
            layers, hidden = (int(x) for x in size.split("x"))
            model_dir = build_model(layers, hidden, Path(tmp) / size)
            started = time.perf_counter()
            figures = measure(model_dir, args, Path(tmp) / f"logs-{size}")
            figures["seconds"] = time.perf_counter() - started
            rows.append((size, params_of(model_dir), figures))
            print(size, {k: round(v, 4) for k, v in figures.items()}, flush=True)

    print("\n| model | parameters | bytes pushed | sync, 1 server | sync, 2 servers (ratio) "
          "| 1 server, inline (ratio) | in-process vllm (ratio) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for size, (params, pushed), f in rows:
        inproc = f.get("sync_inprocess")
        inproc_text = f"{inproc:.3f} s ({inproc / f['sync_1']:.2f}x)" if inproc else "-"
        print(
            f"| {size} | {params:,} | {pushed / 2**20:.1f} MiB | {f['sync_1']:.3f} s "
            f"| {f['sync_2']:.3f} s ({f['sync_2'] / f['sync_1']:.2f}x) "
            f"| {f['sync_1_inline']:.3f} s ({f['sync_1_inline'] / f['sync_1']:.2f}x) "
            f"| {inproc_text} |"
        )
    print("\n| model | tokens/s, 1 server (1 core share) | 2 servers (ratio) "
          "| 1 server on all cores (ratio) |")  # fmt: skip
    print("|---|---:|---:|---:|")
    for size, _params, f in rows:
        whole = f.get("tps_all")
        whole_text = f"{whole:,.0f} ({whole / f['tps_1']:.2f}x)" if whole else "-"
        print(
            f"| {size} | {f['tps_1']:,.0f} | {f['tps_2']:,.0f} ({f['tps_2'] / f['tps_1']:.2f}x) "
            f"| {whole_text} |"
        )


if __name__ == "__main__":
    main()
