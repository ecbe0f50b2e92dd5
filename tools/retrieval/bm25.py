"""In-process BM25 retrieval on `bm25s <https://github.com/xhluca/bm25s>`_.

The index is built once per corpus and cached on disk under
``{cache_dir}/bm25/{key}/``, where ``key`` hashes the corpus bytes, the tokenizer version
and the BM25 parameters: a changed corpus or setting builds a new index, an unchanged one
loads in milliseconds. ``cache_dir`` defaults to ``$AGENTGYM_CACHE_DIR`` or
``~/.cache/agentgym``.

Scoring is Lucene's BM25 with Pyserini's defaults (``k1=0.9``, ``b=0.4``), the
retriever behind Search-R1's BM25 server. Each query is scored with a few vectorised
numpy calls over the postings of its terms; ties are broken by corpus order, so results
are the same in every process, single or batched, in-process or behind
``agentgym serve-retriever``. Passages with no query term in common are never returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agentgym.tools.retrieval.base import Passage
from agentgym.tools.retrieval.corpus import Corpus, load_corpus

#: Bump when :func:`tokenize` changes, so cached indexes are rebuilt.
TOKENIZER_VERSION = 1
#: Corpora with fewer passages are indexed in memory only: building takes milliseconds.
AUTO_CACHE_MIN_PASSAGES = 20_000

_TOKEN = re.compile(r"\w+")
# bm25s's English stop words (what its own tokenizer drops by default).
_STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
        "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
        "there", "these", "they", "this", "to", "was", "will", "with",
    }
)  # fmt: skip


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens without English stop words or single letters."""
    return [
        t
        for t in _TOKEN.findall(text.lower())
        if t not in _STOPWORDS and (len(t) > 1 or t.isdigit())
    ]


def default_cache_dir() -> Path:
    """``$AGENTGYM_CACHE_DIR``, else ``~/.cache/agentgym``."""
    return Path(os.environ.get("AGENTGYM_CACHE_DIR") or Path.home() / ".cache" / "agentgym")


class BM25Retriever:
    """BM25 over a :class:`Corpus` (or a corpus file), satisfying the ``Retriever`` protocol.

    Args:
        corpus: a loaded :class:`Corpus` or the path of a corpus file.
        k1, b: BM25 parameters.
        cache: save/load the index on disk; ``None`` (default) caches corpora of at least
            ``AUTO_CACHE_MIN_PASSAGES`` passages.
        cache_dir: where indexes live (default :func:`default_cache_dir`).

    Thread-safe: searches only read the index.
    """

    def __init__(
        self,
        corpus: Corpus | str | Path,
        *,
        k1: float = 0.9,
        b: float = 0.4,
        cache: bool | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.corpus = corpus if isinstance(corpus, Corpus) else load_corpus(corpus)
        self.k1, self.b = float(k1), float(b)
        if cache is None:
            cache = len(self.corpus) >= AUTO_CACHE_MIN_PASSAGES
        self.cache_path: Path | None = None
        if cache:
            root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
            self.cache_path = root / "bm25" / self._cache_key()
        self.loaded_from_cache = False
        model = self._load_or_build()
        self._data = np.asarray(model.scores["data"], dtype=np.float32)
        self._indices = np.asarray(model.scores["indices"], dtype=np.int64)
        self._indptr = np.asarray(model.scores["indptr"], dtype=np.int64)
        self._num_docs = int(model.scores["num_docs"])
        self._vocab: dict[str, int] = {str(k): int(v) for k, v in model.vocab_dict.items()}

    def __len__(self) -> int:
        return self._num_docs

    def __repr__(self) -> str:
        return f"BM25Retriever({self.corpus.source!r}, {len(self)} passages)"

    # ----------------------------------------------------------------- index

    def _cache_key(self) -> str:
        params = f"{self.corpus.fingerprint}|tok{TOKENIZER_VERSION}|k1={self.k1}|b={self.b}"
        return hashlib.blake2b(params.encode(), digest_size=12).hexdigest()

    def _load_or_build(self):
        import bm25s

        if self.cache_path is not None and (self.cache_path / "done").is_file():
            try:
                model = bm25s.BM25.load(str(self.cache_path), mmap=False, show_progress=False)
                self.loaded_from_cache = True
                return model
            except Exception:  # a damaged cache entry is rebuilt, not fatal
                shutil.rmtree(self.cache_path, ignore_errors=True)
        model = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        model.index([tokenize(c) for c in self.corpus.contents], show_progress=False)
        if self.cache_path is not None:
            self._save(model)
        return model

    def _save(self, model) -> None:
        """Write the index to a temporary folder and rename it into place, so concurrent
        builders of the same corpus never see half an index."""
        assert self.cache_path is not None
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.cache_path.parent, prefix=".building-"))
        try:
            model.save(str(tmp), show_progress=False)
            (tmp / "source.json").write_text(
                json.dumps({"corpus": self.corpus.source, "passages": len(self.corpus)})
            )
            (tmp / "done").write_text("")
            # Renaming fails when another process finished first; its index is the same.
            with contextlib.suppress(OSError):
                tmp.rename(self.cache_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ----------------------------------------------------------------- search

    def search(self, query: str, topk: int = 3) -> list[Passage]:
        """The ``topk`` best passages for ``query``, best first."""
        return self.search_batch([query], topk)[0]

    def search_batch(self, queries: Sequence[str], topk: int = 3) -> list[list[Passage]]:
        """One result list per query, in order."""
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        return [self._top(*self._scores(self._token_ids(q)), topk) for q in queries]

    def _token_ids(self, query: str) -> np.ndarray:
        ids = [self._vocab[t] for t in tokenize(query) if t in self._vocab]
        return np.asarray(ids, dtype=np.int64)

    def _scores(self, terms: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Scores of the passages that share a term with the query: ``(docs, scores)``, or
        ``(None, scores of every passage)`` when the query touches much of the corpus.

        Gathers the postings of every query term and sums them per passage with one
        ``bincount``: over the whole corpus for common words, over the distinct passages
        otherwise (a query about a rare name touches a few hundred passages of millions).
        Both add the terms in query order, so they give the same floats.
        """
        starts, ends = self._indptr[terms], self._indptr[terms + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        # positions of every posting of every term, in query order
        run_starts = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        positions = run_starts + np.arange(total)
        docs, weights = self._indices[positions], self._data[positions]
        if total > self._num_docs // 8:
            return None, np.bincount(docs, weights=weights, minlength=self._num_docs)
        found, inverse = np.unique(docs, return_inverse=True)
        return found, np.bincount(inverse, weights=weights)

    def _top(self, docs: np.ndarray | None, scores: np.ndarray, topk: int) -> list[Passage]:
        """The ``topk`` best, best first; ties go to the earlier passage in the corpus.
        Passages with score 0 (no term in common) never count."""
        if scores.size > topk:
            kth = -np.partition(-scores, topk - 1)[topk - 1]
            # every passage tied with the k-th too, so the tie-break below decides
            keep = np.flatnonzero(scores >= kth) if kth > 0 else np.flatnonzero(scores)
        else:
            keep = np.flatnonzero(scores)
        found = keep if docs is None else docs[keep]
        values = scores[keep]
        order = np.lexsort((found, -values))[:topk]
        return [self.corpus.passage(int(found[i]), float(values[i])) for i in order]
