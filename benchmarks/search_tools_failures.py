"""Where Search-v0 episodes fail: each episode of an evaluation, classified by its first
failure along the question's search chain.

Usage::

    agentgym eval --policy runs/search_tools/sft-model --out runs/eval/sft
    agentgym eval --policy runs/search_tools --out runs/eval/rl
    python benchmarks/search_tools_failures.py runs/eval/sft runs/eval/rl

Classes (the first that applies, in this order):

``success``        the answer is right (exact match);
``invalid call``   a turn did not parse or the env refused it (bad JSON, unknown tool);
``wrong query``    a search did not retrieve the next passage of the chain (the expert's
                   hops: the passage that answers hop k) and the chain was never completed;
``early answer``   answered before every passage of the chain was retrieved;
``wrong answer``   every passage retrieved, the answer wrong;
``no answer``      every passage retrieved, but the turn limit came first;
``other``          anything else (errors, a model that never searched the first hop ...).

Also per evaluation: episodes, exact match, tool calls per episode, the share of episodes
that retrieved hop k of the chain (k = 1, 2, 3) and the share of repeated searches.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import agentgym
from agentgym.trajectory import Trajectory, read_jsonl

CLASSES = (
    "success",
    "invalid call",
    "wrong query",
    "early answer",
    "wrong answer",
    "no answer",
    "other",
)


def classify(traj: Trajectory, chain: list[str]) -> str:
    """The class of one episode; ``chain`` is the doc id of each hop, in order."""
    if traj.success:
        return "success"
    if traj.status == "error":
        return "other"
    if any(not s.action_valid for s in traj.steps):
        return "invalid call"
    retrieved: set[str] = set()
    answered = False
    for step in traj.steps:
        retrieved.update(step.info.get("retrieved_ids") or [])
        answered = answered or "answer" in step.info
    complete = all(doc in retrieved for doc in chain)
    if not complete:
        return "early answer" if answered else "wrong query"
    return "wrong answer" if answered else "no answer"


def breakdown(results: Path) -> dict[str, Any]:
    """The figures of one evaluation directory (or its ``results.jsonl``)."""
    path = results / "results.jsonl" if results.is_dir() else results
    trajs = read_jsonl(path)
    if not trajs:
        raise SystemExit(f"{path} holds no episodes")
    config = json.loads((path.parent / "eval_config.json").read_text())["config"]
    env = agentgym.make(config["env_id"], **config.get("env_kwargs", {}))
    qa = env.unwrapped.qa
    classes: Counter[str] = Counter()
    hop_hits: Counter[int] = Counter()
    hops_total: Counter[int] = Counter()
    searches = repeats = 0
    for traj in trajs:
        chain = [h.doc_id for h in qa[traj.task_id].hops if h.doc_id]
        classes[classify(traj, chain)] += 1
        retrieved: set[str] = set()
        queries: list[str] = []
        for step in traj.steps:
            retrieved.update(step.info.get("retrieved_ids") or [])
            if "query" in step.info:
                queries.append(str(step.info["query"]).lower())
        searches += len(queries)
        repeats += len(queries) - len(set(queries))
        for k, doc in enumerate(chain, start=1):
            hops_total[k] += 1
            hop_hits[k] += doc in retrieved
    env.close()
    n = len(trajs)
    return {
        "name": str(results),
        "episodes": n,
        "em": classes["success"] / n,
        "tool_calls": sum(t.num_tool_calls for t in trajs) / n,
        "classes": {c: classes[c] / n for c in CLASSES},
        "hop_retrieved": {k: hop_hits[k] / hops_total[k] for k in sorted(hops_total)},
        "repeated_searches": repeats / max(searches, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="eval directories")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = [breakdown(p) for p in args.results]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    header = ["evaluation", "episodes", "EM", "tool calls/ep", *CLASSES, "hop1", "hop2", "hop3"]
    print(" | ".join(header))
    for row in rows:
        hops = [f"{row['hop_retrieved'].get(k, float('nan')):.0%}" for k in (1, 2, 3)]
        cells = [
            row["name"],
            str(row["episodes"]),
            f"{row['em']:.1%}",
            f"{row['tool_calls']:.2f}",
            *(f"{row['classes'][c]:.0%}" for c in CLASSES),
            *hops,
        ]
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
