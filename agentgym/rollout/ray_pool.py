"""The ``ray`` env pool: environments in Ray actors spread over a cluster.

``env.rollout.executor: ray``. Each actor is one Python process that holds several env
slots (``envs_per_actor``) and runs the calls for them one after the other (or, with
``threads_per_actor``, several at once): a batch of calls costs one round trip per actor,
not one per call. Actors are placed with Ray's ``SPREAD`` strategy, so a pool of many
actors covers the nodes of the cluster.

Faults, as in the other pools, never raise: they end episodes.

- An env that raises ends only its episode (:func:`~agentgym.rollout.executor.run_call`);
  the slot gets a fresh env for its next episode and the actor lives on.
- A call that runs longer than ``timeout`` ends its episode with "the env did not answer
  within T s"; its actor is killed with ``ray.kill`` and replaced by a fresh one. The
  limit is per call: when an actor's batch outlasts it, the pool asks the actor (through
  a separate concurrency group) which of its calls has been running longest, and since
  when.
- An actor that dies (killed from outside, a crashed or out-of-memory process, a lost
  node) is replaced too; the calls of its batch end with "the env's Ray actor ... died".
- Either way every other episode whose env lived in that actor has lost its state: it
  ends with an error that starts with "lost:", in the same batch or, when it was not
  called in that batch, at its next step. A reset on such a slot starts cleanly.

Env calls run in a thread of the actor's process, not its main thread (the actor also
answers progress queries), as in the ``threads`` pool; with ``threads_per_actor`` several
at once.

Ray is imported when the pool is built, never when agentgym is imported. The pool joins
the Ray instance this process is already connected to; otherwise it calls ``ray.init``
with ``address`` (``"auto"``, ``"ray://head:10001"``, ...; the ``RAY_ADDRESS`` variable
works too) or starts a local instance. It never shuts Ray down: :meth:`RayPool.close`
releases its own actors only.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentgym.errors import AgentGymError, ConfigError
from agentgym.rollout.executor import (
    STARTS_EPISODE,
    EnvCall,
    EnvOutcome,
    EnvPool,
    EnvSlots,
    EnvSpec,
)

INSTALL_HINT = "pip install 'agentgym[distributed]' (or pip install 'ray>=2.30')"


class RayPoolError(AgentGymError, RuntimeError):
    """The ``ray`` pool cannot start: Ray is missing, or its actors cannot be placed."""


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`RayPoolError` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayPoolError(f"the 'ray' env executor needs Ray: {INSTALL_HINT}") from exc
    return ray


class EnvActor:
    """What runs inside one Ray actor: the envs of its slots, built on first use.

    With ``threads > 1`` the calls of a batch (one per slot at most) run concurrently in
    that many threads, for envs that mostly wait; otherwise one after the other.
    Random-action hints draw from one generator per slot seeded ``[seed, slot]``, as in
    the ``inline`` pool, so a run does not depend on how slots are spread over actors.
    """

    def __init__(self, spec: EnvSpec, slots: list[int], seed: int, threads: int = 1) -> None:
        self._slots = EnvSlots(spec, slots, seed)
        self._running: dict[int, float] = {}  # index in the batch -> start (monotonic)
        self._executor = (
            cf.ThreadPoolExecutor(threads, thread_name_prefix="agentgym-env")
            if threads > 1
            else None
        )

    def where(self) -> str:
        """``host:pid`` of this actor (also tells the pool that it has started)."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def run(self, calls: list[EnvCall]) -> list[EnvOutcome]:
        """Run the calls of a batch (in order, or concurrently with threads)."""
        if self._executor is None or len(calls) == 1:
            return [self._timed(i, call) for i, call in enumerate(calls)]
        return list(self._executor.map(self._timed, range(len(calls)), calls))

    def progress(self) -> tuple[int, float] | None:
        """(index in the batch, seconds running) of the oldest call running now, if any."""
        running = dict(self._running)
        if not running:
            return None
        oldest = min(running, key=running.__getitem__)
        return oldest, time.monotonic() - running[oldest]

    def _timed(self, i: int, call: EnvCall) -> EnvOutcome:
        self._running[i] = time.monotonic()
        try:
            return self._slots.call(call)
        finally:
            del self._running[i]

    def close(self) -> None:
        self._slots.close()


@dataclass
class _Batch:
    """The calls one actor is running (their positions in the pool's batch)."""

    actor: int
    positions: list[int]
    deadline: float | None  # when to ask the actor how its current call is doing


class RayPool(EnvPool):
    """Env slots in Ray actors, several slots per actor, spread over the cluster.

    Args:
        spec, size, timeout, seed: as for every :class:`EnvPool`; ``timeout`` is per call.
        envs_per_actor: slots per actor: the pool starts ``ceil(size / envs_per_actor)``
            actors and deals the slots to them round-robin. By default there is one
            actor per CPU of the cluster (and no more actors than slots): an actor costs
            a process (~150 MB, about a second to start), one actor per core keeps
            CPU-bound envs busy, and fewer actors mean fewer round trips for fast envs.
            An actor runs its envs one at a time unless ``threads_per_actor`` says
            otherwise (see docs/scale_out.md for measurements).
        num_actors: the number of actors instead (give one of the two, not both).
        threads_per_actor: run up to this many of an actor's env calls at once, in
            threads: for envs that mostly wait (on a server, a subprocess, a sandbox),
            so that a few processes serve many slots. The envs of one actor must then
            tolerate each other's threads, as in the ``threads`` pool.
        address: the Ray cluster to connect to when this process is not connected yet
            (``"auto"``, ``"ray://HEAD:10001"``); ``None`` uses ``RAY_ADDRESS`` or starts
            a local instance.
        init_options: more ``ray.init`` arguments for that first connection (e.g.
            ``num_cpus`` of a local instance, ``runtime_env``).
        actor_options: Ray actor options (``num_cpus``, ``resources``, ``runtime_env``,
            ``scheduling_strategy``...); the default placement is ``SPREAD``.
        start_timeout: seconds the actors may take to start (placement, process start,
            imports) before the pool gives up with :class:`RayPoolError`.
    """

    def __init__(
        self,
        spec: EnvSpec,
        size: int,
        timeout: float | None = 60.0,
        seed: int = 0,
        *,
        envs_per_actor: int | None = None,
        num_actors: int | None = None,
        threads_per_actor: int = 1,
        address: str | None = None,
        init_options: dict[str, Any] | None = None,
        actor_options: dict[str, Any] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        super().__init__(spec, size, timeout, seed)
        if envs_per_actor is not None and num_actors is not None:
            raise ConfigError(
                f"give envs_per_actor ({envs_per_actor}) or num_actors ({num_actors}), not both"
            )
        counts = {
            "envs_per_actor": envs_per_actor,
            "num_actors": num_actors,
            "threads_per_actor": threads_per_actor,
        }
        for name, value in counts.items():
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if size < 1:
            raise ConfigError(f"the pool size must be >= 1, got {size}")
        ray = import_ray()
        self._ray = ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, **(init_options or {})}
            if address is not None:
                options["address"] = address
            ray.init(**options)
        if num_actors is None:
            num_actors = (
                math.ceil(size / envs_per_actor)
                if envs_per_actor is not None
                else max(1, int(ray.cluster_resources().get("CPU", 1)))
            )
        count = min(size, num_actors)
        self._slots = [list(range(w, size, count)) for w in range(count)]
        self._owner = {s: w for w, slots in enumerate(self._slots) for s in slots}
        # Env calls run in the default group, progress queries in their own group, so a
        # busy actor still answers them.
        self._actor_class = ray.remote(concurrency_groups={"probe": 1})(EnvActor)
        self._actor_options = {"scheduling_strategy": "SPREAD", **(actor_options or {})}
        self.start_timeout = start_timeout
        self.threads_per_actor = threads_per_actor
        # One lock per actor: batches for different actors (the async engine's episodes,
        # each calling from its own thread) run side by side; all the per-slot and per-actor
        # state below is only touched under the lock of the actor that owns it.
        self._locks = [threading.Lock() for _ in range(count)]
        self._closed = False
        self._live: set[int] = set()  # slots whose env holds a running episode
        self._lost: dict[int, str] = {}  # slot -> why its episode's env state is gone
        self._starting: dict[int, Any] = {}  # actor -> its pending ``where`` call
        self._where: list[str] = ["?"] * count
        self._actors: list[Any] = [None] * count
        for w in range(count):
            self._spawn(w)
        self._await_start()

    # ------------------------------------------------------------------ public

    @property
    def actors(self) -> list[Any]:
        """The Ray actor handles, one per actor (slot ``s`` lives in ``actor_of(s)``)."""
        return list(self._actors)

    def actor_of(self, slot: int) -> int:
        """The index of the actor that holds ``slot``."""
        return self._owner[slot]

    @property
    def placement(self) -> list[str]:
        """``host:pid`` of each actor, as it reported when it started."""
        return list(self._where)

    def run(self, calls: Sequence[EnvCall]) -> list[EnvOutcome]:
        with contextlib.ExitStack() as held:
            for w in sorted({self._owner[call.slot] for call in calls}):
                held.enter_context(self._locks[w])  # in order: callers never deadlock
            out: list[EnvOutcome | None] = [None] * len(calls)
            batches: dict[int, list[int]] = {}
            for i, call in enumerate(calls):
                lost = self._lost.pop(call.slot, None)
                if lost is not None and call.kind not in STARTS_EPISODE:
                    out[i] = EnvOutcome(error=lost)
                else:
                    batches.setdefault(self._owner[call.slot], []).append(i)
            pending: dict[Any, _Batch] = {}
            for w, positions in batches.items():
                deadline = self._first_deadline(w)
                ref = self._actors[w].run.remote([calls[i] for i in positions])
                pending[ref] = _Batch(w, positions, deadline)
            while pending:
                self._receive(pending, calls, out)
            return out  # type: ignore[return-value]

    def close(self, graceful: bool = True) -> None:
        """Close the envs (``graceful``: up to 5 s) and end the actors; Ray itself keeps
        running."""
        if self._closed:
            return
        self._closed = True
        self._close_callers()
        ray = self._ray
        if not ray.is_initialized():
            return
        if graceful:
            refs = []
            for actor in self._actors:
                with contextlib.suppress(Exception):
                    refs.append(actor.close.remote())
            with contextlib.suppress(Exception):
                ray.wait(refs, num_returns=len(refs), timeout=5.0)
        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self._actors = []

    # ------------------------------------------------------------------ internals

    def _spawn(self, w: int) -> None:
        actor = self._actor_class.options(**self._actor_options).remote(
            self.spec, self._slots[w], self.seed, self.threads_per_actor
        )
        self._actors[w] = actor
        self._starting[w] = actor.where.remote()

    def _await_start(self) -> None:
        ray = self._ray
        pending = dict(self._starting)
        refs = list(pending.values())
        ready, late = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
        problem = None
        if late:
            problem = (
                f"{len(late)} of {len(refs)} env actors did not start within "
                f"{self.start_timeout} s. Free resources in the cluster: "
                f"{ray.available_resources()}; each actor asks for "
                f"{self._actor_options}. Use fewer actors (envs_per_actor, num_actors), "
                "ask for less (actor_options), add nodes or raise start_timeout."
            )
        else:
            for w, ref in pending.items():
                try:
                    self._where[w] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    problem = f"an env actor failed to start: {_summary(exc)}"
                    break
        if problem is not None:
            self.close(graceful=False)
            raise RayPoolError(problem)
        self._starting.clear()

    def _first_deadline(self, w: int) -> float | None:
        """When actor ``w`` must have answered the first call of a batch; an actor that
        is still starting (just replaced) gets ``start_timeout`` more."""
        if self.timeout is None:
            return None
        extra = 0.0
        ping = self._starting.get(w)
        if ping is not None:
            done, _ = self._ray.wait([ping], timeout=0)
            if done:
                with contextlib.suppress(self._ray.exceptions.RayError):
                    self._where[w] = self._ray.get(done[0])
                del self._starting[w]
            else:
                extra = self.start_timeout
        return time.monotonic() + self.timeout + extra

    def _receive(self, pending: dict[Any, _Batch], calls: Sequence[EnvCall], out: list) -> None:
        """Wait for the next finished batch, or for a deadline, and deal with it."""
        ray = self._ray
        deadlines = [b.deadline for b in pending.values() if b.deadline is not None]
        wait = None if not deadlines else max(0.0, min(deadlines) - time.monotonic())
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=wait)
        for ref in ready:
            batch = pending.pop(ref)
            try:
                results = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                where = self._where[batch.actor]
                self._replace(
                    batch,
                    calls,
                    out,
                    f"the env's Ray actor ({where}) died while "
                    f"running this call or another of its batch: {_summary(exc)}",
                )
                continue
            except ray.exceptions.RayError as exc:
                self._replace(batch, calls, out, f"the env's Ray actor failed: {_summary(exc)}")
                continue
            for i, result in zip(batch.positions, results, strict=True):
                out[i] = result
                self._track(calls[i], result)
        if ready:
            return
        now = time.monotonic()
        for ref, batch in list(pending.items()):
            expired = batch.deadline is not None and batch.deadline <= now
            if expired and not self._still_going(batch, calls, out):
                del pending[ref]

    def _still_going(self, batch: _Batch, calls: Sequence[EnvCall], out: list) -> bool:
        """A batch outlasted its deadline: ask its actor which call runs and since when.
        Either move the deadline to that call's own limit (True) or, when the call has
        run past ``timeout`` or the actor does not answer, replace the actor (False)."""
        ray, timeout = self._ray, float(self.timeout or 0.0)
        probe = self._actors[batch.actor].progress.options(concurrency_group="probe").remote()
        try:
            progress = ray.get(probe, timeout=min(timeout, 10.0))
        except ray.exceptions.GetTimeoutError:
            why = (
                f"the env did not answer within {self.timeout} s, nor did its Ray actor "
                "(an env call that never releases the GIL?); this or another call of its "
                "batch hung"
            )
            self._replace(batch, calls, out, why)
            return False
        except ray.exceptions.RayError as exc:
            where = self._where[batch.actor]
            why = f"the env's Ray actor ({where}) died: {_summary(exc)}"
            self._replace(batch, calls, out, why)
            return False
        if progress is None:  # not started yet, or just finished: look again later
            batch.deadline = time.monotonic() + timeout
            return True
        k, seconds = progress
        if seconds < timeout:
            batch.deadline = time.monotonic() + timeout - seconds
            return True
        self._replace(batch, calls, out, f"the env did not answer within {self.timeout} s", k)
        return False

    def _track(self, call: EnvCall, result: EnvOutcome) -> None:
        if result.error or result.terminated or result.truncated:
            self._live.discard(call.slot)
        elif call.kind in STARTS_EPISODE:
            self._live.add(call.slot)

    def _replace(
        self,
        batch: _Batch,
        calls: Sequence[EnvCall],
        out: list,
        why: str,
        culprit: int | None = None,
    ) -> None:
        """Actor ``batch.actor`` hung or died during its batch: replace it, end call
        ``culprit`` of the batch (every call when unknown) with ``why``, and every other
        episode whose env lived in the actor as lost."""
        w = batch.actor
        with contextlib.suppress(Exception):
            self._ray.kill(self._actors[w], no_restart=True)
        self._starting.pop(w, None)
        self._spawn(w)
        lost = f"lost: its env's Ray actor was replaced because an env in it failed ({why})"
        in_batch = set()
        for k, i in enumerate(batch.positions):
            in_batch.add(calls[i].slot)
            out[i] = EnvOutcome(error=why if culprit in (None, k) else lost)
        for slot in self._slots[w]:
            if slot in self._live and slot not in in_batch:
                self._lost[slot] = lost
            self._live.discard(slot)


def _summary(exc: BaseException) -> str:
    """The first line of a Ray error, plus the line that says why an actor died."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    because = [line for line in lines[1:] if "because" in line or "killed" in line]
    return " ".join([lines[0], *because[:1]])
