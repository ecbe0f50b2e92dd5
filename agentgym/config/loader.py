"""Typed configs from YAML with dotted overrides.

Configs are dataclasses. :func:`load_config` reads a YAML file (OmegaConf, so
``${...}`` interpolation works), applies ``key.sub=value`` overrides, and builds the
dataclass tree, validating every value against its type hint *before anything else
runs*: an unknown key is an error that names the closest valid key, a ``Literal`` field
rejects values outside its choices, and numbers are checked for their type.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml
from omegaconf import OmegaConf

from agentgym.errors import ConfigError, closest

T = TypeVar("T")

#: Field metadata key of an "open sections" field: a ``dict[str, dict]`` filled from keys
#: named after registered things (estimators, losses), e.g. ``algorithm.gigpo: {...}``.
#: Its value is a function returning the valid section names (read when a config loads,
#: after plugins have registered theirs).
OPEN_SECTIONS = "agentgym_open_sections"


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` -> nested dict; values are parsed as YAML."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("+")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. algorithm.gamma=0.9)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} sets a key below a value")
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build ``cls`` from a YAML file (optional) and dotted overrides.

    Plugins (the ``agentgym.plugins`` entry-point group) are imported first, so names they
    register are valid in the config.
    """
    from agentgym.plugins import load_plugins

    load_plugins()
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        loaded = OmegaConf.load(path)
        data = OmegaConf.to_container(loaded, resolve=True) or {}  # type: ignore[assignment]
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping at the top level")
    data = _merge(data, parse_overrides(overrides))
    resolved = OmegaConf.to_container(OmegaConf.create(data), resolve=True)
    return from_dict(cls, resolved or {})  # type: ignore[arg-type]


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, validating keys and types (see module doc)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'the config'} must be a mapping, got {data!r}")
    hints = get_type_hints(cls)
    fields_ = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    names = [f.name for f in fields_ if OPEN_SECTIONS not in f.metadata]
    open_field = next((f for f in fields_ if OPEN_SECTIONS in f.metadata), None)
    sections = list(open_field.metadata[OPEN_SECTIONS]()) if open_field is not None else []
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in names and key in sections and open_field is not None:
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"'{full}' must be a mapping of settings, got {value!r}")
            kwargs.setdefault(open_field.name, {})[key] = _yaml_numbers(dict(value or {}))
            continue
        if key not in names:
            valid = names + sections
            hint = closest(str(key), valid, n=1)
            suggestion = f" Did you mean '{where + '.' if where else ''}{hint[0]}'?" if hint else ""
            raise ConfigError(
                f"unknown config key '{full}'.{suggestion} Valid keys here: {', '.join(valid)}"
            )
        kwargs[key] = _coerce(hints[key], value, full)
    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc
    return obj


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"'{where}' cannot be {value!r}")
    if origin is Literal:
        if value not in args:
            hint_ = closest(str(value), [str(a) for a in args], n=1)
            mean = f" Did you mean {hint_[0]!r}?" if hint_ else ""
            raise ConfigError(f"'{where}' must be one of {list(args)}, got {value!r}.{mean}")
        return value
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):  # type: ignore[arg-type]
            return value
        return from_dict(hint, value or {}, where)  # type: ignore[arg-type]
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"'{where}' must be a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{where}' must be a mapping, got {value!r}")
        return _yaml_numbers(dict(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{where}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"'{where}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            if isinstance(value, str):
                try:
                    return float(value)  # YAML reads 1e-4 as a string
                except ValueError:
                    pass
            raise ConfigError(f"'{where}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(f"'{where}' must be a string, got {value!r}")
        return value
    return value


_EXPONENT_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _yaml_numbers(value: Any) -> Any:
    """Numbers YAML 1.1 leaves as strings (``5e-4`` has no dot) as floats, inside the
    free-form mappings of a config (an estimator's or a loss's settings)."""
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {k: _yaml_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_numbers(v) for v in value]
    return value


def to_dict(obj: Any) -> Any:
    """A plain dict/list tree of a config (for saving with a run); open sections are
    written as the keys they were read from (``algorithm.gigpo: {...}``)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = to_dict(getattr(obj, f.name))
            if OPEN_SECTIONS in f.metadata:
                out.update(value)
            else:
                out[f.name] = value
        return out
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def save_config(obj: Any, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(obj), sort_keys=False, allow_unicode=True))
