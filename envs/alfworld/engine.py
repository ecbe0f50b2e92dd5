"""The TextWorld-PDDL engine behind ``agentgym/ALFWorld-v0``.

:class:`Engine` plays ``game.tw-pddl`` files with TextWorld's ``PddlEnv`` wrapped in
ALFWorld's ``AlfredDemangler`` (``cabinet_bar__plus_00...`` -> ``cabinet 1``) and
``AlfredInfos``: the stack ``textworld.gym`` builds for each game slot, without the gym
layer's game cycling and batching (agentgym picks the game per ``reset``). Everything
the agent reads (the room description, feedback, ``Nothing happens.``, the admissible
commands) comes from the engine; the planner is Fast Downward, the engine's own.

TextWorld is imported when an :class:`Engine` is built, never when agentgym is imported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

INSTALL_HINT = "pip install 'agentgym[alfworld]'"

#: Predicates the ALFRED domain's actions change; every other fact of a game is constant.
#: ``checked`` is changed too (by look/examine/open) but no precondition, goal or text reads
#: it, so it is bookkeeping, not state: leaving it out lets "examine, then go" and "go"
#: reach the same state key.
FLUENT_PREDICATES: frozenset[str] = frozenset(
    {
        "atlocation",
        "opened",
        "inreceptacle",
        "objectatlocation",
        "holds",
        "holdsany",
        "isclean",
        "ishot",
        "iscool",
        "ison",
        "istoggled",
        "issliced",
    }
)


class MissingDependencyError(ImportError):
    """TextWorld or ALFWorld is not installed."""


def require_textworld() -> tuple[Any, Any, Any]:
    """Import TextWorld and ALFWorld's wrappers, or say how to install them."""
    try:
        import fast_downward  # noqa: F401  (PddlEnv needs it; textworld only warns late)
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    except ImportError as exc:
        raise MissingDependencyError(
            f"ALFWorld-v0 needs TextWorld, its Fast Downward planner and ALFWorld "
            f"({exc.name or exc} is missing): {INSTALL_HINT}"
        ) from exc
    return textworld, AlfredDemangler, AlfredInfos


def fact_text(fact: Any) -> str:
    """``inreceptacle(apple_bar_..., fridge_bar_...)`` for a TextWorld proposition."""
    return f"{fact.name}({', '.join(v.name for v in fact.arguments)})"


class Engine:
    """One TextWorld-PDDL game at a time (load, reset, step), with ALFWorld's wrappers.

    Args:
        admissible: ask the engine for admissible commands (ALFWorld does).
        policy_commands: ask the engine to re-plan after every step (the env plans
            lazily with :meth:`plan` instead).
        parse_caches: memoize TextWorld's grammar parsers (:mod:`.speedups`; same text,
            about 4x more steps per second).
    """

    def __init__(
        self, admissible: bool = True, policy_commands: bool = False, parse_caches: bool = True
    ) -> None:
        textworld, demangler, infos = require_textworld()
        if parse_caches:
            from agentgym.envs.alfworld import speedups

            speedups.install()
        self._textworld = textworld
        self._wrappers = (demangler, infos)
        self.request_infos = textworld.EnvInfos(
            won=True,
            admissible_commands=admissible,
            policy_commands=policy_commands,
            extras=["gamefile"],
        )
        self._env: Any = None
        self.game_file: str | None = None
        self.state: Any = None
        # The game's facts right after reset: snapshots save only what differs from them.
        self._initial_facts: frozenset[Any] | None = None

    def load(self, game_file: str) -> None:
        """Load a ``game.tw-pddl`` file (no-op if it is the loaded one)."""
        if game_file == self.game_file and self._env is not None:
            return
        self.game_file, self._initial_facts = None, None  # until the load succeeds
        if self._env is None:
            demangler, infos = self._wrappers
            self._env = self._textworld.start(  # builds the wrapper stack and loads the game
                game_file, self.request_infos, wrappers=[demangler(), infos]
            )
        else:
            self._env.load(game_file)
        self.game_file = game_file

    def reset(self) -> str:
        self.state = self._env.reset()
        self._initial_facts = frozenset(self._env.unwrapped._pddl_state.facts)
        return str(self.state.feedback)

    def step(self, command: str) -> tuple[str, bool]:
        """Run a command; return the feedback and whether the goal is reached."""
        self.state, _score, _done = self._env.step(command)
        return str(self.state.feedback), bool(self.state["won"])

    @property
    def won(self) -> bool:
        return bool(self.state["won"])

    @property
    def admissible_commands(self) -> list[str]:
        return list(self.state["admissible_commands"])

    def facts(self) -> Iterable[Any]:
        """The true facts of the current state (TextWorld propositions, raw PDDL names)."""
        return self.state["_facts"]

    def fluent_facts(self) -> list[str]:
        """The facts that can change, as sorted text: the canonical state."""
        return sorted(fact_text(f) for f in self.facts() if f.name.lower() in FLUENT_PREDICATES)

    def state_digest(self) -> str:
        return hashlib.blake2b("\n".join(self.fluent_facts()).encode(), digest_size=8).hexdigest()

    def plan(self) -> list[str]:
        """A planner walkthrough from the current state (``[]`` if none is found).

        The same call ``policy_commands`` makes after every step, made only when asked.
        """
        pddl_env = self._env.unwrapped
        return list(pddl_env._pddl_state.replan(pddl_env._entity_infos))

    def in_play(self, game_file: str) -> bool:
        """Whether ``game_file`` is loaded and has been reset (a snapshot can go back in)."""
        return self.game_file == game_file and self._initial_facts is not None

    def snapshot(self) -> Any:
        """The state of the game in play (:mod:`.snapshot`: facts, not replayed actions)."""
        from agentgym.envs.alfworld.snapshot import take

        return take(self)

    def restore(self, snapshot: Any) -> None:
        """Put back a state :meth:`snapshot` saved in this game (loaded and reset)."""
        from agentgym.envs.alfworld.snapshot import put

        put(self, snapshot)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
        self._env, self.game_file, self.state = None, None, None
        self._initial_facts = None
