"""Judges: a model (any policy spec) or a rule-based function that gives verdicts.

Methods that learn from a judge (ArenaRL's pairwise tournament, MAPO's per-turn scores)
ask it through one object, :class:`Judge`, configured by the ``judge`` section of a
training config::

    judge:
      model: openai:http://127.0.0.1:8000/v1#judge   # or hf:DIR, vllm:DIR, tiny-dir, ...
      # model: agentgym.judges:fewer_steps           # or a rule-based "module:function"
      max_tokens: 256
      temperature: 0.0
      batch_size: 16
      retries: 2

A *request* is a prompt rendered from a template with named fields (the method's
provider fills them: the task, the trajectories, the turn) plus the structured fields
themselves, so a rule-based function can read the trajectories instead of parsing text.
A *parser* turns the judge's answer into a verdict (a score, a pair of scores); an answer
it cannot read is retried and, after ``retries``, replaced by the method's default verdict
and counted in ``judge/failures``.

Calls are batched (``batch_size`` prompts per ``generate``), retried, and -- for model
judges -- cached per (system prompt, prompt) within an iteration (:meth:`Judge.new_iteration`
clears the cache), so the same comparison asked twice costs one call; the prompt holds the
responses judged, so this is the cache per (prompt, response). Rule-based judges are not
cached: they may read structured fields the prompt does not show, and cost nothing. The
cost is logged as ``judge/calls`` (prompts sent), ``judge/cache_hits``, ``judge/seconds``,
``judge/prompt_tokens``, ``judge/completion_tokens``, ``judge/retries`` and
``judge/failures``.

Parsers are registered by name (:func:`register_verdict_parser`; a ``"module:function"``
string works too). Built in: ``score`` (the first number), ``pair_scores`` (the scores of
A and B) and ``winner`` (A, B or tie as scores 1/0, 0/1, 0.5/0.5).

Two rule-based judges ship with agentgym (for tests, CPU recipes and as examples):
:func:`fewer_steps` (pairwise: success first, then fewer steps) and :func:`valid_action`
(per turn: 10 for a valid action, 0 otherwise).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentgym.errors import ConfigError
from agentgym.registries import Registry, load_attr

__all__ = [
    "Judge",
    "JudgeRequest",
    "VerdictParser",
    "fewer_steps",
    "get_verdict_parser",
    "list_verdict_parsers",
    "register_verdict_parser",
    "render_template",
    "rule_based",
    "trajectory_text",
    "valid_action",
]

#: A parser: the judge's answer text -> a verdict, or None when it cannot be read.
VerdictParser = Callable[[str], Any]

VERDICT_PARSERS: Registry[VerdictParser] = Registry("verdict parser")


def register_verdict_parser(name: str) -> Callable[[VerdictParser], VerdictParser]:
    """Decorator registering ``fn(text) -> verdict | None`` as verdict parser ``name``."""

    def deco(fn: VerdictParser) -> VerdictParser:
        VERDICT_PARSERS.register(name, fn)
        return fn

    return deco


def get_verdict_parser(name: str) -> VerdictParser:
    """A registered parser, or the function a ``"module:function"`` string names."""
    if ":" in name and name not in VERDICT_PARSERS:
        return load_attr(name)
    return VERDICT_PARSERS.get(name)


def list_verdict_parsers() -> list[str]:
    return VERDICT_PARSERS.names()


_NUMBER = r"[-+]?\d+(?:\.\d+)?"


@register_verdict_parser("score")
def parse_score(text: str) -> float | None:
    """The first number in the answer (``"Score: 7"``, ``"<score>7</score>"``, ``"7/10"``)."""
    match = re.search(_NUMBER, text)
    return float(match.group()) if match else None


_SCORE_A = re.compile(rf"\bA\b[^0-9+\-]{{0,20}}?({_NUMBER})", re.IGNORECASE)
_SCORE_B = re.compile(rf"\bB\b[^0-9+\-]{{0,20}}?({_NUMBER})", re.IGNORECASE)


@register_verdict_parser("pair_scores")
def parse_pair_scores(text: str) -> tuple[float, float] | None:
    """``(score_a, score_b)`` from an answer naming both (``"Score A: 7\\nScore B: 4"``)."""
    a, b = _SCORE_A.search(text), _SCORE_B.search(text)
    if a is None or b is None:
        return None
    return float(a.group(1)), float(b.group(1))


_WINNER = re.compile(r"\b(A|B|[Tt][Ii][Ee])\b")  # A/B in capitals: "a" is a word


@register_verdict_parser("winner")
def parse_winner(text: str) -> tuple[float, float] | None:
    """``(1, 0)`` for A, ``(0, 1)`` for B, ``(0.5, 0.5)`` for a tie: the first ``A``, ``B``
    (capitals) or ``tie`` after the last word "winner", else in the whole answer."""
    cut = text.lower().rfind("winner")
    after = text[cut + len("winner") :] if cut >= 0 else text
    match = _WINNER.search(after)
    if match is None:
        return None
    word = match.group(1).lower()
    return {"a": (1.0, 0.0), "b": (0.0, 1.0), "tie": (0.5, 0.5)}[word]


@dataclass(frozen=True)
class JudgeRequest:
    """One question to the judge.

    Attributes:
        prompt: the text a model judge reads (a template rendered with ``fields``).
        fields: the structured data behind it (text fields, and for rule-based judges
            objects such as ``trajectory_a``); not part of the cache key.
    """

    prompt: str
    fields: Mapping[str, Any] = field(default_factory=dict, compare=False)


def render_template(template: str, fields: Mapping[str, Any]) -> str:
    """``template.format(**fields)`` over the text fields; an unknown ``{name}`` is a
    :class:`~agentgym.errors.ConfigError` naming the fields a template may use."""
    text_fields = {k: v for k, v in fields.items() if isinstance(v, str | int | float)}
    try:
        return template.format(**text_fields)
    except (KeyError, IndexError) as exc:
        raise ConfigError(
            f"judge template names {exc} which is not a field here; available: "
            f"{', '.join('{' + k + '}' for k in sorted(text_fields))}"
        ) from None


def trajectory_text(traj: Any, max_chars: int = 4000) -> str:
    """A trajectory as a judge reads it: each turn's response and the environment's reply.

    Long texts keep their end (where the outcome is) and say how much was cut.
    """
    parts = []
    steps = traj.steps
    for t, step in enumerate(steps):
        parts.append(f"[turn {t + 1}] agent: {step.response_text.strip()}")
        if t + 1 < len(steps) and steps[t + 1].observation:
            parts.append(f"environment: {steps[t + 1].observation.strip()}")
    outcome = "success" if traj.success else "no success"
    parts.append(f"[end] {traj.status}, {outcome}, score {traj.score:g}")
    text = "\n".join(parts)
    if len(text) > max_chars:
        text = f"[... {len(text) - max_chars} characters cut ...]\n" + text[-max_chars:]
    return text


class Judge:
    """A judge behind one interface (see the module docstring).

    Args:
        spec: a policy spec (``hf:DIR``, ``vllm:DIR``, ``openai:URL#model``, a model
            directory) or a ``"module:function"`` taking a :class:`JudgeRequest` and
            returning the answer text.
        system: a system message for model judges (``None``: none).
        max_tokens, temperature: sampling of model judges.
        batch_size: prompts per call of the model.
        retries: how many times an answer that errors or does not parse is asked again.
        seed: base sampling seed (retries use ``seed + attempt``).
        options: keyword arguments of the policy's constructor.
    """

    def __init__(
        self,
        spec: str,
        *,
        system: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        batch_size: int = 16,
        retries: int = 2,
        seed: int = 0,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"judge.batch_size must be >= 1, got {batch_size}")
        if retries < 0:
            raise ConfigError(f"judge.retries must be >= 0, got {retries}")
        self.spec, self.system = spec, system
        self.max_tokens, self.temperature = max_tokens, temperature
        self.batch_size, self.retries, self.seed = batch_size, retries, seed
        self._function: Callable[[JudgeRequest], Any] | None = None
        self._policy: Any = None
        kind, _, _ = spec.partition(":")
        from agentgym.policies import POLICY_KINDS

        if ":" in spec and kind not in POLICY_KINDS:
            try:
                self._function = load_attr(spec)
            except (ImportError, AttributeError, ValueError) as exc:
                raise ConfigError(
                    f"judge.model {spec!r} is neither a policy spec nor an importable "
                    f"'module:function' ({type(exc).__name__}: {exc})"
                ) from None
        else:
            from agentgym.policies import make_policy

            self._policy = make_policy(spec, **dict(options or {}))
        self._cache: dict[tuple[str | None, str], str] = {}
        #: A few answers of this iteration that did not parse (for a look when
        #: ``judge/failures`` climbs), as (prompt, answer).
        self.unparsed: list[tuple[str, str | None]] = []
        self.stats: dict[str, float] = {}
        self.reset_stats()

    @property
    def is_rule(self) -> bool:
        """True for a rule-based (Python function) judge."""
        return self._function is not None

    def reset_stats(self) -> None:
        self.stats = {
            "judge/calls": 0.0,
            "judge/cache_hits": 0.0,
            "judge/seconds": 0.0,
            "judge/prompt_tokens": 0.0,
            "judge/completion_tokens": 0.0,
            "judge/retries": 0.0,
            "judge/failures": 0.0,
        }

    def new_iteration(self) -> None:
        """Forget cached answers and start counting the cost afresh."""
        self._cache.clear()
        self.unparsed.clear()
        self.reset_stats()

    def metrics(self) -> dict[str, float]:
        return dict(self.stats)

    def close(self) -> None:
        if self._policy is not None:
            self._policy.close()

    # ------------------------------------------------------------------ asking

    def judge(
        self, requests: Sequence[JudgeRequest], parser: str | VerdictParser, default: Any
    ) -> list[Any]:
        """One verdict per request, in order (``default`` where no answer parsed)."""
        parse = get_verdict_parser(parser) if isinstance(parser, str) else parser
        started = time.perf_counter()
        verdicts: list[Any] = [None] * len(requests)
        todo = list(range(len(requests)))
        for attempt in range(self.retries + 1):
            if not todo:
                break
            if attempt:
                self.stats["judge/retries"] += len(todo)
            answers = self._answers([requests[i] for i in todo], attempt)
            still = []
            for i, answer in zip(todo, answers, strict=True):
                verdict = _safe_parse(parse, answer) if answer is not None else None
                if verdict is None:
                    self._cache.pop((self.system, requests[i].prompt), None)
                    still.append(i)
                    if attempt == self.retries and len(self.unparsed) < 5:
                        self.unparsed.append((requests[i].prompt, answer))
                else:
                    verdicts[i] = verdict
            todo = still
        for i in todo:
            verdicts[i] = default
        self.stats["judge/failures"] += len(todo)
        self.stats["judge/seconds"] += time.perf_counter() - started
        return verdicts

    def _answers(self, requests: list[JudgeRequest], attempt: int) -> list[str | None]:
        """Answer texts (None for an error), from the cache where possible."""
        out: list[str | None] = [None] * len(requests)
        if self._function is not None:  # rules read fields the prompt may not show: no cache
            return self._call(requests, attempt)
        missing: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            cached = self._cache.get((self.system, req.prompt))
            if cached is not None:
                out[i] = cached
                self.stats["judge/cache_hits"] += 1
            else:
                missing.setdefault(req.prompt, []).append(i)
        firsts = [idx[0] for idx in missing.values()]
        self.stats["judge/cache_hits"] += sum(len(idx) - 1 for idx in missing.values())
        for start in range(0, len(firsts), self.batch_size):
            chunk = firsts[start : start + self.batch_size]
            texts = self._call([requests[i] for i in chunk], attempt)
            for i, text in zip(chunk, texts, strict=True):
                for j in missing[requests[i].prompt]:
                    out[j] = text
                if text is not None:
                    self._cache[(self.system, requests[i].prompt)] = text
        return out

    def _call(self, requests: list[JudgeRequest], attempt: int) -> list[str | None]:
        self.stats["judge/calls"] += len(requests)
        if self._function is not None:
            out: list[str | None] = []
            for req in requests:
                try:
                    answer = self._function(req)
                except Exception:  # a broken rule is a failed verdict, not a crashed run
                    answer = None
                out.append(None if answer is None else str(answer))
            return out
        from agentgym.policies import PolicyInput, SamplingParams

        messages = [
            [*([{"role": "system", "content": self.system}] if self.system else []),
             {"role": "user", "content": req.prompt}]
            for req in requests
        ]  # fmt: skip
        sampling = SamplingParams(
            temperature=self.temperature, max_tokens=self.max_tokens, seed=self.seed + attempt
        )
        gens = self._policy.generate([PolicyInput(messages=m) for m in messages], sampling)
        texts: list[str | None] = []
        for gen in gens:
            self.stats["judge/prompt_tokens"] += len(gen.prompt_ids)
            self.stats["judge/completion_tokens"] += len(gen.token_ids)
            texts.append(None if gen.finish_reason == "error" else gen.text)
        return texts


def _safe_parse(parse: VerdictParser, text: str) -> Any:
    try:
        return parse(text)
    except Exception:  # a parser that chokes on odd text: treat as unreadable
        return None


# ---------------------------------------------------------------- rule-based judges


def fewer_steps(request: JudgeRequest) -> str:
    """Pairwise rule judge: a successful trajectory beats a failed one; between two of the
    same outcome the one with fewer steps wins (a tie when equal). Reads the fields
    ``trajectory_a`` and ``trajectory_b`` and answers ``"Score A: x\\nScore B: y"``
    (scores in 0..10), which the ``pair_scores`` parser reads.

    Its ranking differs from the binary reward: among successes it prefers the short ones.
    """
    a, b = request.fields["trajectory_a"], request.fields["trajectory_b"]

    def score(traj: Any) -> float:
        steps = max(len(traj.steps), 1)
        return (5.0 if traj.success else 0.0) + 5.0 / steps

    return f"Score A: {score(a):.4f}\nScore B: {score(b):.4f}"


def valid_action(request: JudgeRequest) -> str:
    """Per-turn rule judge: ``"Score: 10"`` when the turn's action was valid, else
    ``"Score: 0"`` (reads the field ``step``)."""
    return "Score: 10" if request.fields["step"].action_valid else "Score: 0"


def rule_based(request: JudgeRequest) -> str:
    """The rule judge for any request: :func:`fewer_steps` for a pairwise one (fields
    ``trajectory_a``/``trajectory_b``), :func:`valid_action` for a per-turn one (``step``).
    Handy for smoke tests of every judged method with one ``judge.model``."""
    if "trajectory_a" in request.fields:
        return fewer_steps(request)
    return valid_action(request)
