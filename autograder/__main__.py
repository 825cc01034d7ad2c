"""The autograder's command line.

    python -m autograder grade SUBMISSION [--out DIR] [--seed N] [--rubric FILE]
    python -m autograder batch DIR --csv gradebook.csv [--jobs N] [--out DIR] [--seed N]
    python -m autograder gradescope-zip OUT.zip [--rubric FILE]
    python -m autograder release OUT_DIR
    python -m autograder gradescope [--root /autograder]      (what run_autograder calls)

A submission is a notebook, a folder of the course notebooks, or a .zip of them. In ``batch``,
each entry of DIR (a notebook, a folder or a .zip) is one submission. Every submission's hidden
inputs come from the same seed, the rubric's ``[grading] seed`` unless ``--seed`` is given.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path


def summary_lines(result, path: Path, width: int = 160) -> list[str]:
    """What ``grade`` prints: the score (2 decimals), then one line per failed test, its feedback's
    first line cut at a word boundary to about ``width`` characters (the report has it in full)."""
    from .report import format_points

    lines = [f"{result.submission}: {format_points(result.score)} / {format_points(result.max_score)} "
             f"in {result.execution_time:.1f} s -> {path} and {path.parent / 'report.md'}"]
    for test in result.tests:
        if not test.passed:
            first = (test.feedback.splitlines() or [""])[0]
            lines.append(f"  {test.spec.id}: {format_points(test.score)}/{format_points(test.spec.points)} "
                         + textwrap.shorten(first, width, placeholder=" ..."))
    return lines


def _grade(args) -> int:
    from .grader import grade_submission
    from .report import write_results
    from .rubric import load_rubric

    rubric = load_rubric(args.rubric)
    result = grade_submission(args.submission, rubric, seed=args.seed)
    path = write_results(result, rubric, args.out)
    print("\n".join(summary_lines(result, path)))
    return 0


def _batch(args) -> int:
    from .grader import grade_batch
    from .report import write_gradebook, write_results
    from .rubric import load_rubric

    rubric = load_rubric(args.rubric)
    folder = Path(args.folder)
    submissions = sorted(p for p in folder.iterdir() if p.is_dir() or p.suffix in (".ipynb", ".zip"))
    out = Path(args.out)

    def save(result):
        write_results(result, rubric, out / Path(result.submission).stem)

    results = grade_batch(submissions, rubric, jobs=args.jobs, on_result=save, seed=args.seed)
    write_gradebook(results, rubric, args.csv)
    print(f"graded {len(results)} submissions -> {args.csv}; reports in {out}/")
    return 0


def _gradescope_zip(args) -> int:
    from .packaging import build_gradescope_zip

    print(f"wrote {build_gradescope_zip(args.out, args.rubric)}")
    return 0


def _release(args) -> int:
    from .packaging import build_release

    print(f"wrote the student release to {build_release(args.out)}")
    return 0


def _gradescope(args) -> int:
    from .packaging import run_gradescope

    print(f"wrote {run_gradescope(args.root)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .rubric import DEFAULT_RUBRIC

    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade one submission (notebook, folder or .zip)")
    grade.add_argument("submission", help="a notebook, a folder of notebooks, or a .zip of them")
    grade.add_argument("--out", default="grading", help="folder for results.json and report.md (default: grading)")
    grade.add_argument("--seed", type=int, default=None,
                       help="seed of the hidden inputs (default: the rubric's [grading] seed)")
    grade.add_argument("--rubric", default=DEFAULT_RUBRIC, help="rubric file (default: autograder/rubric.toml)")
    grade.set_defaults(run=_grade)

    batch = commands.add_parser("batch", help="grade every submission in a folder, in parallel")
    batch.add_argument("folder", help="a folder whose entries are submissions")
    batch.add_argument("--csv", default="gradebook.csv", help="the gradebook to write (default: gradebook.csv)")
    batch.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPU cores)")
    batch.add_argument("--out", default="grading", help="folder for each submission's reports (default: grading)")
    batch.add_argument("--seed", type=int, default=None,
                       help="seed of the hidden inputs, the same for every submission (default: the rubric's)")
    batch.add_argument("--rubric", default=DEFAULT_RUBRIC, help="rubric file (default: autograder/rubric.toml)")
    batch.set_defaults(run=_batch)

    zip_ = commands.add_parser("gradescope-zip", help="build the Gradescope autograder zip")
    zip_.add_argument("out", help="the .zip to write")
    zip_.add_argument("--rubric", default=None, help="rubric file to ship (default: autograder/rubric.toml)")
    zip_.set_defaults(run=_gradescope_zip)

    release = commands.add_parser("release", help="build the student release (no solutions, no autograder)")
    release.add_argument("out", help="the folder to create")
    release.set_defaults(run=_release)

    gradescope = commands.add_parser("gradescope", help="grade ROOT/submission into ROOT/results (run_autograder)")
    gradescope.add_argument("--root", default=None, help="default: $AUTOGRADER_ROOT or /autograder")
    gradescope.set_defaults(run=_gradescope)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
