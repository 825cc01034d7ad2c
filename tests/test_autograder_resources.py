"""The grader fits the platform it runs on, and leaves nothing behind however it ends (issue 18).

* Gradescope's default container: 768 MB and half a CPU. The grader is run as Gradescope runs it,
  ``python -m autograder grade`` in a fresh process, inside a cgroup of that size
  (``tools/container.py``; v2 or v1, whichever the machine has; skipped with the reason where none
  can be made): the solutions get full marks, a submission whose function allocates far more than
  the container loses that function only, and each ``results.json`` is valid.
* A grader killed mid-run (``SIGKILL``, as the OOM killer or ``timeout --kill-after`` do) leaves no
  cgroup, process or temporary folder: its reaper (``autograder/reaper.py``) removes them.

Times are not asserted (docs/benchmark.md has the table, from ``tools/benchmark_grading.py --container``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_autograder import notebook_with, solution_sources
from test_platform_gradescope import validated

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from container import Container  # noqa: E402

NO_CONTAINER = Container.available()
needs_container = pytest.mark.skipif(NO_CONTAINER is not None, reason=str(NO_CONTAINER))

MEMORY_HOG = '''def content_loss(content_weight, content_current, content_original):
    hog = [bytearray(64 << 20) for _ in range(64)]  # 4 GB, far over the container
    return content_weight * ((content_current - content_original) ** 2).sum() + len(hog) * 0
'''


def grade_in(box: Container, submission: Path, out: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return box.run([sys.executable, "-m", "autograder", "grade", str(submission), "--out", str(out)],
                   timeout=timeout, cwd=ROOT, capture_output=True, text=True)


def leftovers(since: set[str]) -> set[str]:
    """The sandbox cgroups and grader folders that exist now and did not before (``since``)."""
    found = {str(p) for p in Path("/sys/fs/cgroup").rglob("cs231n-sandbox-*")}
    found |= {str(p) for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("cs231n-grad*")}
    return found - since


@needs_container
@pytest.mark.slow
def test_the_solutions_and_a_memory_hog_are_graded_in_gradescopes_default_container(tmp_path):
    before = leftovers(set())
    with Container(memory_mb=768, cpus=0.5) as box:
        done = grade_in(box, ROOT / "solutions", tmp_path / "solutions")
        peak = box.peak_mb()
        assert done.returncode == 0, done.stderr[-3000:]
        results = validated(tmp_path / "solutions" / "results.json")
        assert results["score"] == 145, results.get("output")
        hog = notebook_with({**solution_sources(), "content_loss": MEMORY_HOG}, tmp_path / "hog.ipynb")
        done = grade_in(box, hog, tmp_path / "hog")
        assert done.returncode == 0, done.stderr[-3000:]
        results = validated(tmp_path / "hog" / "results.json")
    hog_tests = [t for t in results["tests"] if t["name"].startswith("content_loss")]
    assert results["score"] == 145 - sum(t["max_score"] for t in hog_tests)  # the others keep their points
    assert "memory limit" in hog_tests[0]["output"] and all(t["score"] == 0 for t in hog_tests), hog_tests[0]
    print(f"768 MB, 0.5 CPU: the solutions' grading peaked at {peak:.0f} MB")
    assert not leftovers(before)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the sandbox's cgroups and fresh uids")
def test_a_killed_grader_leaves_no_cgroup_process_or_folder(tmp_path):
    """SIGKILL the grader once its first student process runs; its reaper cleans up."""
    before = leftovers(set())
    slow = notebook_with({**solution_sources(), "content_loss": "def content_loss(w, a, b):\n"
                          "    import time\n    time.sleep(60)\n"}, tmp_path / "slow.ipynb")
    grader = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(slow), "--out", str(tmp_path / "out")],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not any("runner.py" in _cmdline(pid) for pid in _children(grader.pid)) and time.monotonic() < deadline:
        assert grader.poll() is None, "the grader ended before its sandbox started"
        time.sleep(0.5)
    made = leftovers(before)
    assert made, "the grader made no cgroup or folder to leave behind: nothing was tested"
    runners = [pid for pid in _all_pids() if "runner.py" in _cmdline(pid)]
    grader.send_signal(signal.SIGKILL)
    grader.wait()
    deadline = time.monotonic() + 30
    while (leftovers(before) or [p for p in runners if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not leftovers(before), f"left behind: {leftovers(before)}"
    assert not [p for p in runners if _alive(p)], "sandbox processes outlived the grader"


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    """``pid``'s descendants."""
    parents = {}
    for child in _all_pids():
        try:
            parents[child] = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [c for c, p in parents.items() if p == current]
        found += kids
        frontier += kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_reaper_removes_what_it_was_told_of_when_its_grader_dies(tmp_path):
    """The reaper alone: a process tracks a folder (and, as root, a cgroup with a sleeper in it) and is killed."""
    cgroup = ""
    if os.geteuid() == 0 and Path("/sys/fs/cgroup/pids").is_dir():
        cgroup = f"/sys/fs/cgroup/pids/cs231n-sandbox-test-{os.getpid()}"
    script = f'''
import os, subprocess, sys, time
sys.path.insert(0, {str(ROOT)!r})
from autograder import reaper
folder = reaper.private_tempdir()
assert reaper.private_tempdir() == folder  # once per process
open(os.path.join(folder, "x"), "w").write("x")
kept = {str(tmp_path / "kept")!r}
os.mkdir(kept); reaper.track("folder", kept); reaper.untrack("folder", kept)
if {cgroup!r}:
    os.mkdir({cgroup!r})
    sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
    open(os.path.join({cgroup!r}, "cgroup.procs"), "w").write(str(sleeper.pid))
    reaper.track("cgroup", {cgroup!r})
    print(sleeper.pid)
print(folder, flush=True)
time.sleep(600)
'''
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    lines = [process.stdout.readline().strip() for _ in range(2 if cgroup else 1)]
    folder = Path(lines[-1])
    assert folder.is_dir() and folder.name.startswith("cs231n-grading-") and (folder.stat().st_mode & 0o777) == 0o711
    process.kill()
    process.wait()
    deadline = time.monotonic() + 20
    while (folder.exists() or (cgroup and Path(cgroup).exists())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not folder.exists()
    assert (tmp_path / "kept").is_dir()  # untracked: the grader's to keep
    if cgroup:
        assert not Path(cgroup).exists() and not _alive(int(lines[0]))


def test_the_reaper_refuses_what_it_cannot_remove():
    from autograder import reaper

    with pytest.raises(ValueError, match="kind must be"):
        reaper.track("file", "/tmp/x")
    with pytest.raises(ValueError, match="no newline"):
        reaper.track("folder", "/tmp/a\nb")


def test_results_say_how_much_memory_to_ask_for_when_the_grader_is_killed(tmp_path):
    """run_autograder turns a grader killed before its time limit into words an instructor can act on."""
    root, venv = tmp_path / "autograder", tmp_path / "venv"
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"  # the grader killed by the OOM killer: exit status 137, no results.json
    fake.write_text("#!/bin/sh\ncase \"$*\" in *gradescope*) kill -9 $$ ;; esac\n"
                    f"exec {sys.executable} \"$@\"\n")
    fake.chmod(0o755)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_VENV": str(venv)}
    done = subprocess.run(["bash", str(ROOT / "autograder" / "gradescope" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0
    text = results["tests"][0]["output"]
    assert "memory" in text and "Gradescope" in text and "MB" in text, text
