"""Providers that ask the judge: ArenaRL's tournament (``arena``) and MAPO's per-turn
scores (``turn_judge``).

Both batch every judge question of the iteration across task groups (one
:meth:`~agentgym.judges.Judge.judge` call per tournament phase, one for all turns), so a
model judge sees full batches.
"""

from __future__ import annotations

import statistics
from typing import Any, Literal

import numpy as np

from agentgym.judges import JudgeRequest, get_verdict_parser, render_template, trajectory_text
from agentgym.params import NonNegativeInt, PositiveFloat, PositiveInt
from agentgym.providers.base import InputProvider, ProviderContext, register_input_provider

__all__ = ["ArenaTournament", "SeededSingleElimination", "TurnJudge"]

DEFAULT_PAIR_TEMPLATE = (
    "You compare two attempts of an agent at the same task.\n\nTask:\n{task}\n\n"
    "Attempt A:\n{response_a}\n\nAttempt B:\n{response_b}\n\n"
    "Judge the reasoning, the use of actions or tools, and the outcome. Give each attempt "
    "a score from 0 to 10 and answer exactly:\nScore A: <number>\nScore B: <number>"
)

DEFAULT_TURN_TEMPLATE = (
    "Rate one turn of an agent working on a task.\n\nTask:\n{task}\n\n"
    "Earlier turns:\n{history}\n\nWhat the agent saw:\n{observation}\n\n"
    "The agent's response:\n{response}\n\nWhat happened next:\n{feedback}\n\n"
    "How much did this turn help the task? Answer exactly: Score: <0-10>"
)


class SeededSingleElimination:
    """One task group's seeded single-elimination tournament (ArenaRL).

    Driven from outside so that many groups' matches go to the judge in one batch:
    :meth:`pending` lists the current phase's matches ``(a, b)``, :meth:`record` takes one
    ``(score_a, score_b)`` per match, until :attr:`done`.

    1. **Seeding** (``n - 1`` matches): every member but the anchor plays the anchor
       (``(k, anchor)``). A member's seeding points are its score; the anchor's, the mean
       of its scores.
    2. **Bracket** (``n - 1`` matches): members sorted by mean points (stable: ties keep
       their index order) fill a standard bracket of the next power of two (seed 1 meets
       seed 2 only in the final); a missing seed gives the seed it would have met a bye
       in the first round. ``score_a >= score_b`` advances ``a`` (the better seed's side).
    3. **Placement**: the champion first, then the losers of each round from the last
       round back, ties within a round broken by mean points over all their matches.

    ``2n - 2`` matches in all (O(n), against ``n(n-1)/2`` for a round robin). This follows
    the qqr reference code of ArenaRL (``single_elimination.py``) except for byes: the
    reference drops the missing seeds from the bracket list and pairs neighbours, so for a
    group that is not a power of two top seeds can meet early (seeds 1 and 2 in the first
    round of a group of 3); here byes stay in place, which is what seeding is for.
    """

    def __init__(self, n: int, anchor: int = 0) -> None:
        if n < 1:
            raise ValueError(f"a tournament needs at least one member, got {n}")
        if not 0 <= anchor < n:
            raise ValueError(f"anchor {anchor} is not a member of a group of {n}")
        self.n, self.anchor = n, anchor
        self.points: list[list[float]] = [[] for _ in range(n)]
        self.eliminated: list[list[int]] = []
        self.matches_played = 0
        self._round: list[int | None] = []  # bracket order; None = a bye (first round only)
        self._pending: list[tuple[int, int]] = []
        self._phase = "seeding" if n > 1 else "done"
        if n > 1:
            self._pending = [(k, anchor) for k in range(n) if k != anchor]

    @property
    def done(self) -> bool:
        return self._phase == "done"

    def pending(self) -> list[tuple[int, int]]:
        return list(self._pending)

    def mean_points(self, k: int) -> float:
        return statistics.fmean(self.points[k]) if self.points[k] else 0.0

    def record(self, results: list[tuple[float, float]]) -> None:
        if len(results) != len(self._pending):
            raise ValueError(f"{len(self._pending)} matches pending, {len(results)} results")
        self.matches_played += len(results)
        if self._phase == "seeding":
            anchor_scores = []
            for (k, _anchor), (score_k, score_anchor) in zip(self._pending, results, strict=True):
                self.points[k].append(float(score_k))
                anchor_scores.append(float(score_anchor))
            self.points[self.anchor].append(statistics.fmean(anchor_scores))
            self._round = self._seeded_bracket()
            self._phase = "bracket"
        else:
            outcome: dict[tuple[int, int], int] = {}
            losers = []
            for (a, b), (score_a, score_b) in zip(self._pending, results, strict=True):
                self.points[a].append(float(score_a))
                self.points[b].append(float(score_b))
                win, lose = (a, b) if score_a >= score_b else (b, a)
                outcome[(a, b)] = win
                losers.append(lose)
            nxt: list[int | None] = []
            for a, b in zip(self._round[0::2], self._round[1::2], strict=True):
                nxt.append(a if b is None else b if a is None else outcome[(a, b)])
            self._round = nxt
            self.eliminated.append(losers)
        self._next_round()

    def _seeded_bracket(self) -> list[int | None]:
        """Members in standard bracket order for the next power of two (seed 1 and seed 2
        in opposite halves); a missing seed is a bye for the seed it would have met."""
        ranked = sorted(range(self.n), key=lambda k: -self.mean_points(k))
        size = 1
        while size < self.n:
            size *= 2
        slots = [0]
        count = 1
        while count < size:
            slots = [x for i in slots for x in (i, 2 * count - 1 - i)]
            count *= 2
        return [ranked[s] if s < self.n else None for s in slots]

    def _next_round(self) -> None:
        if len(self._round) <= 1:
            self._pending, self._phase = [], "done"
            return
        self._pending = [
            (a, b)
            for a, b in zip(self._round[0::2], self._round[1::2], strict=True)
            if a is not None and b is not None
        ]
        if not self._pending:  # a round of byes only cannot happen past the first
            raise RuntimeError("a bracket round without matches")

    def ranking(self) -> list[int]:
        """Members best first (see the class docstring)."""
        if not self.done:
            raise RuntimeError("the tournament is not finished")
        champion = [self._round[0]] if self.n > 1 else [0]
        order = list(champion)
        for losers in reversed(self.eliminated):
            order.extend(sorted(losers, key=lambda k: -self.mean_points(k)))
        return order

    def placement_scores(self) -> np.ndarray:
        """ArenaRL's placement -> score map, ``1 - rank / (n - 1)`` (champion 1, last 0;
        a lone member 1)."""
        scores = np.ones(self.n)
        if self.n == 1:
            return scores
        for rank, k in enumerate(self.ranking()):
            scores[k] = 1.0 - rank / (self.n - 1)
        return scores


@register_input_provider("arena")
class ArenaTournament(InputProvider):
    r"""ArenaRL: a seeded single-elimination tournament per task group, judged pairwise.

    Fills ``arena_score``: per row, its trajectory's placement score
    :math:`1 - \mathrm{rank}/(N-1)` in its group's tournament
    (:class:`SeededSingleElimination`); the ``arenarl`` estimator normalises it within the
    group. A match asks the judge with ``template`` (fields ``{task}``, ``{response_a}``,
    ``{response_b}``: the instruction and the two trajectories as text; rule-based judges
    also get the :class:`~agentgym.trajectory.Trajectory` objects as ``trajectory_a`` and
    ``trajectory_b``) and reads ``(score_a, score_b)`` with ``parser``.

    Source: Zhang et al. 2026, "ArenaRL: Scaling RL for Open-Ended Agents via
    Tournament-based Relative Ranking" (arXiv:2601.06487), and its reference code
    (Alibaba-NLP/qqr, ``reward_models/arena/single_elimination.py``). As there,
    ``bidirectional`` judges each match in both orders and sums each side's scores
    (against position bias), ties go to the first-listed side, and the anchor seeds the
    bracket. Deviation: the paper's anchor is an extra greedy rollout; here it is the
    group's first rollout (what the reference code uses), so no extra generation is needed.
    A verdict the parser cannot read after the judge's retries counts as a tie ``(0, 0)``.

    Cost: ``2N - 2`` matches per group (``4N - 4`` judge calls when bidirectional),
    ``1 + ceil(log2 N)`` batched judge rounds per iteration.
    """

    provides = ("arena_score",)
    uses_judge = True
    _default_parser = "pair_scores"

    @classmethod
    def check_settings(cls, settings: Any) -> None:
        get_verdict_parser(settings.get("parser", cls._default_parser))

    def __init__(
        self,
        *,
        template: str = DEFAULT_PAIR_TEMPLATE,
        parser: str = "pair_scores",
        bidirectional: bool = True,
        max_chars: PositiveInt = 4000,
        anchor: Literal["first"] = "first",
    ) -> None:
        self.template, self.parser = template, parser
        self.bidirectional, self.max_chars, self.anchor = bidirectional, max_chars, anchor

    def provide(self, ctx: ProviderContext) -> dict[str, np.ndarray]:
        judge = ctx.require_judge(self.name)
        trajs = ctx.columns.trajectories
        groups: dict[int, list[int]] = {}
        traj_group = np.zeros(len(trajs), dtype=np.int64)
        traj_group[ctx.columns.traj] = ctx.columns.group
        for i in range(len(trajs)):
            groups.setdefault(int(traj_group[i]), []).append(i)
        members = list(groups.values())
        tournaments = [SeededSingleElimination(len(m)) for m in members]
        texts = [trajectory_text(t, self.max_chars) for t in trajs]
        while not all(t.done for t in tournaments):
            requests, where = [], []
            for g, tour in enumerate(tournaments):
                for a, b in tour.pending():
                    i, j = members[g][a], members[g][b]
                    requests.append(self._request(trajs, texts, i, j))
                    if self.bidirectional:
                        requests.append(self._request(trajs, texts, j, i))
                    where.append(g)
            verdicts = judge.judge(requests, self.parser, default=(0.0, 0.0))
            results: dict[int, list[tuple[float, float]]] = {}
            step = 2 if self.bidirectional else 1
            for k, g in enumerate(where):
                a_b = verdicts[step * k]
                score = (float(a_b[0]), float(a_b[1]))
                if self.bidirectional:
                    b_a = verdicts[step * k + 1]
                    score = (score[0] + float(b_a[1]), score[1] + float(b_a[0]))
                results.setdefault(g, []).append(score)
            for g, tour in enumerate(tournaments):
                if not tour.done:
                    tour.record(results.get(g, []))
        per_traj = np.zeros(len(trajs))
        for g, tour in enumerate(tournaments):
            per_traj[members[g]] = tour.placement_scores()
        ctx.metrics["arena/matches"] = float(sum(t.matches_played for t in tournaments))
        ctx.metrics["arena/groups"] = float(len(tournaments))
        return {"arena_score": per_traj[ctx.columns.traj]}

    def _request(self, trajs: Any, texts: list[str], i: int, j: int) -> JudgeRequest:
        fields = {
            "task": trajs[i].instruction,
            "response_a": texts[i],
            "response_b": texts[j],
        }
        return JudgeRequest(
            render_template(self.template, fields),
            {**fields, "trajectory_a": trajs[i], "trajectory_b": trajs[j]},
        )


@register_input_provider("turn_judge")
class TurnJudge(InputProvider):
    r"""MAPO's dense process feedback: the judge scores every turn.

    Fills ``judge_score``: per row, the judge's score of that turn divided by
    ``max_score`` and clipped to [0, 1] (``default`` where no answer could be read). The
    judge reads ``template`` with the fields ``{task}``, ``{history}`` (the previous
    ``history_turns`` turns as text), ``{observation}`` (what the agent saw),
    ``{response}``, ``{feedback}`` (the environment's next observation, empty after the
    last turn) and ``{turn}`` (1-based); rule-based judges also get ``step`` and
    ``trajectory`` objects.

    Source: Zhang et al. 2026, "MAPO: Mixed Advantage Policy Optimization for
    Long-Horizon Multi-Turn Dialogue" (arXiv:2603.06194): a judge model scores each turn
    and Monte-Carlo returns of those scores drive the ``mapo`` estimator. The paper's
    judge prompt and score scale are its own (emotional-support dialogue); the template
    and 0-10 scale here are a generic stand-in.
    """

    provides = ("judge_score",)
    uses_judge = True
    _default_parser = "score"

    @classmethod
    def check_settings(cls, settings: Any) -> None:
        get_verdict_parser(settings.get("parser", cls._default_parser))

    def __init__(
        self,
        *,
        template: str = DEFAULT_TURN_TEMPLATE,
        parser: str = "score",
        max_score: PositiveFloat = 10.0,
        default: float = 0.0,
        history_turns: NonNegativeInt = 2,
        max_chars: PositiveInt = 2000,
    ) -> None:
        self.template, self.parser, self.max_score = template, parser, max_score
        self.default, self.history_turns, self.max_chars = default, history_turns, max_chars

    def provide(self, ctx: ProviderContext) -> dict[str, np.ndarray]:
        judge = ctx.require_judge(self.name)
        requests = []
        for traj in ctx.columns.trajectories:
            steps = traj.steps
            for t, step in enumerate(steps):
                past = steps[max(0, t - self.history_turns) : t]
                history = (
                    "\n".join(f"[turn {p.index + 1}] {p.response_text.strip()}" for p in past)
                    or "(none)"
                )
                fields = {
                    "task": traj.instruction,
                    "history": history[-self.max_chars :],
                    "observation": step.observation[-self.max_chars :],
                    "response": step.response_text[-self.max_chars :],
                    "feedback": steps[t + 1].observation[-self.max_chars :]
                    if t + 1 < len(steps)
                    else "",
                    "turn": t + 1,
                }
                requests.append(
                    JudgeRequest(
                        render_template(self.template, fields),
                        {**fields, "step": step, "trajectory": traj},
                    )
                )
        verdicts = judge.judge(requests, self.parser, default=None)
        scores = np.array(
            [
                self.default if v is None else float(np.clip(float(v) / self.max_score, 0, 1))
                for v in verdicts
            ]
        )
        ctx.metrics["judge/turn_score_mean"] = float(scores.mean()) if scores.size else 0.0
        # rows of StepColumns are in (trajectory, step) order, as requests were built
        return {"judge_score": scores}
