"""One registry helper for every name -> thing table in agentgym.

Estimators, policy losses, loss aggregations, loss terms, reward shapers, action parsers,
policy kinds, env pools and rollout strategies are each a :class:`Registry`. They all
follow the same rules:

* a name registers once (registering it again is an error naming who holds it);
* an unknown name is an :class:`~agentgym.errors.UnknownNameError` (or the registry's own
  subclass of it) that suggests the closest registered name and lists the valid ones;
* an entry may be a ``"module:attr"`` string, imported on first use, so that registering
  an optional backend (Ray, vLLM) costs nothing until it is used.

This module depends on the standard library only (and :mod:`agentgym.errors`), so that
pure layers such as :mod:`agentgym.credit` can use it without importing the rest of
agentgym.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from agentgym.errors import UnknownNameError

T = TypeVar("T")

__all__ = ["Registry", "load_attr"]


def load_attr(path: str) -> Any:
    """The object a ``"module:attr"`` (or ``"module:attr.sub"``) string names."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{path!r} is not of the form 'module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """A name -> object table with agentgym's registry rules (see the module docstring).

    Args:
        kind: what the entries are, in words, for messages (``"policy loss"``).
        error: the exception raised for an unknown name; it is built as
            ``error(kind, name, valid_names)`` and should subclass
            :class:`~agentgym.errors.UnknownNameError`.
    """

    def __init__(self, kind: str, error: type[UnknownNameError] = UnknownNameError) -> None:
        self.kind = kind
        self._error = error
        self._entries: dict[str, T | str] = {}
        self._sources: dict[str, str] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T | str, *, source: str | None = None) -> T | str: ...

    def register(
        self, name: str, obj: T | str | None = None, *, source: str | None = None
    ) -> Callable[[T], T] | T | str:
        """Register ``obj`` (or a lazy ``"module:attr"`` string) as ``name``.

        Without ``obj`` this is a decorator: ``@registry.register("name")``.
        """
        if obj is None:

            def decorate(fn: T) -> T:
                self._add(name, fn, source)
                return fn

            return decorate
        self._add(name, obj, source)
        return obj

    def _add(self, name: str, obj: T | str, source: str | None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty string name, got {name!r}")
        if name in self._entries:
            raise ValueError(
                f"{self.kind} {name!r} is already registered (by {self._sources[name]}); "
                "pick another name"
            )
        if isinstance(obj, str) and ":" not in obj:
            raise ValueError(f"{self.kind} {name!r}: {obj!r} is not a 'module:attr' path")
        self._entries[name] = obj
        self._sources[name] = source or _describe(obj)

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (a lazy entry is imported now, once)."""
        try:
            obj = self._entries[name]
        except (KeyError, TypeError):
            raise self._error(self.kind, str(name), self.names()) from None
        if isinstance(obj, str):
            loaded = load_attr(obj)
            self._entries[name] = loaded
            return loaded
        return obj

    def source(self, name: str) -> str:
        """Who registered ``name`` (a module path or the lazy target)."""
        self.get(name)
        return self._sources[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def _describe(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__name__)}"
