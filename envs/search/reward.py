"""Answer scoring for question answering with search, as Search-R1 does it.

:func:`normalize_answer` is the SQuAD normalisation that Search-R1 (and FlashRAG,
HotpotQA, DPR) apply before comparing answers, in the same order: lowercase, delete
ASCII punctuation (``string.punctuation``; other unicode punctuation stays), replace the
words "a", "an" and "the" with a space, and fold runs of whitespace into one space.

* :func:`exact_match`: 1 when the normalised prediction equals any normalised gold answer
  (Search-R1's ``em_check``);
* :func:`f1_score`: the best token-level F1 over the gold answers (SQuAD/HotpotQA);
* :func:`turn_format_ok` and :func:`format_reward`: Search-R1's format-aware reward
  (``qa_em_format.compute_score_em``), applied per turn instead of to the decoded
  sequence (see :func:`format_reward`);
* :func:`search_r1_truncate`: where Search-R1's generation manager cuts a response.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Search-R1's answer normalisation (see the module docstring)."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _as_list(golden_answers: str | Iterable[str]) -> list[str]:
    if isinstance(golden_answers, str):
        return [golden_answers]
    return [str(g) for g in golden_answers]


def exact_match(prediction: str, golden_answers: str | Iterable[str]) -> float:
    """1.0 if ``prediction`` matches any gold answer after normalisation, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _as_list(golden_answers)))


def substring_match(prediction: str, golden_answers: str | Iterable[str]) -> float:
    """1.0 if any normalised gold answer occurs inside the normalised prediction
    (Search-R1's ``subem_check``)."""
    pred = normalize_answer(prediction)
    return float(any(normalize_answer(g) in pred for g in _as_list(golden_answers)))


def f1_score(prediction: str, golden_answers: str | Iterable[str]) -> float:
    """Best token F1 between the normalised prediction and a normalised gold answer.

    As in HotpotQA's evaluation, "yes", "no" and "noanswer" only score when they match
    the gold answer exactly (a one-word overlap with them means nothing).
    """
    pred = normalize_answer(prediction)
    best = 0.0
    for gold in map(normalize_answer, _as_list(golden_answers)):
        if pred in ("yes", "no", "noanswer") or gold in ("yes", "no", "noanswer"):
            best = max(best, float(pred == gold))
            continue
        pred_tokens, gold_tokens = pred.split(), gold.split()
        common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
        if common == 0:
            continue
        precision, recall = common / len(pred_tokens), common / len(gold_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


_FORMAT_TAG = re.compile(r"(</?(?:think|search|information|answer)>)")
_ACTION_END = re.compile(r"</search>|</answer>")


def search_r1_truncate(response: str) -> str:
    """The response as Search-R1 keeps it (``LLMGenerationManager._postprocess_responses``).

    Search-R1 generates without stop strings, then cuts each response after its first
    ``</search>``; only a response without ``</search>`` is cut after its first
    ``</answer>``; one with neither is kept whole. So a ``</search>`` anywhere wins over an
    earlier ``</answer>``: ``<answer> a </answer> b </search>`` keeps everything.
    """
    for closing in ("</search>", "</answer>"):
        at = response.find(closing)
        if at >= 0:
            return response[: at + len(closing)]
    return response


def turn_format_ok(
    response: str, require_think: bool = True, ignore_after_action: bool = True
) -> bool:
    """Whether one response has Search-R1's structure.

    ``<think> .. </think>`` followed by ``<search> .. </search>`` or
    ``<answer> .. </answer>``, with nothing but whitespace between and around the tags,
    no ``<information>`` written by the model, and no tag nested in another. With
    ``require_think=False`` the think block is optional (for rollouts whose action parser
    keeps only the action tag).

    ``ignore_after_action=True`` ignores whatever follows the first ``</search>`` or
    ``</answer>``. With ``False`` nothing but whitespace may follow it, which is Search-R1's
    rule for a response already cut by :func:`search_r1_truncate` (its
    ``is_valid_sequence`` rejects any text or tag after the final ``</answer>``).
    """
    end = _ACTION_END.search(response)
    if end is None:
        return False
    checked = response[: end.end()] if ignore_after_action else response
    state = "start"
    transitions = {
        ("start", "<think>"): "in_think",
        ("in_think", "</think>"): "after_think",
        ("after_think", "<search>"): "in_search",
        ("after_think", "<answer>"): "in_answer",
        ("in_search", "</search>"): "end",
        ("in_answer", "</answer>"): "end",
    }
    if not require_think:
        transitions[("start", "<search>")] = "in_search"
        transitions[("start", "<answer>")] = "in_answer"
    for part in _FORMAT_TAG.split(checked):
        if _FORMAT_TAG.fullmatch(part):
            state = transitions.get((state, part), "bad")
            if state == "bad":
                return False
        elif part.strip() and not state.startswith("in_"):
            return False
    return state == "end"


def format_reward(
    answer: str | None,
    golden_answers: Sequence[str],
    format_ok: bool,
    information: Iterable[str] = (),
    structure_format_score: float = 0.2,
    final_format_score: float = 0.1,
    retrieval_score: float = 0.0,
    score: float = 1.0,
) -> float:
    """Search-R1's format-aware EM reward (``qa_em_format.compute_score_em``).

    ``format_ok`` says whether every turn of the episode had the right structure
    (:func:`turn_format_ok`); ``information`` holds the retrieved text shown so far.

    ============================  ==========================================
    correct answer, good format   ``score``
    correct answer, bad format    ``score - structure_format_score``
    wrong answer, good format     ``structure_format_score`` (+ ``retrieval_score``
                                  when a gold answer appears in the retrieved text)
    wrong answer, bad format      ``final_format_score``
    no answer                     0 (Search-R1 counts an unfinished sequence as badly
                                  formatted)
    ============================  ==========================================

    Search-R1 checks the decoded sequence of the whole episode; this applies the same
    rules turn by turn, so it works with any rollout engine.
    """
    if answer is None:
        return 0.0
    if exact_match(answer, golden_answers):
        return score if format_ok else score - structure_format_score
    if not format_ok:
        return final_format_score
    golds = [normalize_answer(g) for g in golden_answers]
    found = any(g in normalize_answer(block) for block in information for g in golds)
    return structure_format_score + (retrieval_score if found else 0.0)
