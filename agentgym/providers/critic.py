"""Critics: a value model next to the policy, read before credit and trained after the
policy update (``critic`` for ``gae``; ``hiper_critic``, with two heads, for ``hiper``)."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agentgym.credit import CreditBatch
from agentgym.credit.gae import gae_advantages
from agentgym.params import NonNegativeFloat, PositiveFloat, PositiveInt, UnitInterval
from agentgym.providers.base import InputProvider, ProviderContext, register_input_provider

__all__ = ["Critic", "ValueModel", "clipped_value_loss"]


def _value_model_class() -> Any:
    import torch

    class ValueModel(torch.nn.Module):
        """A causal LM's backbone with a linear value head of ``heads`` outputs."""

        def __init__(self, lm: Any, heads: int) -> None:
            super().__init__()
            base = getattr(lm, lm.base_model_prefix, lm)
            self.backbone = base
            self.head = torch.nn.Linear(lm.config.hidden_size, heads)
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            return self.head(out.last_hidden_state.float())  # [B, T, heads]

    return ValueModel


def ValueModel(lm: Any, heads: int) -> Any:
    """A value model: ``lm``'s backbone (a copy: the caller passes one) and a zero-initialised
    linear head with ``heads`` outputs per position."""
    return _value_model_class()(lm, heads)


def clipped_value_loss(value: Any, old: Any, target: Any, mask: Any, clip: float | None) -> Any:
    r"""PPO's value loss, :math:`\frac12\max\big((V - R)^2, (\mathrm{clip}(V, V_{old} \pm
    c) - R)^2\big)` averaged over ``mask`` (verl's ``compute_value_loss``); ``clip=None``
    is the plain squared error."""
    import torch

    loss = (value - target) ** 2
    if clip is not None:
        clipped = old + torch.clamp(value - old, -clip, clip)
        loss = torch.maximum(loss, (clipped - target) ** 2)
    return 0.5 * (loss * mask).sum() / mask.sum().clamp_min(1.0)


@register_input_provider("critic")
class Critic(InputProvider):
    r"""A value model for PPO's ``gae``: fills ``value``, :math:`V(s_t)` per step, and learns
    after each policy update.

    The critic is a separate model: a copy of the policy's backbone as it is when the run
    starts (``model: policy``, as verl initialises its critic from the actor) or of the
    model in a directory, with a linear head. :math:`V(s_t)` is read at the last token of
    step t's prompt (the state the agent acted in). After the policy update it regresses
    on the GAE returns :math:`R_t = A_t + V(s_t)` computed with the estimator's ``gamma``
    and ``lam`` (before whitening), with PPO's clipped value loss
    (:func:`clipped_value_loss`, ``clip``), ``epochs`` passes in shuffled micro-batches of
    ``actor.micro_batch_size`` steps, AdamW at ``lr``, gradient norm clipped to
    ``grad_clip``. The critic's weights and optimizer are saved in checkpoints and restored
    on ``--resume``.

    Deviation: the issue's other option, a value head on the policy's own backbone, needs
    the value loss inside the policy update (one backward through both); it is not
    implemented here. With DDP each rank trains its own critic on its own rows (they are
    not averaged).

    Cost: one forward over every step's prompt before credit, ``epochs`` forward+backward
    passes after the update (``critic/seconds``).
    """

    provides = ("value",)
    heads: tuple[str, ...] = ("value",)

    def __init__(
        self,
        *,
        model: str = "policy",
        lr: PositiveFloat = 1e-4,
        epochs: PositiveInt = 1,
        clip: NonNegativeFloat | None = 0.5,
        grad_clip: PositiveFloat = 1.0,
        max_context_tokens: PositiveInt = 8192,
        gamma: UnitInterval = 0.99,
        lam: UnitInterval = 0.95,
    ) -> None:
        self.model_spec, self.lr, self.epochs, self.clip = model, lr, epochs, clip
        self.grad_clip, self.max_context_tokens = grad_clip, max_context_tokens
        self.gamma, self.lam = gamma, lam
        self.net: Any = None
        self.optimizer: Any = None
        self._pending: Mapping[str, Any] | None = None
        self._last: dict[str, Any] = {}

    # ------------------------------------------------------------------ the model

    def _ensure(self, ctx: ProviderContext) -> Any:
        if self.net is not None:
            return self.net
        import torch

        if self.model_spec == "policy":
            lm = copy.deepcopy(ctx.require_model(self.name))
        else:
            from agentgym.trainers.model import load_model

            lm, _tok = load_model(self.model_spec, device=str(ctx.device))
        lm = getattr(lm, "module", lm)
        self.net = ValueModel(lm, len(self.heads)).to(ctx.device)
        self.net.float()
        params = [p for p in self.net.parameters()]
        for p in params:
            p.requires_grad_(True)
        self.optimizer = torch.optim.AdamW(params, lr=self.lr)
        if self._pending is not None:
            self._apply(self._pending)
            self._pending = None
        return self.net

    def _inputs(self, ctx: ProviderContext) -> tuple[list[list[int]], list[list[int]]]:
        """Per row: the token ids to read and the position of each head's value."""
        seqs, positions = [], []
        for traj in ctx.columns.trajectories:
            for step in traj.steps:
                ids = list(step.prompt_ids)[-self.max_context_tokens :] or [ctx.pad_id]
                seqs.append(ids)
                positions.append([len(ids) - 1] * len(self.heads))
        return seqs, positions

    def _forward(
        self,
        ctx: ProviderContext,
        seqs: Sequence[Sequence[int]],
        positions: Sequence[Sequence[int]],
        rows: Sequence[int],
    ) -> Any:
        """``[len(rows), heads]`` values (with gradient when the net is training)."""
        import torch

        width = max(len(seqs[i]) for i in rows)
        ids = torch.full((len(rows), width), ctx.pad_id, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for r, i in enumerate(rows):
            ids[r, : len(seqs[i])] = torch.tensor(list(seqs[i]))
            attn[r, : len(seqs[i])] = 1
        out = self.net(ids.to(ctx.device), attn.to(ctx.device))
        pos = torch.tensor([list(positions[i]) for i in rows], device=out.device)
        heads = torch.arange(len(self.heads), device=out.device)
        return out[torch.arange(len(rows), device=out.device)[:, None], pos, heads[None, :]]

    def _values(self, ctx: ProviderContext) -> np.ndarray:
        import torch

        self._ensure(ctx)
        seqs, positions = self._inputs(ctx)
        values = np.zeros((len(seqs), len(self.heads)))
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        self.net.eval()
        with torch.no_grad():
            for start in range(0, len(order), ctx.micro_batch_size):
                chunk = order[start : start + ctx.micro_batch_size]
                values[chunk] = self._forward(ctx, seqs, positions, chunk).cpu().numpy()
        self._last = {"seqs": seqs, "positions": positions, "values": values}
        return values

    # ------------------------------------------------------------------ the hooks

    def provide(self, ctx: ProviderContext) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        values = self._values(ctx)
        ctx.metrics["critic/seconds_values"] = time.perf_counter() - started
        ctx.metrics["critic/value_mean"] = float(values.mean()) if values.size else 0.0
        return {name: values[:, k] for k, name in enumerate(self.heads)}

    def _credit_batch(self, ctx: ProviderContext) -> CreditBatch:
        cols = ctx.columns
        return CreditBatch.from_columns(
            group=cols.group, traj=cols.traj, step=cols.step, reward=ctx.rewards
        )

    def _setting(self, ctx: ProviderContext, name: str, default: float) -> float:
        return float(ctx.settings.get(name, default))

    def targets(self, ctx: ProviderContext) -> tuple[np.ndarray, np.ndarray]:
        """``([rows, heads] regression targets, [rows, heads] mask)`` for this iteration."""
        values = self._last["values"]
        _adv, returns = gae_advantages(
            self._credit_batch(ctx),
            values[:, 0],
            self._setting(ctx, "gamma", self.gamma),
            self._setting(ctx, "lam", self.lam),
        )
        return returns[:, None], np.ones_like(values)

    def after_update(self, ctx: ProviderContext) -> None:
        import torch

        if not self._last or not len(self._last["seqs"]):
            return
        started = time.perf_counter()
        target, mask = self.targets(ctx)
        seqs, positions, old = self._last["seqs"], self._last["positions"], self._last["values"]
        rng = np.random.default_rng([ctx.iteration, 3])
        self.net.train()
        losses = []
        for _epoch in range(self.epochs):
            order = rng.permutation(len(seqs))
            for start in range(0, len(order), ctx.micro_batch_size):
                rows = [int(i) for i in order[start : start + ctx.micro_batch_size]]
                value = self._forward(ctx, seqs, positions, rows)
                dev = value.device
                loss = clipped_value_loss(
                    value,
                    torch.tensor(old[rows], dtype=torch.float32, device=dev),
                    torch.tensor(target[rows], dtype=torch.float32, device=dev),
                    torch.tensor(mask[rows], dtype=torch.float32, device=dev),
                    self.clip,
                )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
                self.optimizer.step()
                losses.append(float(loss.detach()))
        self.net.eval()
        flat_t, flat_v = target[mask > 0], old[mask > 0]
        var = float(np.var(flat_t)) if flat_t.size else 0.0
        ctx.metrics.update(
            {
                "critic/value_loss": float(np.mean(losses)) if losses else 0.0,
                "critic/return_mean": float(flat_t.mean()) if flat_t.size else 0.0,
                "critic/explained_var": 1.0 - float(np.var(flat_t - flat_v)) / var
                if var > 0
                else 0.0,
                "critic/seconds": time.perf_counter() - started,
            }
        )
        self._last = {}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        if self.net is None:
            return dict(self._pending or {})
        return {
            "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        if self.net is None:
            self._pending = state  # applied when the critic is built (it needs the policy)
        else:
            self._apply(state)

    def _apply(self, state: Mapping[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
