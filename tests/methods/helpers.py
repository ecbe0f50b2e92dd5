"""Hand-built trajectories and contexts for the model-in-the-loop method tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agentgym.providers import ProviderContext
from agentgym.trajectory import Step, Trajectory, flatten


def traj(
    group: str,
    k: int,
    *,
    steps: int = 1,
    success: bool = False,
    rewards: Sequence[float] | None = None,
    valid: Sequence[bool] | None = None,
    task: str = "t0",
) -> Trajectory:
    """A trajectory of ``steps`` turns in group ``group`` (its ``k``-th rollout)."""
    rewards = list(rewards) if rewards is not None else [0.0] * (steps - 1) + [float(success)]
    valid = list(valid) if valid is not None else [True] * steps
    return Trajectory(
        env_id="Test-v0",
        task_id=task,
        group_id=group,
        traj_id=f"{group}/{k}",
        instruction=f"solve {task}",
        status="terminated",
        success=success,
        score=float(success),
        steps=[
            Step(
                index=t,
                observation=f"obs {t}",
                response_text=f"<action>move {k}.{t}</action>",
                action=f"move {k}.{t}" if valid[t] else None,
                reward=float(rewards[t]),
                env_reward=float(rewards[t]),
                action_valid=bool(valid[t]),
                prompt_ids=[1, 2, 3 + t],
                response_ids=[7, 8],
            )
            for t in range(steps)
        ],
    )


def context(trajectories: list[Trajectory], judge=None, **kwargs) -> ProviderContext:  # type: ignore[no-untyped-def]
    columns = flatten(trajectories)
    return ProviderContext(
        iteration=1, columns=columns, rewards=columns.reward.copy(), judge=judge, **kwargs
    )


def group_normalise(values: Sequence[float]) -> np.ndarray:
    """(x - mean) / (sample std + 1e-6), 0 for a constant group (the credit convention)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2 or np.all(x == x[0]):
        return np.zeros_like(x)
    return (x - x.mean()) / (x.std(ddof=1) + 1e-6)


def train_to_answer(src, dst, answer: str, prompts: Sequence[str], *, steps: int = 100):  # type: ignore[no-untyped-def]
    """Copy the model at ``src`` to ``dst`` after teaching it to answer every prompt of
    ``prompts`` (user messages) with ``answer`` and end its turn: a judge whose verdict is
    known, to serve over HTTP."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agentgym.policies.chat import render_prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    target = [*tokenizer.encode(answer, add_special_tokens=False), tokenizer.eos_token_id]
    rows = [render_prompt_ids(tokenizer, [{"role": "user", "content": p}]) for p in prompts]
    width = max(len(r) for r in rows) + len(target)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, prompt in enumerate(rows):
        seq = prompt + target
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, len(prompt) : len(seq)] = torch.tensor(target)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        model.train()
        for _ in range(steps):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    model.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    return dst
