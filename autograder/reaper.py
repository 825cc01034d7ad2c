"""Nothing is left behind when the grader dies, however it dies.

The grader's own clean-up (``finally`` blocks, :meth:`autograder.sandbox.Sandbox.close`) does not
run when the kernel kills it: the out-of-memory killer in a container that is too small (Gradescope's
default is 768 MB), ``timeout --kill-after``, a container or a job stopped. Its sandboxes' cgroups,
their processes and its temporary folders would stay. So the grader starts a *reaper* the first
time it makes one of these: a small separate process (this file run by path with ``python -I``;
the standard library only, about 10 MB) in a session of its own, which the kernel's OOM killer
spares, and which ignores the terminal's Ctrl-C and hang-up. The grader tells it on a pipe about
each thing that must not outlive the grader, and about each one it removed itself. When the pipe
closes - the grader ended, whatever way, and with it every copy of the pipe's write end - the
reaper kills what still runs in the cgroups listed, removes them (sub-groups first), then the
folders, and exits. A grader that cleaned up after itself leaves it nothing to do.

The grader's side is :func:`track` and :func:`untrack` (thread-safe; the write end is not
inherited by any child process, so a sandbox's processes cannot keep the reaper waiting), and
:func:`private_tempdir`, the one folder all of a grading's temporary folders are made in.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["kill_cgroup", "private_tempdir", "remove_cgroup", "track", "untrack"]

_LOCK = threading.Lock()
_REAPER: subprocess.Popen | None = None
_TEMPDIR: str | None = None


def _reaper() -> subprocess.Popen:
    """The running reaper, started on first use."""
    global _REAPER
    if _REAPER is None or _REAPER.poll() is not None:
        _REAPER = subprocess.Popen([sys.executable, "-I", str(Path(__file__).resolve())], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True, text=True)
        if _REAPER.stdin is not None:  # (it is: stdin=PIPE)
            os.set_inheritable(_REAPER.stdin.fileno(), False)
    return _REAPER


def _tell(line: str) -> None:
    with _LOCK:
        try:
            pipe = _reaper().stdin
            if pipe is not None:  # (it is: stdin=PIPE)
                pipe.write(line + "\n")
                pipe.flush()
        except OSError:  # no reaper (a process limit, ...): the grader's own clean-up still runs
            pass


def track(kind: str, path: str | os.PathLike) -> None:
    """Ask the reaper to remove ``path`` if the grader dies before :func:`untrack`.

    Args:
        kind: ``"cgroup"`` (a cgroup folder: its processes are killed, then it and its sub-groups
            removed) or ``"folder"`` (removed with everything in it).
        path: an absolute path without a newline.

    Raises:
        ValueError: for another ``kind`` or a path with a newline.
    """
    if kind not in ("cgroup", "folder") or "\n" in str(path):
        raise ValueError(f"cannot track {kind!r} {str(path)!r}: kind must be 'cgroup' or 'folder', no newline")
    _tell(f"+ {kind} {os.path.abspath(path)}")


def untrack(kind: str, path: str | os.PathLike) -> None:
    """The grader removed ``path`` itself: the reaper forgets it (see :func:`track`)."""
    if _REAPER is not None:
        _tell(f"- {kind} {os.path.abspath(path)}")


def private_tempdir() -> str:
    """Make this grader's temporary folder, the parent of all the others it makes, and use it.

    ``tempfile.tempdir`` is set to a fresh ``cs231n-grading-*`` folder (mode 0711: a sandbox's
    processes may pass through to their own folder, never list the others), which the reaper removes
    when the grader dies. Called at the start of each command that grades; a second call in the same
    process returns the same folder.

    Returns:
        The folder's path.
    """
    global _TEMPDIR
    if _TEMPDIR is not None and os.path.isdir(_TEMPDIR):  # a second command in the same process: the same one
        return _TEMPDIR
    folder = tempfile.mkdtemp(prefix="cs231n-grading-")
    os.chmod(folder, 0o711)
    track("folder", folder)
    tempfile.tempdir = _TEMPDIR = folder
    return folder


# --- the reaper itself (run as a script) ----------------------------------------------------------

def _pids(group: Path) -> list[int]:
    pids = []
    for procs in group.rglob("cgroup.procs"):
        try:
            pids += [int(p) for p in procs.read_text().split()]
        except (OSError, ValueError):
            continue
    return pids


def kill_cgroup(group: Path, seconds: float = 5.0) -> None:
    """SIGKILL every process in ``group`` and its sub-groups, until none is left (at most ``seconds``).

    cgroup v2's ``cgroup.kill`` where there is one (the kernel kills the whole tree at once), else each
    process by its pid, again until the group is empty (a process forking meanwhile is caught next time).
    """
    deadline = time.monotonic() + seconds
    while (pids := _pids(group)) and time.monotonic() < deadline:
        try:
            (group / "cgroup.kill").write_text("1")
        except OSError:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.02)


def remove_cgroup(group: Path) -> None:
    """Kill every process in ``group`` (:func:`kill_cgroup`), then remove it and its sub-groups, deepest
    first (a group whose last process is still exiting is retried for up to 5 s)."""
    kill_cgroup(group)
    folders = [*sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)), group]
    deadline = time.monotonic() + 5
    for folder in folders:
        while True:
            try:
                folder.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)


def _serve(lines) -> None:
    """Read ``+ KIND PATH`` / ``- KIND PATH`` lines until the end, then remove what is still listed."""
    tracked: dict[tuple[str, str], None] = {}
    for line in lines:
        op, _, rest = line.rstrip("\n").partition(" ")
        kind, _, path = rest.partition(" ")
        if op == "+":
            tracked[(kind, path)] = None
        elif op == "-":
            tracked.pop((kind, path), None)
    for kind, path in [key for key in tracked if key[0] == "cgroup"] + [key for key in tracked if key[0] == "folder"]:
        if kind == "cgroup":
            remove_cgroup(Path(path))
        else:
            shutil.rmtree(path, ignore_errors=True)


def _main() -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(number, signal.SIG_IGN)
    try:
        Path("/proc/self/oom_score_adj").write_text("-1000")  # as root: the OOM killer never picks it
    except OSError:
        pass
    _serve(sys.stdin)


if __name__ == "__main__":
    _main()
