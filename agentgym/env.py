"""The text-environment contract every agentgym environment follows.

An agentgym environment is a :class:`gymnasium.Env` whose observations and actions are
strings. :class:`TextEnv` is the base class: it implements the parts of the contract that
are the same for every environment (task selection from splits, seeding, garbage-action
handling, stepping after the end, the ``info`` keys) and leaves the task itself to three
hooks, :meth:`TextEnv._load_task`, :meth:`TextEnv._step` and (optionally)
:meth:`TextEnv._expert_action`.

The contract
============

``reset(seed=None, options=None) -> (observation, info)``
    ``options`` may carry ``task_id`` (play exactly this task) and ``split`` (draw a task
    from ``"train"``, ``"valid"`` or ``"test"``; default ``"train"``). The same
    ``(task_id, seed)`` always gives the same episode, including any randomness inside
    the episode (slippery ice, shuffled passages). Without ``task_id`` the task is drawn
    from the split with the environment's seeded generator, so ``reset(seed=s)`` is
    reproducible too.

``step(action) -> (observation, reward, terminated, truncated, info)``
    ``terminated`` means the task reached an end state of its own (solved, failed
    irrecoverably, or the agent gave its final answer). ``truncated`` means the episode
    was cut off from outside, by a turn limit (:class:`agentgym.wrappers.TurnLimit`)
    or a time budget; the agent could have gone on. Credit code treats both as the end
    of the trajectory; only ``terminated`` states have no future value.

Bad actions are never exceptions. An action that is not a string, is empty, too long, or
has no meaning in the current state gets a feedback observation, ``action_valid=False``
and (by default) zero reward; the episode continues. Stepping after the episode ended
returns the final observation again with ``terminated=True`` and ``action_valid=False``.

``info`` keys
=============

Every environment fills these (the base class guarantees the generic ones):

``task_id`` (str, every call)
    The task being played.
``instruction`` (str, every call)
    The goal in words, e.g. "push every box onto a target".
``state_key`` (str, every call)
    A short string that names the canonical environment state: equal states give equal
    keys, different states give different keys *even when the feedback text is the same*
    ("Nothing happens." from two different rooms must not collide). It must not contain
    the step count or anything else that is not part of the state. Anchor-state (GiGPO)
    and hierarchical (HGPO) credit group steps on it.
``action_valid`` (bool, after a step)
    Whether the action was understood and legal. ``reset`` reports ``True``.
``success`` (bool) and ``score`` (float in [0, 1]) (every call)
    Whether the task is solved, and a graded measure of progress; the values at the last
    step are the episode's result.
``split`` (str, every call)
    The split the task belongs to.

Optional keys: ``admissible_actions`` (list of str, the legal actions in this state),
``tools`` (list of OpenAI function schemas the agent may call), ``task_type`` (str, a
category for per-type evaluation reports), ``num_tool_calls`` (int, tool calls so far).

Snapshots (optional)
====================

``snapshot() -> EnvSnapshot`` and ``restore(snapshot)``, where
:attr:`TextEnv.supports_snapshot` is true, let a rollout branch from a state (trees,
local re-rollouts). Environments without them raise
:class:`~agentgym.errors.SnapshotNotSupportedError`, which names the class. A snapshot is

* exact: after ``restore(s)``, stepping with the same actions gives exactly the
  observations, rewards, ``terminated``/``truncated`` flags, ``state_key``\\ s and
  ``info``\\ s that the episode gave after ``s`` was taken; in-episode randomness
  (slippery ice) continues from the saved generator state, and the base class's
  bookkeeping (task, split, whether the episode ended, the last observation, the running
  ``success``/``score``) comes back too, as does ``np_random`` (so even the next
  ``reset()`` without a seed draws the same task);
* cheap: it holds what the episode changed, never the task's static data (a level, a
  catalog, a game): a few hundred bytes to a few kilobytes, saved in microseconds
  (``benchmarks/snapshot_speed.py`` measures every family against one step);
* picklable and independent: it travels to a worker process or Ray actor, shares no
  mutable object with the environment, and can be restored any number of times, into any
  instance of the same class built with the same arguments, with or without a
  ``reset()`` before, and whatever task that instance played last.

Through wrappers (what :func:`agentgym.make` returns) use :func:`agentgym.snapshot` and
:func:`agentgym.restore`, which also save the wrappers' state (the turn counter of
:class:`agentgym.wrappers.TurnLimit`); see :mod:`agentgym.snapshots`. The conformance
checker's ``snapshot`` rule replays random walks from restored snapshots and compares
everything.

An environment supports snapshots by implementing two hooks:
:meth:`TextEnv._snapshot_state` (its own episode state, as immutable or copied
values) and :meth:`TextEnv._restore_state` (put that state back, loading the task first
when the instance has another one, or none, loaded).

Splits
======

:meth:`TextEnv.task_ids` lists the tasks of a split. Splits never share a task, and for
generated environments never share a level either (see :func:`split_of_level`): a
policy evaluated on ``test`` has not seen those levels in ``train``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import gymnasium
import numpy as np
from gymnasium import spaces

from agentgym.errors import (
    InvalidTaskError,
    NoExpertError,
    SnapshotError,
    SnapshotNotSupportedError,
)
from agentgym.snapshots import EnvSnapshot, class_path, rng_from_state, rng_state

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("train", "valid", "test")

#: Characters that the text spaces sample from. Observations and actions may hold any
#: unicode; this only shapes ``action_space.sample()`` (the garbage that checkers send).
_SAMPLE_CHARSET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 <>/_-.,:;!?()[]{}\"'\n"
)


class TextSpace(spaces.Text):
    """A space of strings of at most ``max_length`` characters, any unicode allowed.

    Gymnasium's :class:`~gymnasium.spaces.Text` restricts membership to its sampling
    charset; real agent text has punctuation, newlines and unicode, so membership here
    is just "a ``str`` that is not too long". Sampling still draws from a small charset.
    """

    def __init__(self, max_length: int = 65536, seed: int | None = None) -> None:
        super().__init__(max_length=max_length, min_length=0, charset=_SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextSpace) and other.max_length == self.max_length


@dataclass
class StepResult:
    """What :meth:`TextEnv._step` returns: the outcome of one valid or invalid action.

    ``info`` holds environment-specific extras; the base class adds the contract keys.
    ``success`` and ``score`` left at ``None`` keep the episode's running values (a step
    that does not decide the outcome need not repeat it).
    """

    observation: str
    reward: float = 0.0
    terminated: bool = False
    action_valid: bool = True
    success: bool | None = None
    score: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is the same in every process and Python version."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def split_of_level(level_text: str, weights: Sequence[float] = (0.8, 0.1, 0.1)) -> Split:
    """The split a generated level belongs to, decided by the level's content alone.

    Generated environments draw candidate levels from a seed stream and keep, for split
    ``s``, only levels whose content hashes into ``s``'s share of ``[0, 1)``. Two seeds
    that happen to generate the same level therefore always land in the same split, so
    ``valid`` and ``test`` never contain a level seen in ``train``.
    """
    u = stable_hash("level", level_text) / 2.0**64
    edges = np.cumsum(weights) / float(sum(weights))
    return SPLITS[min(int(np.searchsorted(edges, u, side="right")), len(SPLITS) - 1)]


class TextEnv(gymnasium.Env[str, str]):
    """Base class of agentgym environments (see the module docstring for the contract).

    Subclasses implement:

    * :meth:`task_ids` -- the task ids of a split;
    * :meth:`_load_task` -- set up the episode for a task and return the first observation;
    * :meth:`_step` -- apply a (string) action and return a :class:`StepResult`;
    * :meth:`_state_key` -- the canonical state;
    * :meth:`_instruction` -- the goal in words;
    * optionally :meth:`_expert_action` (and :meth:`_expert_subgoal`, where the expert
      plans in steps), :meth:`_admissible_actions`, :meth:`_tools`, :meth:`_task_type`;
    * optionally :meth:`_snapshot_state` and :meth:`_restore_state`, which turn on
      :meth:`snapshot`/:meth:`restore` (see "Snapshots" in the module docstring).

    Class attributes: ``description`` (one line for ``agentgym env list``) and
    ``max_action_chars`` (longer actions are rejected as invalid without parsing).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"]}
    description: ClassVar[str] = ""
    max_action_chars: ClassVar[int] = 4096
    #: Reward given for an invalid action (before any shaping done by the rollout engine).
    invalid_action_reward: ClassVar[float] = 0.0
    #: The response format (an :mod:`agentgym.parsers` name) prompts use unless a config
    #: says otherwise. Instances may override it (e.g. per action protocol).
    action_parser: str = "think_action"
    #: Optional ``info`` keys this environment fills besides the contract's, e.g.
    #: ``("num_tool_calls", "reward_components", "agent_id")``. A config whose estimator
    #: needs an input carried by such a key checks this list when it loads (and, for a
    #: key not listed, plays one step to look); see :mod:`agentgym.inputs`.
    info_keys: ClassVar[tuple[str, ...]] = ()
    #: The turn limit this environment gets when neither its registration nor a config
    #: sets one (``None``: :data:`agentgym.registry.DEFAULT_MAX_STEPS`).
    default_max_steps: ClassVar[int | None] = None

    def __init__(self, render_mode: str | None = None, max_observation_chars: int = 65536) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; "
                f"choose one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.observation_space = TextSpace(max_observation_chars)
        self.action_space = TextSpace(self.max_action_chars * 4)
        self._task_id: str | None = None
        self._split: Split = "train"
        self._done = True
        self._last_obs = ""
        self._state_obs = ""  # the observation after the last valid step (or reset)
        self._success = False
        self._score = 0.0

    # ----------------------------------------------------------------- hooks to implement

    def task_ids(self, split: Split) -> Sequence[str]:
        """The task ids of ``split``, in a fixed order."""
        raise NotImplementedError

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        """Set up the episode for ``task_id``; return the first observation.

        ``rng`` is seeded from ``(task_id, seed)``; use it for all in-episode randomness.
        """
        raise NotImplementedError

    def _step(self, action: str) -> StepResult:
        """Apply ``action`` (a non-empty string of acceptable length)."""
        raise NotImplementedError

    def _state_key(self) -> str:
        raise NotImplementedError

    def _instruction(self) -> str:
        raise NotImplementedError

    def _expert_action(self) -> str:
        raise NoExpertError(f"{type(self).__name__} has no expert")

    def _expert_subgoal(self) -> tuple[str, bool] | None:
        """The subgoal the expert's next action serves and whether that action starts it
        (see :meth:`expert_subgoal`); ``None`` where the expert has no plan steps."""
        return None

    def _admissible_actions(self) -> list[str] | None:
        return None

    def _tools(self) -> list[dict[str, Any]] | None:
        return None

    def _task_type(self) -> str | None:
        return None

    def canonical_state(self) -> str | None:
        """The full current state as text, or ``None`` where the env does not offer it.

        Used by the conformance checker: two moments with equal canonical states must have
        equal ``state_key`` and vice versa. Not shown to the agent.
        """
        return None

    def random_action(self, rng: np.random.Generator) -> str:
        """A random action of the kind an untrained agent would try.

        Powers the ``random`` policy and the checker's random walks. The default draws
        from ``admissible_actions``; environments without them override it.
        """
        admissible = self._admissible_actions()
        if not admissible:
            raise NotImplementedError(f"{type(self).__name__} has no random_action()")
        return admissible[int(rng.integers(len(admissible)))]

    def _extra_info(self) -> dict[str, Any]:
        """Environment-specific keys added to every ``info`` (e.g. ``num_tool_calls``)."""
        return {}

    def _snapshot_state(self) -> Any:
        """The environment's own episode state, for :meth:`snapshot` (optional hook).

        Return picklable values that share nothing mutable with the environment (tuples,
        frozensets, strings, copies), holding everything a step can change or read:
        positions, histories, counters, the state of in-episode generators
        (:func:`agentgym.snapshots.rng_state`), caches whose contents change what a later
        step or the expert answers. Leave out what the task alone fixes (levels, catalogs,
        games); :meth:`_restore_state` gets the task id to find it again. The base class
        saves its own bookkeeping (task, split, done, last observation, success, score).
        """
        raise SnapshotNotSupportedError(type(self).__name__)

    def _restore_state(self, task_id: str, split: Split, state: Any) -> None:
        """Put back a state :meth:`_snapshot_state` returned, for task ``task_id`` (hook).

        The instance may have played another task since, or none at all (a fresh
        instance in a worker process): load the task's static data first when it is not
        the one loaded. Copy mutable values out of ``state``, since the same snapshot may
        be restored again. Raise :class:`~agentgym.errors.SnapshotError` for a state this
        instance cannot take (e.g. one from an env built with other arguments).
        """
        raise SnapshotNotSupportedError(type(self).__name__)

    # ----------------------------------------------------------------- public API

    @property
    def task_id(self) -> str | None:
        """The task of the current episode (``None`` before the first reset)."""
        return self._task_id

    @property
    def has_expert(self) -> bool:
        """Whether :meth:`expert_action` is available for this environment."""
        return type(self)._expert_action is not TextEnv._expert_action

    @property
    def supports_snapshot(self) -> bool:
        """Whether :meth:`snapshot` and :meth:`restore` work (the class implements
        :meth:`_snapshot_state` and :meth:`_restore_state`). For an env inside wrappers,
        ask :func:`agentgym.supports_snapshot`, which checks the wrappers too."""
        cls = type(self)
        return (
            cls._snapshot_state is not TextEnv._snapshot_state
            and cls._restore_state is not TextEnv._restore_state
        )

    def snapshot(self) -> EnvSnapshot:
        """Save the current moment of the episode (see "Snapshots" in :mod:`agentgym.env`).

        Raises :class:`~agentgym.errors.SnapshotNotSupportedError` where the environment
        has no snapshots, :class:`~agentgym.errors.SnapshotError` before ``reset()``.
        Saves the environment alone; :func:`agentgym.snapshot` also saves its wrappers.
        """
        if not self.supports_snapshot:
            raise SnapshotNotSupportedError(type(self).__name__)
        return self._take_snapshot(())

    def _take_snapshot(self, wrappers: tuple[tuple[str, Any], ...]) -> EnvSnapshot:
        """:meth:`snapshot` with the wrappers' states (:func:`agentgym.snapshot` uses it)."""
        if self._task_id is None:
            raise SnapshotError(
                f"{type(self).__name__} has no episode to snapshot yet; call reset() first"
            )
        return EnvSnapshot(
            env=class_path(type(self)),
            task_id=self._task_id,
            split=self._split,
            done=self._done,
            last_obs=self._last_obs,
            state_obs=self._state_obs,
            success=self._success,
            score=self._score,
            rng=rng_state(self.np_random),
            rng_seed=self._np_random_seed,
            state=self._snapshot_state(),
            wrappers=wrappers,
        )

    def restore(self, snapshot: EnvSnapshot) -> None:
        """Go back to the moment ``snapshot`` saved; the next :meth:`step` continues from it.

        ``snapshot`` must come from :meth:`snapshot` of this class (any instance built with
        the same arguments, in any process). One taken through wrappers
        (:func:`agentgym.snapshot`) must be restored with :func:`agentgym.restore`.
        """
        if not self.supports_snapshot:
            raise SnapshotNotSupportedError(type(self).__name__)
        if isinstance(snapshot, EnvSnapshot) and snapshot.wrappers:
            names = [name for name, _ in snapshot.wrappers]
            raise SnapshotError(
                f"this snapshot also holds the state of the wrappers {names}; restore it "
                "with agentgym.restore(env, snapshot) on the wrapped env, so their state "
                "(e.g. the turn count) comes back too"
            )
        self._restore_episode(snapshot)

    def _restore_episode(self, snapshot: EnvSnapshot) -> None:
        """:meth:`restore` without the wrapper check (:func:`agentgym.restore` uses it)."""
        if not isinstance(snapshot, EnvSnapshot):
            raise SnapshotError(f"expected an EnvSnapshot, got {type(snapshot).__name__}")
        here = class_path(type(self))
        if snapshot.env != here:
            raise SnapshotError(
                f"the snapshot was taken from {snapshot.env}, not {here}; restore it into "
                "an instance of the same class built with the same arguments"
            )
        try:
            split = self.split_of(snapshot.task_id)
        except InvalidTaskError as exc:
            raise SnapshotError(
                f"the snapshot's task {snapshot.task_id!r} is not one of this env's ({exc}); "
                "was it built with other arguments?"
            ) from exc
        if split != snapshot.split:
            raise SnapshotError(
                f"the snapshot's task {snapshot.task_id!r} was in split {snapshot.split!r}, "
                f"here it is in {split!r}; was the env built with other arguments?"
            )
        try:
            self._restore_state(snapshot.task_id, split, snapshot.state)
        except BaseException:
            self._task_id, self._done = None, True  # half restored: no valid episode
            raise
        self._task_id, self._split = snapshot.task_id, split
        self._done, self._last_obs = snapshot.done, snapshot.last_obs
        self._state_obs = snapshot.last_obs if snapshot.state_obs is None else snapshot.state_obs
        self._success, self._score = snapshot.success, snapshot.score
        self._np_random = rng_from_state(snapshot.rng, reuse=self._np_random)
        self._np_random_seed = snapshot.rng_seed

    def split_of(self, task_id: str) -> Split:
        """The split ``task_id`` belongs to; :class:`InvalidTaskError` if it is unknown."""
        for split in SPLITS:
            if task_id in self._task_set(split):
                return split
        raise InvalidTaskError(task_id, self._all_task_hint())

    def expert_action(self) -> str:
        """An action of an optimal (or strong) solver in the current state.

        Used for SFT demonstrations and tests. Raises :class:`NoExpertError` where the
        environment has no solver.
        """
        if self._done:
            raise NoExpertError("the episode has ended; call reset() first")
        return self._expert_action()

    def expert_subgoal(self) -> tuple[str, bool] | None:
        """``(subgoal, starts)``: the step of the expert's plan that its next action
        (:meth:`expert_action`) works towards, in words, and whether that action is the
        plan step's first; ``None`` where the expert does not plan in steps.

        Demonstrations in a plan-execute response format (HiPER's
        ``<switch>/<subgoal>/<action>``) are annotated with it: ``starts`` becomes SWITCH,
        otherwise KEEP. Raises :class:`NoExpertError` as :meth:`expert_action` does.
        """
        if self._done:
            raise NoExpertError("the episode has ended; call reset() first")
        return self._expert_subgoal()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        split = options.pop("split", None)
        task_id = options.pop("task_id", None)
        if options:
            raise ValueError(
                f"unknown reset option(s) {sorted(options)}; valid options: 'task_id', 'split'"
            )
        if split is not None and split not in SPLITS:
            raise ValueError(f"split={split!r} is not one of {list(SPLITS)}")
        if task_id is None:
            split = split or "train"
            ids = self.task_ids(split)
            if not ids:
                raise InvalidTaskError(f"<any task of split {split!r}>", "the split is empty")
            task_id = ids[int(self.np_random.integers(len(ids)))]
        else:
            task_id = str(task_id)
            actual = self.split_of(task_id)
            if split is not None and actual != split:
                raise InvalidTaskError(task_id, f"it belongs to split {actual!r}, not {split!r}")
            split = actual
        # Without a seed each episode still gets its own randomness, drawn from the env's
        # generator (itself seeded by the last explicit seed), so N resets differ.
        episode_seed = seed if seed is not None else int(self.np_random.integers(2**62))
        episode_rng = np.random.default_rng(stable_hash(task_id, episode_seed))
        self._task_id, self._split = task_id, split
        self._done, self._success, self._score = False, False, 0.0
        self._last_obs = self._state_obs = self._load_task(task_id, split, episode_rng)
        info = self._info()
        info["action_valid"] = True
        return self._last_obs, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._task_id is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        if self._done:
            info = self._info()
            info.update(action_valid=False, error="the episode has ended; call reset()")
            return self._last_obs, 0.0, True, False, info
        problem = self._action_problem(action)
        result = self.invalid(problem) if problem is not None else self._step(action)
        if result.success is not None:
            self._success = bool(result.success)
        if result.score is not None:
            self._score = float(result.score)
        self._done = bool(result.terminated)
        self._last_obs = result.observation
        if result.action_valid:
            self._state_obs = result.observation
        info = self._info()
        info.update(result.info)
        info["action_valid"] = bool(result.action_valid)
        return result.observation, float(result.reward), self._done, False, info

    def render(self) -> str | None:
        if self.render_mode == "human":
            print(self._last_obs)
            return None
        return self._last_obs

    # ----------------------------------------------------------------- internals

    def _action_problem(self, action: Any) -> str | None:
        if not isinstance(action, str):
            return f"an action must be text, got {type(action).__name__}."
        if not action.strip():
            return "the action is empty."
        if len(action) > self.max_action_chars:
            return (
                f"the action is {len(action)} characters long; "
                f"at most {self.max_action_chars} are accepted."
            )
        if "\x00" in action:
            return "the action contains a NUL character."
        return None

    def invalid(self, problem: str, *, observation: str | None = None, **info: Any) -> StepResult:
        """The answer to an action that cannot be performed, for every environment.

        Returns feedback (``observation``, by default :meth:`_invalid_observation`), the
        class's ``invalid_action_reward``, ``action_valid=False`` and ``info["error"] =
        problem`` (plus ``info``); the episode's state, running success and score stay as
        they were. The base class answers garbage (empty, too long, not text) with it, and
        environments answer their own invalid actions with it from :meth:`_step`, passing
        ``observation`` where they answer in their own voice (Search-R1's "My previous
        action is invalid", ALFWorld's "Nothing happens.").
        """
        return StepResult(
            observation=self._invalid_observation(problem) if observation is None else observation,
            reward=self.invalid_action_reward,
            action_valid=False,
            info={"error": problem, **info},
        )

    def _invalid_observation(self, problem: str) -> str:
        """What the agent is told after an invalid action: the problem, then the current
        state (:meth:`_last_obs_tail`)."""
        return f"Invalid action: {problem}\n\n{self._last_obs_tail()}"

    def _last_obs_tail(self) -> str:
        """What the agent is reminded of after an invalid action: the current state."""
        return self._render_state()

    def _render_state(self) -> str:
        """The current state as text (defaults to the observation after the last valid
        step: invalid-action feedback does not pile up in later feedback)."""
        return self._state_obs

    def _task_set(self, split: Split) -> frozenset[str]:
        cache = self.__dict__.setdefault("_task_sets", {})
        if split not in cache:
            cache[split] = frozenset(self.task_ids(split))
        return cache[split]

    def _all_task_hint(self) -> str:
        examples = [ids[0] for ids in (self.task_ids(s) for s in SPLITS) if len(ids)]
        return f"it is in no split; task ids look like {examples}"

    def _info(self) -> dict[str, Any]:
        assert self._task_id is not None
        info: dict[str, Any] = {
            "task_id": self._task_id,
            "split": self._split,
            "instruction": self._instruction(),
            "state_key": self._state_key(),
            "success": self._success,
            "score": self._score,
        }
        for key, value in (
            ("admissible_actions", self._admissible_actions()),
            ("tools", self._tools()),
            ("task_type", self._task_type()),
        ):
            if value is not None:
                info[key] = value
        info.update(self._extra_info())
        return info
