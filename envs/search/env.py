"""``agentgym/Search-v0``: answer questions by searching a corpus, the Search-R1 way.

Each task is one question. The agent searches a passage corpus as often as it likes (the
turn limit, ``env.max_steps``, defaults to 4) and ends the episode with an answer, which
is scored against the gold answers after Search-R1's normalisation.

Two action protocols (``protocol=``):

``tags`` (Search-R1)
    The action is the model's response. Its first complete ``<search> query </search>``
    or ``<answer> text </answer>`` tag is the action (as in Search-R1, so both raw
    responses and the ``search_r1`` parser's output work). A search returns
    ``"\\n\\n<information>Doc 1(Title: ...) text\\nDoc 2...</information>\\n\\n"``; a
    response with neither tag gets Search-R1's own invalid-action message.

    ``tag_mode`` chooses how a raw response is read. ``"search_r1"`` does what Search-R1's
    generation manager does: the response is first cut after its first ``</search>`` (or,
    without one, after its first ``</answer>``; :func:`~.reward.search_r1_truncate`), so a
    stray ``</search>`` before the answer leaves no complete tag (an invalid turn); an
    empty ``<search></search>`` is a search and an empty ``<answer></answer>`` ends the
    episode; a turn is well formed only if nothing follows its action tag in the cut
    response; the answer scored is the last ``<answer>`` of the cut response. It needs
    the raw response (``action_parser: raw``). ``"lenient"`` (the default) reads the
    first complete tag of the whole response, ignores what follows the first closing
    action tag, and answers empty queries and answers with a message (invalid actions).

``tools`` (function calling)
    ``info["tools"]`` holds OpenAI function schemas for ``search(query)`` and
    ``answer(text)``. The action is a Hermes/Qwen ``<tool_call>{"name": ..., "arguments":
    {...}}</tool_call>`` (the first one counts) or the bare JSON object, which is what the
    ``tool_call`` parser passes on. A search returns the passages as plain text (the
    tool's result).

Reward (``reward=``), given when the agent answers:

``em``         1 for an exact match with any gold answer, else 0 (Search-R1's default);
``f1``         the best token F1 against the gold answers;
``format_em``  Search-R1's format-aware reward (:func:`~.reward.format_reward`): EM,
               reduced for malformed turns, with partial credit for well-formed ones.

``success`` is the exact match; ``score`` is the exact match, or the F1 with
``reward="f1"``. An episode cut off by the turn limit scores 0. The answer's
``info["reward_components"]`` has two parts, correctness and format (``em`` + ``format``
adding up to the ``format_em`` reward; with ``em``/``f1`` the reward itself plus the
format term ``format_em`` would add), for multi-reward credit such as ``gdpo``.
``info["gold_entities"]`` is the question's entity chain where the data has one (the
shipped world does): the entity of each hop, then the answer's entity.
``info["gold_answer"]`` (every step) is the question's first gold answer: IGPO scores the
policy's probability of it after each turn. It is in ``info`` for training signals, never
in the observation the agent reads.

``state_key`` names the question and the *set* of passages retrieved so far (a short
hash), so two rollouts that read the same passages share an anchor state whatever order
or queries got them there. Invalid actions, failed searches and searches that find
nothing new leave it unchanged. ``info["num_tool_calls"]`` counts searches;
``info["task_type"]`` is ``1-hop``/``2-hop``/``3-hop`` for the shipped world, else the
data source.

Bad input never raises: empty or over-long queries (``max_query_chars``), control
characters (replaced by spaces), a retriever that is down or slow (the agent reads
"Search failed: ..." and can go on) all become observations.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from agentgym.env import Split, StepResult, TextEnv
from agentgym.envs.search.qa import DEFAULT_CORPUS, DEFAULT_QA, QARow, QASet, load_qa
from agentgym.envs.search.reward import (
    exact_match,
    f1_score,
    format_reward,
    search_r1_truncate,
    turn_format_ok,
)
from agentgym.errors import ConfigError, did_you_mean
from agentgym.parsers import find_tags, parse_tool_call_json
from agentgym.tools.retrieval import BM25Retriever, HTTPRetriever, Passage, Retriever

Protocol = Literal["tags", "tools"]
RewardKind = Literal["em", "f1", "format_em"]
TagMode = Literal["lenient", "search_r1"]
PROTOCOLS: tuple[str, ...] = ("tags", "tools")
REWARDS: tuple[str, ...] = ("em", "f1", "format_em")
TAG_MODES: tuple[str, ...] = ("lenient", "search_r1")

#: What Search-R1 appends after a response with neither a search nor an answer tag.
SEARCH_R1_INVALID_ACTION = (
    "\nMy previous action is invalid. If I want to search, I should put the query between "
    "<search> and </search>. If I want to give the final answer, I should put the answer "
    "between <answer> and </answer>. Let me try again.\n"
)

TAGS_PROMPT = (
    "Answer the question below. Reason inside <think> and </think> every time you get new "
    "information. To look something up, write <search> query </search>: the best passages "
    "come back between <information> and </information>. You may search as many times as "
    "you need. When you know the answer, write it inside <answer> and </answer> without "
    "explanation, for example <answer> Velmora </answer>. Question: {question}\n"
)
TOOLS_PROMPT = (
    "Answer the question below. Use the search tool to look things up, as often as you "
    "need, then call the answer tool once with a short answer (no explanation). "
    "Question: {question}\n"
)

_ACTION_TAG = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WORD = re.compile(r"[A-Za-z0-9]{3,}")
#: What a restore hands to ``_load_task`` (loading a task here draws nothing at random).
_NO_RANDOMNESS = np.random.default_rng(0)


def tool_schemas(topk: int) -> list[dict[str, Any]]:
    """OpenAI function schemas of the ``tools`` protocol."""
    return [
        {
            "type": "function",
            "function": {
                "name": "search",
                "description": (
                    f"Search the knowledge base and return the {topk} best passages, "
                    "each as 'Doc i(Title: ...) text'."
                ),
                "parameters": {
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "A few key words or a name."}
                    },
                    "required": ["query"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "answer",
                "description": "Give the final answer (a short phrase). Ends the episode.",
                "parameters": {
                    "type": "object",
                    "properties": {"text": {"type": "string", "description": "The answer."}},
                    "required": ["text"],
                },
            },
        },
    ]


def render_passages(passages: Sequence[Passage]) -> str:
    """Passages the way Search-R1 shows them: ``Doc i(Title: first line) rest\\n``.

    The title is the raw first line of ``contents`` (quotes included), as in Search-R1.
    """
    out = []
    for i, p in enumerate(passages, start=1):
        title, _, text = p.contents.partition("\n")
        out.append(f"Doc {i}(Title: {title}) {text}\n")
    return "".join(out)


def clean_query(query: str) -> str:
    """Control characters become spaces; runs of whitespace fold to one space."""
    return " ".join(_CONTROL_CHARS.sub(" ", query).split())


@functools.lru_cache(maxsize=4)
def _shared_bm25(path: str, size: int, mtime_ns: int, cache_dir: str | None) -> BM25Retriever:
    """One BM25 index per corpus file per process, shared by every env instance (vectorised
    envs make many). ``size`` and ``mtime_ns`` make an edited file a new entry."""
    return BM25Retriever(path, cache_dir=cache_dir)


@functools.lru_cache(maxsize=8)
def _shared_qa(key: str, stamps: tuple[tuple[int, int], ...]) -> QASet:
    source = json.loads(key)
    return load_qa(source)


def _file_stamp(path: str | Path) -> tuple[int, int]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"file {str(path)!r} does not exist")
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


class SearchEnv(TextEnv):
    """Question answering with a search tool (Search-R1 / verl-agent compatible).

    Args:
        protocol: ``"tags"`` (Search-R1 ``<search>``/``<answer>``) or ``"tools"``
            (function calls ``search(query)`` / ``answer(text)``).
        topk: passages per search.
        reward: ``"em"``, ``"f1"`` or ``"format_em"`` (see the module docstring).
        tag_mode: with ``tags``, ``"search_r1"`` (read raw responses exactly as Search-R1
            does) or ``"lenient"`` (see the module docstring).
        retriever: ``"bm25"`` (in-process index over ``corpus``), the URL of a
            ``/retrieve`` server (``agentgym serve-retriever`` or Search-R1's), or any
            object with ``search``/``search_batch`` (:class:`~agentgym.tools.retrieval.Retriever`).
        corpus: corpus file for ``"bm25"`` (default: the shipped synthetic world).
        qa: questions: a file (Search-R1 parquet, JSONL) or ``{split: file}``
            (default: the shipped world's questions).
        max_query_chars: longer queries are rejected (invalid action) with a message.
        retriever_timeout, retriever_retries: for HTTP retrievers: seconds per attempt,
            and retries after a failed attempt.
        request_format: HTTP request shape, ``"queries"`` (Search-R1) or ``"query"``
            (verl-agent).
        use_data_prompt: with ``tags``, show the data's own ``prompt`` (Search-R1 parquet
            rows carry one) as the first observation instead of agentgym's template.
        format_require_think: for ``format_em`` with ``tags``: whether a well-formed turn
            must start with ``<think>..</think>`` (Search-R1's rule). Turn it off when the
            rollout's action parser passes only the action tag.
        structure_format_score, final_format_score, retrieval_score: ``format_em``
            weights (Search-R1's ``reward_model.*`` settings; defaults from its v0.3
            scripts).
        cache_dir: BM25 index cache folder (default ``$AGENTGYM_CACHE_DIR`` or
            ``~/.cache/agentgym``).
        task_types: keep only questions of these types (the shipped world's ``1-hop``,
            ``2-hop``, ``3-hop``; external data's ``data_source``), e.g. ``["2-hop"]``
            for questions that need two searches. ``None`` keeps every question.
        show_tool_schemas: with ``tools``, list the two tools' OpenAI schemas in
            ``info["tools"]`` (the chat template then shows them in every prompt).
            ``False`` leaves them out; the call format is unchanged. For a model that
            learns the format from demonstrations: the schemas are about 300 of the ~480
            prompt tokens of a tiny model built for this env (``examples/search_tools_cpu.yaml``).
    """

    description: ClassVar[str] = (
        "Answer questions by searching a corpus (Search-R1 tags or tool calls; EM reward)."
    )
    #: ``reward_components`` (EM and format) comes with the answer; ``gold_entities``
    #: (the question's entity chain) with every step of the shipped world's questions;
    #: ``gold_answer`` (the first gold answer, for IGPO's information gain) with every step.
    info_keys: ClassVar[tuple[str, ...]] = ("reward_components", "gold_entities", "gold_answer")
    #: Raw responses with long reasoning are fine; the query itself is limited separately.
    max_action_chars: ClassVar[int] = 16384

    def __init__(
        self,
        protocol: Protocol = "tags",
        topk: int = 3,
        reward: RewardKind = "em",
        tag_mode: TagMode = "lenient",
        retriever: str | Retriever = "bm25",
        corpus: str | None = None,
        qa: str | Mapping[str, str] | None = None,
        max_query_chars: int = 1024,
        retriever_timeout: float = 10.0,
        retriever_retries: int = 2,
        request_format: Literal["queries", "query"] = "queries",
        use_data_prompt: bool = True,
        format_require_think: bool = True,
        structure_format_score: float = 0.2,
        final_format_score: float = 0.1,
        retrieval_score: float = 0.0,
        cache_dir: str | None = None,
        task_types: Sequence[str] | None = None,
        show_tool_schemas: bool = True,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        if protocol not in PROTOCOLS:
            raise ConfigError(
                f"protocol={protocol!r} is not one of {list(PROTOCOLS)}."
                + did_you_mean(str(protocol), PROTOCOLS)
            )
        if reward not in REWARDS:
            raise ConfigError(
                f"reward={reward!r} is not one of {list(REWARDS)}."
                + did_you_mean(str(reward), REWARDS)
            )
        if tag_mode not in TAG_MODES:
            raise ConfigError(
                f"tag_mode={tag_mode!r} is not one of {list(TAG_MODES)}."
                + did_you_mean(str(tag_mode), TAG_MODES)
            )
        if tag_mode == "search_r1" and protocol != "tags":
            raise ConfigError(
                f"tag_mode='search_r1' reads Search-R1's tags; it needs protocol='tags', "
                f"got protocol={protocol!r}"
            )
        if not 1 <= int(topk) <= 100:
            raise ConfigError(f"topk must be between 1 and 100, got {topk}")
        if max_query_chars < 1:
            raise ConfigError(f"max_query_chars must be >= 1, got {max_query_chars}")
        self.protocol: Protocol = protocol
        self.reward_kind: RewardKind = reward
        self.tag_mode: TagMode = tag_mode
        self.topk = int(topk)
        self.max_query_chars = int(max_query_chars)
        self.use_data_prompt = bool(use_data_prompt)
        self.format_require_think = bool(format_require_think)
        self.format_weights = {
            "structure_format_score": float(structure_format_score),
            "final_format_score": float(final_format_score),
            "retrieval_score": float(retrieval_score),
        }
        self._owns_retriever = False
        self.retriever = self._make_retriever(
            retriever, corpus, cache_dir, retriever_timeout, retriever_retries, request_format
        )
        self.qa = self._load_qa(qa)
        self.task_types = tuple(task_types) if task_types else None
        self._ids = self._select_tasks(self.task_types)
        # The tools protocol answers with tool calls: that is the response format to prompt
        self.action_parser = "tool_call" if protocol == "tools" else type(self).action_parser
        show = protocol == "tools" and bool(show_tool_schemas)
        self._tool_schemas = tool_schemas(self.topk) if show else None
        # episode state
        self._row: QARow | None = None
        self._prompt = ""
        self._question_hash = ""
        self._retrieved: set[str] = set()
        self._queries: list[str] = []
        self._information: list[str] = []
        self._num_searches = 0
        self._answer: str | None = None
        self._format_ok = True

    # ------------------------------------------------------------ set-up

    def _make_retriever(
        self,
        spec: str | Retriever,
        corpus: str | None,
        cache_dir: str | None,
        timeout: float,
        retries: int,
        request_format: Literal["queries", "query"],
    ) -> Retriever:
        if not isinstance(spec, str):
            if not isinstance(spec, Retriever):
                raise ConfigError(
                    f"retriever={spec!r} has no search()/search_batch(); pass 'bm25', a "
                    "URL, or an agentgym.tools.retrieval.Retriever"
                )
            return spec
        if spec.startswith(("http://", "https://")):
            self._owns_retriever = True
            return HTTPRetriever(
                spec, timeout=timeout, retries=retries, request_format=request_format
            )
        if spec != "bm25":
            raise ConfigError(
                f"retriever={spec!r}: use 'bm25' (in-process) or the URL of a /retrieve "
                "server, e.g. 'http://127.0.0.1:8000/retrieve'"
            )
        path = str(Path(corpus).expanduser().resolve()) if corpus else str(DEFAULT_CORPUS)
        if not Path(path).is_file():
            raise FileNotFoundError(f"corpus file {path!r} does not exist")
        return _shared_bm25(path, *_file_stamp(path), cache_dir)

    @staticmethod
    def _load_qa(qa: str | Mapping[str, str] | None) -> QASet:
        if isinstance(qa, Mapping):
            source: str | dict[str, str] = {
                str(k): str(Path(v).expanduser().resolve()) for k, v in qa.items()
            }
            files = list(source.values())
        else:
            source = str(Path(qa).expanduser().resolve()) if qa else str(DEFAULT_QA)
            files = [source]
        stamps = tuple(_file_stamp(p) for p in files)
        return _shared_qa(json.dumps(source, sort_keys=True), stamps)

    def close(self) -> None:
        if self._owns_retriever and isinstance(self.retriever, HTTPRetriever):
            self.retriever.close()
        super().close()

    # ------------------------------------------------------------ tasks

    def _select_tasks(self, task_types: tuple[str, ...] | None) -> dict[str, list[str]]:
        if task_types is None:
            return dict(self.qa.ids)
        found = {row.task_type or row.data_source for row in self.qa.by_id.values()}
        unknown = sorted(set(task_types) - found)
        if unknown:
            raise ConfigError(
                f"task_types={list(task_types)}: the questions have no type {unknown}; "
                f"their types are {sorted(found)}"
            )

        def kept(task_id: str) -> bool:
            row = self.qa[task_id]
            return (row.task_type or row.data_source) in task_types

        return {split: [i for i in ids if kept(i)] for split, ids in self.qa.ids.items()}

    def task_ids(self, split: Split) -> Sequence[str]:
        return self._ids[split]

    @property
    def question(self) -> QARow:
        """The current task's QA row (question, gold answers, search chain)."""
        if self._row is None:
            raise RuntimeError("call reset() first")
        return self._row

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        row = self.qa[task_id]
        self._row = row
        self._question_hash = hashlib.blake2b(row.question.encode(), digest_size=4).hexdigest()
        self._retrieved, self._queries, self._information = set(), [], []
        self._num_searches, self._answer, self._format_ok = 0, None, True
        if self.protocol == "tags" and self.use_data_prompt and row.prompt:
            self._prompt = row.prompt
        else:
            template = TAGS_PROMPT if self.protocol == "tags" else TOOLS_PROMPT
            self._prompt = template.format(question=row.question)
        return self._prompt

    def _instruction(self) -> str:
        return self._prompt

    def _tools(self) -> list[dict[str, Any]] | None:
        return self._tool_schemas

    def _task_type(self) -> str | None:
        return self._row.task_type if self._row else None

    def _extra_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "num_tool_calls": self._num_searches,
            "data_source": self._row.data_source if self._row else "",
        }
        if self._row is not None and self._row.entities:
            info["gold_entities"] = list(self._row.entities)
        if self._row is not None:  # IGPO scores the policy's belief in it each turn
            info["gold_answer"] = self._row.golden_answers[0]
        return info

    # ------------------------------------------------------------ state

    def _state_key(self) -> str:
        ids = sorted(self._retrieved)
        key = f"{self._question_hash}|{len(ids)}"
        if ids:
            digest = hashlib.blake2b("\x1f".join(ids).encode(), digest_size=6).hexdigest()
            key += f":{digest}"
        return key + ("|end" if self._answer is not None else "")

    def canonical_state(self) -> str:
        """The question, the sorted ids of the passages retrieved so far, and whether the
        question has been answered."""
        state = f"{self.question.question}\n{','.join(sorted(self._retrieved))}"
        return state + ("\nanswered" if self._answer is not None else "")

    def _last_obs_tail(self) -> str:
        return f"Question: {self.question.question}"

    def _snapshot_state(self) -> tuple:
        """The episode's history: retrieved passage ids, queries, the information blocks
        shown (Search-R1's retrieval score reads them), the search count, the answer and
        whether every turn so far was well formed."""
        return (
            frozenset(self._retrieved),
            tuple(self._queries),
            tuple(self._information),
            self._num_searches,
            self._answer,
            self._format_ok,
        )

    def _restore_state(self, task_id: str, split: Split, state: tuple) -> None:
        self._load_task(task_id, split, _NO_RANDOMNESS)  # the question
        retrieved, queries, information, num_searches, answer, format_ok = state
        self._retrieved, self._queries = set(retrieved), list(queries)
        self._information, self._num_searches = list(information), int(num_searches)
        self._answer, self._format_ok = answer, bool(format_ok)

    # ------------------------------------------------------------ acting

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        ended_before = self._done
        result = super().step(action)
        if not ended_before and not result[4]["action_valid"]:
            self._format_ok = False  # Search-R1's format reward: every turn must be valid
        return result

    @property
    def _search_r1(self) -> bool:
        return self.tag_mode == "search_r1"

    def _step(self, action: str) -> StepResult:
        if self._search_r1:
            action = search_r1_truncate(action)
            self._format_ok &= turn_format_ok(
                action, self.format_require_think, ignore_after_action=False
            )
            call = self._parse_tags(action)
        elif self.protocol == "tags":
            self._format_ok &= turn_format_ok(action, self.format_require_think)
            call = self._parse_tags(action)
        else:
            call = self._parse_tool_call(action)
        if isinstance(call, str):
            return self._invalid(call)
        name, argument = call
        if name == "search":
            return self._search(argument.strip() if self._search_r1 else argument)
        if self._search_r1:
            # Search-R1 scores the last <answer> of the sequence: the answering turn's last
            return self._final_answer(_ANSWER_TAG.findall(action)[-1].strip())
        return self._final_answer(argument)

    def _parse_tags(self, action: str) -> tuple[str, str] | str:
        match = _ACTION_TAG.search(action)
        if match is None:
            return SEARCH_R1_INVALID_ACTION
        return match.group(1), match.group(2)

    def _parse_tool_call(self, action: str) -> tuple[str, str] | str:
        calls = find_tags(action, "tool_call")
        payload = calls[0].strip() if calls else action.strip()
        if not payload.startswith("{"):
            return "the response has no tool call"
        call = parse_tool_call_json(payload)
        if isinstance(call, str):
            return call
        name, arguments = call["name"], call["arguments"]
        expected = {"search": "query", "answer": "text"}
        if name not in expected:
            return f"there is no tool {name!r}.{did_you_mean(name, expected)}"
        value = arguments.get(expected[name])
        if not isinstance(value, str):
            return f'{name} needs a string argument "{expected[name]}", got {arguments!r:.200}'
        return name, value

    def _invalid(self, message: str) -> StepResult:
        if self.protocol == "tags":
            observation = message if message.startswith("\n") else f"\n{message}\n"
        else:
            observation = (
                f"Invalid tool call: {message}. Call search(query) to look something up or "
                'answer(text) to give the final answer, e.g. <tool_call>{"name": "search", '
                '"arguments": {"query": "Velmora"}}</tool_call>'
            )
        return self.invalid(message.strip(), observation=observation)

    def _search(self, raw_query: str) -> StepResult:
        # Search-R1 sends the stripped tag content as it is, even when it is empty
        query = raw_query if self._search_r1 else clean_query(raw_query)
        if not query and not self._search_r1:
            return self._invalid(
                "My search query was empty. I should put a few key words between <search> and "
                "</search>."
                if self.protocol == "tags"
                else "the search query is empty"
            )
        if len(query) > self.max_query_chars:
            problem = (
                f"the search query is {len(query)} characters long; at most "
                f"{self.max_query_chars} are allowed, so search with a few key words"
            )
            return self._invalid(
                f"My previous action is invalid: {problem}." if self.protocol == "tags" else problem
            )
        self._num_searches += 1
        self._queries.append(query.lower())
        info: dict[str, Any] = {"query": query}
        try:
            passages = self.retriever.search(query, self.topk)
        except Exception as exc:  # a retriever's failure is the agent's observation, not a crash
            text = f"Search failed: {exc}. No passages were retrieved; you can search again."
            info["retrieval_error"] = str(exc)
        else:
            self._retrieved.update(p.id for p in passages)
            text = render_passages(passages).strip()
            if not text and not self._search_r1:  # Search-R1 shows an empty block
                text = "No passages matched the query."
            info["retrieved_ids"] = [p.id for p in passages]
        self._information.append(text)
        limit = self.observation_space.max_length - 64
        text = text if len(text) <= limit else text[:limit] + " ..."
        observation = (
            f"\n\n<information>{text}</information>\n\n" if self.protocol == "tags" else text
        )
        return StepResult(observation, info=info)

    def _final_answer(self, raw_answer: str) -> StepResult:
        answer = " ".join(raw_answer.split())
        if not answer and not self._search_r1:  # Search-R1 ends the episode all the same
            return self._invalid(
                "My answer was empty. I should put the answer between <answer> and </answer>."
                if self.protocol == "tags"
                else "the answer is empty"
            )
        gold = self.question.golden_answers
        self._answer = answer
        em, f1 = exact_match(answer, gold), f1_score(answer, gold)
        if self.reward_kind == "em":
            reward = em
        elif self.reward_kind == "f1":
            reward = f1
        else:
            reward = format_reward(
                answer, gold, self._format_ok, self._information, **self.format_weights
            )
        verdict = "Correct." if em else f"Not correct; the expected answer was {gold[0]!r}."
        return StepResult(
            observation=f"Final answer: {answer}\n{verdict}",
            reward=reward,
            terminated=True,
            success=bool(em),
            score=f1 if self.reward_kind == "f1" else em,
            info={
                "answer": answer,
                "em": em,
                "f1": f1,
                "format_ok": self._format_ok,
                "reward_components": self._reward_components(answer, em, f1, reward),
            },
        )

    def _reward_components(
        self, answer: str, em: float, f1: float, reward: float
    ) -> dict[str, float]:
        """The answer's reward in two parts: correctness and format.

        With ``reward="format_em"`` they add up to the reward: ``em`` is the exact match
        (0 or 1, the full score), ``format`` the rest (0 for a well-formed correct answer, minus
        ``structure_format_score`` for a malformed one, the partial credit for a wrong
        answer). With ``"em"`` or ``"f1"`` the first part is the reward itself (named
        ``em`` or ``f1``) and ``format`` is what ``format_em`` would add to EM: a separate
        signal that is not in the reward.
        """
        if self.reward_kind == "format_em":
            return {"em": em, "format": reward - em}
        formatted = format_reward(
            answer, self.question.golden_answers, self._format_ok, self._information,
            **self.format_weights,
        )  # fmt: skip
        return {self.reward_kind: reward, "format": formatted - em}

    # ------------------------------------------------------------ policies

    def _expert_action(self) -> str:
        """Follow the question's search chain, then answer.

        Each hop is searched unless its passage is already retrieved or its query was
        already tried (so a failing retriever cannot trap the expert in a loop). Without
        a chain (external data) the expert searches the question once.
        """
        row = self.question
        hops = row.hops
        for hop in hops:
            if hop.doc_id in self._retrieved or hop.query.lower() in self._queries:
                continue
            need = hop.need or hop.query
            return self._render_call("search", hop.query, f"I need to find {need}.")
        if not hops and not self._queries:
            return self._render_call("search", row.question, "I need to look this up.")
        answer = row.golden_answers[0]
        return self._render_call("answer", answer, f"The passages say the answer is {answer}.")

    def random_action(self, rng: np.random.Generator) -> str:
        """What an untrained agent tries: searches for random words it has seen, random
        answers, and now and then a malformed response."""
        seen = self.question.question + (f" {self._last_obs}" if self._num_searches else "")
        words = _WORD.findall(seen) or ["answer"]

        def pick(n: int) -> str:
            return " ".join(words[int(i)] for i in rng.integers(len(words), size=n))

        u = float(rng.random())
        if u < 0.15:
            if self.protocol == "tags":
                junk = [f"I think it is {pick(1)}.", f"<search> {pick(1)}", f"search: {pick(2)}"]
            else:
                junk = [
                    '{"name": "search", "arguments": ',
                    f"I will search for {pick(1)}.",
                    json.dumps({"name": "lookup", "arguments": {"query": pick(1)}}),
                ]
            return junk[int(rng.integers(len(junk)))]
        if u < 0.7:
            return self._render_call("search", pick(int(rng.integers(1, 4))), None, rng)
        return self._render_call("answer", pick(int(rng.integers(1, 3))), None, rng)

    def _render_call(
        self,
        name: str,
        argument: str,
        thought: str | None,
        rng: np.random.Generator | None = None,
    ) -> str:
        if self.protocol == "tags":
            think = f"<think>{thought}</think>\n" if thought else ""
            return f"{think}<{name}> {argument} </{name}>"
        key = "query" if name == "search" else "text"
        call = json.dumps({"name": name, "arguments": {key: argument}}, ensure_ascii=False)
        if rng is not None and rng.random() < 0.5:
            return f"<tool_call>\n{call}\n</tool_call>"
        return call
