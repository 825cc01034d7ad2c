"""Time the autograder: one submission, and a class of generated submissions serial vs parallel.

Usage::

    python tools/benchmark_grading.py                 # 1 submission + a class of 50, --jobs 1 vs all cores
    python tools/benchmark_grading.py --class-size 10
    python tools/benchmark_grading.py --container     # as root: one grading per platform-sized cgroup

``--container`` runs ``python -m autograder grade solutions/`` as Gradescope does, in a fresh process
inside a cgroup with Gradescope's default memory (768 MB) and half a CPU or one CPU
(``tools/container.py``), and prints the whole tree's peak memory (page cache included), the time
and the score: the table of docs/benchmark.md ("Grading in Gradescope's default container").

The class is generated from the solution notebooks: every fifth submission is correct, the others
each have one typical mistake (mean instead of sum, a missing weight, ...) or a stub left in.
Timings are printed, not asserted (tests stay untimed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from autograder.grader import grade_batch, grade_submission  # noqa: E402
from autograder.rubric import load_rubric  # noqa: E402

MISTAKES = [
    ("torch.sum((content_current - content_original) ** 2)", "torch.mean((content_current - content_original) ** 2)"),
    ("return tv_weight * (vertical + horizontal)", "return vertical + horizontal"),
    ("return gram / (c * h * w) if normalize else gram", "return gram"),
    ("loss = loss + weight * torch.sum(", "loss = weight * torch.sum("),
]
GRADED = ["01_content_loss.ipynb", "02_style_loss.ipynb", "03_tv_loss.ipynb"]


def make_class(folder: Path, size: int) -> list[Path]:
    """``size`` submission folders under ``folder``, made from the solution notebooks."""
    out = []
    for index in range(size):
        target = folder / f"student{index:03d}"
        target.mkdir()
        for name in GRADED:
            nb = nbformat.read(ROOT / "solutions" / name, as_version=4)
            if index % 5:
                old, new = MISTAKES[index % len(MISTAKES)]
                for cell in nb.cells:
                    cell.source = cell.source.replace(old, new)
            nbformat.write(nb, target / name)
        out.append(target)
    return out


#: (memory MB, CPUs) of each --container row: Gradescope's default container, at 1 and 0.5 CPU, and
#: without a memory limit that matters (the peak it would need).
CONTAINERS = [(4096, 1.0), (768, 1.0), (768, 0.5)]


def grade_in_container(memory_mb: int, cpus: float, submission: Path = ROOT / "solutions") -> dict:
    """Grade ``submission`` with ``python -m autograder grade`` inside a container-sized cgroup.

    Returns:
        ``{"memory_mb", "cpus", "peak_mb", "seconds", "score", "oom_kills", "returncode"}``; ``score``
        is results.json's ``score`` (``None`` if there is none).
    """
    import json

    from container import Container

    out = Path(tempfile.mkdtemp(prefix="cs231n-bench-"))
    try:
        with Container(memory_mb, cpus) as box:
            start = time.perf_counter()
            done = box.run([sys.executable, "-m", "autograder", "grade", str(submission), "--out", str(out)],
                           timeout=1800, cwd=ROOT, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            results = out / "results.json"
            score = json.loads(results.read_text())["score"] if results.is_file() else None
            return {"memory_mb": memory_mb, "cpus": cpus, "peak_mb": box.peak_mb(), "seconds": seconds,
                    "score": score, "oom_kills": box.oom_kills(), "returncode": done.returncode}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def container_table() -> None:
    """Print one row per :data:`CONTAINERS` entry (markdown)."""
    print("| container | peak memory (tree, page cache included) | time | score | OOM kills |")
    print("|---|---:|---:|---:|---:|")
    for memory_mb, cpus in CONTAINERS:
        row = grade_in_container(memory_mb, cpus)
        print(f"| {memory_mb} MB, {cpus:g} CPU | {row['peak_mb']:.0f} MB | {row['seconds']:.0f} s | "
              f"{row['score']} | {row['oom_kills']} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class-size", type=int, default=50, help="submissions in the batch (default 50)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="parallel jobs (default: CPU cores)")
    parser.add_argument("--container", action="store_true",
                        help="as root: grade the solutions in Gradescope-sized cgroups and print the table")
    args = parser.parse_args()
    if args.container:
        container_table()
        return 0
    rubric = load_rubric()
    start = time.perf_counter()
    result = grade_submission(ROOT / "solutions", rubric, seed=0)
    print(f"one submission (solutions/): {result.score:g}/{result.max_score:g} in {time.perf_counter() - start:.1f} s "
          f"(grading alone {result.execution_time:.1f} s)")
    folder = Path(tempfile.mkdtemp(prefix="cs231n-class-"))
    try:
        submissions = make_class(folder, args.class_size)
        for jobs in (1, args.jobs):
            start = time.perf_counter()
            results = grade_batch(submissions, rubric, jobs=jobs, progress=False, seed=0)
            elapsed = time.perf_counter() - start
            mean = sum(r.score for r in results) / len(results)
            print(f"{len(results)} submissions, --jobs {jobs}: {elapsed:.1f} s ({elapsed / len(results):.2f} s each), "
                  f"mean score {mean:.1f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
