"""Make student notebooks from solution notebooks: for course authors, never needed by students.

``solutions/`` holds the complete notebooks, the one source of truth; ``tools/make_student_notebooks.py``
turns each into its student copy with :func:`make_student_notebook`, an ordered list of small
steps with one signature (as nbgrader's preprocessors). The stubs are made by nbgrader's own
``ClearSolutions`` (nbgrader, the ``instructor`` extra, is imported only then): the code between
:data:`BEGIN_SOLUTION` and :data:`END_SOLUTION` (nbgrader's markers) becomes :data:`CODE_STUB`.
Which cells are solutions, checks or solution-only is read through the cell-role predicates of
:mod:`cs231n_style.notebook`.

The solution notebooks also carry nbgrader's cell metadata (``cell.metadata["nbgrader"]``:
solution cells, read-only cells, and the check cells of notebooks 1-3 as autograded test cells),
so that ``nbgrader generate_assignment`` and ``nbgrader autograde`` work on them as they are.

:func:`fill_in_solutions` goes the other way: a student notebook with the solutions put back, as a
student who solved everything would have it (the tests and CI use it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import nbformat

from cs231n_style.notebook import METADATA_KEY, is_check_cell, is_solution_cell, is_solution_only_cell

__all__ = [
    "BEGIN_SOLUTION",
    "CODE_STUB",
    "END_SOLUTION",
    "EXPECTED_OUTPUT_NOTE",
    "STUDENT_STEPS",
    "fill_in_solutions",
    "make_student_notebook",
]

#: The markers of a solution region in a solution notebook's code (nbgrader's).
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"


# --- from a solution notebook to a student notebook, step by step ------------------------------

#: A step: ``step(nb, context) -> nb``; ``context["source"]`` names the solution notebook.
Step = Callable[[nbformat.NotebookNode, dict], nbformat.NotebookNode]

#: What a solution region (``### BEGIN SOLUTION`` ... ``### END SOLUTION``) becomes in student notebooks.
#: nbgrader's default stub is ``raise NotImplementedError()``; ours says why it raised (``python -m
#: cs231n_style`` prints the message). Comments above the region, such as ``# HINT:`` lines, stay.
CODE_STUB = '# YOUR CODE HERE\nraise NotImplementedError("not implemented yet")'


def replace_solutions_with_stubs(nb, context: dict):
    """Step: each solution region becomes :data:`CODE_STUB`, by nbgrader's own ``ClearSolutions``.

    So student notebooks get exactly the stubs ``nbgrader generate_assignment`` makes (with our
    stub text): the region is replaced at its indentation, lines outside it - the ``def`` line, the
    docstring, the ``# HINT:`` lines above the region - stay, and a region in a cell that is not an
    nbgrader solution cell is refused, as nbgrader refuses it.

    Raises:
        ValueError: for an unclosed region, or a region outside an nbgrader solution cell.
        ImportError: if nbgrader (the ``instructor`` extra) is not installed.
    """
    try:
        from nbgrader.preprocessors import ClearSolutions  # authoring only: not a student dependency
    except ImportError:
        raise ImportError("Making student notebooks uses nbgrader, an instructors' extra: "
                          "pip install 'cs231n-style[instructor]' (or .[dev] in the repository).") from None
    try:
        nb, _ = ClearSolutions(code_stub={"python": CODE_STUB}).preprocess(nb, {})
    except RuntimeError as error:  # nbgrader's way of refusing a notebook
        raise ValueError(f"{context['source']}: {error} (nbgrader's ClearSolutions; each {BEGIN_SOLUTION} needs an "
                         f"{END_SOLUTION}, in a cell with nbgrader metadata solution: true).") from None
    return nb


def drop_solution_only_cells(nb, context: dict):
    """Step: remove cells tagged ``"solution-only"``."""
    nb.cells = [cell for cell in nb.cells if not is_solution_only_cell(cell)]
    return nb


def clear_outputs_except_checks(nb, context: dict):
    """Step: clear outputs and counts, keeping the stored output of check cells for nbval; drop
    what a run leaves in the metadata (the widgets' saved state, per-cell timestamps).

    A check cell keeps its execution count too: nbval treats a cell without one as never run, and
    refuses one that has outputs ("Unrun reference cell has outputs").

    Not nbgrader's ``ClearOutput`` (nbconvert's ``ClearOutputPreprocessor``): it clears every code
    cell, with no way to keep some, and the expected verdicts of the check cells are what students
    compare their own runs with (``make check``, nbval).
    """
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code" and not is_check_cell(cell):
            cell.execution_count = None
            cell.outputs = []
    return nb


EXPECTED_OUTPUT_NOTE = "# The output below is what a correct function prints. Run this cell to check yours."


def explain_expected_outputs(nb, context: dict):
    """Step: say in each check cell that its stored output is the *expected* one, not a result."""
    for cell in nb.cells:
        if is_check_cell(cell) and not cell.source.startswith(EXPECTED_OUTPUT_NOTE):
            cell.source = EXPECTED_OUTPUT_NOTE + "\n" + cell.source
    return nb


def mark_generated(nb, context: dict):
    """Step: record in the notebook's metadata where it came from (a "generated" banner)."""
    nb.metadata[METADATA_KEY] = {
        "generated_from": context["source"],
        "generator": "tools/make_student_notebooks.py",
        "note": "Generated from the solution notebook - edit that one, then regenerate.",
    }
    return nb


# nbgrader's preprocessors, considered one by one: ClearSolutions makes the stubs (above). ClearOutput
# would also clear the check cells' expected output (see clear_outputs_except_checks). LockCells,
# ComputeChecksums, ClearHiddenTests and ClearMarkScheme serve nbgrader's own gradebook and release,
# which `nbgrader generate_assignment` runs on solutions/ itself; nbgrader has no step that drops a
# cell (drop_solution_only_cells) or explains an expected output.
STUDENT_STEPS: list[Step] = [
    drop_solution_only_cells,
    replace_solutions_with_stubs,
    clear_outputs_except_checks,
    explain_expected_outputs,
    mark_generated,
]


def make_student_notebook(solution, source_name: str, steps: Iterable[Step] = STUDENT_STEPS):
    """Make a student notebook from a solution notebook.

    Args:
        solution: an ``nbformat.NotebookNode`` (not modified).
        source_name: where it came from, e.g. ``"solutions/01_content_loss.ipynb"``.
        steps: the processing steps, each ``step(nb, context) -> nb``.

    Returns:
        A new ``nbformat.NotebookNode``.

    Raises:
        ValueError: if a ``### BEGIN SOLUTION`` has no matching ``### END SOLUTION``, or is in a
            cell that is not an nbgrader solution cell.
        ImportError: if nbgrader (the ``instructor`` extra) is not installed.
    """
    nb = copy.deepcopy(solution)
    context = {"source": source_name}
    for step in steps:
        nb = step(nb, context)
    return nb


# --- a solved student notebook ----------------------------------------------------------------

def fill_in_solutions(student, solution):
    """Return a copy of a student notebook with each stubbed cell's code taken from the solution.

    This is what a student who solved everything would have; CI uses it to show that the
    student checks pass on correct code. Cells are matched by their ``id``.

    Args:
        student: the student ``nbformat.NotebookNode``.
        solution: the solution ``nbformat.NotebookNode`` it was generated from.

    Returns:
        A new ``nbformat.NotebookNode``.

    Raises:
        LookupError: if a stubbed cell has no cell with the same id in the solution.
    """
    filled = copy.deepcopy(student)
    by_id = {cell.get("id"): cell for cell in solution.cells}
    for cell in filled.cells:
        if cell.cell_type == "code" and "raise NotImplementedError" in cell.source and is_solution_cell(cell):
            if cell.get("id") not in by_id:
                raise LookupError(f"No solution cell with id {cell.get('id')!r}.")
            cell.source = by_id[cell.get("id")].source
    return filled
