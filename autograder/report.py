"""Write grading results: Gradescope's ``results.json``, a Markdown report, a CSV gradebook.

``results.json`` follows Gradescope's specification: top-level ``score``, ``execution_time``,
``output`` and ``tests`` (each with ``name``, ``number``, ``score``, ``max_score``, ``status``
"passed"/"failed", ``output`` and ``visibility``); grading details go to ``extra_data``. Its
scores keep full precision (floats); the report, the gradebook and the command line show scores
rounded to 2 decimals (:func:`format_points`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from cs231n_style.notebook import ALL_STUDENT_FUNCTIONS

from .grader import GradingResult, TestResult
from .rubric import Rubric

__all__ = ["format_points", "failures_by_feedback", "results_json", "markdown_report", "write_results",
           "write_gradebook"]


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


def _summary(result: GradingResult, rubric: Rubric | None = None) -> str:
    """The submission-level text. With a ``rubric`` it is the students' view on Gradescope: while
    hidden tests are not shown to them, neither is a score that counts those tests."""
    hides_some = rubric is not None and rubric.hidden_visibility != "visible"
    shown_later = [t for t in result.tests if hides_some and t.spec.hidden]
    if shown_later:
        public = [t for t in result.tests if not t.spec.hidden]
        lines = [f"Score on the public tests: {format_points(sum(t.score for t in public))} / "
                 f"{format_points(sum(t.spec.points for t in public))}. The hidden tests "
                 f"({format_points(sum(t.spec.points for t in shown_later))} points) are graded too; their results "
                 f"are shown {rubric.hidden_visibility.replace('_', ' ')}."]
    else:
        lines = [f"Score: {format_points(result.score)} / {format_points(result.max_score)}."]
    if result.error:
        lines.append(f"Nothing could be graded: {result.error}.")
    if result.where:
        lines.append("Functions graded: " + ", ".join(f"{name} (from {nb})" for name, nb in result.where.items()) + ".")
    if result.printed.strip():
        lines.append("Your code printed (shown for your information, not graded):\n" + result.printed[:1000])
    return "\n".join(lines)


def results_json(result: GradingResult, rubric: Rubric) -> dict:
    """Gradescope's ``results.json`` content for one submission."""
    tests = []
    for index, test in enumerate(result.tests):
        tests.append({
            "name": test.spec.title,
            "number": _number(result, index),
            "score": test.score,
            "max_score": test.spec.points,
            "status": "passed" if test.passed else "failed",
            "output": test.feedback,
            "visibility": rubric.hidden_visibility if test.spec.hidden else rubric.public_visibility,
        })
    return {
        "score": result.score,
        "execution_time": round(result.execution_time, 3),
        "output": _summary(result, rubric),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"seed": str(result.seed), "sandbox": result.measures, "where": result.where,
                       "test_ids": [t.spec.id for t in result.tests]},
    }


def markdown_report(result: GradingResult) -> str:
    """A readable report: the score, a table of tests, then each failure's feedback."""
    lines = [f"# Grading report: {result.submission}", "", _summary(result).replace("\n", "\n\n"), "",
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
            lines += [f"### {', '.join(t.spec.id for t in tests)}", "", "```text", feedback, "```", ""]
    lines += ["", f"Graded in {result.execution_time:.1f} s; hidden inputs seed {result.seed}.",
              "Sandbox: " + "; ".join(result.measures) + "." if result.measures else ""]
    return "\n".join(lines).rstrip() + "\n"


def write_results(result: GradingResult, rubric: Rubric, out_dir: str | Path) -> Path:
    """Write ``results.json`` and ``report.md`` into ``out_dir`` (created); return the JSON path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps(results_json(result, rubric), indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_report(result))
    return path


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
            writer.writerow([result.submission, *(format_points(scores[i].score) if i in scores else "" for i in ids),
                             format_points(result.score), format_points(result.max_score),
                             f"not graded: {result.error}" if result.error else ""])
    return path
