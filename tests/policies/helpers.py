"""Helpers for the policy tests: reference log-probs and a tiny model that learned to stop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

#: The answer the "trained" tiny model gives to every prompt (then ``<|im_end|>``).
ANSWER = "<action>up</action>"

PROMPTS = [
    [{"role": "user", "content": "You are @. Push the box ($) onto the target (.)."}],
    [
        {"role": "system", "content": "Answer with one action."},
        {"role": "user", "content": "FFFF\nHHHF\nFPFG"},
    ],
    [{"role": "user", "content": "######\n# .$ #\n#   @#\n######"}],
    [{"role": "user", "content": "You moved right.\nFSPG"}],
]


def teacher_forced_logprobs(
    model: torch.nn.Module, prompt_ids: Sequence[int], token_ids: Sequence[int]
) -> list[float]:
    """log_softmax of the model's logits at each response token, in one forward pass."""
    ids = torch.tensor([list(prompt_ids) + list(token_ids)])
    with torch.no_grad():
        logprobs = model(ids).logits[0].float().log_softmax(-1)
    start = len(prompt_ids) - 1
    return [logprobs[start + j, t].item() for j, t in enumerate(token_ids)]


def max_abs_diff(a: Sequence[float], b: Sequence[float]) -> float:
    assert len(a) == len(b), (len(a), len(b))
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)


def _learned(logits: torch.Tensor, labels: torch.Tensor) -> bool:
    """Whether every labelled token is predicted with probability above 0.9."""
    probs = logits[:, :-1].float().softmax(-1)
    target = labels[:, 1:]
    keep = target != -100
    picked = probs.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return bool((picked[keep] > 0.9).all())


def train_to_stop(
    src: Path, dst: Path, *, steps: int = 30, max_steps: int = 400, seed: int = 0
) -> Path:
    """Copy the tiny model at ``src`` to ``dst`` after teaching it to answer ``ANSWER`` and
    end its turn, so greedy responses are short and end with the EOS token.

    Trains at least ``steps`` steps, then goes on (up to ``max_steps``) until every answer
    token is the clear argmax (probability above 0.9) under teacher forcing: greedy
    decoding then gives the answer whatever the tiny model's random start was, with a
    margin wide enough that vLLM's and transformers' kernels agree on it. Raw token
    prompts (the ``[5, 6, 7]`` of the policy tests) are taught to continue the cycle
    5, 6, 7 without ever ending, so tests that need a response cut by ``max_tokens``
    get one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agentgym.policies.chat import render_prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    answer = [*tokenizer.encode(ANSWER, add_special_tokens=False), tokenizer.eos_token_id]
    rows = [render_prompt_ids(tokenizer, messages) for messages in PROMPTS]
    width = max(len(r) for r in rows) + len(answer)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, prompt in enumerate(rows):
        seq = prompt + answer
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, len(prompt) : len(seq)] = torch.tensor(answer)
    raw = torch.tensor([[5, 6, 7] * 14, [6, 7, 5] * 14])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for step in range(max_steps):
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
            if step >= steps and _learned(out.logits.detach(), labels):
                break
            loss = out.loss + model(input_ids=raw, labels=raw).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        else:
            raise AssertionError(f"the tiny model did not learn {ANSWER!r} in {max_steps} steps")
    model.eval()
    model.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    for name in ("agentgym_tiny.json",):
        if (src / name).exists():
            (dst / name).write_text((src / name).read_text())
    return dst
