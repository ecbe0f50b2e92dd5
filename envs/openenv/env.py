"""``agentgym/OpenEnv-v0``: any OpenEnv environment server as an agentgym environment.

Each environment instance opens one WebSocket session with the server (its own
environment instance there, see :mod:`.client`). ``server`` is the server's base URL, or
``{"command": [...]}`` to start one as a subprocess (``{port}`` in the command becomes a
free loopback port; see :mod:`.launch`). With no arguments the env starts the shipped
Tower of Hanoi server (:mod:`.hanoi.server`) and plays its tasks.

Tasks
    ``tasks=``: a JSONL file (or ``{split: file}``) of rows ``{"task_id", "split",
    "reset": {reset kwargs}, "instruction", "task_type"}``; ``reset`` is sent as the
    server's reset arguments (OpenEnv passes those its ``reset`` accepts). Without tasks,
    the tasks are seeds in ranges that never overlap (``seeds=``, by default train
    0-999, valid 1000-1099, test 1100-1199), sent as ``reset(seed=...)``.
Actions
    A JSON object that the server's action schema (``GET /schema``) accepts, checked
    here with ``jsonschema`` first; or, where the action model has exactly one required
    string field (``text_field=``, found by itself), plain text for that field: ``A C``
    becomes ``{"move": "A C"}``.
Observations
    ``observation_field=`` names the field shown to the agent; by default the only
    string field, else every field as ``name: value`` lines.
Fields the adapter reads when an observation has them (the shipped server fills all):
    ``action_valid`` (bool), ``success`` (bool), ``score`` (float in [0, 1]),
    ``admissible_actions`` (list of str), ``expert_action`` (the next action of a strong
    solver: makes ``expert_action()`` and SFT demonstrations work).
    Without ``success``/``score``: ``success`` is reaching ``done`` with a return of at
    least ``max_return``, ``score`` the return over ``max_return``, clipped to [0, 1].

Reward is the server's ``reward`` (``None`` counts as 0); ``terminated`` is its
``done``. ``state_key`` is a short hash of the task and the server's ``/state`` without
OpenEnv's ``episode_id`` and ``step_count`` (an OpenEnv ``State`` keeps extra fields for
the real state, as the Hanoi server's pegs); where nothing is left it falls back to the
observation's fields (then equal-looking states collide, as they would for the agent).

Invalid actions (not JSON, failing the schema, or refused by the server: ``rejected``)
get feedback and ``action_valid=False``. A lost connection or an answer that does not
come within ``message_timeout`` is feedback too (``info["server_failure"]``), never an
exception; the next reset opens a new session.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from agentgym.env import SPLITS, Split, StepResult, TextEnv
from agentgym.envs.openenv import launch
from agentgym.envs.openenv.client import (
    OpenEnvConnectionError,
    OpenEnvReply,
    OpenEnvSession,
    fetch_schema,
)
from agentgym.errors import ConfigError

DATA = Path(__file__).parent / "data"
HANOI_TASKS = DATA / "hanoi_tasks.jsonl"
HANOI_SERVER = (sys.executable, "-m", "agentgym.envs.openenv.hanoi.server", "--port", "{port}")
DEFAULT_SEEDS: dict[str, tuple[int, int]] = {
    "train": (0, 1000),
    "valid": (1000, 1100),
    "test": (1100, 1200),
}
#: Observation fields with a meaning for the adapter (not shown as text).
CONVENTION_FIELDS = ("action_valid", "success", "score", "admissible_actions", "expert_action")
_STATE_BOOKKEEPING = ("episode_id", "step_count")
_WORD = re.compile(r"[A-Za-z0-9]+")


def _digest(text: str, size: int = 6) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).hexdigest()


def load_task_rows(source: str | Path | Mapping[str, str | Path]) -> list[dict[str, Any]]:
    """Task rows from a JSONL file or ``{split: file}`` (see the module docstring)."""
    files = (
        [(Path(p), s) for s, p in source.items()]
        if isinstance(source, Mapping)
        else [(Path(source), None)]
    )
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    known = {"task_id", "split", "reset", "instruction", "task_type"}
    for path, split in files:
        if not path.expanduser().is_file():
            raise FileNotFoundError(f"task file {str(path)!r} does not exist")
        lines = path.expanduser().read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where} is not JSON: {exc.msg}") from exc
            if not isinstance(row, dict) or not isinstance(row.get("task_id"), str):
                raise ConfigError(f"{where} must be an object with a string 'task_id'")
            unknown = sorted(set(row) - known)
            if unknown:
                raise ConfigError(f"{where} has unknown field(s) {unknown}; valid: {sorted(known)}")
            row = {"reset": {}, **row, "split": row.get("split", split)}
            if row["split"] not in SPLITS or (split is not None and row["split"] != split):
                raise ConfigError(f"{where}: split {row['split']!r} is not one of {list(SPLITS)}")
            if not isinstance(row["reset"], dict):
                raise ConfigError(f"{where}: 'reset' must be an object of reset arguments")
            if row["task_id"] in seen:
                raise ConfigError(f"{where}: task id {row['task_id']!r} appears twice")
            seen.add(row["task_id"])
            rows.append(row)
    return rows


def text_field_of(action_schema: Mapping[str, Any]) -> str | None:
    """The action's only required string field, if it has exactly one (else ``None``)."""
    props = action_schema.get("properties") or {}
    required = [r for r in action_schema.get("required") or () if r != "metadata"]
    if len(required) == 1 and (props.get(required[0]) or {}).get("type") == "string":
        return required[0]
    return None


class OpenEnvEnv(TextEnv):
    """An OpenEnv environment server as a text environment (see the module docstring).

    Args:
        server: the server's base URL (``http://127.0.0.1:8000``), or ``{"command":
            [...], "ready_timeout": s}`` to start it here. ``None``: the shipped Hanoi
            server, started here.
        tasks: a JSONL task file or ``{split: file}``; ``None``: seeds (see ``seeds``),
            or the Hanoi tasks with the shipped server.
        seeds: ``{split: [first, end)}`` seed ranges when there is no task file.
        instruction: the goal in words for tasks whose row has none.
        text_field: the action field plain-text actions fill (default: found from the
            action schema; ``""`` to require JSON actions).
        observation_field: the observation field shown to the agent.
        max_return: the return that counts as success when the server reports none.
        message_timeout: seconds to wait for each answer of the server.
        connect_timeout: seconds to reach the server.
    """

    description: ClassVar[str] = (
        "Any OpenEnv environment server over its WebSocket; ships a Tower of Hanoi server."
    )

    def __init__(
        self,
        server: str | Mapping[str, Any] | None = None,
        tasks: str | Path | Mapping[str, str | Path] | None = None,
        seeds: Mapping[str, Sequence[int]] | None = None,
        instruction: str = "Reach the goal of this environment.",
        text_field: str | None = None,
        observation_field: str | None = None,
        max_return: float = 1.0,
        message_timeout: float = 60.0,
        connect_timeout: float = 30.0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        if server is None:
            server = {"command": list(HANOI_SERVER)}
            tasks = HANOI_TASKS if tasks is None else tasks
        if max_return <= 0:
            raise ConfigError(f"max_return must be > 0, got {max_return}")
        self._launched: launch.LaunchedServer | None = None
        if isinstance(server, Mapping):
            unknown = sorted(set(server) - {"command", "ready_timeout"})
            if unknown:
                raise ConfigError(
                    f"server has unknown key(s) {unknown}; valid: ['command', 'ready_timeout']"
                )
            command = server.get("command")
            if not command or not all(isinstance(c, str) for c in command):
                raise ConfigError("server={'command': [...]} needs a list of strings")
            self._launched = launch.acquire(command, float(server.get("ready_timeout", 180)))
            self.base_url = self._launched.url
        elif isinstance(server, str) and server.startswith(("http://", "https://")):
            self.base_url = server.rstrip("/")
        else:
            raise ConfigError(
                f"server={server!r}: give the server's base URL (http://host:port) or "
                "{'command': [...]} to start it"
            )
        self.schema = fetch_schema(self.base_url, timeout=connect_timeout)
        action_schema = self.schema["action"]
        self.action_schema = action_schema
        self._validator = _validator(action_schema)
        self.text_field = text_field_of(action_schema) if text_field is None else text_field
        if self.text_field and self.text_field not in (action_schema.get("properties") or {}):
            raise ConfigError(
                f"text_field={self.text_field!r} is not a field of the server's action: "
                f"{sorted(action_schema.get('properties') or {})}"
            )
        self.observation_field = observation_field
        self.default_instruction = instruction
        self.max_return = float(max_return)
        self.message_timeout = float(message_timeout)
        self.connect_timeout = float(connect_timeout)
        self._rows = self._load_tasks(tasks, seeds)
        self._ids: dict[str, list[str]] = {s: [] for s in SPLITS}
        for task_id, row in self._rows.items():
            self._ids[row["split"]].append(task_id)
        obs_props = (self.schema.get("observation") or {}).get("properties") or {}
        self._server_has_expert = "expert_action" in obs_props
        self._session: OpenEnvSession | None = None
        # episode state
        self._row: dict[str, Any] = {}
        self._obs_data: dict[str, Any] = {}
        self._state_text = ""
        self._return = 0.0
        self._failure: str | None = None

    # ------------------------------------------------------------ set-up

    def _load_tasks(
        self, tasks: Any, seeds: Mapping[str, Sequence[int]] | None
    ) -> dict[str, dict[str, Any]]:
        if tasks is not None:
            return {row["task_id"]: row for row in load_task_rows(tasks)}
        ranges = {s: tuple(map(int, r)) for s, r in (seeds or DEFAULT_SEEDS).items()}
        if set(ranges) - set(SPLITS) or any(len(r) != 2 or r[0] >= r[1] for r in ranges.values()):
            raise ConfigError(f"seeds must map splits to [first, end) ranges, got {seeds!r}")
        spans = sorted(ranges.values())
        if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
            raise ConfigError(f"the seed ranges overlap: {ranges}")
        return {
            f"seed-{n}": {"task_id": f"seed-{n}", "split": split, "reset": {"seed": n}}
            for split, (first, end) in ranges.items()
            for n in range(first, end)
        }

    def close(self) -> None:
        session = self.__dict__.get("_session")
        if session is not None:
            session.close()
            self._session = None
        launched = self.__dict__.get("_launched")
        if launched is not None:
            launch.release(launched)
            self._launched = None
        super().close()

    def _request(self, kind: str, data: dict[str, Any] | None = None) -> OpenEnvReply:
        assert self._session is not None
        return self._session.request(kind, data)

    # ------------------------------------------------------------ tasks

    def task_ids(self, split: Split) -> Sequence[str]:
        return self._ids[split]

    @property
    def has_expert(self) -> bool:
        """Whether the server's observations carry ``expert_action``."""
        return self._server_has_expert

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        if self._session is None or not self._session.alive:
            if self._session is not None:
                self._session.close()
            self._session = OpenEnvSession(
                self.base_url, self.connect_timeout, self.message_timeout
            )
        row = self._rows[task_id]
        kwargs = dict(row["reset"])
        kwargs.setdefault("seed", int(rng.integers(2**31)))
        reply = self._request("reset", kwargs)
        if not reply.ok:
            kind = ConfigError if reply.failure == "rejected" else OpenEnvConnectionError
            raise kind(f"task {task_id!r}: the server's reset({kwargs}) failed: {reply.error}")
        self._row, self._return, self._failure = row, 0.0, None
        self._absorb(reply.data)
        return self._text()

    def _instruction(self) -> str:
        text = self._row.get("instruction") or self.default_instruction
        if self.text_field:
            return f"{text}\nAnswer with the {self.text_field} as plain text."
        schema = json.dumps(
            {k: v for k, v in (self.action_schema.get("properties") or {}).items()
             if k != "metadata"},
            sort_keys=True,
        )  # fmt: skip
        return f"{text}\nAnswer with a JSON object with these fields: {schema}"

    def _task_type(self) -> str | None:
        return self._row.get("task_type")

    def _admissible_actions(self) -> list[str] | None:
        actions = self._obs_data.get("admissible_actions")
        if isinstance(actions, list) and all(isinstance(a, str) for a in actions):
            return list(actions)
        return None

    def _extra_info(self) -> dict[str, Any]:
        return {"server_failure": self._failure} if self._failure else {}

    # ------------------------------------------------------------ observations and state

    def _absorb(self, data: dict[str, Any]) -> None:
        """Take in an observation message's data, then read the server's state."""
        obs = data.get("observation")
        self._obs_data = obs if isinstance(obs, dict) else {}
        state = self._request("state")
        fields = {k: v for k, v in state.data.items() if k not in _STATE_BOOKKEEPING}
        if not state.ok or not fields:
            fields = {k: v for k, v in self._obs_data.items() if k != "expert_action"}
            fields["done"] = bool(data.get("done"))
        self._state_text = json.dumps(fields, sort_keys=True, default=str)

    def _text(self) -> str:
        obs = self._obs_data
        if self.observation_field:
            return str(obs.get(self.observation_field, ""))
        shown = {k: v for k, v in obs.items() if k not in CONVENTION_FIELDS}
        strings = [v for v in shown.values() if isinstance(v, str)]
        if len(strings) == 1 and len(shown) == 1:
            return strings[0]
        if "text" in shown and isinstance(shown["text"], str):
            return shown["text"]
        return "\n".join(
            f"{k}: {v if isinstance(v, str) else json.dumps(v, default=str)}"
            for k, v in shown.items()
        )

    def _state_key(self) -> str:
        return f"{_digest(str(self._row.get('task_id')), 4)}|{_digest(self._state_text)}"

    def canonical_state(self) -> str:
        """The task and the server's state (or observation) as canonical JSON."""
        return f"{self._row.get('task_id')}\n{self._state_text}"

    # ------------------------------------------------------------ acting

    def to_action(self, action: str) -> dict[str, Any] | str:
        """The action object for the server, or why ``action`` is not one."""
        text = action.strip()
        if text.startswith("{"):
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                return f"the action is not valid JSON ({exc.msg} at character {exc.pos})"
            except RecursionError:
                return "the action's JSON is nested too deeply"
            if not isinstance(payload, dict):
                return "the action must be a JSON object"
        elif self.text_field:
            payload = {self.text_field: text}
        else:
            return "the action must be a JSON object with the fields of the instruction"
        if self._validator is not None:
            errors = list(self._validator.iter_errors(payload))
            if errors:
                problems = "; ".join(e.message for e in errors[:3])
                return f"the server's action schema rejects it: {problems}"
        return payload

    def _step(self, action: str) -> StepResult:
        payload = self.to_action(action)
        if isinstance(payload, str):
            return self._invalid(payload)
        reply = self._request("step", payload)
        self._failure = None
        if reply.failure == "rejected":
            return self._invalid(f"the server refused the action: {reply.error}")
        if not reply.ok:
            self._failure = reply.failure
            return StepResult(
                observation=f"The environment server failed ({reply.failure}): {reply.error}",
                success=self._success,
                score=self._score,
            )
        self._absorb(reply.data)
        reward = float(reply.data.get("reward") or 0.0)
        self._return += reward
        done = bool(reply.data.get("done"))
        obs = self._obs_data
        if isinstance(obs.get("success"), bool):
            success = obs["success"]
        else:
            success = done and self._return >= self.max_return
        raw_score = obs.get("score", self._return / self.max_return)
        try:
            score = min(1.0, max(0.0, float(raw_score)))
        except (TypeError, ValueError):
            score = 0.0
        valid = obs.get("action_valid")
        return StepResult(
            observation=self._text(),
            reward=reward,
            terminated=done,
            action_valid=valid if isinstance(valid, bool) else True,
            success=bool(success),
            score=score,
        )

    def _invalid(self, message: str) -> StepResult:
        return StepResult(
            observation=f"Invalid action: {message}\n\n{self._text()}",
            action_valid=False,
            success=self._success,
            score=self._score,
        )

    def _expert_action(self) -> str:
        from agentgym.errors import NoExpertError

        expert = self._obs_data.get("expert_action")
        if expert is None:
            raise NoExpertError("the server gave no expert_action in this state")
        if isinstance(expert, str):  # plain text for the text field, or JSON already
            return expert
        return json.dumps(expert, sort_keys=True)

    def random_action(self, rng: np.random.Generator) -> str:
        """A legal action where the server lists them, else a schema-shaped guess (and
        sometimes garbage)."""
        admissible = self._admissible_actions()
        if admissible and rng.random() < 0.8:
            return admissible[int(rng.integers(len(admissible)))]
        words = _WORD.findall(self._text()) or ["go"]

        def word() -> str:
            return words[int(rng.integers(len(words)))]

        if self.text_field:
            return " ".join(word() for _ in range(int(rng.integers(1, 3))))
        payload: dict[str, Any] = {}
        for name, spec in (self.action_schema.get("properties") or {}).items():
            if name == "metadata":
                continue
            kind = spec.get("type") if isinstance(spec, dict) else None
            payload[name] = int(rng.integers(-3, 10)) if kind == "integer" else word()
        return json.dumps(payload)


def _validator(schema: Mapping[str, Any]) -> Any:
    import jsonschema

    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        return cls(schema)
    except jsonschema.SchemaError:
        return None
