"""The viewer's HTTP server: the page's static files and a small JSON API, on loopback.

Standard library only (``http.server``): the page is a handful of requests, and the
server starts in milliseconds inside tests and the CLI alike.

Routes (GET only):

=============================  ==========================================================
``/``                          the page (``static/index.html``)
``/static/<name>``             the page's script and style sheet (shipped in the package)
``/api/overview``              :meth:`ViewSource.overview`
``/api/iteration/<n>``         :meth:`ViewSource.iteration` (training runs)
``/api/task?id=<task_id>``     :meth:`ViewSource.task` (evaluations)
=============================  ==========================================================
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agentgym.viewer.data import ViewerError, ViewSource, open_source

__all__ = ["ViewerServer"]

_STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


def _static(name: str) -> bytes:
    return resources.files("agentgym.viewer").joinpath("static", name).read_bytes()


class ViewerServer:
    """Serves one run or evaluation directory.

    >>> server = ViewerServer("runs/quickstart", port=0).start()   # doctest: +SKIP
    >>> server.url                                                  # doctest: +SKIP
    'http://127.0.0.1:41234/'
    >>> server.stop()                                               # doctest: +SKIP

    Args:
        path: a training run directory or an ``agentgym eval`` results directory.
        host: address to bind; the default serves this machine only.
        port: TCP port; 0 picks a free one.

    Raises:
        ViewerError: ``path`` is neither kind of directory.
        OSError: the port is taken (the CLI says to pick another with ``--port``).
    """

    def __init__(self, path: str | Path, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.source = open_source(path)
        self._httpd = ThreadingHTTPServer((host, port), _handler(self.source))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"

    def start(self) -> ViewerServer:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="agentgym-viewer", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` or Ctrl-C."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(source: ViewSource) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "agentgym-viewer"

        def do_GET(self) -> None:
            self._respond(head=False)

        def do_HEAD(self) -> None:
            self._respond(head=True)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the CLI prints the address once; errors come back as JSON

        def _respond(self, head: bool) -> None:
            url = urlsplit(self.path)
            route = url.path
            try:
                if route in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, _static("index.html"), _STATIC["index.html"], head)
                elif route.startswith("/static/") and route[len("/static/") :] in _STATIC:
                    name = route[len("/static/") :]
                    self._send(HTTPStatus.OK, _static(name), _STATIC[name], head)
                elif route == "/api/overview":
                    self._json(HTTPStatus.OK, source.overview(), head)
                elif route.startswith("/api/iteration/"):
                    number = route[len("/api/iteration/") :]
                    if not number.isdigit():
                        raise ViewerError(f"iteration must be a number, got {number!r}")
                    self._json(HTTPStatus.OK, source.iteration(int(number)), head)
                elif route == "/api/task":
                    ids = parse_qs(url.query).get("id")
                    if not ids:
                        raise ViewerError("/api/task needs ?id=TASK_ID")
                    self._json(HTTPStatus.OK, source.task(ids[0]), head)
                else:
                    self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {route}"}, head)
            except ViewerError as exc:
                self._json(HTTPStatus.NOT_FOUND, {"error": str(exc)}, head)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser went away
            except Exception as exc:  # a bad file must not kill the server
                self._json(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    {"error": f"{type(exc).__name__}: {exc}"},
                    head,
                )

        def _json(self, status: HTTPStatus, data: Any, head: bool) -> None:
            # ASCII escapes carry any text, lone surrogates included, to JSON.parse
            body = json.dumps(data, ensure_ascii=True, allow_nan=False).encode("ascii")
            self._send(status, body, "application/json", head)

        def _send(self, status: HTTPStatus, body: bytes, ctype: str, head: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler
