"""The autograder's command line and rubric checks, for instructors: a typo in the rubric or a wrong
path is one ``error:`` line (exit 2) before anything is graded or written; a student's empty
submission is still graded 0 with feedback (what Gradescope needs).

Grading itself is tested in tests/test_autograder.py; here ``batch`` runs with ``grade_batch``
replaced, so no sandbox starts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import autograder.grader
from autograder.__main__ import main
from autograder.grader import GradingResult
from autograder.rubric import DEFAULT_RUBRIC, RubricError, TestSpec, load_rubric
from autograder.submission import list_submissions

RUBRIC_TEXT = DEFAULT_RUBRIC.read_text()


def rubric_with(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    """The default rubric with the first ``count`` (-1: every) ``old`` replaced by ``new``, in tmp_path."""
    assert old in RUBRIC_TEXT
    path = tmp_path / "rubric.toml"
    path.write_text(RUBRIC_TEXT.replace(old, new, count))
    return path


def one_error_line(capsys) -> str:
    """stderr, checked to be a single ``error:`` line (no traceback)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


# --- the rubric -----------------------------------------------------------------------------------

@pytest.mark.parametrize("old, new, key", [("\n[[tests]]\n", "\n[[test]]\n", "'test'"),
                                           ("[grading]", "[grdaing]", "'grdaing'"),
                                           ("[sandbox]", "[sandbx]", "'sandbx'")])
def test_rubric_misspelt_section_is_an_error_naming_it_and_the_known_ones(tmp_path, old, new, key):
    with pytest.raises(RubricError) as error:
        load_rubric(rubric_with(tmp_path, old, new, count=-1))
    assert key in str(error.value)
    assert all(name in str(error.value) for name in ("[grading]", "[sandbox]", "[[tests]]"))


def test_rubric_without_tests_is_an_error(tmp_path):
    path = tmp_path / "rubric.toml"
    path.write_text("[grading]\nseed = 3\n")
    with pytest.raises(RubricError, match="no tests"):
        load_rubric(path)
    path.write_text('[tests]\nid = "x"\n')  # a table, not [[tests]] entries
    with pytest.raises(RubricError, match=r"\[\[tests\]\]"):
        load_rubric(path)


@pytest.mark.parametrize("old, new, message", [
    ("hidden = false", 'hidden = "false"', r"entry 1 \(content_loss.public\): hidden must be a boolean"),
    ("points = 5", 'points = "5"', r"entry 1 \(content_loss.public\): points must be a number"),
    ("points = 5", "points = true", "points must be a number"),
    ('id = "content_loss.shapes"', "id = 7", "entry 2 .*id must be a string"),
    ("hidden = false", "hidden = false\ndraws = 2.5", "draws must be an integer"),
    ("hidden = false", "hidden = false\ndraws = 0", "draws must be at least 1"),
    ("hidden = false", "hidden = false\nscales = 1000", "scales must be an array of numbers"),
    ("hidden = false", 'hidden = false\nscales = ["big"]', "scales must be an array of numbers"),
    ("seed = 2016", 'seed = "2016"', r"\[grading\]: seed must be an integer"),
    ('public_visibility = "visible"', "public_visibility = true", r"\[grading\]: public_visibility must be a string"),
    ("timeout_s = 10", 'timeout_s = "10"', r"\[sandbox\]: timeout_s must be a number"),
    ("memory_mb = 2048", "memory_mb = 0", r"\[sandbox\] memory_mb must be > 0"),
    ('user = "auto"', "user = 65534", r"\[sandbox\]: user must be a string"),
])
def test_rubric_field_types_are_checked(tmp_path, old, new, message):
    with pytest.raises(RubricError, match=message):
        load_rubric(rubric_with(tmp_path, old, new))


def test_well_typed_rubric_still_loads(tmp_path):
    assert len(load_rubric().tests) == 36 + 14 + 7  # notebooks 01-03, 05 (spatial_control), 06 (photorealism)
    rubric = load_rubric(rubric_with(tmp_path, "timeout_s = 10", "timeout_s = 2.5"))
    assert rubric.limits.timeout_s == 2.5 and rubric.seed == 2016
    assert rubric.tests[0].hidden is False and rubric.tests[1].hidden is True


# --- grade ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, create", [("nope", False), ("notes.txt", True)])
def test_grade_refuses_a_path_that_is_not_a_submission(tmp_path, capsys, name, create):
    if create:
        (tmp_path / name).write_text("my notes")
    out = tmp_path / "out"
    assert main(["grade", str(tmp_path / name), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert name in line and "notebook (.ipynb), their folder of notebooks, or a .zip" in line
    assert not out.exists()


def test_grade_still_grades_an_empty_submission_zero_with_feedback(tmp_path, capsys):
    (tmp_path / "alice").mkdir()
    out = tmp_path / "out"
    assert main(["grade", str(tmp_path / "alice"), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["score"] == 0 and "nothing to grade" in results["tests"][0]["output"]


@pytest.mark.parametrize("command", ["grade", "batch"])
def test_rubric_problems_are_one_error_line_and_nothing_is_written(tmp_path, capsys, command):
    (tmp_path / "alice").mkdir()
    target = str(tmp_path / "alice") if command == "grade" else str(tmp_path)
    out, csv = tmp_path / "out", tmp_path / "book.csv"
    options = ["--out", str(out)] + (["--csv", str(csv)] if command == "batch" else [])
    assert main([command, target, *options, "--rubric", str(tmp_path / "nothere.toml")]) == 2
    assert "rubric file not found" in one_error_line(capsys)
    bad = rubric_with(tmp_path, "hidden = false", 'hidden = "false"')
    assert main([command, target, *options, "--rubric", str(bad)]) == 2
    assert "hidden must be a boolean" in one_error_line(capsys)
    assert not out.exists() and not csv.exists()


def test_output_paths_and_numbers_are_checked_before_grading(tmp_path, capsys):
    (tmp_path / "alice").mkdir()
    (tmp_path / "a_file").write_text("")
    assert main(["grade", str(tmp_path / "alice"), "--out", str(tmp_path / "a_file")]) == 2
    assert "--out" in one_error_line(capsys)
    assert main(["batch", str(tmp_path), "--csv", str(tmp_path / "alice"), "--out", str(tmp_path / "o")]) == 2
    assert "--csv" in one_error_line(capsys)
    assert main(["batch", str(tmp_path), "--csv", str(tmp_path / "a_file" / "book.csv")]) == 2
    assert "a_file is a file" in one_error_line(capsys)
    for option in (["--seed", "-1"], ["--jobs", "0"]):
        with pytest.raises(SystemExit) as exit_:
            main(["batch", str(tmp_path), *option])
        assert exit_.value.code == 2
    assert "--jobs: must be an integer >= 1" in capsys.readouterr().err


# --- batch ----------------------------------------------------------------------------------------

@pytest.fixture
def graded(monkeypatch):
    """Replace grading by a stub that records the submissions and scores each 0 of 0."""
    seen = []

    def fake_grade_batch(paths, rubric, jobs=None, on_result=None, **options):
        seen.extend(Path(p).name for p in paths)
        results = [GradingResult(Path(p).name, []) for p in paths]
        for result in results:
            on_result(result)
        return results

    monkeypatch.setattr(autograder.grader, "grade_batch", fake_grade_batch)
    return seen


@pytest.mark.parametrize("make", ["missing", "file"])
def test_batch_of_a_missing_folder_is_one_error_line(tmp_path, capsys, graded, make):
    folder = tmp_path / "submissions"
    if make == "file":
        folder.write_text("")
    assert main(["batch", str(folder), "--csv", str(tmp_path / "book.csv")]) == 2
    line = one_error_line(capsys)
    assert ("no such folder" if make == "missing" else "not a folder") in line and str(folder) in line
    assert graded == [] and not (tmp_path / "book.csv").exists()


def test_batch_of_an_empty_folder_warns_and_exits_1(tmp_path, capsys, graded):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "eve_hw3.pdf").write_text("")
    assert main(["batch", str(tmp_path / "class"), "--csv", str(tmp_path / "book.csv")]) == 1
    err = capsys.readouterr().err
    assert "skipped eve_hw3.pdf: not a notebook, folder or .zip" in err
    assert "warning: no submissions found" in err and "batch --help" in err
    assert graded == [] and not (tmp_path / "book.csv").exists()


def test_batch_grades_each_submission_and_names_each_skipped_entry(tmp_path, capsys, graded):
    folder = tmp_path / "class"
    for name in ("alice", ".ipynb_checkpoints", "__MACOSX"):
        (folder / name).mkdir(parents=True)
    for name in ("bob.zip", "carol.ipynb", "eve_hw3.pdf", ".DS_Store"):
        (folder / name).write_text("")
    book, out = tmp_path / "book.csv", tmp_path / "out"
    assert main(["batch", str(folder), "--csv", str(book), "--out", str(out)]) == 0
    assert graded == ["alice", "bob.zip", "carol.ipynb"]
    assert sorted(p.name for p in out.iterdir()) == ["alice", "bob", "carol"]
    assert [row.split(",")[0] for row in book.read_text().splitlines()[1:]] == graded
    err = capsys.readouterr().err.splitlines()
    assert "skipped eve_hw3.pdf: not a notebook, folder or .zip" in err
    assert {line.split(":")[0] for line in err if line.startswith("skipped")} == \
        {"skipped .DS_Store", "skipped .ipynb_checkpoints", "skipped __MACOSX", "skipped eve_hw3.pdf"}
    assert list_submissions(folder)[0] == [folder / "alice", folder / "bob.zip", folder / "carol.ipynb"]


def test_batch_refuses_two_entries_for_one_student_before_grading(tmp_path, capsys, graded):
    folder = tmp_path / "class"
    (folder / "alice").mkdir(parents=True)
    (folder / "alice.zip").write_text("")
    (folder / "bob.ipynb").write_text("")
    assert main(["batch", str(folder), "--csv", str(tmp_path / "book.csv"), "--out", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys)
    assert "alice and alice.zip" in line and "one per student" in line
    assert graded == [] and not (tmp_path / "out").exists()


def test_batch_help_documents_the_accepted_layouts(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["batch", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for words in ("FOLDER/alice/", "FOLDER/bob.zip", "FOLDER/carol.ipynb", "student's name in the gradebook",
                  "skipped"):
        assert words in text


# --- other commands -------------------------------------------------------------------------------

def test_release_and_gradescope_zip_refuse_bad_input_in_one_line(tmp_path, capsys):
    assert main(["release", str(tmp_path)]) == 2
    assert "already exists" in one_error_line(capsys)
    bad = rubric_with(tmp_path, "\n[[tests]]\n", "\n[[test]]\n", count=-1)
    assert main(["gradescope-zip", str(tmp_path / "ag.zip"), "--rubric", str(bad)]) == 2
    assert "'test'" in one_error_line(capsys)
    assert not (tmp_path / "ag.zip").exists()


def test_gradescope_still_writes_results_for_a_missing_submission(tmp_path, capsys):
    assert main(["gradescope", "--root", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 0 and "nothing to grade" in results["tests"][0]["output"]


# --- the rubric's JSON Schema ------------------------------------------------------------------------

def test_the_rubric_schema_knows_exactly_the_functions_kinds_and_limits_the_grader_knows():
    import dataclasses
    import json

    from autograder.rubric import KINDS, SCHEMA_FILE
    from autograder.sandbox import Limits
    from cs231n_style.notebook import ALL_STUDENT_FUNCTIONS

    schema = json.loads(SCHEMA_FILE.read_text())
    test = schema["properties"]["tests"]["items"]["properties"]
    assert tuple(test["function"]["enum"]) == ALL_STUDENT_FUNCTIONS
    assert tuple(test["kind"]["enum"]) == KINDS
    assert set(schema["properties"]["sandbox"]["properties"]) == {f.name for f in dataclasses.fields(Limits)}
    assert set(test) == {f.name for f in dataclasses.fields(TestSpec)}


@pytest.mark.parametrize("old, new, message", [
    ("hidden = false", "hidden = false\npoint = 3", r"entry 1 \(content_loss.public\): unknown field\(s\) \['point'\]"),
    ('kind = "public"\npoints = 5', 'kind = "public"', r"entry 1 \(content_loss.public\): missing 'points'"),
    ("points = 5", "points = -5", r"entry 1 \(content_loss.public\): points must be a number >= 0"),
    ("hidden = false", "hidden = false\nscales = [1.0, 0]", "scales must be a non-empty array of numbers > 0"),
    ("hidden = false", "hidden = false\nscales = []", "scales must be a non-empty array of numbers > 0"),
    ('kind = "public"', 'kind = "publik"', r"kind must be one of \('public'"),
    ('hidden_visibility = "after_due_date"', 'hidden_visibility = "later"', "visibility 'later' is not one of"),
    ("seed = 2016", "seed = -1", r"\[grading\] seed must be an integer >= 0"),
    ("seed = 2016", "seed = 2016-01-01", r"seed must be an integer .*not the date/time"),
    ("timeout_s = 10", "timeout_s = 10\ntimeout = 3", r"\[sandbox\]: unknown field\(s\) \['timeout'\]"),
])
def test_rubric_schema_violations_are_worded_for_the_instructor(tmp_path, old, new, message):
    with pytest.raises(RubricError, match=message):
        load_rubric(rubric_with(tmp_path, old, new))
