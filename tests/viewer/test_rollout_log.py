"""write_rollout_sample: whole groups, their advantages, determinism, text that cannot break it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agentgym.trainers.rollout_log import rollout_path, write_rollout_sample
from agentgym.trajectory import Trajectory, read_jsonl
from tests.viewer.helpers import advantages, play


@pytest.fixture(scope="module")
def batch() -> tuple[list[Trajectory], list[list[float]]]:
    trajs = play("FrozenLake-v0", tasks=6, n=4, max_steps=8, seed=1)
    return trajs, advantages(trajs, "gigpo")


def test_sample_is_whole_groups_with_their_advantages(batch, tmp_path: Path) -> None:
    trajs, adv = batch
    assert any(a != 0.0 for row in adv for a in row)  # real credit, not all zeros
    path = write_rollout_sample(tmp_path, 3, trajs, adv, estimator="gigpo", max_groups=2, seed=5)
    assert path == tmp_path / "rollouts" / "iter_000003.jsonl" == rollout_path(tmp_path, 3)
    written = read_jsonl(path)
    groups = {t.group_id for t in written}
    assert len(groups) == 2
    by_id = {t.traj_id: (t, a) for t, a in zip(trajs, adv, strict=True)}
    # every rollout of a chosen group, none of the others, in the batch's order
    assert [t.traj_id for t in written] == [t.traj_id for t in trajs if t.group_id in groups]
    for traj in written:
        original, original_adv = by_id[traj.traj_id]
        meta = traj.metadata
        assert meta["advantages"] == original_adv
        assert meta["iteration"] == 3 and meta["estimator"] == "gigpo"
        assert "advantages" not in original.metadata  # the caller's trajectory is untouched
        expected = original.to_dict()
        got = traj.to_dict()
        expected.pop("metadata"), got.pop("metadata")
        assert got == expected


def test_choice_depends_only_on_seed_and_iteration(batch, tmp_path: Path) -> None:
    trajs, adv = batch

    def chosen(seed: int, iteration: int = 1) -> frozenset[str]:
        path = write_rollout_sample(
            tmp_path / f"s{seed}-{iteration}",
            iteration,
            trajs,
            adv,
            estimator="grpo",
            max_groups=2,
            seed=seed,
        )
        return frozenset(t.group_id for t in read_jsonl(path))

    assert chosen(7) == chosen(7)
    assert len({chosen(seed) for seed in range(8)}) > 1
    # more groups asked for than there are: all of them
    path = write_rollout_sample(tmp_path / "all", 1, trajs, adv, estimator="grpo", max_groups=99)
    assert len(read_jsonl(path)) == len(trajs)


def test_nothing_to_write_returns_none(batch, tmp_path: Path) -> None:
    trajs, adv = batch
    assert write_rollout_sample(tmp_path, 1, trajs, adv, estimator="gigpo", max_groups=0) is None
    assert write_rollout_sample(tmp_path, 1, [], [], estimator="gigpo") is None
    assert not (tmp_path / "rollouts").exists()


def test_caller_bugs_are_errors(batch, tmp_path: Path) -> None:
    trajs, adv = batch
    with pytest.raises(ValueError, match="advantage lists for"):
        write_rollout_sample(tmp_path, 1, trajs, adv[:-1], estimator="gigpo")
    with pytest.raises(ValueError, match="steps but"):
        write_rollout_sample(tmp_path, 1, trajs, [*adv[:-1], [*adv[-1], 0.0]], estimator="gigpo")
    with pytest.raises(ValueError, match="max_groups must be >= 0"):
        write_rollout_sample(tmp_path, 1, trajs, adv, estimator="gigpo", max_groups=-1)


def test_bad_text_and_values_never_raise(batch, tmp_path: Path) -> None:
    trajs, adv = batch
    traj = Trajectory.from_dict(trajs[0].to_dict())
    step = traj.steps[0]
    step.response_text = "half a character \udc80 from a byte-level tokenizer"
    step.observation = "emoji \U0001f600 and a NUL \x00"
    loop: dict = {}
    loop["self"] = loop
    traj.steps[-1].info = {"loop": loop}
    values = [float("nan")] + [float("inf")] * (len(traj.steps) - 1)
    path = write_rollout_sample(tmp_path, 1, [traj], [values], estimator="gigpo")
    raw = path.read_bytes()
    raw.decode("utf-8")  # valid UTF-8 on disk
    (back,) = read_jsonl(path)
    assert back.steps[0].response_text == step.response_text  # the surrogate, escaped and back
    assert back.steps[0].observation == step.observation
    assert "not JSON serialisable" in back.steps[-1].info["unserialisable_info"]
    assert back.metadata["advantages"] == [None] * len(traj.steps)


def test_failed_write_is_a_warning(batch, tmp_path: Path, caplog) -> None:
    trajs, adv = batch
    blocker = tmp_path / "run"
    blocker.write_text("a file where the run directory should be")
    with caplog.at_level(logging.WARNING, logger="agentgym.trainers.rollout_log"):
        assert write_rollout_sample(blocker, 2, trajs, adv, estimator="gigpo") is None
    assert "could not save the rollout sample of iteration 2" in caplog.text


def test_lines_are_what_trajectory_to_json_writes(batch, tmp_path: Path) -> None:
    """The fast encoder writes the same JSON as Trajectory.to_json, numpy values included."""
    import numpy as np

    trajs, adv = batch
    traj = Trajectory.from_dict(trajs[0].to_dict())
    traj.steps[0].info.update(
        {"count": np.int64(3), "grid": np.zeros((2, 2)), "seen": {"a"}, "raw": b"\xff"}
    )
    path = write_rollout_sample(tmp_path, 1, [traj, *trajs[1:]], adv, estimator="gigpo")
    lines = path.read_text(encoding="utf-8").splitlines()
    by_id = {t.traj_id: t for t in [traj, *trajs[1:]]}
    for line in lines:
        got = json.loads(line)
        meta = got.pop("metadata")
        expected = json.loads(by_id[got["traj_id"]].to_json())
        expected.pop("metadata")
        assert got == expected
        assert set(meta) >= {"advantages", "iteration", "estimator"}
