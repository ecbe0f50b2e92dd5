"""The host side of the runner protocol, shared by the local and Docker backends.

A *box* is one isolated process tree -- a bubblewrap/unshare process, or a container --
whose main process is the runner (:mod:`agentgym.tools.sandbox.runner`). The host writes
one JSON request per line to the box's stdin and reads one JSON answer per line from its
stdout. Backends differ only in the command that starts a box; :class:`BoxSandbox`
implements :class:`~agentgym.tools.sandbox.base.Sandbox` on top of that.

With ``reuse=True`` (the default) a sandbox keeps one warm box and sends it every
``run``: the runner empties the working directory and kills every leftover process
between runs, so runs do not see each other, and the start-up cost (tens of ms for
bubblewrap, about half a second for a container) is paid once.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import selectors
import subprocess
import tempfile
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from agentgym.tools.sandbox.base import ExecResult, Files, Limits, SandboxError

#: Seconds the host waits beyond a run's wall-time limit before it gives up on the box.
HOST_GRACE_S = 10.0
START_TIMEOUT_S = 60.0


@cache
def runner_source() -> str:
    """The runner's source, passed to ``python -c`` so images need no copy of it."""
    return (Path(__file__).with_name("runner.py")).read_text()


class BoxDied(SandboxError):
    """The box's runner went away (or never answered)."""


class RunnerBox:
    """One running box: a subprocess that speaks the runner protocol.

    Args:
        argv: the command that starts the box (its last words start the runner).
        name: shown in errors.
        on_kill: called after the process is killed (e.g. ``docker rm -f`` the container).
        on_exit: called once the box is gone, however it ended (e.g. remove a folder).
        env: the environment of the box command (``None`` = inherit).
        popen_kwargs: more :class:`subprocess.Popen` arguments (``user=``, ``cwd=``...).
    """

    def __init__(
        self,
        argv: Sequence[str],
        name: str,
        on_kill: Callable[[], None] | None = None,
        on_exit: Callable[[], None] | None = None,
        env: dict[str, str] | None = None,
        popen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self._on_kill = on_kill
        self._on_exit = on_exit
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the box
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                start_new_session=True,
                close_fds=True,
                **(popen_kwargs or {}),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._stderr.close()
            if on_exit is not None:
                on_exit()
            raise BoxDied(f"could not start {name}: {exc}") from exc
        self._buf = bytearray()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        # A box must not outlive its owner, even if close() is never called.
        self._finalizer = weakref.finalize(self, _kill_quietly, self.proc, on_kill, on_exit)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request; wait at most ``timeout`` seconds for the answer."""
        data = json.dumps(message, ensure_ascii=True).encode() + b"\n"
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise BoxDied(f"{self.name} is not running ({exc}){self._why()}") from exc
        line = self._read_line(time.monotonic() + timeout)
        try:
            answer = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BoxDied(
                f"{self.name} answered something that is not JSON: {line[:200]!r}"
            ) from exc
        if not answer.get("ok"):
            raise SandboxError(f"{self.name}: {answer.get('error')}")
        return answer

    def _read_line(self, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise BoxDied(f"{self.name} did not answer in time")
            if not self._selector.select(left):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self.proc.wait(timeout=5) if self.proc.poll() is None else None
                raise BoxDied(f"{self.name} exited (code {self.proc.poll()}){self._why()}")
            self._buf += chunk

    def _why(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            text = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
            if text:
                return f": {text}"
        return ""

    def close(self, timeout: float = 3.0) -> None:
        """Ask the runner to stop (end of its stdin); kill the box if it does not."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._cleanup()

    def kill(self) -> None:
        _kill_quietly(self.proc, self._on_kill, None)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._finalizer.detach() is not None and self._on_exit is not None:
            with contextlib.suppress(Exception):
                self._on_exit()
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if f is not None:
                    f.close()
        with contextlib.suppress(Exception):
            self._selector.close()
        with contextlib.suppress(OSError):
            self._stderr.close()


def _kill_quietly(
    proc: subprocess.Popen,
    on_kill: Callable[[], None] | None,
    on_exit: Callable[[], None] | None,
) -> None:
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, 9)
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)
    for hook in (on_kill, on_exit):
        if hook is not None:
            with contextlib.suppress(Exception):
                hook()


def encode_files(files: Files | None) -> dict[str, str]:
    """Files for the wire: relative path -> base64 (names are checked by the runner too)."""
    out: dict[str, str] = {}
    for name, content in (files or {}).items():
        if (
            not isinstance(name, str)
            or not name
            or name.startswith("/")
            or ".." in Path(name).parts
        ):
            raise ValueError(
                f"file name {name!r} must be a relative path inside the working directory "
                "(no leading '/', no '..')"
            )
        # Lone surrogates pass as the runner's code and stdin do (a model's text may
        # hold one): encoding never raises.
        data = (
            content.encode("utf-8", "surrogatepass") if isinstance(content, str) else bytes(content)
        )
        out[name] = base64.b64encode(data).decode("ascii")
    return out


def result_from_answer(answer: dict[str, Any], limits: Limits, backend: str) -> ExecResult:
    status = answer["status"]
    return ExecResult(
        status=status,
        exit_code=answer["exit_code"],
        stdout=answer["stdout"],
        stderr=answer["stderr"],
        timed_out=status in ("timeout", "cpu_limit"),
        wall_time_s=float(answer["wall_time_s"]),
        cpu_time_s=float(answer["cpu_time_s"]),
        max_rss_kb=int(answer["max_rss_kb"]),
        stdout_truncated=answer["stdout_bytes"] > limits.max_output_bytes,
        stderr_truncated=answer["stderr_bytes"] > limits.max_output_bytes,
        files={k: base64.b64decode(v) for k, v in answer.get("files", {}).items()},
        backend=backend,
    )


class BoxSandbox(ABC):
    """A :class:`~agentgym.tools.sandbox.base.Sandbox` whose programs run in boxes.

    Subclasses say how to start a box (:meth:`_start_box`) and what isolation it gives
    (:meth:`describe`). Thread-safe: runs on one sandbox are serialised.
    """

    backend: str = ""

    def __init__(self, limits: Limits | None = None, reuse: bool = True) -> None:
        self.limits = limits or Limits()
        self.reuse = bool(reuse)
        self._box: RunnerBox | None = None
        self._lock = threading.Lock()
        self._closed = False

    @abstractmethod
    def _start_box(self) -> RunnerBox:
        """Start a new box (its runner must be ready to read requests)."""

    @abstractmethod
    def describe(self) -> str: ...

    def _request(self, box: RunnerBox, message: dict[str, Any], timeout: float) -> dict:
        return box.request(message, timeout)

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
        message = _run_message(code, stdin, files, argv, limits or self.limits, collect, keep=False)
        lim = limits or self.limits
        with self._lock:
            if self._closed:
                raise SandboxError(f"this {self.backend} sandbox is closed")
            if not self.reuse:
                return self._run_in_fresh_box(message, lim)
            for attempt in range(2):
                try:
                    box = self._warm_box()
                except SandboxError as exc:
                    return ExecResult.sandbox_error(str(exc), self.backend)
                try:
                    answer = self._request(box, message, lim.wall_time_s + HOST_GRACE_S)
                except BoxDied as exc:
                    self._drop_box()
                    # A box that died before it read the request (e.g. killed from
                    # outside while idle) gets one retry; one that died during the run
                    # was killed by the program or the system: that is the result.
                    if attempt == 0 and "is not running" in str(exc):
                        continue
                    return ExecResult.sandbox_error(str(exc), self.backend)
                except SandboxError as exc:
                    # The runner could not do its part (set up the working directory,
                    # start the program): whatever an earlier program did to the box, a
                    # fresh box does not have it. The run is tried once more in one.
                    self._drop_box()
                    if attempt == 0:
                        continue
                    return ExecResult.sandbox_error(str(exc), self.backend)
                return result_from_answer(answer, lim, self.backend)
        raise AssertionError("unreachable")

    def _run_in_fresh_box(self, message: dict[str, Any], lim: Limits) -> ExecResult:
        try:
            box = self._start_box()
        except SandboxError as exc:
            return ExecResult.sandbox_error(str(exc), self.backend)
        try:
            answer = self._request(box, message, lim.wall_time_s + HOST_GRACE_S + START_TIMEOUT_S)
            return result_from_answer(answer, lim, self.backend)
        except SandboxError as exc:
            return ExecResult.sandbox_error(str(exc), self.backend)
        finally:
            box.close()

    def _warm_box(self) -> RunnerBox:
        if self._box is None or not self._box.alive:
            self._drop_box()
            self._box = self._start_box()
        return self._box

    def _drop_box(self) -> None:
        if self._box is not None:
            self._box.kill()
            self._box = None

    def warm_up(self) -> None:
        """Start the warm box now rather than on the first run (``reuse=True``)."""
        with self._lock:
            if self.reuse:
                self._warm_box()

    def session(self) -> BoxSession:
        """A working directory that keeps its files across runs (its own box)."""
        if self._closed:
            raise SandboxError(f"this {self.backend} sandbox is closed")
        return BoxSession(self)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._box is not None:
                self._box.close()
                self._box = None

    def __enter__(self) -> BoxSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class BoxSession:
    """A session: one box held for its lifetime; runs keep the working directory."""

    def __init__(self, sandbox: BoxSandbox) -> None:
        self.sandbox = sandbox
        self._box: RunnerBox | None = sandbox._start_box()
        self._lock = threading.Lock()

    def _live_box(self) -> RunnerBox:
        if self._box is None:
            raise SandboxError("the session is closed")
        if not self._box.alive:
            raise SandboxError("the session's box has died (its files are gone)")
        return self._box

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
        lim = limits or self.sandbox.limits
        message = _run_message(code, stdin, files, argv, lim, collect, keep=True)
        with self._lock:
            try:
                answer = self._live_box().request(message, lim.wall_time_s + HOST_GRACE_S)
            except SandboxError as exc:
                return ExecResult.sandbox_error(str(exc), self.sandbox.backend)
        return result_from_answer(answer, lim, self.sandbox.backend)

    def read_file(self, path: str) -> bytes | None:
        with self._lock:
            answer = self._live_box().request({"op": "read", "path": path}, HOST_GRACE_S)
        data = answer.get("data")
        return None if data is None else base64.b64decode(data)

    def list_files(self) -> dict[str, int]:
        with self._lock:
            return dict(self._live_box().request({"op": "list"}, HOST_GRACE_S)["files"])

    def close(self) -> None:
        with self._lock:
            if self._box is not None:
                self._box.close()
                self._box = None

    def __enter__(self) -> BoxSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_message(
    code: str,
    stdin: str,
    files: Files | None,
    argv: Sequence[str],
    limits: Limits,
    collect: Sequence[str],
    keep: bool,
) -> dict[str, Any]:
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, got {type(code).__name__}")
    if not isinstance(stdin, str):
        raise TypeError(f"stdin must be a str, got {type(stdin).__name__}")
    return {
        "op": "run",
        "code": code,
        "stdin": stdin,
        "files": encode_files(files),
        "argv": [str(a) for a in argv],
        "limits": limits.for_runner(),
        "collect": list(collect),
        "keep": keep,
    }
