"""The environment written out in docs/environments.md works and passes the checker."""

from __future__ import annotations

import re
from pathlib import Path

from agentgym.checker import check_env

DOC = Path(__file__).parents[2] / "docs" / "environments.md"


def test_the_documented_example_env_passes_the_checker() -> None:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL).group(1)
    code = code.replace('register("Guess-v0", "my_pkg.guess:GuessEnv", max_steps=6)', "")
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    report = check_env(namespace["GuessEnv"](), raise_on_failure=False)
    assert report.ok, report.failures


def test_the_documented_snapshot_example_and_hooks_work() -> None:
    """The snapshot example runs, and GuessEnv with the documented hooks passes the
    checker's snapshot rule (it runs only for envs that support snapshots)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    example = next(b for b in blocks if "agentgym.snapshot(env)" in b)
    exec(compile(example, str(DOC), "exec"), {})
    hooks = next(b for b in blocks if "def _snapshot_state" in b)
    code = blocks[0].replace('register("Guess-v0", "my_pkg.guess:GuessEnv", max_steps=6)', "")
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    hooks_only: dict = {}
    exec(compile("import zlib\nclass Hooks:\n" + hooks, str(DOC), "exec"), hooks_only)
    env_cls = type(
        "SnapshotGuess",
        (namespace["GuessEnv"],),
        {
            name: hooks_only["Hooks"].__dict__[name]
            for name in ("_snapshot_state", "_restore_state")
        },
    )
    env = env_cls()
    assert env.supports_snapshot
    report = check_env(env, raise_on_failure=False)
    assert report.ok and "snapshot" in [name for name, _, _ in report.results], report.failures
