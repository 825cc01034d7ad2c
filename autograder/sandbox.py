"""Run a student's code in a separate, limited process, and talk to it one call at a time.

:class:`Sandbox` starts :mod:`autograder.runner` (never importing student code into the grader)
with these measures, each applied where the machine allows it (``Sandbox.measures`` lists what
was applied, and the reports show it):

* a separate process, in a fresh scratch directory holding a read-only copy of the submission,
  with a minimal environment (``python -I``: no ``PYTHON*`` variables, no user site, the
  current directory not on ``sys.path``);
* when the grader runs as root and ``unshare`` works: new network namespace (no network, not even
  loopback to the host), PID namespace (it cannot see or signal other processes; all its
  processes die with it) and a private mount namespace in which the grader's secrets (solutions,
  rubric, original submission) are covered by empty tmpfs mounts;
* when root: it drops to an unprivileged user (``nobody`` by default) before any student code runs;
* resource limits (``setrlimit``): address space, CPU seconds, file size, processes, open files,
  no core dumps; and a wall-clock timeout per call, after which the whole process group is killed.

Without root or ``unshare`` the child still runs as a separate, limited process with timeouts,
but as the grader's own user and with the network: the report says so (see the README's
autograder section for running it in a container then).

Results come back over a dedicated pipe, framed with a per-run random nonce; the child's
stdout/stderr go to a size-limited file that is only shown to the student, never parsed.
"""

from __future__ import annotations

import functools
import os
import pwd
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .protocol import ProtocolError, frame, read_message

__all__ = ["Limits", "Sandbox", "SandboxFailure", "isolation_available"]

RUNNER = Path(__file__).resolve().parent / "runner.py"
_UNSHARE = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private"]


@dataclass(frozen=True)
class Limits:
    """What one student's process may use (the rubric's ``[sandbox]`` table).

    Attributes:
        timeout_s: wall-clock seconds per call.
        startup_s: wall-clock seconds to start (import torch, load the code).
        memory_mb: address space beyond what the runner has mapped when it hands over.
        cpu_s: CPU seconds for the whole process.
        file_mb: the largest file it may write (its printed output included).
        processes: processes and threads of the sandbox user.
        user: the unprivileged user to become when the grader is root.
    """

    timeout_s: float = 10.0
    startup_s: float = 90.0
    memory_mb: int = 2048
    cpu_s: int = 120
    file_mb: int = 8
    processes: int = 256
    user: str = "nobody"


class SandboxFailure(Exception):
    """A call that produced no reply: ``kind`` is ``"timeout"``, ``"crashed"`` or ``"protocol"``."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


@functools.lru_cache(maxsize=1)
def isolation_available() -> bool:
    """Whether namespaces can be made here (root, and ``unshare`` works)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(_UNSHARE + ["true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


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
    """One student's sandboxed process; restarted on demand after a timeout or crash.

    Use as a context manager::

        with Sandbox(pieces, notebooks, limits, hide=[...]) as box:
            reply = box.call({"function": "tv_loss", "args": [...], "dtype": "float64"})

    Args:
        pieces: the student's code, ``{"kind": "import" | "def", "name", "source"}`` in order.
        notebooks: the submitted notebook files, copied read-only into the scratch directory.
        limits: a :class:`Limits`.
        hide: paths to cover in the child's mount namespace (secrets of the grader).
    """

    pieces: list[dict]
    notebooks: list[Path] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    hide: list[str] = field(default_factory=list)
    measures: list[str] = field(default_factory=list)
    load_errors: dict = field(default_factory=dict)
    starts: int = 0

    def __post_init__(self):
        self._process: subprocess.Popen | None = None
        self._root = Path(tempfile.mkdtemp(prefix="cs231n-grade-"))
        os.chmod(self._root, 0o711)  # others may traverse to their own scratch, never list it

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill the child (if any) and delete every scratch directory."""
        self._kill()
        shutil.rmtree(self._root, ignore_errors=True)

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()
            os.close(self._replies)
        except OSError:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.output_tail = self._read_output()

    def _user(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        entry = pwd.getpwnam(self.limits.user)
        return entry.pw_uid, entry.pw_gid

    def _scratch(self, user) -> Path:
        scratch = self._root / secrets.token_hex(8)
        for sub in ("", "home", "tmp"):
            (scratch / sub).mkdir()
        submission = scratch / "submission"
        submission.mkdir()
        for notebook in self.notebooks:
            target = submission / notebook.name
            shutil.copyfile(notebook, target)
            os.chmod(target, 0o444)
        os.chmod(submission, 0o555)  # stays the grader's: the student's code cannot change the copy
        if user is not None:
            for sub in ("", "home", "tmp"):
                os.chown(scratch / sub, *user)
        os.chmod(scratch, 0o700)
        return scratch

    def start(self) -> dict:
        """Start a fresh child and load the code; return its ``load_errors`` (name -> why).

        Raises:
            SandboxFailure: if it did not start within ``limits.startup_s``.
        """
        self._kill()
        user = self._user()
        scratch = self._scratch(user)
        isolated = isolation_available()
        self.measures = ["separate process", "scratch directory with a read-only copy of the submission",
                         f"wall-clock timeout {self.limits.timeout_s:g} s per call",
                         f"limits: {self.limits.memory_mb} MB memory, {self.limits.cpu_s} s CPU, "
                         f"{self.limits.file_mb} MB files, {self.limits.processes} processes"]
        self.measures += ([f"unprivileged user {self.limits.user!r}"] if user else
                          ["NOT dropped to another user (the grader is not root)"])
        self.measures += (["no network (network namespace)", "own PID namespace", "grader files hidden (mount namespace)"]
                          if isolated else ["network NOT isolated (needs root and unshare)"])
        self._nonce = secrets.token_hex(16)
        replies_r, replies_w = os.pipe()
        output = open(scratch / "output.txt", "wb")
        self._output_path = scratch / "output.txt"
        command = (_UNSHARE + ["--"] if isolated else []) + [sys.executable, "-I", "-u", str(RUNNER), str(replies_w)]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"),
               "MPLCONFIGDIR": str(scratch / "tmp"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "LANG": "C.UTF-8"}
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                                         cwd=scratch, env=env, pass_fds=(replies_w,), start_new_session=True)
        output.close()
        os.close(replies_w)
        self._requests, self._replies = self._process.stdin.fileno(), replies_r  # raw fds, with deadlines
        os.set_blocking(self._requests, False)
        self.starts += 1
        setup = {"pieces": self.pieces, "hide": isolated, "hide_paths": self.hide,
                 "uid": user[0] if user else None, "gid": user[1] if user else None,
                 "memory_bytes": self.limits.memory_mb << 20, "cpu_seconds": self.limits.cpu_s,
                 "file_bytes": self.limits.file_mb << 20, "processes": self.limits.processes}
        deadline = time.monotonic() + self.limits.startup_s
        self._send(self._nonce.encode() + b"\n" + frame(self._nonce, setup), deadline)
        ready = self._receive(deadline)
        ready = ready if isinstance(ready, dict) else {}
        self.load_errors = ready.get("load_errors", {})
        if isolated and len(ready.get("hidden") or []) < len(self.hide):
            self.measures[-1] = f"grader files hidden: {len(ready.get('hidden') or [])} of {len(self.hide)} folders"
        return self.load_errors

    # --- calls ---------------------------------------------------------------------------

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._requests], [], left)[1]:
                self._fail("timeout", "it did not read its input in time")
            try:
                view = view[os.write(self._requests, view):]
            except BrokenPipeError:
                self._fail("crashed", _exit_detail(self._process.poll()))

    def _receive(self, deadline: float) -> dict:
        try:
            return read_message(self._replies, self._nonce, timeout=max(0.0, deadline - time.monotonic()))
        except ProtocolError as error:
            if str(error) == "timeout":
                self._fail("timeout", f"no answer within {self.limits.timeout_s:g} s")
            if str(error) == "end of stream":
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                self._fail("crashed", _exit_detail(self._process.poll()))
            self._fail("protocol", str(error))

    def _fail(self, kind: str, detail: str):
        self._kill()
        raise SandboxFailure(kind, detail)

    def call(self, request: dict) -> dict:
        """Send one call and return the child's reply (see :mod:`autograder.runner`).

        Starts the child first if none is running (the first call, or after a failure).

        Raises:
            SandboxFailure: on timeout, a crash (exit, kill, limit) or a malformed reply; the child
                is killed, and the next call starts a fresh one.
        """
        if self._process is None:
            self.start()
        request = {**request, "id": secrets.token_hex(4)}
        deadline = time.monotonic() + self.limits.timeout_s
        self._send(frame(self._nonce, request), deadline)
        reply = self._receive(deadline)
        if not isinstance(reply, dict) or reply.get("id") != request["id"]:
            self._fail("protocol", "a reply that does not answer the request")
        return reply

    def _read_output(self) -> str:
        try:
            with open(self._output_path, "rb") as file:
                data = file.read(4096)
        except (OSError, AttributeError):
            return ""
        return data.decode("utf-8", "replace")

    def printed_output(self) -> str:
        """The first 4 KB of what the student's code printed in the latest process."""
        return self._read_output()
