"""Weights as JSON payloads for vLLM's weight-update endpoint (no file, no vLLM import).

The trainer side (:class:`~agentgym.policies.vllm_server.VLLMServerPolicy`) cuts a state
dict into chunks of at most ``max_bytes`` raw bytes; each chunk is one ``update_info``
object for ``POST /update_weights``::

    {"names": [...], "dtype_names": ["float32", ...], "shapes": [[896, 896], ...],
     "data": "<base64 of the tensors' bytes, one after the other, in names order>"}

``names``/``dtype_names``/``shapes`` are the fields vLLM's own weight-transfer engines use
(``nccl``, ``ipc``); ``data`` carries the bytes themselves, so the payload travels over
plain HTTP to a server on any host. The server side
(:mod:`agentgym.policies.vllm_weights`) turns a chunk back into ``(name, tensor)`` pairs
with :func:`decode_chunk` -- views into one buffer, no copy per tensor.

A tensor larger than ``max_bytes`` travels alone in its chunk. Bytes are native
(little-endian on every platform vLLM runs on); any torch dtype travels, bfloat16 too.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

#: Default raw bytes per ``/update_weights`` request (base64 adds a third on the wire).
DEFAULT_CHUNK_BYTES = 64 << 20


@dataclass(frozen=True)
class Chunk:
    """One ``update_info`` payload: ``as_json()`` is the request's ``update_info``."""

    names: list[str]
    dtype_names: list[str]
    shapes: list[list[int]]
    data: str

    @property
    def raw_bytes(self) -> int:
        return len(self.data) // 4 * 3  # base64: 4 characters per 3 bytes (upper bound)

    def as_json(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "dtype_names": self.dtype_names,
            "shapes": self.shapes,
            "data": self.data,
        }


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def encode_chunks(
    weights: Mapping[str, Any] | Iterable[tuple[str, Any]],
    *,
    max_bytes: int = DEFAULT_CHUNK_BYTES,
    dtype: Any = None,
) -> Iterator[Chunk]:
    """Cut ``weights`` (a state dict, or ``(name, tensor)`` pairs) into :class:`Chunk`\\ s.

    Tensors are moved to the CPU and made contiguous; with ``dtype`` (e.g.
    ``torch.bfloat16``) floating-point tensors are cast first, halving the bytes when the
    server runs in that dtype anyway (vLLM casts on load otherwise).
    """
    import torch

    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    items = weights.items() if isinstance(weights, Mapping) else weights
    names: list[str] = []
    dtypes: list[str] = []
    shapes: list[list[int]] = []
    parts: list[bytes] = []
    size = 0

    def flush() -> Chunk:
        data = base64.b64encode(b"".join(parts)).decode("ascii")
        chunk = Chunk(list(names), list(dtypes), [list(s) for s in shapes], data)
        names.clear(), dtypes.clear(), shapes.clear(), parts.clear()
        return chunk

    for name, tensor in items:
        t = tensor.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        t = t.to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        if names and size + len(raw) > max_bytes:
            yield flush()
            size = 0
        names.append(name)
        dtypes.append(_dtype_name(t.dtype))
        shapes.append(list(t.shape))
        parts.append(raw)
        size += len(raw)
    if names:
        yield flush()


def decode_chunk(info: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(name, tensor)`` pairs of one payload; ``ValueError`` naming what does not add up
    (lengths of the lists, unknown dtypes, byte counts)."""
    import torch

    try:
        names, dtypes, shapes = list(info["names"]), list(info["dtype_names"]), info["shapes"]
        data = info["data"]
    except (KeyError, TypeError) as exc:
        message = f"a weight payload needs names, dtype_names, shapes, data: {exc}"
        raise ValueError(message) from None
    if not (len(names) == len(dtypes) == len(shapes)):
        raise ValueError(
            f"a weight payload has {len(names)} names, {len(dtypes)} dtype_names and "
            f"{len(shapes)} shapes; they must be as many"
        )
    raw = bytearray(base64.b64decode(data, validate=True))
    buffer = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
    out: list[tuple[str, Any]] = []
    offset = 0
    for name, dtype_name, shape in zip(names, dtypes, shapes, strict=True):
        dtype = getattr(torch, str(dtype_name), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"weight {name!r} has an unknown dtype {dtype_name!r}")
        count = math.prod(int(s) for s in shape)
        nbytes = count * dtype.itemsize
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
