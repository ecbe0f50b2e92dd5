"""OTC-PO: the outcome reward scaled by how close the tool calls came to the fewest needed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np

from agentgym.params import PositiveFloat
from agentgym.shapers._outcome import outcome_rows, with_outcome
from agentgym.shaping import RewardContext, RewardShaper, register_reward_shaper

__all__ = ["OTC", "otc_tool_reward"]

Variant = Literal["grpo", "ppo"]
Remap = Literal["harmonic", "linear_below"]


def otc_tool_reward(
    m: np.ndarray,
    n: np.ndarray | None = None,
    *,
    c: float = 1.0,
    remap: Remap = "harmonic",
) -> np.ndarray:
    r"""OTC's tool reward :math:`r_{tool}` for ``m`` tool calls against the optimum ``n``.

    Without ``n`` (OTC-PPO): :math:`r_{tool} = \cos\big(\frac{m\pi}{2m + c}\big)`.
    With ``n`` (OTC-GRPO), per element:

    .. math::
        r_{tool} = \begin{cases}
            1 & f(m, n) = n = 0\\
            \cos\big(\frac{m\pi}{2m + c}\big) & n = 0\\
            \sin\big(\frac{f(m, n)\,\pi}{2n}\big) & \text{otherwise}
        \end{cases}
        \qquad f(m, n) = \frac{2nm}{m + n}

    (``remap="linear_below"``: :math:`f = m` for :math:`m \le n`, the form of the issue
    that asked for this method; see :class:`OTC`). ``n`` NaN means "no optimum known":
    :math:`r_{tool} = 1`. Values lie in [0, 1]; the maximum 1 is at :math:`m = n`.
    """
    m = np.asarray(m, dtype=np.float64)
    cosine = np.cos(m * np.pi / (2.0 * m + c))
    if n is None:
        return cosine
    n = np.asarray(n, dtype=np.float64)
    out = np.ones_like(m)
    zero = n == 0
    out[zero] = cosine[zero]  # m = 0 gives cos(0) = 1: the f(m, n) = n = 0 case
    pos = n > 0
    mp, np_ = m[pos], n[pos]
    f = 2.0 * np_ * mp / (mp + np_)
    if remap == "linear_below":
        f = np.where(mp <= np_, mp, f)
    out[pos] = np.sin(f * np.pi / (2.0 * np_))
    return out


@register_reward_shaper("otc")
class OTC(RewardShaper):
    r"""OTC-PO: scale each trajectory's outcome reward by its tool reward.

    .. math::
        r'_i = \alpha\, r_{tool}(m_i, n_{task(i)})\, r_i

    where :math:`r_i` is trajectory i's outcome (the env's reward at its last step),
    :math:`m_i` its tool calls (``info["num_tool_calls"]``) and :math:`r_{tool}` is
    :func:`otc_tool_reward`. Multiplying (not adding) means a wrong answer (:math:`r_i =
    0`) gains nothing from being short: only correct answers are told to use fewer tools.

    ``variant="grpo"`` (OTC-GRPO): :math:`n` is the fewest tool calls among the *correct*
    rollouts (``success``) of the task seen so far -- this iteration's group included, and
    kept across iterations in :meth:`state_dict`, so it is saved in checkpoints and
    restored on resume. A task with no correct rollout yet has no :math:`n`; its
    :math:`r_{tool}` is 1 (its outcomes are all wrong anyway unless the env gives partial
    credit). ``variant="ppo"`` (OTC-PPO): :math:`r_{tool} = \cos(m\pi/(2m + c))`, no state.

    Source: Wang, Qian, Zhong, Chen, Qiu, Huang, Jin, Wang, Wong, Ji 2025, "OTC: Optimal
    Tool Calls via Reinforcement Learning" (v2: "Acting Less is Reasoning More! Teaching
    Model to Act Efficiently"), arXiv:2504.14870.

    What we verified, and how (``docs/credit.md``, "otc"): the OTC-PPO cosine, the
    multiplicative form :math:`\alpha\, r_{tool}\, r_\phi` and the case split of OTC-GRPO
    agree with a review that quotes the paper's OTC-PPO formula and with two independent
    readings of the paper's method section; both give the remap :math:`f(m, n) =
    2nm/(m+n)` for every :math:`m` when :math:`n > 0` (it maps :math:`m \in [0, \infty)` onto
    :math:`[0, 2n)` with :math:`f(n, n) = n`), and :math:`n` as the fewest calls of the
    correct rollouts, "updated across epochs". The paper's own equation could not be read
    here (only its abstract), so ``remap="linear_below"`` keeps the issue's variant
    (:math:`f = m` for :math:`m \le n`, which rewards under-calling less: for :math:`n = 2,
    m = 1` it gives 0.71 where the default gives 0.87).

    Choices the paper leaves open: ``c`` (the smoothing constant; its value is not in the
    text we read) defaults to 1 and ``alpha`` to 1; "the task" is ``task_id``; with
    ``torchrun`` every rank keeps its own table of the tasks it rolled out.

    When to use: tool-using agents (Search-v0, CodeSandbox-v0) that call tools more than
    they need to; it leaves accuracy alone only if the outcome reward is the accuracy.
    """

    requires_info: ClassVar[tuple[str, ...]] = ("num_tool_calls",)

    def __init__(
        self,
        *,
        variant: Variant = "grpo",
        c: PositiveFloat = 1.0,
        alpha: PositiveFloat = 1.0,
        remap: Remap = "harmonic",
    ) -> None:
        self.variant, self.c, self.alpha, self.remap = variant, float(c), float(alpha), remap
        self.fewest: dict[str, int] = {}
        """OTC-GRPO's state: task id -> the fewest tool calls of a correct rollout."""

    def optimum(self, task_ids: list[str]) -> np.ndarray:
        """:math:`n` per task (NaN where no correct rollout has been seen)."""
        return np.array([self.fewest.get(k, np.nan) for k in task_ids], dtype=np.float64)

    def shape(self, ctx: RewardContext) -> np.ndarray:
        trajectories = ctx.columns.trajectories
        calls = np.array([t.num_tool_calls for t in trajectories], dtype=np.float64)
        n = None
        if self.variant == "grpo":
            for traj, m in zip(trajectories, calls, strict=True):
                if traj.success:
                    known = self.fewest.get(traj.task_id)
                    self.fewest[traj.task_id] = int(m if known is None else min(known, m))
            n = self.optimum([t.task_id for t in trajectories])
        r_tool = otc_tool_reward(calls, n, c=self.c, remap=self.remap)
        _rows, outcome, _penalty = outcome_rows(ctx)
        return with_outcome(ctx, self.alpha * r_tool * outcome)

    def state_dict(self) -> dict[str, Any]:
        return {"fewest": dict(self.fewest)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.fewest = {str(k): int(v) for k, v in dict(state.get("fewest", {})).items()}
