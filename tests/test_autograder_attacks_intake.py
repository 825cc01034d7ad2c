"""The intake attacks of issue 23: what a hostile student puts in a submission, not in a function.

* links: a symbolic link (in a folder, a .zip, a batch, the Gradescope layout), a hard link or a
  special file never brings another file's bytes into a grading, and is named in the feedback;
* size: a cell that made extraction quadratic is read at once; a 4 MB cell is refused by the
  limited reading process, and the other submissions of the batch are graded;
* time: a submission over the rubric's ``submission_s`` gets a valid result that says so;
* the ``unshare`` fallback: a student's process cannot read another sandbox's copy (only its own).

Each attacking function scores 0 (or the submission is refused) while the others keep their points.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from test_autograder import notebook_with, points_by_function, scores_by_function, solution_sources
from test_platform_gradescope import validated

from autograder import sandbox
from autograder.grader import grade_batch, grade_submission
from autograder.packaging import run_gradescope
from autograder.reference import reference_source
from autograder.report import write_results
from autograder.rubric import load_rubric
from autograder.sandbox import _UNSHARE, Sandbox, _works
from autograder.submission import (
    SubmissionError,
    collect_notebooks,
    list_submissions,
    read_submission,
    submission_problem,
)

ROOT = Path(__file__).resolve().parents[1]
ROOTED = os.geteuid() == 0
MARKER = "HOST-SECRET-" + "4711"  # never written as one word in a student's code


def only(rubric, *functions):
    """The rubric's tests of ``functions`` only (a shorter grading)."""
    return dataclasses.replace(rubric, tests=tuple(t for t in rubric.tests if t.function in functions))


@pytest.fixture(scope="module")
def rubric():
    return load_rubric()


def secret_notebook(path: Path) -> Path:
    """A mode-600 file that is a valid notebook defining every function, with the marker in it."""
    sources = {name: f"# {MARKER}\n{source}" for name, source in solution_sources().items()}
    notebook_with(sources, path)
    os.chmod(path, 0o600)
    return path


def all_text(out: Path) -> str:
    return (out / "results.json").read_text() + (out / "report.md").read_text()


# --- links, hard links and special files: read without following -----------------------------------

def test_links_hard_links_and_special_files_in_a_folder_are_skipped_and_named(tmp_path):
    """A folder holding a real notebook, a symbolic link to a host file that is a notebook, a
    symbolic link to a folder of notebooks, a hard link and a FIFO named .ipynb: only the real one
    is read (none of the others' bytes is copied), the rest are named; reading does not block."""
    (tmp_path / "host").mkdir()
    secret = secret_notebook(tmp_path / "host" / "secret.ipynb")
    sub = tmp_path / "sub"
    sub.mkdir()
    notebook_with({"tv_loss": solution_sources()["tv_loss"]}, sub / "03_tv_loss.ipynb")
    (sub / "00_link.ipynb").symlink_to(secret)
    (sub / "linked_folder").symlink_to(secret.parent, target_is_directory=True)
    os.link(secret, sub / "01_hard.ipynb")
    os.mkfifo(sub / "02_fifo.ipynb")
    student = read_submission(sub, tmp_path / "work", ["content_loss", "tv_loss"])
    assert [p.name for p in student.notebooks] == ["03_tv_loss.ipynb"]
    assert set(student.code.functions) == {"tv_loss"} and "content_loss" in student.code.problems
    skipped = "\n".join(student.skipped)
    for name, why in (("00_link.ipynb", "symbolic link"), ("linked_folder", "symbolic link"),
                      ("01_hard.ipynb", "hard link"), ("02_fifo.ipynb", "not a regular file")):
        assert f"{name} is a {why}" in skipped or f"{name} is {why}" in skipped, skipped
    copies = [p for p in (tmp_path / "work").rglob("*") if p.is_file()]
    assert copies == [tmp_path / "work" / "03_tv_loss.ipynb"]
    assert MARKER not in json.dumps(dataclasses.asdict(student.code)) + copies[0].read_text()


def test_a_symlinked_submission_is_refused_and_skipped_by_batch(tmp_path):
    (tmp_path / "class").mkdir()
    real = notebook_with(solution_sources(), tmp_path / "class" / "alice.ipynb")
    (tmp_path / "class" / "mallory.ipynb").symlink_to(real)
    (tmp_path / "class" / "eve").symlink_to(tmp_path / "class", target_is_directory=True)
    submissions, skipped = list_submissions(tmp_path / "class")
    assert submissions == [real]
    assert {name for name, why in skipped if "symbolic link" in why} == {"mallory.ipynb", "eve"}
    assert "symbolic link" in submission_problem(tmp_path / "class" / "mallory.ipynb")
    with pytest.raises(SubmissionError, match="symbolic link"):
        collect_notebooks(tmp_path / "class" / "mallory.ipynb", tmp_path / "work")
    tempfile.tempdir, before = str(tmp_path / "temp"), tempfile.tempdir
    (tmp_path / "temp").mkdir()
    try:
        with pytest.raises(SubmissionError, match="symbolic link"):  # nor does the sandbox copy a link's target
            Sandbox([], [tmp_path / "class" / "mallory.ipynb"], mode="none", cgroup=False)
    finally:
        tempfile.tempdir = before
    assert list((tmp_path / "temp").iterdir()) == []  # and the refused sandbox leaves no folder


def test_links_and_special_files_in_a_zip_are_skipped_and_named(tmp_path):
    """A .zip's members stored as a symbolic link (``unzip`` would make the link) or a FIFO are not
    extracted; the plain notebook is."""
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("work/03_tv_loss.ipynb", nbformat.writes(nbformat.v4.new_notebook()))
        for name, kind in (("work/zz_ref.ipynb", stat.S_IFLNK), ("work/pipe.ipynb", stat.S_IFIFO)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (kind | 0o777) << 16
            zf.writestr(info, "/autograder/source/reference_solutions.py")
    skipped: list[str] = []
    found = collect_notebooks(archive, tmp_path / "work", skipped)
    assert found == [tmp_path / "work" / "03_tv_loss.ipynb"]
    assert any(line.startswith("work/zz_ref.ipynb is a symbolic link") for line in skipped), skipped
    assert any(line.startswith("work/pipe.ipynb is not a regular file") for line in skipped), skipped


def test_a_link_to_a_siblings_notebook_or_a_host_file_gives_nothing_in_a_batch(tmp_path, rubric):
    """Issue 23: ``sub_b/01_content_loss.ipynb -> ../sub_a/01_content_loss.ipynb`` earned b the
    points of a, and a mode-600 host file linked as a notebook appeared in b's feedback. Now b
    scores 0 with the links named, a keeps its points, and the host file is in no report."""
    rubric = only(rubric, "content_loss")
    batch = tmp_path / "class"
    (batch / "sub_a").mkdir(parents=True)
    (batch / "sub_b").mkdir()
    notebook_with({"content_loss": solution_sources()["content_loss"]}, batch / "sub_a" / "01_content_loss.ipynb")
    (batch / "sub_b" / "01_content_loss.ipynb").symlink_to("../sub_a/01_content_loss.ipynb")
    (batch / "sub_b" / "notes.ipynb").symlink_to(secret_notebook(tmp_path / "secret.ipynb"))
    a, b = grade_batch([batch / "sub_a", batch / "sub_b"], rubric, jobs=2, progress=False, seed=13)
    for result in (a, b):
        write_results(result, rubric, tmp_path / "out" / result.submission)
        validated(tmp_path / "out" / result.submission / "results.json")
    assert a.score == rubric.max_score > 0, [t.feedback for t in a.tests]
    assert b.score == 0 and b.where == {}
    assert "01_content_loss.ipynb is a symbolic link" in b.error  # nothing else to grade: named in the error
    text = all_text(tmp_path / "out" / "sub_b")
    assert "notes.ipynb is a symbolic link" in text and MARKER not in text
    assert MARKER not in all_text(tmp_path / "out" / "sub_a")


def test_a_link_to_the_reference_solutions_gives_nothing_on_the_gradescope_layout(tmp_path):
    """Issue 23: untouched functions that each run the reference found at ``zz_ref.ipynb ->
    /autograder/source/reference_solutions.py`` scored 130/130. Graded as ``run_autograder`` does
    (:func:`run_gradescope` on the layout of Gradescope's specification), the link is not copied
    into the sandbox: every function finds nothing and scores 0, and the feedback names the link."""
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    reference = root / "source" / "reference_solutions.py"
    reference.write_text(reference_source())
    borrow = '''def _borrowed(name):
    import os
    for folder in ("/scratch/submission", "submission"):
        path = os.path.join(folder, "zz_ref.ipynb")
        if os.path.exists(path):
            namespace = {}
            exec(open(path).read(), namespace)
            return namespace[name]
    raise FileNotFoundError("zz_ref.ipynb is not in the sandbox")
'''
    functions = {"_borrowed": borrow}
    for name in load_rubric().functions:
        functions[name] = f"def {name}(*args, **kwargs):\n    return _borrowed({name!r})(*args, **kwargs)\n"
    notebook_with(functions, root / "submission" / "01_content_loss.ipynb")
    (root / "submission" / "zz_ref.ipynb").symlink_to(reference)
    results = validated(run_gradescope(root))
    assert results["score"] == 0, [t["output"] for t in results["tests"] if t["score"]]
    assert "zz_ref.ipynb is a symbolic link" in results["output"]
    assert "zz_ref.ipynb is not in the sandbox" in json.dumps(results["tests"])  # it ran, and found nothing


# --- size: reading under limits ----------------------------------------------------------------------

def big_cell_notebook(path: Path, lines: int) -> Path:
    """A notebook with a cell of ``lines`` statements ``x`` (``"x\\n" * lines``), then content_loss."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("x\n" * lines))
    nb.cells.append(nbformat.v4.new_code_cell("import torch\n\n" + solution_sources()["content_loss"]))
    nbformat.write(nb, path)
    return path


def test_a_cell_of_20000_statements_is_read_at_once(tmp_path):
    """A 40 KB cell of ``x\\n`` * 20000 took 130-210 s to extract (quadratic); now well under 60 s."""
    path = big_cell_notebook(tmp_path / "quadratic.ipynb", 20_000)
    start = time.monotonic()
    student = read_submission(path, tmp_path / "work", ["content_loss"])
    assert time.monotonic() - start < 60
    assert list(student.code.functions) == ["content_loss"]


def test_a_4mb_cell_is_refused_and_the_rest_of_the_batch_is_graded(tmp_path, rubric):
    """A 4 MB cell ran the grader past 600 s at 4.1 GB without results. Now its reading process
    goes over its memory limit: that submission gets a valid 0 that says why; the other one of the
    batch (with the 40 KB cell) is graded in full."""
    rubric = only(rubric, "content_loss")
    big = big_cell_notebook(tmp_path / "big.ipynb", 2_000_000)
    quadratic = big_cell_notebook(tmp_path / "quadratic.ipynb", 20_000)
    big_result, quadratic_result = grade_batch([big, quadratic], rubric, jobs=2, progress=False, seed=13)
    assert quadratic_result.score == rubric.max_score > 0
    assert big_result.score == 0 and "too large or took too long to read" in big_result.error
    path = write_results(big_result, rubric, tmp_path / "out")
    assert "too large or took too long to read" in validated(path)["tests"][0]["output"]


def test_reading_that_takes_too_long_is_stopped(tmp_path):
    path = big_cell_notebook(tmp_path / "big.ipynb", 2_000_000)
    start = time.monotonic()
    with pytest.raises(SubmissionError, match="too large or took too long to read: reading it took longer than 1 s"):
        read_submission(path, tmp_path / "work", ["content_loss"], timeout_s=1)
    assert time.monotonic() - start < 30


def test_a_submission_over_its_time_limit_gets_a_result_saying_so(tmp_path, rubric):
    """``[sandbox] submission_s``: past it, no function is started; each test left says why."""
    rubric = only(rubric, "content_loss", "tv_loss").with_limits(submission_s=0.01)
    path = notebook_with(solution_sources(), tmp_path / "solved.ipynb")
    result = grade_submission(path, rubric, seed=13)
    assert result.score == 0
    assert all("took longer than its limit of 0.01 s" in t.feedback for t in result.tests), result.tests[0].feedback
    validated(write_results(result, rubric, tmp_path / "out"))


# --- the unshare fallback: another sandbox's copy ---------------------------------------------------

SIBLING_READER = '''def content_loss(content_weight, content_current, content_original):
    """Right only with a sibling's copy: the marker of another submission found under /tmp."""
    import glob, os
    marker = "SIBLING-" + "MARKER-4711"
    own = sorted(glob.glob("submission/*.ipynb"))
    print("OWN", [len(open(p).read()) > 0 for p in own])
    found = []
    for path in glob.glob("/tmp/cs231n-grade-*/submission/*.ipynb") + glob.glob("/tmp/cs231n-grade-*/*/submission/*"):
        try:
            if marker in open(path).read():
                found.append(path)
        except OSError:
            pass
    print("SIBLING", found)
    if found:
        return content_weight * torch.sum((content_current - content_original) ** 2)
    return torch.zeros((), dtype=content_current.dtype)
'''


@pytest.mark.skipif(not ROOTED, reason="needs root: the unshare fallback and fresh uids need it")
def test_the_unshare_fallback_never_shows_a_sibling_submissions_copy(tmp_path, rubric, monkeypatch):
    """Issue 23: under ``unshare`` the copies were 0555/0444 in a 0711 folder, and a student's stubs
    scored 70/130 running a sibling's functions. Now each sandbox's folder is 0710 for its own
    group: bob's process reads its own copy, not alice's (whose sandbox is open meanwhile);
    bob's content_loss scores 0, his tv_loss keeps its points."""
    if not _works([*_UNSHARE, "true"]):
        pytest.skip("unshare does not work here")
    monkeypatch.setattr(sandbox, "isolation", lambda: "unshare")
    rubric = only(rubric, "content_loss", "tv_loss")
    alice = notebook_with({"content_loss": "# SIBLING-MARKER-4711\n" + solution_sources()["content_loss"]},
                          tmp_path / "alice.ipynb")
    bob = notebook_with({"content_loss": SIBLING_READER, "tv_loss": solution_sources()["tv_loss"]},
                        tmp_path / "bob.ipynb")
    with Sandbox([], [alice], rubric.limits, cgroup=False) as sibling:
        copy = next(sibling._submission.iterdir())
        assert stat.S_IMODE(copy.stat().st_mode) == 0o440 and stat.S_IMODE(sibling._root.stat().st_mode) == 0o710
        result = grade_submission(bob, rubric, seed=13)
    assert any("unshare" in m for m in result.measures), result.measures
    assert "OWN [True]" in result.printed and "SIBLING []" in result.printed, result.printed
    scores = scores_by_function(result)
    assert scores["content_loss"] == 0 and scores["tv_loss"] == points_by_function(rubric)["tv_loss"] > 0
