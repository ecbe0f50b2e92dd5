"""Typed exceptions for user-facing errors.

Every message says what was wrong, the value seen and how to fix it; look-ups that fail
suggest the closest valid name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates closest to ``name`` (case-insensitive), best first."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` or an empty string."""
    hits = closest(name, candidates, n=1)
    return f" Did you mean {hits[0]!r}?" if hits else ""


class AgentGymError(Exception):
    """Base class of agentgym's user-facing errors."""


class UnknownNameError(AgentGymError, KeyError):
    """A name (environment id, estimator, policy kind, config key) that is not registered."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        valid = sorted(valid)
        self.kind, self.name, self.valid = kind, name, valid
        listing = ", ".join(repr(v) for v in valid[:30]) + (" ..." if len(valid) > 30 else "")
        super().__init__(f"unknown {kind} {name!r}.{did_you_mean(name, valid)} Valid: {listing}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InvalidTaskError(AgentGymError, ValueError):
    """A task id that the environment does not have, or that is in another split."""

    def __init__(self, task_id: str, why: str) -> None:
        super().__init__(f"task {task_id!r} cannot be played: {why}")


class NoExpertError(AgentGymError, NotImplementedError):
    """The environment has no expert (solver) for this state."""


class EnvCheckError(AgentGymError, AssertionError):
    """An environment broke a rule of the text-environment contract.

    ``rule`` names the rule (the ``check_*`` function that found it).
    """

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"[{rule}] {message}")


class ConfigError(AgentGymError, ValueError):
    """A configuration value or key that is not valid."""


class SnapshotError(AgentGymError, ValueError):
    """A snapshot that cannot be taken or restored here: taken before ``reset()``, from
    another environment class or wrapper stack, or for a task this env does not have."""


class SnapshotNotSupportedError(SnapshotError, NotImplementedError):
    """The environment (or a wrapper around it) cannot take snapshots.

    ``env`` names the class that lacks them.
    """

    def __init__(self, env: str, why: str = "") -> None:
        self.env, self.why = env, why
        super().__init__(
            f"{env} does not support snapshot()/restore(){': ' + why if why else ''}. Check "
            "agentgym.supports_snapshot(env) first, or implement the hooks "
            "_snapshot_state()/_restore_state() (see agentgym.env)"
        )

    def __reduce__(self) -> tuple:  # travels intact from a worker process
        return type(self), (self.env, self.why)
