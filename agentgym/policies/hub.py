"""Where a model-backed policy's model comes from: a directory here, or the Hugging Face Hub.

``hf:TARGET`` and ``vllm:TARGET`` name a model directory or a Hub model id
(``Qwen/Qwen2.5-1.5B-Instruct``). A typo in a path must not turn into a minute of network
retries and a traceback about the Hub: :func:`resolve_model` says at once that the
directory does not exist, and only goes on to the Hub when ``TARGET`` could be a Hub id
that is not a path, is not in the local cache, and the Hub answers.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from agentgym.errors import ConfigError

#: ``name`` or ``org/name``, as the Hub spells repository ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")
PROBE_TIMEOUT_S = 3.0


def missing_directory(spec: str, target: str) -> str:
    """The message for a model directory that does not exist."""
    resolved = Path(target).expanduser().resolve()
    return f"{spec}: the model directory {target} does not exist ({resolved})"


def looks_like_hub_id(target: str) -> bool:
    """Whether ``target`` could be a Hub id: ``name`` or ``org/name``, not a path (no
    leading ``.``, ``/`` or ``~``, and ``org`` is not a folder here)."""
    if not _HUB_ID.match(target) or ".." in target or target.endswith((".", "-")):
        return False
    org = target.split("/", 1)[0]
    return "/" not in target or not Path(org).exists()


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an id the cache helper refuses is not cached
        return False


def _hub_reachable(timeout: float) -> tuple[bool, str]:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False, "HF_HUB_OFFLINE is set"
    url = urlparse(constants.ENDPOINT)
    host, port = (
        url.hostname or "huggingface.co",
        url.port or (443 if url.scheme == "https" else 80),
    )
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return False, f"{host} cannot be reached from here ({exc})"
    return True, ""


def resolve_model(spec: str, target: str, probe_timeout: float = PROBE_TIMEOUT_S) -> str:
    """``target`` if it is a model directory here or a Hub id worth asking the Hub for;
    else a :class:`~agentgym.errors.ConfigError` that names the missing directory.

    A Hub id not in the local cache is only passed on when the Hub's host accepts a
    connection within ``probe_timeout`` seconds (so an offline machine answers at once).
    """
    path = Path(target).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ConfigError(f"{spec}: {target} is a file; give the model's directory")
    if not looks_like_hub_id(target):
        raise ConfigError(missing_directory(spec, target))
    if _in_hub_cache(target):
        return target
    reachable, why = _hub_reachable(probe_timeout)
    if not reachable:
        raise ConfigError(
            f"{missing_directory(spec, target)}, and it is not a Hugging Face Hub model in the "
            f"local cache ({why}). Give the path of a model directory, e.g. one made by "
            "`agentgym model tiny`."
        )
    return target


def model_load_error(spec: str, target: str, exc: BaseException) -> str:
    """The message for a model that could not be loaded from ``target``."""
    if not Path(target).expanduser().exists():
        return f"{missing_directory(spec, target)}, and the Hugging Face Hub gave no model: {exc}"
    return f"{spec}: could not load the model in {target}: {exc}"
