"""A synchronous connection to one MCP server (stdio subprocess or streamable HTTP).

Gymnasium environments are synchronous and the ``mcp`` SDK is async, so a
:class:`MCPConnection` runs the SDK's :class:`mcp.Client` on an event loop in its own
thread and hands calls to it. Nothing here raises inside an episode: a tool that fails, a
call that times out or a server that died comes back as a :class:`ToolResult` with
``failure`` set, which the environment shows to the agent. Only opening the connection
raises (:class:`MCPConnectionError`), because an env without its server cannot start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import shlex
import sys
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agentgym.errors import AgentGymError, ConfigError

#: HTTP header carrying a per-connection id, so a server that serves many environment
#: instances at once can keep one state per instance (the shipped inventory server does).
WORKSPACE_HEADER = "agentgym-workspace"
#: How much of a stdio server's stderr an error message quotes.
_STDERR_TAIL = 2000

Failure = Literal["tool_error", "timeout", "disconnected", "protocol"]


class MCPConnectionError(AgentGymError, ConnectionError):
    """The MCP server could not be started or reached, or it stopped answering."""


@dataclass(frozen=True)
class ServerSpec:
    """Where an MCP server is: a stdio command or a streamable-HTTP URL.

    Build one with :meth:`parse` from any of the forms configs use.
    """

    transport: Literal["stdio", "http"]
    command: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: Any) -> ServerSpec:
        """A spec from ``"http://host:port/mcp"``, a command line (``"python -m srv"`` or
        ``["python", "-m", "srv"]``), a mapping (``{"command": ..., "args": [...], "env":
        {...}, "cwd": ...}`` or ``{"url": ..., "headers": {...}}``) or a :class:`ServerSpec`.
        """
        if isinstance(spec, ServerSpec):
            return spec
        if isinstance(spec, str):
            if spec.startswith(("http://", "https://")):
                return cls("http", url=spec)
            parts = shlex.split(spec)
            if not parts:
                raise ConfigError("server='' is empty; give a command line or an http(s) URL")
            return cls("stdio", command=tuple(parts))
        if isinstance(spec, Mapping):
            known = {"command", "args", "env", "cwd", "url", "headers"}
            unknown = sorted(set(spec) - known)
            if unknown:
                raise ConfigError(f"server has unknown key(s) {unknown}; valid: {sorted(known)}")
            if "url" in spec:
                if "command" in spec:
                    raise ConfigError("server has both 'url' and 'command'; give one")
                return cls("http", url=str(spec["url"]), headers=dict(spec.get("headers") or {}))
            if "command" not in spec:
                raise ConfigError("server needs a 'command' (stdio) or a 'url' (HTTP)")
            command = spec["command"]
            head = shlex.split(command) if isinstance(command, str) else list(command)
            args = [str(a) for a in spec.get("args") or ()]
            env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()} or None
            cwd = str(spec["cwd"]) if spec.get("cwd") else None
            return cls("stdio", command=(*head, *args), env=env, cwd=cwd)
        if isinstance(spec, Sequence) and spec and all(isinstance(p, str) for p in spec):
            return cls("stdio", command=tuple(spec))
        raise ConfigError(
            f"server={spec!r} is not a server spec; give an http(s) URL, a command line, "
            "or {'command': ..., 'args': [...]}"
        )

    def describe(self) -> str:
        return self.url if self.transport == "http" else shlex.join(self.command)


@dataclass(frozen=True)
class ToolInfo:
    """One tool of the server, as listed by ``tools/list``."""

    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool

    def openai_schema(self) -> dict[str, Any]:
        """The tool as an OpenAI function schema (the MCP input schema is JSON Schema)."""
        params = {k: v for k, v in self.input_schema.items() if k != "title"}
        params.setdefault("type", "object")
        params.setdefault("properties", {})
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


@dataclass(frozen=True)
class ToolResult:
    """What a tool call gave: its text, and ``failure`` when it did not succeed."""

    text: str
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


def _content_text(result: Any) -> str:
    """The text of a ``CallToolResult``: its text blocks, and a note for other content."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or ():
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} content, {getattr(block, 'mime_type', '?')}]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource link {block.uri}]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    if not parts and getattr(result, "structured_content", None) is not None:
        import json

        parts.append(json.dumps(result.structured_content, ensure_ascii=False, sort_keys=True))
    return "\n".join(parts)


class MCPConnection:
    """A live connection to an MCP server, used synchronously.

    Args:
        server: anything :meth:`ServerSpec.parse` accepts.
        connect_timeout: seconds to start the server and list its tools.
        call_timeout: default seconds one tool call may take.
        workspace: the value of the ``agentgym-workspace`` header on HTTP connections
            (default: a fresh random id per connection).

    ``tools`` lists the server's tools (every page of ``tools/list``). Call :meth:`close`
    when done; a stdio server process ends with its connection.
    """

    def __init__(
        self,
        server: Any,
        *,
        connect_timeout: float = 30.0,
        call_timeout: float = 30.0,
        workspace: str | None = None,
    ) -> None:
        self.spec = ServerSpec.parse(server)
        if connect_timeout <= 0 or call_timeout <= 0:
            raise ConfigError("connect_timeout and call_timeout must be > 0")
        self.call_timeout = float(call_timeout)
        self.workspace = workspace or uuid.uuid4().hex
        self.tools: list[ToolInfo] = []
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._alive = False
        # Lives as long as the connection (closed in close()), so no `with` block.
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._thread = threading.Thread(target=self._run, name="agentgym-mcp", daemon=True)
        self._thread.start()
        if not self._ready.wait(connect_timeout):
            self.close()
            raise MCPConnectionError(
                f"the MCP server {self.spec.describe()!r} did not answer within "
                f"{connect_timeout} s{self._stderr_note()}"
            )
        if self._error is not None or not self._alive:
            error = self._error
            self.close()
            raise MCPConnectionError(
                f"could not connect to the MCP server {self.spec.describe()!r}: "
                f"{_describe(error)}{self._stderr_note()}"
            ) from error

    # ------------------------------------------------------------ the event-loop thread

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client

        if self.spec.transport == "stdio":
            params = StdioServerParameters(
                command=self.spec.command[0],
                args=list(self.spec.command[1:]),
                env=dict(self.spec.env) if self.spec.env else None,
                cwd=self.spec.cwd,
            )
            return stdio_client(params, errlog=self._stderr)
        import httpx2  # the mcp SDK's HTTP client

        headers = {WORKSPACE_HEADER: self.workspace, **self.spec.headers}
        # The SDK's own defaults: 30 s to connect or write, 300 s for a response stream
        # (each call has its own, shorter limit).
        http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
        await stack.enter_async_context(http)
        return streamable_http_client(self.spec.url, http_client=http)

    def _run(self) -> None:
        with contextlib.suppress(BaseException):
            asyncio.run(self._main())
        self._alive = False
        self._ready.set()

    async def _main(self) -> None:
        from mcp import Client

        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = Client(await self._transport(stack), cache=None)
                await stack.enter_async_context(client)
                self._client = client
                self.tools = await self._list_tools(client)
                self._alive = True
                self._ready.set()
                await self._closing.wait()
        except BaseException as exc:
            self._error = _unwrap(exc)
        finally:
            self._alive = False
            self._ready.set()

    @staticmethod
    async def _list_tools(client: Any) -> list[ToolInfo]:
        tools: list[ToolInfo] = []
        cursor = None
        for _ in range(100):  # a server that pages forever cannot hang us
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                annotations = tool.annotations
                tools.append(
                    ToolInfo(
                        name=tool.name,
                        description=" ".join((tool.description or tool.title or "").split()),
                        input_schema=dict(tool.input_schema or {}),
                        read_only=bool(annotations and annotations.read_only_hint),
                    )
                )
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    # ------------------------------------------------------------ public API

    @property
    def alive(self) -> bool:
        """Whether the connection is open (the server has not gone away)."""
        return self._alive and self._thread.is_alive()

    def call_tool(
        self, name: str, arguments: Mapping[str, Any], timeout: float | None = None
    ) -> ToolResult:
        """Call ``name`` with ``arguments``; never raises (see :class:`ToolResult`)."""
        if not self.alive or self._loop is None:
            return ToolResult(
                f"the MCP server {self.spec.describe()!r} is not connected"
                f"{': ' + _describe(self._error) if self._error else ''}",
                "disconnected",
            )
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        limit = self.call_timeout if timeout is None else float(timeout)
        coro = self._client.call_tool(name, dict(arguments), read_timeout_seconds=limit)
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            result = future.result(limit + 5.0)
        except (cf.TimeoutError, TimeoutError):
            future.cancel()
            return ToolResult(f"the tool call {name!r} timed out after {limit:g} s", "timeout")
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                return ToolResult(f"the tool call {name!r} timed out after {limit:g} s", "timeout")
            if exc.code == CONNECTION_CLOSED:
                self._lost(exc)
                return ToolResult(
                    f"the connection to the MCP server was lost ({exc})", "disconnected"
                )
            return ToolResult(f"the server refused the call: {exc}", "protocol")
        except (cf.CancelledError, asyncio.CancelledError):
            return ToolResult("the connection to the MCP server was lost", "disconnected")
        except Exception as exc:
            if not self.alive:
                return ToolResult(
                    f"the connection to the MCP server was lost ({_describe(exc)})", "disconnected"
                )
            return ToolResult(f"the call failed: {_describe(exc)}", "protocol")
        text = _content_text(result)
        if result.is_error:
            return ToolResult(text or "the tool reported an error", "tool_error")
        return ToolResult(text)

    def _lost(self, exc: BaseException) -> None:
        """The server went away: stop the loop; :attr:`alive` is false from now on."""
        self._alive = False
        self._error = exc
        loop, closing = self._loop, self._closing
        if loop is not None and closing is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(closing.set)

    def close(self) -> None:
        """Close the connection (and end a stdio server process). Safe to call twice."""
        loop, closing = self._loop, self._closing
        if loop is not None and closing is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(closing.set)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(10.0)
        self._alive = False
        with contextlib.suppress(Exception):
            self._stderr.close()

    def stderr_tail(self) -> str:
        """The last lines a stdio server wrote to its stderr (for error messages)."""
        try:
            self._stderr.flush()
            self._stderr.seek(0, 2)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - _STDERR_TAIL))
            return self._stderr.read().strip()
        except (OSError, ValueError):
            return ""

    def _stderr_note(self) -> str:
        tail = self.stderr_tail() if self.spec.transport == "stdio" else ""
        return f"\nserver stderr (last lines):\n{tail}" if tail else ""

    def __enter__(self) -> MCPConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _unwrap(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (anyio task groups wrap errors in them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no error recorded"
    exc = _unwrap(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


if sys.version_info < (3, 11):  # pragma: no cover -- BaseExceptionGroup is built in from 3.11
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found]
