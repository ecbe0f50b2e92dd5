"""A deliberately broken environment fails the checker with a message naming the rule."""

from __future__ import annotations

import pytest

from agentgym.checker import check_env
from agentgym.errors import EnvCheckError
from tests.core.broken_envs import (
    FeedbackKeyedLake,
    ForgetfulSnapshotLake,
    NonDeterministic,
    RaisesOnGarbage,
    SharedSplits,
    UnpicklableSnapshotLake,
)


@pytest.mark.parametrize(
    ("env_cls", "rule", "words"),
    [
        (FeedbackKeyedLake, "state_key", "feedback"),
        (RaisesOnGarbage, "garbage_actions", "raised ValueError"),
        (NonDeterministic, "determinism", "diverged"),
        (SharedSplits, "splits", "share task"),
        (ForgetfulSnapshotLake, "snapshot", "differs from the original episode"),
        (UnpicklableSnapshotLake, "snapshot", "does not pickle"),
    ],
)
def test_broken_env_fails_the_named_rule(env_cls, rule: str, words: str) -> None:
    report = check_env(env_cls(), raise_on_failure=False)
    failed = dict(report.failures)
    assert rule in failed, report.results
    assert f"[{rule}]" in failed[rule] and words in failed[rule]


def test_check_env_raises_with_all_broken_rules_listed() -> None:
    with pytest.raises(EnvCheckError, match=r"(?s)breaks \d+ rule\(s\).*\[garbage_actions\]"):
        check_env(RaisesOnGarbage())


def test_a_broken_snapshot_is_the_only_rule_it_breaks() -> None:
    report = check_env(ForgetfulSnapshotLake(), raise_on_failure=False)
    assert [name for name, _ in report.failures] == ["snapshot"], report.failures
