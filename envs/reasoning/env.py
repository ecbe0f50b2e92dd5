"""``agentgym/ReasoningGym-v0`` and ``agentgym/ReasoningGymTools-v0``: reasoning-gym's
procedural generators as single-turn tasks, or as multi-turn tasks with a tool.

Tasks come from ``reasoning_gym.create_dataset(name, seed=..., size=..., **config)``;
each item of a reasoning-gym dataset is generated from its own seed (the dataset's seed
plus its index). The splits take non-overlapping seed ranges of every generator: with
sizes ``{train: n, valid: m, test: k}`` and base ``seed`` s, train items have seeds
``s .. s+n-1``, valid ``s+n .. s+n+m-1``, test the next ``k``. Task ids are
``"<generator>-<item seed>"``. A held-out item whose question also occurs in an earlier
split (small generators repeat themselves) is left out, so no test question is a
training one.

Scoring is the generator's own ``score_answer(answer, entry)`` (exact match for most,
partial credit where the generator gives it). ``success`` is a full score.

``tools=None`` (``ReasoningGym-v0``, one turn)
    The action is the whole response (the ``raw`` parser); its last ``<answer>...</answer>``
    (reasoning-gym's own format) is the answer. A response without one is an invalid
    action.
``tools="calculator"`` or ``"python"`` (``ReasoningGymTools-v0``, several turns)
    Actions are tool calls (the ``tool_call`` parser's canonical JSON, or raw
    ``<tool_call>`` text): ``calculator(expression)`` (safe arithmetic, see
    :mod:`.calculator`) or ``python(code)`` (run in agentgym's code sandbox, printed
    output shown), and ``answer(answer)``, which ends the episode. ``state_key`` names the
    question and the *set* of tool results seen so far; the expert of ``basic_arithmetic``
    items calls the calculator on the expression before it answers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from agentgym.env import SPLITS, Split, StepResult, TextEnv
from agentgym.envs.reasoning.calculator import CalculatorError, calculate
from agentgym.errors import ConfigError, did_you_mean
from agentgym.parsers import find_tags, parse_tool_call_json

Tools = Literal["calculator", "python"]
DEFAULT_GENERATORS = ("basic_arithmetic", "gcd", "letter_counting")
DEFAULT_SIZES = {"train": 200, "valid": 20, "test": 20}
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def _digest(text: str, size: int = 6) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).hexdigest()


def tool_schemas(tools: Tools) -> list[dict[str, Any]]:
    """OpenAI function schemas of the tool and ``answer``."""
    if tools == "calculator":
        tool = {
            "name": "calculator",
            "description": "Evaluate arithmetic: numbers, + - * / // % ** and parentheses.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "e.g. (3+4)*2"}},
                "required": ["expression"],
            },
        }
    else:
        tool = {
            "name": "python",
            "description": "Run a Python program in a sandbox and see what it prints.",
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "description": "Python source."}},
                "required": ["code"],
            },
        }
    answer = {
        "name": "answer",
        "description": "Give the final answer. Ends the episode.",
        "parameters": {
            "type": "object",
            "properties": {"answer": {"type": "string", "description": "The answer."}},
            "required": ["answer"],
        },
    }
    return [{"type": "function", "function": tool}, {"type": "function", "function": answer}]


class ReasoningGymEnv(TextEnv):
    """reasoning-gym generators as tasks (see the module docstring).

    Args:
        generators: generator names, or ``{name: config}`` (config: the generator's own
            keyword arguments, e.g. ``{"basic_arithmetic": {"max_terms": 4}}``).
        sizes: items per generator and split, ``{"train": n, "valid": m, "test": k}``.
        seed: the first item seed of every generator.
        tools: ``None`` (one turn), ``"calculator"`` or ``"python"``.
        python_timeout_s: wall-time limit of one ``python`` call.
        max_output_chars: how much of a tool's output an observation shows.
    """

    description: ClassVar[str] = (
        "reasoning-gym's procedural tasks, one turn or with a calculator/Python tool; "
        "scored by each generator."
    )
    max_action_chars: ClassVar[int] = 16384

    def __init__(
        self,
        generators: Sequence[str] | Mapping[str, Mapping[str, Any]] = DEFAULT_GENERATORS,
        sizes: Mapping[str, int] | None = None,
        seed: int = 0,
        tools: Tools | None = None,
        python_timeout_s: float = 5.0,
        max_output_chars: int = 2000,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        import reasoning_gym

        if tools not in (None, "calculator", "python"):
            raise ConfigError(f"tools={tools!r} must be None, 'calculator' or 'python'")
        configs = (
            {str(k): dict(v or {}) for k, v in generators.items()}
            if isinstance(generators, Mapping)
            else {str(name): {} for name in generators}
        )
        if not configs:
            raise ConfigError("generators is empty; name at least one reasoning-gym generator")
        known = sorted(reasoning_gym.factory.DATASETS)
        for name in configs:
            if name not in known:
                raise ConfigError(
                    f"reasoning-gym has no generator {name!r}." + did_you_mean(name, known)
                )
        sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
        if set(sizes) != set(SPLITS) or any(int(n) < 0 for n in sizes.values()):
            raise ConfigError(f"sizes must give a count for each of {list(SPLITS)}, got {sizes}")
        self.tools: Tools | None = tools
        self.action_parser = "tool_call" if tools else "raw"
        self.python_timeout_s = float(python_timeout_s)
        self.max_output_chars = int(max_output_chars)
        self._datasets: dict[str, Any] = {}
        self._items: dict[str, tuple[str, int]] = {}  # task id -> (generator, index)
        self._ids: dict[str, list[str]] = {s: [] for s in SPLITS}
        total = sum(int(sizes[s]) for s in SPLITS)
        for name, config in configs.items():
            try:
                dataset = reasoning_gym.create_dataset(name, seed=int(seed), size=total, **config)
            except Exception as exc:  # a bad config is the generator's own error
                raise ConfigError(f"reasoning-gym generator {name!r}: {exc}") from exc
            self._datasets[name] = dataset
            seen: set[str] = set()
            start = 0
            for split in SPLITS:
                questions = []
                for index in range(start, start + int(sizes[split])):
                    question = dataset[index]["question"]
                    if question in seen:
                        continue  # held out only if never seen in an earlier split
                    task_id = f"{name}-{int(seed) + index}"
                    self._items[task_id] = (name, index)
                    self._ids[split].append(task_id)
                    questions.append(question)
                seen.update(questions)
                start += int(sizes[split])
        self._schemas = tool_schemas(tools) if tools else None
        self._sandbox: Any = None
        # episode state
        self._entry: dict[str, Any] = {}
        self._generator = ""
        self._results: set[str] = set()
        self._answered = False
        self._num_tool_calls = 0

    # ------------------------------------------------------------ tasks

    def task_ids(self, split: Split) -> Sequence[str]:
        return self._ids[split]

    def entry(self, task_id: str) -> dict[str, Any]:
        """The reasoning-gym item of ``task_id`` (question, answer, metadata)."""
        name, index = self._items[task_id]
        return self._datasets[name][index]

    def _load_task(self, task_id: str, split: Split, rng: np.random.Generator) -> str:
        self._generator = self._items[task_id][0]
        self._entry = self.entry(task_id)
        self._results, self._answered, self._num_tool_calls = set(), False, 0
        return self._entry["question"]

    def _instruction(self) -> str:
        if self.tools is None:
            return (
                "Solve the problem. You may reason first; then give only the final answer "
                "inside <answer> </answer>."
            )
        return (
            f"Solve the problem. You may call the {self.tools} tool as often as you like; "
            "then call answer with the final answer only."
        )

    def _tools(self) -> list[dict[str, Any]] | None:
        return self._schemas

    def _task_type(self) -> str | None:
        return self._generator or None

    def _extra_info(self) -> dict[str, Any]:
        return {"num_tool_calls": self._num_tool_calls} if self.tools else {}

    # ------------------------------------------------------------ state

    def _state_key(self) -> str:
        seen = _digest("\x1f".join(sorted(self._results))) if self._results else "-"
        key = f"{_digest(str(self._task_id), 4)}|{seen}"
        return key + ("|end" if self._answered else "")

    def canonical_state(self) -> str:
        """The task, the set of tool results seen, and whether it was answered."""
        return f"{self._task_id}\n{sorted(self._results)}\n{self._answered}"

    def _last_obs_tail(self) -> str:
        return self._entry.get("question", "")

    # ------------------------------------------------------------ acting

    def _grade(self, answer: str) -> StepResult:
        dataset = self._datasets[self._generator]
        try:
            score = float(dataset.score_answer(answer, self._entry))
        except Exception as exc:  # a generator's scorer failing must not crash a run
            score, note = 0.0, f" (the scorer failed: {type(exc).__name__})"
        else:
            note = ""
        score = min(1.0, max(0.0, score)) if score == score else 0.0
        self._answered = True
        return StepResult(
            observation=f"Your answer: {answer!r}. Score {score:.2f}{note}.",
            reward=score,
            terminated=True,
            success=score >= 1.0,
            score=score,
            info={"answer": answer},
        )

    def _step(self, action: str) -> StepResult:
        if self.tools is None:
            tagged = _ANSWER.findall(action)
            if not tagged:
                return self._invalid("write the final answer inside <answer> </answer>")
            answer = tagged[-1].strip()
            if not answer:
                return self._invalid("the answer is empty")
            return self._grade(answer)
        call = self._parse_call(action)
        if isinstance(call, str):
            return self._invalid(call)
        name, argument = call
        self._num_tool_calls += 1
        if name == "answer":
            return self._grade(argument)
        output = self._run_tool(name, argument)
        self._results.add(f"{name}\x1f{output}")
        return StepResult(observation=output, success=False, score=0.0)

    def _invalid(self, message: str) -> StepResult:
        return StepResult(
            observation=f"Invalid action: {message}\n\n{self._entry['question']}",
            action_valid=False,
        )

    def _parse_call(self, action: str) -> tuple[str, str] | str:
        calls = find_tags(action, "tool_call")
        payload = calls[0].strip() if calls else action.strip()
        if not payload.startswith("{"):
            return 'no tool call; write <tool_call>{"name": ..., "arguments": {...}}</tool_call>'
        call = parse_tool_call_json(payload)
        if isinstance(call, str):
            return call
        name, arguments = call["name"], call["arguments"]
        key = {"calculator": "expression", "python": "code", "answer": "answer"}.get(name)
        if name not in (self.tools, "answer") or key is None:
            names = [self.tools, "answer"]
            return f"there is no tool {name!r}.{did_you_mean(name, names)} Tools: {names}"
        value = arguments.get(key)
        if set(arguments) != {key} or not isinstance(value, str | int | float):
            return f'{name} takes one argument, "{key}" (a string)'
        if isinstance(value, bool) or not str(value).strip():
            return f'{name} needs a non-empty "{key}"'
        return name, str(value).strip()

    def _run_tool(self, name: str, argument: str) -> str:
        if name == "calculator":
            try:
                return calculate(argument)
            except CalculatorError as exc:
                return f"Calculator error: {exc}"
        if self._sandbox is None:
            from agentgym.tools.sandbox import make_sandbox

            self._sandbox = make_sandbox("local", wall_time_s=self.python_timeout_s)
        result = self._sandbox.run(argument)
        parts = [result.stdout.rstrip()]
        if result.stderr.strip():
            parts.append(f"stderr:\n{result.stderr.rstrip()}")
        if result.timed_out:
            parts.append(f"(stopped after {self.python_timeout_s:g} s)")
        elif result.exit_code not in (0, None):
            parts.append(f"(exit status {result.exit_code})")
        text = "\n".join(p for p in parts if p) or "(no output)"
        if len(text) > self.max_output_chars:
            text = text[: self.max_output_chars] + "\n[... output cut]"
        return text

    def _expert_action(self) -> str:
        import json

        answer = str(self._entry["answer"])
        if self.tools is None:
            return f"<answer>{answer}</answer>"
        expression = (self._entry.get("metadata") or {}).get("expression")
        if self.tools == "calculator" and expression and not self._results:
            return json.dumps({"name": "calculator", "arguments": {"expression": expression}})
        return json.dumps({"name": "answer", "arguments": {"answer": answer}})

    def random_action(self, rng: np.random.Generator) -> str:
        """A guess (a number or a word from the question), or a tool call with one."""
        import json

        words = re.findall(r"[A-Za-z0-9]+", self._entry.get("question", "")) or ["0"]
        guess = words[int(rng.integers(len(words)))]
        if self.tools is None:
            guess = guess if rng.random() < 0.7 else str(int(rng.integers(-50, 100)))
            return f"<answer>{guess}</answer>" if rng.random() < 0.9 else guess
        if rng.random() < 0.5:
            key = "expression" if self.tools == "calculator" else "code"
            value = f"{guess}+1" if self.tools == "calculator" else f"print({guess!r})"
            return json.dumps({"name": self.tools, "arguments": {key: value}})
        return json.dumps({"name": "answer", "arguments": {"answer": guess}})

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        super().close()
