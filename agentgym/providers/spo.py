"""SPO's persistent per-task value tracker (``spo_tracker``) and its prioritised task
sampler (``algorithm.task_sampler: {name: spo}``)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from agentgym.params import NonNegativeFloat, PositiveFloat, PositiveInt, UnitInterval
from agentgym.providers.base import InputProvider, ProviderContext, register_input_provider
from agentgym.task_samplers import TaskSampler, TaskSamplerContext, register_task_sampler

__all__ = ["SPOSampler", "SPOTracker"]


@register_input_provider("spo_tracker")
class SPOTracker(InputProvider):
    r"""SPO's KL-adaptive Beta value tracker: a persistent success-rate estimate per task.

    Each task k keeps a Beta posterior :math:`(\alpha_k, \beta_k)` (prior
    :math:`\alpha = \beta =` ``prior``). Before credit it fills ``spo_baseline``: per row,
    :math:`\hat v_k = \alpha_k / (\alpha_k + \beta_k)` of the row's task *before* this
    iteration's update. After the policy update, for each task played,

    .. math::
        D_k = \frac{1}{|y|}\sum_j \big|\log\pi_{k}^{last}(y_j) - \log\pi_\theta(y_j)\big|,
        \qquad \rho_k = \mathrm{clip}\big(2^{-D_k / D_{half}}, \rho_{min}, \rho_{max}\big),

    .. math::
        \alpha_k \leftarrow \rho_k \alpha_k + r_k,\qquad
        \beta_k \leftarrow \rho_k \beta_k + (1 - r_k)

    where :math:`y` are the response tokens of the task's previous rollout (kept from the
    last time it was played, at most ``kl_samples`` samples), :math:`\pi_k^{last}` their
    log-probs under the policy after that iteration's update (stored then), and
    :math:`\pi_\theta` the current policy (one extra forward). A task played for the first
    time has :math:`D = 0`, so :math:`\rho = \rho_{max}`. :math:`r_k` is the trajectory's
    return clipped to [0, 1] (summed over the task's trajectories when it was played
    several times in the iteration). The tracker (posteriors, kept rollouts, counts) is
    saved in checkpoints and restored on ``--resume``.

    Source: Xu & Ding 2026, "Single-stream Policy Optimization" (arXiv:2509.13232) and its
    reference code (verl-project/verl-recipe ``spo/spo_ray_trainer.py``), which this
    follows: the mean *absolute* log-ratio as the divergence estimate, :math:`D_{half}` =
    0.06 and :math:`\rho_{max}` = 0.96 (constants there), the prior 0.5/0.5 (its
    no-offline-data case), the update after the policy update. Deviations: the reference
    can warm-start the tracker from offline samples (not done here); its
    :math:`\rho_{min}` is a config value whose default we could not read -- 0.875 here
    (an effective memory :math:`1/(1-\rho)` of 8 to 25 samples); multi-turn trajectories
    use their return; the kept rollout is at most ``kl_samples`` training samples.

    Cost: after each update, one forward over the kept samples of the tasks played
    (current policy on the previous rollout) and one over this iteration's samples (their
    log-probs, kept for next time): ``spo/forward_seconds``.
    """

    provides = ("spo_baseline",)

    def __init__(
        self,
        *,
        prior: PositiveFloat = 0.5,
        d_half: PositiveFloat = 0.06,
        rho_min: UnitInterval = 0.875,
        rho_max: UnitInterval = 0.96,
        kl_samples: PositiveInt = 4,
    ) -> None:
        if rho_min > rho_max:
            raise ValueError(f"spo_tracker: rho_min {rho_min} > rho_max {rho_max}")
        self.prior, self.d_half = prior, d_half
        self.rho_min, self.rho_max, self.kl_samples = rho_min, rho_max, kl_samples
        self.alpha: dict[str, float] = {}
        self.beta: dict[str, float] = {}
        self.plays: dict[str, int] = {}
        #: per task: the kept rollout, [(input_ids, response positions, log-probs)]
        self.kept: dict[str, list[tuple[list[int], list[int], list[float]]]] = {}

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        low, high = settings.get("rho_min", 0.875), settings.get("rho_max", 0.96)
        if low > high:
            raise ValueError(f"spo_tracker: rho_min {low} > rho_max {high}")

    def value(self, task_id: str) -> float:
        """:math:`\\hat v` of a task (the prior mean for a task never played)."""
        a = self.alpha.get(task_id, self.prior)
        b = self.beta.get(task_id, self.prior)
        return a / (a + b)

    def provide(self, ctx: ProviderContext) -> dict[str, np.ndarray]:
        trajs = ctx.columns.trajectories
        per_traj = np.array([self.value(t.task_id) for t in trajs])
        ctx.metrics["spo/value_mean"] = float(per_traj.mean()) if per_traj.size else 0.0
        return {"spo_baseline": per_traj[ctx.columns.traj]}

    def after_update(self, ctx: ProviderContext) -> None:
        model = ctx.require_model(self.name)
        trajs = ctx.columns.trajectories
        returns = np.bincount(ctx.columns.traj, weights=ctx.rewards, minlength=len(trajs))
        played: dict[str, list[int]] = {}
        for i, t in enumerate(trajs):
            played.setdefault(t.task_id, []).append(i)
        # this iteration's samples, per task (samples index the kept trajectories)
        kept_idx = [i for i in range(len(trajs)) if ctx.keep is None or ctx.keep[i]]
        fresh: dict[str, list[tuple[list[int], list[int]]]] = {}
        for s in ctx.samples:
            task = trajs[kept_idx[s.traj_index]].task_id
            bucket = fresh.setdefault(task, [])
            if len(bucket) < self.kl_samples:
                positions = [j for j, m in enumerate(s.mask) if m]
                bucket.append((list(s.input_ids), positions))
        started = time.perf_counter()
        old = [(task, seq) for task in played for seq in self.kept.get(task, [])]
        new = [(task, seq) for task, seqs in fresh.items() for seq in seqs]
        logps = _token_logprobs(
            model,
            [seq[0] for _, seq in old] + [seq[0] for _, seq in new],
            ctx.pad_id,
            ctx.device,
            ctx.micro_batch_size,
        )
        divergence: dict[str, list[float]] = {}
        for (task, (_ids, positions, stored)), cur in zip(old, logps[: len(old)], strict=True):
            now = [cur[j - 1] for j in positions]
            divergence.setdefault(task, []).extend(
                abs(a - b) for a, b in zip(stored, now, strict=True)
            )
        rhos, ds = [], []
        for task, members in played.items():
            d = float(np.mean(divergence[task])) if divergence.get(task) else 0.0
            rho = min(max(2.0 ** (-d / self.d_half), self.rho_min), self.rho_max)
            r = float(np.clip(returns[members], 0.0, 1.0).sum())
            self.alpha[task] = rho * self.alpha.get(task, self.prior) + r
            self.beta[task] = rho * self.beta.get(task, self.prior) + (len(members) - r)
            self.plays[task] = self.plays.get(task, 0) + len(members)
            rhos.append(rho)
            ds.append(d)
        for task in fresh:
            self.kept[task] = []
        for (task, (ids, positions)), cur in zip(new, logps[len(old) :], strict=True):
            self.kept[task].append((ids, positions, [cur[j - 1] for j in positions]))
        ctx.metrics.update(
            {
                "spo/forward_seconds": time.perf_counter() - started,
                "spo/rho": float(np.mean(rhos)) if rhos else 0.0,
                "spo/divergence": float(np.mean(ds)) if ds else 0.0,
                "spo/tasks_tracked": float(len(self.alpha)),
            }
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "alpha": dict(self.alpha),
            "beta": dict(self.beta),
            "plays": dict(self.plays),
            "kept": {k: [list(map(list, s)) for s in v] for k, v in self.kept.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.alpha = {k: float(v) for k, v in state.get("alpha", {}).items()}
        self.beta = {k: float(v) for k, v in state.get("beta", {}).items()}
        self.plays = {k: int(v) for k, v in state.get("plays", {}).items()}
        self.kept = {
            k: [(list(a), list(b), list(c)) for a, b, c in v]
            for k, v in state.get("kept", {}).items()
        }


def _token_logprobs(
    model: Any, seqs: list[list[int]], pad_id: int, device: Any, micro_batch_size: int
) -> list[list[float]]:
    """Per sequence, ``out[j] = log p(seq[j + 1] | seq[: j + 1])`` under ``model``."""
    import torch

    out: list[list[float]] = [[] for _ in seqs]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), micro_batch_size):
                chunk = order[start : start + micro_batch_size]
                width = max(len(seqs[i]) for i in chunk)
                ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
                attn = torch.zeros_like(ids)
                for r, i in enumerate(chunk):
                    ids[r, : len(seqs[i])] = torch.tensor(seqs[i])
                    attn[r, : len(seqs[i])] = 1
                ids, attn = ids.to(device), attn.to(device)
                logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits
                logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
                taken = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1).cpu()
                for r, i in enumerate(chunk):
                    out[i] = taken[r, : len(seqs[i]) - 1].tolist()
    finally:
        model.train(was_training)
    return out


@register_task_sampler("spo")
class SPOSampler(TaskSampler):
    r"""SPO's prioritised sampling: tasks drawn with weight
    :math:`\sqrt{\hat v (1 - \hat v)} + \epsilon` from the ``spo_tracker``'s values (tasks
    never played have the prior's :math:`\hat v`), without replacement while the split has
    enough, so the iteration spends its rollouts where the outcome is most uncertain.

    Source: Xu & Ding 2026, "Single-stream Policy Optimization" (arXiv:2509.13232);
    :math:`\epsilon` = 0.05 as its reference code. Deviation: the reference reweights
    within each uniformly drawn data-loader batch (drawing with replacement); here the
    weights cover the whole train split. The draw depends only on the iteration's seed and
    the tracker, so a resumed run draws the same tasks.
    """

    requires_providers = ("spo_tracker",)

    def __init__(self, *, epsilon: NonNegativeFloat = 0.05) -> None:
        self.epsilon = epsilon
        self._ids: list[str] | None = None

    def sample(self, ctx: TaskSamplerContext) -> list[Any]:
        from agentgym.rollout import TaskRequest
        from agentgym.rollout.tasks import split_task_ids

        tracker = ctx.providers.get("spo_tracker")
        if not isinstance(tracker, SPOTracker):
            raise ValueError("task sampler 'spo' needs the spo_tracker input provider")
        if self._ids is None:
            self._ids = split_task_ids(ctx.spec, ctx.split)
        ids = self._ids
        weights = np.full(len(ids), math.sqrt(0.25) + self.epsilon)  # prior mean 1/2
        index = {t: i for i, t in enumerate(ids)} if tracker.alpha else {}
        for task in tracker.alpha:
            if task in index:
                v = tracker.value(task)
                weights[index[task]] = math.sqrt(v * (1 - v)) + self.epsilon
        total = weights.sum()
        probs = weights / total if total > 0 else np.full(len(ids), 1 / len(ids))
        rng = np.random.default_rng([ctx.seed, 2])
        chosen = rng.choice(len(ids), size=ctx.count, replace=ctx.count > len(ids), p=probs)
        seeds = rng.integers(2**31, size=len(chosen))
        return [
            TaskRequest(ids[int(i)], ctx.split, int(s)) for i, s in zip(chosen, seeds, strict=True)
        ]
