"""``openai:URL#MODEL``: any OpenAI-compatible server, over ``httpx``.

``URL`` is the API's ``/v1`` base (``http://127.0.0.1:8000/v1``), ``MODEL`` the served
model name. Which endpoint serves a prompt (``api``):

* ``messages`` go to ``/chat/completions`` (with ``tools`` when the input has them);
* ``prompt_ids`` go to ``/completions`` as a list of token ids, the token-in/token-out
  path vLLM serves: with ``"return_token_ids": true`` it answers with ``prompt_token_ids``
  and ``token_ids`` per choice;
* with ``api="completions"`` and a ``tokenizer``, messages are rendered locally with its
  chat template and sent as token ids (token in, token out for training on a remote vLLM).

Log-probs are requested (``logprobs``) and kept when the server returns them (vLLM returns
the raw log-probs of the sampled tokens, the convention of the local backends); token ids
when the server returns them (vLLM does, with ``return_token_ids``; a server that rejects
the field with a 400 is asked again without it, and from then on never). Tool calls a server
parsed out of a chat response are written back into the text as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, the format the ``tool_call``
action parser reads.

Robustness: every attempt has a total deadline of ``timeout`` seconds -- connecting,
sending, waiting and reading the whole answer together, so a server that trickles a byte
a second cannot hold a request past it. Connection errors, timeouts, 429 and 5xx answers
and malformed 200 answers (not JSON, nested too deeply, without the fields a completion
has) are retried up to ``max_retries`` times with exponential backoff (``backoff *
2**attempt`` seconds, capped at ``max_backoff``); other 4xx answers are not retried. A
prompt that still fails gets ``finish_reason="error"`` with the last error; the batch never
raises. Up to ``concurrency`` requests are in flight at once.

Requests run as tasks of one ``httpx.AsyncClient`` on an event loop in a thread the policy
owns; :meth:`OpenAIPolicy.generate` waits for them, and :meth:`OpenAIPolicy.agenerate`
(one prompt, for the asynchronous rollout engine) is awaitable from any event loop. Ctrl-C
(``KeyboardInterrupt``, or any exception) while it waits cancels every request in flight --
their connections are closed at once -- instead of waiting them out. Request bodies are
sent as ASCII JSON, so text a server returned with a lone surrogate (``"\\ud800"``) can be
sent back in the next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal, TypeVar

import httpx

from agentgym.policies.base import (
    Generation,
    Policy,
    PolicyInput,
    SamplingParams,
    request_seed,
)
from agentgym.policies.chat import error_generation, render_prompt_ids

log = logging.getLogger(__name__)

Api = Literal["chat", "completions", "auto"]
_APIS = ("chat", "completions", "auto")
_RETRY_STATUS = frozenset({408, 429})


T = TypeVar("T")


class RequestFailed(Exception):
    """One request's final failure (after retries); becomes a ``finish_reason="error"``."""


class _Malformed(Exception):
    """A 200 answer that cannot be used; retried like a 5xx."""


class _LoopThread:
    """An asyncio event loop running in a daemon thread, for the policy's requests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="openai-policy-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait; an exception while waiting (Ctrl-C)
        cancels it."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def await_on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this loop and await it from another event loop (or from this
        one); cancelling the awaiting task cancels ``coro``."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class OpenAIPolicy(Policy):
    """Generate with an OpenAI-compatible server.

    Args:
        spec: the policy's spec string (``openai:URL#MODEL``).
        target: ``URL#MODEL``; without ``#MODEL`` the server's first model is used.
        api: ``"auto"`` (messages to chat, token ids to completions), ``"chat"`` or
            ``"completions"``.
        timeout: seconds one attempt may take in all (connect, send, wait, read).
        max_retries: retries after the first attempt (0 = no retries).
        backoff: the first retry's delay in seconds; it doubles each retry.
        max_backoff: the longest delay between two attempts.
        concurrency: the most requests in flight at once.
        api_key: sent as ``Authorization: Bearer ...`` (also to local servers if given).
        tokenizer: a Hugging Face tokenizer (path or name) for :attr:`tokenizer`; with
            ``api="completions"`` messages are rendered with its chat template.
        return_token_ids: ask for token ids (vLLM's ``return_token_ids``).
        extra_body: more JSON fields for every request (e.g. ``{"top_k": 20}``,
            ``{"chat_template_kwargs": {...}}``).
    """

    def __init__(
        self,
        spec: str,
        target: str,
        *,
        api: Api = "auto",
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        concurrency: int = 32,
        api_key: str | None = None,
        tokenizer: str | None = None,
        return_token_ids: bool = True,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(spec)
        if api not in _APIS:
            raise ValueError(f"api={api!r} is not one of {list(_APIS)}")
        for name, value in (("timeout", timeout), ("backoff", backoff)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        base, _, model = target.partition("#")
        if not base.startswith(("http://", "https://")):
            raise ValueError(
                f"openai policy target {target!r} must be URL#MODEL with URL the /v1 base, "
                "e.g. 'openai:http://127.0.0.1:8000/v1#my-model'"
            )
        self.base_url = base.rstrip("/")
        self.api: Api = api
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.concurrency = concurrency
        self.return_token_ids = return_token_ids
        self.extra_body = dict(extra_body or {})
        self.timeout = float(timeout)
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._loop = _LoopThread()
        # The loop's thread stops with the policy, even if close() is never called.
        self._finalizer = weakref.finalize(self, self._loop.close)
        self._client: httpx.AsyncClient = self._loop.run(self._make_client(headers))
        self._slots = asyncio.Semaphore(concurrency)
        self._model = model or None
        self._model_lock = asyncio.Lock()
        if tokenizer:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)

    async def _make_client(self, headers: dict[str, str]) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            headers=headers,
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
        )

    @property
    def model_name(self) -> str:
        """The served model's name (asked from ``/models`` when the target names none)."""
        if self._model is not None:
            return self._model
        return self._loop.run(self._model_name())

    async def _model_name(self) -> str:
        async with self._model_lock:
            if self._model is None:
                data = await self._post_or_get("GET", "/models", None, _models_answer)
                self._model = data
            return self._model

    # ------------------------------------------------------------------ generation

    def generate(self, inputs: Sequence[PolicyInput], sampling: SamplingParams) -> list[Generation]:
        """Generate for every input, at most ``concurrency`` at once; Ctrl-C while waiting
        cancels the requests in flight."""
        if not inputs:
            return []
        return self._loop.run(self._generate_all(list(inputs), sampling))

    async def agenerate(
        self, item: PolicyInput, sampling: SamplingParams, index: int = 0
    ) -> Generation:
        """One prompt as one HTTP request, awaitable from any event loop: the requests of
        concurrent episodes are in flight together (at most ``concurrency``), and the
        server batches them continuously."""
        return await self._loop.await_on_loop(self._generate_one(item, sampling, index))

    async def _generate_all(
        self, inputs: list[PolicyInput], sampling: SamplingParams
    ) -> list[Generation]:
        return await _gather_or_cancel(
            [self._generate_one(item, sampling, i) for i, item in enumerate(inputs)]
        )

    async def _generate_one(
        self, item: PolicyInput, sampling: SamplingParams, index: int
    ) -> Generation:
        prompt_ids = list(item.prompt_ids or [])
        seed = request_seed(sampling, item, index)
        try:
            if self._uses_chat(item):
                return await self._chat(item, sampling, seed)
            if item.prompt_ids is None:
                messages = item.messages or []
                prompt_ids = render_prompt_ids(self.tokenizer, messages, tools=item.tools)
            return await self._completion(prompt_ids, sampling, seed)
        except RequestFailed as exc:
            return error_generation(str(exc), prompt_ids)
        except Exception as exc:  # nothing one prompt does may sink the batch
            log.warning("openai policy: unexpected failure: %r", exc)
            return error_generation(f"{type(exc).__name__}: {exc}", prompt_ids)

    def _uses_chat(self, item: PolicyInput) -> bool:
        if self.api == "chat":
            if item.messages is None:
                raise RequestFailed(
                    "api='chat' needs messages; this input has only prompt_ids (use "
                    "api='completions' or 'auto' to send token ids)"
                )
            return True
        if item.prompt_ids is not None:
            return False
        if self.api == "completions" and self.tokenizer is None:
            raise RequestFailed(
                "api='completions' got messages but the policy has no tokenizer to render "
                "them; pass tokenizer=PATH or use api='chat'"
            )
        return self.api == "auto"

    async def _sampling_fields(self, sampling: SamplingParams, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model or await self._model_name(),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "n": 1,
        }
        if sampling.top_k > 0:
            body["top_k"] = sampling.top_k  # a vLLM extension; OpenAI has no top_k
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if seed is not None:
            body["seed"] = seed  # as VLLMPolicy: one stream per prompt
        if self.return_token_ids:
            body["return_token_ids"] = True
        body.update(self.extra_body)
        return body

    async def _chat(
        self, item: PolicyInput, sampling: SamplingParams, seed: int | None
    ) -> Generation:
        body = await self._sampling_fields(sampling, seed)
        body.update(messages=item.messages, logprobs=True, top_logprobs=0)
        if item.tools:
            body["tools"] = item.tools
        return await self._request("/chat/completions", body, _chat_generation)

    async def _completion(
        self, prompt_ids: list[int], sampling: SamplingParams, seed: int | None
    ) -> Generation:
        body = await self._sampling_fields(sampling, seed)
        body.update(prompt=prompt_ids, logprobs=0)
        return await self._request(
            "/completions", body, lambda data: _completion_generation(data, prompt_ids)
        )

    # ------------------------------------------------------------------ HTTP

    async def _request(self, path: str, body: dict[str, Any], read: Callable[[Any], T]) -> T:
        try:
            return await self._post_or_get("POST", path, body, read)
        except _Rejected as exc:
            if body.get("return_token_ids") and "return_token_ids" in exc.detail:
                # A server without vLLM's extension: stop asking for token ids.
                log.info("openai policy: %s rejects return_token_ids; not asking again", path)
                self.return_token_ids = False
                body = {k: v for k, v in body.items() if k != "return_token_ids"}
                return await self._post_or_get("POST", path, body, read)
            raise RequestFailed(str(exc)) from None

    async def _post_or_get(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        read: Callable[[Any], T],
    ) -> T:
        """One request with retries: ``read`` of the JSON answer, or
        :class:`RequestFailed`. An answer ``read`` cannot use is retried like a 5xx."""
        url = self.base_url + path
        # ASCII JSON: a lone surrogate in a message is sent as an escape, never raises.
        content = None if body is None else json.dumps(body, ensure_ascii=True).encode()
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
            async with self._slots:
                try:
                    status, raw = await asyncio.wait_for(
                        self._send(method, url, content), self.timeout
                    )
                except asyncio.TimeoutError:
                    last = f"Timeout: no complete answer within {self.timeout:g} s"
                    continue
                except httpx.TransportError as exc:  # connect/read errors and timeouts
                    last = f"{type(exc).__name__}: {exc or 'connection failed'}"
                    continue
            if status >= 500 or status in _RETRY_STATUS:
                last = f"HTTP {status}: {_snippet(raw)}"
                continue
            if status >= 400:
                raise _Rejected(status, _snippet(raw), url)
            try:
                return read(_decode(raw))
            except _Malformed as exc:
                last = f"a malformed answer: {exc}"
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                last = f"a malformed answer ({type(exc).__name__}: {exc})"
        raise RequestFailed(f"{url} failed after {self.max_retries + 1} attempts; last: {last}")

    async def _send(self, method: str, url: str, content: bytes | None) -> tuple[int, bytes]:
        response = await self._client.request(method, url, content=content)
        return response.status_code, response.content

    def close(self) -> None:
        """Close the connections and stop the policy's event loop."""
        if self._loop.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self._loop.run(self._client.aclose())
        self._finalizer()


class _Rejected(RequestFailed):
    """A 4xx answer: the request itself is wrong, so it is not retried."""

    def __init__(self, status: int, detail: str, url: str) -> None:
        super().__init__(f"{url} rejected the request (HTTP {status}): {detail}")
        self.status, self.detail = status, detail


def _snippet(raw: bytes, limit: int = 500) -> str:
    text = raw[: limit * 4].decode("utf-8", "replace").strip().replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit or len(raw) > limit * 4 else "")


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _Malformed(f"invalid JSON ({exc}): {_snippet(raw, 200)}") from None
    except RecursionError:
        raise _Malformed("JSON nested too deeply to read") from None
    except UnicodeDecodeError as exc:
        raise _Malformed(f"not UTF-8 ({exc})") from None


def _first_choice(data: Any) -> dict[str, Any]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Malformed(f"no choices in the answer: {json.dumps(data)[:200]}")
    return choices[0]


def _chat_generation(data: Any) -> Generation:
    choice = _first_choice(data)
    message = choice.get("message") or {}
    text = (message.get("content") or "") + _tool_calls_text(message.get("tool_calls"))
    content = (choice.get("logprobs") or {}).get("content") or []
    return Generation(
        text=text,
        token_ids=[int(t) for t in choice.get("token_ids") or []],
        logprobs=[float(entry["logprob"]) for entry in content],
        prompt_ids=[int(t) for t in data.get("prompt_token_ids") or []],
        finish_reason=_finish_reason(choice.get("finish_reason")),
    )


def _completion_generation(data: Any, prompt_ids: list[int]) -> Generation:
    choice = _first_choice(data)
    logprobs = (choice.get("logprobs") or {}).get("token_logprobs") or []
    return Generation(
        text=choice.get("text") or "",
        token_ids=[int(t) for t in choice.get("token_ids") or []],
        logprobs=[float(x) for x in logprobs if x is not None],
        prompt_ids=[int(t) for t in choice.get("prompt_token_ids") or prompt_ids],
        finish_reason=_finish_reason(choice.get("finish_reason")),
    )


def _models_answer(data: Any) -> str:
    models = data.get("data") if isinstance(data, dict) else None
    ids = [m.get("id") for m in models or [] if isinstance(m, dict) and m.get("id")]
    if not ids:
        raise RequestFailed(f"the server lists no model: {json.dumps(data)[:200]}")
    return str(ids[0])


def _finish_reason(reason: str | None) -> Literal["stop", "length"]:
    """OpenAI's reasons in agentgym's terms: ``length`` stays, the rest end naturally
    (``stop``, ``tool_calls``, ``function_call``, ``content_filter``)."""
    return "length" if reason == "length" else "stop"


def _tool_calls_text(calls: list[dict[str, Any]] | None) -> str:
    """Server-parsed tool calls as the ``<tool_call>`` text the action parser reads."""
    parts = []
    for call in calls or []:
        function = call.get("function") or {}
        raw: Any = function.get("arguments", {})
        arguments = raw
        if isinstance(raw, str):
            # Else kept as a string: the action parser judges it (too deep, not JSON).
            with contextlib.suppress(json.JSONDecodeError, RecursionError):
                arguments = json.loads(raw)
        try:
            text = json.dumps(
                {"name": function.get("name"), "arguments": arguments}, ensure_ascii=False
            )
        except (RecursionError, TypeError, ValueError):
            kept = raw if isinstance(raw, str) else "(not JSON: nested too deeply)"
            text = json.dumps(
                {"name": function.get("name"), "arguments": kept}, ensure_ascii=False, default=str
            )
        parts.append(f"<tool_call>{text}</tool_call>")
    return "".join(parts)


async def _gather_or_cancel(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``coros`` together; if the batch is cancelled (Ctrl-C), no request outlives it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
