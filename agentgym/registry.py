"""Environment registry: agentgym's environments in Gymnasium's own registry.

Every environment is registered with Gymnasium under the namespace ``agentgym/`` with a
lazy ``"module:Class"`` entry point, so ``gymnasium.make("agentgym/Sokoban-v0")`` works
after ``import agentgym`` and nothing is imported until an environment is made.

Third-party packages register through the entry-point group ``agentgym.envs``: the entry
point's name is the environment id (``MyTask-v0``) and its value the ``module:Class`` of
a :class:`agentgym.TextEnv` subclass, e.g. in ``pyproject.toml``::

    [project.entry-points."agentgym.envs"]
    "MyTask-v0" = "my_package.env:MyTaskEnv"

Those appear in ``agentgym env list`` and ``agentgym.make`` without the user importing
the package. A behaviour change bumps the version (``-v1``) instead of changing an id.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium

from agentgym.errors import UnknownNameError

NAMESPACE = "agentgym"
ENTRY_POINT_GROUP = "agentgym.envs"


@dataclass(frozen=True)
class EnvEntry:
    """What agentgym knows about a registered environment without importing it."""

    id: str  # without the namespace, e.g. "Sokoban-v0"
    entry_point: str
    max_steps: int | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "agentgym"  # "agentgym" or the distribution that registered it

    @property
    def gym_id(self) -> str:
        return f"{NAMESPACE}/{self.id}"


_ENTRIES: dict[str, EnvEntry] = {}
_plugins_loaded = False


def register(
    id: str,
    entry_point: str,
    max_steps: int | None = None,
    kwargs: dict[str, Any] | None = None,
    source: str = "agentgym",
) -> EnvEntry:
    """Register an environment under ``agentgym/{id}``.

    Args:
        id: ``Name-vN``, without the namespace.
        entry_point: ``"module:Class"`` of a :class:`agentgym.TextEnv`; imported lazily.
        max_steps: default turn limit (``env.max_steps``), enforced by
            :class:`agentgym.wrappers.TurnLimit`; ``None`` for no limit.
        kwargs: default constructor arguments.
        source: who registered it (shown by ``agentgym env list``).

    Registering an id twice is an error.
    """
    if "/" in id:
        raise ValueError(f"register ids without the namespace: {id.split('/')[-1]!r}, not {id!r}")
    if id in _ENTRIES:
        raise ValueError(f"environment {id!r} is already registered by {_ENTRIES[id].source}")
    entry = EnvEntry(id, entry_point, max_steps, dict(kwargs or {}), source)
    _ENTRIES[id] = entry
    gymnasium.register(
        id=entry.gym_id,
        entry_point=_make_wrapped,
        kwargs={"_entry_point": entry_point, "_max_steps": max_steps, **entry.kwargs},
        disable_env_checker=True,
    )
    return entry


def _make_wrapped(_entry_point: str, _max_steps: int | None, max_steps: int | None = None, **kw):
    """Gymnasium's entry point for every agentgym id: build the env and add the turn limit."""
    from agentgym.wrappers import TurnLimit

    env_cls = gymnasium.envs.registration.load_env_creator(_entry_point)
    env = env_cls(**kw)
    limit = _max_steps if max_steps is None else max_steps
    return TurnLimit(env, limit) if limit else env


def load_plugins() -> None:
    """Register the environments that installed packages declare in ``agentgym.envs``."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _ENTRIES:
            continue
        source = ep.dist.name if ep.dist is not None else "plugin"
        try:
            register(ep.name, ep.value, source=source)
        except Exception as exc:  # a broken plugin must not break agentgym
            warnings.warn(f"could not register {ep.name!r} from {source}: {exc}", stacklevel=2)


def entries() -> dict[str, EnvEntry]:
    """All registered environments, built-in and plugins, by id."""
    load_plugins()
    return dict(_ENTRIES)


def entry(env_id: str) -> EnvEntry:
    """The registry entry of ``env_id`` (``Sokoban-v0`` or ``agentgym/Sokoban-v0``)."""
    known = entries()
    short = env_id.removeprefix(f"{NAMESPACE}/")
    if short not in known:
        raise UnknownNameError("environment", env_id, known)
    return known[short]


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """Make an environment: ``agentgym.make("Sokoban-v0", size=7)``.

    A shortcut for ``gymnasium.make("agentgym/Sokoban-v0", ...)`` that also accepts
    ``max_steps`` (the turn limit; ``None`` keeps the registered default) and gives a
    helpful error for unknown ids. An id of the form ``"module:Class"`` builds that class
    without registering it (handy for environments under development).
    """
    if ":" in env_id:
        return _make_wrapped(env_id, None, **kwargs)
    spec = entry(env_id)
    return gymnasium.make(spec.gym_id, **kwargs)


def _register_builtins() -> None:
    register("Sokoban-v0", "agentgym.envs.sokoban:SokobanEnv", max_steps=20)
    register("FrozenLake-v0", "agentgym.envs.frozenlake:FrozenLakeEnv", max_steps=20)
    register("Search-v0", "agentgym.envs.search:SearchEnv", max_steps=4)
    register("ALFWorld-v0", "agentgym.envs.alfworld:ALFWorldEnv", max_steps=50)
    register("WebShop-v0", "agentgym.envs.webshop:WebShopEnv", max_steps=15)
    register("CodeSandbox-v0", "agentgym.envs.code:CodeSandboxEnv", max_steps=8)
    register("MCP-v0", "agentgym.envs.mcp:MCPEnv", max_steps=8)


_register_builtins()
load_plugins()
