"""Environment registry: agentgym's environments in Gymnasium's own registry.

Every environment is registered with Gymnasium under the namespace ``agentgym/`` with a
lazy ``"module:Class"`` entry point, so ``gymnasium.make("agentgym/Sokoban-v0")`` works
after ``import agentgym`` and nothing is imported until an environment is made.

Third-party packages register through the entry-point group ``agentgym.envs``. An entry
point named like an environment id (``MyTask-v0``) registers that id with its value as the
entry point, e.g. in ``pyproject.toml``::

    [project.entry-points."agentgym.envs"]
    "MyTask-v0" = "my_package.env:MyTaskEnv"

Any other name (Gymnasium's plugin convention, e.g. ``register_envs``) names a function
that is called once and registers environments itself (with :func:`register` or with
``gymnasium.register(id="agentgym/...")``). Those appear in ``agentgym env list`` and
``agentgym.make`` without the user importing the package; a broken plugin warns and does
not break agentgym. Ids that a package registers directly in Gymnasium's registry under
the ``agentgym/`` namespace are picked up too.

The entry point may be a :class:`agentgym.TextEnv` or a plain ``gymnasium.Env[str, str]``
that knows nothing of agentgym: the latter is wrapped in
:class:`agentgym.gym_adapter.GymTextEnv` (tasks are seeds in train/valid/test ranges).

Every environment gets a turn limit (:class:`agentgym.wrappers.TurnLimit`): the id's
registered ``max_steps``, else the class attribute ``default_max_steps`` of the
environment, else the ``max_episode_steps`` of a Gymnasium registration, else
:data:`DEFAULT_MAX_STEPS`. A behaviour change bumps the version (``-v1``) instead of
changing an id.
"""

from __future__ import annotations

import importlib.metadata
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium

from agentgym.errors import UnknownNameError

NAMESPACE = "agentgym"
ENTRY_POINT_GROUP = "agentgym.envs"
#: The turn limit of an environment that declares none (see the module docstring).
DEFAULT_MAX_STEPS = 50
_ENV_ID = re.compile(r"^[A-Za-z0-9_.\-]+-v\d+$")


@dataclass(frozen=True)
class EnvEntry:
    """What agentgym knows about a registered environment without importing it."""

    id: str  # without the namespace, e.g. "Sokoban-v0"
    entry_point: str
    max_steps: int | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "agentgym"  # "agentgym" or the distribution that registered it
    gymnasium_native: bool = False
    """Registered with ``gymnasium.register`` directly (made through Gymnasium's own
    entry point, then adapted)."""

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
        entry_point: ``"module:Class"`` of a :class:`agentgym.TextEnv` or of a plain
            ``gymnasium.Env[str, str]``; imported lazily.
        max_steps: default turn limit (``env.max_steps``), enforced by
            :class:`agentgym.wrappers.TurnLimit`; ``None``: the class's
            ``default_max_steps``, else :data:`DEFAULT_MAX_STEPS`.
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
    """Gymnasium's entry point for every agentgym id: build the env, adapt a plain
    Gymnasium env, and add the turn limit."""
    env_cls = gymnasium.envs.registration.load_env_creator(_entry_point)
    return _adapted(env_cls(**kw), env_cls, _max_steps if max_steps is None else max_steps)


def _adapted(env: gymnasium.Env, env_cls: Any, limit: int | None) -> gymnasium.Env:
    from agentgym.env import TextEnv
    from agentgym.wrappers import TurnLimit

    if not isinstance(env.unwrapped, TextEnv):
        from agentgym.gym_adapter import GymTextEnv

        env = GymTextEnv(env)
    if limit is None:
        limit = getattr(env_cls, "default_max_steps", None) or DEFAULT_MAX_STEPS
    return TurnLimit(env, int(limit))


def load_plugins() -> None:
    """Register the environments that installed packages declare in ``agentgym.envs``
    (see the module docstring), and adopt ids registered in Gymnasium's own registry
    under the ``agentgym/`` namespace."""
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in _ENTRIES:
                continue
            source = ep.dist.name if ep.dist is not None else "plugin"
            try:
                if _ENV_ID.match(ep.name):
                    register(ep.name, ep.value, source=source)
                else:  # a function that registers environments itself
                    ep.load()()
            except Exception as exc:  # a broken plugin must not break agentgym
                warnings.warn(f"could not register {ep.name!r} from {source}: {exc}", stacklevel=2)
    _adopt_gymnasium_ids()


def _adopt_gymnasium_ids() -> None:
    """Ids registered with ``gymnasium.register(id="agentgym/...")`` by other code."""
    for gym_id, spec in list(gymnasium.registry.items()):
        if spec.namespace != NAMESPACE:
            continue
        short = gym_id.split("/", 1)[1]
        if short in _ENTRIES or spec.entry_point is _make_wrapped:
            continue
        entry_point = spec.entry_point
        if not isinstance(entry_point, str):
            module = getattr(entry_point, "__module__", "?")
            entry_point = f"{module}:{getattr(entry_point, '__qualname__', entry_point)}"
        _ENTRIES[short] = EnvEntry(
            short,
            entry_point,
            spec.max_episode_steps,
            dict(spec.kwargs),
            source="gymnasium",
            gymnasium_native=True,
        )


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


def env_class(env_id: str) -> Any:
    """The class (or factory) an id builds, imported but not instantiated."""
    if ":" in env_id:
        return gymnasium.envs.registration.load_env_creator(env_id)
    found = entry(env_id)
    if found.gymnasium_native:
        creator = gymnasium.registry[found.gym_id].entry_point
        return (
            gymnasium.envs.registration.load_env_creator(creator)
            if isinstance(creator, str)
            else creator
        )
    return gymnasium.envs.registration.load_env_creator(found.entry_point)


def default_max_steps(env_id: str) -> int:
    """The turn limit ``env_id`` gets when a config does not set one."""
    if ":" not in env_id:
        found = entry(env_id)
        if found.max_steps:
            return int(found.max_steps)
    try:
        declared = getattr(env_class(env_id), "default_max_steps", None)
    except Exception:
        declared = None
    return int(declared or DEFAULT_MAX_STEPS)


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """Make an environment: ``agentgym.make("Sokoban-v0", size=7)``.

    A shortcut for ``gymnasium.make("agentgym/Sokoban-v0", ...)`` that also accepts
    ``max_steps`` (the turn limit; ``None`` keeps the default, see the module docstring)
    and gives a helpful error for unknown ids. An id of the form ``"module:Class"`` builds
    that class without registering it (handy for environments under development).
    """
    if ":" in env_id:
        return _make_wrapped(env_id, None, **kwargs)
    spec = entry(env_id)
    if spec.gymnasium_native:
        limit = kwargs.pop("max_steps", None)
        env = gymnasium.make(spec.gym_id, **kwargs)
        if limit is None and spec.max_steps is None:
            limit = default_max_steps(env_id)
        return _adapted(env, type(env.unwrapped), limit or spec.max_steps)
    return gymnasium.make(spec.gym_id, **kwargs)


def _register_builtins() -> None:
    register("Sokoban-v0", "agentgym.envs.sokoban:SokobanEnv", max_steps=20)
    register("FrozenLake-v0", "agentgym.envs.frozenlake:FrozenLakeEnv", max_steps=20)
    register("Search-v0", "agentgym.envs.search:SearchEnv", max_steps=4)
    register("SearchRoles-v0", "agentgym.envs.search:SearchRolesEnv", max_steps=8)
    register("ALFWorld-v0", "agentgym.envs.alfworld:ALFWorldEnv", max_steps=50)
    register("WebShop-v0", "agentgym.envs.webshop:WebShopEnv", max_steps=15)
    register("CodeSandbox-v0", "agentgym.envs.code:CodeSandboxEnv", max_steps=8)
    register("MCP-v0", "agentgym.envs.mcp:MCPEnv", max_steps=8)
    register("OpenEnv-v0", "agentgym.envs.openenv:OpenEnvEnv", max_steps=20)
    register("TextArena-v0", "agentgym.envs.textarena:TextArenaEnv", max_steps=20)
    register(
        "TextArenaSelfPlay-v0",
        "agentgym.envs.textarena:TextArenaEnv",
        max_steps=20,
        kwargs={"mode": "selfplay", "game": "TicTacToe-v0"},
    )
    register("ReasoningGym-v0", "agentgym.envs.reasoning:ReasoningGymEnv", max_steps=1)
    register(
        "ReasoningGymTools-v0",
        "agentgym.envs.reasoning:ReasoningGymEnv",
        max_steps=6,
        kwargs={"tools": "calculator"},
    )


_register_builtins()
load_plugins()
