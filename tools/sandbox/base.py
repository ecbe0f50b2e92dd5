"""What every sandbox backend shares: :class:`Limits`, :class:`ExecResult`, the
:class:`Sandbox` and :class:`SandboxSession` protocols and the errors.

A sandbox runs a Python program -- its source, its stdin and any files it needs -- under
limits (wall time, CPU time, memory, output size, processes, no network) and reports what
happened: stdout, stderr, exit code, whether it timed out, and the resources it used. A
session keeps the working directory's files from one run to the next.

Results never raise for what the *program* did (an infinite loop, a crash, a flood of
output are all outcomes with a ``status``). Problems of the sandbox itself (the engine
went away, the box died) are results with ``status="sandbox_error"``; only mistakes of the
caller (bad limits, a file name outside the working directory) raise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from agentgym.errors import AgentGymError, ConfigError

Status = Literal[
    "ok",  # exit code 0
    "error",  # a non-zero exit code (an exception, sys.exit(1), ...)
    "timeout",  # the wall-clock limit was reached; the program was killed
    "cpu_limit",  # the CPU-time limit was reached (SIGXCPU / SIGKILL)
    "memory_limit",  # MemoryError (the address-space limit), or the local box's total
    "output_limit",  # stdout or stderr passed max_output_bytes; the program was killed
    "file_limit",  # a file passed max_file_mb (SIGXFSZ)
    "killed",  # killed by another signal (e.g. the container's OOM killer: SIGKILL)
    "sandbox_error",  # the sandbox failed, not the program (see ExecResult.error)
]

#: Files a program receives: relative path -> text (UTF-8) or bytes.
Files = Mapping[str, "str | bytes"]


class SandboxError(AgentGymError, RuntimeError):
    """The sandbox machinery failed (a box did not start, died, or answered nonsense)."""


class SandboxUnavailableError(SandboxError):
    """A backend cannot run here (no Docker engine, no image, ...); the message says how
    to make it available."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one program run.

    Attributes:
        wall_time_s: wall-clock seconds before the program is killed (``timeout``).
        cpu_time_s: CPU seconds (RLIMIT_CPU, rounded up to whole seconds).
        memory_mb: address space of each process (RLIMIT_AS). Docker also caps the whole
            container (``--memory``) at this plus its three tmpfs sizes plus 64 MB; the
            local backend also holds the resident memory of all a run's processes
            together to it (polled every 20 ms, so a soft bound; ``total_memory=``).
        max_output_bytes: bytes kept of stdout and of stderr each; a program that writes
            more is killed (``output_limit``) and the first bytes are returned.
        max_file_mb: largest file the program may write (RLIMIT_FSIZE).
        max_processes: processes and threads in the box, the runner included
            (RLIMIT_NPROC in the local backend's own user namespace; ``--pids-limit`` of
            the container in Docker).
        max_open_files: open file descriptors (RLIMIT_NOFILE).
        disk_mb: size of each private tmpfs, ``/work``, ``/tmp`` and ``/dev/shm``
            (bubblewrap, Docker); the local ``unshare``/``none`` isolation writes to a host
            folder instead.
        network: allow network access (off: no interface but loopback).
    """

    wall_time_s: float = 10.0
    cpu_time_s: float = 10.0
    memory_mb: int = 512
    max_output_bytes: int = 256 * 1024
    max_file_mb: int = 16
    max_processes: int = 16
    max_open_files: int = 256
    disk_mb: int = 64
    network: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "network":
                if not isinstance(value, bool):
                    raise ConfigError(f"Limits.network must be a bool, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(
                    f"Limits.{f.name} must be a positive number, got {value!r}; "
                    f"the default is {f.default!r}"
                )
        if self.memory_mb < 32:
            raise ConfigError(
                f"Limits.memory_mb={self.memory_mb} is too small to start Python; use >= 32"
            )

    def replace(self, **changes: float | int | bool) -> Limits:
        """A copy with some limits changed (unknown names are a :class:`ConfigError`)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            from agentgym.errors import did_you_mean

            raise ConfigError(
                f"unknown limit {unknown[0]!r}.{did_you_mean(unknown[0], names)} "
                f"Valid: {sorted(names)}"
            )
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def for_runner(self) -> dict[str, float | int]:
        """The per-run limits the in-box runner enforces itself."""
        return {
            "wall_time_s": float(self.wall_time_s),
            "cpu_time_s": float(self.cpu_time_s),
            "memory_mb": int(self.memory_mb),
            "max_output_bytes": int(self.max_output_bytes),
            "max_file_mb": int(self.max_file_mb),
            "max_processes": int(self.max_processes),
            "max_open_files": int(self.max_open_files),
        }


@dataclass
class ExecResult:
    """The outcome of one program run.

    ``exit_code`` is the program's exit status, or minus the signal that killed it (as in
    :mod:`subprocess`); ``None`` for a ``sandbox_error``. ``stdout``/``stderr`` are
    decoded as UTF-8 (invalid bytes replaced) and hold at most ``max_output_bytes``;
    ``*_truncated`` says whether more was written. ``files`` holds the files asked for
    with ``collect=`` that exist after the run.
    """

    status: Status
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    wall_time_s: float = 0.0
    cpu_time_s: float = 0.0
    max_rss_kb: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    backend: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The program ran to the end and exited with status 0."""
        return self.status == "ok"

    def describe(self, limits: Limits | None = None) -> str:
        """One sentence on how the run ended, for people and agents to read."""
        lim = limits or Limits()
        return {
            "ok": "The program exited normally (exit code 0).",
            "error": f"The program failed with exit code {self.exit_code}.",
            "timeout": f"The program was stopped after {lim.wall_time_s:g} s (time limit).",
            "cpu_limit": f"The program used more than {lim.cpu_time_s:g} s of CPU time and "
            "was stopped.",
            "memory_limit": f"The program ran out of memory (limit {lim.memory_mb} MB).",
            "output_limit": f"The program printed more than {lim.max_output_bytes} bytes "
            "and was stopped.",
            "file_limit": f"The program wrote a file larger than {lim.max_file_mb} MB and "
            "was stopped.",
            "killed": f"The program was killed by signal {-(self.exit_code or 0)}"
            " (possibly out of memory).",
            "sandbox_error": f"The sandbox failed (not the program's fault): {self.error}",
        }[self.status]

    @classmethod
    def sandbox_error(cls, message: str, backend: str = "") -> ExecResult:
        return cls(status="sandbox_error", exit_code=None, error=message, backend=backend)


@runtime_checkable
class SandboxSession(Protocol):
    """A working directory that lives across runs (one box held for the session)."""

    def run(
        self,
        code: str,
        *,
        stdin: str = "",
        files: Files | None = None,
        argv: Sequence[str] = (),
        limits: Limits | None = None,
        collect: Sequence[str] = (),
    ) -> ExecResult:
        """Run ``code`` in the session's directory; files from earlier runs are there."""
        ...

    def read_file(self, path: str) -> bytes | None:
        """A file of the working directory (``None`` if absent)."""
        ...

    def list_files(self) -> dict[str, int]:
        """Every file of the working directory with its size in bytes."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> SandboxSession: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Sandbox(Protocol):
    """Runs Python programs under :class:`Limits` (see the module docstring).

    ``run`` starts each program in an empty working directory; ``session()`` gives a
    directory that persists across runs. ``close`` releases processes and containers.
    """

    backend: str
    limits: Limits

    def run(
        self,
        code: str,
        *,
        stdin: str = "",
        files: Files | None = None,
        argv: Sequence[str] = (),
        limits: Limits | None = None,
        collect: Sequence[str] = (),
    ) -> ExecResult:
        """Run ``code`` as ``main.py`` with ``stdin``, ``files`` and command-line ``argv``.

        ``limits`` overrides the sandbox's for this run; ``collect`` names files of the
        working directory to return in :attr:`ExecResult.files`.
        """
        ...

    def session(self) -> SandboxSession: ...

    def close(self) -> None: ...

    def describe(self) -> str:
        """What isolation this sandbox gives, in one line."""
        ...
