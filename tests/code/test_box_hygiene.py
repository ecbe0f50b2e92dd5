"""What one run leaves cannot reach the next, and the runner never acts on the program's
links: permissions reset, iterative no-follow cleanup, collect/read/list without links,
SysV objects removed, a box replaced after a runner error, the local box's total memory
held, nested user namespaces refused. Both backends (see conftest.py)."""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from agentgym.tools.sandbox import LocalSandbox, Sandbox, make_sandbox
from agentgym.tools.sandbox import runner as runner_module
from agentgym.tools.sandbox.box import runner_source
from agentgym.tools.sandbox.seccomp import (
    CLONE_NEWUSER,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    filter_program,
)


def warm_box(sandbox: Sandbox) -> object:
    """The sandbox's warm box (to check it was reset, not replaced)."""
    return sandbox._box  # type: ignore[attr-defined]


def test_a_poisoned_work_dir_is_reset_in_the_same_box(sandbox: Sandbox) -> None:
    sandbox.run("pass")
    box = warm_box(sandbox)
    r = sandbox.run(
        "import os\n"
        "for _ in range(1500):\n"
        "    os.mkdir('d')\n"
        "    os.chdir('d')\n"
        "os.chdir('/work')\n"
        "for path in ('/work', '/tmp', '/dev/shm'):\n"
        "    try:\n"
        "        os.chmod(path, 0)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    assert r.ok, r
    after = sandbox.run(
        "import os, tempfile\n"
        "open('/tmp/t', 'w').write('x')\n"
        "open('/dev/shm/t', 'w').write('x')\n"
        "print(sorted(os.listdir('.')))\n"
    )
    assert after.ok and after.stdout == "['main.py']\n", after
    assert warm_box(sandbox) is box  # the runner reset it: no runner error, no new box


def test_the_cleanup_never_follows_the_programs_links(sandbox: Sandbox) -> None:
    modes = "import os\nprint([oct(os.stat(p).st_mode) for p in ('/tmp', '/dev/shm', '/dev')])"
    before = sandbox.run(modes).stdout
    r = sandbox.run(
        "import os\n"
        "for i, target in enumerate(['/tmp', '/dev', '/dev/shm', '/etc', '/']):\n"
        "    os.symlink(target, f'link{i}')\n"
        "os.mkdir('locked')\n"
        "os.symlink('/dev', 'locked/dev')\n"
        "os.chmod('locked', 0)\n"
    )
    assert r.ok, r
    assert sandbox.run(modes).stdout == before
    usable = sandbox.run(
        "open('/dev/null', 'w').write('x')\n"
        "open('/tmp/x', 'w').write('x')\n"
        "open('/dev/shm/x', 'w').write('x')\n"
        "print('ok')\n"
    )
    assert usable.stdout == "ok\n", usable


def test_collect_read_and_list_never_follow_links(sandbox: Sandbox) -> None:
    plant = (
        "import os\n"
        "os.symlink('/etc/shadow', 'shadow')\n"
        "os.symlink('/etc/passwd', 'passwd')\n"
        "os.symlink('/etc', 'etc')\n"
        "os.mkfifo('fifo')\n"
        "open('mine', 'w').write('mine')\n"
        "os.chmod('mine', 0o400)\n"
    )
    wanted = ["shadow", "passwd", "etc/shadow", "etc/passwd", "fifo", "mine"]
    r = sandbox.run(plant, collect=wanted)
    assert r.ok, r
    # Only the program's own file.
    assert r.files == {"mine": b"mine"}
    with sandbox.session() as session:
        assert session.run(plant).ok
        assert all(session.read_file(name) is None for name in wanted[:5])
        assert session.read_file("mine") == b"mine"
        assert set(session.list_files()) == {"main.py", "mine"}
        # A host write into the session never goes through the program's link.
        assert session.run("print(open('passwd').read())", files={"passwd": "mine too"}).ok
        assert session.run("import os\nprint(os.path.islink('passwd'))").stdout == "False\n"


def test_ipc_objects_do_not_survive_a_run(sandbox: Sandbox) -> None:
    make = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "rt = ctypes.CDLL('librt.so.1')\n"
        "print(libc.shmget(4242, 4096, 0o1666) >= 0, libc.msgget(4242, 0o1666) >= 0,\n"
        "      libc.semget(4242, 1, 0o1666) >= 0, rt.mq_open(b'/q4242', 0o102, 0o600, None) >= 0)\n"
    )
    assert sandbox.run(make).stdout == "True True True True\n"
    find = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "rt = ctypes.CDLL('librt.so.1')\n"
        "print(libc.shmget(4242, 0, 0), libc.msgget(4242, 0), libc.semget(4242, 0, 0),\n"
        "      rt.mq_open(b'/q4242', 0o2))\n"
    )
    assert sandbox.run(find).stdout == "-1 -1 -1 -1\n"
    for kind in ("shm", "msg", "sem"):
        r = sandbox.run(f"print(len(open('/proc/sysvipc/{kind}').read().splitlines()))")
        assert r.stdout == "1\n", (kind, r)  # the header only


def test_nested_user_namespaces_are_refused(sandbox: Sandbox) -> None:
    if isinstance(sandbox, LocalSandbox) and sandbox.isolation != "bwrap":
        pytest.skip("the seccomp filter comes with bubblewrap (docs/code_sandbox.md)")
    if isinstance(sandbox, LocalSandbox) and filter_program() is None:
        pytest.skip("no seccomp filter for this machine's architecture")
    r = sandbox.run(
        "import ctypes, os, threading\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.unshare(0x10000000), ctypes.get_errno())\n"
        "print(libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0), ctypes.get_errno())\n"
        "t = threading.Thread(target=print, args=('thread',))\n"
        "t.start()\n"
        "t.join()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(7)\n"
        "print(os.waitpid(pid, 0)[1] >> 8)\n"
    )
    assert r.ok, r
    lines = r.stdout.splitlines()
    assert lines[0] == "-1 1" and lines[1].startswith("-1 ")  # EPERM; clone: EPERM
    assert lines[2:] == ["thread", "7"]


def test_a_runner_error_replaces_the_box(sandbox: Sandbox) -> None:
    sandbox.run("pass")
    box = warm_box(sandbox)
    # "a" is a file, so "a/b" cannot be written: the runner fails, in a fresh box too.
    r = sandbox.run("pass", files={"a": "x", "a/b": "y"})
    assert r.status == "sandbox_error" and "a" in (r.error or "")
    assert warm_box(sandbox) is not box
    assert sandbox.run("print('fresh')").stdout == "fresh\n"


def test_a_program_that_cannot_start_is_the_runners_failure(tmp_path: Path) -> None:
    """Not the program's exit code 127: an error answer, which makes the host replace
    the box (the runner runs alone here, as the boxes start it)."""
    options = ["--serve", "--workdir", str(tmp_path), "--python", "/no/such/python"]
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", runner_source(), *options],
        input=json.dumps({"op": "run", "code": "print(1)"}) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    answer = json.loads(done.stdout)
    assert not answer["ok"] and "could not start the program" in answer["error"], answer
    assert "FileNotFoundError" in answer["error"]


def test_without_its_own_ipc_namespace_the_runner_removes_nothing(tmp_path: Path) -> None:
    """Isolation ``none`` shares the host's IPC namespace: the objects there are not the
    program's to lose."""
    libc = ctypes.CDLL(None)
    key = 0x5A000000 + os.getpid() % 0xFFFF
    shmid = libc.shmget(key, 4096, 0o1600)
    assert shmid >= 0
    try:
        options = ["--serve", "--workdir", str(tmp_path), "--python", sys.executable]
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", runner_source(), *options],
            input=json.dumps({"op": "run", "code": "pass"}) + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert json.loads(done.stdout)["status"] == "ok"
        assert libc.shmget(key, 0, 0) == shmid  # still there
    finally:
        libc.shmctl(shmid, 0, None)


def test_the_local_box_total_memory_is_held() -> None:
    limits = {"memory_mb": 256, "wall_time_s": 10.0, "cpu_time_s": 10.0}
    children = (
        "import os, time\n"
        "for _ in range(6):\n"
        "    if os.fork() == 0:\n"
        "        block = bytearray(100 * 2**20)\n"
        "        for i in range(0, len(block), 4096):\n"
        "            block[i] = 1\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "for _ in range(6):\n"
        "    os.wait()\n"
    )
    shared = (  # 60 MB shared by 8 forks: 540 MB by the sum of RSS, ~60 MB in truth
        "import os, time\n"
        "block = bytearray(60 * 2**20)\n"
        "for i in range(0, len(block), 4096):\n"
        "    block[i] = 1\n"
        "for _ in range(8):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.5)\n"
        "        os._exit(0)\n"
        "for _ in range(8):\n"
        "    os.wait()\n"
        "print('done')\n"
    )
    with make_sandbox("local", **limits) as box:
        r = box.run(children)
        assert r.status == "memory_limit" and r.wall_time_s < 5, r
        assert box.run(shared).stdout == "done\n"
        assert box.run("print(1)").stdout == "1\n"
    with make_sandbox("local", total_memory=False, **limits) as box:
        r = box.run(children.replace("time.sleep(5)", "time.sleep(0.2)"))
        assert r.ok, r  # each child under RLIMIT_AS: only the total limit stops it


# ---------------------------------------------------------------- the seccomp filter


def run_filter(program: bytes, nr: int, arch: int, arg0: int = 0) -> int:
    """Run a classic BPF seccomp filter on one system call (the few opcodes it uses)."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    code = [struct.unpack("<HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    acc, pc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == 0x06:  # ret k
            return k
        else:
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
            pc += jt if taken else jf
        pc += 1


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_seccomp_filter_denies_exactly_nested_user_namespaces(machine: str) -> None:
    program = filter_program(machine)
    assert program is not None and len(program) % 8 == 0
    arch = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}[machine]
    unshare, clone = {"x86_64": (272, 56), "aarch64": (97, 220)}[machine]
    eperm, enosys = SECCOMP_RET_ERRNO | 1, SECCOMP_RET_ERRNO | 38
    assert run_filter(program, unshare, arch, CLONE_NEWUSER) == eperm
    assert run_filter(program, clone, arch, CLONE_NEWUSER | 17) == eperm
    assert run_filter(program, 435, arch) == enosys  # clone3: glibc falls back to clone
    assert run_filter(program, unshare, arch, 0x20000) == SECCOMP_RET_ALLOW  # CLONE_NEWNS
    assert run_filter(program, clone, arch, 0x3D0F00) == SECCOMP_RET_ALLOW  # a thread
    assert run_filter(program, 0, arch) == SECCOMP_RET_ALLOW
    assert run_filter(program, unshare, 0x40000003, CLONE_NEWUSER) == enosys  # i386 ABI
    if machine == "x86_64":
        assert run_filter(program, 0x40000000 | unshare, arch, CLONE_NEWUSER) == enosys  # x32
    assert filter_program("mips") is None


def test_wipe_dir_empties_a_deep_tree_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    top = tmp_path / "box"
    os.makedirs(top)
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(1200):  # deeper than the recursion limit, longer than PATH_MAX
            os.mkdir("n" * 100, dir_fd=fd)
            nxt = os.open("n" * 100, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.symlink(str(outside), "link", dir_fd=fd)
    finally:
        os.close(fd)
    (top / "link").symlink_to(outside)
    os.chmod(top / ("n" * 100), 0)
    runner_module.wipe_dir(str(top))
    assert os.listdir(top) == [] and (outside / "keep").read_text() == "keep"
