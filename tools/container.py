"""A container-sized cgroup for tests and benchmarks: a memory limit and a CPU quota, as a platform gives.

Gradescope runs an autograder in a container of 768 MB and half a CPU unless the instructor asks for
more; to prove the grader fits, it is run here inside a cgroup of that size (``Container(768, 0.5)``):
cgroup v2 (``memory.max``, ``memory.swap.max``, ``cpu.max``, ``memory.peak``) where its memory and cpu
controllers can be used, else cgroup v1's ``memory`` and ``cpu`` hierarchies
(``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``, ``cpu.cfs_quota_us``,
``memory.max_usage_in_bytes``). The memory counted is the whole tree's, page cache included, as the
platform counts it. Needs root; :func:`Container.available` says why not where it cannot be made.

Usage::

    with Container(memory_mb=768, cpus=0.5) as box:
        done = box.run([sys.executable, "-m", "autograder", "grade", ...], timeout=600)
        print(box.peak_mb(), done.returncode, box.oom_kills())
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from autograder.reaper import remove_cgroup
from autograder.sandbox import _read, _write

__all__ = ["Container"]

#: Where cgroup v2 is mounted, or v1's hierarchies (memory/, cpu/).
CGROUP_ROOT = Path("/sys/fs/cgroup")


class Container:
    """One cgroup (v2) or a pair of them (v1 memory and cpu) with a memory limit and a CPU quota.

    Args:
        memory_mb: the memory limit of everything inside (MiB), swap off.
        cpus: the CPU quota, in CPUs (0.5: 50 ms of every 100 ms).

    Raises:
        OSError: on entering, if no cgroup can be made here (not root, read-only, no controller);
            :meth:`available` says the same without raising.
    """

    def __init__(self, memory_mb: int, cpus: float):
        self.memory_bytes, self.cpus = int(memory_mb) << 20, float(cpus)
        self.name = f"cs231n-container-{secrets.token_hex(4)}"
        self.version = 2 if (CGROUP_ROOT / "cgroup.controllers").is_file() else 1
        self.groups: list[Path] = []

    @staticmethod
    def available() -> str | None:
        """``None`` where a container can be made here, else why not (for a test's skip reason)."""
        try:
            with Container(64, 1.0):
                return None
        except OSError as error:
            return f"no container-sized cgroup here: {error}"

    def __enter__(self) -> Container:
        if os.geteuid() != 0:
            raise OSError("making a cgroup needs root")
        if self.version == 2:
            _write(CGROUP_ROOT / "cgroup.subtree_control", "+memory +cpu")
            group = CGROUP_ROOT / self.name
            group.mkdir()
            self.groups = [group]
            ok = (_write(group / "memory.max", str(self.memory_bytes)) and _write(group / "memory.swap.max", "0")
                  and _write(group / "cpu.max", f"{int(self.cpus * 100_000)} 100000"))
        else:
            self.groups = [CGROUP_ROOT / "memory" / self.name, CGROUP_ROOT / "cpu" / self.name]
            for group in self.groups:
                group.mkdir()
            memory, cpu = self.groups
            ok = _write(memory / "memory.limit_in_bytes", str(self.memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():
                ok = ok and _write(memory / "memory.memsw.limit_in_bytes", str(self.memory_bytes))
            ok = ok and _write(cpu / "cpu.cfs_period_us", "100000") and \
                _write(cpu / "cpu.cfs_quota_us", str(int(self.cpus * 100_000)))
        if not ok:
            self.__exit__(None, None, None)
            raise OSError(f"could not set the limits of the cgroup {self.name} (cgroup v{self.version})")
        return self

    def __exit__(self, *exc) -> None:
        """Kill whatever is left inside (children's own cgroups included) and remove the groups."""
        for group in self.groups:
            remove_cgroup(group)

    def _join(self) -> None:
        """In the child, before exec: move this process into the groups."""
        for group in self.groups:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    def run(self, command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
        """Run ``command`` inside the container (its children too); like ``subprocess.run``.

        Raises:
            subprocess.TimeoutExpired: after ``timeout`` seconds (the process is killed first).
        """
        return subprocess.run(command, preexec_fn=self._join, timeout=timeout, **kwargs)

    def popen(self, command: list[str], **kwargs) -> subprocess.Popen:
        """Start ``command`` inside the container; like ``subprocess.Popen``."""
        return subprocess.Popen(command, preexec_fn=self._join, **kwargs)

    def _memory_group(self) -> Path:
        return self.groups[0]

    def peak_mb(self) -> float | None:
        """The most memory the container's processes used together (MiB, page cache included)."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        text = _read(self._memory_group() / name).strip()
        return int(text) / (1 << 20) if text.isdigit() else None

    def oom_kills(self) -> int:
        """How many processes the kernel killed inside for lack of memory (the grader's children's
        own groups included)."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        total = 0
        for path in self._memory_group().rglob(name):  # its own file and its sub-groups'
            for line in _read(path).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    total += int(value)
        return total
