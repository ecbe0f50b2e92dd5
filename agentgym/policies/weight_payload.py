"""Weights on the wire for vLLM's weight-update endpoint (no file, no vLLM import).

The trainer side (:class:`~agentgym.policies.vllm_server.VLLMServerPolicy`) cuts a state
dict into chunks of at most ``max_bytes`` raw bytes (:func:`encode_chunks`); each chunk is
one ``update_info`` object of ``POST /update_weights``. ``names``/``dtype_names``/
``shapes`` are the fields vLLM's own weight-transfer engines use (``nccl``, ``ipc``); the
bytes travel one of two ways:

* ``pull`` (the default): ``{"url": "http://TRAINER:PORT/TOKEN/3", "nbytes": N, ...}``. The
  trainer serves the chunk's raw bytes from memory (:class:`PayloadServer`, a small HTTP
  server in the trainer's process, one random token per push) and each vLLM server fetches
  them: no base64, no JSON parsing of the tensors, each server reads at its own pace. The
  servers must be able to open a connection to the trainer.
* ``inline``: ``{"data": "<base64>", ...}`` inside the request itself. Nothing but the
  request, so it works when the servers cannot reach the trainer; base64 and JSON make it
  several times slower for large models.

The server side (:mod:`agentgym.policies.vllm_weights`) turns a chunk back into
``(name, tensor)`` pairs with :func:`decode_chunk` (views into one buffer, no copy per
tensor). Bytes are native (little-endian on every platform vLLM runs on); any torch dtype
travels, bfloat16 too. A tensor larger than ``max_bytes`` travels alone in its chunk.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

try:  # SIMD base64 (a vLLM dependency, so always there on the server side)
    import pybase64 as _b64
except ImportError:  # pragma: no cover - the trainer side without vLLM installed
    import base64 as _b64  # type: ignore[no-redef]

#: Default raw bytes per ``/update_weights`` request.
DEFAULT_CHUNK_BYTES = 256 << 20


@dataclass
class Chunk:
    """Some tensors' metadata and raw bytes (views of the CPU tensors, not copies)."""

    names: list[str]
    dtype_names: list[str]
    shapes: list[list[int]]
    buffers: list[memoryview] = field(repr=False)
    _keep: list[Any] = field(default_factory=list, repr=False)  # the tensors viewed

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buffers)

    def _head(self) -> dict[str, Any]:
        return {"names": self.names, "dtype_names": self.dtype_names, "shapes": self.shapes}

    def inline_body(self) -> bytes:
        """The ``/update_weights`` request body with the bytes inside, base64-encoded."""
        data = _b64.b64encode(b"".join(self.buffers))
        head = json.dumps(self._head())[:-1]  # base64 is JSON-safe: no escaping needed
        return b'{"update_info": ' + head.encode() + b', "data": "' + data + b'"}}'

    def pull_body(self, url: str) -> bytes:
        """The ``/update_weights`` request body pointing at ``url`` for the bytes."""
        return json.dumps(
            {"update_info": {**self._head(), "url": url, "nbytes": self.nbytes}}
        ).encode()


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def encode_chunks(
    weights: Mapping[str, Any] | Iterable[tuple[str, Any]],
    *,
    max_bytes: int = DEFAULT_CHUNK_BYTES,
    dtype: Any = None,
) -> Iterator[Chunk]:
    """Cut ``weights`` (a state dict, or ``(name, tensor)`` pairs) into :class:`Chunk`\\ s.

    Tensors are moved to the CPU and made contiguous (copies only where needed); with
    ``dtype`` (e.g. ``torch.bfloat16``) floating-point tensors are cast first, halving the
    bytes when the servers run in that dtype anyway (vLLM casts on load otherwise).
    """
    import torch

    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    items = weights.items() if isinstance(weights, Mapping) else weights
    chunk = Chunk([], [], [], [])
    for name, tensor in items:
        t = tensor.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        t = t.to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else memoryview(b"")
        if chunk.names and chunk.nbytes + raw.nbytes > max_bytes:
            yield chunk
            chunk = Chunk([], [], [], [])
        chunk.names.append(name)
        chunk.dtype_names.append(_dtype_name(t.dtype))
        chunk.shapes.append(list(t.shape))
        chunk.buffers.append(raw)
        chunk._keep.append(t)
    if chunk.names:
        yield chunk


def decode_chunk(
    info: Mapping[str, Any], raw: bytes | bytearray | None = None
) -> list[tuple[str, Any]]:
    """``(name, tensor)`` pairs of one ``update_info``: its bytes are ``raw`` (fetched from
    its ``url``) or its base64 ``data``. ``ValueError`` naming what does not add up
    (lengths of the lists, unknown dtypes, byte counts)."""
    import torch

    try:
        names, dtypes, shapes = list(info["names"]), list(info["dtype_names"]), info["shapes"]
        if raw is None:
            raw = bytearray(_b64.b64decode(info["data"], validate=True))
    except (KeyError, TypeError) as exc:
        message = f"a weight payload needs names, dtype_names, shapes and data or url: {exc}"
        raise ValueError(message) from None
    if not (len(names) == len(dtypes) == len(shapes)):
        raise ValueError(
            f"a weight payload has {len(names)} names, {len(dtypes)} dtype_names and "
            f"{len(shapes)} shapes; they must be as many"
        )
    if not isinstance(raw, bytearray):
        raw = bytearray(raw)  # torch.frombuffer wants a writable buffer
    buffer = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
    out: list[tuple[str, Any]] = []
    offset = 0
    for name, dtype_name, shape in zip(names, dtypes, shapes, strict=True):
        dtype = getattr(torch, str(dtype_name), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"weight {name!r} has an unknown dtype {dtype_name!r}")
        nbytes = math.prod(int(s) for s in shape) * dtype.itemsize
        if offset + nbytes > len(raw):
            raise ValueError(
                f"weight {name!r} ({dtype_name}{list(shape)}) runs past the payload's "
                f"{len(raw)} bytes"
            )
        view = buffer[offset : offset + nbytes]
        if offset % dtype.itemsize:  # after a tensor of a smaller dtype: realign by a copy
            view = view.clone()
        out.append((name, view.view(dtype).reshape(shape)))
        offset += nbytes
    if offset != len(raw):
        raise ValueError(f"a weight payload has {len(raw) - offset} bytes no tensor claims")
    return out


def fetch(url: str, nbytes: int, timeout: float = 600.0) -> bytearray:
    """The raw bytes a :class:`PayloadServer` serves at ``url`` (exactly ``nbytes``)."""
    import urllib.request

    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    got = 0
    with urllib.request.urlopen(url, timeout=timeout) as response:
        while got < nbytes:
            n = response.readinto(view[got:])
            if not n:
                break
            got += n
    if got != nbytes:
        raise ValueError(f"{url} sent {got} bytes, {nbytes} were announced")
    return buffer


class PayloadServer:
    """Serves chunks' raw bytes over HTTP from memory, for the ``pull`` transfer.

    :meth:`publish` serves a chunk under a random key (only who is told its URL can fetch
    it); :meth:`withdraw` forgets it. Binds ``bind_host`` (all
    interfaces by default: vLLM servers on other hosts fetch from it) on a free port.
    """

    def __init__(self, bind_host: str = "0.0.0.0") -> None:
        chunks: dict[str, Chunk] = {}
        self._chunks = chunks

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                chunk = chunks.get(self.path.lstrip("/"))
                if chunk is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(chunk.nbytes))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    for part in chunk.buffers:
                        self.wfile.write(part)

        self._server = ThreadingHTTPServer((bind_host, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="agentgym-weight-payloads", daemon=True
        )
        self._thread.start()

    def publish(self, chunk: Chunk) -> str:
        """Serve ``chunk`` under a new random key (see :meth:`url`)."""
        key = secrets.token_urlsafe(24)
        self._chunks[key] = chunk
        return key

    def url(self, key: str, host: str) -> str:
        """The URL of a published chunk, with ``host`` this machine's address as the
        fetching server sees it."""
        return f"http://{host}:{self.port}/{key}"

    def withdraw(self, key: str) -> None:
        self._chunks.pop(key, None)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._chunks.clear()
