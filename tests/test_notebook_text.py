"""The notebooks' text says what their own outputs show (issue #24).

The solution notebooks are stored executed (``tools/make_student_notebooks.py --execute``). Where a
markdown cell states a number or a comparison about an output - how many sample images the list
printed has, which notebooks there are, how two printed losses compare - it is read here and checked
against the stored outputs; durations name the machine they were measured on ("a quiet 2-core CPU"),
since the stored outputs' own times are those of whichever machine executed the notebook. Before this
test, notebook 05 said "the two losses are close" above 4.758e+04 and 2.936e+04, and notebook 00
announced three photographs and three textures above a list of eleven images.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cs231n_style.notebook import is_check_cell, read_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
NUMBERS = {word: n for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split())}


def _notebook(prefix: str):
    (path,) = SOLUTIONS.glob(f"{prefix}_*.ipynb")
    return read_notebook(path)


def _cell(nb, grade_id: str):
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return cell


def _printed(cell) -> str:
    """What a code cell printed (streams) and showed as text (results), as stored."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "text/plain" in output.get("data", {}):
            parts.append(output.data["text/plain"])
    return "".join(parts)


def _code_after(nb, cell) -> object:
    """The first code cell after a markdown cell."""
    index = nb.cells.index(cell)
    return next(c for c in nb.cells[index + 1:] if c.cell_type == "code")


def _number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBERS[word.lower()]


# --- notebook 00 --------------------------------------------------------------------------------------------

def test_notebook_00s_table_lists_every_notebook_of_the_course():
    table = _cell(_notebook("00"), "nb00-md01").source
    listed = {int(n) for n in re.findall(r"^\| (\d+)(?: \(this one\))? \|", table, flags=re.MULTILINE)}
    assert listed == {int(path.name[:2]) for path in SOLUTIONS.glob("*.ipynb")}, table


def test_notebook_00_counts_the_sample_images_it_then_prints():
    nb = _notebook("00")
    text = " ".join(_cell(nb, "nb00-md03").source.split())
    total = re.search(r"ships (\w+) sample images", text)
    kinds = re.findall(r"(\w+) (?:generated )?(photographs|paintings|textures)", text)
    samples = ast.literal_eval(_printed(_code_after(nb, _cell(nb, "nb00-md03"))).splitlines()[0])
    assert total and kinds, text
    assert _number(total.group(1)) == sum(_number(n) for n, _ in kinds) == len(samples), (text, samples)


# --- every notebook -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(SOLUTIONS.glob("*.ipynb")), ids=lambda p: p.name[:2])
def test_check_cells_show_their_verdicts_and_nothing_else(path):
    """No stray ``True`` under ``cs.check_all(...)``: a check cell shows one verdict line per check."""
    for cell in read_notebook(path).cells:
        if cell.cell_type == "code" and is_check_cell(cell):
            assert not [o for o in cell.outputs if o.output_type in ("execute_result", "display_data")], cell.source
            lines = _printed(cell).splitlines()
            assert lines and all(re.match(r"\w+: (PASS|FAIL|NOT IMPLEMENTED YET) - ", line) for line in lines), lines


@pytest.mark.parametrize("path", sorted(SOLUTIONS.glob("*.ipynb")), ids=lambda p: p.name[:2])
def test_stated_durations_name_the_machine(path):
    """A number of seconds in the text says how it was measured: wall time on a quiet 2-core CPU, or CPU
    time (which a busy machine changes little). The printed times are the executing machine's."""
    for cell in read_notebook(path).cells:
        text = " ".join(cell.source.split())
        if cell.cell_type == "markdown" and re.search(r"\b\d+(\.\d+)? s\b", text):
            assert "quiet 2-core CPU" in text or re.search(r"s of CPU\b|CPU time", text), cell.source


# --- notebook 05 --------------------------------------------------------------------------------------------

def _scale_control_runs(nb) -> dict[str, tuple[float, float]]:
    """Run name -> (seconds, final loss), as section 4's table printed them."""
    printed = _printed(_code_after(nb, _cell(nb, "nb05-md14")))
    rows = re.findall(r"^(384 px directly|coarse to fine)\s+stages \([\d, ]+\)\s+([\d.]+) s\s+final loss ([\d.e+-]+)",
                      printed, flags=re.MULTILINE)
    assert len(rows) == 2, printed
    return {name: (float(seconds), float(loss)) for name, seconds, loss in rows}


def test_notebook_05s_comparison_of_the_two_scale_control_runs_matches_what_they_printed():
    """The losses are deterministic (seeded), so the text can quote them; the wall times are the executing
    machine's, so the text states the work (and a measured CPU-time ratio), not a wall-time ratio."""
    nb = _notebook("05")
    runs = _scale_control_runs(nb)
    (direct_s, direct_loss), (fine_s, fine_loss) = runs["384 px directly"], runs["coarse to fine"]
    text = " ".join(_cell(nb, "nb05-md15").source.split())
    assert "close" not in text and "times as long as the direct run" not in text.replace("1.3 times as long", ""), text
    lower = re.search(r"ends at a loss about (\d+)% lower", text)
    assert lower, text
    assert fine_loss < direct_loss and abs(100 * (1 - fine_loss / direct_loss) - int(lower.group(1))) <= 5, runs
    assert direct_s > 0 and fine_s > 0
