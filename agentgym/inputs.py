"""Inputs filled by name: the per-row data estimators and shapers ask for.

A credit estimator's keyword parameters annotated ``np.ndarray`` are its *inputs*
(``stratified(batch, *, stratum: np.ndarray | None = None, ...)``). The trainer fills each
from the flattened trajectories (:class:`agentgym.trajectory.StepColumns`) by that name,
so a new method needs no wiring:

===================  ===========================  =========================================
input                info key that carries it     without it
===================  ===========================  =========================================
``action``           (the parsed action)          always available
``agent``            ``agent_id`` (before a step) one agent, ``"agent"``
``num_tool_calls``   ``num_tool_calls``           0
``stratum``          ``stratum``                  the trajectory's number of tool calls
``success``          ``success``                  always available
``node``             (the rollout's tree)         every row its own node
``branch``           (the rollout's re-rolls)     -1: every trajectory starts at reset
``reward_components`` ``reward_components``       refused: an env must report them
any other name X     ``X`` (after each step)      refused: an env must report it
===================  ===========================  =========================================

An estimator whose input no environment provides is refused when the config loads (before
any model is built), with the input's name and the ``info`` key that would carry it:
:func:`missing_inputs` asks the environment class (its ``info_keys``) and, when the class
does not declare them, plays one reset and one step to see which keys it fills.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentgym.trajectory import StepColumns

__all__ = ["InputInfo", "describe_input", "fill_inputs", "missing_inputs"]


@dataclass(frozen=True)
class InputInfo:
    """How one input name is filled."""

    name: str
    info_key: str | None
    """The ``info`` key an environment fills to provide it (None: computed by agentgym)."""
    always: bool
    """True when every environment provides it (a default stands in)."""
    description: str


_BUILTIN: dict[str, InputInfo] = {
    info.name: info
    for info in (
        InputInfo("action", None, True, "the parsed action text ('' where it did not parse)"),
        InputInfo("agent", "agent_id", True, "the acting agent; 'agent' for single-agent envs"),
        InputInfo("num_tool_calls", "num_tool_calls", True, "the trajectory's tool calls"),
        InputInfo(
            "stratum", "stratum", True, "a structural key; default: the number of tool calls"
        ),
        InputInfo("success", "success", True, "whether the row's trajectory succeeded"),
        InputInfo(
            "node",
            None,
            True,
            "the stored step (tree node) of the row: equal where trajectories share a step",
        ),
        InputInfo(
            "branch",
            None,
            True,
            "the source step a local re-roll starts from; -1 for episodes from reset",
        ),
        InputInfo(
            "reward_components",
            "reward_components",
            False,
            "rows x K reward parts (a dict name -> value per step)",
        ),
    )
}


def describe_input(name: str) -> InputInfo:
    """How input ``name`` is filled (a name agentgym does not know comes from ``info[name]``)."""
    return _BUILTIN.get(name) or InputInfo(name, name, False, f"info[{name!r}] of each step")


def fill_inputs(names: Iterable[str], columns: StepColumns) -> dict[str, np.ndarray]:
    """``{name: per-row array}`` for each input name, from the flattened batch.

    Raises a ValueError naming the input and its ``info`` key when no step carries it.
    """
    out: dict[str, np.ndarray] = {}
    for name in names:
        try:
            value = columns.column(name)
        except KeyError:
            info = describe_input(name)
            raise ValueError(
                f"input {name!r} is not in the trajectories: no step's info has "
                f"{info.info_key!r}; the environment must report it"
            ) from None
        if name == "reward_components" and value.shape[1] == 0:
            raise ValueError(
                "input 'reward_components' is not in the trajectories: no step's info has "
                "'reward_components' (a dict name -> value per step); the environment "
                "must report it"
            )
        out[name] = value
    return out


def missing_inputs(names: Sequence[str], env_id: str, env_kwargs: dict[str, Any]) -> list[str]:
    """The inputs among ``names`` that the environment does not provide.

    Inputs every environment provides are never missing. For the others the environment
    class's ``info_keys`` (optional info keys it declares) are read; where the class does
    not list a key, one environment is made, reset on a train task and stepped once (its
    expert's or a random action) to see the keys it fills.
    """
    needed = [n for n in names if not describe_input(n).always]
    if not needed:
        return []
    declared = _declared_info_keys(env_id)
    unknown = [n for n in needed if describe_input(n).info_key not in declared]
    if not unknown:
        return []
    seen = _probe_info_keys(env_id, env_kwargs)
    return [n for n in unknown if describe_input(n).info_key not in seen]


def _declared_info_keys(env_id: str) -> set[str]:
    from agentgym.registry import env_class

    try:
        cls = env_class(env_id)
    except Exception:
        return set()
    return set(getattr(cls, "info_keys", ()) or ())


def _probe_info_keys(env_id: str, env_kwargs: dict[str, Any]) -> set[str]:
    from agentgym.registry import make

    keys: set[str] = set()
    try:
        env = make(env_id, **env_kwargs)
    except Exception:
        return keys
    try:
        _obs, info = env.reset(seed=0, options={"split": "train"})
        keys |= set(info)
        inner = env.unwrapped
        action = None
        if getattr(inner, "has_expert", False):
            try:
                action = inner.expert_action()
            except Exception:
                action = None
        if action is None and hasattr(inner, "random_action"):
            try:
                action = inner.random_action(np.random.default_rng(0))
            except Exception:
                action = None
        if action is not None:
            *_, info = env.step(action)
            keys |= set(info)
    except Exception:
        pass
    finally:
        env.close()
    return keys
