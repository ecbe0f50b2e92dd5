"""``hf:PATH``: transformers ``generate`` on a local model, batched, CPU or GPU.

Token in, token out: ``prompt_ids`` go to the model as given; ``messages`` are rendered with
the tokenizer's chat template (:func:`agentgym.policies.chat.render_prompt_ids`). Prompts
are sorted by length and generated in batches of ``batch_size`` with left padding.

Conventions (the same in every backend; see ``docs/policies.md``):

* ``token_ids`` are the sampled ids. When the response ends with an EOS token (the model's
  ``generation_config.eos_token_id`` and the tokenizer's EOS), that token is included, with
  its log-prob, so training learns to stop. A response cut by a stop string ends with the
  token that completed the stop string; ``text`` ends before the stop string.
* ``logprobs`` are ``log_softmax`` of the model's raw logits at each step (float32), before
  temperature, top-k and top-p: the log-probs training recomputes.
* ``finish_reason`` is ``"stop"`` (EOS or stop string), ``"length"`` (``max_tokens`` or
  the context is full) or ``"error"`` (the prompt is empty, too long, has ids outside the
  vocabulary, or generation failed for it).
* ``seed`` makes a batch repeatable without touching the global RNG (it is forked): the same
  prompts, order and seed give the same samples. Samples differ from vLLM's for the same
  seed (different random streams).

Share weights with a trainer with :meth:`HFPolicy.from_model`.

Asynchronous rollouts: :meth:`~agentgym.policies.base.Policy.agenerate` goes through a
batching queue (:mod:`agentgym.policies.batching`): the prompts of episodes that ask at
about the same time share one ``generate`` call, at most ``batch_size`` of them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.errors import ConfigError
from agentgym.policies.base import Generation, Policy, PolicyInput, SamplingParams
from agentgym.policies.chat import eos_token_ids, prompt_ids_of, prompt_problem
from agentgym.policies.chat import error_generation as _error
from agentgym.policies.hub import model_load_error, resolve_model

log = logging.getLogger(__name__)

#: generation-config fields that would change the logits before log-probs are recorded or
#: change sampling beyond SamplingParams; set to neutral values on every call, because
#: ``generate`` fills unset fields from the model's ``generation_config.json``.
_NEUTRAL = {
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "min_length": 0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "num_beams": 1,
    "renormalize_logits": False,
    "remove_invalid_values": False,
    "use_cache": True,
}
#: fields that cannot be switched off per call once a model's generation config sets them.
_UNNEUTRALISABLE = (
    "bad_words_ids",
    "suppress_tokens",
    "begin_suppress_tokens",
    "sequence_bias",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "min_p",
    "top_h",
    "min_new_tokens",
)

_DTYPES = ("float32", "bfloat16", "float16", "auto")


class HFPolicy(Policy):
    """Generate with a transformers causal LM.

    Args:
        spec: the policy's spec string (``hf:PATH``).
        target: the model directory (or hub id, if the hub is reachable).
        device: torch device, e.g. ``"cpu"`` or ``"cuda:0"``.
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"auto"`` (as saved).
        batch_size: prompts per ``generate`` call.
        max_model_len: the context length (prompt + response); default the model's
            ``max_position_embeddings``.
        model, tokenizer: an already loaded model and tokenizer to use instead of loading
            ``target`` (see :meth:`from_model`).
    """

    trainable = True

    def __init__(
        self,
        spec: str,
        target: str = "",
        *,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 64,
        max_model_len: int | None = None,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        super().__init__(spec)
        if model is None and target:
            target = resolve_model(spec, target)  # before the slow imports
        import torch

        if dtype not in _DTYPES:
            raise ValueError(f"dtype={dtype!r} is not one of {list(_DTYPES)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if model is None:
            if not target:
                raise ValueError("HFPolicy needs a model directory (target) or a loaded model")
            from transformers import AutoModelForCausalLM, AutoTokenizer

            torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
            try:
                model = AutoModelForCausalLM.from_pretrained(target, dtype=torch_dtype)
                tokenizer = tokenizer or AutoTokenizer.from_pretrained(target)
            except OSError as exc:
                raise ConfigError(model_load_error(spec, target, exc)) from exc
            model = model.to(device).eval()
        elif tokenizer is None:
            raise ValueError("HFPolicy: give the tokenizer together with the model")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        config = model.config
        self.max_model_len = int(max_model_len or config.max_position_embeddings)
        self.vocab_size = int(config.vocab_size)
        self.eos_ids = eos_token_ids(model.generation_config.eos_token_id, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else sorted(self.eos_ids)[0])
        defaults = model.generation_config
        unneutral = [f for f in _UNNEUTRALISABLE if getattr(defaults, f, None) not in (None, [])]
        if unneutral:
            warnings.warn(
                f"the model's generation_config sets {unneutral}; transformers applies these "
                "before agentgym records log-probs, so HF log-probs may differ from vLLM's",
                stacklevel=2,
            )

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        spec: str | None = None,
        batch_size: int = 64,
        max_model_len: int | None = None,
    ) -> HFPolicy:
        """Wrap a model already in memory (e.g. the trainer's): generation uses its current
        weights, so no :meth:`load_weights` is needed after an update."""
        name = getattr(model, "name_or_path", "") or "<in-memory>"
        return cls(
            spec or f"hf:{name}",
            "",
            batch_size=batch_size,
            max_model_len=max_model_len,
            model=model,
            tokenizer=tokenizer,
        )

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ generation

    def generate(self, inputs: Sequence[PolicyInput], sampling: SamplingParams) -> list[Generation]:
        results: list[Generation | None] = [None] * len(inputs)
        todo: list[tuple[int, list[int]]] = []
        for i, item in enumerate(inputs):
            try:
                ids = prompt_ids_of(self.tokenizer, item)
            except Exception as exc:  # a bad message list must not sink the batch
                results[i] = _error(f"could not render the messages: {exc}")
                continue
            problem = self.prompt_problem(ids)
            if problem:
                results[i] = _error(problem, ids)
            else:
                todo.append((i, ids))
        # Longest first: similar lengths share a batch, so little padding.
        todo.sort(key=lambda pair: -len(pair[1]))
        with _seeded(sampling.seed, self.device):
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                generations = self._generate_isolated(chunk, sampling)
                for (i, _), gen in zip(chunk, generations, strict=True):
                    results[i] = gen
        return [g if g is not None else _error("internal: no result") for g in results]

    def prompt_problem(self, ids: Sequence[int]) -> str | None:
        """Why the model cannot take ``ids`` as a prompt, or ``None``."""
        return prompt_problem(ids, self.max_model_len, self.vocab_size)

    def _generate_isolated(
        self, chunk: list[tuple[int, list[int]]], sampling: SamplingParams
    ) -> list[Generation]:
        """Generate a chunk; if that fails, each prompt alone, so one bad prompt fails alone."""
        try:
            return self._generate_batch([ids for _, ids in chunk], sampling)
        except Exception as exc:
            if len(chunk) == 1:
                log.warning("hf generation failed for one prompt: %s", exc)
                return [_error(f"generation failed: {type(exc).__name__}: {exc}", chunk[0][1])]
        return [self._generate_isolated([pair], sampling)[0] for pair in chunk]

    def _generate_batch(
        self, prompts: list[list[int]], sampling: SamplingParams
    ) -> list[Generation]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        device = self.device
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        # Rows stop at their own context limit below; the batch runs as far as the row with
        # the most room (the shortest prompt) may go.
        room = [min(sampling.max_tokens, self.max_model_len - len(p)) for p in prompts]
        recorder = _LogprobRecorder()
        criteria = StoppingCriteriaList()
        if sampling.stop:
            criteria.append(_StopStrings(self.tokenizer, sampling.stop, width))
        config: dict[str, Any] = {
            **_NEUTRAL,
            "max_new_tokens": max(room),
            "do_sample": not sampling.greedy,
            "eos_token_id": sorted(self.eos_ids),
            "pad_token_id": self.pad_id,
            "return_dict_in_generate": True,
        }
        if not sampling.greedy:
            config.update(temperature=sampling.temperature, top_p=sampling.top_p)
            config["top_k"] = sampling.top_k
        training = self.model.training  # a trainer's model may be in train mode (dropout)
        self.model.eval()
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=input_ids.to(device),
                    attention_mask=attention_mask.to(device),
                    generation_config=GenerationConfig(**config),
                    logits_processor=LogitsProcessorList([recorder]),
                    stopping_criteria=criteria,
                )
        finally:
            self.model.train(training)
        new_tokens = out.sequences[:, width:].tolist()
        logprobs = recorder.finish(out.sequences).tolist()
        return [
            self._finish(prompts[row], new_tokens[row], logprobs[row], room[row], sampling)
            for row in range(len(prompts))
        ]

    def _finish(
        self,
        prompt: list[int],
        tokens: list[int],
        logprobs: list[float],
        room: int,
        sampling: SamplingParams,
    ) -> Generation:
        """Cut one row at its EOS, stop string or limit, and decode it."""
        end, reason = min(len(tokens), room), "length"
        for j, token in enumerate(tokens[:end]):
            if token in self.eos_ids:
                end, reason = j + 1, "stop"
                break
        if sampling.stop:
            cut = _stop_string_end(self.tokenizer, tokens[:end], sampling.stop)
            if cut is not None:
                end, reason = cut, "stop"
        tokens, logprobs = tokens[:end], logprobs[:end]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        if sampling.stop:
            text = _cut_at_stop(text, sampling.stop)
        return Generation(
            text=text,
            token_ids=tokens,
            logprobs=[float(x) for x in logprobs],
            prompt_ids=list(prompt),
            finish_reason=reason,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ weights

    def load_weights(self, weights: Mapping[str, Any]) -> None:
        """Copy a full or partial state dict (names as in ``model.state_dict()``) into the
        model; unknown names are an error (they usually mean a prefix mismatch)."""
        import torch

        known = set(self.model.state_dict())
        unknown = sorted(set(weights) - known)
        if unknown:
            raise ValueError(
                f"load_weights got {len(unknown)} names the model does not have, e.g. "
                f"{unknown[:3]}; expected names like {sorted(known)[:3]}"
            )
        with torch.no_grad():
            self.model.load_state_dict(dict(weights), strict=False)

    def close(self) -> None:
        self._close_batching_queue()
        self.model = None


class _seeded:
    """Seed torch's RNG for a block and restore the previous state afterwards."""

    def __init__(self, seed: int | None, device: Any) -> None:
        self.seed, self.device = seed, device
        self._fork: Any = None

    def __enter__(self) -> None:
        if self.seed is None:
            return
        import torch

        devices = [self.device] if getattr(self.device, "type", "cpu") == "cuda" else []
        self._fork = torch.random.fork_rng(devices=devices)
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        if self._fork is not None:
            self._fork.__exit__(*exc)


class _LogprobRecorder:
    """A logits processor that records the raw log-prob of each sampled token.

    ``generate`` passes it the raw float32 logits of every step before temperature and
    top-k/top-p (those come after custom processors). The token sampled from step ``t`` is
    only known at step ``t + 1`` (the last column of ``input_ids``), so each call gathers
    the previous step's log-prob; :meth:`finish` gathers the last one. Memory stays one
    ``[batch, vocab]`` tensor instead of all steps' logits.
    """

    def __init__(self) -> None:
        self._previous: Any = None
        self._gathered: list[Any] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._previous is not None:
            self._gather(input_ids[:, -1])
        self._previous = scores.float().log_softmax(dim=-1)
        return scores

    def _gather(self, tokens: Any) -> None:
        self._gathered.append(self._previous.gather(1, tokens[:, None].to(self._previous.device)))

    def finish(self, sequences: Any) -> Any:
        import torch

        if self._previous is not None:
            self._gather(sequences[:, -1])
            self._previous = None
        if not self._gathered:
            return torch.zeros((sequences.shape[0], 0))
        return torch.cat(self._gathered, dim=1).cpu()


class _StopStrings:
    """Stops a row once its newest tokens' text contains one of the stop strings.

    Only a window of recent tokens is decoded each step: a stop string of ``n`` characters
    spans at most ``n`` tokens, and a row stops the first time one appears, so any match in
    the window is new.
    """

    def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.prompt_width = prompt_width
        self.window = max((len(s) for s in self.stop), default=1) + 1

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        generated = input_ids[:, self.prompt_width :]
        tail = generated[:, -self.window :].tolist()
        done = [
            any(s in self.tokenizer.decode(row, skip_special_tokens=True) for s in self.stop)
            for row in tail
        ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _stop_string_end(tokenizer: Any, tokens: list[int], stop: Sequence[str]) -> int | None:
    """The number of tokens up to the one that completes the first stop string, or ``None``.

    Binary search on prefixes: once a prefix's text contains a stop string, every longer
    prefix's does too.
    """
    stop = [s for s in stop if s]

    def has_stop(n: int) -> bool:
        text = tokenizer.decode(tokens[:n], skip_special_tokens=True)
        return any(s in text for s in stop)

    if not stop or not has_stop(len(tokens)):
        return None
    lo, hi = 1, len(tokens)
    while lo < hi:
        mid = (lo + hi) // 2
        if has_stop(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text
