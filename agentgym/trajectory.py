"""Trajectories: what a rollout produced, kept exactly as the inference engine produced it.

A :class:`Trajectory` is one rollout of one task: a list of :class:`Step`. A *group* is the
N trajectories of the same task (and seed) in a batch; they share ``group_id``.

Each step keeps the tokens in and out (``prompt_ids``, ``response_ids``,
``response_logprobs``) so that training uses exactly what the engine sampled, never a
re-tokenisation of its text. For credit estimation a batch is flattened to per-step
columns (:func:`flatten`), so estimators are vectorised code over arrays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentgym.errors import AgentGymError

TrajectoryStatus = Literal["running", "terminated", "truncated", "error"]


@dataclass
class Step:
    """One turn: the agent saw ``observation``, answered ``response_text``, the env reacted.

    Attributes:
        index: 0-based position in the trajectory.
        observation: the observation the agent answered (before this step's action).
        prompt_messages: the chat messages the prompt was rendered from (the history
            window the response was conditioned on); empty for token-only prompts.
        prompt_ids: the prompt's token ids as sent to the inference engine.
        response_ids: the sampled token ids, as the engine returned them.
        response_logprobs: the engine's log-prob of each sampled token (same length as
            ``response_ids``), or empty when the backend reports none.
        response_text: the decoded response.
        action: the action parsed from the response, ``None`` when it did not parse.
        reward: the reward used for credit (the env's reward plus any penalty the rollout
            engine adds, e.g. for an unparsable response).
        env_reward: the reward the environment returned.
        state_key: the env's ``state_key`` *before* the action (the state the agent acted
            in); anchor-state credit groups on it.
        agent: the env's ``agent_id`` *before* the action (whose turn it was), or ``""``
            for single-agent environments.
        action_valid: whether the response parsed and the env accepted the action.
        terminated, truncated: the env's flags after the action.
        finish_reason: why generation stopped (``"stop"``, ``"length"``, ...).
        info: the env's ``info`` after the action.
    """

    index: int
    observation: str = ""
    prompt_messages: list[dict[str, Any]] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    response_ids: list[int] = field(default_factory=list)
    response_logprobs: list[float] = field(default_factory=list)
    response_text: str = ""
    action: str | None = None
    reward: float = 0.0
    env_reward: float = 0.0
    state_key: str = ""
    agent: str = ""
    action_valid: bool = True
    terminated: bool = False
    truncated: bool = False
    finish_reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Trajectory:
    """One rollout of one task.

    Attributes:
        env_id: registry id, e.g. ``"Sokoban-v0"``.
        task_id, split, seed: what was played (``reset(seed, {"task_id", "split"})``).
        group_id: shared by the N rollouts of one task in a batch.
        traj_id: unique id of this rollout.
        instruction: the task's goal in words.
        steps: the turns, in order.
        status: ``"terminated"`` (the task ended), ``"truncated"`` (turn limit or budget),
            ``"error"`` (the env raised or hung; ``error`` holds the message), or
            ``"running"`` while the rollout is in flight.
        success, score: the env's ``success`` and ``score`` at the last step.
        task_type: the env's ``task_type``, when it has one.
        metadata: free-form (policy spec, sampling settings, iteration, ...).
    """

    env_id: str
    task_id: str
    split: str = "train"
    seed: int | None = None
    group_id: str = ""
    traj_id: str = ""
    instruction: str = ""
    steps: list[Step] = field(default_factory=list)
    status: TrajectoryStatus = "running"
    error: str | None = None
    success: bool = False
    score: float = 0.0
    task_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def total_reward(self) -> float:
        """Sum of the steps' rewards (the undiscounted episode return)."""
        return float(sum(s.reward for s in self.steps))

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def num_tool_calls(self) -> int:
        """Tool calls made, from the env's ``num_tool_calls`` info key (0 without one)."""
        if not self.steps:
            return 0
        return int(self.steps[-1].info.get("num_tool_calls", 0) or 0)

    @property
    def num_invalid(self) -> int:
        return sum(1 for s in self.steps if not s.action_valid)

    @property
    def num_generated_tokens(self) -> int:
        return sum(len(s.response_ids) for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [s.to_dict() for s in self.steps]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["steps"] = [Step.from_dict(s) for s in data.get("steps", [])]
        return cls(**kwargs)

    def to_json(self) -> str:
        """One JSON line; UTF-8 encodable even when a model's text holds lone surrogates
        (``"\\ud800"``): those are written as ``\\u`` escapes and read back as they were.

        The same JSON as ``json.dumps(self.to_dict())``, without :func:`dataclasses.asdict`'s
        deep copy of every token-id list (10-30x faster on window-prompt batches).
        """
        data = {name: getattr(self, name) for name in _TRAJECTORY_FIELDS}
        data["steps"] = [{name: getattr(s, name) for name in _STEP_FIELDS} for s in self.steps]
        text = json.dumps(data, default=_json_default, ensure_ascii=False)
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

    @classmethod
    def from_json(cls, line: str) -> Trajectory:
        return cls.from_dict(json.loads(line))


#: Outside strings JSON has no such characters, so escaping them in place is safe.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


_TRAJECTORY_FIELDS = tuple(f.name for f in fields(Trajectory))
_STEP_FIELDS = tuple(f.name for f in fields(Step))


def _json_default(value: Any) -> Any:
    """JSON for the numpy scalars/arrays, sets and dataclasses that env ``info`` dicts may
    hold."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)


def write_jsonl(path: str | Path, trajectories: Iterable[Trajectory], append: bool = False) -> int:
    """Write one trajectory per line; returns how many were written.

    Each line is flushed as it is written, so a crash keeps every finished trajectory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("a" if append else "w", encoding="utf-8") as f:
        for traj in trajectories:
            f.write(traj.to_json() + "\n")
            f.flush()
            n += 1
    return n


class TrajectoryFileError(AgentGymError, ValueError):
    """A trajectory JSONL file that cannot be read; the message names the file and line."""


def iter_jsonl(path: str | Path) -> Iterator[Trajectory]:
    """Read trajectories written by :func:`write_jsonl`.

    A truncated last line (a writer killed mid-line) is skipped. A line in the middle that
    is not a trajectory -- not UTF-8, not JSON, or JSON of another shape (a missing
    ``env_id``, ``steps`` that are not a list of step objects, a field of the wrong type)
    -- is a :class:`TrajectoryFileError` naming the file and the line.
    """
    try:
        with Path(path).open("rb") as f:
            lines = f.readlines()
    except OSError as exc:
        raise TrajectoryFileError(f"{path}: cannot read the trajectory file ({exc})") from exc
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise TrajectoryFileError(
                f"{where}: not UTF-8 text (byte {raw[exc.start]:#04x} at {exc.start}); "
                "expected the JSON lines `agentgym rollout` writes"
            ) from exc
        except json.JSONDecodeError as exc:
            if number == len(lines) and not raw.endswith(b"\n"):
                return
            raise TrajectoryFileError(f"{where}: not a trajectory JSON line ({exc})") from exc
        except RecursionError:
            raise TrajectoryFileError(f"{where}: JSON nested too deeply to read") from None
        problem = _trajectory_shape_problem(data)
        if problem is None:
            try:
                traj = Trajectory.from_dict(data)
            except (TypeError, ValueError) as exc:
                problem = str(exc)
        if problem is not None:
            raise TrajectoryFileError(
                f"{where}: not a trajectory: {problem}; expected the JSON lines "
                "`agentgym rollout` writes"
            )
        yield traj


def _type_problem(cls: type, data: dict[str, Any], where: str) -> str | None:
    """Whether the fields of ``data`` have the types of ``cls``'s defaults."""
    for f in fields(cls):
        if f.name not in data or data[f.name] is None:
            continue
        if f.default_factory is not MISSING:  # type: ignore[misc]
            expected: type = type(f.default_factory())  # type: ignore[misc]
        elif f.default is not MISSING and f.default is not None:
            expected = type(f.default)
        else:
            continue
        value = data[f.name]
        if expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, expected)
        if not ok:
            return f"{where}{f.name} is {type(value).__name__}, not {expected.__name__}"
    return None


def _trajectory_shape_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    problem = _type_problem(Trajectory, data, "")
    if problem is not None:
        return problem
    steps = data.get("steps", [])
    if not isinstance(steps, list):
        return f"steps is {type(steps).__name__}, not a list"
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            return f"steps[{i}] is {type(step).__name__}, not an object"
        problem = _type_problem(Step, step, f"steps[{i}].")
        if problem is not None:
            return problem
    return None


def read_jsonl(path: str | Path) -> list[Trajectory]:
    return list(iter_jsonl(path))


@dataclass(frozen=True)
class StepColumns:
    """A batch of trajectories flattened to one row per step.

    Row ``i`` is step ``step[i]`` of trajectory ``trajectories[traj[i]]``. Group ids and
    state keys are interned to ints (``group_ids[group[i]]``, ``state_keys[state[i]]``).
    The columns every estimator may ask for by name (see :mod:`agentgym.inputs`) are
    attributes here; :meth:`column` returns any of them, and reads other names from the
    steps' ``info`` on demand.
    """

    group: np.ndarray  # int64, interned group id
    traj: np.ndarray  # int64, index into the trajectory list
    step: np.ndarray  # int64, step index inside the trajectory
    reward: np.ndarray  # float64
    state: np.ndarray  # int64, interned state key
    action_valid: np.ndarray  # bool
    num_tool_calls: np.ndarray  # int64, the trajectory's total, repeated on each of its rows
    group_ids: tuple[str, ...]
    state_keys: tuple[str, ...]
    trajectories: tuple[Trajectory, ...] = ()

    def __len__(self) -> int:
        return len(self.group)

    def credit_kwargs(self) -> dict[str, np.ndarray]:
        """The base columns :func:`agentgym.credit.compute_advantages` takes."""
        return {
            "group": self.group,
            "traj": self.traj,
            "step": self.step,
            "reward": self.reward,
            "state": self.state,
        }

    def steps(self) -> Iterator[Step]:
        """Every step, in row order."""
        for traj in self.trajectories:
            yield from traj.steps

    @cached_property
    def action(self) -> np.ndarray:
        """object array of the parsed action text per row (``""`` where it did not parse)."""
        return _object_column(s.action or "" for s in self.steps())

    @cached_property
    def agent(self) -> np.ndarray:
        """object array of the acting agent per row (the env's ``agent_id``; ``"agent"``
        for single-agent environments)."""
        return _object_column(s.agent or "agent" for s in self.steps())

    @cached_property
    def reward_components(self) -> np.ndarray:
        """float64 ``[rows, K]``: the env's ``info["reward_components"]`` of each step (a
        dict name -> value, or a list), missing components 0, plus a ``"penalty"`` column
        with what the rollout engine added to the env's reward (invalid-action penalties)
        when it added anything. Names are in :attr:`reward_component_names`."""
        return self._components[0]

    @property
    def reward_component_names(self) -> tuple[str, ...]:
        return self._components[1]

    @cached_property
    def _components(self) -> tuple[np.ndarray, tuple[str, ...]]:
        matrix, names = reward_component_matrix([s.info for s in self.steps()])
        # What the rollout engine added to the env's reward (the invalid-action penalty)
        # is a component of its own, so the components add up to the reward credit sees.
        penalty = np.fromiter(
            (s.reward - s.env_reward for s in self.steps()), dtype=np.float64, count=len(self)
        )
        if np.any(np.abs(penalty) > 0):
            matrix = np.concatenate([matrix, penalty[:, None]], axis=1)
            names = (*names, "penalty")
        return matrix, names

    @cached_property
    def stratum(self) -> np.ndarray:
        """The env's ``info["stratum"]`` per row where it gives one, else the trajectory's
        number of tool calls (the structural key of Stratified GRPO)."""
        values = [t.steps[-1].info.get("stratum") if t.steps else None for t in self.trajectories]
        if all(v is None for v in values):
            return self.num_tool_calls
        per_traj = np.array(
            [
                str(v) if v is not None else f"tools={t.num_tool_calls}"
                for v, t in zip(values, self.trajectories, strict=True)
            ],
            dtype=object,
        )
        return per_traj[self.traj]

    @cached_property
    def success(self) -> np.ndarray:
        """bool: whether the row's trajectory succeeded (repeated on each of its rows)."""
        per_traj = np.array([bool(t.success) for t in self.trajectories], dtype=bool)
        return per_traj[self.traj] if per_traj.size else np.zeros(0, dtype=bool)

    @cached_property
    def node(self) -> np.ndarray:
        """int64: the id of the row's *stored step* (a node of a rollout tree). Rows of one
        step that several trajectories share (the common prefix of a ``tree`` rollout's
        leaves, from ``metadata["nodes"]``) have the same id; every other row its own.
        Ids are dense, ``0 .. n_nodes - 1``."""
        codes: dict[tuple[str, int], int] = {}
        out = np.empty(len(self), dtype=np.int64)
        row = 0
        for traj in self.trajectories:
            nodes = traj.metadata.get("nodes")
            shared = isinstance(nodes, list) and len(nodes) == len(traj.steps)
            for s in range(len(traj.steps)):
                key = (traj.group_id, int(nodes[s])) if shared else ("", -1 - row)
                out[row] = codes.setdefault(key, len(codes))
                row += 1
        return out

    @property
    def has_shared_steps(self) -> bool:
        """Whether some rows share a stored step (:attr:`node`): tree rollouts."""
        return bool(len(self)) and int(self.node.max()) + 1 < len(self)

    @cached_property
    def branch(self) -> np.ndarray:
        """int64: for rows of a local re-roll (a trajectory that starts at an intermediate
        state of another, ``metadata["branch_step"]``), the step of the source trajectory
        it branched at; -1 for rows of trajectories that start at the task's reset."""
        per_traj = np.array(
            [int(t.metadata.get("branch_step", -1)) for t in self.trajectories], dtype=np.int64
        )
        return per_traj[self.traj] if per_traj.size else np.zeros(0, dtype=np.int64)

    def column(self, name: str) -> np.ndarray:
        """The per-row column ``name``: an attribute above, or ``info[name]`` of each step
        (the info the env returned after that step's action)."""
        value = getattr(type(self), name, None)
        if isinstance(value, cached_property | property) or name in _FIELD_NAMES:
            return getattr(self, name)
        rows = [s.info.get(name) for s in self.steps()]
        if all(v is None for v in rows):
            raise KeyError(name)
        return _as_column(name, rows)


def _object_column(values: Iterable[Any]) -> np.ndarray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _as_column(name: str, rows: list[Any]) -> np.ndarray:
    """Numbers become a float64 array, anything else an object array (None kept)."""
    if all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in rows):
        return np.asarray(rows, dtype=np.float64)
    if all(isinstance(v, bool | np.bool_) for v in rows):
        return np.asarray(rows, dtype=bool)
    return _object_column(rows)


def reward_component_matrix(
    infos: Sequence[dict[str, Any]],
) -> tuple[np.ndarray, tuple[str, ...]]:
    """``[rows, K]`` matrix of ``info["reward_components"]`` and the K component names.

    A step's components are a dict ``name -> number`` (names in order of first
    appearance across the batch) or a list (named ``"0"``, ``"1"``, ...); a step without
    them, or without one of the names, contributes 0. Non-finite or non-numeric values
    are an error naming the row.
    """
    names: dict[str, int] = {}
    rows: list[dict[str, float]] = []
    for row, info in enumerate(infos):
        given = info.get("reward_components")
        if given is None:
            rows.append({})
            continue
        if isinstance(given, dict):
            items = [(str(k), v) for k, v in given.items()]
        elif isinstance(given, list | tuple | np.ndarray):
            items = [(str(k), v) for k, v in enumerate(given)]
        else:
            raise ValueError(
                f"row {row}: info['reward_components'] must be a dict or a list, "
                f"got {type(given).__name__}"
            )
        parsed: dict[str, float] = {}
        for key, value in items:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"row {row}: reward component {key!r} is {value!r}, not a number"
                ) from None
            if not np.isfinite(number):
                raise ValueError(f"row {row}: reward component {key!r} is {number}")
            parsed[key] = number
            names.setdefault(key, len(names))
        rows.append(parsed)
    matrix = np.zeros((len(rows), len(names)), dtype=np.float64)
    for i, parsed in enumerate(rows):
        for key, number in parsed.items():
            matrix[i, names[key]] = number
    return matrix, tuple(names)


def flatten(trajectories: Sequence[Trajectory]) -> StepColumns:
    """Flatten trajectories into per-step columns, rows in (trajectory, step) order."""
    counts = np.fromiter(
        (len(t.steps) for t in trajectories), dtype=np.int64, count=len(trajectories)
    )
    n = int(counts.sum())
    group_codes: dict[str, int] = {}
    state_codes: dict[str, int] = {}
    traj_group = np.fromiter(
        (group_codes.setdefault(t.group_id, len(group_codes)) for t in trajectories),
        dtype=np.int64,
        count=len(trajectories),
    )
    state = np.fromiter(
        (
            state_codes.setdefault(s.state_key, len(state_codes))
            for t in trajectories
            for s in t.steps
        ),
        dtype=np.int64,
        count=n,
    )
    reward = np.fromiter(
        (s.reward for t in trajectories for s in t.steps), dtype=np.float64, count=n
    )
    bad = np.flatnonzero(~np.isfinite(reward))
    if bad.size:
        raise ValueError(f"step row {int(bad[0])} has a non-finite reward ({reward[bad[0]]})")
    valid = np.fromiter(
        (s.action_valid for t in trajectories for s in t.steps), dtype=bool, count=n
    )
    traj = np.repeat(np.arange(len(trajectories), dtype=np.int64), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    tools = np.fromiter(
        (t.num_tool_calls for t in trajectories), dtype=np.int64, count=len(trajectories)
    )
    return StepColumns(
        group=traj_group[traj],
        traj=traj,
        step=np.arange(n, dtype=np.int64) - starts,
        reward=reward,
        state=state,
        action_valid=valid,
        num_tool_calls=tools[traj],
        group_ids=tuple(group_codes),
        state_keys=tuple(state_codes),
        trajectories=tuple(trajectories),
    )


_FIELD_NAMES = frozenset(f.name for f in fields(StepColumns))
