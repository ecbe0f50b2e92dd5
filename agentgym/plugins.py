"""Plugins: installed packages that extend agentgym without being imported by the user.

Two entry-point groups:

``agentgym.envs``
    environments (see :mod:`agentgym.registry`).
``agentgym.plugins``
    modules imported before any config is read. Whatever their decorators register is then
    selectable by name from YAML: credit estimators (``register_estimator``), policy losses
    (``register_policy_loss``), loss aggregations and loss terms, reward shapers
    (``register_reward_shaper``), action parsers (``register_parser``), policy kinds
    (``register_policy``), env pools (``register_pool``) and rollout strategies. In a
    package's ``pyproject.toml``::

        [project.entry-points."agentgym.plugins"]
        my_methods = "my_package.methods"

A plugin that fails to import warns (naming the plugin and the error) and does not break
agentgym. :func:`load_plugins` runs once per process; config loading, the CLI and
:func:`agentgym.registry.entries` call it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import warnings

PLUGIN_GROUP = "agentgym.plugins"

_loaded: dict[str, str] = {}
_failed: dict[str, str] = {}
_done = False


def load_plugins() -> dict[str, str]:
    """Import every module of the ``agentgym.plugins`` entry-point group (once).

    Returns ``{plugin name: module}`` of the plugins loaded.
    """
    global _done
    if _done:
        return dict(_loaded)
    _done = True
    for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        source = ep.dist.name if ep.dist is not None else "?"
        module = ep.value.partition(":")[0].strip()
        try:
            importlib.import_module(module)
            if ":" in ep.value:
                ep.load()  # an attribute: import it too (its import may register things)
        except Exception as exc:  # a broken plugin must not break agentgym
            _failed[ep.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"agentgym plugin {ep.name!r} ({ep.value}, from {source}) failed to load and "
                f"is skipped: {type(exc).__name__}: {exc}",
                stacklevel=2,
            )
            continue
        _loaded[ep.name] = module
    return dict(_loaded)


def failed_plugins() -> dict[str, str]:
    """``{plugin name: error}`` of the plugins that failed to load."""
    load_plugins()
    return dict(_failed)
