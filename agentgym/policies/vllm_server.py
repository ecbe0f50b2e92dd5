"""``vllm_server:PATH``: N vLLM OpenAI-compatible servers, load-balanced, with weight pushes.

The layout that scales past one machine: the trainer keeps the model it trains, and
generation runs in vLLM servers -- started here by agentgym (``servers: 2``) or already
running anywhere (``servers: [http://host-a:8000, http://host-b:8000]``). After each update
:meth:`VLLMServerPolicy.load_weights` pushes the new weights into every server through vLLM's
own weight-update endpoints (no checkpoint written, no server restarted):

    POST /pause?mode=wait      finish the requests in flight, hold new ones, clear the cache
    POST /start_weight_update  vLLM starts a layer-wise reload
    POST /update_weights       one request per chunk of tensors (which each server fetches
                               from this process, or base64 in the body: ``transfer``)
    POST /finish_weight_update vLLM finishes the reload; the new ``weight_version``
    POST /resume               held requests run on the new weights

The transport is the ``agentgym_http`` weight-transfer engine
(:mod:`agentgym.policies.vllm_weights`), which a server started with
:func:`~agentgym.policies.vllm_launch.server_command`
has (``VLLM_SERVER_DEV_MODE=1``, ``--weight-transfer-config``, ``--worker-extension-cls``).
Start a server on another host the same way: ``python -m agentgym.policies.vllm_launch
--model DIR --host 0.0.0.0 --port 8000`` (see ``docs/scale_out.md``).

Generation is token in, token out over HTTP: every prompt goes to vLLM's
``/inference/v1/generate`` endpoint as token ids (``messages`` are rendered here with the
model's chat template, as the ``hf`` and ``vllm`` backends do) and comes back as token ids,
text and the sampled tokens' raw log-probs (servers run with ``--logprobs-mode
raw_logprobs``), plus the weight version that produced each token
(:attr:`~agentgym.policies.base.Generation.weight_versions`). Each request goes to the
server with the fewest requests in flight (ties: the one that has served fewest); a request
that fails to connect, times out or gets a 5xx is retried (backoff) on the then least
loaded server; a prompt that still fails gets ``finish_reason="error"``.

Async engines: :meth:`VLLMServerPolicy.agenerate` is a coroutine for one prompt that any
event loop may await (the requests run on the policy's own loop thread); the batch
:meth:`~VLLMServerPolicy.generate` is the same requests gathered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import threading
import time
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

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
from agentgym.policies.openai import _decode, _gather_or_cancel, _LoopThread, _snippet
from agentgym.policies.vllm_launch import (
    LocalVLLMServer,
    VLLMServerError,
    has_cuda,
    placement_env,
)
from agentgym.policies.weight_payload import (
    DEFAULT_CHUNK_BYTES,
    Chunk,
    PayloadServer,
    encode_chunks,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

_RETRY_STATUS = frozenset({408, 429})


class WeightSyncError(VLLMServerError):
    """A weight push that failed on a server (which may now hold a partial update)."""


# ---------------------------------------------------------------------------- policy


@dataclass
class ServerSlot:
    """One server as the balancer sees it."""

    url: str
    in_flight: int = 0
    served: int = 0
    failures: int = 0
    process: LocalVLLMServer | None = field(default=None, repr=False)
    #: after a failure the server is skipped until then (``time.monotonic()``), unless
    #: every server is skipped; consecutive failures double the pause (at most 30 s)
    resting_until: float = field(default=0.0, repr=False)
    streak: int = field(default=0, repr=False)

    def failed(self, backoff: float) -> None:
        self.failures += 1
        self.streak += 1
        self.resting_until = time.monotonic() + min(max(backoff, 0.05) * 2 ** (self.streak - 1), 30)

    def answered(self) -> None:
        self.served += 1
        self.streak = 0
        self.resting_until = 0.0


class _Retryable(Exception):
    """A failure worth another attempt (connection, timeout, 5xx, 429, malformed 200)."""


class _Rejected(Exception):
    """A 4xx answer: the request itself is wrong."""


class VLLMServerPolicy(Policy):
    """Generate with N vLLM servers and push weights into them (see the module docstring).

    Args:
        spec: the policy's spec string (``vllm_server:PATH``).
        target: the model directory the servers serve (its tokenizer renders prompts here,
            its layout checks :meth:`load_weights`).
        servers: how many servers to start on this machine, or the base URLs
            (``http://host:port``) of servers already running (started with
            ``python -m agentgym.policies.vllm_launch``).
        max_model_len, dtype, kv_cache_memory_bytes, gpu_memory_utilization,
            enforce_eager, seed: the started servers' engine settings (as the in-process
            ``vllm`` backend's; on CPU hosts ``kv_cache_memory_bytes`` defaults to 1 GiB).
        server_args: more command-line arguments for the started servers.
        server_env: more environment variables for the started servers.
        log_dir: where the started servers write their logs (default a temporary folder).
        start_timeout: seconds the started servers may take to answer.
        timeout: seconds one generation attempt may take.
        max_retries: retries of a generation request after the first attempt.
        backoff: the first retry's delay in seconds; it doubles each retry (at most 30 s).
        concurrency: the most requests in flight per server.
        sync_timeout: seconds one weight-update request may take.
        chunk_bytes: raw bytes of weights per ``/update_weights`` request.
        wire_dtype: cast floating-point weights to this dtype for the push
            (``"bfloat16"`` halves the bytes for servers running in bfloat16).
        pause_mode: how ``/pause`` treats requests in flight during a push: ``wait``
            (finish them on the old weights), ``keep`` (freeze them and continue on the new
            weights; their tokens carry both versions) or ``abort``.
        transfer: how the bytes of a push travel: ``pull`` (each server fetches them from
            a small HTTP server in this process, which the servers must be able to reach)
            or ``inline`` (base64 inside the requests; slower for large models).
        payload_bind: the address the ``pull`` payload server listens on; default
            ``127.0.0.1`` when every server is on this machine (loopback URLs), else all
            interfaces (``0.0.0.0``).
    """

    trainable = True

    def __init__(
        self,
        spec: str,
        target: str,
        *,
        servers: int | Sequence[str] = 1,
        max_model_len: int | None = None,
        dtype: str = "float32",
        kv_cache_memory_bytes: int | None = None,
        gpu_memory_utilization: float | None = None,
        enforce_eager: bool = True,
        seed: int = 0,
        server_args: Sequence[str] = (),
        server_env: Mapping[str, str] | None = None,
        log_dir: str | None = None,
        start_timeout: float = 300.0,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        concurrency: int = 64,
        sync_timeout: float = 600.0,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        wire_dtype: str | None = None,
        pause_mode: str = "wait",
        transfer: str = "pull",
        payload_bind: str | None = None,
    ) -> None:
        super().__init__(spec)
        urls, count = _server_list(servers)
        for name, value in (("max_retries", max_retries), ("timeout", timeout)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if concurrency < 1 or chunk_bytes < 1:
            raise ValueError("concurrency and chunk_bytes must be >= 1")
        if pause_mode not in ("wait", "keep", "abort"):
            raise ValueError(f"pause_mode must be 'wait', 'keep' or 'abort', got {pause_mode!r}")
        if transfer not in ("pull", "inline"):
            raise ValueError(f"transfer must be 'pull' or 'inline', got {transfer!r}")
        if wire_dtype is not None:
            import torch

            if not isinstance(getattr(torch, wire_dtype, None), torch.dtype):
                raise ValueError(f"wire_dtype {wire_dtype!r} is not a torch dtype")
        self.model_path = resolve_model(spec, target)
        from transformers import AutoConfig, AutoTokenizer

        from agentgym.policies.vllm import _configured_eos

        # Before any server starts: a model directory that cannot load fails here.
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        config = AutoConfig.from_pretrained(self.model_path)
        self.vocab_size = max(len(self.tokenizer), int(getattr(config, "vocab_size", 0) or 0))
        self.eos_ids = eos_token_ids(_configured_eos(self.model_path), self.tokenizer)
        self._layout: tuple[list[str], list[tuple[str, ...]]] | None = None
        self.timeout, self.max_retries, self.backoff = float(timeout), max_retries, backoff
        self.sync_timeout, self.chunk_bytes = float(sync_timeout), chunk_bytes
        self.wire_dtype, self.pause_mode = wire_dtype, pause_mode
        self.transfer, self.payload_bind = transfer, payload_bind
        self._payloads: PayloadServer | None = None
        self.weight_version = 0
        self.last_sync_seconds = 0.0
        self._lock = threading.Lock()
        self._loop = _LoopThread()
        self._slots: list[ServerSlot] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._loop, self._slots)
        try:
            if count:
                kv = kv_cache_memory_bytes
                if kv is None and gpu_memory_utilization is None and not has_cuda():
                    from agentgym.policies.vllm import CPU_DEFAULT_KV_CACHE_BYTES

                    kv = CPU_DEFAULT_KV_CACHE_BYTES
                folder = Path(log_dir or tempfile.mkdtemp(prefix="agentgym-vllm-servers-"))
                for i in range(count):
                    process = LocalVLLMServer(
                        self.model_path,
                        log_path=folder / f"server-{i}.log",
                        env={**placement_env(i, count), **(server_env or {})},
                        max_model_len=max_model_len,
                        dtype=dtype,
                        kv_cache_memory_bytes=kv,
                        gpu_memory_utilization=gpu_memory_utilization,
                        enforce_eager=enforce_eager,
                        seed=seed,
                        extra_args=list(server_args),
                    )
                    self._slots.append(ServerSlot(process.url, process=process))
                for slot in self._slots:  # they start side by side
                    if slot.process is not None:
                        slot.process.wait_ready(start_timeout)
            else:
                self._slots.extend(ServerSlot(url) for url in urls)
            self._slots_free = asyncio.Semaphore(concurrency * len(self._slots))
            self._client: httpx.AsyncClient = self._loop.run(self._make_client(concurrency))
            self.model_name, self.max_model_len = self._loop.run(self._describe())
            self._loop.run(self._for_all("/init_weight_transfer_engine", {"init_info": {}}))
        except BaseException:
            self.close()
            raise

    @property
    def servers(self) -> list[ServerSlot]:
        """The servers, in the order given (or started)."""
        return list(self._slots)

    async def _make_client(self, concurrency: int) -> httpx.AsyncClient:
        total = concurrency * len(self._slots) + 2 * len(self._slots)
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=total, max_keepalive_connections=total),
            headers={"Content-Type": "application/json"},
        )

    async def _describe(self) -> tuple[str, int]:
        """The served model's name and context length, from the first server; every server
        must serve a model of that context length."""
        seen = []
        for slot in self._slots:
            status, raw = await self._send(slot, "GET", "/v1/models", None, self.timeout)
            if status != 200:
                raise VLLMServerError(
                    f"{slot.url}/v1/models answered HTTP {status}: {_snippet(raw)}"
                )
            models = _decode(raw).get("data") or []
            if not models:
                raise VLLMServerError(f"{slot.url} serves no model")
            seen.append((str(models[0]["id"]), int(models[0].get("max_model_len") or 0)))
        if len({length for _, length in seen}) > 1:
            raise VLLMServerError(f"the servers serve different context lengths: {seen}")
        return seen[0]

    # ------------------------------------------------------------------ generation

    def generate(self, inputs: Sequence[PolicyInput], sampling: SamplingParams) -> list[Generation]:
        """Generate for every input, spread over the servers by load."""
        if not inputs:
            return []
        return self._loop.run(self._generate_all(list(inputs), sampling))

    async def agenerate(
        self, item: PolicyInput, sampling: SamplingParams, index: int = 0
    ) -> Generation:
        """One prompt, awaitable from any event loop (``index`` picks the seed stream as in
        a batch, see :func:`~agentgym.policies.base.request_seed`)."""
        coro = self._generate_one(item, sampling, index)
        return await self._on_own_loop(coro)

    async def _on_own_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop.loop))

    async def _generate_all(
        self, inputs: list[PolicyInput], sampling: SamplingParams
    ) -> list[Generation]:
        return await _gather_or_cancel(
            [self._generate_one(item, sampling, i) for i, item in enumerate(inputs)]
        )

    async def _generate_one(
        self, item: PolicyInput, sampling: SamplingParams, index: int
    ) -> Generation:
        try:
            ids = prompt_ids_of(self.tokenizer, item)
        except Exception as exc:
            return _error(f"could not render the messages: {exc}")
        problem = prompt_problem(ids, self.max_model_len, self.vocab_size)
        if problem:
            return _error(problem, ids)
        body = {
            "model": self.model_name,
            "token_ids": ids,
            "sampling_params": self._sampling_params(
                sampling, request_seed(sampling, item, index), len(ids)
            ),
            "output_mode": "text",
        }
        try:
            data = await self._request("/inference/v1/generate", body)
            return _to_generation(ids, data)
        except (_Rejected, _Retryable) as exc:
            return _error(str(exc), ids)
        except Exception as exc:  # nothing one prompt does may sink the batch
            log.warning("vllm_server policy: unexpected failure: %r", exc)
            return _error(f"{type(exc).__name__}: {exc}", ids)

    def _sampling_params(
        self, sampling: SamplingParams, seed: int | None, prompt_len: int
    ) -> dict[str, Any]:
        return {
            "n": 1,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k if sampling.top_k > 0 else 0,
            "max_tokens": min(sampling.max_tokens, self.max_model_len - prompt_len),
            "stop": list(sampling.stop) or None,
            "stop_token_ids": sorted(self.eos_ids),
            "seed": seed,
            "logprobs": 0,
            "skip_special_tokens": True,
            "detokenize": True,
        }

    def _pick(self) -> ServerSlot:
        """The server with the fewest requests in flight (ties: fewest served so far) among
        those not resting after a failure (all of them when every one is)."""
        with self._lock:
            now = time.monotonic()
            ready = [s for s in self._slots if s.resting_until <= now] or self._slots
            slot = min(ready, key=lambda s: (s.in_flight, s.served))
            slot.in_flight += 1
            return slot

    async def _request(self, path: str, body: dict[str, Any]) -> Any:
        content = json.dumps(body, ensure_ascii=True).encode()
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
            async with self._slots_free:
                slot = self._pick()
                try:
                    status, raw = await self._send(slot, "POST", path, content, self.timeout)
                except _Retryable as exc:
                    slot.failed(self.backoff)
                    last = f"{slot.url}: {exc}"
                    continue
                finally:
                    slot.in_flight -= 1
            if status >= 500 or status in _RETRY_STATUS:
                slot.failed(self.backoff)
                last = f"{slot.url}{path} answered HTTP {status}: {_snippet(raw)}"
                continue
            slot.answered()
            if status >= 400:
                raise _Rejected(f"{slot.url}{path} rejected the request (HTTP {status}): "
                                f"{_snippet(raw)}")  # fmt: skip
            try:
                data = _decode(raw)
                _first_choice(data)
                return data
            except Exception as exc:
                last = f"{slot.url}{path}: a malformed answer: {exc}"
        raise _Retryable(f"{path} failed after {self.max_retries + 1} attempts; last: {last}")

    async def _send(
        self, slot: ServerSlot, method: str, path: str, content: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        try:
            response = await asyncio.wait_for(
                self._client.request(method, slot.url + path, content=content, timeout=timeout),
                timeout,
            )
        except asyncio.TimeoutError:
            raise _Retryable(f"no complete answer within {timeout:g} s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc or 'connection failed'}") from None
        return response.status_code, response.content

    # ------------------------------------------------------------------ weights

    def load_weights(self, weights: Mapping[str, Any]) -> None:
        """Push a full state dict (Hugging Face names, e.g. the trainer's
        ``model.state_dict()``) into every server; see the module docstring.

        Raises ``ValueError`` for names the model does not have or a partial state dict
        (vLLM reloads whole layers), and :class:`WeightSyncError` when a server fails the
        push (every server is asked to resume either way).
        """
        self._check_names(weights)
        started = time.perf_counter()
        run = self._loop.run
        # Numbered on from the newest version any server holds (another policy, or an
        # earlier run, may have pushed to the same servers): versions only ever grow.
        version = max(self.weight_version, *run(self._server_versions())) + 1
        try:
            run(self._for_all(f"/pause?mode={self.pause_mode}&clear_cache=true", None))
            run(self._for_all("/start_weight_update", None))
            dtype = None
            if self.wire_dtype is not None:
                import torch

                dtype = getattr(torch, self.wire_dtype)
            for chunk in encode_chunks(weights, max_bytes=self.chunk_bytes, dtype=dtype):
                run(self._send_chunk(chunk))
            run(self._for_all("/finish_weight_update", {"weight_version": str(version)}))
        except BaseException:
            with contextlib.suppress(Exception):
                run(self._for_all("/resume", None))
            raise
        run(self._for_all("/resume", None))
        self.weight_version = version
        self.last_sync_seconds = time.perf_counter() - started

    def _check_names(self, weights: Mapping[str, Any]) -> None:
        if self._layout is None:
            from agentgym.policies.vllm import _state_dict_layout

            self._layout = _state_dict_layout(self.model_path)
        names, tied = self._layout
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(
                f"load_weights got {len(unknown)} names the model does not have, e.g. "
                f"{unknown[:3]}; expected names like {sorted(names)[:3]}"
            )
        covered = set(weights)
        for group in tied:
            if covered & set(group):
                covered |= set(group)
        missing = sorted(set(names) - covered)
        if missing:
            raise ValueError(
                f"load_weights needs the full state dict (vLLM reloads whole layers); "
                f"{len(missing)} names are missing, e.g. {missing[:3]}"
            )

    async def _send_chunk(self, chunk: Chunk) -> None:
        """One ``/update_weights`` to every server: the chunk's URL on this process's
        payload server (``pull``), or the bytes themselves (``inline``)."""
        if self.transfer == "inline":
            await self._post_all("/update_weights", [chunk.inline_body()] * len(self._slots))
            return
        if self._payloads is None:
            bind = self.payload_bind
            if bind is None:
                local = all(_is_loopback(slot.url) for slot in self._slots)
                bind = "127.0.0.1" if local else "0.0.0.0"
            self._payloads = PayloadServer(bind)
        key = self._payloads.publish(chunk)
        try:
            bodies = [
                chunk.pull_body(self._payloads.url(key, _local_address(slot.url)))
                for slot in self._slots
            ]
            await self._post_all("/update_weights", bodies)
        finally:
            self._payloads.withdraw(key)

    async def _server_versions(self) -> list[int]:
        """Each server's weight version (``GET /weight_info``); 0 for one never pushed to
        (vLLM calls it ``default``) or not numbered by agentgym."""
        versions = []
        for slot in self._slots:
            try:
                status, raw = await self._send(slot, "GET", "/weight_info", None, self.timeout)
                versions.append(int(_decode(raw)["weight_version"]) if status == 200 else 0)
            except Exception:  # a server that cannot say counts as never pushed to
                versions.append(0)
        return versions

    async def _for_all(self, path: str, body: dict[str, Any] | None) -> None:
        """``POST path`` with ``body`` (JSON) to every server at once."""
        content = None if body is None else json.dumps(body).encode()
        await self._post_all(path, [content] * len(self._slots))

    async def _post_all(self, path: str, contents: list[bytes | None]) -> None:
        """``POST path`` to every server at once (``contents[i]`` to server ``i``);
        :class:`WeightSyncError` naming each server that failed."""
        results = await asyncio.gather(
            *(
                self._send(slot, "POST", path, content, self.sync_timeout)
                for slot, content in zip(self._slots, contents, strict=True)
            ),
            return_exceptions=True,
        )
        problems = []
        for slot, result in zip(self._slots, results, strict=True):
            if isinstance(result, BaseException):
                problems.append(f"{slot.url}: {result}")
                continue
            status, raw = result
            if status == 404:
                problems.append(
                    f"{slot.url} has no {path.split('?')[0]} endpoint: start the server "
                    "with `python -m agentgym.policies.vllm_launch` (VLLM_SERVER_DEV_MODE=1 "
                    "and the agentgym_http weight transfer)"
                )
            elif status >= 400:
                problems.append(f"{slot.url}{path} answered HTTP {status}: {_snippet(raw)}")
        if problems:
            raise WeightSyncError("; ".join(problems))

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the connections, stop the loop thread and the servers this policy started."""
        if self._payloads is not None:
            self._payloads.close()
            self._payloads = None
        client = getattr(self, "_client", None)
        if client is not None and not self._loop.loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.run(client.aclose())
        self._finalizer()


def _shutdown(loop: _LoopThread, slots: list[ServerSlot]) -> None:
    for slot in slots:
        if slot.process is not None:
            slot.process.close()
    loop.close()


def _server_list(servers: int | Sequence[str]) -> tuple[list[str], int]:
    """``(urls, 0)`` for given servers, ``([], count)`` for servers to start."""
    if isinstance(servers, bool) or not isinstance(servers, (int, list, tuple)):
        raise ValueError(
            f"servers must be a number of servers to start or a list of base URLs, got {servers!r}"
        )
    if isinstance(servers, int):
        if servers < 1:
            raise ValueError(f"servers must be >= 1, got {servers}")
        return [], servers
    urls = [str(u).rstrip("/").removesuffix("/v1") for u in servers]
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if not urls or bad:
        raise ValueError(
            f"servers must list base URLs like 'http://host:8000', got {list(servers)!r}"
        )
    return urls, 0


def _first_choice(data: Any) -> dict[str, Any]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError(f"no choices in the answer: {json.dumps(data)[:200]}")
    return choices[0]


def _to_generation(prompt_ids: list[int], data: Any) -> Generation:
    choice = _first_choice(data)
    reason = choice.get("finish_reason")
    if reason not in ("stop", "length"):
        return _error(f"vLLM finished the request with {reason!r}", prompt_ids)
    content = (choice.get("logprobs") or {}).get("content") or []
    return Generation(
        text=choice.get("text") or "",
        token_ids=[int(t) for t in choice.get("token_ids") or []],
        logprobs=[float(entry["logprob"]) for entry in content],
        prompt_ids=list(prompt_ids),
        finish_reason=reason,
        weight_versions=[
            (str(span["version"]), int(span["start"]), int(span["end"]))
            for span in choice.get("weight_versions") or []
        ],
    )


def _local_address(url: str) -> str:
    """This machine's address as the server at ``url`` reaches it (the source address of
    a connection to it), for the URLs of ``pull`` payloads; IPv6 in brackets."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=10) as sock:
        host = str(sock.getsockname()[0])
    return f"[{host}]" if ":" in host else host


def _is_loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
