"""The policy protocol: a batch of prompts and sampling settings in, text + tokens out.

Every inference backend (transformers, vLLM, an OpenAI-compatible server) and the
built-in ``expert`` and ``random`` policies implement :class:`Policy`. The rollout engine
only ever talks to this interface: :meth:`Policy.generate` for a batch (the lock-step
engine), :meth:`Policy.agenerate` for one prompt awaited on an event loop (the asynchronous
engine, :mod:`agentgym.rollout.async_engine`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Message = dict[str, Any]  # {"role": "system"|"user"|"assistant"|"tool", "content": str, ...}


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings, the same for every backend.

    Attributes:
        temperature: 0 means greedy decoding.
        top_p: nucleus sampling mass (1.0 = off).
        top_k: keep the k most likely tokens (0 = off).
        max_tokens: the most tokens to generate per response.
        stop: strings that end a response (kept out of the text, as vLLM does).
        seed: base seed for sampling; backends that support it make runs repeatable.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class PolicyInput:
    """One prompt.

    Give ``prompt_ids`` (token in, token out: backends must not re-tokenise) or
    ``messages`` (rendered with the backend's chat template, or sent as chat to a server).
    ``hints`` carries what the rollout engine computed for policies that ask for it
    (:attr:`Policy.wants_hints`), e.g. ``{"expert_action": "<action>up</action>"}``.
    ``seed`` is this prompt's own sampling seed (the rollout engine derives it from the
    run's seed, the episode and the step, so an episode samples the same whatever else
    shares its batch); backends that seed per request use it (see :func:`request_seed`).
    """

    messages: list[Message] | None = None
    prompt_ids: list[int] | None = None
    hints: Mapping[str, str] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.messages is None and self.prompt_ids is None:
            raise ValueError("a PolicyInput needs messages or prompt_ids")


def request_seed(sampling: SamplingParams, item: PolicyInput, index: int) -> int | None:
    """The seed of one request: the prompt's own seed, else ``sampling.seed + index`` (one
    stream per prompt of a batch, so N copies of a prompt do not sample alike), else
    ``None`` (unseeded)."""
    if item.seed is not None:
        return item.seed
    return None if sampling.seed is None else sampling.seed + index


FinishReason = Literal["stop", "length", "error"]

_QUEUE_LOCK = threading.Lock()


@dataclass
class Generation:
    """One response.

    Attributes:
        text: the decoded response (stop strings removed).
        token_ids: the sampled token ids, exactly as the engine produced them.
        logprobs: the engine's log-prob of each sampled token under the sampling
            distribution's logits *before* temperature/top-p/top-k (empty if unavailable).
        prompt_ids: the prompt token ids the engine actually saw (empty if unknown).
        finish_reason: ``"stop"`` (EOS or a stop string), ``"length"`` (``max_tokens``)
            or ``"error"`` (the backend failed for this prompt; ``error`` says why).
        weight_versions: ``(version, start, end)``: ``token_ids[start:end]`` were sampled
            by the weights of that version, where the backend reports it (``vllm_server``:
            the version of each weight push; a request that lived through a push has
            several spans). Empty when unknown.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    error: str | None = None
    weight_versions: list[tuple[str, int, int]] = field(default_factory=list)


class Policy:
    """Base class of policies.

    Attributes:
        spec: the string that names this policy (``hf:PATH``, ``expert``, ...).
        tokenizer: a Hugging Face tokenizer when the backend has one (needed for
            token-in/token-out prompts and training), else ``None``.
        wants_hints: hint names the rollout engine must fill in :attr:`PolicyInput.hints`.
        trainable: whether :meth:`load_weights` can change the policy.
    """

    wants_hints: ClassVar[frozenset[str]] = frozenset()
    trainable: ClassVar[bool] = False

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.tokenizer: Any = None

    def generate(self, inputs: Sequence[PolicyInput], sampling: SamplingParams) -> list[Generation]:
        """One :class:`Generation` per input, in order. Must not raise for one bad prompt:
        return ``finish_reason="error"`` for it instead."""
        raise NotImplementedError

    async def agenerate(
        self, item: PolicyInput, sampling: SamplingParams, index: int = 0
    ) -> Generation:
        """One prompt, awaitable from any event loop while other prompts are in flight.

        ``index`` picks the seed stream as the prompt's position in a batch would
        (:func:`request_seed`), for an input without its own ``seed``. Same contract as
        :meth:`generate`: never raises for a bad prompt.

        The default batches concurrent requests into :meth:`generate` calls through a
        :class:`~agentgym.policies.batching.BatchingQueue` (one worker thread, requests
        that arrive close together share a call). Backends that batch continuously
        themselves (a server, an async engine) override it.
        """
        if item.seed is None and sampling.seed is not None:
            item = dataclasses.replace(item, seed=sampling.seed + index)
        return await self.batching_queue().agenerate(item, sampling)

    def batching_queue(self) -> Any:
        """The :class:`~agentgym.policies.batching.BatchingQueue` behind the default
        :meth:`agenerate` (made on first use; ``max_batch`` is the policy's
        ``batch_size`` when it has one)."""
        from agentgym.policies.batching import BatchingQueue

        with _QUEUE_LOCK:
            queue = self.__dict__.get("_batching_queue")
            if queue is None:
                queue = BatchingQueue(
                    self.generate,
                    max_batch=int(getattr(self, "batch_size", 64) or 64),
                    name=f"agentgym-batching-{type(self).__name__}",
                )
                self.__dict__["_batching_queue"] = queue
            return queue

    def _close_batching_queue(self) -> None:
        queue = self.__dict__.pop("_batching_queue", None)
        if queue is not None:
            queue.close()

    def load_weights(self, weights: Mapping[str, Any]) -> None:
        """Replace the model's weights in place (a full or partial state dict)."""
        raise NotImplementedError(f"{type(self).__name__} has no weights to load")

    def close(self) -> None:
        """Release engines, servers and memory."""
        self._close_batching_queue()

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"
