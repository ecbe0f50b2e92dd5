"""Fixtures of the method tests: one tiny model (random weights) for teacher forcing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    """(model, tokenizer, directory) of a one-layer Qwen2 model with a tokenizer trained on
    a few sentences: enough for exact log-prob checks, in about a second."""
    from agentgym.models import build_tiny_model
    from agentgym.trainers.model import load_model

    texts = [
        "Who wrote the book? <search> author of the book </search> <answer> Ada Lovelace </answer>",
        "The capital is Paris. <information> Paris is a city </information> Score: 7",
    ] * 20
    out = tmp_path_factory.mktemp("tiny-lm")
    build_tiny_model(texts, out, layers=1, hidden=64, vocab_size=300, max_positions=512)
    model, tokenizer = load_model(str(out))
    return model, tokenizer, out
