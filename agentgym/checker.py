"""Conformance checker for text environments: ``agentgym env check ID``.

Gymnasium's own checker plus the rules of the text-environment contract
(:mod:`agentgym.env`). Each rule is a small ``check_*`` function that raises
:class:`~agentgym.errors.EnvCheckError` naming the rule; :func:`check_env` runs them all
and reports every failure. The test suite runs it over every registered environment, so a
new environment is checked for free.
"""

from __future__ import annotations

import math
import pickle
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

from agentgym.env import SPLITS, TextEnv
from agentgym.errors import EnvCheckError, NoExpertError

#: Garbage actions every environment must survive (answered with ``action_valid=False``).
GARBAGE_ACTIONS: dict[str, Any] = {
    "empty": "",
    "whitespace": "   \n\t ",
    "100 KB": "go " * 34_000,
    "binary": "\x00\x01\xff\xfe\x7f garbage \x1b[31m",
    "unicode": "💥 ∀x∈ℝ: x≠ñ — 漢字 \u202e",
    "bytes": b"up",
    "None": None,
    "int": 12345,
    # ~1,000 levels: past Python's recursion limit for a JSON reader that does not guard it.
    "deep JSON": '{"name": "run", "arguments": {"code": ' + "[" * 1000 + "]" * 1000 + "}}",
    "lone surrogate": "go \ud800 north",  # not a character: no UTF-8 writer accepts it
    # The JSON escape of one: what the tool call's JSON decodes to.
    "lone surrogate in a tool call": '{"name": "submit", "arguments": {"code": "\\ud800"}}',
}


@dataclass
class CheckContext:
    """What the checks share: the environment under test and how hard to look."""

    env: gymnasium.Env
    tasks_per_split: int = 3
    max_steps: int = 50
    seed: int = 0

    @property
    def text_env(self) -> TextEnv:
        base = self.env.unwrapped
        if not isinstance(base, TextEnv):
            raise EnvCheckError(
                "text_env",
                f"{type(base).__name__} is not an agentgym.TextEnv subclass; "
                "derive from agentgym.TextEnv so the contract's defaults apply",
            )
        return base

    def sample_tasks(self) -> list[tuple[str, str]]:
        """(split, task_id) pairs: the first ``tasks_per_split`` tasks of each split."""
        out = []
        for split in SPLITS:
            ids = self.text_env.task_ids(split)
            out.extend((split, ids[i]) for i in range(min(self.tasks_per_split, len(ids))))
        return out


def _fail(rule: str, message: str) -> None:
    raise EnvCheckError(rule, message)


def _reset(ctx: CheckContext, task_id: str, seed: int | None = None) -> tuple[str, dict]:
    return ctx.env.reset(seed=ctx.seed if seed is None else seed, options={"task_id": task_id})


def _walk_actions(ctx: CheckContext, info: dict, rng: np.random.Generator) -> str:
    """An action for exploring: the env's random action, else an admissible one."""
    try:
        return ctx.text_env.random_action(rng)
    except NotImplementedError:
        admissible = info.get("admissible_actions") or ["noop"]
        return str(admissible[int(rng.integers(len(admissible)))])


def check_text_env(ctx: CheckContext) -> None:
    """The env derives from :class:`agentgym.TextEnv` and has text spaces."""
    env = ctx.text_env
    for name in ("observation_space", "action_space"):
        space = getattr(env, name)
        if not (space.contains("hello") and space.contains("ünïcode\n<tag>")):
            _fail(
                "text_spaces", f"{name} {space!r} must contain any string (use agentgym.TextSpace)"
            )


def check_gymnasium_api(ctx: CheckContext) -> None:
    """Gymnasium's own checker (reset/step signatures, seeding, spaces)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            gymnasium_check_env(ctx.text_env, skip_render_check=True, skip_close_check=True)
        except Exception as exc:
            _fail("gymnasium_api", f"gymnasium's check_env raised {type(exc).__name__}: {exc}")
    problems = [str(w.message) for w in caught if "gymnasium" in (w.filename or "")]
    if problems:
        _fail("gymnasium_api", "gymnasium's check_env warned: " + " | ".join(problems[:3]))


def check_splits(ctx: CheckContext) -> None:
    """Splits exist, list string ids, and never share a task or a first observation."""
    env = ctx.text_env
    ids = {split: list(env.task_ids(split)) for split in SPLITS}
    if not ids["train"]:
        _fail("splits", "the train split is empty")
    for split, tasks in ids.items():
        bad = [t for t in tasks[:100] if not isinstance(t, str)]
        if bad:
            _fail("splits", f"task ids must be str; split {split!r} has {bad[0]!r}")
        if len(set(tasks)) != len(tasks):
            _fail("splits", f"split {split!r} lists a task id twice")
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            shared = set(ids[a]) & set(ids[b])
            if shared:
                _fail("splits", f"splits {a!r} and {b!r} share task {sorted(shared)[0]!r}")
    first_state: dict[str, str] = {}
    # Seed tasks (a plain Gymnasium env) are disjoint seed ranges by construction, and every
    # seed may print the same first observation: the hidden state is the seed itself.
    compare_starts = not getattr(env, "seed_tasks", False)
    for split, task_id in ctx.sample_tasks():
        obs, info = _reset(ctx, task_id)
        if info.get("split") not in (None, split):
            _fail("splits", f"task {task_id!r} of split {split!r} reports split {info['split']!r}")
        # What the task is: what the agent is shown at the start, plus the env's full
        # state where it declares one (tasks may differ only in hidden state).
        start = f"{info.get('instruction', '')}\n{obs}\n{env.canonical_state() or ''}"
        other = first_state.setdefault(start, split)
        if compare_starts and other != split:
            _fail(
                "splits",
                f"a {split!r} task ({task_id!r}) starts exactly like a {other!r} task: "
                "held-out levels must not appear in training (if the tasks differ only in "
                f"hidden state, say so with canonical_state())\n{start[:200]}",
            )


def check_reset_info(ctx: CheckContext) -> None:
    """``reset`` returns a str and an info with the contract's keys and types."""
    for _split, task_id in ctx.sample_tasks():
        obs, info = _reset(ctx, task_id)
        if not isinstance(obs, str):
            _fail("reset_info", f"reset returned a {type(obs).__name__} observation, not str")
        _check_info(info, "reset", task_id, "reset_info")


def _check_info(info: dict, where: str, task_id: str, rule: str) -> None:
    for key, types in (
        ("task_id", str),
        ("instruction", str),
        ("state_key", str),
        ("success", bool | np.bool_),
        ("score", float | int),
        ("action_valid", bool | np.bool_),
    ):
        if key not in info:
            _fail(rule, f"info after {where} has no {key!r} (keys: {sorted(info)})")
        if not isinstance(info[key], types):
            _fail(rule, f"info[{key!r}] after {where} is {type(info[key]).__name__}: {info[key]!r}")
    if info["task_id"] != task_id:
        _fail(rule, f"info['task_id'] is {info['task_id']!r}, the episode plays {task_id!r}")
    if not info["instruction"].strip():
        _fail(rule, f"info['instruction'] is empty after {where}")
    if not info["state_key"] or len(info["state_key"]) > 4096:
        _fail(
            "state_key", f"state_key must be a short non-empty str, got {info['state_key'][:80]!r}"
        )
    score = float(info["score"])
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        _fail(rule, f"info['score'] must be in [0, 1], got {score}")
    if "admissible_actions" in info and not all(
        isinstance(a, str) for a in info["admissible_actions"]
    ):
        _fail(rule, "info['admissible_actions'] must be a list of str")
    if "tools" in info and not all(isinstance(t, dict) and "function" in t for t in info["tools"]):
        _fail(rule, "info['tools'] must be OpenAI function schemas ({'type': 'function', ...})")


def _play(ctx: CheckContext, task_id: str, seed: int, actions: list[str] | None = None) -> list:
    """Play a task with a fixed action list (or a seeded walk); return what was seen."""
    obs, info = _reset(ctx, task_id, seed)
    seen: list[tuple] = [(obs, info["state_key"])]
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for t in range(ctx.max_steps):
        action = actions[t] if actions is not None else _walk_actions(ctx, info, rng)
        chosen.append(action)
        obs, reward, terminated, truncated, info = ctx.env.step(action)
        seen.append((obs, float(reward), terminated, truncated, info["state_key"]))
        if terminated or truncated or (actions is not None and t + 1 >= len(actions)):
            break
    return [chosen, *seen]


def check_determinism(ctx: CheckContext) -> None:
    """The same (task_id, seed) and the same actions give the same episode."""
    for _split, task_id in ctx.sample_tasks():
        first = _play(ctx, task_id, seed=7)
        again = _play(ctx, task_id, seed=7, actions=first[0])
        if first[1:] != again[1:]:
            pairs = zip(first[1:], again[1:], strict=False)
            diverged = next(i for i, (a, b) in enumerate(pairs) if a != b)
            _fail(
                "determinism",
                f"task {task_id!r} with seed 7 diverged at step {diverged} when replayed "
                "with the same actions; all randomness must come from reset's seed",
            )


def check_step_info(ctx: CheckContext) -> None:
    """Every step returns finite rewards and an info with the contract's keys."""
    rng = np.random.default_rng(ctx.seed)
    for _split, task_id in ctx.sample_tasks():
        obs, info = _reset(ctx, task_id)
        for _ in range(ctx.max_steps):
            obs, reward, terminated, truncated, info = ctx.env.step(_walk_actions(ctx, info, rng))
            if not isinstance(obs, str):
                _fail("step_info", f"step returned a {type(obs).__name__} observation")
            if not math.isfinite(float(reward)):
                _fail("step_info", f"step returned a non-finite reward {reward}")
            _check_info(info, "step", task_id, "step_info")
            if terminated or truncated:
                break


def check_state_key(ctx: CheckContext) -> None:
    """``state_key`` names the state, not the feedback text.

    Where the env offers :meth:`TextEnv.canonical_state`, keys must be equal exactly when
    the canonical states are. Always: an invalid action leaves the key unchanged.
    """
    env = ctx.text_env
    rng = np.random.default_rng(ctx.seed + 1)
    key_of: dict[str, str] = {}
    state_of: dict[str, str] = {}
    for _split, task_id in ctx.sample_tasks():
        for episode in range(2):
            _, info = _reset(ctx, task_id, seed=ctx.seed + episode)
            for _ in range(ctx.max_steps):
                state = env.canonical_state()
                if state is not None:
                    key = f"{task_id}\x1f{info['state_key']}"
                    full = f"{task_id}\x1f{state}"
                    if key_of.setdefault(full, key) != key:
                        _fail(
                            "state_key",
                            f"one state has two keys {key_of[full]!r} and {key!r} in task "
                            f"{task_id!r}: keys must not depend on history or feedback text",
                        )
                    if state_of.setdefault(key, full) != full:
                        _fail(
                            "state_key",
                            f"two different states share the key {info['state_key']!r} in task "
                            f"{task_id!r} (e.g. the same feedback text from different states)",
                        )
                _, _, terminated, truncated, info = ctx.env.step(_walk_actions(ctx, info, rng))
                if terminated or truncated:
                    break
        _obs, info = _reset(ctx, task_id)
        before = info["state_key"]
        _, _, _, _, info = ctx.env.step("\x00 not an action \x00")
        if info["state_key"] != before:
            _fail(
                "state_key",
                f"an invalid action changed the state key from {before!r} to "
                f"{info['state_key']!r}; keys must follow the state, not the feedback",
            )


def check_garbage_actions(ctx: CheckContext) -> None:
    """Garbage actions get feedback and ``action_valid=False``, never an exception."""
    task_id = ctx.text_env.task_ids("train")[0]
    for name, action in GARBAGE_ACTIONS.items():
        _reset(ctx, task_id)
        try:
            obs, reward, terminated, _truncated, info = ctx.env.step(action)
        except Exception as exc:
            _fail(
                "garbage_actions",
                f"a {name} action raised {type(exc).__name__}: {exc}; answer bad actions "
                "with feedback and action_valid=False",
            )
        if info.get("action_valid") is not False:
            _fail("garbage_actions", f"a {name} action was reported as action_valid=True")
        if not isinstance(obs, str) or not obs:
            _fail("garbage_actions", f"a {name} action got no feedback text")
        if terminated:
            _fail("garbage_actions", f"a {name} action ended the episode; it must continue")
        if not math.isfinite(float(reward)):
            _fail("garbage_actions", f"a {name} action got a non-finite reward")


def check_step_after_end(ctx: CheckContext) -> None:
    """Stepping after the episode ended answers (``action_valid=False``), never raises."""
    task_id = ctx.text_env.task_ids("train")[0]
    _, info = _reset(ctx, task_id)
    rng = np.random.default_rng(ctx.seed)
    ended = False
    for _ in range(10 * ctx.max_steps):
        action = _expert_or_walk(ctx, info, rng)
        _obs, _, terminated, truncated, info = ctx.env.step(action)
        if terminated or truncated:
            ended = True
            break
    if not ended:
        return  # an env without turn limit or expert: nothing to check here
    try:
        _obs2, reward, terminated, truncated, info = ctx.env.step(action)
    except Exception as exc:
        _fail("step_after_end", f"stepping after the end raised {type(exc).__name__}: {exc}")
    if not (terminated or truncated):
        _fail("step_after_end", "stepping after the end reported an episode still running")
    if info.get("action_valid") is not False or reward != 0:
        _fail("step_after_end", "stepping after the end must give action_valid=False, reward 0")


def _expert_or_walk(ctx: CheckContext, info: dict, rng: np.random.Generator) -> str:
    try:
        return ctx.text_env.expert_action()
    except NoExpertError:
        return _walk_actions(ctx, info, rng)


def check_expert(ctx: CheckContext) -> None:
    """Where there is an expert, it solves the sampled tasks of every split."""
    env = ctx.text_env
    if not env.has_expert:
        return
    for split, task_id in ctx.sample_tasks():
        obs, info = _reset(ctx, task_id)
        for _ in range(10 * ctx.max_steps):
            obs, _, terminated, truncated, info = ctx.env.step(env.expert_action())
            if terminated or truncated:
                break
        if not info.get("success"):
            _fail("expert", f"the expert did not solve {split} task {task_id!r}: {obs[-200:]!r}")


def _same(a: Any, b: Any) -> bool:
    try:
        if a == b:
            return True
    except Exception:  # e.g. numpy arrays inside an info
        pass
    return repr(a) == repr(b)  # NaN == NaN, arrays


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _step_difference(expected: tuple, got: tuple) -> str | None:
    """What differs between two ``(obs, reward, terminated, truncated, info)``, or None."""
    names = ("observation", "reward", "terminated", "truncated")
    for name, a, b in zip(names, expected, got, strict=False):
        if not _same(a, b):
            return f"{name} {_short(b)} instead of {_short(a)}"
    want, have = expected[4], got[4]
    for key in sorted(set(want) | set(have), key=lambda k: (k != "state_key", str(k))):
        if key not in want or key not in have:
            return f"info[{key!r}] is {'missing' if key not in have else 'new'}"
        if not _same(want[key], have[key]):
            return f"info[{key!r}] is {_short(have[key])} instead of {_short(want[key])}"
    return None


def _replay_snapshot(
    ctx: CheckContext,
    walk: tuple[str, list[Any], list[tuple]],
    at: int,
    snap: Any,
    state: str | None,
    how: str,
) -> None:
    """Restore ``snap`` (taken after ``at`` steps of ``walk``) and replay the rest."""
    from agentgym.snapshots import restore

    task_id, actions, steps = walk
    restore(ctx.env, snap)
    now = ctx.text_env.canonical_state()
    if not _same(state, now):
        _fail(
            "snapshot",
            f"task {task_id!r}: restoring the snapshot taken at step {at} ({how}) gives "
            f"the state {_short(now)}, not {_short(state)}",
        )
    for k in range(at, len(actions)):
        obs, reward, terminated, truncated, info = ctx.env.step(actions[k])
        got = (obs, float(reward), bool(terminated), bool(truncated), info)
        problem = _step_difference(steps[k], got)
        if problem is not None:
            _fail(
                "snapshot",
                f"task {task_id!r}: after restoring the snapshot taken at step {at} ({how}), "
                f"step {k + 1} ({_short(actions[k], 60)}) differs from the original "
                f"episode: {problem}",
            )


def check_snapshot(ctx: CheckContext) -> None:
    """Where the env supports snapshots: restoring one and replaying the same actions
    gives the same steps (observations, rewards, flags, state keys, infos), and a
    snapshot survives a pickle round trip into an env that played another task since.

    Random walks on the first task of the first and last splits; snapshots after
    ``reset``, at two random steps and after the end (the walk takes one step past it);
    each is restored through the whole wrapper stack (:func:`agentgym.snapshot`) and the
    rest of the walk replayed; one is restored twice (a snapshot must not change when the
    env it was restored into moves on).
    """
    from agentgym.snapshots import snapshot, supports_snapshot

    if not supports_snapshot(ctx.env):
        return
    env = ctx.text_env
    firsts = [ids[0] for ids in (env.task_ids(s) for s in SPLITS) if len(ids)]
    tasks = list(dict.fromkeys([firsts[0], firsts[-1]]))
    rng = np.random.default_rng(ctx.seed + 5)
    for i, task_id in enumerate(tasks):
        _, info = _reset(ctx, task_id, seed=ctx.seed + 11)
        saved = [(0, snapshot(ctx.env), env.canonical_state())]
        actions: list[Any] = []
        steps: list[tuple] = []
        inner = np.arange(1, ctx.max_steps)
        points = set(rng.choice(inner, size=min(2, len(inner)), replace=False).tolist())
        ended = False
        while len(actions) < ctx.max_steps and not ended:
            action = _walk_actions(ctx, info, rng)
            obs, reward, terminated, truncated, info = ctx.env.step(action)
            actions.append(action)
            steps.append((obs, float(reward), bool(terminated), bool(truncated), info))
            ended = bool(terminated or truncated)
            if ended or len(actions) in points:
                saved.append((len(actions), snapshot(ctx.env), env.canonical_state()))
        if ended:  # and one step past the end, answered the same way after a restore
            action = _walk_actions(ctx, info, rng)
            obs, reward, terminated, truncated, info = ctx.env.step(action)
            actions.append(action)
            steps.append((obs, float(reward), bool(terminated), bool(truncated), info))

        walk = (task_id, actions, steps)
        for at, snap, state in saved:
            _replay_snapshot(ctx, walk, at, snap, state, "restored")
        at, snap, state = saved[len(saved) // 2]
        _replay_snapshot(ctx, walk, at, snap, state, "restored a second time")
        try:
            blob = pickle.dumps(snap)
        except Exception as exc:
            _fail(
                "snapshot",
                f"a snapshot of task {task_id!r} does not pickle ({type(exc).__name__}: "
                f"{exc}); snapshots must travel to worker processes",
            )
        other = tasks[(i + 1) % len(tasks)]
        _, info = _reset(ctx, other, seed=ctx.seed + 12)
        ctx.env.step(_walk_actions(ctx, info, rng))
        how = f"after a pickle round trip and playing {other!r}"
        _replay_snapshot(ctx, walk, at, pickle.loads(blob), state, how)


CHECKS: tuple[Callable[[CheckContext], None], ...] = (
    check_text_env,
    check_gymnasium_api,
    check_splits,
    check_reset_info,
    check_step_info,
    check_determinism,
    check_snapshot,
    check_state_key,
    check_garbage_actions,
    check_step_after_end,
    check_expert,
)


@dataclass
class CheckReport:
    """Outcome of :func:`check_env`: one entry per check, in order."""

    env_id: str
    results: list[tuple[str, str | None, float]] = field(default_factory=list)  # name, error, s

    @property
    def ok(self) -> bool:
        return all(err is None for _, err, _ in self.results)

    @property
    def failures(self) -> list[tuple[str, str]]:
        return [(name, err) for name, err, _ in self.results if err is not None]


def check_env(
    env: gymnasium.Env | str,
    tasks_per_split: int = 3,
    max_steps: int = 50,
    seed: int = 0,
    raise_on_failure: bool = True,
    **make_kwargs: Any,
) -> CheckReport:
    """Run every ``check_*`` rule against ``env`` (an env or a registered id).

    Raises :class:`EnvCheckError` listing the failed rules when ``raise_on_failure``;
    otherwise returns the :class:`CheckReport`.
    """
    from agentgym.registry import make

    env_id = env if isinstance(env, str) else type(env.unwrapped).__name__
    made = isinstance(env, str)
    if isinstance(env, str):
        env = make(env, **make_kwargs)
    try:
        report = _run_checks(env, env_id, tasks_per_split, max_steps, seed)
    finally:
        if made:  # an env this call built (its servers, sandboxes) is closed here
            env.close()
    if raise_on_failure and not report.ok:
        lines = "\n".join(f"  - {err}" for _, err in report.failures)
        raise EnvCheckError(
            report.failures[0][1].split("]")[0].lstrip("["),
            f"{env_id} breaks {len(report.failures)} rule(s) of the text-env contract:\n{lines}",
        )
    return report


def _run_checks(
    env: gymnasium.Env, env_id: str, tasks_per_split: int, max_steps: int, seed: int
) -> CheckReport:
    ctx = CheckContext(env, tasks_per_split=tasks_per_split, max_steps=max_steps, seed=seed)
    report = CheckReport(env_id)
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        start = time.perf_counter()
        try:
            check(ctx)
            error = None
        except EnvCheckError as exc:
            error = str(exc)
        except Exception as exc:
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            error = f"[{name}] the check crashed the environment: {tb}"
        report.results.append((name, error, time.perf_counter() - start))
    return report
