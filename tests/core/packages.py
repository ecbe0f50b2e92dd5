"""Throwaway packages for plugin tests: really installed (pip, into a target folder), and
commands run in a fresh process that has only that folder added to its path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

AGENTGYM = str(Path(sys.executable).with_name("agentgym"))


def install_package(
    root: Path,
    name: str,
    files: dict[str, str],
    entry_points: dict[str, dict[str, str]],
    packages: list[str] | None = None,
) -> Path:
    """Write a package (``files``: path -> source, dedented) with ``entry_points``
    (group -> {name: value}), pip-install it into ``root/site`` and return that folder."""
    src = root / "src"
    for path, text in files.items():
        target = src / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    tops = packages or sorted({p.split("/")[0] for p in files if "/" in p})
    groups = "\n".join(
        f'[project.entry-points."{group}"]\n'
        + "\n".join(f'"{key}" = "{value}"' for key, value in points.items())
        + "\n"
        for group, points in entry_points.items()
    )
    (src / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "0.1"\n\n'
        f"{groups}\n"
        f"[tool.setuptools]\npackages = {tops!r}\n".replace("'", '"')
    )
    site = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(src),
        ],
        check=True,
    )
    return site


def run_with(
    args: list[str], site: Path, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """Run a command in a fresh process with ``site`` on its path."""
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    return subprocess.run(
        args, env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=600
    )
