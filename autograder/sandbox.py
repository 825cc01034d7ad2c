"""Run a student's code in a separate, isolated, limited process, and talk to it one call at a time.

:class:`Sandbox` starts :mod:`autograder.runner` (never importing student code into the grader),
one fresh process for each of the student's functions, isolated by the best tool that works here
(:func:`isolation`; ``Sandbox.measures`` lists what was applied, and the reports show it):

* ``"bwrap"`` - Debian's bubblewrap (``apt-get install bubblewrap``; the sandbox of Flatpak,
  https://github.com/containers/bubblewrap): the child gets a new, empty root file system into
  which only these are bound: the Python runtime read-only (``/usr``, the interpreter's prefixes,
  its site-packages, the ``cs231n_style`` package), the two runner files read-only, the
  submission's read-only copy, and private, size-limited tmpfs folders - its scratch folder (its
  working directory and ``HOME``), ``/tmp``, ``/dev/shm`` and ``/var/tmp`` - that vanish with it.
  Whatever is not bound (other submissions, earlier results, the grader, expected values, the
  solutions, any checkout) does not exist for it: hidden by construction, not by a list. New
  network (no network at all), PID, IPC and UTS namespaces; it dies with the grader.
* ``"unshare"`` (util-linux), as root, when bubblewrap is missing or cannot run here: network, PID
  and mount namespaces, the grader's folders covered by empty tmpfs mounts (a list of hidden
  paths: the weaker kind), private ``/dev/shm`` and ``/var/tmp``.
* ``"none"``: a separate process only (no root, or no namespaces, e.g. a container without
  ``CAP_SYS_ADMIN``). The report says what is missing.

In every mode, when the grader runs as root:

* the child runs as a *fresh* uid of its own (never a real account; ``Limits.user = "auto"``), so
  that its processes and files can be told apart, counted, limited and removed: after it ends,
  its processes are killed and its files in ``/tmp``, ``/dev/shm`` and ``/var/tmp`` deleted;
* the memory of its whole process tree is capped by a cgroup (v2 where the memory controller can
  be used, else v1's ``memory`` hierarchy; :class:`MemoryGroup`). Where no cgroup can be made, the
  child may not fork at all (``RLIMIT_NPROC`` = the tasks it has, counted for its own uid).

Resource limits (``setrlimit``) apply too: address space per process, CPU seconds, file size, open
files, no core dumps; and a wall-clock timeout per call, after which the process is killed.

Results come back over a dedicated pipe, framed with a random nonce per function, written by a
relay process that never runs student code: the student's code runs in a process of its own that
has no descriptor to the grader and never held the nonce, and the relay checks each of its replies
(size, depth, schema) and measures the inputs after a call itself (see :mod:`autograder.runner`).
The child's stdout/stderr go to a size-limited file that is only shown to the student, never parsed.
"""

from __future__ import annotations

import functools
import os
import pwd
import secrets
import select
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .protocol import ProtocolError, frame, read_message
from .reaper import kill_cgroup, remove_cgroup, track, untrack
from .submission import read_regular_file

__all__ = ["Limits", "MemoryGroup", "Sandbox", "SandboxFailure", "isolation", "isolation_available", "runtime_paths"]

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "runner.py"
#: The grader's only files the child sees under bubblewrap: the runner and its message format.
RUNNER_FILES = (HERE / "runner.py", HERE / "protocol.py")
#: Where those are bound inside the bubblewrap sandbox, and its scratch folder.
BOX_RUNNER_DIR, BOX_SCRATCH = "/opt/cs231n-runner", "/scratch"
#: Folders every process may write to: private in the sandbox, swept of a fresh uid's files after it.
SHARED_TMP = ("/tmp", "/dev/shm", "/var/tmp")
_UNSHARE = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private"]
#: Fresh uids are drawn from here (above any account, the usual container ranges and nobody).
_FRESH_IDS = (1_500_000_000, 2_000_000_000)


@dataclass(frozen=True)
class Limits:
    """What one student's process may use (the rubric's ``[sandbox]`` table).

    Attributes:
        timeout_s: wall-clock seconds per call.
        startup_s: wall-clock seconds to start (import torch, load the code).
        memory_mb: memory the student's code may add: all its processes together where a cgroup
            can be made (as root), and the address space of each process in any case.
        cpu_s: CPU seconds for the whole process.
        file_mb: the largest file it may write (its printed output included).
        processes: processes and threads it may have (where its uid is its own).
        disk_mb: the size of each private folder under bubblewrap (scratch, /tmp, /dev/shm,
            /var/tmp; their contents count as memory too).
        user: the unprivileged user to become when the grader is root: ``"auto"`` (default) for
            a fresh uid of its own for each process, or an account's name.
        submission_s: wall-clock seconds to grade one submission, reading it included (in
            ``batch`` and on Gradescope): checked before each start and call, so a grading may
            go over it by one ``startup_s`` or ``timeout_s``; the tests not graded by then score 0,
            saying so. The default stays under ``run_autograder``'s 540 s.
    """

    timeout_s: float = 10.0
    startup_s: float = 90.0
    memory_mb: int = 2048
    cpu_s: int = 120
    file_mb: int = 8
    processes: int = 256
    disk_mb: int = 64
    user: str = "auto"
    submission_s: float = 420.0


class SandboxFailure(Exception):
    """A call that produced no reply: ``kind`` is ``"timeout"``, ``"crashed"`` or ``"protocol"``."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


# --- what the child may see ---------------------------------------------------------------------

def runtime_paths() -> list[Path]:
    """The folders of the Python runtime the child needs, to be bound read-only under bubblewrap.

    The interpreter's prefixes (a virtual environment's and its base installation), the folder of
    the real interpreter binary, site-packages and the ``cs231n_style`` package as the grader
    imports it (an editable install points into a checkout: only the package folder is bound,
    never the checkout). Folders under ``/usr`` (bound whole) are left out, and so is any folder
    inside another one listed.

    Returns:
        Absolute, resolved paths, sorted.
    """
    import cs231n_style

    candidates = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)), *site.getsitepackages(),
                  os.path.dirname(os.path.realpath(cs231n_style.__file__))}
    paths = sorted({Path(os.path.realpath(p)) for p in candidates if p and os.path.isdir(p)})
    paths = [p for p in paths if p != Path("/") and Path("/usr") not in (p, *p.parents)]
    return [p for p in paths if not any(other in p.parents for other in paths)]


def _package_parent() -> str:
    import cs231n_style

    return os.path.dirname(os.path.dirname(os.path.realpath(cs231n_style.__file__)))


# --- which isolation works here -------------------------------------------------------------------

def _bwrap_command(binds: list[Path], scratch_size: int, submission: Path | None, root: bool) -> list[str]:
    """bubblewrap's arguments up to ``--``: a root file system holding only what is listed.

    The command runs as PID 1 of its PID namespace (``--as-pid-1``: no bubblewrap reaper, whose
    ``/proc/1/cmdline`` would show this command line, host paths included). As root it keeps only
    the capabilities the template and its relays need (bubblewrap run by root keeps them all
    otherwise): ``CAP_SETUID``/``CAP_SETGID`` to drop to the fresh uid (which clears them all in the
    student's process), ``CAP_SYS_ADMIN`` for each function's private mount namespace and folders,
    ``CAP_KILL`` to kill a student's process of another uid.
    """
    command = [shutil.which("bwrap") or "bwrap", "--unshare-ipc", "--unshare-pid", "--as-pid-1", "--unshare-net",
               "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
               "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    if root:
        command += ["--cap-drop", "ALL"]
        for capability in ("CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN", "CAP_KILL"):
            command += ["--cap-add", capability]
    else:
        command += ["--unshare-user"]  # its own user namespace: its task count is its own
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # merged /usr: symlinks into it
        path = Path("/") / top
        if path.is_symlink():
            command += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            command += ["--ro-bind", str(path), str(path)]
    size = str(scratch_size)
    command += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "01777", "--size", size, "--tmpfs", "/tmp",
                "--perms", "01777", "--size", size, "--tmpfs", "/dev/shm",
                "--perms", "0755", "--dir", "/var", "--perms", "01777", "--size", size, "--tmpfs", "/var/tmp",
                "--perms", "0755", "--dir", "/etc", "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    made = {Path("/"), Path("/tmp"), Path("/var"), Path("/var/tmp"), Path("/etc"), Path("/dev"), Path("/proc")}
    for path in [*binds, Path(BOX_RUNNER_DIR)]:
        for parent in reversed(path.parents):
            if parent not in made:  # bubblewrap would make them 0700, unreadable for the fresh uid
                command += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        if path != Path(BOX_RUNNER_DIR):
            command += ["--ro-bind", str(path), str(path)]
            made.add(path)
    command += ["--perms", "0755", "--dir", BOX_RUNNER_DIR]
    for file in RUNNER_FILES:
        command += ["--ro-bind", str(file), f"{BOX_RUNNER_DIR}/{file.name}"]
    command += ["--perms", "01777", "--size", size, "--tmpfs", BOX_SCRATCH]
    if submission is not None:
        command += ["--ro-bind", str(submission), f"{BOX_SCRATCH}/submission"]
    return [*command, "--chdir", BOX_SCRATCH, "--"]


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=60, cwd="/").returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=1)
def isolation() -> str:
    """The best isolation that works here: ``"bwrap"``, ``"unshare"`` or ``"none"`` (see the module
    docstring). Tried once per grader process, by starting this Python in it."""
    probe = [sys.executable, "-I", "-c", "import importlib.util, numpy; assert importlib.util.find_spec('torch')"]
    if shutil.which("bwrap") and _works(_bwrap_command(runtime_paths(), 1 << 20, None, os.geteuid() == 0) + probe):
        return "bwrap"
    if os.geteuid() == 0 and shutil.which("unshare") and _works([*_UNSHARE, "true"]):
        return "unshare"
    return "none"


def isolation_available() -> bool:
    """Whether the child can be cut off from the network and the grader's files (``isolation()``
    is ``"bwrap"``, or ``"unshare"`` as root)."""
    return isolation() != "none"


def _fresh_id() -> int:
    """An unused uid/gid number that the user namespace we run in maps (``/proc/self/uid_map``)."""
    low, high = _FRESH_IDS
    try:
        ranges = [tuple(int(x) for x in line.split()) for line in Path("/proc/self/uid_map").read_text().splitlines()]
        ranges = [(start, start + count) for start, _, count in ranges]
    except (OSError, ValueError):
        ranges = [(0, 1 << 32)]
    for start, end in ranges:
        a, b = max(start, low), min(end, high)
        if b - a > 1000:
            return a + secrets.randbelow(b - a)
    start, end = max(ranges, key=lambda r: r[1])  # a small map (e.g. 65536 ids): its upper part
    return max(start + 1000, end - 1 - secrets.randbelow(max(1, (end - start) // 4)))


# --- a cgroup for the memory of the whole process tree ----------------------------------------

def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


class MemoryGroup:
    """A cgroup holding one sandbox's processes, with a memory limit for all of them together.

    cgroup v2 (``memory.max``, swap off, ``memory.events``' ``oom_kill``) where its memory
    controller can be enabled below the grader's own group, else cgroup v1's ``memory`` hierarchy
    (``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``, ``memory.oom_control``). Made
    below the grader's own cgroup (``/proc/self/cgroup``), so it nests in whatever limits the
    grader has. Processes join it by writing their pid to :attr:`procs`; their children follow.
    """

    def __init__(self, path: Path, version: int):
        self.path, self.version = path, version
        self.procs = path / "cgroup.procs"

    @classmethod
    def create(cls, limit_bytes: int) -> MemoryGroup | None:
        """A new group limited to ``limit_bytes``, or ``None`` where none can be made (not root,
        a read-only cgroup file system, no memory controller...)."""
        name = f"cs231n-sandbox-{secrets.token_hex(6)}"
        for version, base in cls._bases():
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue
            track("cgroup", path)  # removed by the reaper if the grader dies first
            group = cls(path, version)
            if version == 2 and not (path / "memory.max").exists():
                _write(base / "cgroup.subtree_control", "+memory")  # refused when the base holds processes
            if group.set_limit(limit_bytes):
                return group
            group.remove()
        return None

    @staticmethod
    def _bases() -> list[tuple[int, Path]]:
        """(version, the grader's own group folder) for the cgroup v2 and v1-memory mounts."""
        own = {}
        for line in _read(Path("/proc/self/cgroup")).splitlines():
            number, controllers, path = line.split(":", 2)
            own["v2" if number == "0" else controllers] = path
        bases = []
        for line in _read(Path("/proc/self/mountinfo")).splitlines():
            before, _, after = line.partition(" - ")
            fields, kind = before.split(), after.split()
            if len(fields) < 5 or len(kind) < 3:
                continue
            root, mount = fields[3], Path(fields[4])
            key: str | None
            if kind[0] == "cgroup2" and "v2" in own and "memory" in _read(mount / "cgroup.controllers").split():
                key, version = "v2", 2
            elif kind[0] == "cgroup" and "memory" in kind[2].split(","):
                key, version = next((k for k in own if "memory" in k.split(",")), None), 1
            else:
                continue
            if key is None or key not in own:
                continue
            relative = os.path.relpath(own[key], root) if own[key].startswith(root) else own[key].lstrip("/")
            bases.append((version, (mount / relative).resolve() if relative != "." else mount))
        return sorted(bases, key=lambda b: -b[0])

    def set_limit(self, limit_bytes: int) -> bool:
        """Cap the group's memory (swap included) at ``limit_bytes``; ``False`` if refused."""
        value = str(int(limit_bytes))
        if self.version == 2:
            _write(self.path / "memory.swap.max", "0")
            return _write(self.path / "memory.max", value)
        swap = self.path / "memory.memsw.limit_in_bytes"
        if swap.exists() and int(_read(swap) or 0) < int(value):
            _write(swap, value)  # memsw >= limit at every step
            ok = _write(self.path / "memory.limit_in_bytes", value)
        else:
            ok = _write(self.path / "memory.limit_in_bytes", value)
            if swap.exists():
                _write(swap, value)
        return ok

    def usage(self) -> int:
        """Bytes the group uses now."""
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        return int(_read(self.path / name).strip() or 0)

    def peak(self) -> int | None:
        """The most bytes the group used, where the kernel says (v1, v2 from Linux 5.19)."""
        text = _read(self.path / ("memory.peak" if self.version == 2 else "memory.max_usage_in_bytes")).strip()
        return int(text) if text.isdigit() else None

    def oom_kills(self) -> int:
        """How many of its processes the kernel killed for going over the limit."""
        text = _read(self.path / ("memory.events" if self.version == 2 else "memory.oom_control"))
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def pids(self) -> list[int]:
        return [int(p) for p in _read(self.procs).split()]

    def kill_all(self) -> None:
        """SIGKILL every process in the group and wait (up to 5 s) until it is empty."""
        kill_cgroup(self.path)

    def remove(self) -> None:
        """Kill what is left and remove the group (the reaper forgets it)."""
        remove_cgroup(self.path)
        untrack("cgroup", self.path)


# --- leftovers of a fresh uid ---------------------------------------------------------------------

def kill_uid(uid: int) -> None:
    """SIGKILL every process whose real uid is ``uid`` (a sandbox's fresh uid: only its own)."""
    for _ in range(20):
        found = False
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if os.stat(f"/proc/{pid}").st_uid == uid:
                        os.kill(int(pid), signal.SIGKILL)
                        found = True
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.05)


def remove_files_of(uid: int, folders=SHARED_TMP) -> list[str]:
    """Delete every file and folder owned by ``uid`` in ``folders`` (a fresh uid's leftovers).

    Returns:
        The paths deleted (top-level entries first found), for tests and logs.
    """
    removed = []
    for folder in folders:
        for top, dirs, files in os.walk(folder, topdown=True):
            for name in list(dirs) + files:
                path = os.path.join(top, name)
                try:
                    if os.lstat(path).st_uid != uid:
                        continue
                except OSError:
                    continue
                if name in dirs:
                    dirs.remove(name)
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    try:
                        os.unlink(path)
                    except OSError:
                        continue
                removed.append(path)
    return removed


# --- the sandbox ----------------------------------------------------------------------------------

def _write_all(fd: int, data: bytes, deadline: float) -> None:
    """Write ``data`` to the non-blocking ``fd`` by ``deadline`` (``time.monotonic()``).

    Raises:
        TimeoutError: if the reader did not take it all in time.
        BrokenPipeError: if the reader is gone.
    """
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([], [fd], [], left)[1]:
            raise TimeoutError("the reader did not read in time")
        view = view[os.write(fd, view):]


def _exit_detail(returncode: int | None) -> str:
    if returncode is None:
        return "it stopped answering"
    if returncode < 0 or returncode > 128:
        number = -returncode if returncode < 0 else returncode - 128
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        reason = {"SIGXCPU": " - the CPU time limit", "SIGKILL": " - killed (memory or time limit?)",
                  "SIGSEGV": " - a crash"}.get(name, "")
        return f"killed by {name}{reason}"
    return f"it exited with code {returncode} (sys.exit / os._exit / exit() ends the grading process)"


@dataclass
class Sandbox:
    """One student's sandbox: a template process, and a fresh student process forked from it for
    each function (:meth:`start`), and again after a timeout or crash.

    The template (:mod:`autograder.runner`) imports torch once and runs no student code; each
    student process is a fork of it with its own uid (as root), limits and pipes. Use as a
    context manager::

        with Sandbox(pieces, notebooks, limits, hide=[...]) as box:
            box.start()                      # a fresh student process (the grader: one per function)
            reply = box.call({"function": "tv_loss", "args": [...], "dtype": "float64"})

    Args:
        pieces: the student's code, ``{"kind": "import" | "def", "name", "source"}`` in order.
        notebooks: the submitted notebook files, copied read-only into the scratch directory.
        limits: a :class:`Limits`.
        hide: the grader's folders (solutions, this package, the submission's folder...): covered in
            the ``unshare`` fallback; under bubblewrap never bound (a runtime folder holding one
            of them is refused).
        mode: ``"bwrap"``, ``"unshare"`` or ``"none"`` to use a weaker isolation than
            :func:`isolation` (tests of the fallbacks); default: the best that works here.
        cgroup: ``False`` to do without the memory cgroup (tests of the no-fork fallback).

    Attributes:
        measures: what was applied, in words (for the reports).
        load_errors: name -> why a piece of the student's code failed to load, in the latest process.
        starts: student processes started; ``template_starts``: templates started.
        oom_kills: processes the kernel killed over the memory limit, in all (where a cgroup is used).
        peak_bytes: the most memory the sandbox used at once (where a cgroup says), or ``None``.
        memory_cap_bytes: the cgroup's limit (the template's usage when it was ready, plus
            ``limits.memory_mb``), or ``None`` without a cgroup.

    Raises:
        ValueError: for an unknown ``mode``.
    """

    pieces: list[dict]
    notebooks: list[Path] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    hide: list[str] = field(default_factory=list)
    mode: str | None = None
    cgroup: bool = True
    measures: list[str] = field(default_factory=list)
    load_errors: dict = field(default_factory=dict)
    starts: int = 0
    template_starts: int = 0
    oom_kills: int = 0
    peak_bytes: int | None = None
    memory_cap_bytes: int | None = None

    def __post_init__(self):
        self._mode = self.mode or isolation()
        if self._mode not in ("bwrap", "unshare", "none"):
            raise ValueError(f"mode must be 'bwrap', 'unshare' or 'none', not {self._mode!r}")
        self._root = Path(tempfile.mkdtemp(prefix="cs231n-grade-"))
        track("folder", self._root)  # removed by the reaper if the grader dies first
        self._root_grader = os.geteuid() == 0
        # The group of this sandbox's processes (each has its own fresh uid) and of its folders: they
        # reach its scratch and read its copy; another sandbox's processes (another group) cannot.
        self._gid = None
        if self._root_grader:
            self._gid = _fresh_id() if self.limits.user == "auto" else pwd.getpwnam(self.limits.user).pw_gid
        self._template: subprocess.Popen | None = None
        self._control = None
        self._child: dict | None = None
        self._group: MemoryGroup | None = None
        self._oom_seen = 0
        self._outputs: list[Path] = []
        self._submission = self._root / "submission"
        self._submission.mkdir()
        try:
            for notebook in self.notebooks:  # the bytes of plain files only: never a link's target
                target = self._submission / Path(notebook).name
                target.write_bytes(read_regular_file(notebook))
                self._private(target, 0o440)
        except BaseException:  # a link or an unreadable file refused: no sandbox, and no folder left
            shutil.rmtree(self._root, ignore_errors=True)
            untrack("folder", self._root)
            raise
        self._private(self._submission, 0o550)  # stays the grader's: the student's code cannot change the copy
        self._private(self._root, 0o710)  # this sandbox's group may traverse to its scratch, never list it
        if self.cgroup and self._root_grader:
            self._group = MemoryGroup.create((self.limits.memory_mb + 2048) << 20)  # lowered once ready
            self._oom_seen = self._group.oom_kills() if self._group else 0
        self._own_uid = (self._root_grader and self.limits.user == "auto") or (
            self._mode == "bwrap" and not self._root_grader)
        self._forbid_fork = self._group is None and self._own_uid

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill every process of the sandbox, delete its files, cgroup and scratch folders."""
        self._kill_template()
        if self._group is not None:
            self._group.remove()
            self._group = None
        shutil.rmtree(self._root, ignore_errors=True)
        untrack("folder", self._root)

    def _kill_child(self, ask_template: bool = True) -> int | None:
        """End the current student process: its pipes closed, its process group (and, as root, its
        uid's every process) killed, its files in the shared temporary folders deleted.

        Returns:
            How it ended, as the template saw it (an exit code; negative: killed by that signal),
            or ``None`` if unknown.
        """
        import json

        child, self._child = self._child, None
        if child is None:
            return None
        for fd in (child["requests"], child["replies"]):
            try:
                os.close(fd)
            except OSError:
                pass
        code = None
        if ask_template and self._control is not None:
            try:
                self._control.sendall(b'{"cmd": "kill"}')
                code = json.loads(self._control.recv(4096) or b"{}").get("code")
            except (OSError, ValueError):
                self._kill_template()
        if self._group is not None:
            self._note_memory(self._group)
        if child["uid"] is not None:
            kill_uid(child["uid"])
            if self._mode != "bwrap":  # under bubblewrap its writable folders are the sandbox's tmpfs
                remove_files_of(child["uid"])
        return code

    def _kill_template(self) -> None:
        self._kill_child(ask_template=False)
        process, self._template = self._template, None
        if self._control is not None:
            self._control.close()
            self._control = None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._group is not None:
            self._note_memory(self._group)
            self._group.kill_all()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def _note_memory(self, group: MemoryGroup) -> int:
        """Add the group's (this sandbox's ``_group``) new OOM kills to :attr:`oom_kills`; return how many."""
        kills = group.oom_kills() - self._oom_seen
        self._oom_seen += kills
        self.oom_kills += kills
        peak = group.peak()
        if peak is not None:
            self.peak_bytes = max(self.peak_bytes or 0, peak)
        return kills

    def _user(self) -> tuple[int, int] | None:
        """The uid/gid of the next student process (``None`` when the grader is not root): a fresh
        uid, and this sandbox's group (or the account's, with ``Limits.user`` set to one)."""
        if not self._root_grader:
            return None
        if self.limits.user == "auto":
            return _fresh_id(), self._gid
        return pwd.getpwnam(self.limits.user).pw_uid, self._gid

    def _private(self, path: Path, mode: int) -> None:
        """Give ``path`` ``mode`` and, as root, this sandbox's group: its "group" bits are for this
        sandbox's processes only, and nothing is for others."""
        if self._gid is not None:
            os.chown(path, -1, self._gid, follow_symlinks=False)
        os.chmod(path, mode)

    def _host_scratch(self) -> Path:
        """The working folder outside bubblewrap, holding home/ and tmp/ (each process its own uid),
        reachable by this sandbox's processes only (its group; the sandbox's root is 0710)."""
        scratch = self._root / secrets.token_hex(8)
        for sub in ("", "home", "tmp"):
            (scratch / sub).mkdir()
            self._private(scratch / sub, 0o1770 if sub else 0o750)
        os.symlink(self._submission, scratch / "submission")
        return scratch

    def _describe(self) -> list[str]:
        limits = self.limits
        measures = [f"one fresh process per function; wall-clock timeout {limits.timeout_s:g} s per call",
                    f"limits: {limits.memory_mb} MB memory, {limits.cpu_s} s CPU, {limits.file_mb} MB files"]
        if self._mode == "bwrap":
            measures += ["bubblewrap: it sees only the Python runtime (read-only), the submission's read-only copy "
                         f"and its own private folders ({limits.disk_mb} MB each: scratch, /tmp, /dev/shm, /var/tmp)",
                         "no network (network namespace)", "own PID namespace"]
        elif self._mode == "unshare":
            measures += ["FALLBACK (bubblewrap missing or not working): unshare - grader folders covered by empty "
                         "mounts, private /dev/shm and /var/tmp", "no network (network namespace)", "own PID namespace"]
        else:
            measures += ["FALLBACK: NO namespaces (needs bubblewrap, or root with unshare): the network and "
                         "files readable by its user are NOT hidden"]
        if self._root_grader:
            measures.append("a fresh unprivileged uid for each process" if limits.user == "auto"
                            else f"unprivileged user {limits.user!r}")
            if self._mode != "bwrap" and limits.user == "auto":
                measures.append("its processes killed and its files in /tmp, /dev/shm, /var/tmp deleted afterwards")
        else:
            measures.append("NOT dropped to another user (the grader is not root)")
        if self._group is not None:
            measures.append(f"memory of all its processes together capped at {limits.memory_mb} MB beyond its start "
                            f"(cgroup v{self._group.version})")
        elif self._forbid_fork:
            measures.append("FALLBACK (no cgroup): it may not start processes or threads (RLIMIT_NPROC)")
        else:
            measures.append("memory of its process tree NOT capped as a whole (needs root for a cgroup or a private "
                            "uid): each process is limited on its own")
        return measures

    def _start_template(self) -> None:
        """Start the template (killing any): import torch, warm up, wait until it is ready.

        Raises:
            SandboxFailure: if it did not get ready within ``limits.startup_s``.
        """
        import json
        import socket

        self._kill_template()
        limits = self.limits
        self.measures = self._describe()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "LANG": "C.UTF-8", "USER": "student", "LOGNAME": "student"}
        python = [sys.executable, "-I", "-u"]
        control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        hide = []
        if self._mode == "bwrap":
            binds = runtime_paths()
            refused = [p for p in binds if any(Path(h) == p or p in Path(h).parents for h in self.hide)]
            if refused:
                self.measures.append(f"NOT bound (they hold grader files): {', '.join(map(str, refused))}")
            binds = [p for p in binds if p not in refused]
            command = (_bwrap_command(binds, limits.disk_mb << 20, self._submission, self._root_grader)
                       + python + [f"{BOX_RUNNER_DIR}/runner.py", str(theirs.fileno())])
            cwd = "/"
            env.update(HOME=BOX_SCRATCH, TMPDIR="/tmp", MPLCONFIGDIR="/tmp")
            private = [*SHARED_TMP, BOX_SCRATCH]  # each function's own, fresh (runner.private_folders)
        else:
            scratch = self._host_scratch()
            command = ([*_UNSHARE, "--"] if self._mode == "unshare" else []) + python + [str(RUNNER),
                                                                                          str(theirs.fileno())]
            cwd = str(scratch)
            env.update(HOME=str(scratch / "home"), TMPDIR=str(scratch / "tmp"), MPLCONFIGDIR=str(scratch / "tmp"))
            hide = self.hide if self._mode == "unshare" else []
            # /tmp stays the host's here (it holds the scratch folder): swept of each fresh uid's files
            private = ["/dev/shm", "/var/tmp", env["TMPDIR"], env["HOME"]] if self._mode == "unshare" else []
        if self._group is not None:  # join the group before anything else runs, so every child is in it
            command = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self._group.procs), *command]
            self._group.set_limit((limits.memory_mb + 2048) << 20)  # room to start; lowered once ready
        with open(self._root / "template-output.txt", "ab") as output:
            self._template = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                                              cwd=cwd, env=env, pass_fds=(theirs.fileno(),), start_new_session=True)
        theirs.close()
        self._control = control
        self.template_starts += 1
        setup = {"pieces": self.pieces, "hide": bool(hide), "hide_paths": hide,
                 "private_paths": private, "private_bytes": limits.disk_mb << 20,
                 "memory_bytes": limits.memory_mb << 20, "cpu_seconds": limits.cpu_s,
                 "file_bytes": limits.file_mb << 20, "processes": limits.processes, "extra_path": [_package_parent()]}
        nonce = secrets.token_hex(16)
        deadline = time.monotonic() + limits.startup_s
        try:
            pipe = self._template.stdin
            if pipe is None:  # (it is not: stdin=PIPE)
                raise OSError("the template has no input pipe")
            stdin = pipe.fileno()
            os.set_blocking(stdin, False)
            _write_all(stdin, nonce.encode() + b"\n" + frame(nonce, setup), deadline)
            pipe.close()
            control.settimeout(max(0.1, deadline - time.monotonic()))
            ready = json.loads(control.recv(1 << 16) or b"{}")
        except (OSError, ValueError) as error:
            detail = ("it did not start within " f"{limits.startup_s:g} s" if isinstance(error, TimeoutError)
                      else _exit_detail(self._template.poll()))
            self._kill_template()
            raise SandboxFailure("crashed", f"the sandbox did not start: {detail}") from None
        if self._group is not None:
            self.memory_cap_bytes = self._group.usage() + (limits.memory_mb << 20)
            self._group.set_limit(self.memory_cap_bytes)
        if hide and len(ready.get("hidden") or []) < len(hide):
            self.measures.append(f"grader files hidden: only {len(ready.get('hidden') or [])} of {len(hide)} folders")

    def start(self) -> dict:
        """Start a fresh student process (ending the current one; starting the template if needed)
        and load the code in it; return its ``load_errors`` (name -> why).

        Raises:
            SandboxFailure: if it did not start within ``limits.startup_s``.
        """
        import json
        import socket

        self._kill_child()
        for attempt in (1, 2):
            if self._template is None or self._template.poll() is not None:
                self._start_template()
            user = self._user()
            requests_r, requests_w = os.pipe()
            replies_r, replies_w = os.pipe()
            output_path = self._root / f"output-{len(self._outputs)}.txt"
            output = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            command = {"cmd": "fork", "uid": user[0] if user else None,
                       "gid": user[1] if user else None, "own_uid": self._own_uid, "forbid_fork": self._forbid_fork}
            try:
                socket.send_fds(self._control, [json.dumps(command).encode()], [requests_r, replies_w, output])
                answer = json.loads(self._control.recv(1 << 16) or b"{}")
            except (OSError, ValueError):
                answer = {}
            finally:
                for fd in (requests_r, replies_w, output):
                    os.close(fd)
            if "pid" in answer:
                break
            for fd in (requests_w, replies_r):
                os.close(fd)
            self._kill_template()  # it died (e.g. killed for memory): a new one, once
            if attempt == 2:
                raise SandboxFailure("crashed", "the sandbox stopped answering")
        self._outputs.append(output_path)
        os.set_blocking(requests_w, False)
        nonce = secrets.token_hex(16)  # sent on the pipe, so that only the relay reads it, after forking
        self._child = {"requests": requests_w, "replies": replies_r, "nonce": nonce,
                       "uid": user[0] if user and self.limits.user == "auto" else None}
        self.starts += 1
        deadline = time.monotonic() + self.limits.startup_s
        self._send(nonce.encode() + b"\n", deadline)
        ready = self._receive(deadline, "start")
        self.load_errors = ready.get("load_errors", {}) if isinstance(ready, dict) else {}
        if self._forbid_fork and isinstance(ready, dict) and not ready.get("nproc"):
            self.measures = [m if not m.startswith("FALLBACK (no cgroup)") else
                             "memory of its process tree NOT capped (no cgroup, and forking could not be forbidden)"
                             for m in self.measures]
        shared = ("its temporary folders NOT private to each function (no private mount namespace here, e.g. not "
                  "root): this submission's function processes share them")
        asked = self._mode != "none" and isinstance(ready, dict)
        if asked and not ready.get("private") and shared not in self.measures:
            self.measures.append(shared)
        return self.load_errors

    # --- calls ---------------------------------------------------------------------------

    def _running(self) -> dict:
        """The function process's pipes, nonce and uid (:meth:`start` made them)."""
        if self._child is None:
            raise SandboxFailure("crashed", "no function process is running")
        return self._child

    def _send(self, data: bytes, deadline: float) -> None:
        try:
            _write_all(self._running()["requests"], data, deadline)
        except TimeoutError:
            self._fail("timeout", "it did not read its input in time")
        except BrokenPipeError:
            self._fail("crashed")

    def _receive(self, deadline: float, what: str = "call") -> dict:
        """The relay's next message (see :mod:`autograder.runner`).

        Raises:
            SandboxFailure: ``"timeout"`` (none by ``deadline``), ``"crashed"`` (the process ended),
                or ``"protocol"`` (a malformed frame - over the size or depth limits included - or
                the relay refused the function: ``{"rejected": why}``).
        """
        try:
            child = self._running()
            message = read_message(child["replies"], child["nonce"],
                                   timeout=max(0.0, deadline - time.monotonic()))
        except ProtocolError as error:
            if str(error) == "timeout":
                limit = self.limits.startup_s if what == "start" else self.limits.timeout_s
                self._fail("timeout", f"no answer within {limit:g} s")
            if str(error) == "end of stream":
                self._fail("crashed")
            self._fail("protocol", str(error))
        if isinstance(message, dict) and "rejected" in message:
            self._fail("protocol", str(message["rejected"])[:2000])
        return message

    def _fail(self, kind: str, detail: str | None = None):
        """Kill the student process and raise :class:`SandboxFailure` (for ``"crashed"`` without a
        ``detail``: how it ended)."""
        killed = self._note_memory(self._group) if self._group is not None else 0
        template_alive = self._template is not None and self._template.poll() is None
        code = self._kill_child()
        if detail is None:
            detail = _exit_detail(code) if template_alive else "the sandbox ended (killed: memory or time limit?)"
        if killed:
            kind, detail = "crashed", (f"killed: its processes together went over the memory limit of "
                                       f"{self.limits.memory_mb} MB")
        raise SandboxFailure(kind, detail)

    def call(self, request: dict) -> dict:
        """Send one call and return the student process's reply (see :mod:`autograder.runner`).

        Starts a student process first if none is running (after a failure). Where a cgroup caps
        the memory, ``reply["oom_kills"]`` counts the processes the kernel killed during the call
        for going over it.

        Raises:
            SandboxFailure: on timeout, a crash (exit, kill, limit), a malformed reply, or one the
                relay refused (the student's process wrote out of turn or sent no valid reply:
                ``"protocol"``); the process is killed, and the next call starts a fresh one.
        """
        if self._child is None:
            self.start()
        request = {**request, "id": secrets.token_hex(4)}
        deadline = time.monotonic() + self.limits.timeout_s
        self._send(frame(self._running()["nonce"], request), deadline)
        reply = self._receive(deadline)
        if not isinstance(reply, dict) or reply.get("id") != request["id"]:
            self._fail("protocol", "a reply that does not answer the request")
        if self._group is not None:
            reply["oom_kills"] = self._note_memory(self._group)
        return reply

    def printed_output(self) -> str:
        """The first 4 KB of what the student's code printed, over all its processes."""
        chunks, left = [], 4096
        for path in self._outputs:
            try:
                with open(path, "rb") as file:
                    data = file.read(left)
            except OSError:
                continue
            chunks.append(data)
            left -= len(data)
            if left <= 0:
                break
        return b"".join(chunks).decode("utf-8", "replace")
