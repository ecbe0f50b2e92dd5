"""A client for Search-R1-style retrieval servers (``POST /retrieve``).

Two request shapes exist in the wild, and both servers answer with one list of hits per
query under ``"result"``:

* Search-R1 (batched): ``{"queries": ["q1", "q2"], "topk": 3, "return_scores": true}``;
* verl-agent / SkyRL (one query): ``{"query": "q1", "topk": 3, "return_scores": true}``.

With ``return_scores`` a hit is ``{"document": {"id", "contents", ...}, "score": s}``;
without, Search-R1 returns the corpus row itself. Both are accepted.

Failures that waiting can fix (connection refused, timeouts, 5xx) are retried with
exponential backoff; the rest (4xx, malformed replies) fail at once. Either way the
caller gets a :class:`RetrieverError` whose message says what happened, never a hang.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from agentgym.tools.retrieval.base import Passage, RetrieverError

RequestFormat = Literal["queries", "query"]
_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


def retrieve_url(url: str) -> str:
    """``url`` with ``/retrieve`` appended when it names only a host (``http://h:8000``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"retriever URL {url!r} must look like 'http://127.0.0.1:8000/retrieve'")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/retrieve")
    return urlunsplit(parts)


class HTTPRetriever:
    """The ``Retriever`` protocol over HTTP.

    Args:
        url: the server's ``/retrieve`` endpoint (a bare ``http://host:port`` gets
            ``/retrieve`` appended).
        timeout: seconds per attempt (connect and read).
        retries: extra attempts after a retryable failure (so ``1 + retries`` in all).
        backoff: seconds before the first retry; doubles each time, capped at
            ``max_backoff``.
        request_format: ``"queries"`` (Search-R1, one request per batch) or ``"query"``
            (verl-agent, one request per query).
        return_scores: ask the server for scores (they end up in ``Passage.score``).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        request_format: RequestFormat = "queries",
        return_scores: bool = True,
    ) -> None:
        if request_format not in ("queries", "query"):
            raise ValueError(
                f"request_format={request_format!r}: use 'queries' (Search-R1, batched) or "
                "'query' (verl-agent, one query per request)"
            )
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError(
                f"need timeout > 0, retries >= 0, backoff >= 0; got {timeout}, {retries}, {backoff}"
            )
        self.url = retrieve_url(url)
        self.timeout, self.retries = float(timeout), int(retries)
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self.request_format: RequestFormat = request_format
        self.return_scores = bool(return_scores)
        self._client = httpx.Client(timeout=self.timeout)

    def __repr__(self) -> str:
        return f"HTTPRetriever({self.url!r}, request_format={self.request_format!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HTTPRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- protocol

    def search(self, query: str, topk: int = 3) -> list[Passage]:
        """The ``topk`` passages the server returns for ``query``."""
        return self.search_batch([query], topk)[0]

    def search_batch(self, queries: Sequence[str], topk: int = 3) -> list[list[Passage]]:
        """One request for all ``queries`` (``"queries"`` format) or one per query."""
        queries = list(queries)
        if not queries:
            return []
        if self.request_format == "query":
            return [self._request({"query": q}, 1, topk)[0] for q in queries]
        return self._request({"queries": queries}, len(queries), topk)

    # ----------------------------------------------------------------- internals

    def _request(self, body: dict[str, Any], expected: int, topk: int) -> list[list[Passage]]:
        payload = {**body, "topk": int(topk), "return_scores": self.return_scores}
        attempts = 1 + self.retries
        started = time.monotonic()
        problem = "no attempt was made"
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.TimeoutException:
                problem = f"timed out after {self.timeout:g} s"
                continue
            except httpx.TransportError as exc:
                problem = f"could not connect ({type(exc).__name__}: {exc})"
                continue
            if response.status_code in _RETRYABLE_STATUS:
                problem = f"server error HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise RetrieverError(
                    f"the retriever at {self.url} rejected the request with HTTP "
                    f"{response.status_code}: {response.text[:300]}"
                )
            return self._parse(response, expected)
        raise RetrieverError(
            f"the retriever at {self.url} did not answer: {problem} "
            f"({attempts} attempt(s) over {time.monotonic() - started:.1f} s)"
        )

    def _parse(self, response: httpx.Response, expected: int) -> list[list[Passage]]:
        try:
            results = response.json()["result"]
            if not isinstance(results, list) or len(results) != expected:
                got = len(results) if isinstance(results, list) else type(results).__name__
                raise ValueError(f"expected {expected} result list(s), got {got}")
            return [[_passage_of(hit) for hit in hits] for hits in results]
        except (ValueError, KeyError, TypeError) as exc:
            raise RetrieverError(
                f"the retriever at {self.url} sent a reply that is not "
                f'{{"result": [[hit, ...], ...]}} ({exc}): {response.text[:300]}'
            ) from None


def _passage_of(hit: Any) -> Passage:
    if not isinstance(hit, dict):
        raise TypeError(f"a hit must be a JSON object, got {type(hit).__name__}")
    if isinstance(hit.get("document"), dict):
        return Passage.from_document(hit["document"], hit.get("score"))
    return Passage.from_document(hit, hit.get("score"))
