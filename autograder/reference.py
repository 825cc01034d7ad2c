"""The reference functions, loaded in the grader's own process from the solution source.

The source is either the solution notebooks (``solutions/``, searched like a submission, through
``cs231n_style.notebook.extract_functions``) or one Python file of the extracted functions
(``reference_solutions.py`` in the Gradescope zip, written by :func:`reference_source`). The
sandboxed student process never sees either.
"""

from __future__ import annotations

import os
import types
from pathlib import Path

from cs231n_style.notebook import ALL_STUDENT_FUNCTIONS, NOTEBOOK_OF, OPTIONAL_FUNCTIONS, STUDENT_FUNCTIONS

from .submission import find_student_code


class MissingReference(LookupError):
    """The rubric grades a function the reference solutions do not have (e.g. notebook 05's, with its
    section on and no notebook 05 in the solutions); raised by the grader before any grading."""


__all__ = [
    "SOLUTIONS",
    "MissingReference",
    "default_reference_path",
    "load_reference",
    "reference_source",
    "require_reference",
]

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def default_reference_path() -> Path:
    """``$CS231N_REFERENCE`` if set, else the repository's ``solutions/`` folder."""
    return Path(os.environ.get("CS231N_REFERENCE", SOLUTIONS))


def reference_source(path: str | Path | None = None) -> str:
    """The reference functions' source as one module (imports, helpers, the functions).

    The four of ``STUDENT_FUNCTIONS`` must be there; those of the optional notebooks 05 and 06
    (``OPTIONAL_FUNCTIONS``) are included when the solutions have them (a course without notebook 05
    has none of its two).

    Args:
        path: a folder of solution notebooks or a ``.py`` file; default :func:`default_reference_path`.

    Raises:
        LookupError: if one of the four functions is missing from the solution notebooks, or an
            optional notebook (05, 06) is there without its functions.
    """
    path = Path(path) if path is not None else default_reference_path()
    if path.is_file() and path.suffix == ".py":
        return path.read_text()
    # only the notebooks that define graded functions: the others' helpers (e.g. notebook 07's
    # ``def run(style=STYLE, ...)``, whose default is no literal) cannot run outside their notebook
    notebooks = sorted(notebook for notebook in path.glob("*.ipynb") if notebook.name in NOTEBOOK_OF.values())
    found = find_student_code(notebooks, ALL_STUDENT_FUNCTIONS)
    present = {notebook.name for notebook in notebooks}
    required = STUDENT_FUNCTIONS + tuple(name for name in OPTIONAL_FUNCTIONS if NOTEBOOK_OF[name] in present)
    problems = {name: why for name, why in found.code.problems.items() if name in required}
    if problems:
        raise LookupError(f"reference functions missing in {path}: {problems}")
    return found.code.module_source()


def load_reference(path: str | Path | None = None) -> types.SimpleNamespace:
    """The reference functions: the four (``content_loss``, ``gram_matrix``, ``style_loss``,
    ``tv_loss``), and ``guided_gram_matrix``, ``guided_style_loss`` and ``photorealism_loss`` where the
    source has them (see :func:`reference_source`). Missing optional ones are absent attributes."""
    module = types.ModuleType("cs231n_reference")
    exec(compile(reference_source(path), "<reference solutions>", "exec"), module.__dict__)
    return types.SimpleNamespace(**{name: module.__dict__[name] for name in ALL_STUDENT_FUNCTIONS
                                    if callable(module.__dict__.get(name))})


def require_reference(functions, reference, where) -> None:
    """Refuse a rubric that grades a function the reference lacks (an instructor's set-up error:
    notebook 05 missing from the solutions while the rubric's spatial_control section is on, or
    notebook 06 while its photorealism section is on).

    Args:
        functions: the functions the rubric grades (``Rubric.functions``).
        reference: the reference functions (:func:`load_reference`).
        where: the reference's folder or file, named in the message.

    Raises:
        autograder.reference.MissingReference: naming the missing functions, their notebooks, and the
            two ways out.
    """
    missing = [name for name in functions if not callable(getattr(reference, name, None))]
    if missing:
        raise MissingReference(f"the rubric grades {missing}, but the reference solutions ({where}) have no such "
                               f"function: add {sorted({NOTEBOOK_OF[name] for name in missing})} to the solutions, "
                               "or switch its section off in the rubric's [sections] (e.g. spatial_control = false, "
                               "photorealism = false)")
