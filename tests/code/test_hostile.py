"""One hostile episode never breaks the next: hostile programs run through
``CodeSandbox-v0``'s ``run`` tool on both backends, and after each one the expert still
scores 1.0 on a fresh episode of the *same* environment instance (the same warm box).

The programs: what poisoned a warm box before (``chmod('/work', 0)``, a folder 1,500
levels deep, links planted for the root runner to follow, SysV objects left behind), and
the isolation attacks that already held (loops, fork bombs, memory hogs, output floods,
daemons, a full disk, files planted where the harness looks).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agentgym.envs.code import CodeSandboxEnv
from tests.code.conftest import BACKENDS, backend_fixture

LIMITS = {"wall_time_s": 2.0, "cpu_time_s": 2.0, "memory_mb": 256}

HOSTILE = {
    "chmod /work 0": "import os\nos.chmod('/work', 0)\n",
    "chmod the wiped folders 0": (
        "import os\n"
        "for path in ('/tmp', '/dev/shm', '/work'):\n"
        "    try:\n"
        "        os.chmod(path, 0)\n"
        "    except OSError:\n"
        "        pass\n"
    ),
    "a folder 1,500 levels deep": (
        "import os\nfor _ in range(1500):\n    os.mkdir('d')\n    os.chdir('d')\nos.chmod('.', 0)\n"
    ),
    "long names 1,500 levels deep (past PATH_MAX)": (
        "import os\nfor _ in range(1500):\n    os.mkdir('n' * 200)\n    os.chdir('n' * 200)\n"
    ),
    "links to /tmp, /dev, /dev/shm, /etc for the cleanup to follow": (
        "import os\n"
        "for i, target in enumerate(['/tmp', '/dev', '/dev/shm', '/etc', '/', '/proc/1']):\n"
        "    os.symlink(target, f'link{i}')\n"
        "os.mkdir('locked')\n"
        "os.symlink('/dev', 'locked/dev')\n"
        "os.chmod('locked', 0)\n"
        "os.symlink('/etc/shadow', 'results.jsonl.tmp')\n"
        "os.symlink('/dev/shm', '/tmp/shm')\n"
    ),
    "unreadable files and folders": (
        "import os\n"
        "os.makedirs('a/b/c')\n"
        "open('a/b/c/f', 'w').write('x')\n"
        "for path in ('a/b/c/f', 'a/b/c', 'a/b', 'a'):\n"
        "    os.chmod(path, 0)\n"
    ),
    "a fifo and files planted where the harness and Python look": (
        "import os\n"
        "os.mkfifo('/tmp/fifo')\n"
        "for name in ('json.py', 'solution.py.bak', 'harness.py', '/tmp/json.py', '/dev/shm/x'):\n"
        "    open(name, 'w').write('raise SystemExit(3)\\n')\n"
    ),
    "SysV shared memory, queues, semaphores and POSIX queues left behind": (
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "rt = ctypes.CDLL('librt.so.1')\n"
        "for key in range(1, 20):\n"
        "    libc.shmget(key, 1 << 20, 0o1666)\n"
        "    libc.msgget(key, 0o1666)\n"
        "    libc.semget(key, 1, 0o1666)\n"
        "    rt.mq_open(b'/q%d' % key, 0o102, 0o600, None)\n"
    ),
    "a full disk": (
        "block = b'x' * (1 << 20)\n"
        "for path in ('/work/fill', '/tmp/fill', '/dev/shm/fill'):\n"
        "    try:\n"
        "        with open(path, 'wb') as fh:\n"
        "            while True:\n"
        "                fh.write(block)\n"
        "    except OSError:\n"
        "        pass\n"
    ),
    "a daemon that outlives the program": (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        "            open('/work/solution.py', 'w').write('raise SystemExit(4)')\n"
        "            time.sleep(0.01)\n"
        "    os._exit(0)\n"
    ),
    "a fork bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    ),
    "an infinite loop": "while True:\n    pass\n",
    "a memory hog": "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 24))\n",
    "an output flood": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
    "signals to every process": (
        "import os, signal\n"
        "for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGKILL):\n"
        "    try:\n"
        "        os.kill(-1, sig)\n"
        "    except OSError:\n"
        "        pass\n"
    ),
    "a nested user namespace": (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.unshare(0x10000000), ctypes.get_errno())\n"
    ),
}


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[CodeSandboxEnv]:
    """One environment instance per backend, shared by every program (one warm box)."""
    e = CodeSandboxEnv(backend=backend_fixture(request), limits=LIMITS, cache_size=0)
    yield e
    e.close()


def expert_score(env: CodeSandboxEnv, task_id: str) -> float:
    env.reset(seed=0, options={"task_id": task_id})
    for _ in range(4):
        _, _, terminated, _, info = env.step(env.expert_action())
        if terminated:
            return float(info["score"])
    raise AssertionError(f"the expert did not finish {task_id}: {info}")


@pytest.mark.parametrize("name", list(HOSTILE))
def test_after_a_hostile_program_the_expert_still_scores_1(env: CodeSandboxEnv, name: str) -> None:
    tasks = list(env.task_ids("test"))
    env.reset(seed=0, options={"task_id": tasks[0]})
    action = json.dumps({"name": "run", "arguments": {"code": HOSTILE[name]}})
    observation, _, terminated, _, info = env.step(action)
    assert info["action_valid"] and not terminated
    assert "sandbox_error" not in info, observation  # the program's doing, not the box's
    for task_id in tasks[1:3]:
        assert expert_score(env, task_id) == 1.0, (name, task_id)
