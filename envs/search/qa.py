"""Question sets for the search environment: Search-R1 parquet, plain JSONL, the shipped
world.

A QA row needs a question and its gold answers; everything else is optional. Columns are
read the way Search-R1's data scripts write them:

==================  ===========================================================
question            ``question``, else ``extra_info.question``, else the text after
                    the last "Question:" in the ``prompt``'s user message
gold answers        ``golden_answers``, else ``reward_model.ground_truth.target``,
                    else ``answers`` / ``answer`` (a string or a list)
split               the key of the file in a ``{"train": path, ...}`` mapping, else
                    ``split``, else ``extra_info.split``, else ``train``
                    (``validation``, ``val``, ``dev`` mean ``valid``)
id                  ``id``, else ``{split}-{extra_info.index}``, else ``{split}-{row}``
data_source         ``data_source`` (e.g. ``nq``, ``hotpotqa``)
task_type           ``task_type``, else ``data_source``
hops                ``hops``: the search chain ``[{"query", "doc_id", "need"}]`` the
                    expert follows (the shipped world has it; external data does not)
entities            ``entities``: the gold entity chain (the entity of each hop, then
                    the answer entity); the shipped world has it
prompt              the last user message of ``prompt`` (Search-R1's chat prompt)
==================  ===========================================================

Splits never share a question: a question that appears in a held-out split is dropped
from ``train`` (and from ``valid`` if it is in ``test``), with a warning.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agentgym.env import SPLITS, Split

#: The shipped synthetic world (see :mod:`agentgym.envs.search.world`).
DEFAULT_DATA_DIR = Path(__file__).parent / "data"
DEFAULT_CORPUS = DEFAULT_DATA_DIR / "corpus.jsonl"
DEFAULT_QA = DEFAULT_DATA_DIR / "qa.jsonl"

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "dev": "valid",
    "test": "test",
}
_QUESTION_IN_PROMPT = re.compile(r"Question:\s*(.+?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Hop:
    """One step of a question's search chain: search ``query``; passage ``doc_id``
    tells ``need`` (e.g. "who founded Orvex Dynamics")."""

    query: str
    doc_id: str | None = None
    need: str | None = None


@dataclass(frozen=True)
class QARow:
    """One question: the task of one episode."""

    id: str
    question: str
    golden_answers: tuple[str, ...]
    split: Split
    data_source: str = ""
    task_type: str | None = None
    hops: tuple[Hop, ...] = ()
    prompt: str | None = None
    entities: tuple[str, ...] = ()
    """The gold entity chain: the entity each hop looks up, then the answer's entity."""


class QASet:
    """QA rows by split and by id."""

    def __init__(self, rows: Sequence[QARow], source: str = "<memory>") -> None:
        self.source = source
        self.by_id: dict[str, QARow] = {r.id: r for r in rows}
        self.ids: dict[Split, list[str]] = {s: [r.id for r in rows if r.split == s] for s in SPLITS}

    def __len__(self) -> int:
        return len(self.by_id)

    def __getitem__(self, task_id: str) -> QARow:
        return self.by_id[task_id]


def load_qa(source: str | Path | Mapping[str, str | Path] | None = None) -> QASet:
    """Load questions from a file (``.parquet``, ``.jsonl``, ``.json``), a mapping
    ``{split: file}`` (e.g. Search-R1's ``train.parquet`` and ``test.parquet``), or
    (``None``) the shipped world."""
    if source is None:
        source = DEFAULT_QA
    if isinstance(source, Mapping):
        files = [(_split_name(str(k), "the qa mapping"), Path(v)) for k, v in source.items()]
        label = ", ".join(f"{s}={p}" for s, p in files)
    else:
        files = [(None, Path(source))]
        label = str(source)
    rows: list[QARow] = []
    for split, path in files:
        for index, record in enumerate(read_records(path)):
            rows.append(row_from_record(record, index, split, where=f"{path} row {index}"))
    return QASet(_disjoint(_unique_ids(rows)), label)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``.parquet``, ``.jsonl`` or ``.json`` (a list of objects) file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"QA file {str(path)!r} does not exist")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        wanted = (
            "id",
            "question",
            "golden_answers",
            "answers",
            "answer",
            "reward_model",
            "extra_info",
            "data_source",
            "split",
            "task_type",
            "hops",
            "prompt",
            "entities",
        )
        return table.select([c for c in wanted if c in table.column_names]).to_pylist()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError(f"{path} must hold a JSON list of question objects")
        return data
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno} is not valid JSON ({exc.msg})") from None
    return records


def row_from_record(
    record: Mapping[str, Any], index: int, split: Split | None = None, where: str = "a QA row"
) -> QARow:
    """A :class:`QARow` from one record of any supported layout (see the module doc)."""
    extra = record.get("extra_info") or {}
    extra = extra if isinstance(extra, Mapping) else {}
    prompt = _prompt_text(record.get("prompt"))
    question = record.get("question") or extra.get("question")
    if not question and prompt:
        match = _QUESTION_IN_PROMPT.search(prompt)
        question = match.group(1) if match else None
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where} has no question (keys: {sorted(record)})")
    answers = record.get("golden_answers")
    if answers is None:
        ground_truth = (record.get("reward_model") or {}).get("ground_truth") or {}
        answers = ground_truth.get("target") if isinstance(ground_truth, Mapping) else None
    if answers is None:
        answers = record.get("answers", record.get("answer"))
    if isinstance(answers, str | int | float):
        answers = [answers]
    if not answers:
        raise ValueError(
            f"{where} has no gold answers: give 'golden_answers', "
            "'reward_model.ground_truth.target' or 'answer'"
        )
    if split is None:
        raw = record.get("split") or extra.get("split") or "train"
        split = _split_name(str(raw), where)
    row_id = record.get("id")
    if row_id is None:
        row_id = f"{split}-{extra.get('index', index)}"
    data_source = str(record.get("data_source") or "")
    hops = tuple(
        Hop(str(h["query"]), _opt_str(h.get("doc_id")), _opt_str(h.get("need")))
        for h in (record.get("hops") or [])
    )
    return QARow(
        id=str(row_id),
        question=question.strip(),
        golden_answers=tuple(str(a) for a in answers),
        split=split,
        data_source=data_source,
        task_type=_opt_str(record.get("task_type")) or data_source or None,
        hops=hops,
        prompt=prompt,
        entities=tuple(str(e) for e in (record.get("entities") or [])),
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _prompt_text(prompt: Any) -> str | None:
    """The last user message of a chat prompt (or the prompt itself if it is text)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        messages = [m for m in prompt if isinstance(m, Mapping)]
        users = [m for m in messages if m.get("role", "user") == "user"] or messages
        if users and isinstance(users[-1].get("content"), str):
            return users[-1]["content"]
    return None


def _split_name(raw: str, where: str) -> Split:
    split = _SPLIT_ALIASES.get(raw.strip().lower())
    if split is None:
        raise ValueError(
            f"{where}: unknown split {raw!r}; use train, valid (or validation/val/dev) or test"
        )
    return split  # type: ignore[return-value]


def _unique_ids(rows: list[QARow]) -> list[QARow]:
    """Make ids unique: a clash gets the split prefixed, then a counter."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.id] = counts.get(r.id, 0) + 1
    if all(c == 1 for c in counts.values()):
        return rows
    out, used = [], set()
    for r in rows:
        new = r.id if counts[r.id] == 1 else f"{r.split}-{r.id}"
        base, k = new, 1
        while new in used:
            new, k = f"{base}-{k}", k + 1
        used.add(new)
        out.append(r if new == r.id else replace(r, id=new))
    return out


def _disjoint(rows: list[QARow]) -> list[QARow]:
    """Drop questions from a split when a later (held-out) split asks them too."""
    rank = {s: i for i, s in enumerate(SPLITS)}
    latest: dict[str, int] = {}
    for r in rows:
        key = " ".join(r.question.lower().split())
        latest[key] = max(latest.get(key, -1), rank[r.split])
    kept = [r for r in rows if latest[" ".join(r.question.lower().split())] == rank[r.split]]
    if len(kept) < len(rows):
        warnings.warn(
            f"{len(rows) - len(kept)} question(s) also appear in a held-out split and were "
            "dropped from the earlier split (train < valid < test), so splits stay disjoint",
            stacklevel=3,
        )
    return kept
