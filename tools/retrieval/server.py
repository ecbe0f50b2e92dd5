"""The ``/retrieve`` server behind ``agentgym serve-retriever``.

It speaks the API of Search-R1's ``retrieval_server.py``, so Search-R1 and verl-agent
clients work against it unchanged, and serves any :class:`Retriever` (BM25 by default):

``POST /retrieve``
    Request: ``{"queries": ["q1", ...], "topk": 3, "return_scores": true}`` (Search-R1) or
    ``{"query": "q1", ...}`` (verl-agent; a list is accepted too). ``topk`` defaults to
    the server's ``--topk``; ``return_scores`` to false.

    Reply: ``{"result": [hits_q1, hits_q2, ...]}``, one list per query, where a hit is
    ``{"document": {"id", "contents"}, "score": s}`` with ``return_scores`` and the bare
    ``{"id", "contents"}`` row without (as Search-R1 does).

``GET /health``
    ``{"status": "ok", "passages": N}``: for readiness checks.

One process serves many training workers: requests run in a thread pool and read a
shared index.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from agentgym.tools.retrieval.base import Retriever

#: Refuse larger requests (split them): bounds the server's memory per request.
MAX_QUERIES_PER_REQUEST = 4096
#: Queries are cut to this many characters; BM25 gains nothing from longer ones.
MAX_QUERY_CHARS = 8192


class RetrieveRequest(BaseModel):
    """Body of ``POST /retrieve``: ``queries`` (Search-R1) or ``query`` (verl-agent)."""

    queries: list[str] | None = None
    query: str | list[str] | None = None
    topk: int | None = Field(default=None, ge=1, le=1000)
    return_scores: bool = False

    def query_list(self) -> list[str]:
        if self.queries is not None:
            return self.queries
        if self.query is None:
            raise HTTPException(
                422, 'send "queries": [..] (Search-R1) or "query": ".." (verl-agent)'
            )
        return [self.query] if isinstance(self.query, str) else self.query


def create_app(
    retriever: Retriever, default_topk: int = 3, num_passages: int | None = None
) -> FastAPI:
    """A FastAPI app serving ``retriever`` with Search-R1's ``/retrieve`` API."""
    app = FastAPI(title="agentgym retriever", version="1")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "passages": num_passages}

    @app.post("/retrieve")
    def retrieve(request: RetrieveRequest) -> dict[str, Any]:
        queries = request.query_list()
        if len(queries) > MAX_QUERIES_PER_REQUEST:
            raise HTTPException(
                413,
                f"{len(queries)} queries in one request; send at most "
                f"{MAX_QUERIES_PER_REQUEST} per request",
            )
        topk = request.topk or default_topk
        results = retriever.search_batch([q[:MAX_QUERY_CHARS] for q in queries], topk)
        if request.return_scores:
            return {
                "result": [
                    [{"document": p.to_document(), "score": p.score} for p in hits]
                    for hits in results
                ]
            }
        return {"result": [[p.to_document() for p in hits] for hits in results]}

    return app


def serve(
    retriever: Retriever,
    host: str = "127.0.0.1",
    port: int = 8000,
    default_topk: int = 3,
    num_passages: int | None = None,
    log_level: str = "warning",
) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    uvicorn.run(
        create_app(retriever, default_topk, num_passages),
        host=host,
        port=port,
        log_level=log_level,
    )
