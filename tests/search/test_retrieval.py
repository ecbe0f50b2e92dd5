"""Retrievers: corpus loading, BM25 and its disk cache, the HTTP client, the server app."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from agentgym.envs.search.qa import DEFAULT_CORPUS
from agentgym.tools.retrieval import (
    BM25Retriever,
    HTTPRetriever,
    Passage,
    Retriever,
    RetrieverError,
    corpus_from_passages,
    load_corpus,
    make_retriever,
)
from agentgym.tools.retrieval.server import create_app

ROWS = [
    {"id": "a", "contents": '"Velmora"\nVelmora is a city in Quenvar on the Dianio river.'},
    {"id": "b", "contents": '"Quenvar"\nQuenvar is a country. Its capital is Velmora.'},
    {"id": "c", "contents": '"Orvex Dynamics"\nOrvex Dynamics was founded by Talia Brennick.'},
    {"id": "d", "contents": '"Talia Brennick"\nTalia Brennick is a botanist born in Velmora.'},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ----------------------------------------------------------------------------- corpus


def test_corpus_formats_load_the_same_passages(tmp_path: Path) -> None:
    plain = load_corpus(write_jsonl(tmp_path / "c.jsonl", ROWS))
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in ROWS)
    gz = load_corpus(tmp_path / "c.jsonl.gz")
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "c.parquet")
    parquet = load_corpus(tmp_path / "c.parquet")
    for corpus in (gz, parquet):
        assert corpus.ids == plain.ids and corpus.contents == plain.contents
    assert plain.passage(0).title == "Velmora"
    assert plain.passage(0).text.startswith("Velmora is a city")


def test_corpus_rows_with_title_and_text_or_no_id(tmp_path: Path) -> None:
    rows = [{"title": "Velmora", "text": "A city."}, {"contents": '"X"\nY'}]
    corpus = load_corpus(write_jsonl(tmp_path / "c.jsonl", rows))
    assert corpus.ids == ["0", "1"]
    assert corpus.contents[0] == '"Velmora"\nA city.'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"id": "1", "contents": "x"}\n{"id": "1", "contents": "y"}\n', "more than once"),
        ('{"id": "1", "contents": "x"}\nnot json\n', ":2 is not valid JSON"),
        ('{"id": "1", "body": "x"}\n', "needs 'contents'"),
        ("\n", "no passages"),
    ],
)
def test_bad_corpus_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_corpus(path)


def test_fingerprint_follows_the_bytes(tmp_path: Path) -> None:
    a = load_corpus(write_jsonl(tmp_path / "a.jsonl", ROWS))
    b = load_corpus(write_jsonl(tmp_path / "b.jsonl", ROWS))
    c = load_corpus(write_jsonl(tmp_path / "c.jsonl", ROWS[:3]))
    assert a.fingerprint == b.fingerprint != c.fingerprint


# ----------------------------------------------------------------------------- BM25


def test_bm25_ranks_the_passage_about_the_query_first() -> None:
    retriever = BM25Retriever(corpus_from_passages(ROWS))
    assert isinstance(retriever, Retriever)
    hits = retriever.search("Talia Brennick", topk=2)
    assert [p.id for p in hits][:1] == ["d"]
    assert all(p.score is not None and p.score > 0 for p in hits)
    assert hits[0].score >= hits[-1].score
    assert retriever.search("Quenvar capital", 1)[0].id == "b"


def test_bm25_returns_nothing_for_queries_without_known_words() -> None:
    retriever = BM25Retriever(corpus_from_passages(ROWS))
    assert retriever.search("", 3) == []
    assert retriever.search("zzzz qqqq", 3) == []
    assert retriever.search("the of and", 3) == []  # stop words only
    assert len(retriever.search("Velmora", 10)) == 3  # fewer than topk match


def test_bm25_batch_equals_single_and_ties_follow_corpus_order() -> None:
    rows = [{"id": str(i), "contents": f'"Doc {i}"\nidentical words here'} for i in range(40)]
    retriever = BM25Retriever(corpus_from_passages(rows))
    assert [p.id for p in retriever.search("identical words", 5)] == ["0", "1", "2", "3", "4"]
    queries = ["identical", "Doc 7", "nothing", "words here", *[f"Doc {i}" for i in range(40)]]
    batch = retriever.search_batch(queries, 3)  # more than one scoring chunk
    assert batch == [retriever.search(q, 3) for q in queries]


def test_bm25_index_is_cached_by_corpus_hash(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", ROWS)
    first = BM25Retriever(path, cache=True, cache_dir=tmp_path / "cache")
    again = BM25Retriever(path, cache=True, cache_dir=tmp_path / "cache")
    assert not first.loaded_from_cache and again.loaded_from_cache
    assert first.cache_path == again.cache_path and (first.cache_path / "done").is_file()
    assert again.search("Orvex", 2) == first.search("Orvex", 2)
    edited = write_jsonl(tmp_path / "c.jsonl", [*ROWS, {"id": "e", "contents": '"E"\nnew'}])
    changed = BM25Retriever(edited, cache=True, cache_dir=tmp_path / "cache")
    assert not changed.loaded_from_cache and changed.cache_path != first.cache_path
    other_params = BM25Retriever(path, k1=1.2, cache=True, cache_dir=tmp_path / "cache")
    assert other_params.cache_path != first.cache_path


def test_bm25_cache_defaults_to_agentgym_cache_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AGENTGYM_CACHE_DIR", str(tmp_path / "env-cache"))
    retriever = BM25Retriever(write_jsonl(tmp_path / "c.jsonl", ROWS), cache=True)
    assert retriever.cache_path is not None
    assert retriever.cache_path.is_relative_to(tmp_path / "env-cache")
    small = BM25Retriever(corpus_from_passages(ROWS))  # small corpora: memory only
    assert small.cache_path is None


def test_make_retriever_specs() -> None:
    assert isinstance(make_retriever("bm25", corpus_from_passages(ROWS)), BM25Retriever)
    assert isinstance(make_retriever("http://127.0.0.1:9"), HTTPRetriever)
    with pytest.raises(ValueError, match="'bm25'"):
        make_retriever("faiss")


# ----------------------------------------------------------------------------- server app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(BM25Retriever(DEFAULT_CORPUS), default_topk=3, num_passages=1))


def test_server_answers_search_r1_requests(client: TestClient) -> None:
    body = {"queries": ["Couvburg city", "zzzz"], "topk": 2, "return_scores": True}
    reply = client.post("/retrieve", json=body).json()
    assert len(reply["result"]) == 2 and reply["result"][1] == []
    hit = reply["result"][0][0]
    assert set(hit) == {"document", "score"} and set(hit["document"]) == {"id", "contents"}
    assert hit["document"]["contents"].startswith('"Couvburg"\n')
    plain = client.post("/retrieve", json={"queries": ["Couvburg city"]}).json()
    assert len(plain["result"][0]) == 3  # the server's default topk
    assert plain["result"][0][0] == hit["document"]  # without scores: the bare row


def test_server_answers_verl_agent_requests(client: TestClient) -> None:
    single = client.post("/retrieve", json={"query": "Couvburg city", "topk": 1}).json()
    batch = client.post("/retrieve", json={"queries": ["Couvburg city"], "topk": 1}).json()
    assert single == batch and len(single["result"]) == 1


@pytest.mark.parametrize(
    "body", [{}, {"queries": "not a list"}, {"queries": ["x"], "topk": 0}, {"query": 3}]
)
def test_server_rejects_malformed_requests(client: TestClient, body: dict) -> None:
    assert client.post("/retrieve", json=body).status_code == 422


def test_server_survives_odd_queries(client: TestClient) -> None:
    queries = ["", "\x00\x01\x1b[31m", "💥 漢字", "word " * 20_000]
    reply = client.post("/retrieve", json={"queries": queries, "topk": 2})
    assert reply.status_code == 200 and len(reply.json()["result"]) == 4
    assert client.get("/health").json()["status"] == "ok"


# ----------------------------------------------------------------------------- HTTP client


def _hit(doc_id: str) -> dict:
    return {"document": {"id": doc_id, "contents": f'"T{doc_id}"\ntext {doc_id}'}, "score": 1.5}


def test_client_sends_search_r1_and_verl_agent_shapes(stub_server) -> None:
    seen: list[dict] = []

    def handler(body: dict, n: int) -> tuple[int, dict]:
        seen.append(body)
        queries = body["queries"] if "queries" in body else [body["query"]]
        return 200, {"result": [[_hit(q)] for q in queries]}

    url = stub_server(handler)
    batched = HTTPRetriever(url).search_batch(["x", "y"], topk=2)
    assert [[p.id for p in hits] for hits in batched] == [["x"], ["y"]]
    assert seen[-1] == {"queries": ["x", "y"], "topk": 2, "return_scores": True}
    single = HTTPRetriever(url, request_format="query").search_batch(["x", "y"], topk=1)
    assert single == batched
    assert seen[-2:] == [
        {"query": "x", "topk": 1, "return_scores": True},
        {"query": "y", "topk": 1, "return_scores": True},
    ]
    assert single[0][0] == Passage("x", '"Tx"\ntext x', 1.5)


def test_client_reads_hits_without_scores(stub_server) -> None:
    url = stub_server(lambda body, n: (200, {"result": [[{"id": "7", "contents": "A\nb"}]]}))
    assert HTTPRetriever(url, return_scores=False).search("q") == [Passage("7", "A\nb")]


def test_client_retries_server_errors_then_succeeds(stub_server) -> None:
    url = stub_server(lambda body, n: (503, {}) if n < 2 else (200, {"result": [[_hit("1")]]}))
    client = HTTPRetriever(url, retries=2, backoff=0.01)
    assert [p.id for p in client.search("q")] == ["1"]


def test_client_gives_up_with_a_clear_error(stub_server) -> None:
    url = stub_server(lambda body, n: (503, {}))
    with pytest.raises(RetrieverError, match=r"HTTP 503 \(3 attempt"):
        HTTPRetriever(url, retries=2, backoff=0.01).search("q")
    bad_request = stub_server(lambda body, n: (400, {"detail": "no"}))
    started = time.monotonic()
    with pytest.raises(RetrieverError, match="rejected the request with HTTP 400"):
        HTTPRetriever(bad_request, retries=5, backoff=1.0).search("q")
    assert time.monotonic() - started < 1.0  # 4xx is not retried
    malformed = stub_server(lambda body, n: (200, {"hits": []}))
    with pytest.raises(RetrieverError, match="not"):
        HTTPRetriever(malformed).search("q")
    wrong_count = stub_server(lambda body, n: (200, {"result": [[], []]}))
    with pytest.raises(RetrieverError, match="expected 1 result list"):
        HTTPRetriever(wrong_count).search("q")


def test_client_times_out_on_a_slow_server(stub_server) -> None:
    url = stub_server(lambda body, n: (time.sleep(1.5), (200, {"result": [[]]}))[1])
    started = time.monotonic()
    with pytest.raises(RetrieverError, match=r"timed out after 0\.2 s"):
        HTTPRetriever(url, timeout=0.2, retries=1, backoff=0.01).search("q")
    assert time.monotonic() - started < 1.2


def test_client_reports_a_server_that_is_down() -> None:
    from tests.search.conftest import free_port

    with pytest.raises(RetrieverError, match="could not connect"):
        HTTPRetriever(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0.01).search("q")


def test_client_url_handling() -> None:
    assert HTTPRetriever("http://h:8000").url == "http://h:8000/retrieve"
    assert HTTPRetriever("http://h:8000/custom").url == "http://h:8000/custom"
    with pytest.raises(ValueError, match="must look like"):
        HTTPRetriever("localhost:8000")
    with pytest.raises(ValueError, match="request_format"):
        HTTPRetriever("http://h", request_format="batch")  # type: ignore[arg-type]
