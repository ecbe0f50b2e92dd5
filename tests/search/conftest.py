"""Fixtures for the search tests: a private index cache, a real ``serve-retriever``
subprocess, and tiny stand-in HTTP servers (slow, flaky) on loopback ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from agentgym.envs.search.qa import DEFAULT_CORPUS


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Indexes built by tests go to a temporary folder, never to ~/.cache."""
    monkeypatch.setenv("AGENTGYM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agentgym_command() -> list[str]:
    """The ``agentgym`` console script of this interpreter (or the module, if absent)."""
    script = Path(sys.executable).with_name("agentgym")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from agentgym.cli import main; main()"]


@pytest.fixture(scope="session")
def retriever_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``agentgym serve-retriever`` over the shipped corpus, as a real subprocess.

    Yields the ``/retrieve`` URL.
    """
    port = free_port()
    env = {**os.environ, "AGENTGYM_CACHE_DIR": str(tmp_path_factory.mktemp("server-cache"))}
    cmd = [*agentgym_command(), "serve-retriever", "--corpus", str(DEFAULT_CORPUS)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve-retriever exited with {proc.returncode}:\n{proc.stdout.read()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("serve-retriever did not start within 60 s")
            time.sleep(0.1)
        yield f"{base}/retrieve"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def stub_server() -> Iterator[Callable[[Callable[[dict, int], tuple[int, dict]]], str]]:
    """Start a loopback HTTP server whose ``POST`` replies come from ``handler(body, n)``
    (``n`` counts requests from 0); returns its URL. Used for slow and flaky servers."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: Callable[[dict, int], tuple[int, dict]]) -> str:
        counter = {"n": 0}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                n = counter["n"]
                counter["n"] += 1
                status, reply = handler(body, n)
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/retrieve"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
