"""Starting an OpenEnv server as a subprocess, shared by the environments of one process.

``OpenEnvEnv(server={"command": [...]})`` runs the command with ``{port}`` replaced by a
free loopback port, waits until ``/health`` answers, and connects. Environments of one
process that name the same command share one server (each gets its own WebSocket
session, so its own environment instance); the server stops when the last of them
closes, or when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence

from agentgym.envs.openenv.client import OpenEnvConnectionError

_LOCK = threading.Lock()
_SERVERS: dict[tuple[str, ...], LaunchedServer] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LaunchedServer:
    """A server subprocess on a loopback port (use :func:`acquire` / :func:`release`)."""

    def __init__(self, command: Sequence[str], ready_timeout: float) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [part.replace("{port}", str(self.port)) for part in command]
        self.users = 0
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ready_timeout
        # one client for the polling: httpx.get builds a new TLS context (~0.3 s) per call
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                time.sleep(0.2)
        log = self.log_tail()
        self.stop()
        raise OpenEnvConnectionError(
            f"the OpenEnv server {' '.join(argv)!r} did not answer on {self.url}/health "
            f"within {ready_timeout:g} s{f': its output ends with:{chr(10)}{log}' if log else ''}"
        )

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._log.flush()
            self._log.seek(0)
            return self._log.read()[-chars:].strip()
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(Exception):
            self._log.close()


def acquire(command: Sequence[str], ready_timeout: float = 180.0) -> LaunchedServer:
    """The running server of ``command``, started if needed; call :func:`release` after."""
    key = tuple(command)
    with _LOCK:
        server = _SERVERS.get(key)
        if server is None or server.proc.poll() is not None:
            server = _SERVERS[key] = LaunchedServer(command, ready_timeout)
        server.users += 1
        return server


def release(server: LaunchedServer) -> None:
    """One user fewer; the last one stops the server."""
    with _LOCK:
        server.users -= 1
        if server.users <= 0:
            for key, running in list(_SERVERS.items()):
                if running is server:
                    del _SERVERS[key]
            server.stop()


@atexit.register
def _stop_all() -> None:
    with _LOCK:
        for server in _SERVERS.values():
            server.stop()
        _SERVERS.clear()
