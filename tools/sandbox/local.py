"""The ``local`` backend: programs run as host processes, isolated as far as the host allows.

Every program runs under the runner (:mod:`~agentgym.tools.sandbox.runner`) with
resource limits (RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC), its own
session and process group, an environment built from scratch, a wall-clock limit after
which every process it started is killed, and a capped output. Around that, the strongest
of these isolation levels that works here (``isolation="auto"``):

``bwrap``    bubblewrap: new user, PID, network, IPC and UTS namespaces; the file system is
             a read-only view of ``/usr`` (and the Python installation) with a private
             tmpfs ``/work`` and ``/tmp``: the host's home folders, ``/etc``, ``/var``,
             ``/tmp`` and the repository are not visible, nothing outside the tmpfs can be
             written, and there is no network. Needs the ``bubblewrap`` package.
``unshare``  ``unshare`` (util-linux): new user, network, PID and mount namespaces, so no
             network and no stray processes -- but the program sees and can write the
             whole host file system with the rights of the user running agentgym.
``none``     plain processes: limits and process-group kill only. No network or file
             system isolation, and processes that leave the process group survive a kill
             only until the runner's sweep of its descendants.

At every level the runner also holds the resident memory of all a run's processes
together to ``memory_mb`` (``total_memory=True``, the default): it polls the box's memory
every 20 ms and stops the run with ``memory_limit``, so a program that forks 8 children of
400 MB each is stopped near 512 MB instead of taking 3.2 GB of the host. The bound is soft
by what the program can allocate between two polls (measured by
``benchmarks/sandbox_memory.py``); the host kernel's cgroups, which would make it hard,
are not used (no delegated cgroup v2 is assumed). The ``bwrap`` box also runs under a
seccomp filter that refuses nested user namespaces (:mod:`~agentgym.tools.sandbox.seccomp`).

What the local backend does **not** protect against, at any level: kernel exploits (it
shares the host kernel; the seccomp filter is a narrow deny list, not Docker's profile),
reading what ``/usr`` and the Python installation contain, and CPU contention with the
host. Run untrusted code at scale in the ``docker`` backend (optionally with gVisor,
``runtime="runsc"``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from functools import cache
from pathlib import Path
from typing import Literal

from agentgym.errors import ConfigError, did_you_mean
from agentgym.tools.sandbox.base import Limits, SandboxUnavailableError
from agentgym.tools.sandbox.box import BoxDied, BoxSandbox, RunnerBox, runner_source
from agentgym.tools.sandbox.seccomp import filter_fd, filter_program

Isolation = Literal["auto", "bwrap", "unshare", "none"]
ISOLATIONS: tuple[str, ...] = ("bwrap", "unshare", "none")
_ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


@cache
def default_python() -> str:
    """The interpreter programs run with.

    The system's ``/usr/bin/python3`` where it is Python >= 3.8 -- on Debian the very
    interpreter of the Docker image, so both backends run the same Python, and it starts
    fast -- else the base interpreter behind this one (not agentgym's virtual environment).
    """
    system = "/usr/bin/python3"
    if os.access(system, os.X_OK):
        try:
            done = subprocess.run(
                [system, "-I", "-S", "-c", "import sys; print(sys.version_info >= (3, 8))"],
                capture_output=True,
                timeout=30,
            )
            if done.stdout.strip() == b"True":
                return system
        except (OSError, subprocess.SubprocessError):
            pass
    return os.path.realpath(sys.executable)


def python_prefix(python: str) -> str:
    """The installation folder of ``python`` (``/usr`` for a system Python)."""
    real = Path(os.path.realpath(python))
    return str(real.parent.parent) if real.parent.name == "bin" else str(real.parent)


def bwrap_argv(
    python: str,
    limits: Limits,
    ro_binds: tuple[str, ...] = (),
    seccomp_fd: int | None = None,
) -> list[str]:
    """The bubblewrap command of a box (without the runner's own arguments).

    ``seccomp_fd``: a descriptor holding :mod:`~agentgym.tools.sandbox.seccomp`'s filter
    (pass it to the child with ``pass_fds``).
    """
    argv = ["bwrap", "--unshare-all"]
    if limits.network:
        argv.append("--share-net")
    argv += [
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for path in _ROOT_LINKS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    for path in (python_prefix(python), *ro_binds):
        if path != "/usr" and not path.startswith("/usr/"):
            argv += ["--ro-bind", path, path]
    size = str(int(limits.disk_mb) * 1024 * 1024)
    argv += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--mqueue",  # the box's own POSIX message queues, visible so they can be emptied
        "/dev/mqueue",
        "--size",  # a private, bounded /dev/shm (multiprocessing needs one)
        size,
        "--tmpfs",
        "/dev/shm",
        "--size",
        size,
        "--tmpfs",
        "/tmp",
        "--size",
        size,
        "--tmpfs",
        "/work",
        "--remount-ro",  # the root bubblewrap builds is a tmpfs: no writes outside the tmpfs mounts
        "/",
        "--chdir",
        "/work",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
    ]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv


def unshare_argv(limits: Limits) -> list[str]:
    argv = ["unshare", "--user", "--map-root-user", "--pid", "--ipc", "--fork", "--kill-child"]
    argv += ["--mount-proc"]
    if not limits.network:
        argv.append("--net")
    return argv


#: The host user programs run as when agentgym runs as root (``run_as="auto"``).
NOBODY = 65534


def _user_kwargs(user: int | None) -> dict:
    """Popen arguments that start a process as ``user`` (with the same group id)."""
    if user is None:
        return {}
    return {"user": user, "group": user, "extra_groups": []}


@cache
def isolation_available(level: str, python: str, user: int | None = None) -> bool:
    """Whether ``level`` works on this host for ``user`` (a real probe, cached)."""
    tool = {"bwrap": "bwrap", "unshare": "unshare"}.get(level)
    if tool is not None and shutil.which(tool) is None:
        return False
    with filter_fd() as fd:
        prefix = {
            "bwrap": bwrap_argv(python, Limits(), seccomp_fd=fd),
            "unshare": unshare_argv(Limits()),
        }.get(level, [])
        try:
            done = subprocess.run(
                [*prefix, python, "-I", "-S", "-c", "print('ok')"],
                capture_output=True,
                timeout=30,
                env=_box_env(),
                cwd="/",
                pass_fds=(fd,) if level == "bwrap" and fd is not None else (),
                **_user_kwargs(user),
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return done.returncode == 0 and done.stdout.strip() == b"ok"


def best_isolation(python: str | None = None, user: int | str | None = "auto") -> str:
    """The strongest isolation level that works here (``bwrap`` > ``unshare`` > ``none``)."""
    py = python or default_python()
    uid = default_user() if user == "auto" else user
    for level in ISOLATIONS:
        if isolation_available(level, py, uid):  # type: ignore[arg-type]
            return level
    raise SandboxUnavailableError(
        f"{py} does not run as user {uid}: pass python= an interpreter that user may run"
    )


def default_user() -> int | None:
    """``nobody`` when agentgym runs as root (root is exempt from RLIMIT_NPROC, even in a
    user namespace, and may write anywhere), else ``None``: the current user."""
    return NOBODY if os.geteuid() == 0 else None


def _remove_folder(path: str) -> None:
    """Remove a box's host folder: emptied iteratively and without following links (a
    program may have left a tree thousands of levels deep, or links to host files)."""
    from agentgym.tools.sandbox.runner import wipe_dir

    wipe_dir(path)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _box_env() -> dict[str, str]:
    # The box command itself (bwrap, unshare) gets a minimal environment; the runner then
    # builds the program's environment from scratch.
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }


class LocalSandbox(BoxSandbox):
    """Programs run as host processes (see the module docstring for the isolation).

    Args:
        limits: default :class:`Limits` of each run.
        isolation: ``"auto"`` (strongest available), ``"bwrap"``, ``"unshare"`` or
            ``"none"``. Asking for a level that does not work here is an error; ``auto``
            falling back to ``none`` warns.
        python: interpreter of the programs (default: the base interpreter of this one).
        reuse: keep one box warm for all runs (see :mod:`~agentgym.tools.sandbox.box`).
        ro_binds: more host folders to show read-only inside ``bwrap`` (e.g. a virtual
            environment whose packages programs may import).
        run_as: host uid of the box: ``"auto"`` is ``nobody`` (65534) when agentgym runs
            as root -- so the process limit holds and the program owns nothing on the
            host -- and the current user otherwise; ``None`` is always the current user.
        total_memory: also hold the resident memory of all a run's processes together to
            ``memory_mb`` (the runner polls it every 20 ms and stops the run with
            ``memory_limit``); ``False`` leaves only the per-process RLIMIT_AS, whose
            worst case is ``max_processes * memory_mb``.
    """

    backend = "local"

    def __init__(
        self,
        limits: Limits | None = None,
        isolation: Isolation = "auto",
        python: str | None = None,
        reuse: bool = True,
        ro_binds: tuple[str, ...] | list[str] = (),
        run_as: int | str | None = "auto",
        total_memory: bool = True,
    ) -> None:
        super().__init__(limits, reuse)
        self.total_memory = bool(total_memory)
        if isolation not in ("auto", *ISOLATIONS):
            raise ConfigError(
                f"isolation={isolation!r} is not one of {['auto', *ISOLATIONS]}."
                + did_you_mean(str(isolation), ISOLATIONS)
            )
        self.python = python or default_python()
        if not os.access(self.python, os.X_OK):
            raise ConfigError(f"python={self.python!r} is not an executable interpreter")
        self.ro_binds = tuple(str(Path(p).resolve()) for p in ro_binds)
        if run_as == "auto":
            run_as = default_user()
        if run_as is not None and (isinstance(run_as, bool) or not isinstance(run_as, int)):
            raise ConfigError(f"run_as must be 'auto', None or a uid, got {run_as!r}")
        self.run_as: int | None = run_as
        if isolation == "auto":
            isolation = best_isolation(self.python, self.run_as)  # type: ignore[assignment]
            if isolation == "none":
                warnings.warn(
                    "the local sandbox found neither bubblewrap nor unprivileged namespaces: "
                    "programs run without network or file-system isolation (install "
                    "bubblewrap, or use the docker backend)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        elif not isolation_available(isolation, self.python, self.run_as):
            hint = {
                "bwrap": "install it (Debian: apt-get install bubblewrap) or use isolation='auto'",
                "unshare": "unprivileged user namespaces seem disabled on this host",
            }[isolation]
            raise SandboxUnavailableError(f"isolation={isolation!r} does not work here: {hint}")
        self.isolation: str = isolation

    def describe(self) -> str:
        seccomp = ", no nested user namespaces" if filter_program() is not None else ""
        what = {
            "bwrap": f"bubblewrap: private fs view, no network, own PID namespace{seccomp}",
            "unshare": "user/PID/network namespaces, host file system visible",
            "none": "rlimits only: no network or file-system isolation",
        }[self.isolation]
        user = "" if self.run_as is None else f", uid {self.run_as}"
        return f"local, isolation={self.isolation}{user} ({what})"

    def _start_box(self) -> RunnerBox:
        runner = [
            self.python,
            "-I",
            "-S",
            "-c",
            runner_source(),
            "--serve",
            "--python",
            self.python,
        ]
        pass_fds: tuple[int, ...] = ()
        seccomp = filter_fd() if self.isolation == "bwrap" else contextlib.nullcontext(None)
        with seccomp as fd:
            if fd is not None:
                pass_fds = (fd,)
            return self._start_runner(runner, fd, pass_fds)

    def _start_runner(
        self, runner: list[str], seccomp_fd: int | None, pass_fds: tuple[int, ...]
    ) -> RunnerBox:
        on_exit = None
        if self.total_memory:
            runner = [*runner, "--box-memory"]
        if self.isolation == "bwrap":
            argv = [*bwrap_argv(self.python, self.limits, self.ro_binds, seccomp_fd), *runner]
            argv += ["--workdir", "/work", "--wipe", "/tmp:/dev/shm:/dev/mqueue", "--own-ipc"]
        else:
            # unshare/none see the host's /tmp: each box gets a private host folder, and
            # only that folder is ever emptied.
            tmp = tempfile.mkdtemp(prefix="agentgym-sandbox-")
            if self.run_as is not None:
                os.chown(tmp, self.run_as, self.run_as)
            on_exit = functools.partial(_remove_folder, tmp)
            prefix = unshare_argv(self.limits) if self.isolation == "unshare" else []
            argv = [*prefix, *runner, "--workdir", tmp]
            if self.isolation == "unshare":
                # Its own IPC namespace: the runner may remove every SysV object in it.
                # Under "none" the namespace is the host's, and nothing is removed.
                argv.append("--own-ipc")
            if self.isolation == "none" and self.run_as is None:
                # RLIMIT_NPROC counts all processes of the user outside a user namespace.
                argv.append("--no-nproc")
        box = RunnerBox(
            argv,
            name=f"local sandbox ({self.isolation})",
            on_exit=on_exit,
            env=_box_env(),
            popen_kwargs={"cwd": "/", "pass_fds": pass_fds, **_user_kwargs(self.run_as)},
        )
        try:
            box.request({"op": "ping"}, timeout=30)
        except BoxDied:
            box.kill()
            raise
        return box
