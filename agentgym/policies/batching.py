"""A batching queue: one-prompt requests from many episodes, batched into ``generate`` calls.

Backends whose engine takes a batch and returns when all of it is done (transformers
``generate``; any policy with only a synchronous :meth:`~agentgym.policies.base.Policy.generate`)
serve the asynchronous rollout engine (:mod:`agentgym.rollout.async_engine`) through this
queue: each episode submits its own prompt and awaits its own :class:`Generation`; one worker
thread takes whatever requests are waiting, batches them into one ``generate`` call, and
hands each result back to the request that asked for it.

When a request arrives at an idle worker, the worker waits for more while they keep coming:
until no new request arrived for ``gap`` seconds, the oldest request has waited
``max_wait`` seconds, or ``max_batch`` requests are waiting. Requests that arrive while a
``generate`` call runs wait for it and form the next batch at once (their ``max_wait`` has
passed). Requests with different :class:`SamplingParams` never share a call.

The worker thread starts with the first request and ends after ``idle_exit`` seconds
without one (and at :meth:`BatchingQueue.close`), so a policy that is never used
asynchronously never starts a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agentgym.policies.base import Generation, PolicyInput, SamplingParams

log = logging.getLogger(__name__)

GenerateFn = Callable[[Sequence[PolicyInput], SamplingParams], list[Generation]]


@dataclass
class _Request:
    item: PolicyInput
    sampling: SamplingParams
    future: cf.Future
    arrived: float


class BatchingQueue:
    """Batch one-prompt requests into calls of a synchronous ``generate``.

    Args:
        generate: the batch function (``policy.generate``); called from one thread only,
            one call at a time.
        max_batch: the most prompts per call.
        gap: seconds without a new request after which a waiting batch starts.
        max_wait: the longest a request waits for others before its batch starts.
        idle_exit: seconds the worker thread waits for work before it ends.
        name: the worker thread's name.

    Attributes:
        busy_seconds: wall seconds spent inside ``generate`` so far.
        calls: ``generate`` calls so far; ``prompts``: prompts they took.
    """

    def __init__(
        self,
        generate: GenerateFn,
        *,
        max_batch: int = 64,
        gap: float = 0.01,
        max_wait: float = 0.1,
        idle_exit: float = 2.0,
        name: str = "agentgym-batching",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if gap < 0 or max_wait < 0:
            raise ValueError(f"gap and max_wait must be >= 0, got {gap} and {max_wait}")
        self._generate = generate
        self.max_batch, self.gap, self.max_wait = max_batch, gap, max_wait
        self.idle_exit, self.name = idle_exit, name
        self._pending: list[_Request] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.busy_seconds = 0.0
        self.calls = 0
        self.prompts = 0

    def submit(self, item: PolicyInput, sampling: SamplingParams) -> cf.Future:
        """Queue one prompt; the future resolves to its :class:`Generation` (never to an
        exception: a failed call gives ``finish_reason="error"``)."""
        future: cf.Future = cf.Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the batching queue is closed")
            self._pending.append(_Request(item, sampling, future, time.monotonic()))
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._worker.start()
            self._cond.notify()
        return future

    async def agenerate(self, item: PolicyInput, sampling: SamplingParams) -> Generation:
        """:meth:`submit`, awaited from any event loop."""
        return await asyncio.wrap_future(self.submit(item, sampling))

    def close(self) -> None:
        """Finish the requests already queued, then stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=60)

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    self._worker = None
                    return
            self._run(batch)

    def _next_batch(self) -> list[_Request] | None:
        """Wait for requests (lock held) and take the next batch; ``None``: stop."""
        idle_since = time.monotonic()
        while not self._pending:
            if self._closed:
                return None
            left = self.idle_exit - (time.monotonic() - idle_since)
            if left <= 0:
                return None
            self._cond.wait(left)
        while not self._closed and len(self._pending) < self.max_batch:
            now = time.monotonic()
            newest, oldest = self._pending[-1].arrived, self._pending[0].arrived
            left = min(newest + self.gap, oldest + self.max_wait) - now
            if left <= 0:
                break
            self._cond.wait(left)
        sampling = self._pending[0].sampling
        batch = [r for r in self._pending if r.sampling == sampling][: self.max_batch]
        taken = {id(r) for r in batch}
        self._pending = [r for r in self._pending if id(r) not in taken]
        return batch

    def _run(self, batch: list[_Request]) -> None:
        start = time.perf_counter()
        try:
            results = self._generate([r.item for r in batch], batch[0].sampling)
            if len(results) != len(batch):
                raise RuntimeError(f"generate returned {len(results)} results for {len(batch)}")
        except Exception as exc:  # the contract says generate never raises; keep it so here
            log.warning("batched generate failed: %r", exc)
            message = f"generation failed: {type(exc).__name__}: {exc}"
            results = [
                Generation("", prompt_ids=list(r.item.prompt_ids or []), finish_reason="error",
                           error=message)
                for r in batch
            ]  # fmt: skip
        finally:
            self.busy_seconds += time.perf_counter() - start
            self.calls += 1
            self.prompts += len(batch)
        for request, result in zip(batch, results, strict=True):
            # cancelled, or the loop that awaited it is gone
            with contextlib.suppress(cf.InvalidStateError, RuntimeError):
                request.future.set_result(result)
