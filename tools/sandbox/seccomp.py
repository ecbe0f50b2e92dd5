"""The seccomp filter of the local backend's bubblewrap box: no nested user namespaces.

Inside bubblewrap's user namespace a program has no capabilities, but it could create a
user namespace of its own and get every capability there -- mount file systems, make
network namespaces, reach kernel code an unprivileged process never reaches. Docker's
default seccomp profile refuses that; this filter does the same for the ``bwrap`` box:

* ``unshare`` and ``clone`` with ``CLONE_NEWUSER`` fail with ``EPERM``;
* ``clone3`` fails with ``ENOSYS`` (its flags sit behind a pointer a filter cannot read;
  glibc then falls back to ``clone``, so threads and ``fork`` work as before);
* system calls of another ABI (32-bit ``int 0x80`` and x32 on x86-64) fail with
  ``ENOSYS``, so the numbers above cannot be dodged through them.

Everything else is allowed: the filter is a narrow deny list, not a sandbox of its own.
It is a classic BPF program (``struct sock_filter`` array) that bubblewrap loads from a
file descriptor (``bwrap --seccomp FD``) just before it starts the runner, so the runner
and every program it starts live under it. Hosts other than x86-64 and AArch64 get no
filter (:func:`filter_program` returns ``None``; the sandbox's ``describe`` says so).
"""

from __future__ import annotations

import contextlib
import os
import platform
import struct
from collections.abc import Iterator

# Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x05 | 0x30 | 0x00  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x05 | 0x40 | 0x00  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM, ENOSYS = 1, 38
CLONE_NEWUSER = 0x10000000
X32_SYSCALL_BIT = 0x40000000

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
_NR, _ARCH, _ARG0_LOW = 0, 4, 16  # args[0]'s low word on a little-endian machine

#: ``platform.machine()`` -> (AUDIT_ARCH_*, syscall numbers, has x32).
ARCHES: dict[str, tuple[int, dict[str, int], bool]] = {
    "x86_64": (0xC000003E, {"unshare": 272, "clone": 56, "clone3": 435}, True),
    "aarch64": (0xC00000B7, {"unshare": 97, "clone": 220, "clone3": 435}, False),
}
ARCHES["amd64"] = ARCHES["x86_64"]
ARCHES["arm64"] = ARCHES["aarch64"]


def _ins(code: int, k: int, jt: int | str = 0, jf: int | str = 0) -> tuple:
    return (code, jt, jf, k)


def _assemble(program: list[tuple | str]) -> bytes:
    """Instructions with jump targets given as label names -> ``struct sock_filter[]``."""
    labels: dict[str, int] = {}
    code: list[tuple] = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(code)
        else:
            code.append(item)
    out = bytearray()
    for pc, (op, jt, jf, k) in enumerate(code):
        jumps = [labels[j] - pc - 1 if isinstance(j, str) else j for j in (jt, jf)]
        if not all(0 <= j <= 255 for j in jumps):
            raise ValueError(f"jump out of range at instruction {pc}")
        out += struct.pack("<HBBI", op, jumps[0], jumps[1], k)
    return bytes(out)


def filter_program(machine: str | None = None) -> bytes | None:
    """The filter for ``machine`` (default: this host) as bytes, or ``None`` where no
    filter is known for it."""
    arch = ARCHES.get((machine or platform.machine()).lower())
    if arch is None or struct.pack("=I", 1) != struct.pack("<I", 1):
        return None
    audit_arch, nr, has_x32 = arch
    program: list[tuple | str] = [
        _ins(_LD_W_ABS, _ARCH),
        _ins(_JEQ_K, audit_arch, 0, "enosys"),
        _ins(_LD_W_ABS, _NR),
    ]
    if has_x32:
        program.append(_ins(_JGE_K, X32_SYSCALL_BIT, "enosys", 0))
    program += [
        _ins(_JEQ_K, nr["clone3"], "enosys", 0),
        _ins(_JEQ_K, nr["unshare"], "flags", 0),
        _ins(_JEQ_K, nr["clone"], "flags", "allow"),
        "flags",
        _ins(_LD_W_ABS, _ARG0_LOW),
        _ins(_JSET_K, CLONE_NEWUSER, "eperm", "allow"),
        "allow",
        _ins(_RET_K, SECCOMP_RET_ALLOW),
        "eperm",
        _ins(_RET_K, SECCOMP_RET_ERRNO | EPERM),
        "enosys",
        _ins(_RET_K, SECCOMP_RET_ERRNO | ENOSYS),
    ]
    return _assemble(program)


@contextlib.contextmanager
def filter_fd(program: bytes | None = None) -> Iterator[int | None]:
    """A readable file descriptor holding the filter (for ``bwrap --seccomp FD`` and
    ``Popen(pass_fds=...)``), closed afterwards; ``None`` where there is no filter."""
    data = filter_program() if program is None else program
    if data is None:
        yield None
        return
    read, write = os.pipe()
    try:
        os.write(write, data)  # a few hundred bytes: fits the pipe's buffer
    finally:
        os.close(write)
    try:
        yield read
    finally:
        os.close(read)
