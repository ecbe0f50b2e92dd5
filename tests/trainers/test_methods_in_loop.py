"""Model-in-the-loop methods trained end to end: judged methods against a judge model
served over the OpenAI API on loopback (a real server process)."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentgym.judges import Judge, JudgeRequest
from agentgym.providers.judged import DEFAULT_PAIR_TEMPLATE, DEFAULT_TURN_TEMPLATE
from agentgym.trainers.rl import train
from agentgym.trainers.tracking import read_metrics
from tests.methods.helpers import train_to_answer
from tests.trainers.conftest import small_config

REPO = Path(__file__).resolve().parents[2]
#: The served judge's answer to everything: the ``winner`` parser reads A (A wins), and
#: :func:`letter_grade` reads it as 10 of 10 (a one-layer model learns one letter reliably).
VERDICT = "A"


def letter_grade(text: str) -> float | None:
    """A verdict parser given by "module:function": a letter grade A-E as 10, 7.5, ... 0."""
    grades = {"A": 10.0, "B": 7.5, "C": 5.0, "D": 2.5, "E": 0.0}
    letters = [c for c in text.strip()[:1] if c in grades]
    return grades[letters[0]] if letters else None


ONE_ITERATION = [
    "sft.enabled=false",
    "trainer.total_iterations=1",
    "trainer.val_every=0",
    "trainer.test_tasks=0",
    "trainer.save_every=0",
    "env.rollout.n=3",
    "trainer.plots=false",
]


def _fields(rng: random.Random) -> dict:
    """Judge-prompt fields that look like FrozenLake rollouts, varied, so the judge learns
    to give its verdict whatever the prompt says."""
    actions = ["up", "down", "left", "right", "<think>hmm</think>", "xx"]
    grid = "\n".join("".join(rng.choice("SFHGP") for _ in range(4)) for _ in range(4))
    turns = [
        f"[turn {i + 1}] agent: <action>{rng.choice(actions)}</action>\nenvironment: {grid}"
        for i in range(rng.randint(1, 3))
    ]
    return {
        "task": f"Reach the goal G.\n{grid}", "history": "\n".join(turns[:1]),
        "observation": grid, "response": rng.choice(actions), "feedback": grid, "turn": 1,
        "response_a": "\n".join(turns), "response_b": "\n".join(turns[::-1]),
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def judge_url(
    tiny_frozenlake_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A tiny model taught to answer ``VERDICT``, served by agentgym's test OpenAI server
    (FastAPI + transformers) in a subprocess on loopback."""
    rng = random.Random(0)
    prompts = [
        template.format(**_fields(rng))
        for _ in range(3)
        for template in (DEFAULT_PAIR_TEMPLATE, DEFAULT_TURN_TEMPLATE)
    ]
    model = train_to_answer(
        tiny_frozenlake_model,
        tmp_path_factory.mktemp("judge") / "model",
        VERDICT,
        prompts,
        steps=60,
    )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.evaluation.openai_server", "--model", str(model),
         "--name", "judge", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "the judge server exited"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/models", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the judge server did not start"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_served_judge_gives_parsed_verdicts_and_its_cost(judge_url: str) -> None:
    judge = Judge(f"openai:{judge_url}#judge", max_tokens=8)
    prompt = DEFAULT_PAIR_TEMPLATE.format(**_fields(random.Random(7)))  # a prompt not trained on
    verdicts = judge.judge([JudgeRequest(prompt)] * 2, "winner", default=None)
    assert verdicts == [(1.0, 0.0), (1.0, 0.0)]
    parser = "tests.trainers.test_methods_in_loop:letter_grade"
    assert judge.judge([JudgeRequest(prompt)], parser, default=None) == [10.0]
    m = judge.metrics()
    assert m["judge/calls"] == 1 and m["judge/cache_hits"] == 2  # one prompt, asked thrice
    assert m["judge/prompt_tokens"] > 0 and m["judge/completion_tokens"] > 0
    assert m["judge/failures"] == 0 and m["judge/seconds"] > 0


@pytest.mark.parametrize("estimator", ["arenarl", "mapo"])
def test_judged_methods_train_with_a_served_judge(
    tmp_path: Path, tiny_frozenlake_model: Path, judge_url: str, estimator: str
) -> None:
    cfg = small_config(
        tmp_path / "run",
        f"policy.model={tiny_frozenlake_model}",
        *ONE_ITERATION,
        f"algorithm.adv_estimator={estimator}",
        f"judge.model=openai:{judge_url}#judge",
        "judge.max_tokens=8",
        "algorithm.providers={arena: {parser: winner}}"
        if estimator == "arenarl"
        else f"algorithm.providers={{turn_judge: {{parser: '{__name__}:letter_grade'}}}}",
    )
    result = train(cfg)
    record = next(r for r in read_metrics(result.run_dir) if "train/success" in r)
    assert record["judge/calls"] > 0 and record["judge/completion_tokens"] > 0
    assert record["actor/grad_norm"] >= 0 and record["train/samples"] > 0
    if estimator == "arenarl":
        # 2 groups of 3: 2N - 2 = 4 matches each, asked in both orders; every answer read
        assert record["arena/matches"] == 8 and record["judge/failures"] == 0
        assert record["judge/calls"] + record["judge/cache_hits"] == 16
    else:
        # every turn parsed: grade A is 10 of 10
        assert record["judge/failures"] == 0
        assert record["judge/turn_score_mean"] == 1.0


# SPO's tracker across a SIGKILL and --resume: tests/trainers/test_resume_and_ddp.py
# (the kill-and-resume test runs with SPO's provider and task sampler).


def test_gae_checkpoints_hold_the_critic_and_a_resumed_run_continues_exactly(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    """Two iterations, then a resume to three, log what three iterations in one go log:
    the critic (weights and optimizer) comes back from the checkpoint."""
    import torch

    gae = [
        f"policy.model={tiny_frozenlake_model}",
        "sft.enabled=false",
        "trainer.val_every=0",
        "trainer.test_tasks=0",
        "trainer.save_every=1",
        "trainer.plots=false",
        "env.rollout.n=2",
        "algorithm.adv_estimator=gae",
        "algorithm.providers={critic: {lr: 0.001}}",
    ]

    def learning(run: Path) -> dict[int, dict]:
        return {
            r["iteration"]: {k: v for k, v in r.items() if not k.startswith(("perf/", "health/"))
                             and "seconds" not in k}
            for r in read_metrics(run)
            if "train/success" in r
        }  # fmt: skip

    straight = train(small_config(tmp_path / "a", *gae, "trainer.total_iterations=3"))
    first = train(small_config(tmp_path / "b", *gae, "trainer.total_iterations=2"))
    state = torch.load(
        Path(first.run_dir) / "checkpoints" / "iter_000002" / "trainer_state.pt", weights_only=False
    )
    saved = {p["name"]: p["state"] for p in state["methods"]["providers"]}
    assert any(k.startswith("head.") for k in saved["critic"]["model"])
    assert saved["critic"]["optimizer"]["state"]  # Adam moments after two updates
    train(small_config(tmp_path / "b", *gae, "trainer.total_iterations=3"), resume=True)
    a, b = learning(Path(straight.run_dir)), learning(tmp_path / "b")
    assert sorted(a) == sorted(b) == [1, 2, 3]
    assert "critic/value_loss" in a[3]
    for key in a[3]:
        assert b[3][key] == pytest.approx(a[3][key], rel=1e-5, abs=1e-7), key


def test_hiper_trains_on_its_plan_execute_format_after_sft(
    tmp_path: Path, tiny_frozenlake_model: Path
) -> None:
    """SFT on expert demonstrations rendered in HiPER's format, then one HiPER iteration:
    the responses carry subgoals, which get the high-level advantage."""
    cfg = small_config(
        tmp_path / "run",
        "policy.model=tiny",  # a tokenizer that learnt the format's tags
        "policy.tiny.episodes=8",
        "sft.enabled=true",
        "sft.epochs=15",
        "sft.tasks=64",
        "sft.lr=1e-2",
        "policy.sampling.max_tokens=48",
        "env.action_parser=hiper",
        "algorithm.adv_estimator=hiper",
        "trainer.total_iterations=1",
        "trainer.val_every=0",
        "trainer.test_tasks=0",
        "trainer.save_every=0",
        "trainer.plots=false",
        "env.rollout.n=2",
    )
    result = train(cfg)
    record = next(r for r in read_metrics(result.run_dir) if "train/success" in r)
    assert record["critic/value_loss"] >= 0 and record["train/samples"] > 0
    assert "hiper/switch_rate" in record and "hiper/adv_high_mean" in record
    assert record["hiper/subgoal_tokens"] > 0  # the SFT'd model writes subgoals


@pytest.mark.parametrize("style", ["window", "chat"])
def test_seeupo_trains_turn_by_turn(
    tmp_path: Path, tiny_frozenlake_model: Path, style: str
) -> None:
    import torch

    from agentgym.trainers.model import load_model

    cfg = small_config(
        tmp_path / "run",
        f"policy.model={tiny_frozenlake_model}",
        *ONE_ITERATION,
        f"env.prompt.style={style}",
        "algorithm.adv_estimator=grpo",
        "actor.policy_loss=gspo",
        "actor.update_schedule={name: seeupo}",
    )
    result = train(cfg)
    record = next(r for r in read_metrics(result.run_dir) if "train/success" in r)
    assert record["seeupo/turns"] >= 1 and "actor/grad_norm" in record
    before, _ = load_model(str(tiny_frozenlake_model))
    after, _ = load_model(str(Path(result.run_dir) / "checkpoints" / "latest" / "model"))
    changed = any(
        not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters(), strict=True)
    )
    assert changed == (record["credit/adv_zero_share"] < 1.0)
