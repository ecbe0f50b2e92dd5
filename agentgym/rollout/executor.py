"""Environment pools: where environments run while the rollout engine plays them.

One interface, :class:`EnvPool`, with four built-in backends (``env.rollout.executor``):

``inline``     environments run in the engine's thread; fastest for microsecond envs, but a
               hanging env cannot be interrupted.
``threads``    a thread pool; a call that exceeds ``timeout`` ends that episode with an
               error and the slot gets a fresh environment (the stuck thread is abandoned).
``processes``  worker processes, each holding a share of the slots; a call that exceeds
               ``timeout`` kills the worker, which is restarted with fresh environments.
               For slow, CPU-bound engines (TextWorld/ALFWorld) and for isolation.
``ray``        Ray actors, each holding several slots, spread over a Ray cluster (a local
               one when none is running); see :mod:`agentgym.rollout.ray_pool`. Needs the
               ``distributed`` extra; Ray is imported only when this pool is built.

Other backends register with :func:`register_pool`. Every call returns an
:class:`EnvOutcome` and never raises for an environment's failure: an env that raises or
hangs yields ``EnvOutcome(error=...)`` and the run goes on.

Two ways to drive a pool: :meth:`EnvPool.run` takes a batch of calls and returns when all
are done (the lock-step engine), and :meth:`EnvPool.arun` is a coroutine for one call, so
that each episode of the asynchronous engine (:mod:`agentgym.rollout.async_engine`) steps
its env as soon as its action is known, while the event loop goes on. ``run`` may be called
from several threads at once for different slots: every built-in pool runs calls to slots
of different workers (threads, processes, Ray actors) side by side.

Calls are ``reset`` and ``step`` (an episode), and ``snapshot`` and ``restore`` (rollouts
that branch, :mod:`agentgym.rollout.strategies`): ``snapshot`` answers with the slot's
:class:`~agentgym.snapshots.EnvSnapshot` in ``EnvOutcome.snapshot``, and ``restore`` puts a
snapshot into a slot, which then continues that episode (it starts cleanly, like a reset,
on a slot whose worker was restarted). Snapshots are picklable, so they travel to worker
processes and Ray actors inside the calls and outcomes like everything else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from agentgym.errors import NoExpertError
from agentgym.registries import Registry

HINTS = ("expert_action", "random_action")
#: Added to ``expert_action`` where the env's expert plans in steps
#: (:meth:`agentgym.env.TextEnv.expert_subgoal`): the plan step, and ``"1"`` when the
#: expert's action is its first (``""`` otherwise). Plan-execute parsers render them.
SUBGOAL_HINT, SUBGOAL_STARTS_HINT = "expert_subgoal", "expert_subgoal_starts"


@dataclass(frozen=True)
class EnvSpec:
    """How to build one environment: a registry id and constructor arguments (picklable)."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_steps: int | None = None

    def make(self):
        from agentgym.registry import make

        return make(self.env_id, max_steps=self.max_steps, **self.kwargs)


#: The kinds of :class:`EnvCall`; ``reset`` and ``restore`` start an episode in a slot.
CALL_KINDS = ("reset", "step", "snapshot", "restore")
STARTS_EPISODE = ("reset", "restore")


@dataclass(frozen=True)
class EnvCall:
    """One request to a slot: ``reset`` (with ``seed``/``options``), ``step`` (``action``),
    ``snapshot`` (save the slot's episode) or ``restore`` (``snapshot``: continue a saved
    episode in this slot).

    ``hints`` names what to compute after the call for hint policies (``expert_action``,
    ``random_action``; ``expert_action`` brings the expert's subgoal along where it has one).
    """

    slot: int
    kind: str  # one of CALL_KINDS
    action: str | None = None
    seed: int | None = None
    options: dict[str, Any] | None = None
    hints: tuple[str, ...] = ()
    snapshot: Any = None  # an EnvSnapshot, for "restore"


@dataclass
class EnvOutcome:
    """The result of an :class:`EnvCall` (``error`` set when the env failed or hung)."""

    observation: str = ""
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    snapshot: Any = None  # the EnvSnapshot a "snapshot" call took


def run_call(env, call: EnvCall, rng: np.random.Generator) -> EnvOutcome:
    """Apply one call to an environment; exceptions become ``EnvOutcome.error``."""
    start = time.perf_counter()
    try:
        if call.kind == "reset":
            obs, info = env.reset(seed=call.seed, options=call.options)
            out = EnvOutcome(obs, info=info)
        elif call.kind == "step":
            obs, reward, terminated, truncated, info = env.step(call.action)
            out = EnvOutcome(obs, float(reward), bool(terminated), bool(truncated), info)
        elif call.kind == "snapshot":
            from agentgym.snapshots import snapshot

            out = EnvOutcome(snapshot=snapshot(env))
            out.seconds = time.perf_counter() - start
            return out
        elif call.kind == "restore":
            from agentgym.snapshots import restore

            restore(env, call.snapshot)
            out = EnvOutcome()
        else:
            raise ValueError(f"unknown call kind {call.kind!r}; expected one of {CALL_KINDS}")
        if not (out.terminated or out.truncated):
            base = env.unwrapped
            for hint in call.hints:
                try:
                    if hint == "expert_action":
                        out.hints[hint] = base.expert_action()
                        plan_step = getattr(base, "expert_subgoal", lambda: None)()
                        if plan_step is not None:
                            out.hints[SUBGOAL_HINT] = plan_step[0]
                            out.hints[SUBGOAL_STARTS_HINT] = "1" if plan_step[1] else ""
                    else:
                        out.hints[hint] = base.random_action(rng)
                except (NoExpertError, NotImplementedError) as exc:
                    out.hints[hint] = ""
                    out.info.setdefault("hint_errors", {})[hint] = str(exc)
    except Exception as exc:
        tb = traceback.format_exc(limit=6)
        out = EnvOutcome(error=f"{type(exc).__name__}: {exc}\n{tb}")
    out.seconds = time.perf_counter() - start
    return out


class EnvSlots:
    """The environments of some slots, each built on first use.

    An env whose call failed is not trusted again: it is closed and the slot gets a fresh
    one at its next call (except after a failed ``snapshot``, which leaves the episode as
    it was). Random-action hints draw from one generator per slot, seeded
    ``[seed, slot]``, so runs do not depend on how slots are spread over workers. Every
    pool keeps its envs in one of these, wherever it runs them (in-process, in a worker
    process, in a Ray actor).
    """

    def __init__(self, spec: EnvSpec, slots: Iterable[int], seed: int) -> None:
        self.spec = spec
        self._envs: dict[int, Any] = {}
        self._rngs = {s: np.random.default_rng([seed, s]) for s in slots}

    def call(self, call: EnvCall) -> EnvOutcome:
        env = self._envs.get(call.slot)
        if env is None:
            try:
                env = self._envs[call.slot] = self.spec.make()
            except Exception as exc:
                return EnvOutcome(error=f"could not build the env: {type(exc).__name__}: {exc}")
        result = run_call(env, call, self._rngs[call.slot])
        if result.error and call.kind != "snapshot":  # saving a state changes nothing
            self.drop(call.slot)
        return result

    def drop(self, slot: int, close: bool = True) -> None:
        """Forget the env of ``slot`` (closing it unless a stuck thread may still use it)."""
        env = self._envs.pop(slot, None)
        if env is not None and close:
            with contextlib.suppress(Exception):
                env.close()

    def close(self) -> None:
        for slot in list(self._envs):
            self.drop(slot)


class EnvPool:
    """A fixed number of environment slots, driven in batches.

    Args:
        spec: how to build each environment.
        size: number of slots (concurrent episodes).
        timeout: seconds a single reset/step may take before it is abandoned
            (``None`` = no limit; ignored by ``inline``).
        seed: seeds the generator of random-action hints.
    """

    def __init__(self, spec: EnvSpec, size: int, timeout: float | None = 60.0, seed: int = 0):
        self.spec, self.size, self.timeout, self.seed = spec, size, timeout, seed
        self._callers: cf.ThreadPoolExecutor | None = None
        self._callers_lock = threading.Lock()

    def run(self, calls: Sequence[EnvCall]) -> list[EnvOutcome]:
        """Run calls (at most one per slot) and return their outcomes, in order."""
        raise NotImplementedError

    async def arun(self, call: EnvCall) -> EnvOutcome:
        """Run one call without blocking the event loop; calls to other slots may run at
        the same time (at most one call per slot at once, as for :meth:`run`).

        The default runs ``run([call])`` in one of ``size`` threads the pool keeps for its
        async callers, so a slow env holds only its own episode.
        """
        loop = asyncio.get_running_loop()
        (out,) = await loop.run_in_executor(self._caller_threads(), self.run, [call])
        return out

    def _caller_threads(self) -> cf.ThreadPoolExecutor:
        with self._callers_lock:
            if self._callers is None:
                self._callers = cf.ThreadPoolExecutor(
                    max_workers=max(1, self.size), thread_name_prefix="agentgym-env-call"
                )
            return self._callers

    def _close_callers(self) -> None:
        callers, self._callers = self._callers, None
        if callers is not None:
            callers.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._close_callers()

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlinePool(EnvPool):
    """Environments in the caller's thread."""

    def __init__(self, spec: EnvSpec, size: int, timeout: float | None = 60.0, seed: int = 0):
        super().__init__(spec, size, timeout, seed)
        self._slots = EnvSlots(spec, range(size), seed)

    def run(self, calls: Sequence[EnvCall]) -> list[EnvOutcome]:
        return [self._slots.call(call) for call in calls]

    async def arun(self, call: EnvCall) -> EnvOutcome:
        """One call in the pool's one env thread: off the event loop, and, as in
        :meth:`run`, one env call at a time (envs need not tolerate each other's threads)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._env_thread(), self._slots.call, call)

    def _env_thread(self) -> cf.ThreadPoolExecutor:
        with self._callers_lock:
            if self._callers is None:
                self._callers = cf.ThreadPoolExecutor(1, thread_name_prefix="agentgym-inline-env")
            return self._callers

    def close(self) -> None:
        self._close_callers()
        self._slots.close()


class ThreadPool(InlinePool):
    """Environments called from a thread pool, with a per-call timeout."""

    def __init__(self, spec: EnvSpec, size: int, timeout: float | None = 60.0, seed: int = 0):
        super().__init__(spec, size, timeout, seed)
        self._executor = cf.ThreadPoolExecutor(max_workers=size, thread_name_prefix="agentgym-env")

    def _call(self, call: EnvCall) -> EnvOutcome:
        return super().run([call])[0]

    def run(self, calls: Sequence[EnvCall]) -> list[EnvOutcome]:
        futures = [self._executor.submit(self._call, c) for c in calls]
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        out = []
        for call, fut in zip(calls, futures, strict=True):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                out.append(fut.result(timeout=left))
            except cf.TimeoutError:
                # The thread cannot be killed: abandon it and give the slot a fresh env.
                self._slots.drop(call.slot, close=False)
                out.append(EnvOutcome(error=f"the env did not answer within {self.timeout} s"))
        return out

    async def arun(self, call: EnvCall) -> EnvOutcome:
        """One call in the pool's own threads, awaited with the per-call timeout."""
        future = asyncio.wrap_future(self._executor.submit(self._call, call))
        try:
            return await asyncio.wait_for(future, self.timeout)
        except asyncio.TimeoutError:
            self._slots.drop(call.slot, close=False)  # as in run: abandon the thread
            return EnvOutcome(error=f"the env did not answer within {self.timeout} s")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        super().close()


_LOST = "lost: its worker process was restarted because another env in it failed"
_READY, _FAILED = "ready", "failed"
#: Seconds a new worker process may take to import and build its environments (on a
#: loaded machine this alone can exceed a short per-call timeout).
STARTUP_TIMEOUT = 300.0


def _worker(conn: Connection, spec: EnvSpec, slots: list[int], seed: int) -> None:
    """Worker loop: receive a list of calls, send back ``(position, outcome)`` per call as
    soon as it finishes (so a later hang does not lose earlier results)."""
    # Ctrl-C is the parent's to handle; workers are stopped by the parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        envs = EnvSlots(spec, slots, seed)
    except Exception as exc:  # the parent reports it as each call's error
        conn.send((_FAILED, f"{type(exc).__name__}: {exc}"))
        return
    conn.send((_READY, None))  # per-call timeouts start after imports and env set-up
    while True:
        try:
            calls = conn.recv()
        except (EOFError, ConnectionResetError, KeyboardInterrupt):  # the parent is gone
            return
        if calls is None:
            envs.close()
            return
        for position, call in enumerate(calls):
            conn.send((position, envs.call(call)))


#: ``processes`` pools start at most this many workers per CPU core unless told otherwise:
#: a training run's pools have ``env.rollout.max_concurrent`` slots (256 by default), and
#: one ALFWorld worker per slot (about 70 MB each, two engines alive) put 512 processes on
#: a 2-core, 24 GB machine, which ran out of memory.
WORKERS_PER_CORE = 4


class ProcessPool(EnvPool):
    """Environments in worker processes, slots spread over workers round-robin.

    ``num_workers`` defaults to one process per slot, up to :data:`WORKERS_PER_CORE` per
    CPU core; then slots share workers. A hanging environment is killed with its process,
    so with one slot per worker it takes no other episode with it; the episodes sharing a
    process with a hung env are ended as errors too (their env state is gone).
    """

    def __init__(
        self,
        spec: EnvSpec,
        size: int,
        timeout: float | None = 60.0,
        seed: int = 0,
        num_workers: int | None = None,
    ):
        super().__init__(spec, size, timeout, seed)
        default = min(size, WORKERS_PER_CORE * (os.cpu_count() or 1))
        workers = min(num_workers or default, size)
        self._ctx = mp.get_context("spawn")
        self._worker_slots = [list(range(w, size, workers)) for w in range(workers)]
        self._owner = {s: w for w, slots in enumerate(self._worker_slots) for s in slots}
        self._procs: list[Any] = [None] * workers
        self._conns: list[Any] = [None] * workers
        self._started: list[bool] = [False] * workers  # sent _READY (or _FAILED) yet
        self._start_error: list[str | None] = [None] * workers
        # One lock per worker: calls to different workers (from the threads of the async
        # engine) run side by side; a slot belongs to one worker, so its entry in _lost is
        # only touched under that worker's lock.
        self._locks = [threading.Lock() for _ in range(workers)]
        self._lost: set[int] = set()
        for w in range(workers):
            self._start(w)

    def _start(self, w: int) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker,
            args=(child, self.spec, self._worker_slots[w], self.seed + 7919 * w),
            daemon=True,
        )
        proc.start()
        child.close()
        self._procs[w], self._conns[w] = proc, parent
        self._started[w], self._start_error[w] = False, None

    def _await_start(self, w: int) -> str | None:
        """Wait (up to :data:`STARTUP_TIMEOUT`) until worker ``w`` has built its envs;
        return why it could not, or ``None``."""
        if self._started[w]:
            return self._start_error[w]
        conn = self._conns[w]
        try:
            if not conn.poll(max(STARTUP_TIMEOUT, self.timeout or 0.0)):
                raise TimeoutError
            kind, detail = conn.recv()
        except (EOFError, OSError, TimeoutError) as exc:
            kind = _FAILED
            detail = (
                f"it did not start within {STARTUP_TIMEOUT:g} s"
                if isinstance(exc, TimeoutError)
                else "the process died while starting"
            )
        self._started[w] = True
        self._start_error[w] = None if kind == _READY else str(detail)
        return self._start_error[w]

    def _restart(self, w: int) -> None:
        """Replace worker ``w``; the episodes of all its slots are lost (their next step
        answers with an error; their next reset starts cleanly)."""
        proc = self._procs[w]
        if proc is not None and proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
        self._lost.update(self._worker_slots[w])
        self._start(w)

    def run(self, calls: Sequence[EnvCall]) -> list[EnvOutcome]:
        workers = sorted({self._owner[call.slot] for call in calls})
        with contextlib.ExitStack() as held:
            for w in workers:  # in order, so two callers never wait on each other
                held.enter_context(self._locks[w])
            for w in workers:
                if not self._procs[w].is_alive():  # died since its last batch: envs gone
                    self._restart(w)
            out: list[EnvOutcome | None] = [None] * len(calls)
            by_worker: dict[int, list[int]] = {}
            for i, call in enumerate(calls):
                if call.slot in self._lost:
                    if call.kind not in STARTS_EPISODE:
                        out[i] = EnvOutcome(error=_LOST)
                        continue
                    self._lost.discard(call.slot)  # a new episode starts cleanly
                by_worker.setdefault(self._owner[call.slot], []).append(i)
            sent: dict[int, list[int]] = {}
            for w, idx in by_worker.items():
                problem = self._await_start(w)
                if problem is not None:  # its envs cannot be built: every call says why
                    for i in idx:
                        out[i] = EnvOutcome(error=f"the env worker process failed: {problem}")
                    self._procs[w].kill()
                    self._procs[w].join(timeout=5)
                    self._start(w)  # the next batch tries again
                    continue
                try:
                    self._conns[w].send([calls[i] for i in idx])
                    sent[w] = idx
                except (BrokenPipeError, OSError):
                    self._fail_rest(w, idx, 0, out, hung=False)
            deadline = None if self.timeout is None else time.monotonic() + self.timeout
            for w, idx in sent.items():
                conn, received = self._conns[w], 0
                while received < len(idx):
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    try:
                        if not conn.poll(left):
                            raise TimeoutError
                        position, result = conn.recv()
                    except (EOFError, OSError, TimeoutError) as exc:
                        self._fail_rest(w, idx, received, out, hung=isinstance(exc, TimeoutError))
                        break
                    out[idx[position]] = result
                    received += 1
            return out  # type: ignore[return-value]

    def _fail_rest(self, w: int, idx: list[int], received: int, out: list, hung: bool) -> None:
        """Worker ``w`` hung or died during call ``received`` of its batch: restart it."""
        self._restart(w)
        first = (
            f"the env did not answer within {self.timeout} s"
            if hung
            else "the env worker process died"
        )
        for k in range(received, len(idx)):
            out[idx[k]] = EnvOutcome(error=first if k == received else _LOST)

    def close(self) -> None:
        self._close_callers()
        for w, conn in enumerate(self._conns):
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(None)
            proc = self._procs[w]
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()


# A factory, or a lazy "module:attr" string imported on first use (so that importing
# agentgym never imports an optional backend such as Ray).
POOLS: Registry[Callable[..., EnvPool]] = Registry("env executor")
POOLS.register("inline", InlinePool)
POOLS.register("threads", ThreadPool)
POOLS.register("processes", ProcessPool)
POOLS.register("ray", "agentgym.rollout.ray_pool:RayPool")


def register_pool(name: str, factory: Callable[..., EnvPool] | str) -> None:
    """Register an env pool backend: ``factory(spec, size, timeout=..., seed=..., **kw)``,
    or its ``"module:attr"`` path, imported when the pool is first built."""
    POOLS.register(name, factory)


def pool_factory(name: str) -> Callable[..., EnvPool]:
    """The factory registered as ``name`` (a lazy ``"module:attr"`` entry is imported)."""
    return POOLS.get(name)


def make_pool(
    name: str, spec: EnvSpec, size: int, timeout: float | None = 60.0, seed: int = 0, **kw: Any
) -> EnvPool:
    """Build an env pool by name (``inline``, ``threads``, ``processes``, ``ray``, or
    registered); ``kw`` are the backend's own options (e.g. ``num_workers``,
    ``envs_per_actor``)."""
    return pool_factory(name)(spec, size, timeout=timeout, seed=seed, **kw)
