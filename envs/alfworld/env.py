"""``agentgym/ALFWorld-v0``: ALFWorld's household tasks on the real TextWorld-PDDL engine.

Each task is one ALFWorld game: a room of receptacles (cabinets, a fridge, a sink
basin...) holding objects, and a goal such as "put a clean apple in fridge". The agent
acts with ALFWorld's text commands (``go to fridge 1``, ``open fridge 1``, ``take apple 1
from countertop 2``, ``clean apple 1 with sinkbasin 1``, ``move apple 1 to fridge 1``,
``use desklamp 1``, ``examine ...``, ``look``, ``inventory``) and reads the engine's own
text. Games are generated offline from the floor plans ALFWorld ships (see
:mod:`.games`), or read from a folder of ``game.tw-pddl`` files (``game_dir=``), such as
the original ALFWorld games.

Contract details:

* the first observation is ALFWorld's (``-= Welcome to TextWorld, ALFRED! =-`` / ``You
  are in the middle of a room. Looking quickly around you, you see ...`` / ``Your task is
  to: ...``); each step returns the engine's feedback;
* ``info["admissible_actions"]`` are the engine's admissible commands; an action that is
  not one of them (after folding case and whitespace) is answered as ALFWorld answers it,
  ``Nothing happens.``, with ``action_valid=False``; the engine is not stepped, so the
  state does not change;
* reward 1 when the goal holds, which terminates the episode (``success``; ``score`` is
  1.0 or 0.0, as ALFWorld's ``won``). Episodes that run out of turns are truncated by
  the registered turn limit (50, ALFWorld's evaluation budget);
* ``state_key`` hashes the PDDL facts that actions can change (where the agent is, what
  is open, held, where each object is, clean/hot/cool/toggled), not the feedback text;
  :meth:`ALFWorldEnv.canonical_state` lists those facts;
* ``info["task_type"]`` is one of ALFWorld's six task types;
* the expert follows the Fast Downward planner's walkthrough from the current state,
  planned when first asked and again whenever the agent leaves the plan; its subgoals
  (:meth:`ALFWorldEnv.expert_subgoal`, for plan-execute formats such as HiPER's) are the
  plan's object interactions (take, move, heat, cool, clean, use, ...), each with the
  going and opening that lead to it;
* snapshots (:meth:`ALFWorldEnv.snapshot`) save the engine's PDDL facts, not the actions
  that led there, and restore in about the time of one step (:mod:`.snapshot`).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from agentgym.env import Split, StepResult, TextEnv
from agentgym.envs.alfworld.engine import Engine
from agentgym.envs.alfworld.games import GameInfo, GameStore, GeneratorConfig
from agentgym.envs.alfworld.problem import ProblemSize
from agentgym.envs.alfworld.scenes import TASK_TYPES
from agentgym.errors import NoExpertError

NOTHING_HAPPENS = "Nothing happens."
_INVALID = "Invalid action: "  # how TextEnv answers an empty, overlong or non-text action
_TASK_LINE = re.compile(r"Your task is to:\s*(.+)")


#: TextWorld keeps parser state in module globals (its tatsu grammars), so two threads in
#: the engine at once corrupt each other's parses (``FailedToken``, ``pop from empty
#: list``). One thread at a time enters it, per process: the ``threads`` pool then plays
#: ALFWorld correctly, one call after another; ``processes`` and ``ray`` run in parallel.
_ENGINE_LOCK = threading.RLock()
_Method = TypeVar("_Method", bound=Any)


def _one_thread(method: _Method) -> _Method:
    """Run ``method`` holding the process's TextWorld lock."""

    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _ENGINE_LOCK:
            return method(*args, **kwargs)

    return locked  # type: ignore[return-value]


#: First words of the commands that act on an object: each ends a subgoal of the expert's
#: plan (the commands before it -- go to, open, close, examine, look -- lead up to it).
SUBGOAL_VERBS = frozenset(
    {"take", "move", "put", "heat", "cool", "clean", "slice", "use", "toggle"}
)


def ends_subgoal(command: str) -> bool:
    """Whether ``command`` (normalised) acts on an object, ending a plan step."""
    return command.split(" ", 1)[0] in SUBGOAL_VERBS


def normalize_command(action: str) -> str:
    """Fold case and whitespace and drop a final full stop: ``" Go to  Fridge 1."``
    becomes ``"go to fridge 1"`` (the engine itself only strips the ends)."""
    return " ".join(action.split()).lower().rstrip(".").rstrip()


class ALFWorldEnv(TextEnv):
    """ALFWorld (TextWorld-PDDL) as a text environment; see the module docstring.

    Args:
        num_games: games per split for generated games (default ALFWorld's sizes: 3553
            train, 140 valid, 134 test). Games are generated when first played and cached.
        seed: the generation seed.
        receptacles: (low, high) receptacles per generated room; ``None`` keeps every
            receptacle of the floor plan, as ALFWorld does (the planner expert can then
            take seconds or minutes per plan in big kitchens).
        distractors: (low, high) objects per generated room besides the task's own.
        task_types: restrict generated games to some of ALFWorld's six types.
        max_plan_length: generated games need a planner walkthrough at most this long.
        cache_dir: folder for generated games (default ``$AGENTGYM_CACHE_DIR/alfworld``
            or ``~/.cache/agentgym/alfworld``).
        game_dir: play these ``game.tw-pddl`` files instead of generated ones: a folder
            with split subfolders (``train``, ``valid``/``valid_seen``,
            ``test``/``valid_unseen``) or a mapping ``{split: folder}``.
    """

    description: ClassVar[str] = (
        "ALFWorld household tasks on the TextWorld-PDDL engine (games generated offline "
        "from ALFRED floor plans; planner expert)."
    )

    @_one_thread
    def __init__(
        self,
        num_games: Mapping[str, int] | None = None,
        seed: int = 0,
        receptacles: tuple[int, int] | None = ProblemSize.receptacles,
        distractors: tuple[int, int] = ProblemSize.distractors,
        task_types: Sequence[str] | None = None,
        max_plan_length: int = 30,
        cache_dir: str | os.PathLike | None = None,
        game_dir: str | os.PathLike | Mapping[str, str | os.PathLike] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        self._engine = Engine()  # raises MissingDependencyError naming the pip extra
        config = GeneratorConfig(
            seed=int(seed),
            size=ProblemSize(
                tuple(receptacles) if receptacles is not None else None,  # type: ignore[arg-type]
                tuple(distractors),  # type: ignore[arg-type]
            ),
            task_types=tuple(task_types) if task_types else TASK_TYPES,
            max_plan_length=int(max_plan_length),
        )
        self.store = GameStore(config, num_games, cache_dir, game_dir)
        self._game: GameInfo | None = None
        self._instruction_text = ""
        self._plan: list[str] | None = None
        self._mid_subgoal = False  # the last command led up to an object interaction

    # ------------------------------------------------------------ tasks

    def task_ids(self, split: Split) -> Sequence[str]:
        return self.store.task_ids(split)

    def split_of(self, task_id: str) -> Split:
        return self.store.split_of(task_id)

    @_one_thread
    def game_file(self, task_id: str) -> str:
        """The ``game.tw-pddl`` file of ``task_id`` (generated now if need be)."""
        return str(self.store.game(task_id, self._engine).path)

    @_one_thread
    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        # The engine is deterministic: ``rng`` has nothing to decide.
        self._game = self.store.game(task_id, self._engine)
        self._engine.load(str(self._game.path))
        observation = self._engine.reset()
        match = _TASK_LINE.search(observation)
        self._instruction_text = match.group(1).strip() if match else observation.strip()
        self._plan = None
        self._mid_subgoal = False
        return observation

    def _instruction(self) -> str:
        return self._instruction_text

    def _task_type(self) -> str | None:
        return self._game.task_type if self._game else None

    # ------------------------------------------------------------ state

    @_one_thread
    def _state_key(self) -> str:
        return self._engine.state_digest()

    @_one_thread
    def canonical_state(self) -> str:
        """The facts actions can change, one per line (raw PDDL names)."""
        return "\n".join(self._engine.fluent_facts())

    @_one_thread
    def _admissible_actions(self) -> list[str]:
        return self._engine.admissible_commands

    @_one_thread
    def _snapshot_state(self) -> tuple:
        """The engine's PDDL state (:mod:`.snapshot`: the facts that differ from the
        game's start), the expert's current plan and whether a plan step is under way."""
        plan = None if self._plan is None else tuple(self._plan)
        return self._engine.snapshot(), plan, self._mid_subgoal

    @_one_thread
    def _restore_state(self, task_id: str, split: Split, state: tuple) -> None:
        engine_state, plan, mid_subgoal = state
        game = self.store.game(task_id, self._engine)  # may generate it (with the engine)
        loaded = self._game is not None and self._game.path == game.path
        if not (loaded and self._engine.in_play(str(game.path))):
            self._load_task(task_id, split, np.random.default_rng(0))
        self._engine.restore(engine_state)
        self._plan = None if plan is None else list(plan)
        self._mid_subgoal = mid_subgoal

    def _last_obs_tail(self) -> str:
        """The last observation without the complaints earlier invalid actions put in
        front of it (``Invalid action: ...``), so they do not pile up."""
        observation = self._last_obs
        while observation.startswith(_INVALID):
            _, found, rest = observation.partition("\n\n")
            if not found:
                break
            observation = rest
        return observation

    # ------------------------------------------------------------ acting

    @_one_thread
    def _step(self, action: str) -> StepResult:
        command = normalize_command(action)
        if command not in self._engine.admissible_commands:
            return self.invalid("not an admissible command", observation=NOTHING_HAPPENS)
        feedback, won = self._engine.step(command)
        self._mid_subgoal = not ends_subgoal(command)
        if self._plan and command == self._plan[0]:
            self._plan.pop(0)
        else:
            self._plan = None  # the agent left the plan: re-plan when the expert is asked
        reward = 1.0 if won else 0.0
        return StepResult(feedback, reward=reward, terminated=won, success=won, score=reward)

    @_one_thread
    def _expert_action(self) -> str:
        if not self._plan:
            self._plan = self._engine.plan()
        if not self._plan:
            raise NoExpertError(f"the planner found no plan from this state of {self.task_id!r}")
        return self._plan[0]

    @_one_thread
    def _expert_subgoal(self) -> tuple[str, bool]:
        """The plan's next object interaction (the last command if none is left), and
        whether the expert's next action is the first towards it: at the episode's start
        and after each object interaction. After the agent left the plan, the new plan's
        step counts as started where the agent's last command was a lead-up."""
        self._expert_action()  # plans if needed
        assert self._plan
        subgoal = next((c for c in self._plan if ends_subgoal(c)), self._plan[-1])
        return subgoal, not self._mid_subgoal

    @_one_thread
    def close(self) -> None:
        self._engine.close()
        super().close()
