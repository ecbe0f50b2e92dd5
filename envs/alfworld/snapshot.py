"""Snapshots of the TextWorld-PDDL engine: a game's state saved and put back in place.

TextWorld's ``PddlEnv`` holds a game's state twice:

* in Fast Downward's library (``downward_lib``), which lists the applicable actions,
  applies them and plans: one value per variable of the translated (SAS) task. The
  library has no call that sets a state, only ``load_sas`` (a task and its initial
  state) and ``apply_operator``;
* in a TextWorld ``State`` (``PddlState``): the set of true facts the grammar reads to
  write feedback and admissible commands. Applying an action adds its effects there,
  negated ones included (``not_atlocation(...)``), so the set also remembers which
  facts an action once made false.

:func:`take` saves the second: which facts were added to and removed from the set since
``reset`` (a few dozen at most; the rest is the game's, and not saved). :func:`put`
writes that set back and loads both SAS tasks of the game (the plain one and the
planner's) again with their ``begin_state`` section replaced by the values those facts
give, then lets TextWorld derive the admissible commands as after a step. Restoring
costs about one engine step whatever the episode's length (no replay of the actions).

Derived variables (the goal axiom) keep their initial value in the SAS text: Fast
Downward evaluates axioms itself whenever it computes a state.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from agentgym.envs.alfworld.engine import Engine, fact_text
from agentgym.errors import SnapshotError

#: A TextWorld proposition as plain data: ``(name, ((variable, type), ...))``.
Fact = tuple[str, tuple[tuple[str, str], ...]]

_VARIABLE = re.compile(r"begin_variable\n[^\n]*\n(-?\d+)\n\d+\n(.*?)\nend_variable", re.DOTALL)


@dataclass(frozen=True)
class EngineSnapshot:
    """The engine's state (see the module docstring); picklable, a few hundred bytes.

    ``game`` is a digest of the game's PDDL problem (a snapshot only goes back into the
    game it came from), ``added``/``removed`` the facts that differ from the game's state
    after ``reset``, ``moves`` TextWorld's move counter, ``feedback`` the last text.
    """

    game: str
    added: tuple[Fact, ...]
    removed: tuple[Fact, ...]
    moves: int
    feedback: str


class _Task:
    """One SAS task's layout: where its initial state is written, and how a set of true
    atoms gives the value of each variable."""

    def __init__(self, sas: str) -> None:
        start = sas.index("begin_state\n") + len("begin_state\n")
        end = sas.index("\nend_state", start)
        self.head, self.tail = sas[:start], sas[end:]
        initial = sas[start:end].split("\n")
        #: Per variable: (atom, value if true, value if false) for the usual two-valued
        #: "Atom p(..)"/"NegatedAtom p(..)" variable, else (None, {atom: value}, default).
        self.variables: list[tuple[str | None, Any, str | None]] = []
        for (layer, values), init in zip(_VARIABLE.findall(sas), initial, strict=True):
            names = values.split("\n")
            if int(layer) >= 0:  # derived: keeps its initial value, Fast Downward derives it
                self.variables.append((None, {}, init))
                continue
            atoms = {name: str(i) for i, name in enumerate(names) if name.startswith("Atom ")}
            other = next((str(i) for i, n in enumerate(names) if not n.startswith("Atom ")), None)
            if len(names) == 2 and len(atoms) == 1 and other is not None:
                ((atom, value),) = atoms.items()
                self.variables.append((atom, value, other))
            else:
                self.variables.append((None, atoms, other))

    def with_state(self, true_atoms: set[str]) -> bytes:
        values = []
        for atom, when_true, otherwise in self.variables:
            if atom is not None:
                values.append(when_true if atom in true_atoms else otherwise)
                continue
            hit = next((v for name, v in when_true.items() if name in true_atoms), otherwise)
            if hit is None:
                raise SnapshotError("the snapshot's facts leave a planner variable without value")
            values.append(hit)
        return (self.head + "\n".join(values) + self.tail).encode("utf-8")


class _Layout:
    """What restoring needs to know about the loaded game, computed once per game."""

    def __init__(self, game_file: str, pddl_state: Any, problem: str) -> None:
        self.game_file = game_file
        self.digest = hashlib.blake2b(problem.encode(), digest_size=8).hexdigest()
        self.main = _Task(pddl_state.sas)
        self.replan = _Task(pddl_state.sas_replan)
        self.types = dict(pddl_state.name2type)


def _layout(engine: Engine) -> _Layout:
    pddl = engine._env.unwrapped
    layout = getattr(engine, "_snapshot_layout", None)
    if layout is None or layout.game_file != engine.game_file:
        layout = _Layout(str(engine.game_file), pddl._pddl_state, pddl._game_data["pddl_problem"])
        engine._snapshot_layout = layout  # type: ignore[attr-defined]
    return layout


def _as_data(fact: Any) -> Fact:
    return fact.name, tuple((v.name, v.type) for v in fact.arguments)


def take(engine: Engine) -> EngineSnapshot:
    """Save the state of ``engine``'s game (after at least one ``reset``)."""
    if engine.state is None or engine._initial_facts is None:
        raise SnapshotError("the ALFWorld engine has no game in play; reset first")
    pddl = engine._env.unwrapped
    facts = set(pddl._pddl_state.facts)
    initial = engine._initial_facts
    return EngineSnapshot(
        game=_layout(engine).digest,
        added=tuple(sorted(_as_data(f) for f in facts - initial)),
        removed=tuple(sorted(_as_data(f) for f in initial - facts)),
        moves=int(pddl._moves),
        feedback=str(engine.state.feedback),
    )


def put(engine: Engine, snap: EngineSnapshot) -> None:
    """Put ``snap`` back into ``engine``, whose loaded game (after a ``reset``) must be the
    snapshot's."""
    from textworld.core import GameState
    from textworld.logic import Proposition, Variable

    layout = _layout(engine)
    if snap.game != layout.digest:
        raise SnapshotError(
            "the snapshot comes from another ALFWorld game than this task's (were the "
            "games generated with other settings, or read from another game_dir?)"
        )
    pddl = engine._env.unwrapped
    state = pddl._pddl_state
    removed = {Proposition(name, [Variable(*arg) for arg in args]) for name, args in snap.removed}
    added = {Proposition(name, [Variable(*arg) for arg in args]) for name, args in snap.added}
    facts = (set(engine._initial_facts) - removed) | added
    true_atoms = {f"Atom {fact_text(fact)}" for fact in facts if not fact.is_negation}
    state.downward_lib.load_sas(layout.main.with_state(true_atoms))
    state.downward_lib.load_sas_replan(layout.replan.with_state(true_atoms))
    # TextWorld's variables and their counts stay as they were: every action removes and
    # adds as many facts per variable, so after a reset of this game they are unchanged.
    by_signature: defaultdict[Any, set] = defaultdict(set)
    for fact in facts:
        by_signature[fact.signature].add(fact)
    state._facts = by_signature
    pddl.prev_state, pddl._last_action, pddl._moves = None, None, int(snap.moves)
    pddl.state = GameState()
    pddl.state.feedback = pddl.state.raw = snap.feedback
    pddl._gather_infos()
    engine.state = pddl.state
