"""The ``docker`` backend: programs run in containers of a locally built image.

Each box is one container started with ``docker run -i --rm`` whose main process (PID 1)
is the runner (:mod:`~agentgym.tools.sandbox.runner`); the runner's source is passed on
the command line, so the image is nothing but Debian's ``python3`` (see
:mod:`agentgym.tools.sandbox.image`). The container gets:

* ``--network none`` (no interface but loopback) unless ``Limits.network``;
* ``--read-only`` root file system, with private tmpfs ``/work``, ``/tmp`` and
  ``/dev/shm`` of ``Limits.disk_mb`` each, emptied between runs;
* ``--memory`` (no swap), ``--pids-limit``, ``--cpus``;
* every capability dropped except those the runner needs to manage the program
  (CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETUID, SETGID) and ``no-new-privileges``; the
  program itself runs as ``nobody`` (uid 65534) with no capabilities at all;
* Docker's default seccomp profile, and optionally another runtime (``runtime="runsc"``
  for gVisor, where installed).

With ``reuse=True`` (the default) one container serves every run of the sandbox: starting
a container costs about half a second, a run in a warm one tens of milliseconds. Between
runs the runner kills every process (it is PID 1) and empties ``/work`` and ``/tmp``, so a
run cannot see what an earlier one did.
"""

from __future__ import annotations

import functools
import os
import uuid

from agentgym.tools.sandbox.base import Limits, SandboxUnavailableError
from agentgym.tools.sandbox.box import BoxDied, BoxSandbox, RunnerBox, runner_source
from agentgym.tools.sandbox.engine import SANDBOX_LABEL, docker, docker_cli, engine_running

DEFAULT_IMAGE = "agentgym-python:bookworm"
#: The unprivileged user programs run as inside the container.
PROGRAM_UID = 65534
_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID")


def container_argv(
    name: str,
    image: str,
    limits: Limits,
    cpus: float | None,
    runtime: str | None,
    python: str,
) -> list[str]:
    """The ``docker run`` command of one box."""
    disk = int(limits.disk_mb)
    memory = int(limits.memory_mb) + 3 * disk + 64  # tmpfs pages count as memory
    argv = [
        docker_cli(),
        "run",
        "-i",
        "--rm",
        "--name",
        name,
        "--label",
        f"{SANDBOX_LABEL}=1",
        "--label",
        f"{SANDBOX_LABEL}.owner={os.getpid()}",
        "--network",
        "bridge" if limits.network else "none",
        "--read-only",
        "--tmpfs",
        f"/work:rw,nosuid,nodev,noexec,size={disk}m,mode=1777",
        "--tmpfs",
        f"/tmp:rw,nosuid,nodev,noexec,size={disk}m,mode=1777",
        "--shm-size",
        f"{disk}m",
        "--memory",
        f"{memory}m",
        "--memory-swap",
        f"{memory}m",
        "--pids-limit",  # counts the runner, as RLIMIT_NPROC does in the local backend
        str(int(limits.max_processes)),
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--workdir",
        "/work",
        "--log-driver",
        "none",
    ]
    for cap in _CAPS:
        argv += ["--cap-add", cap]
    if cpus:
        argv += ["--cpus", f"{cpus:g}"]
    if runtime:
        argv += ["--runtime", runtime]
    argv += [image, python, "-I", "-S", "-c", runner_source(), "--serve"]
    argv += ["--workdir", "/work", "--python", python, "--wipe", "/tmp:/dev/shm:/dev/mqueue"]
    argv += ["--own-ipc"]  # the container's IPC namespace: SysV objects removed after runs
    # RLIMIT_NPROC would count uid 65534 across every container on the host; the
    # container's pids limit is the process limit here.
    argv += ["--drop-uid", str(PROGRAM_UID), "--no-nproc"]
    return argv


class DockerSandbox(BoxSandbox):
    """Programs run in Docker containers (see the module docstring).

    Args:
        limits: default :class:`Limits` of each run. The container's memory and process
            caps come from these; a run's own ``limits`` tighten the in-container rlimits
            but cannot raise the container's caps.
        image: a local image with ``python3`` (build it with
            ``python -m agentgym.tools.sandbox.image build``).
        reuse: keep one container warm for all runs.
        cpus: ``--cpus`` of each container (``None`` = no cap).
        runtime: another OCI runtime, e.g. ``"runsc"`` (gVisor) where it is installed.
        python: the interpreter inside the image.
        check: check at construction that the engine answers and the image exists.
    """

    backend = "docker"

    def __init__(
        self,
        limits: Limits | None = None,
        image: str = DEFAULT_IMAGE,
        reuse: bool = True,
        cpus: float | None = 1.0,
        runtime: str | None = None,
        python: str = "/usr/bin/python3",
        check: bool = True,
    ) -> None:
        super().__init__(limits, reuse)
        self.image, self.cpus, self.runtime, self.python = image, cpus, runtime, python
        if check:
            check_ready(image)

    def describe(self) -> str:
        runtime = f", runtime={self.runtime}" if self.runtime else ""
        return (
            f"docker, image={self.image}{runtime} (no network, read-only root, tmpfs work "
            f"dir, memory/pids caps, program runs as uid {PROGRAM_UID})"
        )

    def _start_box(self) -> RunnerBox:
        name = f"agentgym-sandbox-{uuid.uuid4().hex[:12]}"
        argv = container_argv(name, self.image, self.limits, self.cpus, self.runtime, self.python)
        box = RunnerBox(
            argv,
            name=f"docker sandbox {name}",
            on_kill=functools.partial(docker, "rm", "-f", name, check=False, timeout=30),
        )
        try:
            box.request({"op": "ping"}, timeout=60)
        except BoxDied:
            box.kill()
            raise
        return box


def check_ready(image: str = DEFAULT_IMAGE) -> None:
    """Raise :class:`SandboxUnavailableError` (saying how to fix it) unless the Docker
    engine answers and ``image`` exists locally."""
    docker_cli()
    if not engine_running():
        raise SandboxUnavailableError(
            "no Docker engine answers; start one (as root: python -m "
            "agentgym.tools.sandbox.image setup) or use backend='local'"
        )
    if docker("image", "inspect", image, check=False).returncode != 0:
        raise SandboxUnavailableError(
            f"the Docker image {image!r} does not exist here; build it (offline, about a "
            f"minute) with: python -m agentgym.tools.sandbox.image build --name {image}"
        )
