"""Local sandbox: how much host memory one run can take, with and without the box total.

Runs, in the ``local`` backend (best isolation here) with ``memory_mb=512``:

* ``8 x 400 MB``: a program that forks 8 children which each fill 400 MB and sleep --
  every child stays under the per-process RLIMIT_AS, so only a limit on the box's total
  stops it;
* ``10 forks of 60 MB``: a parent fills 60 MB and forks 10 children that share those
  pages (copy-on-write) -- 660 MB by the sum of RSS, ~60 MB in truth; it must run.

each with ``total_memory=False`` (per-process limit only: the baseline) and ``True`` (the
runner holds the total to ``memory_mb``). While a run goes, this process samples the
proportional set size (PSS) of every process of the box from the host's ``/proc`` every
2 ms and reports the peak above the idle box. Usage: ``python benchmarks/sandbox_memory.py``
"""

from __future__ import annotations

import os
import threading
import time

from agentgym.tools.sandbox import LocalSandbox

CHILDREN = """\
import os, time
kids = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        block = bytearray(400 * 2**20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(3)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
"""

SHARED = """\
import os, time
block = bytearray(60 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
kids = []
for _ in range(10):
    pid = os.fork()
    if pid == 0:
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("done")
"""


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_memory_kb(root: int) -> int:
    """Proportional set size of ``root`` and all its descendants (host view), in kB:
    pages shared after a fork count once in all."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _pss_kb(pid)
        todo.extend(children.get(pid, []))
    return total


def measure(total_memory: bool, code: str) -> tuple[str, float, float]:
    with LocalSandbox(total_memory=total_memory) as sandbox:
        limits = sandbox.limits.replace(memory_mb=512, wall_time_s=20, cpu_time_s=20)
        sandbox.run("pass", limits=limits)  # start the warm box
        root = sandbox._box.proc.pid  # the box's host process: its tree is sampled
        base = tree_memory_kb(root)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_memory_kb(root) - base)
                time.sleep(0.002)  # plus the time a sample takes

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        result = sandbox.run(code, limits=limits)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return result.status, peak / 1024, seconds


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; memory_mb=512")
    with LocalSandbox() as sandbox:
        print(f"== {sandbox.describe()}")
    print(f"{'program':20s} {'box total':10s} {'status':13s} {'peak MB':>8s} {'seconds':>8s}")
    for name, code in (("8 x 400 MB", CHILDREN), ("10 forks of 60 MB", SHARED)):
        for total in (False, True):
            status, peak_mb, seconds = measure(total, code)
            label = "on" if total else "off"
            print(f"{name:20s} {label:10s} {status:13s} {peak_mb:8.0f} {seconds:8.2f}")


if __name__ == "__main__":
    main()
