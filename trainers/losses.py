"""Policy losses, loss aggregations and extra loss terms, as registered pure functions.

Three registries, each chosen by name from the ``actor`` config section and each entry's
settings read from its signature (:mod:`agentgym.params`), so a misspelt name or setting
is refused when the config loads:

**Policy losses** (``actor.policy_loss``; settings in ``actor.<name>``, e.g.
``actor.gspo.clip_ratio_low``)::

    loss_fn(log_prob, old_log_prob, advantages, mask, agg, *, setting=default, ...)
        -> (scalar loss, metrics dict)

with ``[batch, tokens]`` tensors: ``log_prob`` under the current policy (with gradient),
``old_log_prob`` from the policy that sampled the data, ``advantages`` broadcast to the
tokens of each step's response, and ``mask`` = 1 on those tokens only. The trainer never
special-cases a name.

**Aggregations** (``actor.loss_agg_mode``): how token losses become one number,
``agg_fn(values, mask, agg: Aggregation) -> scalar``. To keep gradient accumulation
exact, normalisers are *global* to the optimizer step: :class:`Aggregation` carries the
number of response tokens and of sequences in the whole mini-batch (and the mini-batch's
samples, for modes that need per-group counts), so summing the micro-batch losses gives
the mini-batch loss. Built in, with verl's names:

``token-mean``               sum of token losses / tokens in the mini-batch (DAPO).
``seq-mean-token-mean``      mean over sequences of each sequence's token mean (GRPO).
``seq-mean-token-sum``       mean over sequences of each sequence's token sum.
``seq-mean-token-sum-norm``  sum of token losses / (sequences x a constant length)
                             (Dr. GRPO, arXiv 2503.20783: no length bias).
``balanced``                 per group, token means of the positive and the negative
                             responses weighted by their counts (Balanced Aggregation,
                             arXiv 2605.04077; :mod:`agentgym.trainers.balanced`).

**Loss terms** (``actor.loss_terms: {name: {setting: value}}``): extra terms added to the
policy loss, ``term_fn(inputs: LossInputs, agg, *, coef=..., ...) -> (scalar, metrics)``.
Built in: ``kl`` (to a frozen reference model), ``entropy`` (a bonus) and ``llds`` (a
likelihood-preserving regulariser, :mod:`agentgym.trainers.llds`); verl's keys
``actor.use_kl_loss``/``kl_loss_coef``/``kl_loss_type`` and ``actor.entropy_coeff`` turn
them on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch

from agentgym.errors import UnknownNameError
from agentgym.params import NonNegativeFloat, ParamInfo, check_params, read_params
from agentgym.registries import Registry

PolicyLoss = Callable[..., tuple[torch.Tensor, dict[str, float]]]
AggregationFn = Callable[..., torch.Tensor]
LossTerm = Callable[..., tuple[torch.Tensor, dict[str, float]]]

POLICY_LOSSES: Registry[PolicyLoss] = Registry("policy loss")
LOSS_AGGREGATIONS: Registry[AggregationFn] = Registry("loss aggregation mode")
LOSS_TERMS: Registry[LossTerm] = Registry("loss term")
_LOSS_PARAMS: dict[str, dict[str, ParamInfo]] = {}
_TERM_PARAMS: dict[str, dict[str, ParamInfo]] = {}

_LOSS_ARGS = "log_prob, old_log_prob, advantages, mask, agg"


@dataclass(frozen=True)
class Aggregation:
    """How token losses become one number, with mini-batch-global normalisers.

    Attributes:
        mode: a registered aggregation (see the module docstring).
        total_tokens: response tokens in the whole mini-batch.
        total_seqs: sequences (samples) in the whole mini-batch.
        norm_length: the constant length of ``seq-mean-token-sum-norm`` (usually the
            response length limit).
        samples: the mini-batch's samples (their ``group`` and advantages), for modes
            that weigh sequences by group or sign; empty when unknown.
        rows: which of ``samples`` the current micro-batch holds (row ``i`` of the
            tensors is ``samples[rows[i]]``).
    """

    mode: str = "token-mean"
    total_tokens: float = 1.0
    total_seqs: float = 1.0
    norm_length: float = 1.0
    samples: Sequence[Any] = ()
    rows: Sequence[int] = ()
    cache: dict[str, Any] = field(default_factory=dict, compare=False)
    """Per-mini-batch values an aggregation computes once (shared by its micro-batches)."""

    def __call__(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return get_loss_agg(self.mode)(values, mask.to(values.dtype), self)

    def for_rows(self, rows: Sequence[int]) -> Aggregation:
        """The same mini-batch aggregation for a micro-batch holding ``samples[rows]``."""
        return replace(self, rows=list(rows))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


# ---------------------------------------------------------------- registration


def register_policy_loss(name: str) -> Callable[[PolicyLoss], PolicyLoss]:
    """Decorator registering a policy loss; a name registers once.

    The function's keyword-only parameters after ``(log_prob, old_log_prob, advantages,
    mask, agg)`` are its settings, configured under ``actor.<name>``.
    """

    def deco(fn: PolicyLoss) -> PolicyLoss:
        params = read_params(fn, f"policy loss {name!r}", skip=5, first=_LOSS_ARGS)
        POLICY_LOSSES.register(name, fn)
        _LOSS_PARAMS[name] = params
        return fn

    return deco


def get_policy_loss(name: str) -> PolicyLoss:
    return POLICY_LOSSES.get(name)


def list_policy_losses() -> list[str]:
    return POLICY_LOSSES.names()


def policy_loss_params(name: str) -> dict[str, ParamInfo]:
    """The settings of policy loss ``name`` (name -> :class:`~agentgym.params.ParamInfo`)."""
    get_policy_loss(name)
    return dict(_LOSS_PARAMS[name])


def validate_policy_loss_params(name: str, params: Mapping[str, Any]) -> None:
    check_params(f"policy loss {name!r}", policy_loss_params(name), params, settings_only=True)


def register_loss_agg(name: str) -> Callable[[AggregationFn], AggregationFn]:
    """Decorator registering an aggregation ``fn(values, mask, agg) -> scalar``."""

    def deco(fn: AggregationFn) -> AggregationFn:
        LOSS_AGGREGATIONS.register(name, fn)
        return fn

    return deco


def get_loss_agg(name: str) -> AggregationFn:
    return LOSS_AGGREGATIONS.get(name)


def list_loss_aggs() -> list[str]:
    return LOSS_AGGREGATIONS.names()


def register_loss_term(name: str) -> Callable[[LossTerm], LossTerm]:
    """Decorator registering a loss term ``fn(inputs, agg, *, coef=..., ...)``; its
    keyword-only parameters are its settings (``actor.loss_terms.<name>``)."""

    def deco(fn: LossTerm) -> LossTerm:
        params = read_params(fn, f"loss term {name!r}", skip=2, first="inputs, agg")
        if "coef" not in params:
            raise TypeError(f"loss term {name!r} must take a keyword `coef` (its weight)")
        LOSS_TERMS.register(name, fn)
        _TERM_PARAMS[name] = params
        return fn

    return deco


def get_loss_term(name: str) -> LossTerm:
    return LOSS_TERMS.get(name)


def list_loss_terms() -> list[str]:
    return LOSS_TERMS.names()


def loss_term_params(name: str) -> dict[str, ParamInfo]:
    get_loss_term(name)
    return dict(_TERM_PARAMS[name])


def validate_loss_term_params(name: str, params: Mapping[str, Any]) -> None:
    check_params(f"loss term {name!r}", loss_term_params(name), params, settings_only=True)


# ---------------------------------------------------------------- aggregations


@register_loss_agg("token-mean")
def _token_mean(values: torch.Tensor, mask: torch.Tensor, agg: Aggregation) -> torch.Tensor:
    return (values * mask).sum() / max(agg.total_tokens, 1.0)


@register_loss_agg("seq-mean-token-mean")
def _seq_mean_token_mean(
    values: torch.Tensor, mask: torch.Tensor, agg: Aggregation
) -> torch.Tensor:
    per_seq = (values * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)
    return per_seq.sum() / max(agg.total_seqs, 1.0)


@register_loss_agg("seq-mean-token-sum")
def _seq_mean_token_sum(values: torch.Tensor, mask: torch.Tensor, agg: Aggregation) -> torch.Tensor:
    return (values * mask).sum() / max(agg.total_seqs, 1.0)


@register_loss_agg("seq-mean-token-sum-norm")
def _seq_mean_token_sum_norm(
    values: torch.Tensor, mask: torch.Tensor, agg: Aggregation
) -> torch.Tensor:
    return (values * mask).sum() / max(agg.total_seqs * agg.norm_length, 1.0)


# ---------------------------------------------------------------- policy losses


def _clipped_objective(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float,
    clip_high: float,
    clip_c: float | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token clipped loss, and masks of where clipping and dual clipping bit."""
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    was_clipped = clipped > unclipped
    dual = torch.zeros_like(was_clipped)
    if clip_c is not None:
        bound = -advantages * clip_c
        dual = (advantages < 0) & (loss > bound)
        loss = torch.where(advantages < 0, torch.minimum(loss, bound), loss)
    return loss, was_clipped, dual


@register_policy_loss("ppo")
def ppo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    agg: Aggregation,
    *,
    clip_ratio_low: NonNegativeFloat = 0.2,
    clip_ratio_high: NonNegativeFloat = 0.28,
    clip_ratio_c: float | None = 3.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    r"""Token-level PPO clip with clip-higher and dual clip.

    .. math::
        r_t = \exp(\log\pi_\theta(a_t) - \log\pi_{old}(a_t)),\quad
        \ell_t = \max(-A_t r_t,\ -A_t\,\mathrm{clip}(r_t, 1-\epsilon_{low}, 1+\epsilon_{high}))

    and, with dual clip (Ye et al. 2020, arXiv 1912.09729), for :math:`A_t < 0`:
    :math:`\ell_t = \min(\ell_t, -c A_t)`. Clip-higher (:math:`\epsilon_{high} >
    \epsilon_{low}`) is DAPO's (arXiv 2503.14476). Same as verl's ``compute_policy_loss``
    except that the log-ratio is clamped to [-20, 20] before ``exp`` for safety (verl
    clamps it the same way).
    """
    log_ratio = torch.clamp(log_prob - old_log_prob, -20.0, 20.0)
    ratio = torch.exp(log_ratio)
    loss, was_clipped, dual = _clipped_objective(
        ratio, advantages, clip_ratio_low, clip_ratio_high, clip_ratio_c
    )
    with torch.no_grad():
        approx_kl = masked_mean(-log_ratio, mask)
        metrics = {
            "actor/pg_clipfrac": float(masked_mean(was_clipped.float(), mask)),
            "actor/pg_clipfrac_lower": float(masked_mean(dual.float(), mask)),
            "actor/ppo_kl": float(approx_kl),
            "actor/ratio_mean": float(masked_mean(ratio, mask)),
        }
    return agg(loss, mask), metrics


@register_policy_loss("gspo")
def gspo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    agg: Aggregation,
    *,
    clip_ratio_low: NonNegativeFloat = 3e-4,
    clip_ratio_high: NonNegativeFloat = 4e-4,
    clip_ratio_c: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    r"""GSPO: a sequence-level importance ratio (Zheng et al. 2025, arXiv 2507.18071).

    .. math::
        s_i = \exp\Big(\frac{1}{|y_i|}\sum_t
              \log\frac{\pi_\theta(y_{i,t})}{\pi_{old}(y_{i,t})}\Big),\quad
        s_{i,t} = \mathrm{sg}[s_i]\,\frac{\pi_\theta(y_{i,t})}{\mathrm{sg}[\pi_\theta(y_{i,t})]}

    then the PPO clip on :math:`s_{i,t}` (the token form lets advantages vary per token,
    as GSPO-token does; with one advantage per sequence it equals sequence-level GSPO).
    The paper's clip range is tiny (3e-4 / 4e-4, the defaults here, ``actor.gspo.*``)
    because the ratio is a geometric mean. Use ``seq-mean-token-mean``.
    """
    m = mask.to(log_prob.dtype)
    seq_log_ratio = ((log_prob - old_log_prob) * m).sum(-1) / m.sum(-1).clamp_min(1.0)
    seq_log_ratio = torch.clamp(seq_log_ratio, -20.0, 20.0)
    token_log_ratio = seq_log_ratio.detach().unsqueeze(-1) + log_prob - log_prob.detach()
    ratio = torch.exp(token_log_ratio)
    loss, was_clipped, dual = _clipped_objective(
        ratio, advantages, clip_ratio_low, clip_ratio_high, clip_ratio_c
    )
    with torch.no_grad():
        metrics = {
            "actor/pg_clipfrac": float(masked_mean(was_clipped.float(), mask)),
            "actor/pg_clipfrac_lower": float(masked_mean(dual.float(), mask)),
            "actor/ppo_kl": float(masked_mean(old_log_prob - log_prob, mask)),
            "actor/ratio_mean": float(masked_mean(ratio, mask)),
        }
    return agg(loss, mask), metrics


def kl_penalty(log_prob: torch.Tensor, ref_log_prob: torch.Tensor, kind: str) -> torch.Tensor:
    r"""Per-token KL estimate of :math:`KL(\pi_\theta \| \pi_{ref})` from samples of
    :math:`\pi_\theta` (Schulman, "Approximating KL divergence", 2020).

    ``k1``: :math:`\log\pi_\theta - \log\pi_{ref}` (unbiased, high variance).
    ``k3`` / ``low_var_kl``: :math:`e^{r} - r - 1` with :math:`r = \log\pi_{ref} -
    \log\pi_\theta` (unbiased, non-negative, low variance); clamped to [-10, 10] as
    verl does.
    """
    if kind == "k1":
        return log_prob - ref_log_prob
    if kind in ("k3", "low_var_kl"):
        r = torch.clamp(ref_log_prob - log_prob, -20.0, 20.0)
        return torch.clamp(torch.exp(r) - r - 1.0, -10.0, 10.0)
    raise UnknownNameError("KL penalty", kind, ["k1", "k3", "low_var_kl"])


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy of the categorical distribution ``softmax(logits)``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


# ---------------------------------------------------------------- loss terms


@dataclass
class LossInputs:
    """What a loss term sees of one micro-batch (``[batch, tokens]`` tensors).

    Attributes:
        log_prob: current policy's log-probs of the sampled tokens (with gradient).
        old_log_prob: the sampling policy's log-probs (0 where unknown).
        advantages: per-token advantages; mask: 1 on trained tokens.
        entropy: the current policy's per-position entropy (with gradient).
        ref_log_prob: a frozen reference model's log-probs, or None without one.
        segment: per token, the index of the step (turn) it belongs to within its sample
            (-1 outside responses): lets a term work per turn in chat samples.
    """

    log_prob: torch.Tensor
    old_log_prob: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    entropy: torch.Tensor
    ref_log_prob: torch.Tensor | None = None
    segment: torch.Tensor | None = None


KLType = Literal["k1", "k3", "low_var_kl"]


@register_loss_term("kl")
def kl_term(
    inputs: LossInputs,
    agg: Aggregation,
    *,
    coef: NonNegativeFloat = 0.001,
    type: KLType = "low_var_kl",
) -> tuple[torch.Tensor, dict[str, float]]:
    r"""KL to a frozen reference model, :math:`\beta\,\mathrm{agg}(KL_t)`, with the
    per-token estimator of :func:`kl_penalty` (verl's ``use_kl_loss``)."""
    if inputs.ref_log_prob is None:
        raise ValueError("the 'kl' loss term needs reference log-probs (a reference model)")
    kl = kl_penalty(inputs.log_prob, inputs.ref_log_prob, type)
    return coef * agg(kl, inputs.mask), {
        "actor/kl_loss": float(masked_mean(kl.detach(), inputs.mask))
    }


@register_loss_term("entropy")
def entropy_term(
    inputs: LossInputs, agg: Aggregation, *, coef: float = 0.0
) -> tuple[torch.Tensor, dict[str, float]]:
    r"""Entropy bonus: :math:`-c\,\mathrm{agg}(H_t)` (verl's ``entropy_coeff``)."""
    return -coef * agg(inputs.entropy, inputs.mask), {}


# ---------------------------------------------------------------- more built-ins

# Further built-in terms and aggregations live in their own modules and register on import
# (after every name they use is defined above).
from agentgym.trainers import balanced as _balanced  # noqa: E402, F401
from agentgym.trainers import llds as _llds  # noqa: E402, F401
