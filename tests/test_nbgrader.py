"""nbgrader, with its default settings, runs the course: generate the assignment from ``solutions/``,
autograde a submission with the solutions filled in (full marks) and the untouched stubs (0), on a
busy machine: two processes keep the CPU busy beside it, as other students' kernels do on a hub,
and nbgrader stops any cell after its default 30 s. The style transfer runs are cut short while
nbgrader grades (``NBGRADER_EXECUTION``; ``cs231n_style.transfer.GRADING_STEPS``).

The nbgrader assignment is the whole course, its notebooks in one folder (notebooks 3 and 4
load the functions of 1 and 2 from next to themselves). Its autograded test cells are the check
cells of notebooks 1-3, 5 and 6, one per function, each worth that function's public points in
``autograder/rubric.toml`` (the rubric's public test *is* that check); the hidden tests stay with
our own autograder. So nbgrader's total is the rubric's public total: 40 (of 145), of which
notebook 05's spatial control (``check_guided_gram_matrix``, ``check_guided_style_loss``) has 10 and
notebook 06's photorealism (``check_photorealism_loss``) 5.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import cs231n_style as cs
from autograder.authoring import BEGIN_SOLUTION, fill_in_solutions
from autograder.rubric import load_rubric
from cs231n_style.notebook import is_check_cell, is_solution_cell, read_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
ASSIGNMENT = "style_transfer"


def _nbgrader_cells(path: Path) -> list:
    return [cell for cell in read_notebook(path).cells if "nbgrader" in cell.metadata]


def _public_points() -> dict[str, float]:
    points: dict[str, float] = {}
    for test in load_rubric().tests:
        if not test.hidden:
            points[test.function] = points.get(test.function, 0) + test.points
    return points


def test_test_cells_are_the_check_cells_worth_the_rubrics_public_points():
    points: dict[str, float] = {}
    for path in SOLUTIONS:
        for cell in _nbgrader_cells(path):
            meta = cell.metadata["nbgrader"]
            if meta["grade"]:
                assert cell.cell_type == "code" and not meta["solution"] and meta["locked"]
                assert is_check_cell(cell), f"{path.name}: test cell {meta['grade_id']} is not a check cell"
                function = meta["grade_id"].removeprefix("check_")
                assert cell.source == f"cs.check_{function}({function}).raise_if_failed()"
                points[function] = points.get(function, 0) + meta["points"]
    assert points == _public_points()
    assert points["guided_gram_matrix"] == points["guided_style_loss"] == points["photorealism_loss"] == 5
    assert sum(points.values()) == 40


def test_nbgrader_solution_cells_are_our_solution_cells():
    for path in SOLUTIONS:
        for cell in read_notebook(path).cells:
            meta = cell.metadata.get("nbgrader", {})
            assert bool(meta.get("solution")) == is_solution_cell(cell), f"{path.name}: {cell.source[:60]}"
            if is_solution_cell(cell):
                assert meta["grade_id"] == cell.source.split("def ", 1)[1].split("(", 1)[0] and not meta["locked"]
            if cell.cell_type == "markdown":
                assert meta.get("locked"), f"{path.name}: the markdown cell {cell.id} is not read-only"


def test_a_failed_check_fails_its_cell_with_the_verdict(capsys):
    def wrong(features, normalize=True):
        return features.sum()

    result = cs.check_gram_matrix(wrong)
    with pytest.raises(AssertionError) as raised:
        result.raise_if_failed()
    assert str(raised.value) == result.message and result.message.startswith("gram_matrix: FAIL")
    assert capsys.readouterr().out.strip() == result.message  # printed once, by the check
    tv_loss = cs.load_functions(ROOT / "solutions" / "03_tv_loss.ipynb", ["tv_loss"]).tv_loss
    passed = cs.check_tv_loss(tv_loss)
    assert passed.raise_if_failed() is passed


# --- the real nbgrader commands ----------------------------------------------------------------

def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the ``nbgrader ARGS`` command in the course folder with nbgrader's default settings (no
    config file, and none of this machine's user config: ``JUPYTER_CONFIG_DIR`` is an empty folder),
    as from an activated environment (nbgrader runs the ``alembic`` command it installs)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(course.parent / "jupyter-config"), "CS231N_STYLE_DEVICE": "cpu"}
    done = subprocess.run([str(bin_dir / "nbgrader"), *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


def _scores(course: Path, student: str) -> tuple[float, float, dict[str, float]]:
    """(score, max score, grade id -> score) of a student's autograded submission, from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student)
        cells = {grade.name: grade.score for notebook in submission.notebooks for grade in notebook.grades}
        return submission.score, submission.max_score, cells


@contextlib.contextmanager
def busy_cpus(count: int = 2):
    """``count`` processes that spin on the CPU for as long as the block runs (a loaded grading machine)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@pytest.mark.slow
def test_nbgrader_generates_and_autogrades_full_marks_and_zero(tmp_path):
    pytest.importorskip("nbgrader", reason="nbgrader is the instructors' extra: pip install -e '.[instructor]'")
    course = tmp_path / "course"
    (tmp_path / "jupyter-config").mkdir()
    shutil.copytree(ROOT / "solutions", course / "source" / ASSIGNMENT)
    start = time.perf_counter()
    _nbgrader(course, "generate_assignment", ASSIGNMENT)
    release = course / "release" / ASSIGNMENT
    assert sorted(p.name for p in release.glob("*.ipynb")) == [p.name for p in SOLUTIONS]
    for path in sorted(release.glob("*.ipynb")):
        released = read_notebook(path)
        text = "\n".join(cell.source for cell in released.cells)
        assert BEGIN_SOLUTION not in text
        if any(is_solution_cell(cell) for cell in released.cells):  # notebooks 1-3
            assert "# HINT:" in text and "raise NotImplementedError()" in text  # nbgrader's own stub
        solved = fill_in_solutions(released, read_notebook(ROOT / "solutions" / path.name))
        for student, notebook in (("solved", solved), ("stubs", released)):
            folder = course / "submitted" / student / ASSIGNMENT
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, folder / path.name)
    with busy_cpus(2):
        _nbgrader(course, "autograde", ASSIGNMENT)
    seconds = time.perf_counter() - start

    public = _public_points()
    expected_cells = {f"check_{name}": points for name, points in public.items()}
    score, max_score, cells = _scores(course, "solved")
    assert (score, max_score) == (sum(public.values()), sum(public.values())), cells
    assert cells == expected_cells
    score, max_score, cells = _scores(course, "stubs")
    assert (score, max_score) == (0, sum(public.values()))
    assert cells == {name: 0 for name in expected_cells}
    feedback = course / "autograded" / "stubs" / ASSIGNMENT / "01_content_loss.ipynb"
    outputs = [out for cell in read_notebook(feedback).cells if cell.id == "nb01-code03" for out in cell.outputs]
    assert any(out.get("ename") == "AssertionError" and "NOT IMPLEMENTED YET" in out.get("evalue", "")
               for out in outputs)
    runs = [out.get("text", "") for cell in read_notebook(course / "autograded" / "solved" / ASSIGNMENT
                                                      / "04_style_transfer.ipynb").cells
            for out in cell.get("outputs", []) if out.get("name") == "stdout"]
    assert sum("nbgrader is grading: this style transfer runs" in text for text in runs) >= 3, runs
    skipped = [out.get("text", "") for cell in read_notebook(feedback).cells for out in cell.get("outputs", [])]
    assert any("skipped: fix content_loss first" in text for text in skipped), skipped  # not a cascade of errors
    print(f"nbgrader generate_assignment + autograde of 2 submissions, beside 2 busy processes: {seconds:.0f} s")
