"""The autograder end to end: solutions score full marks, stubs zero, one wrong function costs only
its own points with the notebook checks' diagnosis; reports validate; the student release holds no
solution code. The Gradescope zip, run as Gradescope runs it, is in tests/test_platform_gradescope.py.

Hostile submissions are in tests/test_autograder_sandbox.py. Gradings start a sandboxed process
each (a few seconds), so the gradings are shared by module-scoped fixtures.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import numpy as np
import pytest

import cs231n_style
from autograder.__main__ import summary_lines
from autograder.authoring import fill_in_solutions
from autograder.cases import draw_args
from autograder.grader import GradingResult, TestResult, _hidden_paths, grade_submission
from autograder.packaging import build_release, solution_lines, solution_lines_in
from autograder.report import markdown_report, results_json, write_gradebook
from autograder.rubric import RubricError, load_rubric
from autograder.submission import collect_notebooks, find_student_code
from cs231n_style.notebook import ALL_STUDENT_FUNCTIONS, STUDENT_FUNCTIONS, extract_functions, read_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
GRADED = ["01_content_loss.ipynb", "02_style_loss.ipynb", "03_tv_loss.ipynb", "05_controlling_style_transfer.ipynb",
          "06_photorealistic_style_transfer.ipynb"]

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
    """The reference functions' sources, taken from the solution notebooks (no copy in the tests): the
    four and notebook 05's two."""
    return find_student_code(sorted(SOLUTIONS.glob("*.ipynb")), ALL_STUDENT_FUNCTIONS).code.functions


def scores_by_function(result) -> dict[str, float]:
    out = dict.fromkeys(ALL_STUDENT_FUNCTIONS, 0.0)
    for test in result.tests:
        out[test.spec.function] += test.score
    return out


def points_by_function(rubric) -> dict[str, float]:
    out = dict.fromkeys(ALL_STUDENT_FUNCTIONS, 0.0)
    for spec in rubric.tests:
        out[spec.function] += spec.points
    return out


@pytest.fixture(scope="module")
def rubric():
    return load_rubric()


# content_loss right only for even widths (partial credit that depends on the inputs drawn), and
# style_loss with the common bug feats[i] for feats[style_layers[i]]
PARTLY_WRONG = {
    "content_loss": (
        "def content_loss(content_weight, content_current, content_original):\n"
        "    loss = content_weight * torch.sum((content_current - content_original) ** 2)\n"
        "    return loss if content_current.shape[-1] % 2 == 0 else 2 * loss\n"),
    "style_loss": (
        "def style_loss(feats, style_layers, style_targets, style_weights):\n"
        "    loss = 0\n"
        "    for i in range(len(style_layers)):\n"
        "        _, c, h, w = feats[i].shape\n"
        "        flat = feats[i].reshape(1, c, h * w)\n"
        "        gram = flat @ flat.transpose(1, 2) / (c * h * w)\n"
        "        loss = loss + style_weights[i] * torch.sum((gram - style_targets[i]) ** 2)\n"
        "    return loss\n"),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The CLI's batch mode, with the rubric's seed, on four submissions: the solutions (a folder),
    the stubs (a .zip) and the same partly wrong code twice (notebooks)."""
    folder = tmp_path_factory.mktemp("class")
    (folder / "solved").mkdir()
    for name in GRADED:
        shutil.copyfile(SOLUTIONS / name, folder / "solved" / name)
    with zipfile.ZipFile(folder / "untouched.zip", "w") as zf:
        for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
            zf.write(path, f"my-work/{path.name}")
    for twin in ("twin_a", "twin_b"):
        notebook_with({**solution_sources(), **PARTLY_WRONG}, folder / f"{twin}.ipynb")
    out, gradebook = tmp_path_factory.mktemp("out"), folder.parent / "gradebook.csv"
    done = subprocess.run([sys.executable, "-m", "autograder", "batch", str(folder), "--csv", str(gradebook),
                           "--jobs", "2", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {row["submission"]: row for row in csv.DictReader(gradebook.open())}
    return out, rows


def test_solutions_score_full_marks(batch, rubric):
    out, rows = batch
    results = json.loads((out / "solved" / "results.json").read_text())
    assert results["score"] == rubric.max_score == 145  # 100, notebook 05's spatial control 30, notebook 06's 15
    assert all(test["status"] == "passed" for test in results["tests"])
    assert float(rows["solved"]["total"]) == 145


def test_untouched_student_notebooks_score_zero_with_not_implemented(batch):
    out, rows = batch
    results = json.loads((out / "untouched" / "results.json").read_text())
    assert results["score"] == 0 and float(rows["untouched.zip"]["total"]) == 0
    for test in results["tests"]:
        assert test["status"] == "failed"
        assert "NOT IMPLEMENTED YET" in test["output"], test


def test_gradebook_has_a_column_per_test_and_a_total(batch, rubric):
    _, rows = batch
    assert set(rows) == {"solved", "untouched.zip", "twin_a.ipynb", "twin_b.ipynb"}
    assert list(rows["solved"]) == ["submission", *(s.id for s in rubric.tests), "total", "max_score", "note"]
    for row in rows.values():  # scores rounded to 2 decimals; every one of these was graded
        assert all(re.fullmatch(r"\d+(\.\d{1,2})?", v) for k, v in row.items() if k not in ("submission", "note")), row
        assert row["note"] == ""


def test_the_same_code_gets_the_same_grade_with_the_rubrics_seed(batch, rubric):
    out, rows = batch
    a, b = (json.loads((out / twin / "results.json").read_text()) for twin in ("twin_a", "twin_b"))
    assert a["extra_data"]["seed"] == b["extra_data"]["seed"] == str(rubric.seed)
    assert [t["score"] for t in a["tests"]] == [t["score"] for t in b["tests"]]
    assert rows["twin_a.ipynb"] == {**rows["twin_b.ipynb"], "submission": "twin_a.ipynb"}
    content = [t["score"] for t, spec in zip(a["tests"], rubric.tests, strict=True) if spec.function == "content_loss"]
    assert 0 < sum(content)  # partial credit: the inputs drawn decide it
    table = re.findall(r"\| (\d+(?:\.\d+)?) / \d+ \|", (out / "twin_a" / "report.md").read_text())
    assert table and all(re.fullmatch(r"\d+(\.\d{1,2})?", v) for v in table)


def test_indexing_feats_by_position_fails_every_style_loss_value_test(batch, rubric):
    """feats[i] instead of feats[style_layers[i]]: the drawn style layers never start at layer 0."""
    out, _ = batch
    results = json.loads((out / "twin_a" / "results.json").read_text())
    for test, spec in zip(results["tests"], rubric.tests, strict=True):
        if spec.function == "style_loss":
            assert test["score"] == 0, (spec.id, test["output"])
        elif spec.function in ("gram_matrix", "tv_loss"):
            assert test["status"] == "passed", (spec.id, test["output"])


def test_drawn_style_layers_are_never_their_positions():
    for seed in range(300):
        feats, layers, targets, weights = draw_args("style_loss", np.random.default_rng(seed))
        assert 2 <= len(layers) == len(targets) == len(weights) < len(feats)
        assert all(layer > position for position, layer in enumerate(layers)), layers
        assert all(t["tensor"].shape[1] == feats[i]["tensor"].shape[1] for i, t in zip(layers, targets, strict=True))


def test_results_json_validates_and_hidden_tests_show_after_the_due_date(batch, rubric):
    out, _ = batch
    for name in ("solved", "untouched"):
        results = json.loads((out / name / "results.json").read_text())
        jsonschema.validate(results, RESULTS_SCHEMA)
        visibilities = {t["number"]: t["visibility"] for t in results["tests"]}
        assert len(visibilities) == len(rubric.tests)  # numbers are unique
        for test, spec in zip(results["tests"], rubric.tests, strict=True):
            assert test["visibility"] == ("after_due_date" if spec.hidden else "visible")
            assert test["max_score"] == spec.points
        assert (out / name / "report.md").read_text().startswith("# Grading report")
        # What students see before the due date counts only the public tests.
        public = sum(spec.points for spec in rubric.tests if not spec.hidden)
        first_line = results["output"].splitlines()[0]
        assert first_line.startswith("Score on the public tests: ") and f"/ {public:g}." in first_line, first_line
        assert "shown after due date" in first_line


def test_one_wrong_function_loses_only_its_points_with_the_diagnosis(tmp_path, rubric):
    sources = solution_sources()
    sources["content_loss"] = (
        "def content_loss(content_weight, content_current, content_original):\n"
        "    return content_weight * torch.mean((content_current - content_original) ** 2)\n")
    notebook_with(sources, tmp_path / "all_in_one.ipynb")
    result = grade_submission(tmp_path / "all_in_one.ipynb", rubric, seed=3)
    scores, points = scores_by_function(result), points_by_function(rubric)
    assert scores["content_loss"] == 0
    assert {f: scores[f] for f in ALL_STUDENT_FUNCTIONS[1:]} == {f: points[f] for f in ALL_STUDENT_FUNCTIONS[1:]}
    for test in result.tests:
        if test.spec.function == "content_loss" and test.spec.kind != "device":
            assert "the *mean* of the squared differences" in test.feedback, test.feedback
    report = markdown_report(result)
    assert "content_loss.public" in report and "*mean*" in report
    jsonschema.validate(results_json(result, rubric), RESULTS_SCHEMA)


@pytest.mark.parametrize("where_normalized", ["nowhere", "in style_loss"])
def test_style_loss_is_graded_on_its_own_not_through_the_students_gram_matrix(tmp_path, rubric, where_normalized):
    """A Gram matrix that forgets to normalize costs gram_matrix's points only; a student who
    normalizes in style_loss instead keeps style_loss's. The property tests say why they fail."""
    sources = solution_sources()
    sources["gram_matrix"] = (
        "def gram_matrix(features, normalize=True):\n"
        "    n, c, h, w = features.shape\n"
        "    flat = features.reshape(n, c, h * w)\n"
        "    return flat @ flat.transpose(1, 2)\n")
    if where_normalized == "in style_loss":
        sources["style_loss"] = (
            "def style_loss(feats, style_layers, style_targets, style_weights):\n"
            "    loss = 0.0\n"
            "    for layer, target, weight in zip(style_layers, style_targets, style_weights):\n"
            "        _, c, h, w = feats[layer].shape\n"
            "        loss = loss + weight * torch.sum((gram_matrix(feats[layer]) / (c * h * w) - target) ** 2)\n"
            "    return loss\n")
    notebook_with(sources, tmp_path / "mine.ipynb")
    result = grade_submission(tmp_path / "mine.ipynb", rubric, seed=6)
    scores, points = scores_by_function(result), points_by_function(rubric)
    assert scores["style_loss"] == points["style_loss"], [t.feedback for t in result.tests if not t.passed]
    assert scores["content_loss"] == points["content_loss"] and scores["tv_loss"] == points["tv_loss"]
    assert scores["gram_matrix"] < points["gram_matrix"] / 2
    unmodified = result.by_id()["gram_matrix.unmodified"]
    assert not unmodified.passed and "counts only when the values are right too" in unmodified.feedback
    assert "factor C*H*W" in unmodified.feedback


def test_the_grade_and_the_check_quote_the_same_line_of_a_function_that_raises(tmp_path, rubric):
    """One formatter (cs231n_style._tracebacks) says where the student's code raised, for the notebook
    check and for the sandboxed runner, which loads it by its path."""
    source = "def tv_loss(img, tv_weight):\n    raise ValueError('unfinished')\n"
    path = notebook_with({"tv_loss": source}, tmp_path / "03_tv_loss.ipynb")
    where = "\n  in your code (tv_loss), line 2: raise ValueError('unfinished')"
    assert cs231n_style.check_tv_loss(cs231n_style.load_functions(path, ["tv_loss"]).tv_loss).message.endswith(where)
    result = grade_submission(path, rubric, seed=5)
    feedback = [test.feedback for test in result.tests if test.spec.function == "tv_loss" and not test.passed]
    assert feedback and all(where in text for text in feedback), feedback


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


def test_identical_failures_share_one_summary_line(tmp_path, rubric):
    message = "FAIL - nothing to grade: no .ipynb notebook found in 'empty'."
    result = GradingResult("empty", [TestResult(spec, 0.0, message) for spec in rubric.tests], error="no notebook")
    lines = summary_lines(result, tmp_path / "results.json")
    assert len(lines) == 2, lines
    assert lines[1].startswith(f"  {len(rubric.tests)} tests ({rubric.tests[0].id} ... {rubric.tests[-1].id}): "
                               f"0/{rubric.max_score:g} ")
    assert message in lines[1]


def test_printed_scores_are_rounded_and_feedback_is_cut_at_a_word(tmp_path, rubric):
    spec = rubric.tests[0]
    words = " ".join(f"word{i}" for i in range(60))
    result = GradingResult("alice.ipynb",
                           [TestResult(spec, spec.points / 2.4, f"{spec.function}: FAIL - {words}\nmore")],
                           execution_time=1.0)
    lines = summary_lines(result, tmp_path / "results.json")
    assert lines[0].startswith(f"alice.ipynb: {round(spec.points / 2.4, 2):g} / {spec.points:g} in 1.0 s")
    failure = lines[1]
    assert f"{round(spec.points / 2.4, 2):g}/{spec.points:g}" in failure and failure.endswith(" ...")
    assert re.search(r" word\d+ \.\.\.$", failure) and len(failure) < 200 and "more" not in failure
    write_gradebook([result], rubric, tmp_path / "book.csv")
    row = next(csv.DictReader((tmp_path / "book.csv").open()))
    assert row[spec.id] == row["total"] == f"{round(spec.points / 2.4, 2):g}"
    assert words in markdown_report(result)  # the report keeps the whole feedback


def test_the_sandbox_hides_the_solutions_of_the_checkout_cs231n_style_comes_from(tmp_path, monkeypatch):
    other = tmp_path / "other-checkout"
    for name in ("cs231n_style", "solutions", "autograder", ".git"):
        (other / name).mkdir(parents=True)
    monkeypatch.setattr(cs231n_style, "__file__", str(other / "cs231n_style" / "__init__.py"))
    (tmp_path / "sub").mkdir()
    hidden = _hidden_paths(tmp_path / "sub" / "s.ipynb", SOLUTIONS, [])
    assert {str(other / n) for n in ("solutions", "autograder", ".git")} <= set(hidden)
    assert str(SOLUTIONS) in hidden and str(other / "cs231n_style") not in hidden


def test_rubric_errors_name_the_entry(tmp_path):
    (tmp_path / "r.toml").write_text('[[tests]]\nid = "x"\nfunction = "tv_loss"\nkind = "batch"\npoints = 1\n')
    with pytest.raises(RubricError, match="batch"):
        load_rubric(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text('[[tests]]\nid = "x"\nfunction = "tv_los"\nkind = "public"\npoints = 1\n')
    with pytest.raises(RubricError, match="function"):
        load_rubric(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text('[grading]\nseed = "x"\n')
    with pytest.raises(RubricError, match="seed"):
        load_rubric(tmp_path / "r.toml")


def test_the_release_has_no_solution_code_and_no_autograder(tmp_path):
    release = build_release(tmp_path / "release")
    files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert {"README.md", "environment.yml", "pyproject.toml", "Makefile", "conftest.py",
            "notebooks/test_my_functions.py", "cs231n_style/checks.py",
            "cs231n_style/data/reference_values.npz"} <= files
    assert {f"notebooks/{name}" for name in GRADED} <= files
    assert not any(f.startswith(("solutions/", "autograder/", "tools/")) for f in files)
    assert [f for f in files if f.startswith("tests/")] == ["tests/nbval_sanitize.cfg"]  # no hidden tests
    pyproject = (release / "pyproject.toml").read_text()
    assert 'testpaths = ["notebooks"]' in pyproject and "solutions" not in pyproject
    makefile = (release / "Makefile").read_text()
    assert "tools/" not in makefile and not re.search(r"^notebooks:", makefile, re.M) and "\ntest:" in makefile
    readme = (release / "README.md").read_text()
    assert "python -m pytest notebooks/" in readme and "CS231N_STYLE_WEIGHTS" in readme and "make course" in readme
    assert "make check" in readme and "## Submitting" in readme and "the same as make check" in makefile
    for word in ("solutions", "tools/", "autograd", "rubric", "hidden", "instructor"):
        assert word not in readme.lower(), word
    assert len(solution_lines()) >= 8
    assert solution_lines_in(release) == []
    for name in GRADED:  # the student notebooks still hold stubs only
        code = extract_functions(release / "notebooks" / name, ALL_STUDENT_FUNCTIONS)
        assert code.functions, name
        assert all("raise NotImplementedError" in src for src in code.functions.values())


def test_the_release_check_would_catch_a_leak(tmp_path):
    release = build_release(tmp_path / "release")
    shutil.copyfile(SOLUTIONS / "03_tv_loss.ipynb", release / "notebooks" / "03_tv_loss.ipynb")
    assert any(path == "notebooks/03_tv_loss.ipynb" for path, _ in solution_lines_in(release))


def test_the_release_check_matches_whole_words(tmp_path):
    """A solution line counts between word boundaries: ``return gram`` is not in ``return grams[0]``."""
    line = sorted(line for line in solution_lines() if line[-1].isalnum())[0]
    (tmp_path / "longer.py").write_text(f"x = 1\n    {line}s[0]\n")
    assert solution_lines_in(tmp_path) == []
    (tmp_path / "same.py").write_text(f"if True:\n    {line}  # copied\n")
    assert solution_lines_in(tmp_path) == [("same.py", line)]


def test_a_solved_release_passes_the_students_own_command(tmp_path):
    """In the release, with notebook 01's solution filled in, `python -m pytest ...` run from its top
    folder uses the release's pyproject.toml and conftest.py (nbval sanitizer) and passes.
    CS231N_STYLE_WEIGHTS comes from the course's conftest.py (the environment of this session)."""
    release = build_release(tmp_path / "release")
    name = "01_content_loss.ipynb"
    nbformat.write(fill_in_solutions(read_notebook(release / "notebooks" / name), read_notebook(SOLUTIONS / name)),
                   release / "notebooks" / name)
    done = subprocess.run([sys.executable, "-m", "pytest", f"notebooks/{name}", "notebooks/test_my_functions.py",
                           "-k", "content_loss or ipynb", "-v"], cwd=release, capture_output=True, text=True,
                          env={**os.environ, "CS231N_STYLE_DEVICE": "cpu", "OMP_NUM_THREADS": "1"},  # ~15 s
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "test_my_function[content_loss] PASSED" in done.stdout
    assert re.search(r"01_content_loss::ipynb::Cell \d+ PASSED", done.stdout) and f"rootdir: {release}" in done.stdout
