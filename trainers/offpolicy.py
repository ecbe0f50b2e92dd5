r"""Off-policy training with a bound (``trainer.max_staleness``) and the correction for
the gap between the rollout policy and the trainer (``actor.tis``).

**Policy versions.** The weights after the update of iteration ``v`` are version ``v``
(the weights RL starts from, after SFT or a resumed checkpoint, carry the iteration they
start at). :class:`VersionedPolicy` wraps the rollout policy: every generation is tagged
with the version that sampled it (``Generation.weight_versions``, which the rollout engine
keeps in ``Step.info["weight_versions"]``), and weights change only between two
``generate`` calls, under a lock.

**Bounded staleness.** With ``trainer.max_staleness: k >= 1`` a :class:`RolloutProducer`
thread rolls out the next iterations while the trainer updates: iteration ``j``'s rollout
may start once version ``j - 1 - k`` exists, and the rollout policy (an unsharded copy of
the weights with the ``hf`` backend, the engine itself with ``vllm``/``vllm_server``) is
refreshed after every update. An episode in flight across a refresh keeps going; its later
steps carry the newer version (a *partial rollout*). At the update of iteration ``i`` the
trainer holds version ``i - 1``; a step sampled by version ``v`` is ``i - 1 - v`` versions
old, and a trajectory with a step older than ``k`` is dropped whole
(:func:`drop_stale`, counted in ``perf/stale_dropped``; its steps' credit depends on each
other, so the trajectory goes, not the step). The gate above keeps every step within
``k`` when iterations are consumed in order, so drops only happen when rollouts outlive
their iteration. ``k = 0`` rolls out and updates in turn, as before, with the same
results for the same seed.

**Mismatch and correction** (every iteration, sync runs too, whenever the trainer
recomputes the old log-probs). With :math:`\mu` the rollout policy (the generation's
log-probs, possibly stale and from another engine) and :math:`\pi_{old}` the trainer's
weights before the update (recomputed, PPO's "old" policy), over response tokens sampled
from :math:`\mu`, with :math:`r_t = \log\pi_{old}(y_t) - \log\mu(y_t)`:

.. math::
    \mathrm{KL}(\mu \| \pi_{old}) \approx \mathrm{mean}_t\,(e^{r_t} - r_t - 1)
    \quad (k3,\ ``perf/mismatch_kl``), \qquad
    \approx \mathrm{mean}_t\,(-r_t) \quad (k1,\ ``perf/mismatch_kl_k1``)

(Schulman, "Approximating KL divergence", 2020). Truncated importance sampling
(``actor.tis.clip`` = :math:`C`) weights each token's policy loss by

.. math::
    w_t = \min\big(e^{r_t},\ C\big) = \min\Big(\frac{\pi_{old}(y_t)}{\mu(y_t)},\ C\Big),

as in Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL
training" (fengyao.notion.site/off-policy-rl; verl's ``tis_imp_ratio_cap``), so the PPO
loss :math:`\ell_t(\pi_\theta/\pi_{old})` becomes :math:`w_t\,\ell_t`: PPO's clip keeps
the update near :math:`\pi_{old}` (the *proximal* policy of decoupled PPO, Hilton et al.
2022, arXiv 2110.00641, used for staleness by AReaL, Fu et al. 2025, arXiv 2505.24298)
and :math:`w_t` corrects for sampling from :math:`\mu` instead. ``actor.tis.
mask_threshold`` leaves out of the update every sample whose own mean k3 mismatch is above
it (verl's and AReaL's masking of tokens far off-policy, here per sample).

Deviations: (1) the weight is folded into the token's advantage (:math:`w_t A_t`), which
equals weighting the token's loss for every loss that is positively homogeneous in the
advantage (PPO with clip-higher and dual clip, GSPO); the KL and entropy terms are not
weighted (as in verl). (2) AReaL *masks* tokens whose weight is above its cap; here they
are truncated (Yao et al.), and masking is per sample, by the mismatch KL. (3) Log-probs
on both sides are of the raw logits (the backends' convention): with a sampling
temperature other than 1 the tokens come from the tempered distribution, and the KL is
that of the raw distributions at those tokens. (4) Tokens without a rollout log-prob
(backends that report none) get weight 1 and stay out of the KL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agentgym.policies.base import Generation, Policy, PolicyInput, SamplingParams
from agentgym.rollout.engine import WEIGHT_VERSIONS
from agentgym.trainers.samples import Sample
from agentgym.trajectory import Step, Trajectory

__all__ = [
    "Produced",
    "ProducerStopped",
    "RolloutProducer",
    "VersionedPolicy",
    "correct_samples",
    "drop_stale",
    "mismatch_kl",
    "step_version",
    "tis_weights",
]


class ProducerStopped(RuntimeError):
    """Raised inside the producer thread's ``generate`` once the producer is closing."""


class VersionedPolicy(Policy):
    """A policy whose generations carry the version of the weights that sampled them.

    ``generate`` and weight changes (:meth:`load_weights`, :meth:`refresh`) take one
    lock, so the weights never change under a running batch. A backend that reports its
    own versions (``vllm_server``: one per push) has them translated to the trainer's
    numbering; any other is tagged with :attr:`version` for the whole response.
    """

    def __init__(self, inner: Policy, version: int = 0) -> None:
        super().__init__(inner.spec)
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.wants_hints = inner.wants_hints  # type: ignore[misc]
        self.version = version
        self._lock = threading.RLock()
        self._backend_versions: dict[str, int] = {}  # the backend's version -> ours
        self._note_backend_version()
        self.cancelled: threading.Thread | None = None  # generate raises in this thread

    @property
    def trainable(self) -> bool:  # type: ignore[override]
        return self.inner.trainable

    def _note_backend_version(self) -> None:
        backend = getattr(self.inner, "weight_version", None)
        if backend is not None:
            self._backend_versions[str(backend)] = self.version

    def generate(self, inputs: Sequence[PolicyInput], sampling: SamplingParams) -> list[Generation]:
        if self.cancelled is threading.current_thread():
            raise ProducerStopped("the rollout producer is closing")
        with self._lock:
            version = self.version
            generations = self.inner.generate(inputs, sampling)
        for gen in generations:
            self._tag(gen, version)
        return generations

    async def agenerate(self, item: PolicyInput, sampling: SamplingParams, index: int = 0) -> Any:
        """One prompt on an event loop (the asynchronous engine): through the inner
        policy's own ``agenerate`` where it batches continuously (servers, async engines;
        weight pushes then land between tokens and the backend reports the spans), else
        batched into :meth:`generate` (the lock and the version tags of above)."""
        own = getattr(type(self.inner), "agenerate", None)
        if own is None or own is getattr(Policy, "agenerate", None):
            return await super().agenerate(item, sampling, index)  # type: ignore[misc]
        version = self.version
        gen = await self.inner.agenerate(item, sampling, index)  # type: ignore[attr-defined]
        self._tag(gen, version)
        return gen

    def _tag(self, gen: Generation, version: int) -> None:
        if gen.finish_reason == "error":
            return
        if gen.weight_versions:
            gen.weight_versions = [
                (str(self._backend_versions.get(str(v), v)), start, end)
                for v, start, end in gen.weight_versions
            ]
        else:
            gen.weight_versions = [(str(version), 0, len(gen.token_ids))]

    def load_weights(self, weights: Mapping[str, Any], version: int | None = None) -> None:
        """Push ``weights`` into the backend and make them ``version`` (default: +1)."""
        with self._lock:
            self.inner.load_weights(weights)
            self.version = self.version + 1 if version is None else version
            self._note_backend_version()

    def refresh(self, load: Callable[[], None] | None, version: int) -> None:
        """Run ``load`` (e.g. copy the trainer's weights into a rollout copy) between two
        batches and make the result ``version``; ``None``: the weights are shared with the
        trainer, only the number changes."""
        with self._lock:
            if load is not None:
                load()
            self.version = version
            self._note_backend_version()

    def close(self) -> None:
        close_queue = getattr(self, "_close_batching_queue", None)  # the default agenerate's
        if close_queue is not None:
            close_queue()
        self.inner.close()


def step_version(step: Step) -> int | None:
    """The oldest policy version that sampled ``step``'s response, or ``None`` (untagged)."""
    spans = step.info.get(WEIGHT_VERSIONS) if isinstance(step.info, dict) else None
    versions = []
    for span in spans or []:
        try:
            versions.append(int(span[0]))
        except (TypeError, ValueError, IndexError):
            continue
    return min(versions) if versions else None


def drop_stale(
    trajectories: Sequence[Trajectory], current_version: int, max_staleness: int
) -> tuple[list[Trajectory], dict[str, float]]:
    """Keep the trajectories none of whose steps is older than ``max_staleness`` versions
    at ``current_version`` (untagged steps count as current). Metrics:
    ``perf/stale_dropped`` (trajectories dropped), ``perf/staleness_mean`` and
    ``perf/staleness_max`` (over the kept steps, in versions)."""
    kept: list[Trajectory] = []
    ages: list[int] = []
    dropped = 0
    for traj in trajectories:
        steps = [current_version - v for s in traj.steps if (v := step_version(s)) is not None]
        if steps and max(steps) > max_staleness:
            dropped += 1
            continue
        kept.append(traj)
        ages.extend(steps)
    metrics = {
        "perf/stale_dropped": float(dropped),
        "perf/staleness_mean": float(np.mean(ages)) if ages else 0.0,
        "perf/staleness_max": float(max(ages)) if ages else 0.0,
    }
    return kept, metrics


# ---------------------------------------------------------------- correction


def tis_weights(
    old_logprobs: torch.Tensor,
    rollout_logprobs: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
) -> torch.Tensor:
    r"""Truncated importance weights :math:`w_t = \min(e^{\log\pi_{old} - \log\mu}, C)`
    per token; 1 outside ``mask`` and where the rollout log-prob is unknown (NaN)."""
    known = (mask > 0) & torch.isfinite(rollout_logprobs) & torch.isfinite(old_logprobs)
    log_ratio = torch.where(known, old_logprobs - rollout_logprobs, torch.zeros_like(mask))
    weights = torch.clamp(torch.exp(torch.clamp(log_ratio, max=20.0)), max=clip)
    return torch.where(known, weights, torch.ones_like(weights))


def mismatch_kl(
    old_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Per-token estimates of :math:`\mathrm{KL}(\mu\|\pi_{old})` from tokens sampled by
    :math:`\mu`: ``(k3, k1, known)`` with :math:`r = \log\pi_{old} - \log\mu`,
    :math:`k3 = e^r - r - 1`, :math:`k1 = -r`; ``known`` marks tokens where both log-probs
    exist (0 elsewhere, where ``k3`` and ``k1`` are 0)."""
    known = (mask > 0) & torch.isfinite(rollout_logprobs) & torch.isfinite(old_logprobs)
    r = torch.where(known, old_logprobs - rollout_logprobs, torch.zeros_like(mask))
    r = torch.clamp(r, -20.0, 20.0)
    k3 = torch.where(known, torch.exp(r) - r - 1.0, torch.zeros_like(r))
    k1 = torch.where(known, -r, torch.zeros_like(r))
    return k3, k1, known.to(r.dtype)


@dataclass
class Correction:
    """What :func:`correct_samples` did: the samples to train on and the metrics."""

    samples: list[Sample]
    metrics: dict[str, float] = field(default_factory=dict)


def correct_samples(
    samples: Sequence[Sample],
    rollout_logprobs: Sequence[Sequence[float]],
    clip: float | None = None,
    mask_threshold: float | None = None,
) -> Correction:
    """Measure the rollout/old-policy mismatch of ``samples`` (whose ``old_logprobs`` the
    trainer has just recomputed; ``rollout_logprobs[i]`` are sample ``i``'s log-probs
    from the generation, per position) and apply the correction of the module docstring:
    advantages times the truncated weights (``clip``), samples above ``mask_threshold``
    left out. Metrics: ``perf/mismatch_kl`` (k3), ``perf/mismatch_kl_k1``,
    ``perf/mismatch_kl_max`` (the largest per-sample k3 mean), and with a correction
    ``perf/tis_weight_mean``, ``perf/tis_clipped_frac``, ``perf/mismatch_masked``."""
    kept: list[Sample] = []
    k3_sum = k1_sum = known_sum = 0.0
    worst = 0.0
    w_sum = w_count = clipped = 0.0
    masked = 0
    for sample, rollout in zip(samples, rollout_logprobs, strict=True):
        old = torch.tensor(sample.old_logprobs, dtype=torch.float64)
        mu = torch.tensor(list(rollout), dtype=torch.float64)
        mask = torch.tensor(sample.mask, dtype=torch.float64)
        k3, k1, known = mismatch_kl(old, mu, mask)
        n = float(known.sum())
        k3_sum += float(k3.sum())
        k1_sum += float(k1.sum())
        known_sum += n
        own = float(k3.sum()) / n if n else 0.0
        worst = max(worst, own)
        if mask_threshold is not None and own > mask_threshold:
            masked += 1
            continue
        if clip is not None:
            weights = tis_weights(old, mu, mask, clip)
            on = mask > 0
            w_sum += float(weights[on].sum())
            w_count += float(on.sum())
            raw = torch.exp(torch.clamp(old - mu, max=20.0))
            clipped += float(((raw > clip) & (known > 0)).sum())
            sample.advantages = (
                torch.tensor(sample.advantages, dtype=torch.float64) * weights
            ).tolist()
        kept.append(sample)
    metrics = {
        "perf/mismatch_kl": k3_sum / known_sum if known_sum else 0.0,
        "perf/mismatch_kl_k1": k1_sum / known_sum if known_sum else 0.0,
        "perf/mismatch_kl_max": worst,
    }
    if clip is not None:
        metrics["perf/tis_weight_mean"] = w_sum / w_count if w_count else 1.0
        metrics["perf/tis_clipped_frac"] = clipped / known_sum if known_sum else 0.0
    if mask_threshold is not None:
        metrics["perf/mismatch_masked"] = float(masked)
    return Correction(kept, metrics)


# ---------------------------------------------------------------- the producer


@dataclass
class Produced:
    """One iteration's rollout, made ahead of its update."""

    iteration: int
    trajectories: list[Trajectory]
    metrics: dict[str, float]
    seconds: float
    started_at_version: int


class RolloutProducer:
    """Rolls out iterations ``first..last`` in a thread, each as soon as the policy
    version allows (iteration ``j`` once version ``j - 1 - max_staleness`` exists; see the
    module docstring).

    ``produce(j)`` returns ``(trajectories, metrics)`` for iteration ``j``; the trainer
    calls :meth:`take` for each iteration in order and :meth:`advance` after each update.
    An error in the thread is raised again by :meth:`take`. :meth:`close` stops the
    thread: the rollout in flight ends at its next ``generate`` call and is discarded.
    """

    def __init__(
        self,
        produce: Callable[[int], tuple[list[Trajectory], dict[str, float]]],
        policy: VersionedPolicy,
        *,
        first: int,
        last: int,
        version: int,
        max_staleness: int,
    ) -> None:
        if max_staleness < 1:
            raise ValueError(f"a rollout producer needs max_staleness >= 1, got {max_staleness}")
        self._produce, self.policy = produce, policy
        self.first, self.last, self.max_staleness = first, last, max_staleness
        self.version = version
        self._ready: dict[int, Produced] = {}
        self._error: BaseException | None = None
        self._stop = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="rollout-producer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for j in range(self.first, self.last + 1):
                with self._cond:
                    self._cond.wait_for(
                        lambda j=j: self._stop or self.version >= j - 1 - self.max_staleness
                    )
                    if self._stop:
                        return
                    version = self.version
                start = time.perf_counter()
                trajectories, metrics = self._produce(j)
                produced = Produced(j, trajectories, metrics, time.perf_counter() - start, version)
                with self._cond:
                    self._ready[j] = produced
                    self._cond.notify_all()
        except ProducerStopped:
            return
        except BaseException as exc:  # handed to the trainer by take()
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def take(self, iteration: int) -> Produced:
        """Wait for iteration ``iteration``'s rollout and hand it over."""
        with self._cond:
            while not self._cond.wait_for(
                lambda: iteration in self._ready or self._error is not None, timeout=1.0
            ):
                if not self._thread.is_alive():  # stopped: nothing more will come
                    break
            if iteration not in self._ready:
                if self._error is None:
                    raise RuntimeError(f"the rollout producer stopped before iteration {iteration}")
                raise RuntimeError(
                    f"the rollout producer failed before iteration {iteration}: "
                    f"{type(self._error).__name__}: {self._error}"
                ) from self._error
            return self._ready.pop(iteration)

    def advance(self, version: int) -> None:
        """The weights of ``version`` are in the rollout policy: later rollouts may start."""
        with self._cond:
            self.version = version
            self._cond.notify_all()

    def close(self, timeout: float = 120.0) -> None:
        """Stop the thread; rollouts in flight and produced ahead are discarded."""
        with self._cond:
            self._stop = True
            self._ready.clear()
            self._cond.notify_all()
        self.policy.cancelled = self._thread
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.policy.cancelled = None

    @property
    def ahead(self) -> int:
        """Rollouts produced and not yet taken."""
        with self._cond:
            return len(self._ready)
