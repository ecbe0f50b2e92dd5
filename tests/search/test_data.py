"""Data: the shipped world and its generator, Search-R1 parquet and JSONL question sets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import agentgym
from agentgym.envs.search import SearchEnv, load_qa
from agentgym.envs.search.qa import DEFAULT_CORPUS, DEFAULT_DATA_DIR, DEFAULT_QA
from agentgym.envs.search.world import WorldConfig, generate_world, main
from agentgym.tools.retrieval import BM25Retriever

# ----------------------------------------------------------------------------- the world


def test_the_shipped_world_is_what_the_generator_makes(tmp_path: Path) -> None:
    started = time.perf_counter()
    corpus, qa = generate_world().write(tmp_path)
    assert time.perf_counter() - started < 2.0
    assert corpus.read_bytes() == DEFAULT_CORPUS.read_bytes()
    assert qa.read_bytes() == DEFAULT_QA.read_bytes()
    size = sum(p.stat().st_size for p in DEFAULT_DATA_DIR.glob("*.jsonl"))
    assert size < 1_000_000


def test_splits_share_no_question_and_no_subject() -> None:
    qa = load_qa()
    questions = {s: {qa[t].question for t in qa.ids[s]} for s in qa.ids}
    subjects = {s: {qa[t].hops[0].query for t in qa.ids[s]} for s in qa.ids}
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not questions[a] & questions[b]
        assert not subjects[a] & subjects[b]
    assert len(qa.ids["train"]) > 500 and min(len(qa.ids["valid"]), len(qa.ids["test"])) > 50


def test_every_hop_of_the_shipped_world_finds_its_passage() -> None:
    qa, retriever = load_qa(), BM25Retriever(DEFAULT_CORPUS)
    hops = [hop for row in qa.by_id.values() for hop in row.hops]
    results = retriever.search_batch([h.query for h in hops], topk=3)
    missed = [
        h for h, hits in zip(hops, results, strict=True) if h.doc_id not in {p.id for p in hits}
    ]
    assert not missed


def test_every_question_knows_its_entity_chain() -> None:
    world = generate_world()
    title_of = {row["id"]: row["contents"].split("\n")[0].strip('"') for row in world.passages}
    titles = set(title_of.values())
    for q in world.questions:
        chain = [title_of[hop["doc_id"]] for hop in q["hops"]]
        answer = q["golden_answers"][0]
        assert q["entities"] == list(dict.fromkeys(chain + ([answer] if answer in titles else [])))
    rows = load_qa().by_id.values()
    assert all(row.entities for row in rows)
    with_answer = [r for r in rows if r.golden_answers[0] in r.entities]
    assert 0 < len(with_answer) < len(rows)  # years and occupations are not entities


def test_names_are_unique_and_answers_are_in_the_corpus() -> None:
    world = generate_world(WorldConfig(seed=3))
    titles = [row["contents"].split("\n")[0] for row in world.passages]
    assert len(set(titles)) == len(titles)
    text = "\n".join(row["contents"] for row in world.passages)
    assert all(q["golden_answers"][0] in text for q in world.questions)
    assert generate_world(WorldConfig(seed=3)) == world  # deterministic
    assert generate_world(WorldConfig(seed=4)).passages != world.passages


def test_the_generator_scales_and_has_a_cli(tmp_path: Path, capsys) -> None:
    config = WorldConfig.with_passages(4000, seed=1, max_questions=500)
    world = generate_world(config)
    assert abs(len(world.passages) - 4000) < 20 and len(world.questions) == 500
    main(["--out", str(tmp_path), "--passages", "1000", "--max-questions", "50"])
    assert "passages" in capsys.readouterr().out
    rows = (tmp_path / "qa.jsonl").read_text().splitlines()
    assert len(rows) == 50 and json.loads(rows[0])["hops"]
    env = SearchEnv(corpus=str(tmp_path / "corpus.jsonl"), qa=str(tmp_path / "qa.jsonl"))
    env.reset(seed=0)
    terminated = False
    while not terminated:
        _, _, terminated, _, info = env.step(env.expert_action())
    assert info["success"]


# ----------------------------------------------------------------------------- external data

PROMPT = (
    "Answer the given question. You must conduct reasoning inside <think> and </think> ... "
    "For example, <answer> Beijing </answer>. Question: {q}\n"
)


def search_r1_rows(split: str, questions: list[tuple[str, list[str]]]) -> list[dict]:
    """Rows laid out as Search-R1's scripts/data_process/nq_search.py writes them."""
    return [
        {
            "id": f"{split}_{i}",
            "question": q,
            "golden_answers": answers,
            "data_source": "nq",
            "prompt": [{"role": "user", "content": PROMPT.format(q=q)}],
            "ability": "fact-reasoning",
            "reward_model": {"style": "rule", "ground_truth": {"target": answers}},
            "extra_info": {"split": split, "index": i},
        }
        for i, (q, answers) in enumerate(questions)
    ]


@pytest.fixture
def external(tmp_path: Path) -> dict[str, Path]:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": str(i), "contents": c}) + "\n"
            for i, c in enumerate(
                [
                    '"Beijing"\nBeijing is the capital of China.',
                    '"Paris"\nParis is the capital of France.',
                    '"Ottawa"\nOttawa is the capital of Canada.',
                ]
            )
        )
    )
    train = [("what is the capital of china?", ["Beijing", "Peking"])]
    train += [("what is the capital of france?", ["Paris"])]
    test = [("what is the capital of canada?", ["Ottawa"])]
    paths = {
        "corpus": corpus,
        "train": tmp_path / "train.parquet",
        "test": tmp_path / "test.parquet",
    }
    pq.write_table(pa.Table.from_pylist(search_r1_rows("train", train)), paths["train"])
    pq.write_table(pa.Table.from_pylist(search_r1_rows("test", test)), paths["test"])
    return paths


def test_search_r1_parquet_loads_and_plays(external: dict[str, Path]) -> None:
    qa = {"train": str(external["train"]), "test": str(external["test"])}
    env = agentgym.make("Search-v0", corpus=str(external["corpus"]), qa=qa)
    base = env.unwrapped
    assert list(base.task_ids("train")) == ["train_0", "train_1"]
    assert list(base.task_ids("test")) == ["test_0"] and not base.task_ids("valid")
    obs, info = env.reset(options={"task_id": "train_0"})
    assert obs == PROMPT.format(q="what is the capital of china?")  # the data's own prompt
    assert info["task_type"] == "nq" and base.question.golden_answers == ("Beijing", "Peking")
    action = base.expert_action()
    assert "<search> what is the capital of china? </search>" in action
    obs, *_ = env.step(action)
    assert 'Doc 1(Title: "Beijing") Beijing is the capital of China.' in obs
    _, reward, terminated, _, info = env.step("<answer> peking </answer>")
    assert terminated and reward == 1.0
    agentgym.check_env(env)


def test_rows_with_only_reward_model_targets_and_split_columns(tmp_path: Path) -> None:
    rows = search_r1_rows("train", [("q one?", ["a"])]) + search_r1_rows(
        "test", [("q two?", ["b"])]
    )
    for row in rows:
        del row["golden_answers"], row["question"], row["id"]
    path = tmp_path / "all.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    qa = load_qa(path)
    assert qa.ids == {"train": ["train-0"], "valid": [], "test": ["test-0"]}
    assert qa["train-0"].question == "q one?"  # found after "Question:" in the prompt
    assert qa["test-0"].golden_answers == ("b",)


def test_plain_jsonl_with_split_aliases(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    rows = [
        {"question": "Q1?", "answer": "A1", "split": "validation"},
        {"question": "Q2?", "answers": ["A2", 2], "split": "dev"},
        {"question": "Q3?", "answer": 7},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    qa = load_qa(path)
    assert qa.ids == {"train": ["train-2"], "valid": ["valid-0", "valid-1"], "test": []}
    assert qa["valid-1"].golden_answers == ("A2", "2") and qa["train-2"].task_type is None


def test_a_question_in_two_splits_stays_only_in_the_held_out_one(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    rows = [
        {"id": "1", "question": "Same  question?", "answer": "x", "split": "train"},
        {"id": "1", "question": "same question?", "answer": "x", "split": "test"},
        {"id": "2", "question": "Other?", "answer": "y", "split": "train"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.warns(UserWarning, match="1 question"):
        qa = load_qa(path)
    assert qa.ids == {"train": ["2"], "valid": [], "test": ["test-1"]}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"answer": "x"}, "has no question"),
        ({"question": "q?"}, "has no gold answers"),
        ({"question": "q?", "answer": "x", "split": "holdout"}, "unknown split 'holdout'"),
    ],
)
def test_bad_question_rows_say_what_is_missing(tmp_path: Path, row: dict, message: str) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=message):
        load_qa(path)
