"""``agentgym/SearchRoles-v0``: Search-v0 played by three roles of one shared model.

Each question is answered by a team that takes turns: the **planner** writes a plan
(``<plan> .. </plan>``, one turn), the **searcher** searches the corpus (up to
``max_searches`` times, or until it writes ``<done></done>``), and the **answerer** answers
(``<answer> .. </answer>``), which ends the episode with Search-v0's reward (exact match by
default). One model plays every role; each role has its own prompt.

``info["agent_id"]`` names the role whose turn it is (``planner``, ``searcher``,
``answerer``) and ``info["agent_prompt"]`` holds that role's prompt, in every ``info``
(reset and step). The rollout engine renders each turn with the acting role's prompt
(:func:`agentgym.rollout.prompts.agent_prompt`) and files each step under its role
(``Step.agent``, the ``agent`` input of per-agent credit such as ``drmas``).

Observations are the team's shared board: the plan, every block of passages found so far
(``<information> .. </information>``) and whose turn it is, so a role needs no history
to act. A role that writes another role's action (the searcher answering, the answerer
searching) or no action tag gets feedback and keeps the turn (an invalid step); the turn
limit (``env.max_steps``, default 8) ends an episode whose answerer never answers.

Everything else is Search-v0's: the corpus and questions (the shipped synthetic world by
default), the reward and ``info["reward_components"]``, ``info["gold_entities"]``,
``info["num_tool_calls"]`` (the searches), the expert (which plans the question's search
chain, searches it and answers) and snapshots. The ``tags`` protocol only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from agentgym.env import Split, StepResult
from agentgym.envs.search.env import SearchEnv
from agentgym.errors import ConfigError, did_you_mean

__all__ = ["ROLES", "ROLE_PROMPTS", "SearchRolesEnv"]

ROLES: tuple[str, ...] = ("planner", "searcher", "answerer")
PLANNER, SEARCHER, ANSWERER = range(3)

_TEAM = "You are one of a team of three (planner, searcher, answerer) that answers a question "
ROLE_PROMPTS: dict[str, str] = {
    "planner": _TEAM + "with a search engine. You are the planner: read the question and "
    "write a short plan, the facts to look up in order, inside <plan> </plan>. You do not "
    "search and you do not answer. {format_instructions}",
    "searcher": _TEAM + "with a search engine. You are the searcher: follow the plan and "
    "write <search> query </search> to look up one fact (a few key words or a name); the "
    "passages come back inside <information> </information>. You have {max_searches} "
    "searches. When the passages hold what the plan needs, write <done></done>. You do not "
    "answer. {format_instructions}",
    "answerer": _TEAM + "with a search engine. You are the answerer: read the question, the "
    "plan and the passages, and give the final answer inside <answer> </answer>, without "
    "explanation, for example <answer> Velmora </answer>. {format_instructions}",
}

_ROLE_TAG = re.compile(r"<(search|answer|done)>(.*?)</\1>", re.DOTALL)
_PLAN_TAG = re.compile(r"<plan>(.*?)</plan>", re.DOTALL)
_WORD = re.compile(r"[A-Za-z0-9]{3,}")


class SearchRolesEnv(SearchEnv):
    """Search-v0 as a planner -> searcher -> answerer team (see the module docstring).

    Args:
        max_searches: the searcher's budget of searches (then the answerer's turn).
        max_plan_chars: a longer plan is cut to this many characters.
        role_prompts: replace some roles' prompts (``{format_instructions}`` and
            ``{max_searches}`` are filled in).
        **kwargs: Search-v0's arguments (``topk``, ``reward``, ``corpus``, ``qa``, ...);
            ``protocol`` must be ``"tags"`` and ``tag_mode`` ``"lenient"``.
    """

    description: ClassVar[str] = (
        "Search-v0 as a team of roles of one model: planner, searcher, answerer (per-role "
        "prompts, agent_id per step)."
    )
    #: Search-v0's keys, plus the acting role and its prompt in every info.
    info_keys: ClassVar[tuple[str, ...]] = (
        *SearchEnv.info_keys,
        "num_tool_calls",
        "agent_id",
        "agent_prompt",
    )

    def __init__(
        self,
        max_searches: int = 3,
        max_plan_chars: int = 1000,
        role_prompts: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("protocol", "tags") != "tags":
            raise ConfigError(
                f"SearchRoles-v0 speaks Search-R1's tags only; got protocol="
                f"{kwargs['protocol']!r} (use Search-v0 for tool calls)"
            )
        if kwargs.get("tag_mode", "lenient") != "lenient":
            raise ConfigError(
                f"SearchRoles-v0 reads each role's tags leniently; got tag_mode="
                f"{kwargs['tag_mode']!r} (Search-R1's raw-response mode is Search-v0's)"
            )
        super().__init__(**kwargs)
        if int(max_searches) < 1:
            raise ConfigError(f"max_searches must be >= 1, got {max_searches}")
        if int(max_plan_chars) < 1:
            raise ConfigError(f"max_plan_chars must be >= 1, got {max_plan_chars}")
        unknown = sorted(set(role_prompts or {}) - set(ROLES))
        if unknown:
            raise ConfigError(
                f"role_prompts names unknown role(s) {unknown}; the roles are {list(ROLES)}."
                + did_you_mean(unknown[0], ROLES)
            )
        self.max_searches, self.max_plan_chars = int(max_searches), int(max_plan_chars)
        prompts = {**ROLE_PROMPTS, **dict(role_prompts or {})}
        self.role_prompts: dict[str, str] = {
            role: str(prompts[role]).replace("{max_searches}", str(self.max_searches))
            for role in ROLES
        }
        self._role = PLANNER
        self._plan = ""

    # ------------------------------------------------------------ the team

    @property
    def role(self) -> str:
        """The role whose turn it is."""
        return ROLES[self._role]

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        super()._load_task(task_id, split, rng)
        self._role, self._plan = PLANNER, ""
        return self._board()

    def _instruction(self) -> str:
        return (
            "Answer the question as a team: the planner plans, the searcher searches, the "
            f"answerer answers. Question: {self.question.question}"
        )

    def _extra_info(self) -> dict[str, Any]:
        info = super()._extra_info()
        info["agent_id"] = self.role
        info["agent_prompt"] = self.role_prompts[self.role]
        return info

    def _board(self, note: str = "") -> str:
        """The shared board: the plan, the passages found so far, whose turn it is."""
        plan = self._plan or "(not written yet)"
        found = "\n".join(f"<information>{block}</information>" for block in self._information)
        lines = [f"Plan: {plan}", f"Passages found: {found or '(none yet)'}"]
        if note:
            lines.append(note)
        if not self._answer:
            if self._role == SEARCHER:
                left = self.max_searches - self._num_searches
                lines.append(f"Now it is the searcher's turn ({left} searches left).")
            else:
                lines.append(f"Now it is the {self.role}'s turn.")
        return "\n".join(lines)

    # ------------------------------------------------------------ state

    def _state_key(self) -> str:
        searches = self._num_searches if self._role == SEARCHER else ""
        return f"{super()._state_key()}|{self.role[0]}{searches}"

    def canonical_state(self) -> str:
        """Search-v0's state (question, passages retrieved, answered), the role whose turn
        it is and, in the searcher's turn, the searches used. The plan is a message, not
        state: it changes what the next roles read, not what their actions do."""
        searches = self._num_searches if self._role == SEARCHER else ""
        return f"{super().canonical_state()}\nturn: {self.role}{searches}"

    def _last_obs_tail(self) -> str:
        return self._board()

    def _snapshot_state(self) -> tuple:
        return (super()._snapshot_state(), self._role, self._plan)

    def _restore_state(self, task_id: str, split: Split, state: tuple) -> None:
        search_state, role, plan = state
        super()._restore_state(task_id, split, search_state)
        self._role, self._plan = int(role), str(plan)

    # ------------------------------------------------------------ acting

    def _step(self, action: str) -> StepResult:
        if self._role == PLANNER:
            match = _PLAN_TAG.search(action)
            plan = " ".join(match.group(1).split()) if match else ""
            if not plan:
                return self._refuse(
                    "the planner writes the facts to look up inside <plan> </plan>"
                    + ("" if match is None else " (the plan was empty)")
                )
            self._plan = plan[: self.max_plan_chars]
            self._role = SEARCHER
            return StepResult(self._board())
        match = _ROLE_TAG.search(action)
        name = match.group(1) if match else None
        if self._role == SEARCHER:
            if name == "search":
                result = self._search(match.group(2))
                if not result.action_valid:
                    return self._refuse(result.info.get("error", "the search failed"))
                if self._num_searches >= self.max_searches:
                    self._role = ANSWERER
                return StepResult(self._board(), info=result.info)
            if name == "done":
                self._role = ANSWERER
                return StepResult(self._board())
            return self._refuse(
                "the searcher writes <search> query </search>, or <done></done> to hand "
                "over to the answerer; answering is the answerer's turn"
            )
        if name == "answer":
            result = self._final_answer(match.group(2))
            if not result.action_valid:
                return self._refuse(result.info.get("error", "the answer is empty"))
            return result
        return self._refuse(
            "the answerer writes the final answer inside <answer> </answer>; searching was "
            "the searcher's turn"
        )

    def _refuse(self, message: str) -> StepResult:
        """An invalid turn: the role is told why and keeps the turn."""
        message = message.strip()
        return StepResult(
            self._board(f"Your last response was not a valid {self.role} action: {message}."),
            action_valid=False,
            info={"error": message},
        )

    # ------------------------------------------------------------ policies

    def _expert_action(self) -> str:
        """Plan the question's search chain, search each hop not yet found, then answer."""
        row = self.question
        if self._role == PLANNER:
            needs = [hop.need or hop.query for hop in row.hops] or ["the question itself"]
            return "<plan> Find " + "; then ".join(needs) + "; then answer. </plan>"
        if self._role == SEARCHER:
            left = [
                hop
                for hop in row.hops
                if hop.doc_id not in self._retrieved and hop.query.lower() not in self._queries
            ]
            if left:
                need = left[0].need or left[0].query
                return self._render_call("search", left[0].query, f"I need {need}.")
            if not row.hops and not self._queries:
                return self._render_call("search", row.question, "I need to look this up.")
            return "<think>The passages hold what the plan needs.</think>\n<done></done>"
        answer = row.golden_answers[0]
        return self._render_call("answer", answer, f"The passages say the answer is {answer}.")

    def random_action(self, rng: np.random.Generator) -> str:
        """What an untrained team tries: plans of random words, searches and answers of
        words it has seen, early hand-overs, and now and then a response without a tag."""
        words = _WORD.findall(f"{self.question.question} {self._last_obs}") or ["answer"]

        def pick(n: int) -> str:
            return " ".join(words[int(i)] for i in rng.integers(len(words), size=n))

        u = float(rng.random())
        if self._role == PLANNER:
            return f"<plan> find {pick(2)} </plan>" if u < 0.8 else f"I will look up {pick(1)}"
        if u < 0.15:
            return f"I think it is {pick(1)}."
        if self._role == SEARCHER:
            if u < 0.3:
                return "<done></done>"
            if u < 0.4:
                return self._render_call("answer", pick(1), None, rng)
            return self._render_call("search", pick(int(rng.integers(1, 4))), None, rng)
        if u < 0.25:
            return self._render_call("search", pick(1), None, rng)
        return self._render_call("answer", pick(int(rng.integers(1, 3))), None, rng)
