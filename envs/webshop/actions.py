"""Reading a WebShop action: ``search[keywords]`` or ``click[button]``.

Two readings, chosen by ``WebShopEnv(strict=...)``:

:func:`parse_strict` (``strict=True``)
    WebShop's own reading (``parse_action`` in ``web_agent_site/engine/engine.py``, then
    the text env's ``step``). Only the text before the first line feed counts. In it, the
    argument ends at the *last* ``]`` and starts after the last ``[`` that leaves at least
    one character before it and one inside; the name is everything before that ``[``, and
    must be exactly ``search`` or ``click``. Whatever follows the ``]`` is ignored, so
    ``click[buy now] please`` buys. The argument is lowercased and otherwise kept as
    written: ``click[buy  now]`` and ``click[ buy now]`` name no button.

:func:`parse_loose` (``strict=False``, the default)
    agentgym's reading: the whole action must be one ``search[...]`` or ``click[...]``
    (``click[buy now] please`` is refused), the name in any case (``Search[...]``),
    whitespace allowed around the name and the brackets (``click [x]``), the argument
    may span lines and runs from the first ``[`` to the last ``]``; a click's argument
    has its whitespace folded (``click[ buy  now ]``).

Both return ``(name, argument)`` or ``None`` when the text is not an action at all;
``name`` is returned as written (the env tells the agent when it is not an action name).
"""

from __future__ import annotations

import re

#: Action names, as WebShop spells them.
ACTION_NAMES: tuple[str, ...] = ("search", "click")

_LOOSE = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)


def parse_strict(action: str) -> tuple[str, str] | None:
    """``(name, argument)`` as WebShop splits ``action``, or ``None`` where WebShop's
    pattern does not match (see the module docstring). The argument is returned as
    written; WebShop lowercases it before using it."""
    line = action.split("\n", 1)[0]
    close = line.rfind("]")
    # the "[" must leave one character before it (the name) and one before the "]"
    opening = line.rfind("[", 1, close - 1) if close >= 3 else -1
    if opening < 0:
        return None
    return line[:opening], line[opening + 1 : close]


def parse_loose(action: str) -> tuple[str, str] | None:
    """``(name, argument)`` under agentgym's default reading, the name lowercased, or
    ``None`` (see the module docstring)."""
    match = _LOOSE.match(action)
    if match is None:
        return None
    return match.group(1).lower(), match.group(2)
