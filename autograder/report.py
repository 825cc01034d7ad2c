"""Write grading results: Gradescope's ``results.json``, a Markdown report, a CSV gradebook.

``results.json`` follows Gradescope's specification: top-level ``score``, ``execution_time``,
``output`` and ``tests`` (each with ``name``, ``number``, ``score``, ``max_score``, ``status``
"passed"/"failed", ``output`` and ``visibility``); grading details go to ``extra_data``. Its
scores keep full precision (floats); the report, the gradebook and the command line show scores
rounded to 2 decimals (:func:`format_points`).

What the student's code printed is shown to students with the tests it was printed in: a test's
part goes into the summary when the test is visible, else into that test's own output, shown when
the test is (hidden tests, whose inputs a student's function may print, after the due date).

Every text that comes from the student's code - feedback quoting it, printed output, notebook
names, why nothing could be graded - is clipped (:func:`cs231n_style.diagnosis.clip`) to
:data:`OUTPUT_LIMIT` characters, names to :data:`NAME_LIMIT`, and ``results.json`` and ``report.md``
to :data:`MAX_BYTES` each (shorter limits until they fit), whatever the student's code did.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from cs231n_style.diagnosis import clip
from cs231n_style.notebook import ALL_STUDENT_FUNCTIONS

from .grader import GradingResult, TestResult
from .rubric import Rubric

__all__ = [
    "failures_by_feedback",
    "format_points",
    "markdown_report",
    "read_results",
    "results_json",
    "write_gradebook",
    "write_results",
]


#: Longest text of one output (a test's feedback, its printed output, the reason nothing was graded),
#: and of a name (a submission, a notebook), in characters.
OUTPUT_LIMIT, NAME_LIMIT = 8000, 200
#: Longest printed output quoted in the summary, in characters.
PRINTED_LIMIT = 1000
#: Largest ``results.json`` and ``report.md``, in bytes.
MAX_BYTES = 1 << 20
_PRINTED = "Your code printed{} (shown for your information, not graded):\n"


def format_points(value: float) -> str:
    """A score as people read it: rounded to 2 decimals, no trailing zeros (``82.08``, ``100``)."""
    return f"{round(float(value), 2):g}"


def _number(result: GradingResult, index: int) -> str:
    spec = result.tests[index].spec
    group = ALL_STUDENT_FUNCTIONS.index(spec.function) + 1
    within = sum(1 for t in result.tests[:index + 1] if t.spec.function == spec.function)
    return f"{group}.{within}"


def failures_by_feedback(result: GradingResult, first_line_only: bool = False) -> dict[str, list[TestResult]]:
    """The failed tests grouped by their feedback, so that a message many tests share (a stub, a
    missing notebook) is shown once.

    Args:
        result: a graded submission.
        first_line_only: group by the feedback's first line instead of the whole text.

    Returns:
        Feedback (or its first line) -> the failed :class:`TestResult` s that gave it; groups and
        the tests in each are in rubric order. Empty when every test passed.
    """
    groups: dict[str, list[TestResult]] = {}
    for test in result.tests:
        if not test.passed:
            key = (test.feedback.splitlines() or [""])[0] if first_line_only else test.feedback
            groups.setdefault(key, []).append(test)
    return groups


def _visibility(test: TestResult, rubric: Rubric) -> str:
    return rubric.hidden_visibility if test.spec.hidden else rubric.public_visibility


def _summary(result: GradingResult, rubric: Rubric | None = None, limit: int = OUTPUT_LIMIT) -> str:
    """The submission-level text. With a ``rubric`` it is the students' view on Gradescope: while
    hidden tests are not shown to them, neither is a score that counts those tests, nor what their
    code printed during them (it goes with each test: :func:`results_json`)."""
    hides_some = rubric is not None and rubric.hidden_visibility != "visible"
    shown_later = [t for t in result.tests if hides_some and t.spec.hidden]
    if shown_later and rubric is not None:  # (it is: shown_later needs hides_some)
        public = [t for t in result.tests if not t.spec.hidden]
        lines = [f"Score on the public tests: {format_points(sum(t.score for t in public))} / "
                 f"{format_points(sum(t.spec.points for t in public))}. The hidden tests "
                 f"({format_points(sum(t.spec.points for t in shown_later))} points) are graded too; their results "
                 f"are shown {rubric.hidden_visibility.replace('_', ' ')}."]
    else:
        lines = [f"Score: {format_points(result.score)} / {format_points(result.max_score)}."]
    if result.error:
        lines.append(f"Nothing could be graded: {clip(result.error, limit)}.")
    if result.where:
        lines.append("Functions graded: " + ", ".join(f"{name} (from {clip(nb, NAME_LIMIT)})"
                                                      for name, nb in result.where.items()) + ".")
    if result.skipped:
        lines.append("Not read (links and special files are never followed; submit plain files): "
                     + clip("; ".join(result.skipped), limit) + ".")
    printed = result.printed
    if rubric is not None and any(_visibility(t, rubric) != "visible" for t in result.tests):
        printed = "".join(t.printed for t in result.tests if _visibility(t, rubric) == "visible")
    if printed.strip():
        lines.append(_PRINTED.format("") + clip(printed, min(PRINTED_LIMIT, limit)))
    return "\n".join(lines)


_Made = TypeVar("_Made", dict, str)  # what _fitted fits: results.json's content, or a report's text


def _fitted(make: Callable[[int], _Made], size: Callable[[_Made], int]) -> _Made:
    """``make(limit)`` for the longest text limit - :data:`OUTPUT_LIMIT`, then a quarter of it, and so
    on down to 100 characters - whose ``size`` in bytes is at most :data:`MAX_BYTES`."""
    limit = OUTPUT_LIMIT
    made = make(limit)
    while limit > 100 and size(made) > MAX_BYTES:
        limit //= 4
        made = make(limit)
    return made


def results_json(result: GradingResult, rubric: Rubric) -> dict:
    """Gradescope's ``results.json`` content for one submission, at most :data:`MAX_BYTES` as JSON.

    A test's output is its feedback, followed by what the student's code printed during it when
    the test is not visible now (a hidden test's inputs may be in it); the printed output of the
    visible tests is in the summary (``output``).
    """
    return _fitted(lambda limit: _results_json(result, rubric, limit), lambda made: len(_dump(made).encode()))


def _dump(results: dict) -> str:
    return json.dumps(results, indent=2) + "\n"


def _results_json(result: GradingResult, rubric: Rubric, limit: int) -> dict:
    tests = []
    for index, test in enumerate(result.tests):
        visibility = _visibility(test, rubric)
        output = clip(test.feedback, limit)
        if visibility != "visible" and test.printed.strip():
            output += "\n\n" + _PRINTED.format(" during this test") + clip(test.printed, limit)
        tests.append({
            "name": test.spec.title,
            "number": _number(result, index),
            "score": test.score,
            "max_score": test.spec.points,
            "status": "passed" if test.passed else "failed",
            "output": output,
            "visibility": visibility,
        })
    return {
        "score": result.score,
        "execution_time": round(result.execution_time, 3),
        "output": _summary(result, rubric, limit),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"seed": str(result.seed), "sandbox": result.measures,
                       "where": {name: clip(nb, NAME_LIMIT) for name, nb in result.where.items()},
                       "test_ids": [t.spec.id for t in result.tests],
                       "submission": clip(result.submission, NAME_LIMIT), "error": clip(result.error, limit)},
    }


def markdown_report(result: GradingResult) -> str:
    """A readable report: the score, a table of tests, then each failure's feedback; at most
    :data:`MAX_BYTES` in UTF-8. It is the instructor's: hidden tests and all printed output included."""
    return _fitted(lambda limit: _markdown_report(result, limit), lambda made: len(made.encode()))


def _markdown_report(result: GradingResult, limit: int) -> str:
    lines = [f"# Grading report: {clip(result.submission, NAME_LIMIT)}", "",
             _summary(result, limit=limit).replace("\n", "\n\n"), "",
             "| # | test | score | status |", "| --- | --- | --- | --- |"]
    for index, test in enumerate(result.tests):
        status = "passed" if test.passed else "failed"
        hidden = " (hidden)" if test.spec.hidden else ""
        score = f"{format_points(test.score)} / {format_points(test.spec.points)}"
        lines.append(f"| {_number(result, index)} | {test.spec.title}{hidden} | {score} | {status} |")
    failures = failures_by_feedback(result)
    if failures:
        lines += ["", "## Feedback", ""]
        for feedback, tests in failures.items():
            lines += [f"### {', '.join(t.spec.id for t in tests)}", "", "```text", clip(feedback, limit), "```", ""]
    lines += ["", f"Graded in {result.execution_time:.1f} s; hidden inputs seed {result.seed}.",
              "Sandbox: " + "; ".join(result.measures) + "." if result.measures else ""]
    return "\n".join(lines).rstrip() + "\n"


def write_results(result: GradingResult, rubric: Rubric, out_dir: str | Path) -> Path:
    """Write ``results.json`` and ``report.md`` into ``out_dir`` (created); return the JSON path.

    Each file is at most :data:`MAX_BYTES` (see :func:`results_json`, :func:`markdown_report`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(_dump(results_json(result, rubric)))
    (out_dir / "report.md").write_text(markdown_report(result))
    return path


def read_results(path: str | Path, rubric: Rubric) -> GradingResult:
    """The scores of a ``results.json`` written by :func:`write_results`, back as a
    :class:`GradingResult` for :func:`write_gradebook` (``python -m autograder gradebook``: the
    gradebook of submissions graded apart, one per pod or machine). Feedback and printed output are
    not read back.

    Raises:
        OSError: if it cannot be read.
        ValueError: if it is not such a file (not JSON, no ``extra_data.test_ids``), or was graded
            with another rubric (a test id it lacks, other points).
    """
    try:
        data = json.loads(Path(path).read_text())
        extra = data["extra_data"]
        seed, measures, error = int(extra["seed"]), list(extra["sandbox"]), str(extra.get("error", ""))
        graded = [(test_id, test["max_score"], float(test["score"]), str(test.get("output", "")))
                  for test_id, test in zip(extra["test_ids"], data["tests"], strict=True)]
    except (ValueError, KeyError, TypeError, AttributeError) as problem:
        raise ValueError(f"not a results.json of this autograder ({type(problem).__name__}: {problem})") from None
    specs = {spec.id: spec for spec in rubric.tests}
    tests = []
    for test_id, points, score, output in graded:
        spec = specs.get(test_id)
        if spec is None or points != spec.points:
            raise ValueError(f"graded with another rubric: its test {test_id!r} is "
                             + ("not in this rubric" if spec is None else
                                f"worth {points}, not {format_points(spec.points)}"))
        tests.append(TestResult(spec, score, output))
    return GradingResult(str(extra.get("submission") or Path(path).parent.name), tests,
                         float(data.get("execution_time", 0)), seed, measures, error=error)


def write_gradebook(results: Iterable[GradingResult], rubric: Rubric, path: str | Path) -> Path:
    """A CSV gradebook: one row per submission, one column per test id, then the total, the
    maximum, and a note saying why a submission could not be graded at all (empty otherwise), so
    that such a 0 is not mistaken for a graded one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = [spec.id for spec in rubric.tests]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["submission", *ids, "total", "max_score", "note"])
        for result in results:
            scores = result.by_id()
            writer.writerow([clip(result.submission, NAME_LIMIT),
                             *(format_points(scores[i].score) if i in scores else "" for i in ids),
                             format_points(result.score), format_points(result.max_score),
                             f"not graded: {clip(result.error, OUTPUT_LIMIT)}" if result.error else ""])
    return path
