"""Retrieval and search-environment speed on a large synthetic corpus.

Generates a synthetic world of ``--passages`` passages (default 100,000) in a temporary
folder, then measures:

* BM25 index build time, and the load time once it is cached on disk;
* retrieval queries/s in-process (one query per call, and batches) and over HTTP against
  ``agentgym serve-retriever`` started as a subprocess (one query per request, the same
  from several client threads as a vectorised rollout sends them, and batched requests);
* ``Search-v0`` environment steps/s with the expert and a random policy, on the large
  world (in-process and over HTTP) and on the small shipped world.

The queries are the expert's hop queries (entity names) and the full question texts, in
equal parts. Usage: ``python benchmarks/search_speed.py [--passages 100000] [--queries 2000]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from agentgym.envs.search import SearchEnv, load_qa
from agentgym.envs.search.world import WorldConfig, generate_world
from agentgym.tools.retrieval import BM25Retriever, HTTPRetriever


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def queries_per_s(search_batch, queries: list[str], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(queries), batch):
        search_batch(queries[i : i + batch])
    return len(queries) / (time.perf_counter() - start)


def start_server(corpus: Path, port: int, cache_dir: Path) -> subprocess.Popen:
    script = Path(sys.executable).with_name("agentgym")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "agentgym.cli"]
    env = {**os.environ, "AGENTGYM_CACHE_DIR": str(cache_dir)}
    proc = subprocess.Popen(
        [*cmd, "serve-retriever", "--corpus", str(corpus), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve-retriever exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("serve-retriever did not start")


def env_speed(env: SearchEnv, policy: str, episodes: int, seed: int = 0) -> str:
    """Steps/s of ``policy`` over ``episodes`` train tasks, and its exact-match rate."""
    rng = np.random.default_rng(seed)
    ids = list(env.task_ids("train"))
    steps, solved, start = 0, 0, time.perf_counter()
    for e in range(episodes):
        env.reset(seed=e, options={"task_id": ids[e % len(ids)]})
        for _ in range(4):  # Search-v0's turn limit
            action = env.expert_action() if policy == "expert" else env.random_action(rng)
            _, _, terminated, _, info = env.step(action)
            steps += 1
            if terminated:
                solved += bool(info["success"])
                break
    rate = steps / (time.perf_counter() - start)
    return f"{rate:,.0f} steps/s (EM {solved / episodes:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--port", type=int, default=18731)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory(prefix="agentgym-search-bench-") as tmp:
        tmp_path = Path(tmp)
        config = WorldConfig.with_passages(args.passages, seed=0, max_questions=5000)
        world, seconds = timed(lambda: generate_world(config))
        corpus_path, qa_path = world.write(tmp_path / "world")
        rows.append(("world generation", f"{seconds:.2f} s for {len(world.passages):,} passages"))

        cache = tmp_path / "cache"
        retriever, seconds = timed(lambda: BM25Retriever(corpus_path, cache=True, cache_dir=cache))
        rows.append(("BM25 index build (bm25s)", f"{seconds:.2f} s"))
        _, seconds = timed(lambda: BM25Retriever(corpus_path, cache=True, cache_dir=cache))
        rows.append(("BM25 index load from cache", f"{seconds:.2f} s (incl. reading the corpus)"))

        qa = load_qa(qa_path)
        hop_queries = [h.query for row in qa.by_id.values() for h in row.hops]
        questions = [row.question for row in qa.by_id.values()]
        rng = np.random.default_rng(0)
        half = args.queries // 2
        queries = [str(q) for q in rng.choice(hop_queries, half)]
        queries += [str(q) for q in rng.choice(questions, args.queries - half)]
        rng.shuffle(queries)

        single = queries_per_s(retriever.search_batch, queries[:500], 1)
        rows.append(("in-process, 1 query per call", f"{single:,.0f} queries/s"))
        for batch in (32, 256):
            rate = queries_per_s(retriever.search_batch, queries, batch)
            rows.append((f"in-process, batches of {batch}", f"{rate:,.0f} queries/s"))

        server = start_server(corpus_path, args.port, cache)
        url = f"http://127.0.0.1:{args.port}/retrieve"
        try:
            client = HTTPRetriever(url, timeout=60)
            rate = queries_per_s(client.search_batch, queries[:300], 1)
            rows.append(("HTTP, 1 query per request", f"{rate:,.0f} queries/s"))
            verl = HTTPRetriever(url, timeout=60, request_format="query")
            with ThreadPoolExecutor(8) as pool:
                start = time.perf_counter()
                list(pool.map(lambda q: verl.search(q, 3), queries[:800]))
                rate = 800 / (time.perf_counter() - start)
            rows.append(("HTTP, 1 query per request, 8 client threads", f"{rate:,.0f} queries/s"))
            for batch in (32, 256):
                rate = queries_per_s(client.search_batch, queries, batch)
                rows.append((f"HTTP, batches of {batch} per request", f"{rate:,.0f} queries/s"))

            big = SearchEnv(corpus=str(corpus_path), qa=str(qa_path), cache_dir=str(cache))
            for policy in ("expert", "random"):
                speed = env_speed(big, policy, args.episodes)
                rows.append((f"Search-v0, {policy}, large world, in-process", speed))
            remote = SearchEnv(retriever=url, qa=str(qa_path))
            speed = env_speed(remote, "expert", args.episodes // 3)
            rows.append(("Search-v0, expert, large world, over HTTP", speed))
            remote.close()
        finally:
            server.terminate()
            server.wait(timeout=30)

        small = SearchEnv()
        for policy in ("expert", "random"):
            rows.append((f"Search-v0, {policy}, shipped world", env_speed(small, policy, 600)))

    width = max(len(name) for name, _ in rows)
    print(f"search speed: {args.passages:,}-passage synthetic corpus, {os.cpu_count()} CPU cores")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
