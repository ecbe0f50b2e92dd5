"""The supervisor that runs *inside* every sandbox box (a bubblewrap/unshare process tree on
the host, or a Docker container), whatever the backend.

The host starts it as ``python3 -I -S -c <this file's source> --serve --workdir DIR ...``
and talks to it over its stdin/stdout, one JSON object per line. For each ``run`` request
it writes the program and its files into the working directory, forks the program as a
fresh Python interpreter with resource limits, feeds it stdin, collects its output up to a
cap, enforces the wall-clock limit, and answers with the outcome. Because both backends run
this same file, the same program gives the same result on both.

It must stay standard-library only and run on any Python >= 3.8 (the image's Python is the
distribution's, not agentgym's); it is also importable, for tests.

Requests (``op``):

``run``    ``code`` (the program, written to ``main``), ``stdin``, ``files`` (relative path
           -> base64), ``argv``, ``limits`` (see :data:`DEFAULT_LIMITS`), ``collect``
           (relative paths to send back, base64), ``keep`` (keep the working directory's
           earlier contents: a session).
``read``   ``path``: one file of the working directory (base64).
``list``   every file of the working directory with its size.
``wipe``   empty the working directory (and the private ``--wipe`` folders).
``ping``   liveness check.

Clean-up after every run: the runner is PID 1 of its own PID namespace in the
bubblewrap, unshare and Docker boxes, and then ``kill(-1, SIGKILL)`` ends every process the
program left behind (daemons, fork bombs). Without a PID namespace it kills the program's
process group and then every descendant it can find (it is a child subreaper). Then it
removes the SysV shared memory, message queues and semaphores the program left.

Before every run the working directory and the wiped folders get back the mode and owner
they had when the box started (a program may ``chmod('/work', 0)``), and are emptied
iteratively (a tree 1,500 levels deep is no problem). No path is ever followed through a
link: in Docker the runner is root and the program is not, so every file the runner opens,
writes, lists, collects or changes is reached component by component with ``O_NOFOLLOW``.
A program that cannot be started (``chdir``, ``execve`` failed) is the *box's* failure:
the answer is an error, and the host replaces the box.

With ``--box-memory`` (the local backend) the resident memory of all the program's
processes together is held to ``memory_mb`` as well (:class:`MemoryWatch`).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import resource
import select
import signal
import stat
import sys
import time
import traceback

PROTOCOL_VERSION = 1

DEFAULT_LIMITS = {
    "wall_time_s": 10.0,
    "cpu_time_s": 10.0,
    "memory_mb": 512,
    "max_output_bytes": 256 * 1024,
    "max_file_mb": 16,
    "max_processes": 16,
    "max_open_files": 256,
}

#: The program's environment: nothing from the host, a fixed hash seed (the same program
#: prints the same set order on every run and backend), unbuffered output (prints made
#: before a timeout still arrive), UTF-8 everywhere, UTC.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "utf-8",
}

MAX_COLLECT_BYTES = 4 * 1024 * 1024
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


class Options:
    def __init__(self, argv):
        self.serve = "--serve" in argv
        self.workdir = _flag(argv, "--workdir", os.getcwd())
        self.python = _flag(argv, "--python", sys.executable)
        drop = _flag(argv, "--drop-uid", "")
        self.drop_uid = int(drop) if drop else None
        self.wipe = [p for p in _flag(argv, "--wipe", "").split(":") if p]
        self.set_nproc = "--no-nproc" not in argv
        # The resident memory of all the program's processes together is held to
        # ``memory_mb`` (the local backend; a container has its memory cgroup instead).
        self.box_memory = "--box-memory" in argv
        # The box has its own IPC namespace (bubblewrap, unshare, Docker): every SysV
        # object in it is the programs', and is removed after each run.
        self.own_ipc = "--own-ipc" in argv
        self.pid1 = os.getpid() == 1
        self.dir_state = {}


def _flag(argv, name, default):
    if name in argv:
        i = argv.index(name)
        if i + 1 < len(argv):
            return argv[i + 1]
    return default


def _prctl(option, value):
    """Best effort: ``ctypes`` may be missing from a minimal Python."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, value, 0, 0, 0)
    except Exception:
        pass


# ------------------------------------------------------------------ working directory
#
# In the Docker box the runner is root and the program is not: every path the runner
# touches is reached one component at a time with O_NOFOLLOW, so a link the program
# planted never takes the runner (or its chmod/chown/open) outside the box's folders.

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC


def _parts(rel):
    """The components of a relative path that stays inside the working directory."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        raise ValueError("file names must be non-empty strings")
    norm = os.path.normpath(rel)
    if os.path.isabs(rel) or norm == ".." or norm.startswith("../") or norm == ".":
        raise ValueError(f"file name {rel!r} is not a relative path inside the working directory")
    return norm.split("/")


def safe_path(workdir, rel):
    """``workdir/rel`` for a relative path that stays inside ``workdir``; else ValueError."""
    return os.path.join(workdir, *_parts(rel))


def _open_parent(workdir, parts, create, opts=None):
    """A descriptor of the folder holding ``parts[-1]``, reached without following links.

    With ``create``, missing folders are made (owned by the program), and a link where a
    folder should be is replaced by the folder.
    """
    fd = os.open(workdir, _DIR_FLAGS)
    try:
        for name in parts[:-1]:
            try:
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if not create or exc.errno not in (errno.ENOENT, errno.ELOOP):
                    raise
                if exc.errno == errno.ELOOP:
                    os.unlink(name, dir_fd=fd)
                os.mkdir(name, 0o755, dir_fd=fd)
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                _own_fd(nxt, opts)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_file(workdir, rel, data, opts):
    """Write ``data`` to ``workdir/rel`` (never through a link), owned by the program."""
    parts = _parts(rel)
    parent = _open_parent(workdir, parts, True, opts)
    try:
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            os.unlink(name, dir_fd=parent)  # a link, a fifo, ...: replaced, never followed
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | _CLOEXEC
        fd = os.open(name, flags, 0o644, dir_fd=parent)
    finally:
        os.close(parent)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        _own_fd(fd, opts)
    finally:
        os.close(fd)


def write_files(workdir, files, opts):
    for rel, b64 in files.items():
        write_file(workdir, rel, base64.b64decode(b64), opts)


def read_file(workdir, rel, limit=MAX_COLLECT_BYTES, opts=None):
    """The first ``limit`` bytes of the regular file ``workdir/rel``, or ``None``.

    Never through a link, never a fifo or device, and (Docker, where the runner is root)
    only a file the program owns: what the program could not read is not returned.
    """
    parts = _parts(rel)
    try:
        parent = _open_parent(workdir, parts, False)
    except OSError:
        return None
    try:
        flags = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK
        fd = os.open(parts[-1], flags, dir_fd=parent)
    except OSError:
        return None
    finally:
        os.close(parent)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if opts is not None and opts.drop_uid is not None and st.st_uid != opts.drop_uid:
            return None
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def list_files(workdir):
    """Every regular file under ``workdir`` with its size (links are not followed)."""
    out = {}
    todo = [""]
    while todo:  # iterative: a tree thousands of levels deep is fine
        rel = todo.pop()
        try:
            with os.scandir(os.path.join(workdir, rel) if rel else workdir) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            name = os.path.join(rel, entry.name) if rel else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    todo.append(name)
                elif entry.is_file(follow_symlinks=False):
                    out[name] = entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return out


def wipe_dir(path):
    """Remove everything inside ``path`` (not ``path`` itself).

    Iterative and by descriptor: a folder nested thousands of levels deep (or with a
    path longer than PATH_MAX) goes like any other -- each sub-folder is moved up to
    ``path`` and emptied there -- and links are removed, never followed. Read-only
    folders are made writable first (a runner without CAP_DAC_OVERRIDE needs that).
    """
    try:
        top = os.open(path, _DIR_FLAGS)
    except OSError:
        return
    try:
        todo = [None]  # None: ``path`` itself; else a folder directly inside it
        moved = 0
        while todo:
            name = todo.pop()
            try:
                fd = os.dup(top) if name is None else os.open(name, _DIR_FLAGS, dir_fd=top)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=top)  # not a folder after all
                continue
            try:
                try:
                    with os.scandir(fd) as it:
                        entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
                except OSError:
                    entries = []
                for entry, is_dir in entries:
                    try:
                        if not is_dir:
                            os.unlink(entry, dir_fd=fd)
                            continue
                        # A real folder (checked without following links, and no program
                        # runs during a wipe): chmod by name is safe.
                        os.chmod(entry, 0o700, dir_fd=fd)
                        if name is None:
                            todo.append(entry)
                            continue
                        while True:
                            moved += 1
                            up = f".wipe-{moved}"
                            try:
                                os.stat(up, dir_fd=top, follow_symlinks=False)
                            except FileNotFoundError:
                                break
                        os.rename(entry, up, src_dir_fd=fd, dst_dir_fd=top)
                        todo.append(up)
                    except OSError:
                        continue
            finally:
                os.close(fd)
            if name is not None:
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)


def _own_fd(fd, opts):
    if opts is not None and opts.drop_uid is not None:
        with contextlib.suppress(OSError):
            os.fchown(fd, opts.drop_uid, opts.drop_uid)


def _own(path, opts):
    if opts.drop_uid is not None:
        with contextlib.suppress(OSError):
            os.chown(path, opts.drop_uid, opts.drop_uid, follow_symlinks=False)


def record_dirs(opts):
    """Remember the mode and owner of the working directory and the wiped folders."""
    opts.dir_state = {}
    for path in [opts.workdir, *opts.wipe]:
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                opts.dir_state[path] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def reset_dirs(opts):
    """Give the working directory and the wiped folders back their mode and owner (a
    program may have made ``/work`` unreadable); recreate the working directory if the
    program removed it (or replaced it by a link, where it is not a mount point)."""
    for path, (mode, uid, gid) in opts.dir_state.items():
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is None or not stat.S_ISDIR(st.st_mode):
            if path != opts.workdir:
                continue
            if st is not None:
                os.unlink(path)
            os.mkdir(path, 0o700)
            st = os.lstat(path)
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)  # lstat said: a folder, not a link
        if (st.st_uid, st.st_gid) != (uid, gid):
            with contextlib.suppress(OSError):
                os.chown(path, uid, gid, follow_symlinks=False)


# ------------------------------------------------------------------ processes


def kill_leftovers(opts, main_pid=None):
    """SIGKILL every process the program left (never the runner) and reap the dead.

    ``main_pid``, the program itself, is killed too but not reaped: its exit status is the
    caller's to collect with ``wait4``.
    """
    if main_pid is not None:
        _kill_main(main_pid)
    if opts.pid1:
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
    for _ in range(100):
        table = _process_table()
        alive = [p for p in _descendants(table, os.getpid()) if table[p][1] != "Z"]
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _reap(table, exclude=main_pid)
        if not alive:
            return
        time.sleep(0.001)


def _process_table():
    """``{pid: (ppid, state)}`` from ``/proc`` (the box's own in a PID namespace)."""
    table = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return table
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().decode("ascii", "replace").rsplit(")", 1)[1].split()
            table[pid] = (int(fields[1]), fields[0])
        except (OSError, ValueError, IndexError):
            continue
    return table


def _descendants(table, root):
    children = {}
    for pid, (ppid, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for kid in children.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def _reap(table, exclude=None):
    me = os.getpid()
    for pid, (ppid, state) in table.items():
        if ppid == me and state == "Z" and pid != exclude:
            with contextlib.suppress(OSError):
                os.waitpid(pid, os.WNOHANG)


def _child(opts, limits, argv, env, fds):
    """In the forked child: become the sandboxed program (never returns).

    Why it could not become the program goes to the runner through ``status_w``, a pipe
    that ``execve`` closes: that is the sandbox's failure, not the program's.
    """
    stdin_r, stdout_w, stderr_w, status_w = fds
    report = status_w
    try:
        os.setsid()
        os.dup2(stdin_r, 0)
        os.dup2(stdout_w, 1)
        os.dup2(stderr_w, 2)
        os.dup2(status_w, 3, inheritable=False)
        report = 3
        os.closerange(4, 65536)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        mem = int(limits["memory_mb"]) * 1024 * 1024
        cpu = max(1, int(-(-float(limits["cpu_time_s"]) // 1)))
        fsize = int(limits["max_file_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        nofile = int(limits["max_open_files"])
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        if opts.drop_uid is not None:
            os.setgroups([])
            os.setgid(opts.drop_uid)
            os.setuid(opts.drop_uid)
        if opts.set_nproc:
            nproc = int(limits["max_processes"])
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        os.chdir(opts.workdir)
        os.execve(argv[0], argv, env)
    except BaseException as exc:
        try:
            os.write(report, repr(exc).encode("utf-8", "replace")[:2000])
        finally:
            os._exit(127)


def _exec_failure(status_r):
    """What the child wrote before ``execve`` closed the pipe (``b""``: it started)."""
    chunks = []
    while True:
        try:
            chunk = os.read(status_r, 4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    os.close(status_r)
    return b"".join(chunks)


# ------------------------------------------------------------------ the box's memory


def _rss_pages(pid):
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return int(fh.read().rsplit(b")", 1)[1].split()[21])


def _pss_kb(pid):
    """Proportional set size: shared pages (fork's copy-on-write) split between sharers."""
    with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
        for line in fh:
            if line.startswith(b"Pss:"):
                return int(line.split()[1])
    raise OSError("no Pss line")


def _detached_shm_kb():
    """Resident SysV shared memory no process has attached (attached segments count in
    their processes' RSS)."""
    total = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/sysvipc/shm", "rb") as fh:
            lines = fh.read().splitlines()[1:]
        for line in lines:
            fields = line.split()
            if int(fields[6]) == 0:  # nattch
                total += int(fields[14]) // 1024  # rss, bytes
    return total


def box_memory_kb(page_kb, precise=False, own_ipc=False):
    """Memory the program's processes hold together, in kB: the sum of their RSS, or with
    ``precise`` their proportional set sizes (RSS counts pages shared after a fork once
    per process), plus (``own_ipc``: the box's own IPC namespace) detached SysV shared
    memory."""
    pids = _descendants(_process_table(), os.getpid())
    total = _detached_shm_kb() if own_ipc else 0
    for pid in pids:
        try:
            total += _pss_kb(pid) if precise else _rss_pages(pid) * page_kb
        except (OSError, ValueError, IndexError):
            if precise:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    total += _rss_pages(pid) * page_kb
    return total


class MemoryWatch:
    """Polls the box's memory and says when it passes the limit.

    The cheap RSS sum is read every ``interval`` seconds (stretched to 20x what a read
    costs, for hosts where ``/proc`` lists every process); only when it passes the limit
    are the proportional set sizes read, so a program that forks copies of itself is not
    charged once per copy. A program can overshoot by what it allocates in one interval.
    """

    def __init__(self, limit_mb, interval=0.02, own_ipc=False):
        self.limit_kb = int(limit_mb) * 1024
        self.own_ipc = own_ipc
        self.interval = interval
        self.page_kb = max(1, os.sysconf("SC_PAGE_SIZE") // 1024)
        self.next = 0.0
        self.peak_kb = 0

    def over(self, now):
        if now < self.next:
            return False
        used = box_memory_kb(self.page_kb, own_ipc=self.own_ipc)
        cost = time.monotonic() - now
        if used > self.limit_kb:
            used = box_memory_kb(self.page_kb, precise=True, own_ipc=self.own_ipc)
        self.peak_kb = max(self.peak_kb, used)
        self.next = time.monotonic() + max(self.interval, 20 * cost)
        return used > self.limit_kb


# ------------------------------------------------------------------ SysV IPC


_IPC_RMID = 0


def _ipc_ids():
    """``(kind, id)`` of every SysV object of the box's IPC namespace."""
    out = []
    for kind in ("shm", "msg", "sem"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/sysvipc/{kind}", "rb") as fh:
                lines = fh.read().splitlines()[1:]
            out.extend((kind, int(line.split()[1])) for line in lines if line.strip())
    return out


def _ipc_remove(ids):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for kind, ident in ids:
        if kind == "shm":
            libc.shmctl(ident, _IPC_RMID, None)
        elif kind == "msg":
            libc.msgctl(ident, _IPC_RMID, None)
        else:
            libc.semctl(ident, 0, _IPC_RMID)


def remove_ipc(opts):
    """Remove the SysV shared memory, message queues and semaphores a program left: they
    outlive processes, and the next run shares the box's IPC namespace.

    Where the runner is root without the system-admin capability (Docker) only their creator may
    remove them, so a child that becomes the program's user does it.
    """
    if not opts.own_ipc:
        return  # the host's namespace: other people's objects are there too
    ids = _ipc_ids()
    if not ids:
        return
    if opts.drop_uid is None:
        with contextlib.suppress(Exception):
            _ipc_remove(ids)
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(opts.drop_uid)
            os.setuid(opts.drop_uid)
            _ipc_remove(ids)
        finally:
            os._exit(0)
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)


def execute(opts, req):
    """Run one program; return the result dict."""
    limits = dict(DEFAULT_LIMITS)
    limits.update(req.get("limits") or {})
    workdir = opts.workdir
    reset_dirs(opts)
    if not req.get("keep"):
        wipe_dir(workdir)
        for folder in opts.wipe:
            wipe_dir(folder)
    write_files(workdir, req.get("files") or {}, opts)
    main = req.get("main") or "main.py"
    write_file(workdir, main, req.get("code", "").encode("utf-8", "surrogatepass"), opts)

    env = dict(BASE_ENV)
    env["HOME"] = workdir
    env["TMPDIR"] = workdir
    argv = [opts.python, "-s", main] + [str(a) for a in req.get("argv") or []]
    stdin_data = req.get("stdin", "").encode("utf-8", "surrogatepass")

    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(opts, limits, argv, env, (in_r, out_w, err_w, status_w))
    for fd in (in_r, out_w, err_w, status_w):
        os.close(fd)
    failure = _exec_failure(status_r)
    if failure:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)
        kill_leftovers(opts)
        raise RuntimeError("could not start the program: " + failure.decode("utf-8", "replace"))
    for fd in (in_w, out_r, err_r):
        os.set_blocking(fd, False)
    watch = MemoryWatch(limits["memory_mb"], own_ipc=opts.own_ipc) if opts.box_memory else None

    cap = int(limits["max_output_bytes"])
    bufs = {out_r: bytearray(), err_r: bytearray()}
    seen = {out_r: 0, err_r: 0}
    reading = {out_r, err_r}
    pending = memoryview(stdin_data)
    writing = in_w
    if not pending:
        os.close(in_w)
        writing = None
    deadline = start + float(limits["wall_time_s"])
    status = None
    waited = None
    drain_until = None
    while True:
        now = time.monotonic()
        if waited is None:
            done, wstatus, rusage = os.wait4(pid, os.WNOHANG)
            if done:
                waited = (wstatus, rusage, now)
                kill_leftovers(opts)  # the main pid is reaped: never signal it again
                drain_until = time.monotonic() + 0.5
        if waited is not None and (not reading or time.monotonic() > drain_until):
            break
        if waited is None and status is None and now >= deadline:
            status = "timeout"
            kill_leftovers(opts, main_pid=pid)
        if waited is None and status is None and watch is not None and watch.over(now):
            status = "memory_limit"
            kill_leftovers(opts, main_pid=pid)
        if not reading and writing is None:
            time.sleep(0.0005)  # output closed; the exit status follows within moments
            continue
        wait = 0.05 if waited is None else max(0.0, drain_until - now)
        if waited is None and status is None:
            wait = min(wait, max(0.0, deadline - now))
            if watch is not None:
                wait = min(wait, max(0.0, watch.next - now))
        try:
            readable, writable, _ = select.select(
                list(reading), [writing] if writing is not None else [], [], wait
            )
        except InterruptedError:
            continue
        for fd in readable:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                reading.discard(fd)
                os.close(fd)
                continue
            seen[fd] += len(chunk)
            room = cap - len(bufs[fd])
            if room > 0:
                bufs[fd] += chunk[:room]
            if seen[fd] > cap and status is None and waited is None:
                status = "output_limit"
                kill_leftovers(opts, main_pid=pid)
        if writable:
            try:
                n = os.write(writing, pending[:65536])
                pending = pending[n:]
            except BlockingIOError:
                pass
            except OSError:  # the program closed its stdin (or exited)
                pending = pending[:0]
            if not pending:
                os.close(writing)
                writing = None
    if writing is not None:
        os.close(writing)
    for fd in reading:
        os.close(fd)
    wstatus, rusage, ended = waited
    kill_leftovers(opts)
    remove_ipc(opts)
    return _outcome(req, limits, status, wstatus, rusage, ended - start, bufs, seen, out_r, err_r)


def _kill_main(pid):
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _outcome(req, limits, status, wstatus, rusage, wall, bufs, seen, out_r, err_r):
    exit_code = (
        os.waitstatus_to_exitcode(wstatus)
        if hasattr(os, "waitstatus_to_exitcode")
        else (-os.WTERMSIG(wstatus) if os.WIFSIGNALED(wstatus) else os.WEXITSTATUS(wstatus))
    )
    cpu = rusage.ru_utime + rusage.ru_stime
    if status is None:
        # SIGXCPU comes from the soft RLIMIT_CPU, SIGKILL from the hard one (a program
        # that ignores SIGXCPU); rusage may read a tick below the limit.
        if exit_code == -signal.SIGXCPU or (
            exit_code == -signal.SIGKILL and cpu >= float(limits["cpu_time_s"]) - 0.05
        ):
            status = "cpu_limit"
        elif exit_code == -signal.SIGXFSZ:
            status = "file_limit"
        elif exit_code < 0:
            status = "killed"
        elif exit_code == 0:
            status = "ok"
        elif bufs[err_r].rstrip().endswith(b"MemoryError"):
            status = "memory_limit"
        elif b"[Errno 27] File too large" in bufs[err_r][-300:]:
            # Python ignores SIGXFSZ: RLIMIT_FSIZE surfaces as OSError(EFBIG).
            status = "file_limit"
        else:
            status = "error"
    files = {}
    workdir = req.get("_workdir")
    for rel in req.get("collect") or []:
        try:
            data = read_file(workdir, rel, opts=req.get("_opts"))
        except (OSError, ValueError):
            data = None
        if data is not None:
            files[rel] = base64.b64encode(data).decode("ascii")
    return {
        "status": status,
        "exit_code": exit_code,
        "stdout": bufs[out_r].decode("utf-8", "replace"),
        "stderr": bufs[err_r].decode("utf-8", "replace"),
        "stdout_bytes": seen[out_r],
        "stderr_bytes": seen[err_r],
        "wall_time_s": round(wall, 6),
        "cpu_time_s": round(cpu, 6),
        "max_rss_kb": int(rusage.ru_maxrss),
        "files": files,
    }


# ------------------------------------------------------------------ protocol


def handle(opts, req):
    op = req.get("op")
    if op == "run":
        req["_workdir"] = opts.workdir
        req["_opts"] = opts
        return execute(opts, req)
    if op == "read":
        data = read_file(opts.workdir, req.get("path"), opts=opts)
        return {"data": None if data is None else base64.b64encode(data).decode("ascii")}
    if op == "list":
        return {"files": list_files(opts.workdir)}
    if op == "wipe":
        reset_dirs(opts)
        remove_ipc(opts)
        wipe_dir(opts.workdir)
        for folder in opts.wipe:
            wipe_dir(folder)
        return {}
    if op == "ping":
        return {"pid": os.getpid(), "pid1": opts.pid1, "python": sys.version.split()[0]}
    raise ValueError(f"unknown op {op!r}")


def serve(opts, stdin, stdout):
    while True:
        line = stdin.readline()
        if not line:
            return
        try:
            req = json.loads(line)
            resp = handle(opts, req)
            resp["ok"] = True
        except Exception as exc:
            resp = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5),
            }
        resp["v"] = PROTOCOL_VERSION
        stdout.write(json.dumps(resp).encode("utf-8") + b"\n")
        stdout.flush()


def main(argv):
    opts = Options(argv)
    os.makedirs(opts.workdir, exist_ok=True)
    _own(opts.workdir, opts)
    record_dirs(opts)
    # Not dumpable: a program running under the same uid cannot ptrace or read the
    # runner's memory. Subreaper: orphans of the program come back to us to be killed.
    _prctl(_PR_SET_DUMPABLE, 0)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        serve(opts, sys.stdin.buffer, sys.stdout.buffer)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        kill_leftovers(opts)


if __name__ == "__main__":
    main(sys.argv[1:])
