"""Student notebooks are exactly what the generator makes from the solutions, carry no solution
code, and keep the expected check outputs; student code is found in notebooks by one mechanism."""

import ast
import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from packaging.requirements import Requirement

import cs231n_style as cs
from autograder.authoring import (
    BEGIN_SOLUTION,
    END_SOLUTION,
    EXPECTED_OUTPUT_NOTE,
    fill_in_solutions,
    make_student_notebook,
)
from cs231n_style.diagnosis import uses_python_loops
from cs231n_style.notebook import (
    extract_functions,
    is_check_cell,
    is_solution_cell,
    is_solution_only_cell,
    read_notebook,
)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _generator():
    spec = importlib.util.spec_from_file_location("make_student_notebooks",
                                                  ROOT / "tools" / "make_student_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _solution_lines(nb) -> list[str]:
    """The code lines between the solution markers (HINT comments excepted)."""
    lines = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == BEGIN_SOLUTION:
                inside = True
            elif line.strip() == END_SOLUTION:
                inside = False
            elif inside and line.strip() and not line.strip().startswith("# HINT:"):
                lines.append(line.strip())
    return lines


def test_student_notebooks_are_exactly_what_the_generator_makes():
    wanted = _generator().student_notebooks()
    assert sorted(wanted) == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for name, text in wanted.items():
        assert (ROOT / "notebooks" / name).read_text() == text, (
            f"notebooks/{name} differs from what solutions/ generates. Course authors: run `make notebooks`. "
            "Students: this test is for the course's developers; check your work with `make check`.")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_student_notebook_has_no_solution_code_and_only_check_outputs(path):
    solution = read_notebook(path)
    student = read_notebook(ROOT / "notebooks" / path.name)
    student_text = "\n".join(cell.source for cell in student.cells)
    for line in _solution_lines(solution):
        assert line not in student_text, f"solution line leaked into notebooks/{path.name}: {line}"
    assert BEGIN_SOLUTION not in student_text
    assert "widgets" not in student.metadata  # the solution run's saved widget state is an output too
    for cell in student.cells:
        assert "execution" not in cell.metadata  # timestamps of the solution run
        if cell.cell_type != "code":
            continue
        if is_check_cell(cell):
            assert cell.execution_count is not None  # else nbval refuses its stored output
            assert "nbval-check-output" in cell.metadata.get("tags", [])
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert "PASS" in text and "FAIL" not in text
            assert cell.source.startswith(EXPECTED_OUTPUT_NOTE)  # not mistaken for a result
        else:
            assert cell.outputs == [] and cell.execution_count is None
    assert student.metadata["cs231n_style"]["generated_from"] == f"solutions/{path.name}"


def test_regenerating_never_overwrites_a_students_work(tmp_path, capsys):
    generator = _generator()
    wanted = generator.student_notebooks()
    name = "01_content_loss.ipynb"
    generator.write_student_notebooks(wanted, tmp_path)
    worked = read_notebook(tmp_path / name)
    for cell in worked.cells:
        if is_solution_cell(cell):
            cell.source = "def content_loss(w, a, b):\n    return w * ((a - b) ** 2).sum()\n"
    nbformat.write(worked, tmp_path / name)
    before = (tmp_path / name).read_text()
    changed = {**wanted, "02_style_loss.ipynb": wanted["02_style_loss.ipynb"].replace("HINT", "Hint")}
    kept = generator.write_student_notebooks(changed, tmp_path)
    assert kept == [name] and (tmp_path / name).read_text() == before
    out = capsys.readouterr().out
    assert "holds your work (your code for content_loss (cell " in out
    assert f"unchanged {tmp_path / '00_setup_and_features.ipynb'}" in out
    assert (tmp_path / "02_style_loss.ipynb").read_text() == changed["02_style_loss.ipynb"]  # a blank one is updated
    assert generator.write_student_notebooks(changed, tmp_path, force=True) == []
    assert (tmp_path / name).read_text() == wanted[name]


@pytest.mark.parametrize("notebook, names", [("02_style_loss.ipynb", ["gram_matrix", "style_loss"]),
                                             ("05_controlling_style_transfer.ipynb",
                                              ["guided_gram_matrix", "guided_style_loss"])])
def test_every_solution_region_becomes_a_stub_with_its_hints(notebook, names):
    student = read_notebook(ROOT / "notebooks" / notebook)
    stubs = [cell.source for cell in student.cells if is_solution_cell(cell)]
    assert len(stubs) == len(names)
    for source, name in zip(stubs, names, strict=True):
        hint = [line for line in source.splitlines() if line.strip().startswith("# HINT:")][-1]
        assert source.endswith(f"{hint}\n    # YOUR CODE HERE\n    raise NotImplementedError(\"not implemented yet\")")
        assert f"def {name}(" in source and '"""' in source


def test_stubs_are_nbgraders_own():
    """The stub step is nbgrader's ClearSolutions: it refuses what nbgrader refuses."""
    nb = _notebook(f"def f():\n    # HINT: keep me\n    {BEGIN_SOLUTION}\n    return 1\n    {END_SOLUTION}")
    with pytest.raises(ValueError, match="Solution region detected in a non-solution cell"):
        make_student_notebook(nb, "x.ipynb")
    nb.cells[0].metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False, "grade_id": "f",
                                        "schema_version": 3}
    student = make_student_notebook(nb, "x.ipynb")
    assert student.cells[0].source == ('def f():\n    # HINT: keep me\n    # YOUR CODE HERE\n'
                                       '    raise NotImplementedError("not implemented yet")')


def test_student_stubs_raise_not_implemented_and_checks_say_so(capsys):
    functions = cs.load_functions(ROOT / "notebooks" / "02_style_loss.ipynb", ["gram_matrix", "style_loss"])
    with pytest.raises(NotImplementedError):
        functions.gram_matrix(None)
    assert cs.check_gram_matrix(functions.gram_matrix).status == "not implemented"
    assert "NOT IMPLEMENTED YET" in capsys.readouterr().out


def _notebook(*sources, role="solution"):
    nb = new_notebook()
    for source in sources:
        cell = new_code_cell(source)
        if role and "def " in source:
            cell.metadata["cs231n_style"] = {"role": role}
        nb.cells.append(cell)
    return nb


def test_extract_functions_uses_tags_then_falls_back_to_names(tmp_path):
    nb = _notebook("%matplotlib inline\nimport torch\nimport numpy as np",
                   "def helper(x):\n    return x * 2\n\ndef content_loss(w, a, b):\n    return w * helper(a - b)",
                   "print('not run')", role="solution")
    untagged = "def tv_loss(img, w):\n    return w * img.sum()\n\nresult = tv_loss(1, 2)"
    nb.cells.append(new_code_cell(untagged))
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    code = extract_functions(path, ["content_loss", "tv_loss", "gram_matrix"])
    assert code.origin == {"content_loss": "tagged cell", "tv_loss": "found by name"}
    assert "helper" in code.helpers and "import torch" in code.imports
    assert "not found" in code.problems["gram_matrix"] or "no function" in code.problems["gram_matrix"]
    loaded = cs.load_functions(path, ["content_loss", "tv_loss"])
    assert loaded.content_loss(3, 2, 1) == 6  # helper came along; print('not run') and result= did not run


def test_syntax_error_costs_only_that_function(tmp_path):
    nb = _notebook("import torch", "def gram_matrix(f):\n    return f +* 2", "def tv_loss(img, w):\n    return w")
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    code = extract_functions(path, ["gram_matrix", "tv_loss"])
    assert "syntax error" in code.problems["gram_matrix"] and "tv_loss" in code.functions
    with pytest.raises(LookupError, match="gram_matrix: the cell defining gram_matrix has a syntax error"):
        cs.load_functions(path, ["gram_matrix"])
    assert cs.load_functions(path, ["tv_loss"]).tv_loss(None, 5) == 5


def test_last_definition_wins_as_when_run_top_to_bottom(tmp_path):
    nb = _notebook("def tv_loss(img, w):\n    return 1", "def tv_loss(img, w):\n    return 2", role=None)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert cs.load_functions(path, ["tv_loss"]).tv_loss(None, None) == 2


def test_fill_in_solutions_restores_the_solution_code():
    for path in SOLUTIONS:
        solution = read_notebook(path)
        student = read_notebook(ROOT / "notebooks" / path.name)
        filled = fill_in_solutions(student, solution)
        originals = [c for c in solution.cells if not is_solution_only_cell(c)]
        for cell, original in zip(filled.cells, originals, strict=True):
            if is_solution_cell(cell):
                assert cell.source == original.source
        assert "raise NotImplementedError" not in "\n".join(c.source for c in filled.cells)


def test_unclosed_solution_region_is_an_error():
    nb = _notebook(f"def f():\n    {BEGIN_SOLUTION}\n    return 1")
    with pytest.raises(ValueError, match=r"x.ipynb: no end solution statement found"):
        make_student_notebook(nb, "x.ipynb")


def test_generator_does_not_modify_its_input():
    solution = read_notebook(SOLUTIONS[1])
    before = copy.deepcopy(solution)
    make_student_notebook(solution, "solutions/x.ipynb")
    assert solution == before


def test_a_later_definition_in_an_untagged_cell_wins_as_in_jupyter(tmp_path):
    """A student who leaves the stub and writes the function in a new cell below gets their code."""
    stub = 'def content_loss(w, a, b):\n    raise NotImplementedError("content_loss is not implemented yet")'
    nb = _notebook("import torch", stub, role="solution")
    nb.cells.append(new_code_cell("def content_loss(w, a, b):\n    return w * (a - b) ** 2"))
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert cs.load_functions(path, ["content_loss"]).content_loss(2, 3, 1) == 8
    assert extract_functions(path, ["content_loss"]).origin["content_loss"] == "found by name"


def test_literal_constants_come_along_but_no_other_statements(tmp_path):
    nb = _notebook("import torch\nSCALE = 2.0\nLAYERS: tuple = (1, 4)\nboom = 1 / 0\nprint('side effect')",
                   "def tv_loss(img, w):\n    return w * SCALE * len(LAYERS)")
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert cs.load_functions(path, ["tv_loss"]).tv_loss(None, 3) == 12.0  # 1 / 0 never ran


def test_tracebacks_point_at_the_line_in_the_students_cell(tmp_path, capsys):
    nb = _notebook("import torch", "# my loss\n\ndef tv_loss(img, tv_weight):\n    x = img @ img\n    return x.sum()")
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    result = cs.check_tv_loss(cs.load_functions(path, ["tv_loss"]).tv_loss)
    assert "in your code (tv_loss), line 4: x = img @ img" in result.message
    capsys.readouterr()


def test_loop_detection_sees_the_source_of_loaded_functions(tmp_path):
    looped = ("def tv_loss(img, tv_weight):\n    total = 0\n    for i in range(img.shape[2] - 1):\n"
              "        total = total + ((img[:, :, i + 1] - img[:, :, i]) ** 2).sum()\n    return total")
    nb = _notebook("import torch", looped)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert uses_python_loops(cs.load_functions(path, ["tv_loss"]).tv_loss) is True


# --- the first cells: open in Colab, install the course where it is missing ---------------------

#: The placeholder repository in the notebooks' Colab links and set-up cells (docs/instructors.md: Colab).
PLACEHOLDER_REPO = "YOUR-ORG/cs231n-style"
COLAB_URL = "https://colab.research.google.com/github/{repo}/blob/main/notebooks/{name}"


def _setup_cell(nb):
    return next(cell for cell in nb.cells if cell.cell_type == "code")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_each_notebook_starts_with_its_colab_link_and_the_same_set_up_cell(path):
    first_setup = _setup_cell(read_notebook(SOLUTIONS[0])).source
    for nb in (read_notebook(path), read_notebook(ROOT / "notebooks" / path.name)):
        badge = nb.cells[0]
        assert badge.cell_type == "markdown"
        assert f"]({COLAB_URL.format(repo=PLACEHOLDER_REPO, name=path.name)})" in badge.source
        setup = _setup_cell(nb)
        assert setup.source == first_setup  # one set-up cell, the same in every notebook
        assert f'COURSE_REPO = "https://github.com/{PLACEHOLDER_REPO}"' in setup.source
        assert setup.metadata["nbgrader"]["locked"]
        ast.parse(setup.source)  # plain Python (the extractor parses cells; no %pip)


def test_set_up_cell_installs_the_course_only_where_it_is_missing(monkeypatch, capsys):
    source = _setup_cell(read_notebook(SOLUTIONS[0])).source
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    exec(compile(source, "set-up cell", "exec"), namespace := {})
    assert calls == [] and namespace["cs"] is cs  # installed: it only imports

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "cs231n_style" else real_find_spec(name, *args))
    with pytest.raises(SystemExit, match="COURSE_REPO above is still the placeholder"):  # not set: no pip run
        exec(compile(source, "set-up cell", "exec"), {})
    assert calls == []
    course = source.replace(PLACEHOLDER_REPO, "a-university/style-course")  # as an instructor sets it
    exec(compile(course, "set-up cell", "exec"), namespace := {})
    [(args, kwargs)] = calls
    command = args[0]
    assert command[:4] == [sys.executable, "-m", "pip", "install"] and kwargs == {"check": True}
    requirement = Requirement(command[-1])
    assert requirement.name == "cs231n-style" and requirement.url == "git+https://github.com/a-university/style-course"
    assert "from https://github.com/a-university/style-course" in capsys.readouterr().out
    assert namespace["cs"] is cs


def test_making_student_notebooks_without_nbgrader_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "nbgrader.preprocessors", None)  # as if nbgrader were not installed
    with pytest.raises(ImportError, match=r"pip install 'cs231n-style\[instructor\]'"):
        make_student_notebook(read_notebook(SOLUTIONS[1]), "solutions/01_content_loss.ipynb")


def test_load_functions_without_names_loads_what_that_course_notebook_defines():
    loaded = cs.load_functions(ROOT / "solutions" / "02_style_loss.ipynb")
    assert sorted(vars(loaded)) == ["gram_matrix", "style_loss"]
    assert sorted(vars(cs.load_functions(ROOT / "solutions" / "01_content_loss.ipynb"))) == ["content_loss"]
