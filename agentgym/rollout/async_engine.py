"""Asynchronous rollouts (``env.rollout.mode: async``): one agent loop per episode.

The lock-step :class:`~agentgym.rollout.engine.RolloutEngine` generates for every live
episode, then steps every environment, then generates again: the inference backend idles
while environments step, and every environment waits for the slowest generation and the
slowest step of the turn. Here each episode runs its own loop on one asyncio event loop::

    reset its env -> generate for it -> step its env -> generate again -> ... -> done

Generation goes through :meth:`Policy.agenerate <agentgym.policies.base.Policy.agenerate>`
(one prompt, awaited), so a backend sees the prompts of all episodes that are waiting for
it and batches them continuously: ``vllm_server``/``openai`` as concurrent HTTP requests
into servers that batch continuously, in-process ``vllm`` and ``hf`` through a batching
queue (:mod:`agentgym.policies.batching`). Environment calls go through
:meth:`EnvPool.arun <agentgym.rollout.executor.EnvPool.arun>`, off the event loop (in the
``threads`` pool's threads, in threads that wait on the ``processes`` workers or the Ray
actors, in a thread for ``inline``): an environment steps as soon as its episode's
generation returns, while other episodes keep generating.

What stays exactly as in the lock-step engine (the same code records every step):
prompts (window or chat style, chat prompts kept as token ids end to end), the parsing of
responses and the invalid-action rule, the turn and context limits, faults as values (an
env that raises or hangs, or a failed generation, ends only its episode with
``status="error"``), the sampling seed of each step (from the run's seed, the trajectory and
the step index, never from what shares a batch), and the order of the returned
trajectories (by task, then rollout). So for the same seeds, with a backend whose output does
not depend on what shares its batch (greedy decoding at temperature 0; the ``expert`` and
``random`` policies; vLLM with per-request seeds) and environments that do not depend on
each other, the two engines return the same trajectories. What differs: which prompts
share a batch (so, at temperature > 0, ``hf`` samples differ: it seeds a whole batch),
the order in which trajectories finish (``on_trajectory``), and the stats, which here count
one ``generate`` request per prompt and measure busy time as the union of the time any
generation (or env call) was in flight.

Only ``group`` rollouts (``n`` independent episodes per task) run asynchronously: branching
strategies (``tree``, ``local``) branch all episodes at the same turn, a lock-step notion,
and are refused with a :class:`~agentgym.errors.ConfigError`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agentgym.errors import ConfigError
from agentgym.policies.base import Generation, PolicyInput
from agentgym.rollout.engine import RolloutEngine, TaskRequest, _Episode
from agentgym.rollout.executor import EnvCall, EnvOutcome
from agentgym.trajectory import Trajectory

#: The rollout modes (``env.rollout.mode``).
MODES = ("sync", "async")


class BusyClock:
    """The wall time during which at least one of some overlapping activities ran.

    ``start()``/``stop()`` around each activity (from one thread: the event loop);
    :attr:`seconds` is the length of the union of their intervals, so 16 generations in
    flight together for 1 s count 1 s, as one batched call would.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._running = 0
        self._since = 0.0

    def start(self) -> None:
        if self._running == 0:
            self._since = time.perf_counter()
        self._running += 1

    def stop(self) -> None:
        self._running -= 1
        if self._running == 0:
            self.seconds += time.perf_counter() - self._since


class _FreeSlots:
    """The pool's free slots; episodes wait for one in the order they asked."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(size):
            self._queue.put_nowait(slot)

    async def take(self) -> int:
        return await self._queue.get()

    def append(self, slot: int) -> None:  # the name RolloutEngine._finish calls
        self._queue.put_nowait(slot)


class AsyncRolloutEngine(RolloutEngine):
    """Plays groups of episodes, each episode its own agent loop (see the module docstring).

    Takes the arguments of :class:`~agentgym.rollout.engine.RolloutEngine`; ``strategy``
    must be ``None`` (``group`` rollouts) and ``generate_for_finished`` is not supported.
    :meth:`run` is synchronous (it runs an event loop until the rollouts are done, in a
    thread of its own when the caller's thread already runs one); :meth:`arun` is the
    coroutine, for callers with their own event loop.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.check_strategy(self.strategy)
        if self.generate_for_finished:
            raise ConfigError("generate_for_finished is a lock-step measurement; use mode sync")

    @staticmethod
    def check_strategy(strategy: Any) -> None:
        """A :class:`~agentgym.errors.ConfigError` unless ``strategy`` is ``None``
        (``group`` rollouts): the only layout this engine plays."""
        if strategy is None:
            return
        name = getattr(strategy, "name", type(strategy).__name__)
        raise ConfigError(
            f"asynchronous rollouts (env.rollout.mode=async) play independent episodes "
            f"only; the rollout strategy {name!r} branches episodes in lock step: use "
            "env.rollout.mode=sync with it"
        )

    def run(
        self,
        tasks: Sequence[TaskRequest],
        n: int = 1,
        group_prefix: str = "",
        metadata: dict[str, Any] | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Trajectory]:
        """Play every task ``n`` times; return trajectories grouped by task, in order (as
        :meth:`RolloutEngine.run`). ``on_trajectory`` and ``progress`` are called from the
        event loop's thread as each episode ends."""
        coro = self.arun(tasks, n, group_prefix, metadata, on_trajectory, progress)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        return _run_in_thread(coro)  # the caller is inside an event loop (a notebook)

    async def arun(
        self,
        tasks: Sequence[TaskRequest],
        n: int = 1,
        group_prefix: str = "",
        metadata: dict[str, Any] | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Trajectory]:
        """:meth:`run` as a coroutine on the caller's event loop."""
        if n < 1:
            raise ValueError(f"n (rollouts per task) must be >= 1, got {n}")
        start = time.perf_counter()
        episodes = self._new_episodes(tasks, n, group_prefix, metadata)
        free = _FreeSlots(self.pool.size)
        gen_clock, env_clock = BusyClock(), BusyClock()

        async def play(ep: _Episode) -> None:
            ep.slot = await free.take()
            await self._episode(ep, gen_clock, env_clock)
            self._finish(ep, free, on_trajectory, progress)  # type: ignore[arg-type]

        try:
            await asyncio.gather(*(play(ep) for ep in episodes))
        finally:
            self.stats.seconds_generate += gen_clock.seconds
            self.stats.seconds_env += env_clock.seconds
            self.stats.seconds_total += time.perf_counter() - start
        return [ep.traj for ep in episodes]

    # ------------------------------------------------------------------ one episode

    async def _episode(self, ep: _Episode, gen_clock: BusyClock, env_clock: BusyClock) -> None:
        """Reset, then generate and step until the episode ends (every branch of
        :meth:`RolloutEngine._turn`, for one episode)."""
        self._started(ep, await self._aenv(self._start_call(ep), env_clock))
        while not ep.done:
            item, shown = self._prompt(ep)
            if item.prompt_ids is not None and len(item.prompt_ids) > self.max_prompt_tokens:
                ep.traj.status = "truncated"
                ep.traj.metadata["truncated_by"] = "context_length"
                ep.done = True
                break
            gen = await self._agenerate(item, gen_clock)
            step = self._record(ep, item, shown, gen)
            if step is None:  # failed generation, or an unparsable response
                continue
            call = EnvCall(ep.slot, "step", action=step.action, hints=self._hint_names)
            self._apply(ep, step, await self._aenv(call, env_clock))

    async def _agenerate(self, item: PolicyInput, clock: BusyClock) -> Generation:
        clock.start()
        try:
            return await self.policy.agenerate(item, self.sampling)
        finally:
            clock.stop()
            self.stats.generate_calls += 1
            self.stats.prompts_generated += 1

    async def _aenv(self, call: EnvCall, clock: BusyClock) -> EnvOutcome:
        clock.start()
        try:
            return await self.pool.arun(call)
        finally:
            clock.stop()


def _run_in_thread(coro: Any) -> Any:
    """Run a coroutine to completion on a fresh event loop in a new thread."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name="agentgym-async-rollout")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
