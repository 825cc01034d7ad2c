"""The autograder end to end: solutions score full marks, stubs zero, one wrong function costs only
its own points with the notebook checks' diagnosis; reports validate; the Gradescope zip runs on a
fake /autograder layout; the student release holds no solution code.

Hostile submissions are in tests/test_autograder_sandbox.py. Gradings start a sandboxed process
each (a few seconds), so the gradings are shared by module-scoped fixtures.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest

from autograder.grader import grade_submission
from autograder.packaging import build_gradescope_zip, build_release, solution_lines, solution_lines_in
from autograder.report import markdown_report, results_json
from autograder.rubric import RubricError, load_rubric
from autograder.submission import collect_notebooks, find_student_code
from cs231n_style.notebook import STUDENT_FUNCTIONS, extract_functions

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
GRADED = ["01_content_loss.ipynb", "02_style_loss.ipynb", "03_tv_loss.ipynb"]

# Gradescope's results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/)
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["score", "execution_time", "tests"],
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "number", "score", "max_score", "status", "output", "visibility"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "number": {"type": "string", "pattern": r"^\d+\.\d+$"},
                    "score": {"type": "number", "minimum": 0},
                    "max_score": {"type": "number", "minimum": 0},
                    "status": {"enum": ["passed", "failed"]},
                    "output": {"type": "string"},
                    "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
                },
            },
        },
    },
}


def notebook_with(functions: dict[str, str], path: Path, tagged: bool = True) -> Path:
    """Write a notebook with an import cell and one tagged solution cell per function source."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import torch\nimport cs231n_style as cs"))
    for source in functions.values():
        cell = nbformat.v4.new_code_cell(source)
        if tagged:
            cell.metadata["cs231n_style"] = {"role": "solution"}
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def solution_sources() -> dict[str, str]:
    """The reference functions' sources, taken from the solution notebooks (no copy in the tests)."""
    return find_student_code(sorted(SOLUTIONS.glob("*.ipynb"))).code.functions


def scores_by_function(result) -> dict[str, float]:
    out = dict.fromkeys(STUDENT_FUNCTIONS, 0.0)
    for test in result.tests:
        out[test.spec.function] += test.score
    return out


def points_by_function(rubric) -> dict[str, float]:
    out = dict.fromkeys(STUDENT_FUNCTIONS, 0.0)
    for spec in rubric.tests:
        out[spec.function] += spec.points
    return out


@pytest.fixture(scope="module")
def rubric():
    return load_rubric()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The CLI's batch mode on two submissions: the solutions (a folder) and the stubs (a .zip)."""
    folder = tmp_path_factory.mktemp("class")
    (folder / "solved").mkdir()
    for name in GRADED:
        shutil.copyfile(SOLUTIONS / name, folder / "solved" / name)
    with zipfile.ZipFile(folder / "untouched.zip", "w") as zf:
        for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
            zf.write(path, f"my-work/{path.name}")
    out, gradebook = tmp_path_factory.mktemp("out"), folder.parent / "gradebook.csv"
    done = subprocess.run([sys.executable, "-m", "autograder", "batch", str(folder), "--csv", str(gradebook),
                           "--jobs", "2", "--out", str(out), "--seed", "7"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {row["submission"]: row for row in csv.DictReader(gradebook.open())}
    return out, rows


def test_solutions_score_full_marks(batch, rubric):
    out, rows = batch
    results = json.loads((out / "solved" / "results.json").read_text())
    assert results["score"] == rubric.max_score == 100
    assert all(test["status"] == "passed" for test in results["tests"])
    assert float(rows["solved"]["total"]) == 100


def test_untouched_student_notebooks_score_zero_with_not_implemented(batch):
    out, rows = batch
    results = json.loads((out / "untouched" / "results.json").read_text())
    assert results["score"] == 0 and float(rows["untouched.zip"]["total"]) == 0
    for test in results["tests"]:
        assert test["status"] == "failed"
        assert "NOT IMPLEMENTED YET" in test["output"], test


def test_gradebook_has_a_column_per_test_and_a_total(batch, rubric):
    _, rows = batch
    assert set(rows) == {"solved", "untouched.zip"}
    assert list(rows["solved"]) == ["submission", *(s.id for s in rubric.tests), "total", "max_score"]


def test_results_json_validates_and_hidden_tests_show_after_the_due_date(batch, rubric):
    out, _ = batch
    for name in ("solved", "untouched"):
        results = json.loads((out / name / "results.json").read_text())
        jsonschema.validate(results, RESULTS_SCHEMA)
        visibilities = {t["number"]: t["visibility"] for t in results["tests"]}
        assert len(visibilities) == len(rubric.tests)  # numbers are unique
        for test, spec in zip(results["tests"], rubric.tests):
            assert test["visibility"] == ("after_due_date" if spec.hidden else "visible")
            assert test["max_score"] == spec.points
        assert (out / name / "report.md").read_text().startswith("# Grading report")


def test_one_wrong_function_loses_only_its_points_with_the_diagnosis(tmp_path, rubric):
    sources = solution_sources()
    sources["content_loss"] = (
        "def content_loss(content_weight, content_current, content_original):\n"
        "    return content_weight * torch.mean((content_current - content_original) ** 2)\n")
    notebook_with(sources, tmp_path / "all_in_one.ipynb")
    result = grade_submission(tmp_path / "all_in_one.ipynb", rubric, seed=3)
    scores, points = scores_by_function(result), points_by_function(rubric)
    assert scores["content_loss"] == 0
    assert {f: scores[f] for f in STUDENT_FUNCTIONS[1:]} == {f: points[f] for f in STUDENT_FUNCTIONS[1:]}
    for test in result.tests:
        if test.spec.function == "content_loss" and test.spec.kind != "device":
            assert "the *mean* of the squared differences" in test.feedback, test.feedback
    report = markdown_report(result)
    assert "content_loss.public" in report and "*mean*" in report
    jsonschema.validate(results_json(result, rubric), RESULTS_SCHEMA)


def test_a_syntax_error_or_a_missing_tag_costs_only_that_function(tmp_path, rubric):
    sources = solution_sources()
    sources["tv_loss"] = "def tv_loss(img, tv_weight):\n    return tv_weight * (img[:, 1:] - img[:, :-1]) **\n"
    notebook_with({"tv_loss": sources.pop("tv_loss")}, tmp_path / "03_tv_loss.ipynb")
    notebook_with(sources, tmp_path / "01_rest.ipynb", tagged=False)  # tags deleted: found by name
    result = grade_submission(tmp_path, rubric, seed=4)
    scores, points = scores_by_function(result), points_by_function(rubric)
    assert scores == {**points, "tv_loss": 0.0}
    tv = [t for t in result.tests if t.spec.function == "tv_loss"]
    assert all("syntax error" in t.feedback and "03_tv_loss.ipynb" in t.feedback for t in tv)


def test_the_hidden_tests_catch_what_the_public_check_cannot(tmp_path, rubric):
    """A Gram matrix hard-wired to N=2 passes the notebook check's batch of 2, not the batch test;
    a tv_loss with a loop passes the values but not the no-loops test."""
    sources = solution_sources()
    sources["gram_matrix"] = (
        "def gram_matrix(features, normalize=True):\n"
        "    _, c, h, w = features.shape\n"
        "    flat = features.reshape(2, c, h * w)\n"
        "    gram = torch.bmm(flat, flat.transpose(1, 2))\n"
        "    return gram / (c * h * w) if normalize else gram\n")
    sources["tv_loss"] = (
        "def tv_loss(img, tv_weight):\n"
        "    total = 0.0\n"
        "    for axis in (2, 3):\n"
        "        total = total + torch.sum(torch.diff(img, dim=axis) ** 2)\n"
        "    return tv_weight * total\n")
    notebook_with(sources, tmp_path / "mine.ipynb")
    result = grade_submission(tmp_path / "mine.ipynb", rubric, seed=5).by_id()
    assert result["gram_matrix.public"].passed
    assert not result["gram_matrix.batch"].passed and "shape" in result["gram_matrix.batch"].feedback
    assert result["tv_loss.gradient"].passed
    assert not result["tv_loss.no_loops"].passed and "Python loop" in result["tv_loss.no_loops"].feedback
    assert 0 < result["tv_loss.public"].score < result["tv_loss.public"].spec.points  # partial credit


def test_submissions_are_found_in_folders_and_zips(tmp_path):
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as zf:
        zf.writestr("../../evil/01_a.ipynb", nbformat.writes(nbformat.v4.new_notebook()))
        zf.writestr("notes.txt", "not a notebook")
    (tmp_path / "work").mkdir()
    found = collect_notebooks(tmp_path / "s.zip", tmp_path / "work")
    assert found == [tmp_path / "work" / "01_a.ipynb"]  # no path from the archive is trusted
    code = find_student_code(found)
    assert set(code.code.problems) == set(STUDENT_FUNCTIONS)


def test_rubric_errors_name_the_entry(tmp_path):
    (tmp_path / "r.toml").write_text('[[tests]]\nid = "x"\nfunction = "tv_loss"\nkind = "batch"\npoints = 1\n')
    with pytest.raises(RubricError, match="batch"):
        load_rubric(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text('[[tests]]\nid = "x"\nfunction = "tv_los"\nkind = "public"\npoints = 1\n')
    with pytest.raises(RubricError, match="function"):
        load_rubric(tmp_path / "r.toml")


def test_gradescope_zip_runs_end_to_end_on_a_fake_autograder_root(tmp_path):
    archive = build_gradescope_zip(tmp_path / "autograder.zip")
    root = tmp_path / "autograder"
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        zf.extractall(root)
    assert {"setup.sh", "run_autograder", "source/autograder/rubric.toml", "source/reference_solutions.py",
            "source/cs231n_style/checks.py", "source/cs231n_style/data/reference_values.npz"} <= set(names)
    assert not any(name.endswith(".pth") or name.startswith("source/solutions") for name in names)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    for name in GRADED:
        shutil.copyfile(SOLUTIONS / name, root / "submission" / name)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert results["score"] == 100


def test_the_release_has_no_solution_code_and_no_autograder(tmp_path):
    release = build_release(tmp_path / "release")
    files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert {"README.md", "environment.yml", "pyproject.toml", "Makefile", "conftest.py",
            "notebooks/test_my_functions.py", "cs231n_style/checks.py",
            "cs231n_style/data/reference_values.npz"} <= files
    assert {f"notebooks/{name}" for name in GRADED} <= files
    assert not any(f.startswith(("solutions/", "autograder/", "tools/")) for f in files)
    assert [f for f in files if f.startswith("tests/")] == ["tests/nbval_sanitize.cfg"]  # no hidden tests
    assert len(solution_lines()) >= 8
    assert solution_lines_in(release) == []
    for name in GRADED:  # the student notebooks still hold stubs only
        code = extract_functions(release / "notebooks" / name)
        assert all("raise NotImplementedError" in src for src in code.functions.values())


def test_the_release_check_would_catch_a_leak(tmp_path):
    release = build_release(tmp_path / "release")
    shutil.copyfile(SOLUTIONS / "03_tv_loss.ipynb", release / "notebooks" / "03_tv_loss.ipynb")
    assert any(path == "notebooks/03_tv_loss.ipynb" for path, _ in solution_lines_in(release))
