"""SeeUPO's schedule: reverse turn order, advantages reweighted by the sequence-level ratios
of the turns already updated (closed form with known ratios), and chat samples split by
turn."""

from __future__ import annotations

import math

import pytest

from agentgym.config import TrainConfig, load_config
from agentgym.errors import ConfigError
from agentgym.trainers.samples import Sample
from agentgym.trainers.schedules import build_update_schedule, turn_views


def window_sample(traj: int, step: int, adv: float) -> Sample:
    # prompt of 2 tokens, response of 2: old log-probs -1 on the response
    return Sample(
        [1, 2, 3, 4], [0, 0, 1, 1], [0, 0, adv, adv], [math.nan, math.nan, -1.0, -1.0],
        traj, step,
    )  # fmt: skip


def test_seeupo_updates_last_turn_first_with_the_later_turns_ratios() -> None:
    # two trajectories: 3 turns and 1 turn; after updating turn k the policy's log-prob of
    # each of that turn's tokens rises by delta[k] (so s_k = exp(delta[k]))
    delta = {0: 0.1, 1: -0.2, 2: 0.3}
    samples = [window_sample(0, t, 1.0 + t) for t in range(3)] + [window_sample(1, 0, -2.0)]
    calls = []

    def update(subset: list[Sample]) -> dict[str, float]:
        calls.append([(s.traj_index, s.step_index, s.advantages[2]) for s in subset])
        return {"actor/pg_loss": float(len(subset))}

    def score(subset: list[Sample], field: str) -> None:
        for s in subset:
            setattr(s, field, [x + delta[s.step_index] for x in s.old_logprobs])

    metrics = build_update_schedule({"name": "seeupo"}).run(samples, update, score)
    assert [call[0][1] for call in calls] == [2, 1, 0]
    assert calls[0] == [(0, 2, 3.0)]  # the last turn: nothing updated after it
    assert calls[1] == [(0, 1, pytest.approx(2.0 * math.exp(0.3)))]
    # turn 0: trajectory 0 carries s_2 * s_1, trajectory 1 (one turn) nothing
    assert calls[2] == [(0, 0, pytest.approx(1.0 * math.exp(0.3 - 0.2))), (1, 0, -2.0)]
    assert metrics["seeupo/turns"] == 3
    assert samples[0].advantages[2] == 1.0  # the caller's samples are left as they were
    clipped = build_update_schedule({"name": "seeupo", "weight_clip": 1.1})
    calls.clear()
    clipped.run([window_sample(0, t, 1.0) for t in range(2)], update, score)
    # turn 0 carries s_1 = exp(-0.2) = 0.82, clipped to 1 / 1.1
    assert calls[1][0][2] == pytest.approx(1 / 1.1)


def test_chat_samples_are_split_by_turn() -> None:
    sample = Sample(
        [1, 2, 3, 4, 5, 6], [0, 1, 1, 0, 1, 0], [0, 1, 1, 0, 2, 0], [math.nan] * 6, 0, -1,
        segment=[-1, 0, 0, -1, 1, -1],
    )  # fmt: skip
    views = turn_views([sample])
    assert sorted(views) == [0, 1]
    assert views[0][0].mask == [0, 1, 1, 0, 0, 0] and views[1][0].mask == [0, 0, 0, 0, 1, 0]
    assert views[1][0].input_ids == sample.input_ids and sample.mask == [0, 1, 1, 0, 1, 0]


def test_update_schedules_are_checked_at_load() -> None:
    cfg = load_config(TrainConfig, None, ["actor.update_schedule={name: seeupo, weight_clip: 5}"])
    assert cfg.actor.update_schedule == {"name": "seeupo", "weight_clip": 5}
    with pytest.raises(ConfigError, match="Did you mean 'seeupo'"):
        load_config(TrainConfig, None, ["actor.update_schedule={name: seupo}"])
    with pytest.raises(ConfigError, match="Did you mean 'weight_clip'"):
        load_config(TrainConfig, None, ["actor.update_schedule={name: seeupo, weight_clp: 5}"])
