"""Environment snapshots: save a moment of an episode and come back to it later.

A rollout that branches (a tree of continuations, re-rolls from an intermediate state)
needs to put an environment back into a state it was in. Environments that can, say so
with :attr:`agentgym.TextEnv.supports_snapshot`; the contract is in :mod:`agentgym.env`.

Use the functions of this module on whatever :func:`agentgym.make` or
``gymnasium.make`` returned: they walk the wrapper stack, so the wrappers' own state (the
turn counter of :class:`agentgym.wrappers.TurnLimit`, Gymnasium's ``OrderEnforcing`` and
``TimeLimit``) travels with the environment's::

    env = agentgym.make("Sokoban-v0")
    env.reset(seed=0)
    env.step("up")
    snap = agentgym.snapshot(env)            # an EnvSnapshot: small, immutable, picklable
    env.step("left"); env.step("down")
    agentgym.restore(env, snap)              # back to the moment after "up"

``TextEnv.snapshot()`` / ``TextEnv.restore()`` on ``env.unwrapped`` save and restore the
environment alone; a snapshot taken through wrappers must be restored through the same
wrappers (:class:`~agentgym.errors.SnapshotError` otherwise), so that no turn counter is
silently dropped.

A snapshot may be restored into any instance of the same environment class built with
the same arguments: the one it came from, another one in the same process, or one in a
worker process or Ray actor after a ``pickle`` round trip. Restoring never needs a
``reset()`` first.

Wrappers take part through two methods, ``snapshot_state() -> Any`` (something picklable)
and ``restore_state(state) -> None``; Gymnasium's ``OrderEnforcing``, ``TimeLimit`` and
``PassiveEnvChecker`` are handled here. Any other wrapper makes
:func:`supports_snapshot` false and :func:`snapshot` raise
:class:`~agentgym.errors.SnapshotNotSupportedError` naming it: a wrapper's hidden state
(a counter, a buffer) would otherwise come back wrong without a word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

from agentgym.errors import SnapshotError, SnapshotNotSupportedError


@dataclass(frozen=True, repr=False)
class EnvSnapshot:
    """One saved moment of an episode (see :meth:`agentgym.TextEnv.snapshot`).

    Treat it as opaque and immutable; the fields are documented for debugging.

    Attributes:
        env: ``"module:Class"`` of the environment it was taken from; restoring into
            another class is an error.
        task_id, split: the task being played.
        done, last_obs, success, score: the base class's bookkeeping (whether the episode
            has ended, the last observation, the running success and score).
        rng: the state of the environment's own generator (``env.np_random``, which draws
            tasks and episode seeds for ``reset()`` without a seed), and ``rng_seed`` the
            seed it came from.
        state: the environment's own state (:meth:`agentgym.TextEnv._snapshot_state`).
        wrappers: ``(wrapper class name, its state)`` for each wrapper, outermost first;
            empty for a snapshot of the bare environment.
    """

    env: str
    task_id: str
    split: str
    done: bool
    last_obs: str
    success: bool
    score: float
    rng: dict[str, Any]
    rng_seed: int | None
    state: Any
    wrappers: tuple[tuple[str, Any], ...] = ()
    state_obs: str | None = None
    """The observation after the last valid step (what invalid-action feedback repeats);
    None: the same as ``last_obs``."""

    def __repr__(self) -> str:
        around = "".join(f"{name}<" for name, _ in self.wrappers)
        closing = ">" * len(self.wrappers)
        return (
            f"EnvSnapshot({around}{self.env.rpartition(':')[2]}{closing}, "
            f"task={self.task_id!r}, done={self.done})"
        )


def class_path(cls: type) -> str:
    """``"module:Qualname"`` of a class, the name snapshots record."""
    return f"{cls.__module__}:{cls.__qualname__}"


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The full state of a generator (a small dict), for :func:`rng_from_state`."""
    return rng.bit_generator.state


def rng_from_state(
    state: dict[str, Any], reuse: np.random.Generator | None = None
) -> np.random.Generator:
    """A generator that continues exactly where the one ``state`` came from would.

    With ``reuse`` (a generator of the same kind that nothing else relies on, e.g. the
    env's own), that generator is set to ``state`` and returned: about ten times cheaper
    than building a new one.
    """
    if reuse is not None and type(reuse.bit_generator).__name__ == state["bit_generator"]:
        reuse.bit_generator.state = state
        return reuse
    bit_generator = getattr(np.random, state["bit_generator"])(0)
    bit_generator.state = state
    return np.random.Generator(bit_generator)


# ----------------------------------------------------------------- wrapper stacks

_Getter = Callable[[Any], Any]
_Setter = Callable[[Any, Any], None]


def _set_attr(name: str) -> _Setter:
    def setter(wrapper: Any, value: Any) -> None:
        setattr(wrapper, name, value)

    return setter


#: Gymnasium wrappers that ``gymnasium.make`` adds, and the state each holds.
_KNOWN_WRAPPERS: dict[type, tuple[_Getter, _Setter]] = {
    OrderEnforcing: (lambda w: w._has_reset, _set_attr("_has_reset")),
    TimeLimit: (lambda w: w._elapsed_steps, _set_attr("_elapsed_steps")),
    # Its flags say which checks already ran once per env, not anything of the episode.
    PassiveEnvChecker: (lambda w: None, lambda w, s: None),
}


def _own_io(wrapper: Any) -> Any:
    return wrapper.snapshot_state()


def _own_restore(wrapper: Any, state: Any) -> None:
    wrapper.restore_state(state)


_IO_BY_CLASS: dict[type, tuple[_Getter, _Setter] | None] = {}


def _wrapper_io(wrapper: Any) -> tuple[_Getter, _Setter] | None:
    cls = type(wrapper)
    if cls not in _IO_BY_CLASS:
        takes_part = callable(getattr(cls, "snapshot_state", None)) and callable(
            getattr(cls, "restore_state", None)
        )
        _IO_BY_CLASS[cls] = (_own_io, _own_restore) if takes_part else _KNOWN_WRAPPERS.get(cls)
    return _IO_BY_CLASS[cls]


def _unwrap(env: gymnasium.Env) -> tuple[list[gymnasium.Wrapper], gymnasium.Env]:
    wrappers: list[gymnasium.Wrapper] = []
    while isinstance(env, gymnasium.Wrapper):
        wrappers.append(env)
        env = env.env
    return wrappers, env


def _why_not(env: gymnasium.Env) -> SnapshotNotSupportedError | None:
    """The error :func:`snapshot` would raise for ``env``, or ``None`` if it can snapshot."""
    wrappers, base = _unwrap(env)
    if not getattr(base, "supports_snapshot", False):
        return SnapshotNotSupportedError(type(base).__name__)
    for wrapper in wrappers:
        if _wrapper_io(wrapper) is None:
            return SnapshotNotSupportedError(
                f"the wrapper {type(wrapper).__name__} around {type(base).__name__}",
                "a wrapper takes part through snapshot_state()/restore_state(state) methods",
            )
    return None


def supports_snapshot(env: gymnasium.Env) -> bool:
    """Whether :func:`snapshot`/:func:`restore` work on ``env`` (a TextEnv or a wrapper
    stack around one): the environment supports them and every wrapper takes part."""
    return _why_not(env) is None


def snapshot(env: gymnasium.Env) -> EnvSnapshot:
    """Save the current moment of ``env``'s episode, wrappers included.

    Raises :class:`~agentgym.errors.SnapshotNotSupportedError` (naming the environment or
    wrapper) where snapshots are not supported, and
    :class:`~agentgym.errors.SnapshotError` before the first ``reset()``.
    """
    problem = _why_not(env)
    if problem is not None:
        raise problem
    wrappers, base = _unwrap(env)
    states = []
    for wrapper in wrappers:
        get, _ = _wrapper_io(wrapper)  # type: ignore[misc]
        states.append((type(wrapper).__name__, get(wrapper)))
    return base._take_snapshot(tuple(states))  # type: ignore[attr-defined]


def restore(env: gymnasium.Env, snap: EnvSnapshot) -> None:
    """Put ``env`` (and its wrappers) back into the moment ``snap`` saved.

    ``env`` must be built like the one the snapshot came from: the same environment class
    and arguments, and the same wrappers in the same order.
    """
    problem = _why_not(env)
    if problem is not None:
        raise problem
    if not isinstance(snap, EnvSnapshot):
        raise SnapshotError(f"expected an EnvSnapshot, got {type(snap).__name__}")
    wrappers, base = _unwrap(env)
    have = tuple(type(w).__name__ for w in wrappers)
    saved = tuple(name for name, _ in snap.wrappers)
    if have != saved:
        raise SnapshotError(
            f"the snapshot was taken through the wrappers {list(saved)} but this env has "
            f"{list(have)}; restore it into an env built the same way (e.g. both with "
            "agentgym.make, or both bare: env.unwrapped.snapshot()/restore())"
        )
    base._restore_episode(snap)  # type: ignore[attr-defined]
    for wrapper, (_, state) in zip(wrappers, snap.wrappers, strict=True):
        _, put = _wrapper_io(wrapper)  # type: ignore[misc]
        put(wrapper, state)
