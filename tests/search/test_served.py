"""``agentgym serve-retriever`` as a real subprocess: the environment over HTTP sees
exactly what it sees with the in-process retriever."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

import agentgym
from agentgym.env import SPLITS
from agentgym.envs.search.qa import DEFAULT_CORPUS
from agentgym.tools.retrieval import BM25Retriever, HTTPRetriever


def test_the_server_is_a_search_r1_retriever(retriever_server: str) -> None:
    body = {"queries": ["Couvburg city", "nothing here zzz"], "topk": 3, "return_scores": True}
    reply = httpx.post(retriever_server, json=body, timeout=10).json()
    assert len(reply["result"]) == 2 and len(reply["result"][0]) == 3
    assert set(reply["result"][0][0]) == {"document", "score"}


@pytest.mark.parametrize("request_format", ["queries", "query"])
def test_http_passages_equal_in_process_passages(retriever_server: str, request_format) -> None:
    local = BM25Retriever(DEFAULT_CORPUS)
    remote = HTTPRetriever(retriever_server, request_format=request_format)
    queries = ["Couvburg city", "born in 1925", "novel written by", "", "💥 \x1b[0m", "zzz"]
    queries += [f"{w} Records" for w in ("Tiogai", "Brygia", "Saiweav")]
    for topk in (1, 3, 7):
        over_http = remote.search_batch(queries, topk)
        in_process = local.search_batch(queries, topk)
        assert [[(p.id, p.contents) for p in hits] for hits in over_http] == [
            [(p.id, p.contents) for p in hits] for hits in in_process
        ]
        for a, b in zip(over_http, in_process, strict=True):
            assert [p.score for p in a] == pytest.approx([p.score for p in b])
    remote.close()


@pytest.mark.parametrize("protocol", ["tags", "tools"])
def test_the_environment_over_http_plays_like_in_process(retriever_server: str, protocol) -> None:
    local = agentgym.make("Search-v0", protocol=protocol)
    remote = agentgym.make("Search-v0", protocol=protocol, retriever=retriever_server)
    rng_local, rng_remote = np.random.default_rng(5), np.random.default_rng(5)
    for split in SPLITS:
        for task_id in local.unwrapped.task_ids(split)[:8]:
            for policy in ("expert", "random"):
                seen = []
                for env, rng in ((local, rng_local), (remote, rng_remote)):
                    obs, info = env.reset(seed=1, options={"task_id": task_id})
                    trace = [(obs, info["state_key"])]
                    done = False
                    while not done:
                        base = env.unwrapped
                        action = (
                            base.expert_action() if policy == "expert" else base.random_action(rng)
                        )
                        obs, reward, terminated, truncated, info = env.step(action)
                        trace.append((obs, reward, info["state_key"], info["action_valid"]))
                        done = terminated or truncated
                    seen.append(trace)
                assert seen[0] == seen[1], f"{task_id} ({policy}) differs over HTTP"
                if policy == "expert":
                    assert seen[0][-1][1] == 1.0
    remote.close()
