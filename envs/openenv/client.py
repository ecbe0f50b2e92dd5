"""A synchronous session with one OpenEnv environment server, over its WebSocket.

OpenEnv servers (``openenv.core.env_server.http_server.create_app``) give each WebSocket
connection on ``/ws`` its own environment instance. The messages are JSON:
``{"type": "reset", "data": {reset kwargs}}``, ``{"type": "step", "data": {action}}``,
``{"type": "state"}`` and ``{"type": "close"}``; the server answers
``{"type": "observation", "data": {"observation": {...}, "reward": r, "done": d}}``,
``{"type": "state", "data": {...}}`` or ``{"type": "error", "data": {"message", "code"}}``.
This is what ``openenv``'s own ``EnvClient`` speaks (the tests play the same episode
through both and compare); speaking it directly keeps the client side free of ``openenv``
itself, whose import pulls in its web UI (gradio, ~10 s). The action/observation JSON
schemas come from ``GET /schema``.

Nothing here raises inside an episode: a lost connection or a timeout comes back as an
:class:`OpenEnvReply` with ``failure`` set. Opening the session raises
:class:`OpenEnvConnectionError`.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from agentgym.errors import AgentGymError

Failure = Literal["rejected", "timeout", "disconnected"]


class OpenEnvConnectionError(AgentGymError, ConnectionError):
    """The OpenEnv server could not be reached, or it refused a session."""


@dataclass(frozen=True)
class OpenEnvReply:
    """One answer of the server: ``data`` (the message's ``data``), or ``failure`` and
    ``error`` when there is none (``rejected``: the server answered with an error
    message, e.g. an action its model does not accept)."""

    data: dict[str, Any] = field(default_factory=dict)
    failure: Failure | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


def ws_url(base_url: str) -> str:
    """``http://host:port`` -> ``ws://host:port/ws`` (``https`` -> ``wss``)."""
    url = base_url.rstrip("/")
    for http, ws in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(http):
            url = ws + url[len(http) :]
    return url if url.endswith("/ws") else f"{url}/ws"


def fetch_schema(base_url: str, timeout: float = 30.0) -> dict[str, Any]:
    """``GET /schema``: the JSON schemas of the server's action, observation and state."""
    import httpx

    try:
        response = httpx.get(f"{base_url.rstrip('/')}/schema", timeout=timeout)
        response.raise_for_status()
        schema = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OpenEnvConnectionError(
            f"could not read the schema of the OpenEnv server at {base_url!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(schema, dict) or not isinstance(schema.get("action"), dict):
        raise OpenEnvConnectionError(
            f"{base_url}/schema did not return OpenEnv's {{action, observation, state}} "
            "schemas; is this an OpenEnv server?"
        )
    return schema


class OpenEnvSession:
    """One WebSocket session (one environment instance on the server).

    Args:
        base_url: the server's base URL, e.g. ``http://127.0.0.1:8000``.
        connect_timeout: seconds to open the WebSocket.
        message_timeout: seconds to wait for each answer.
        max_message_mb: the largest answer accepted.
    """

    def __init__(
        self,
        base_url: str,
        connect_timeout: float = 30.0,
        message_timeout: float = 60.0,
        max_message_mb: float = 100.0,
    ) -> None:
        from websockets.sync.client import connect

        self.base_url = base_url
        self.message_timeout = float(message_timeout)
        self._broken: str | None = None
        self._stack = contextlib.ExitStack()
        try:
            self._ws = self._stack.enter_context(
                connect(
                    ws_url(base_url),
                    open_timeout=connect_timeout,
                    max_size=int(max_message_mb * 2**20),
                    proxy=None,
                )
            )
        except Exception as exc:
            raise OpenEnvConnectionError(
                f"could not open a session with the OpenEnv server at {base_url!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    @property
    def alive(self) -> bool:
        return self._broken is None

    def request(self, kind: str, data: dict[str, Any] | None = None) -> OpenEnvReply:
        """Send one message and read its answer; never raises."""
        if self._broken is not None:
            return OpenEnvReply(failure="disconnected", error=self._broken)
        from websockets.exceptions import ConnectionClosed

        message: dict[str, Any] = {"type": kind}
        if data is not None:
            message["data"] = data
        try:
            self._ws.send(json.dumps(message))
            raw = self._ws.recv(timeout=self.message_timeout)
        except TimeoutError:
            # The late answer would be read as the next one's: this session is done.
            self._break(f"no answer within {self.message_timeout:g} s")
            return OpenEnvReply(failure="timeout", error=self._broken or "")
        except (ConnectionClosed, OSError) as exc:
            self._break(f"the connection was lost ({type(exc).__name__}: {exc})")
            return OpenEnvReply(failure="disconnected", error=self._broken or "")
        try:
            reply = json.loads(raw)
        except (TypeError, ValueError):
            self._break("the server sent something that is not JSON")
            return OpenEnvReply(failure="disconnected", error=self._broken or "")
        if not isinstance(reply, dict):
            return OpenEnvReply(failure="rejected", error=f"unexpected answer {reply!r:.200}")
        if reply.get("type") == "error":
            details = reply.get("data") or {}
            text = details.get("message", "unknown error")
            code = details.get("code")
            return OpenEnvReply(failure="rejected", error=f"{text}{f' ({code})' if code else ''}")
        data = reply.get("data")
        return OpenEnvReply(data=data if isinstance(data, dict) else {})

    def _break(self, reason: str) -> None:
        self._broken = reason
        with contextlib.suppress(Exception):
            self._stack.close()

    def close(self) -> None:
        """Say goodbye and close the WebSocket (the server drops the environment)."""
        if self._broken is None:
            with contextlib.suppress(Exception):
                self._ws.send(json.dumps({"type": "close"}))
        self._broken = self._broken or "closed"
        with contextlib.suppress(Exception):
            self._stack.close()
