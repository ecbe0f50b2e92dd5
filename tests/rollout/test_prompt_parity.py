"""SFT, training rollouts, ``agentgym eval`` and ``agentgym play`` build byte-equal prompts.

For every built-in environment and both prompt styles, the expert plays a few episodes
through the trainer's engine (token ids as sent to the model, tool schemas included);
then the same episodes' prompts are rebuilt by SFT (from the trajectories), played again
by the engine ``agentgym eval`` builds for the training run, by the asynchronous engine
(``env.rollout.mode: async``), and stepped through ``agentgym play``'s session. Every
prompt must be the same token ids. A random-policy
episode adds unparsable responses (the engine's feedback turns) to the SFT comparison.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentgym.config import TrainConfig, load_config, save_config
from agentgym.policies.builtin import ExpertPolicy, RandomPolicy
from agentgym.rollout import TaskRequest, sample_tasks
from agentgym.trajectory import Trajectory

#: name -> (env id, env kwargs as overrides); every built-in environment family.
ENVS = {
    "sokoban": ("Sokoban-v0", []),
    "frozenlake": ("FrozenLake-v0", []),
    "search-tags": ("Search-v0", ["env.kwargs.protocol=tags"]),
    "search-tools": ("Search-v0", ["env.kwargs.protocol=tools"]),
    "alfworld": ("ALFWorld-v0", ["env.kwargs.num_games={train: 2, valid: 1, test: 1}"]),
    "webshop": ("WebShop-v0", []),
    "code": ("CodeSandbox-v0", []),
}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model's directory (its tokenizer and chat template are what matter here)."""
    from agentgym.models import build_tiny_model

    texts = ["<tool_call>", "<action>up</action>", "Observation", "search", "answer"] * 20
    out = tmp_path_factory.mktemp("parity") / "tiny"
    build_tiny_model(texts, out, layers=1, hidden=64, vocab_size=400, max_positions=8192)
    return out


def _config(name: str, style: str, out: Path, *overrides: str) -> TrainConfig:
    env_id, kwargs = ENVS[name]
    return load_config(
        TrainConfig,
        None,
        [
            f"env.id={env_id}",
            *kwargs,
            "env.max_steps=4",
            f"env.prompt.style={style}",
            "env.history_length=2",
            "env.rollout.max_prompt_tokens=100000",
            f"trainer.out_dir={out}",
            *overrides,
        ],
    )


def _play(cfg: TrainConfig, policy, tasks: list[TaskRequest]) -> list[Trajectory]:
    from agentgym.config.settings import sampling_params
    from agentgym.trainers.setup import build_engine

    engine = build_engine(cfg, policy, sampling_params(cfg.policy.sampling, 0))
    try:
        return engine.run(tasks, n=1)
    finally:
        engine.close()


def _eval_trajectories(
    cfg: TrainConfig, run_dir: Path, tokenizer_dir: Path, tasks: list[TaskRequest]
) -> list[Trajectory]:
    """The episodes as ``agentgym eval --policy RUN_DIR`` builds its engine."""
    from agentgym.evaluation.config import EvalConfig, run_defaults
    from agentgym.evaluation.session import Runtime, build_engine, resolve_config

    settings = {k: v for k, v in run_defaults(str(run_dir)).items() if v is not None}
    config = resolve_config(EvalConfig(**{**settings, "policy": "expert"}))
    runtime = Runtime(policy_options={"tokenizer": str(tokenizer_dir)})
    engine = build_engine(config, runtime, len(tasks))
    try:
        return engine.run(tasks, n=1)
    finally:
        engine.close()


@pytest.mark.parametrize("style", ["window", "chat"])
@pytest.mark.parametrize("name", list(ENVS))
def test_sft_rollout_eval_and_play_prompts_are_byte_equal(
    name: str, style: str, tokenizer_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from agentgym.cli.play import PlaySession
    from agentgym.config.settings import env_spec, prompt_builder
    from agentgym.parsers import get_parser
    from agentgym.registry import make
    from agentgym.trainers.sft import prompt_ids_per_step, sft_samples

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    run_dir = tmp_path / "run"
    cfg = _config(name, style, run_dir)
    tasks = sample_tasks(env_spec(cfg), "train", 2, seed=5)
    expert = _play(cfg, ExpertPolicy("expert", tokenizer=str(tokenizer_dir)), tasks)
    random = _play(cfg, RandomPolicy("random", tokenizer=str(tokenizer_dir)), tasks[:1])
    steps = [s for t in expert for s in t.steps]
    assert steps and all(s.prompt_ids for s in steps)
    if "tools" in name or name == "code":  # the tool schemas are in the prompt
        assert all(b"<tools>" in tokenizer.decode(s.prompt_ids).encode() for s in steps)

    # the asynchronous engine (one loop per episode) plays the same episodes
    per_episode = _config(name, style, run_dir, "env.rollout.mode=async")
    played = _play(per_episode, ExpertPolicy("expert", tokenizer=str(tokenizer_dir)), tasks)
    assert [[(s.action, s.reward, s.prompt_ids) for s in t.steps] for t in played] == [
        [(s.action, s.reward, s.prompt_ids) for s in t.steps] for t in expert
    ]

    # SFT rebuilds each step's prompt from the trajectory: the same ids
    builder = prompt_builder(cfg)
    for traj in [*expert, *random]:
        assert prompt_ids_per_step(traj, tokenizer, builder) == [s.prompt_ids for s in traj.steps]
    samples = sft_samples(expert, tokenizer, style, only_successful=False, prompts=builder)
    if style == "window":
        assert [x.input_ids[: len(s.prompt_ids)] for x, s in zip(samples, steps, strict=True)] == [
            s.prompt_ids for s in steps
        ]
    else:  # one sample per episode, holding every turn's prompt as its prefix
        for sample, traj in zip(samples, expert, strict=True):
            for s in traj.steps:
                assert sample.input_ids[: len(s.prompt_ids)] == s.prompt_ids

    # agentgym eval of the training run: the same engine settings, the same ids
    run_dir.mkdir()
    save_config(cfg, run_dir / "config.yaml")
    (run_dir / "sft-model").mkdir()
    evaluated = _eval_trajectories(cfg, run_dir, tokenizer_dir, tasks)
    assert [[s.prompt_ids for s in t.steps] for t in evaluated] == [
        [s.prompt_ids for s in t.steps] for t in expert
    ]

    # agentgym play, typing the expert's responses
    env = make(cfg.env.id, max_steps=cfg.env.max_steps, **dict(cfg.env.kwargs))
    parser = get_parser(cfg.env.action_parser or env.unwrapped.action_parser)
    session = PlaySession(env, parser, builder)
    try:
        for traj in expert:
            session.reset(traj.seed, {"task_id": traj.task_id})
            for s in traj.steps:
                assert session.prompt is not None
                assert session.prompt.token_ids(tokenizer) == s.prompt_ids
                session.step(s.response_text)
    finally:
        env.close()
