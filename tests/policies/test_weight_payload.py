"""The wire format of weight pushes to vLLM servers: chunks of tensors, their bytes pulled
from the trainer over HTTP or inline as base64."""

from __future__ import annotations

import json
import re

import pytest
import torch

from agentgym.policies.weight_payload import PayloadServer, decode_chunk, encode_chunks, fetch


def _weights() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "a.weight": torch.randn(5, 3, generator=gen),
        "b.bias": torch.randn(3, generator=gen).to(torch.bfloat16),  # 6 bytes: misaligns
        "c.weight": torch.randn(2, 2, generator=gen),  # starts at an odd float32 offset
        "d.index": torch.arange(7, dtype=torch.int64),
        "e.empty": torch.empty(0, 4),
        "f.transposed": torch.randn(3, 4, generator=gen).t(),  # not contiguous
    }


def _assert_same(decoded: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> None:
    assert list(decoded) == list(weights)
    for name, tensor in weights.items():
        assert decoded[name].dtype == tensor.dtype and decoded[name].shape == tensor.shape
        assert torch.equal(decoded[name], tensor), name


def test_inline_round_trip_every_dtype_and_layout_through_json() -> None:
    weights = _weights()
    (chunk,) = encode_chunks(weights, max_bytes=1 << 20)
    info = json.loads(chunk.inline_body())["update_info"]
    _assert_same(dict(decode_chunk(info)), weights)


def test_pull_round_trip_through_the_payload_server() -> None:
    weights = _weights()
    (chunk,) = encode_chunks(weights)
    server = PayloadServer("127.0.0.1")
    try:
        key = server.publish(chunk)
        info = json.loads(chunk.pull_body(server.url(key, "127.0.0.1")))["update_info"]
        assert "data" not in info and info["nbytes"] == chunk.nbytes
        _assert_same(dict(decode_chunk(info, fetch(info["url"], info["nbytes"]))), weights)
        server.withdraw(key)
        with pytest.raises(OSError, match="404"):  # urllib's HTTPError
            fetch(info["url"], info["nbytes"])
        with pytest.raises(ValueError, match="sent 0 bytes, 1 were announced"):
            other = server.publish(next(encode_chunks({"e": torch.empty(0)})))
            fetch(server.url(other, "127.0.0.1"), 1)
    finally:
        server.close()


def test_chunks_hold_at_most_max_bytes_unless_one_tensor_is_larger() -> None:
    weights = {f"w{i}": torch.full((10,), float(i)) for i in range(7)}  # 40 bytes each
    weights["big"] = torch.ones(100)  # 400 bytes: alone in its chunk
    chunks = list(encode_chunks(weights, max_bytes=100))
    assert [c.names for c in chunks] == [["w0", "w1"], ["w2", "w3"], ["w4", "w5"], ["w6"], ["big"]]
    assert all(c.nbytes <= 100 for c in chunks[:-1])
    back = {
        n: t for c in chunks for n, t in decode_chunk(json.loads(c.inline_body())["update_info"])
    }
    assert all(torch.equal(back[n], weights[n]) for n in weights)


def test_wire_dtype_casts_floats_only() -> None:
    weights = {"x": torch.randn(4, 4), "ids": torch.arange(3)}
    (chunk,) = encode_chunks(weights, dtype=torch.bfloat16)
    assert chunk.dtype_names == ["bfloat16", "int64"]
    back = dict(decode_chunk(json.loads(chunk.inline_body())["update_info"]))
    assert torch.equal(back["x"], weights["x"].to(torch.bfloat16))
    assert torch.equal(back["ids"], weights["ids"])


def test_payloads_that_do_not_add_up_are_refused_by_name() -> None:
    (chunk,) = encode_chunks({"x": torch.ones(4), "y": torch.ones(2)})
    good = json.loads(chunk.inline_body())["update_info"]
    cases = {
        "as many": {**good, "shapes": [[4]]},
        "unknown dtype 'float7'": {**good, "dtype_names": ["float7", "float32"]},
        "'y' (float32[3]) runs past": {**good, "shapes": [[4], [3]]},
        "4 bytes no tensor claims": {**good, "shapes": [[4], [1]]},
        "needs names, dtype_names, shapes and data or url": {
            k: v for k, v in good.items() if k != "data"
        },
    }
    for message, info in cases.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            decode_chunk(info)
    with pytest.raises(ValueError, match="max_bytes"):
        list(encode_chunks({"x": torch.ones(1)}, max_bytes=0))
