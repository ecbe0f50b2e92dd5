"""The multi-turn rollout engine: plays groups of episodes with a policy.

For B tasks x N rollouts (a *group* per task: same task, same seed), the engine loops:

1. build a prompt for every episode that is still running (``window`` or ``chat`` style);
2. generate for those prompts only, in one batch (finished episodes are not generated for);
3. parse each response into an action; an unparsable response is an invalid step: the
   agent is told why, gets ``invalid_action_penalty``, and the environment is not called;
4. step the environments through an :class:`~agentgym.rollout.executor.EnvPool`; an env
   that raises or hangs ends *its* episode with ``status="error"`` and the message kept;
5. record a :class:`~agentgym.trajectory.Step` with exactly the tokens the engine produced.

Chat-style prompts are kept as token ids end to end: the next prompt is the previous
prompt ids + the response ids + the ids of the new messages, so a conversation is never
re-tokenised and cannot drift from what was sampled.

How the episodes of a task are laid out is the engine's *rollout strategy*
(:mod:`agentgym.rollout.strategies`, ``env.rollout.strategy``): ``group`` (N independent
episodes, the default), or strategies that branch episodes from environment snapshots
(``tree``, ``local``). They all run on the loop above: a branch is an episode that starts
with a ``restore`` call instead of a ``reset``.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentgym.env import stable_hash
from agentgym.parsers import ActionParser, render_expert
from agentgym.policies.base import Generation, Message, Policy, PolicyInput, SamplingParams
from agentgym.rollout.executor import (
    SUBGOAL_HINT,
    SUBGOAL_STARTS_HINT,
    EnvCall,
    EnvOutcome,
    EnvPool,
)
from agentgym.rollout.prompts import EpisodePrompt, PromptBuilder
from agentgym.trajectory import Step, Trajectory

#: ``Step.info`` key of the policy versions that sampled the step's response:
#: ``[[version, start, end], ...]``, the response tokens ``[start, end)`` of each version
#: (:attr:`~agentgym.policies.base.Generation.weight_versions`); absent when the policy
#: reports none.
WEIGHT_VERSIONS = "weight_versions"


@dataclass(frozen=True)
class TaskRequest:
    """One task to play N times: ``reset(seed=seed, options={"task_id": task_id})``."""

    task_id: str
    split: str = "train"
    seed: int | None = None


@dataclass
class RolloutStats:
    """Where the wall time went, and how much was produced."""

    seconds_total: float = 0.0
    seconds_generate: float = 0.0
    seconds_env: float = 0.0
    env_steps: int = 0
    generated_tokens: int = 0
    generate_calls: int = 0
    prompts_generated: int = 0
    wasted_prompts: int = 0  # prompts of finished episodes (only with generate_for_finished)
    trajectories: int = 0  # distinct trajectories returned (a tree's leaves, re-rolls)
    snapshots: int = 0  # environment snapshots taken (branching strategies)
    restores: int = 0  # episodes started from a snapshot instead of a reset

    @property
    def seconds_other(self) -> float:
        return max(0.0, self.seconds_total - self.seconds_generate - self.seconds_env)

    def as_metrics(self, prefix: str = "rollout/") -> dict[str, float]:
        total = max(self.seconds_total, 1e-9)
        per_trajectory = max(self.trajectories, 1)
        return {
            f"{prefix}tokens_per_trajectory": self.generated_tokens / per_trajectory,
            f"{prefix}env_steps_per_trajectory": self.env_steps / per_trajectory,
            f"{prefix}seconds_per_trajectory": self.seconds_total / per_trajectory,
            f"{prefix}trajectories": float(self.trajectories),
            f"{prefix}seconds": self.seconds_total,
            f"{prefix}share_generate": self.seconds_generate / total,
            f"{prefix}share_env": self.seconds_env / total,
            f"{prefix}share_other": self.seconds_other / total,
            f"{prefix}env_steps_per_s": self.env_steps / total,
            f"{prefix}tokens_per_s": self.generated_tokens / total,
            f"{prefix}generated_tokens": float(self.generated_tokens),
        }


@dataclass
class _Episode:
    traj: Trajectory
    request: TaskRequest
    slot: int = -1
    observation: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)
    prompt: EpisodePrompt | None = None  # set at reset
    prompt_ids: list[int] | None = None  # chat style, token ids end to end
    done: bool = False
    start: Any = None  # an EnvSnapshot: the episode starts with "restore", not "reset"
    limit: int | None = None  # the most steps of this episode (None: the engine's max_steps)


class RolloutEngine:
    """Plays groups of episodes with a policy (see the module docstring).

    Args:
        pool: where the environments run; its size bounds concurrent episodes.
        policy: the inference backend.
        parser: turns responses into actions (and expert actions into responses).
        prompts: renders prompts in the configured style.
        sampling: sampling settings for every generation.
        max_steps: the most steps per episode (the env's turn limit should match; the
            engine enforces it too, since unparsable responses never reach the env).
        invalid_action_penalty: added to the reward of a step whose response did not
            parse or whose action the environment rejected (usually negative or 0).
        strategy: how :meth:`run` lays out the episodes of a task (a rollout strategy
            from :mod:`agentgym.rollout.strategies`); ``None``: ``group``, N independent
            episodes.
        max_prompt_tokens: an episode whose prompt grows past this many tokens ends as
            truncated (reason ``context_length``) instead of overflowing the model.
        generate_for_finished: generate for finished episodes too and discard the result;
            only for measuring what skipping them saves. Never on in real runs.
    """

    def __init__(
        self,
        pool: EnvPool,
        policy: Policy,
        parser: ActionParser,
        prompts: PromptBuilder,
        sampling: SamplingParams,
        max_steps: int = 20,
        invalid_action_penalty: float = 0.0,
        max_prompt_tokens: int = 4096,
        generate_for_finished: bool = False,
        strategy: Any = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.pool, self.policy, self.parser, self.prompts = pool, policy, parser, prompts
        self.sampling, self.max_steps = sampling, max_steps
        self.invalid_action_penalty = invalid_action_penalty
        self.max_prompt_tokens = max_prompt_tokens
        self.generate_for_finished = generate_for_finished
        self.strategy = strategy
        self.stats = RolloutStats()
        self._hint_names = tuple(sorted(policy.wants_hints))
        self._tokenizer = policy.tokenizer

    # ------------------------------------------------------------------ public

    def run(
        self,
        tasks: Sequence[TaskRequest],
        n: int = 1,
        group_prefix: str = "",
        metadata: dict[str, Any] | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Trajectory]:
        """Play every task ``n`` times; return trajectories grouped by task, in order.

        ``on_trajectory`` is called with each trajectory as soon as it finishes (for
        writing results incrementally); ``progress`` with the number just finished.
        With a branching :attr:`strategy`, ``n`` is the strategy's group size (a tree's
        leaves, the global rollouts before local re-rolls); see
        :mod:`agentgym.rollout.strategies`.
        """
        if n < 1:
            raise ValueError(f"n (rollouts per task) must be >= 1, got {n}")
        if self.strategy is not None:
            return self.strategy.run(
                self,
                tasks,
                n,
                group_prefix=group_prefix,
                metadata=metadata,
                on_trajectory=on_trajectory,
                progress=progress,
            )
        start = time.perf_counter()
        episodes = self._new_episodes(tasks, n, group_prefix, metadata)
        self._play(episodes, on_trajectory, progress)
        self.stats.seconds_total += time.perf_counter() - start
        return [ep.traj for ep in episodes]

    def close(self) -> None:
        """Release the env pool. The policy is left open: engines may share one (the
        trainer's rollout and validation engines do); close it separately."""
        self.pool.close()

    def __enter__(self) -> RolloutEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ for strategies

    def _new_episodes(
        self,
        tasks: Sequence[TaskRequest],
        n: int,
        group_prefix: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> list[_Episode]:
        """``n`` fresh episodes per task (trajectory ``{prefix}{t}:{task}/{k}``)."""
        return [
            _Episode(
                Trajectory(
                    env_id=self.pool.spec.env_id,
                    task_id=req.task_id,
                    split=req.split,
                    seed=req.seed,
                    group_id=f"{group_prefix}{t}:{req.task_id}",
                    traj_id=f"{group_prefix}{t}:{req.task_id}/{k}",
                    metadata={"prompt_style": self.prompts.config.style, **(metadata or {})},
                ),
                req,
            )
            for t, req in enumerate(tasks)
            for k in range(n)
        ]

    def _play(
        self,
        episodes: list[_Episode],
        on_trajectory: Callable[[Trajectory], None] | None = None,
        progress: Callable[[int], None] | None = None,
        after_turn: Callable[[list[_Episode]], list[_Episode]] | None = None,
    ) -> None:
        """Play ``episodes`` to the end, as many at once as the pool has slots.

        ``after_turn(active)``, called after every turn with the episodes that took it
        (finished ones included, ``done`` set), returns new episodes to play (branches,
        usually starting from a snapshot); they join ``episodes`` and start first.
        """
        pending = deque(episodes)
        free = deque(range(self.pool.size))
        active: list[_Episode] = []
        while pending or active:
            starting = []
            while pending and free:
                ep = pending.popleft()
                ep.slot = free.popleft()
                starting.append(ep)
            if starting:
                self._reset(starting)
            active.extend(ep for ep in starting if not ep.done)
            for ep in starting:
                if ep.done:
                    self._finish(ep, free, on_trajectory, progress)
            if not active:
                continue
            self._turn(active, episodes)
            if after_turn is not None:
                branches = after_turn(active)
                episodes.extend(branches)
                pending.extendleft(reversed(branches))
            still = []
            for ep in active:
                if ep.done:
                    self._finish(ep, free, on_trajectory, progress)
                else:
                    still.append(ep)
            active = still

    def _snapshots(self, episodes: Sequence[_Episode]) -> list[Any]:
        """The env snapshot of each (running) episode's slot; ``None`` where it failed."""
        if not episodes:
            return []
        outcomes = self._env([EnvCall(ep.slot, "snapshot") for ep in episodes])
        self.stats.snapshots += sum(1 for out in outcomes if out.error is None)
        return [None if out.error else out.snapshot for out in outcomes]

    def _branch(
        self, ep: _Episode, snapshot: Any, traj_id: str, fresh: bool = False, **meta: Any
    ) -> _Episode:
        """A new episode that continues ``ep`` from ``snapshot`` (its env state now).

        The branch shares ``ep``'s steps so far (the same :class:`Step` objects: stored
        once) unless ``fresh``, when it starts with no steps (a local re-roll recorded as
        a trajectory of its own); its prompt state is a copy of ``ep``'s.
        """
        traj = copy.copy(ep.traj)
        traj.traj_id = traj_id
        traj.steps = [] if fresh else list(ep.traj.steps)
        traj.metadata = {**ep.traj.metadata, **meta}
        prompt = copy.copy(ep.prompt)
        for name, value in vars(prompt).items():  # lists/dicts it appends to: its own
            if isinstance(value, list | dict):
                setattr(prompt, name, copy.copy(value))
        return _Episode(
            traj,
            ep.request,
            observation=ep.observation,
            info=dict(ep.info),
            hints=dict(ep.hints),
            prompt=prompt,
            prompt_ids=None if ep.prompt_ids is None else list(ep.prompt_ids),
            start=snapshot,
            limit=ep.limit,
        )

    # ------------------------------------------------------------------ internals

    def _env(self, calls: list[EnvCall]) -> list[EnvOutcome]:
        start = time.perf_counter()
        out = self.pool.run(calls)
        self.stats.seconds_env += time.perf_counter() - start
        return out

    def _reset(self, starting: list[_Episode]) -> None:
        calls = [self._start_call(ep) for ep in starting]
        for ep, out in zip(starting, self._env(calls), strict=True):
            self._started(ep, out)

    def _start_call(self, ep: _Episode) -> EnvCall:
        """The call that starts ``ep`` in its slot: a ``reset``, or a ``restore`` (branch)."""
        if ep.start is None:
            return EnvCall(
                ep.slot,
                "reset",
                seed=ep.request.seed,
                options={"task_id": ep.request.task_id},
                hints=self._hint_names,
            )
        return EnvCall(ep.slot, "restore", snapshot=ep.start, hints=self._hint_names)

    def _started(self, ep: _Episode, out: EnvOutcome) -> None:
        """Take in the outcome of :meth:`_start_call`: the first observation and prompt."""
        if ep.start is not None:  # a branch: its prompt and observation came with it
            ep.start = None
            self.stats.restores += 1
            if out.error:
                self._fail(ep, f"restore failed: {out.error}")
            else:
                ep.hints = out.hints
            return
        if out.error:
            self._fail(ep, f"reset failed: {out.error}")
            return
        ep.observation, ep.info, ep.hints = out.observation, out.info, out.hints
        ep.traj.instruction = str(out.info.get("instruction", ""))
        ep.traj.split = str(out.info.get("split", ep.traj.split))
        ep.traj.task_type = out.info.get("task_type")
        # What the first prompt showed besides the observation, so the episode's
        # prompts can be re-rendered with other templates (SFT from JSONL files).
        ep.traj.metadata["reset_info"] = {
            k: out.info[k]
            for k in ("admissible_actions", "tools", "agent_id", "agent_prompt")
            if k in out.info
        }
        ep.prompt = EpisodePrompt(self.prompts, ep.traj.instruction, ep.observation, ep.info)
        if self.prompts.config.style == "chat" and self._tokenizer is not None:
            ep.prompt_ids = ep.prompt.token_ids(self._tokenizer)

    def _seed(self, ep: _Episode) -> int | None:
        """This episode's sampling seed for its next step: from the run's seed, the episode
        and the step, so it does not depend on what else shares the batch."""
        if self.sampling.seed is None:
            return None
        return stable_hash(self.sampling.seed, ep.traj.traj_id, len(ep.traj.steps)) % (2**31)

    def _rendered_hints(self, hints: dict[str, str]) -> dict[str, str]:
        """The hint actions as responses in the run's format; the expert's with its plan
        step where the env gives one (:func:`agentgym.parsers.render_expert`)."""
        subgoal, starts = hints.get(SUBGOAL_HINT), bool(hints.get(SUBGOAL_STARTS_HINT))
        rendered = {}
        for name, action in hints.items():
            if name in (SUBGOAL_HINT, SUBGOAL_STARTS_HINT):
                continue
            if not action:
                rendered[name] = ""
            elif name == "expert_action":
                rendered[name] = render_expert(self.parser, action, subgoal, starts)
            else:
                rendered[name] = self.parser.render(action)
        return rendered

    def _prompt(self, ep: _Episode) -> tuple[PolicyInput, list[Message]]:
        hints = self._rendered_hints(ep.hints)
        assert ep.prompt is not None  # set at reset
        messages, tools = ep.prompt.messages, ep.prompt.tools
        if self.prompts.config.style == "chat":
            ids = ep.prompt_ids  # kept as token ids end to end (see the module docstring)
        else:
            ids = ep.prompt.token_ids(self._tokenizer) if self._tokenizer is not None else None
        item = PolicyInput(
            messages=messages, prompt_ids=ids, hints=hints, tools=tools, seed=self._seed(ep)
        )
        return item, list(messages)

    def _turn(self, active: list[_Episode], everyone: list[_Episode]) -> None:
        inputs, shown = [], []
        for ep in active:
            item, messages = self._prompt(ep)
            inputs.append(item)
            shown.append(messages)
        too_long = [
            i
            for i, item in enumerate(inputs)
            if item.prompt_ids is not None and len(item.prompt_ids) > self.max_prompt_tokens
        ]
        for i in too_long:
            active[i].traj.status = "truncated"
            active[i].traj.metadata["truncated_by"] = "context_length"
            active[i].done = True
        keep = [i for i in range(len(active)) if i not in set(too_long)]
        if not keep:
            return
        batch = [inputs[i] for i in keep]
        if self.generate_for_finished:
            batch = batch + self._wasted_inputs(everyone, len(batch))
        start = time.perf_counter()
        generations = self.policy.generate(batch, self.sampling)[: len(keep)]
        self.stats.seconds_generate += time.perf_counter() - start
        self.stats.generate_calls += 1
        self.stats.prompts_generated += len(batch)
        stepping: list[tuple[_Episode, Step]] = []
        for i, gen in zip(keep, generations, strict=True):
            ep = active[i]
            step = self._record(ep, inputs[i], shown[i], gen)
            if step is not None:
                stepping.append((ep, step))
        if not stepping:
            return
        calls = [
            EnvCall(ep.slot, "step", action=s.action, hints=self._hint_names) for ep, s in stepping
        ]
        for (ep, step), out in zip(stepping, self._env(calls), strict=True):
            self._apply(ep, step, out)

    def _wasted_inputs(self, everyone: list[_Episode], have: int) -> list[PolicyInput]:
        """Prompts of finished episodes (their last prompt again), for the benchmark."""
        wasted = []
        for ep in everyone:
            if ep.done and ep.traj.steps:
                last = ep.traj.steps[-1]
                wasted.append(
                    PolicyInput(messages=last.prompt_messages, prompt_ids=last.prompt_ids or None)
                )
        self.stats.wasted_prompts += len(wasted)
        return wasted

    def _record(
        self, ep: _Episode, item: PolicyInput, messages: list[Message], gen: Generation
    ) -> Step | None:
        """Turn a generation into a step; returns it when the env must be stepped."""
        if gen.finish_reason == "error":
            self._fail(ep, f"generation failed: {gen.error}")
            return None
        self.stats.generated_tokens += len(gen.token_ids)
        parsed = self.parser.parse(gen.text)
        step = Step(
            index=len(ep.traj.steps),
            observation=ep.observation,
            prompt_messages=messages,
            prompt_ids=list(gen.prompt_ids or item.prompt_ids or []),
            response_ids=list(gen.token_ids),
            response_logprobs=list(gen.logprobs),
            response_text=gen.text,
            action=parsed.action,
            state_key=str(ep.info.get("state_key", "")),
            agent=str(ep.info.get("agent_id") or ""),
            finish_reason=gen.finish_reason,
        )
        if gen.weight_versions:  # which policy version sampled which tokens (off-policy RL)
            step.info = {WEIGHT_VERSIONS: [list(span) for span in gen.weight_versions]}
        ep.traj.steps.append(step)
        if parsed.ok:
            return step
        # Unparsable: the env is not called; the agent is told why and the state stays.
        step.action_valid = False
        step.reward = self.invalid_action_penalty
        step.info = {**ep.info, "action_valid": False, "parse_error": parsed.error, **step.info}
        feedback = (
            f"Your response could not be understood: {parsed.error}. "
            f"{self.parser.instructions}\n\n{ep.observation}"
        )
        self._advance(ep, step, feedback, ep.info)
        return None

    def _apply(self, ep: _Episode, step: Step, out: EnvOutcome) -> None:
        if out.error:
            step.info = {"error": out.error, **step.info}
            self._fail(ep, f"env step failed: {out.error}")
            return
        step.env_reward = out.reward
        step.action_valid = bool(out.info.get("action_valid", True))
        step.reward = out.reward + (0.0 if step.action_valid else self.invalid_action_penalty)
        step.terminated, step.truncated = out.terminated, out.truncated
        step.info = {**out.info, **step.info} if step.info else out.info
        ep.hints = out.hints
        ep.traj.success = bool(out.info.get("success", False))
        ep.traj.score = float(out.info.get("score", 0.0))
        self.stats.env_steps += 1
        if out.terminated or out.truncated:
            ep.traj.status = "terminated" if out.terminated else "truncated"
            ep.done = True
            return
        self._advance(ep, step, out.observation, out.info)

    def _advance(self, ep: _Episode, step: Step, observation: str, info: dict[str, Any]) -> None:
        """Move the episode to its next turn (or end it at the step limit)."""
        if len(ep.traj.steps) >= (self.max_steps if ep.limit is None else ep.limit):
            step.truncated = True
            ep.traj.status = "truncated"
            ep.done = True
            return
        assert ep.prompt is not None  # set at reset
        token_ids = self.prompts.config.style == "chat" and ep.prompt_ids is not None
        before = ep.prompt.messages if token_ids else []
        ep.observation, ep.info = observation, info
        new = ep.prompt.advance(step.action, step.response_text, observation, info)
        if token_ids:
            from agentgym.policies.chat import render_delta_ids

            prefix = list(ep.prompt_ids) + list(step.response_ids)
            ep.prompt_ids = prefix + render_delta_ids(
                self._tokenizer,
                [*before, {"role": "assistant", "content": step.response_text}],
                new,
                tools=ep.prompt.tools,
                response_ids=step.response_ids,
            )

    def _fail(self, ep: _Episode, message: str) -> None:
        ep.traj.status = "error"
        ep.traj.error = message
        ep.done = True

    def _finish(self, ep: _Episode, free: deque, on_trajectory, progress) -> None:
        if ep.traj.status == "running":
            ep.traj.status = "truncated"
        self.stats.trajectories += 1
        free.append(ep.slot)
        if on_trajectory is not None:
            on_trajectory(ep.traj)
        if progress is not None:
            progress(1)
