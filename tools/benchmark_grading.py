"""Time the autograder: one submission, and a class of generated submissions serial vs parallel.

Usage::

    python tools/benchmark_grading.py                 # 1 submission + a class of 50, --jobs 1 vs all cores
    python tools/benchmark_grading.py --class-size 10

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class-size", type=int, default=50, help="submissions in the batch (default 50)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="parallel jobs (default: CPU cores)")
    args = parser.parse_args()
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
