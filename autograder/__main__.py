"""The autograder's command line.

    python -m autograder grade SUBMISSION [--out DIR] [--seed N] [--rubric FILE]
    python -m autograder batch DIR --csv gradebook.csv [--jobs N] [--out DIR] [--seed N]
    python -m autograder gradebook RESULTS_DIR --csv gradebook.csv [--rubric FILE]
    python -m autograder gradescope-zip OUT.zip [--rubric FILE]
    python -m autograder release OUT_DIR
    python -m autograder gradescope [--root /autograder]      (what run_autograder calls)

A submission is a notebook, a folder of the course notebooks, or a .zip of them. In ``batch``,
each entry of DIR (a notebook, a folder or a .zip) is one submission. Every submission's hidden
inputs come from the same seed, the rubric's ``[grading] seed`` unless ``--seed`` is given.
``gradebook`` writes the CSV that ``batch`` writes from reports already made: one ``grade --out
RESULTS_DIR/NAME`` per submission (on a cluster, one per pod: docs/instructors.md), or ``batch``'s
``--out`` folder.

Exit status: 0 when graded; 1 when ``batch`` found no submission (``gradebook``: no report
folder); 2 for an instructor's input error (no such submission or folder, a bad or missing rubric,
an output path that cannot be written), printed as one ``error:`` line, before anything is graded
or written.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from .reaper import private_tempdir


def summary_lines(result, path: Path, width: int = 160) -> list[str]:
    """What ``grade`` prints: the score (2 decimals), then one line per failed test, its feedback's
    first line cut at a word boundary to about ``width`` characters (the report has it in full);
    tests that failed with the same first line share one line."""
    from .report import failures_by_feedback, format_points

    lines = [f"{result.submission}: {format_points(result.score)} / {format_points(result.max_score)} "
             f"in {result.execution_time:.1f} s -> {path} and {path.parent / 'report.md'}"]
    for first, tests in failures_by_feedback(result, first_line_only=True).items():
        if len(tests) == 1:
            label = f"{tests[0].spec.id}: {format_points(tests[0].score)}/{format_points(tests[0].spec.points)}"
        else:
            label = (f"{len(tests)} tests ({tests[0].spec.id} ... {tests[-1].spec.id}): "
                     f"{format_points(sum(t.score for t in tests))}/{format_points(sum(t.spec.points for t in tests))}")
        lines.append(f"  {label} " + textwrap.shorten(first, width, placeholder=" ..."))
    return lines


BATCH_LAYOUTS = """\
FOLDER holds one entry per student; the entry's name is the student's name in the gradebook
(its "submission" column), and its reports go to OUT/NAME-without-extension/:
  FOLDER/alice/        a folder of the student's notebooks (searched recursively)
  FOLDER/bob.zip       a .zip of the student's notebooks
  FOLDER/carol.ipynb   one notebook
Other files (a PDF, ...), symbolic links and hidden entries (.DS_Store, .ipynb_checkpoints) are
skipped, one line each; inside a submission, links and special files are never followed (its
feedback lists them). Each submission is read in a limited process and graded within the
rubric's [sandbox] submission_s seconds. Every submission gets the same hidden inputs (the
rubric's [grading] seed, unless --seed)."""


class InputError(Exception):
    """An instructor's input a command cannot use; :func:`main` prints it as one ``error:`` line, exit 2."""


def _load_rubric(path):
    """The rubric at ``path``; a missing, unreadable or invalid file raises :class:`InputError`."""
    from .rubric import RubricError, load_rubric

    try:
        return load_rubric(path)
    except FileNotFoundError:
        raise InputError(f"rubric file not found: {path} (--rubric takes a TOML file like "
                         "autograder/rubric.toml)") from None
    except OSError as error:
        raise InputError(f"cannot read the rubric {path}: {error.strerror}") from None
    except RubricError as error:
        raise InputError(f"invalid rubric: {error}") from None


def _check_output(path, option: str, folder: bool) -> None:
    """Refuse, before any grading, an output ``path`` (a folder or a file) that cannot be created.

    Raises:
        InputError: naming ``option`` and what is in the way.
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file: give a folder for the reports")
    if not folder and path.is_dir():
        raise InputError(f"{option} {path} is a folder: give the name of the .csv file to write")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{option} {path} cannot be created: {parent} is a file, not a folder")


def _folder(path, takes: str) -> Path:
    """``path``, an existing folder; else :class:`InputError` saying what is wrong and what the command ``takes``."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}; {takes}")
    return folder


def _integer(minimum: int):
    """An argparse type: an integer >= ``minimum`` (else argparse's usage error, naming the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, not {text!r}")
        return value

    return parse


def _grade(args) -> int:
    private_tempdir()  # all its temporary folders in one, removed even if the grader is killed
    from .grader import grade_submission
    from .report import write_results
    from .submission import submission_problem

    problem = submission_problem(args.submission)
    if problem:
        raise InputError(f"{args.submission}: {problem}; grade takes a student's notebook (.ipynb), "
                         "their folder of notebooks, or a .zip of them")
    _check_output(args.out, "--out", folder=True)
    rubric = _load_rubric(args.rubric)
    result = grade_submission(args.submission, rubric, seed=args.seed)
    path = write_results(result, rubric, args.out)
    print("\n".join(summary_lines(result, path)))
    return 0


def _batch(args) -> int:
    private_tempdir()  # all its temporary folders in one, removed even if the grader is killed
    from .grader import grade_batch
    from .report import write_gradebook, write_results
    from .submission import list_submissions

    folder = _folder(args.folder, "batch takes a folder with one submission per student (grade takes a single "
                                  "submission)")
    rubric = _load_rubric(args.rubric)
    _check_output(args.out, "--out", folder=True)
    _check_output(args.csv, "--csv", folder=False)
    try:
        submissions, skipped = list_submissions(folder)
    except OSError as error:
        raise InputError(f"cannot read the folder {folder}: {error.strerror}") from None
    for name, why in skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    if not submissions:
        print(f"warning: no submissions found in {folder}: it needs one entry per student, a folder of "
              "notebooks, a .zip of them or a .ipynb (see batch --help); nothing graded, no gradebook "
              "written", file=sys.stderr)
        return 1
    stems: dict[str, list[str]] = {}
    for submission in submissions:
        stems.setdefault(submission.stem, []).append(submission.name)
    clashes = [names for names in stems.values() if len(names) > 1]
    if clashes:  # their reports would go to the same folder, one overwriting the other
        raise InputError(f"two entries of {folder} would be the same student: "
                         + "; ".join(" and ".join(names) for names in clashes)
                         + ". Keep one per student (rename or move the other).")
    out = Path(args.out)

    def save(result):
        write_results(result, rubric, out / Path(result.submission).stem)

    results = grade_batch(submissions, rubric, jobs=args.jobs, on_result=save, seed=args.seed)
    write_gradebook(results, rubric, args.csv)
    print(f"graded {len(results)} submissions -> {args.csv}; reports in {out}/")
    return 0


def _gradebook(args) -> int:
    from .grader import _not_run
    from .report import read_results, write_gradebook

    folder = _folder(args.folder, "gradebook takes the folder of the reports, one NAME/results.json per submission")
    rubric = _load_rubric(args.rubric)
    _check_output(args.csv, "--csv", folder=False)
    try:
        entries = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as error:
        raise InputError(f"cannot read the folder {folder}: {error.strerror}") from None
    results = []
    for entry in entries:
        try:
            results.append(read_results(entry / "results.json", rubric))
        except (OSError, ValueError) as error:
            why = ("no results.json: its grading did not finish" if isinstance(error, FileNotFoundError)
                   else f"its results.json cannot be used: {getattr(error, 'strerror', None) or error}")
            print(f"{entry.name}: {why}", file=sys.stderr)
            results.append(_not_run(rubric, entry.name, why, error=why))
    if not results:
        print(f"warning: no report folders in {folder} (one NAME/results.json per submission, as "
              "grade --out FOLDER/NAME writes them); no gradebook written", file=sys.stderr)
        return 1
    write_gradebook(results, rubric, args.csv)
    print(f"collected {len(results)} submissions ({sum(bool(r.error) for r in results)} not graded) -> {args.csv}")
    return 0


def _gradescope_zip(args) -> int:
    from .packaging import build_gradescope_zip

    if args.rubric is not None:
        _load_rubric(args.rubric)  # never ship a rubric that would fail every student's grading
    print(f"wrote {build_gradescope_zip(args.out, args.rubric)}")
    return 0


def _release(args) -> int:
    from .packaging import build_release

    try:
        print(f"wrote the student release to {build_release(args.out)}")
    except FileExistsError:
        raise InputError(f"{args.out} already exists: give a new folder for the release") from None
    return 0


def _gradescope(args) -> int:
    private_tempdir()  # all its temporary folders in one, removed even if the grader is killed
    from .packaging import run_gradescope

    print(f"wrote {run_gradescope(args.root)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 done, 1 ``batch`` found no submission, 2 an input error (one ``error:``
        line on stderr; nothing graded or written). ``gradescope`` is left as it is: an error
        there is a traceback for the Gradescope log, and ``run_autograder`` then writes a
        results.json that names it (``autograder/gradescope/run_autograder``).
    """
    from .reference import MissingReference
    from .rubric import DEFAULT_RUBRIC

    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade one submission (notebook, folder or .zip)")
    grade.add_argument("submission", help="a notebook, a folder of notebooks, or a .zip of them")
    grade.add_argument("--out", default="grading", help="folder for results.json and report.md (default: grading)")
    grade.add_argument("--seed", type=_integer(0), default=None,
                       help="seed of the hidden inputs (default: the rubric's [grading] seed)")
    grade.add_argument("--rubric", default=DEFAULT_RUBRIC, help="rubric file (default: autograder/rubric.toml)")
    grade.set_defaults(run=_grade)

    batch = commands.add_parser("batch", help="grade every submission in a folder, in parallel",
                                description="Grade every submission in FOLDER, in parallel; write a gradebook\n"
                                            "and each submission's results.json and report.md.",
                                epilog=BATCH_LAYOUTS, formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("folder", metavar="FOLDER",
                       help="one entry per student: a folder of notebooks, a .zip of them or a .ipynb (see below)")
    batch.add_argument("--csv", default="gradebook.csv", help="the gradebook to write (default: gradebook.csv)")
    batch.add_argument("--jobs", type=_integer(1), default=None, help="submissions graded at once (default: CPU cores)")
    batch.add_argument("--out", default="grading", help="folder for each submission's reports (default: grading)")
    batch.add_argument("--seed", type=_integer(0), default=None,
                       help="seed of the hidden inputs, the same for every submission (default: the rubric's)")
    batch.add_argument("--rubric", default=DEFAULT_RUBRIC, help="rubric file (default: autograder/rubric.toml)")
    batch.set_defaults(run=_batch)

    book = commands.add_parser("gradebook", help="the gradebook CSV of submissions graded apart (grade --out DIR/NAME)",
                               description="Write the CSV gradebook that batch writes, from the reports in "
                                           "FOLDER: one row per FOLDER/NAME/results.json.",
                               epilog="A subfolder without a usable results.json (its grading did not finish, or "
                                      "another rubric) gets a row scored 0 whose note says why.")
    book.add_argument("folder", metavar="FOLDER", help="the folder of the reports: FOLDER/NAME/results.json")
    book.add_argument("--csv", default="gradebook.csv", help="the gradebook to write (default: gradebook.csv)")
    book.add_argument("--rubric", default=DEFAULT_RUBRIC,
                      help="the rubric they were graded with (default: autograder/rubric.toml)")
    book.set_defaults(run=_gradebook)

    zip_ = commands.add_parser("gradescope-zip", help="build the Gradescope autograder zip")
    zip_.add_argument("out", help="the .zip to write")
    zip_.add_argument("--rubric", default=None, help="rubric file to ship (default: autograder/rubric.toml)")
    zip_.set_defaults(run=_gradescope_zip)

    release = commands.add_parser("release", help="build the student release (no solutions, no autograder)")
    release.add_argument("out", help="the folder to create")
    release.set_defaults(run=_release)

    gradescope = commands.add_parser("gradescope", help="grade ROOT/submission into ROOT/results "
                                     "(what Gradescope's run_autograder runs)")
    gradescope.add_argument("--root", default=None, help="default: $AUTOGRADER_ROOT or /autograder")
    gradescope.set_defaults(run=_gradescope)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (InputError, MissingReference) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
