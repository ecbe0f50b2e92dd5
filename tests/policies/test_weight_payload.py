"""The wire format of weight pushes to vLLM servers: chunks of base64 tensors in JSON."""

from __future__ import annotations

import json
import re

import pytest
import torch

from agentgym.policies.weight_payload import decode_chunk, encode_chunks


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


def test_round_trip_every_dtype_and_layout_through_json() -> None:
    weights = _weights()
    chunks = list(encode_chunks(weights, max_bytes=1 << 20))
    assert len(chunks) == 1
    wire = json.loads(json.dumps({"update_info": chunks[0].as_json()}))["update_info"]
    decoded = dict(decode_chunk(wire))
    assert list(decoded) == list(weights)
    for name, tensor in weights.items():
        assert decoded[name].dtype == tensor.dtype and decoded[name].shape == tensor.shape
        assert torch.equal(decoded[name], tensor), name


def test_chunks_hold_at_most_max_bytes_unless_one_tensor_is_larger() -> None:
    weights = {f"w{i}": torch.full((10,), float(i)) for i in range(7)}  # 40 bytes each
    weights["big"] = torch.ones(100)  # 400 bytes: alone in its chunk
    chunks = list(encode_chunks(weights, max_bytes=100))
    assert [c.names for c in chunks] == [["w0", "w1"], ["w2", "w3"], ["w4", "w5"], ["w6"], ["big"]]
    assert all(c.raw_bytes <= 100 for c in chunks[:-1])
    back = {name: t for c in chunks for name, t in decode_chunk(c.as_json())}
    assert all(torch.equal(back[n], weights[n]) for n in weights)


def test_wire_dtype_casts_floats_only() -> None:
    weights = {"x": torch.randn(4, 4), "ids": torch.arange(3)}
    (chunk,) = encode_chunks(weights, dtype=torch.bfloat16)
    assert chunk.dtype_names == ["bfloat16", "int64"]
    back = dict(decode_chunk(chunk.as_json()))
    assert torch.equal(back["x"], weights["x"].to(torch.bfloat16))
    assert torch.equal(back["ids"], weights["ids"])


def test_payloads_that_do_not_add_up_are_refused_by_name() -> None:
    (chunk,) = encode_chunks({"x": torch.ones(4), "y": torch.ones(2)})
    good = chunk.as_json()
    cases = {
        "as many": {**good, "shapes": [[4]]},
        "unknown dtype 'float7'": {**good, "dtype_names": ["float7", "float32"]},
        "'y' (float32[3]) runs past": {**good, "shapes": [[4], [3]]},
        "4 bytes no tensor claims": {**good, "shapes": [[4], [1]]},
        "needs names, dtype_names, shapes, data": {k: v for k, v in good.items() if k != "data"},
    }
    for message, info in cases.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            decode_chunk(info)
    with pytest.raises(ValueError, match="max_bytes"):
        list(encode_chunks({"x": torch.ones(1)}, max_bytes=0))
