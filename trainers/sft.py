"""Supervised fine-tuning on demonstrations (the environment's expert, or a JSONL file).

Demonstrations are trajectories. Their prompts are built with the rollout engine's own
:class:`~agentgym.rollout.prompts.EpisodePrompt` and tokenized with the env's tool schemas
(``info["tools"]``), exactly as rollouts and ``agentgym eval`` build them, so SFT teaches
the format RL then samples in, token for token (``tests/rollout/test_prompt_parity.py``).
The loss is the mean cross-entropy of the response tokens (each response ends with the
end-of-turn token, so the model learns to stop).

Demonstrations must come from the environment being trained: :func:`check_demonstrations`
refuses trajectories of another ``env_id``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from agentgym.errors import ConfigError
from agentgym.rollout.prompts import EpisodePrompt, PromptBuilder, prompt_tools
from agentgym.trainers.samples import Sample, collate
from agentgym.trajectory import Trajectory


def _end_ids(tokenizer: Any) -> list[int]:
    eos = tokenizer.eos_token_id
    return [int(eos)] if eos is not None else []


def _same_env(a: str, b: str) -> bool:
    return a.removeprefix("agentgym/") == b.removeprefix("agentgym/")


def check_demonstrations(trajectories: Sequence[Trajectory], env_id: str, source: str) -> None:
    """Refuse demonstrations recorded on another environment than ``env_id``.

    Raises:
        ConfigError: naming the environments found in ``source``, how many trajectories
            each has, and the two ways out.
    """
    counts: dict[str, int] = {}
    for traj in trajectories:
        if not _same_env(traj.env_id, env_id):
            counts[traj.env_id] = counts.get(traj.env_id, 0) + 1
    if not counts:
        return
    found = ", ".join(f"{env} ({n} trajectories)" for env, n in sorted(counts.items()))
    raise ConfigError(
        f"the SFT demonstrations in {source} were recorded on {found}, but the config trains "
        f"{env_id!r} (env.id): a model fine-tuned on another environment's prompts and "
        f"actions learns nothing useful here. Record demonstrations on {env_id} "
        f"(`agentgym rollout --env {env_id} --policy expert ...`) or set env.id to the "
        "demonstrations' environment."
    )


def _infos_before(traj: Trajectory) -> list[dict[str, Any]]:
    """The ``info`` each step's prompt was built from: the reset's, then each step's
    predecessor's (after an unparsable response the engine keeps the env's info)."""
    return [traj.metadata.get("reset_info") or {}] + [s.info or {} for s in traj.steps[:-1]]


def episode_prompts(traj: Trajectory, prompts: PromptBuilder) -> Iterator[EpisodePrompt]:
    """The :class:`EpisodePrompt` of ``traj`` at each of its steps, rebuilt from the
    trajectory with ``prompts`` (the training run's templates). The same object is
    yielded each time, advanced one turn: read it before the next iteration."""
    infos = _infos_before(traj)
    prompt: EpisodePrompt | None = None
    for t, step in enumerate(traj.steps):
        if prompt is None:
            prompt = EpisodePrompt(prompts, traj.instruction, step.observation, infos[0])
        else:
            prev = traj.steps[t - 1]
            prompt.advance(prev.action, prev.response_text, step.observation, infos[t])
        yield prompt


def rerender(traj: Trajectory, prompts: PromptBuilder) -> Trajectory:
    """A copy of ``traj`` whose steps' ``prompt_messages`` are rendered with ``prompts``
    (the training run's templates), whatever templates produced the trajectory."""
    steps = [
        replace(step, prompt_messages=prompt.messages, prompt_ids=[])
        for step, prompt in zip(traj.steps, episode_prompts(traj, prompts), strict=True)
    ]
    return replace(traj, steps=steps)


def prompt_ids_per_step(
    traj: Trajectory, tokenizer: Any, prompts: PromptBuilder | None = None
) -> list[list[int]]:
    """Each step's prompt token ids as SFT trains on them: rebuilt with ``prompts`` when
    given (else the trajectory's own ``prompt_messages``), rendered with the tool schemas
    the env showed at that step."""
    from agentgym.policies.chat import render_prompt_ids

    if prompts is not None:
        return [p.token_ids(tokenizer) for p in episode_prompts(traj, prompts)]
    return [
        render_prompt_ids(tokenizer, step.prompt_messages, tools=prompt_tools(info))
        for step, info in zip(traj.steps, _infos_before(traj), strict=True)
    ]


def sft_samples(
    trajectories: Sequence[Trajectory],
    tokenizer: Any,
    style: str = "window",
    only_successful: bool = True,
    prompts: PromptBuilder | None = None,
    prompt_loss: float = 0.0,
) -> list[Sample]:
    """One sample per step (window) or per trajectory (chat), tokenized with ``tokenizer``.

    With ``prompts`` the prompts are rebuilt with those templates (see
    :func:`episode_prompts`), so demonstrations from any source teach the format RL
    samples in. Responses are the text encoded plus the end-of-turn token. The loss mask
    is 1 on response tokens and ``prompt_loss`` on prompt tokens (0: responses only).
    """
    w = float(prompt_loss)
    end = _end_ids(tokenizer)
    samples: list[Sample] = []
    for i, traj in enumerate(trajectories):
        if only_successful and not traj.success:
            continue
        prompt_ids = prompt_ids_per_step(traj, tokenizer, prompts)
        if style == "chat" and traj.steps:
            ids: list[int] = []
            mask: list[float] = []
            # Render turn by turn so every assistant turn's span is known exactly.
            for step, prompt in zip(traj.steps, prompt_ids, strict=True):
                if prompt[: len(ids)] != ids:  # the template rewrote history: fall back
                    ids, mask = [], []
                    break
                response = list(tokenizer.encode(step.response_text, add_special_tokens=False))
                mask += [w] * (len(prompt) - len(ids)) + [1] * (len(response) + len(end))
                ids = prompt + response + end
            if ids:
                samples.append(_sample(ids, mask, i))
                continue
        for t, (step, prompt) in enumerate(zip(traj.steps, prompt_ids, strict=True)):
            response = list(tokenizer.encode(step.response_text, add_special_tokens=False)) + end
            samples.append(
                _sample(prompt + response, [w] * len(prompt) + [1] * len(response), i, t)
            )
    return samples


def _sample(ids: list[int], mask: list[float], traj: int, step: int = -1) -> Sample:
    return Sample(
        input_ids=ids,
        mask=mask,
        advantages=[0.0] * len(ids),
        old_logprobs=[float("nan")] * len(ids),
        traj_index=traj,
        step_index=step,
    )


def sft_train(
    model: torch.nn.Module,
    samples: Sequence[Sample],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    pad_id: int,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
    on_batch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Train ``model`` on ``samples`` with AdamW; returns the last epoch's mean loss."""
    if not samples:
        raise ValueError("SFT got no demonstrations (no successful trajectories?)")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    total = epochs * -(-len(samples) // batch_size)
    # Cosine decay to 10% of ``lr``: ending on a small step size gives a markedly more
    # reliable model than a constant rate (tiny models from different seeds ranged from
    # 27% to 59% held-out success with a constant rate).
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(k, total) / total))
    )
    model.train()
    epoch_loss = float("nan")
    for _ in range(epochs):
        order = rng.permutation(len(samples))
        losses = []
        for start in range(0, len(order), batch_size):
            batch = collate([samples[i] for i in order[start : start + batch_size]], pad_id)
            batch = batch.to(device)
            out = model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False
            )
            logits = out.logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1), reduction="none"
            ).view_as(batch.mask)
            loss = (nll * batch.mask).sum() / batch.mask.sum().clamp_min(1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if on_batch is not None:
                on_batch({"sft/loss": losses[-1]})
        epoch_loss = float(np.mean(losses))
    return {"sft/loss": epoch_loss, "sft/samples": float(len(samples))}
