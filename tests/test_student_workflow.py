"""The students' own test command proves both directions (issue: "CI shows both").

Students run ``pytest notebooks/`` (nbval on their notebooks plus ``notebooks/test_my_functions.py``).
Here that command runs on a copy of the untouched student notebooks - every function must be
reported "not implemented" and the run must fail - and on a copy with the solution code filled in
(what a student who solved everything has), which must pass.
"""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from autograder.authoring import fill_in_solutions
from cs231n_style.notebook import ALL_STUDENT_FUNCTIONS, is_check_cell, read_notebook

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = list(ALL_STUDENT_FUNCTIONS)  # the four, notebook 05's two and notebook 06's photorealism_loss


def _student_copy(tmp_path: Path, filled: bool) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / "test_my_functions.py", folder)
    shutil.copy(ROOT / "conftest.py", tmp_path)  # as in the students' release: nbval's waits for a slow machine
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = read_notebook(path)
        if filled:
            nb = fill_in_solutions(nb, read_notebook(ROOT / "solutions" / path.name))
        nbformat.write(nb, folder / path.name)
    return folder


def _run_student_tests(folder: Path) -> tuple[int, str, dict[str, str]]:
    """Run the students' command; return exit code, output, and test id -> outcome."""
    report = folder.parent / "report.xml"
    command = [sys.executable, "-m", "pytest", str(folder), "--nbval-lax", "-p", "no:cacheprovider",
               f"--nbval-sanitize-with={ROOT / 'tests' / 'nbval_sanitize.cfg'}", f"--junitxml={report}",
               f"--rootdir={folder.parent}", "-q"]
    env = {**os.environ, "CS231N_STYLE_DEVICE": "cpu"}  # conftest.py has set CS231N_STYLE_WEIGHTS
    # A loaded machine may need several times the usual few minutes. A hung cell is stopped by
    # --nbval-cell-timeout (and reported) long before the whole run's limit.
    command.append("--nbval-cell-timeout=1200")
    try:
        done = subprocess.run(command, cwd=folder.parent, env=env, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the students' command ran over 3600 s; its output ended with:\n{str(error.stdout)[-3000:]}")
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcomes[name] = "failed" if case.find("failure") is not None or case.find("error") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")
    return done.returncode, done.stdout + done.stderr, outcomes


@pytest.mark.slow
def test_untouched_student_notebooks_fail_with_not_implemented(tmp_path):
    code, output, outcomes = _run_student_tests(_student_copy(tmp_path, filled=False))
    assert code == 1, output[-3000:]
    for name in FUNCTIONS:
        assert f"{name}: NOT IMPLEMENTED YET" in output, name
        unit = [k for k in outcomes if k.endswith(f"test_my_function[{name}]")]
        assert unit and outcomes[unit[0]] == "failed"
    failed = {k for k, v in outcomes.items() if v == "failed"}
    for stem in ("01_content_loss", "02_style_loss", "03_tv_loss", "04_style_transfer",
                 "05_controlling_style_transfer", "06_photorealistic_style_transfer"):
        assert any(stem in k for k in failed), f"{stem} should fail untouched"
    assert not any("00_setup_and_features" in k for k in failed), "notebook 0 has nothing to implement"
    for item in failed - {k for k in failed if "test_my_function" in k}:  # the demo cells after them are skipped
        notebook, _, cell = item.rpartition("::")
        path = next(p for p in (ROOT / "notebooks").glob("*.ipynb") if p.stem in notebook)
        code_cells = [c for c in read_notebook(path).cells if c.cell_type == "code"]
        assert is_check_cell(code_cells[int(cell.split()[-1])]), f"{item} failed but is no check cell"
    last = _last_lines(output, len(FUNCTIONS))  # make check ends with each function's whole verdict
    assert sorted(line.split(":")[0] for line in last) == sorted(FUNCTIONS), last
    assert all("NOT IMPLEMENTED YET" in line and line.endswith("run this check again.") for line in last), last


def _last_lines(output: str, count: int) -> list[str]:
    """The ``count`` lines before pytest's final counts line: conftest.py's one line per function."""
    lines = [line for line in output.splitlines() if line.strip()]
    end = max(i for i, line in enumerate(lines) if " in " in line and ("passed" in line or "failed" in line))
    assert "your functions" in lines[end - count - 1], lines[end - count - 3:end + 1]
    return lines[end - count:end]


@pytest.mark.slow
def test_student_notebooks_with_solutions_filled_in_pass(tmp_path):
    code, output, outcomes = _run_student_tests(_student_copy(tmp_path, filled=True))
    assert code == 0, output[-3000:]
    assert sum(v == "passed" for v in outcomes.values()) >= 7 + 7  # 7 unit tests + cells of 7 notebooks
    assert all(v == "passed" for v in outcomes.values())
    assert sorted(_last_lines(output, len(FUNCTIONS))) == sorted(f"{name}: PASS" for name in FUNCTIONS)
