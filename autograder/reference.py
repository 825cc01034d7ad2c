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

from cs231n_style.notebook import ALL_STUDENT_FUNCTIONS, GUIDED_FUNCTIONS, NOTEBOOK_OF, STUDENT_FUNCTIONS

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

    The four of ``STUDENT_FUNCTIONS`` must be there; notebook 05's (``GUIDED_FUNCTIONS``) are
    included when the solutions have them (a course without notebook 05 has none).

    Args:
        path: a folder of solution notebooks or a ``.py`` file; default :func:`default_reference_path`.

    Raises:
        LookupError: if one of the four functions is missing from the solution notebooks, or
            notebook 05 is there without its two functions.
    """
    path = Path(path) if path is not None else default_reference_path()
    if path.is_file() and path.suffix == ".py":
        return path.read_text()
    notebooks = sorted(path.glob("*.ipynb"))
    found = find_student_code(notebooks, ALL_STUDENT_FUNCTIONS)
    has_05 = any(notebook.name == NOTEBOOK_OF[GUIDED_FUNCTIONS[0]] for notebook in notebooks)
    required = ALL_STUDENT_FUNCTIONS if has_05 else STUDENT_FUNCTIONS
    problems = {name: why for name, why in found.code.problems.items() if name in required}
    if problems:
        raise LookupError(f"reference functions missing in {path}: {problems}")
    return found.code.module_source()


def load_reference(path: str | Path | None = None) -> types.SimpleNamespace:
    """The reference functions: the four (``content_loss``, ``gram_matrix``, ``style_loss``,
    ``tv_loss``), and ``guided_gram_matrix`` and ``guided_style_loss`` where the source has them
    (see :func:`reference_source`). Missing optional ones are absent attributes."""
    module = types.ModuleType("cs231n_reference")
    exec(compile(reference_source(path), "<reference solutions>", "exec"), module.__dict__)
    return types.SimpleNamespace(**{name: module.__dict__[name] for name in ALL_STUDENT_FUNCTIONS
                                    if callable(module.__dict__.get(name))})


def require_reference(functions, reference, where) -> None:
    """Refuse a rubric that grades a function the reference lacks (an instructor's set-up error:
    notebook 05 missing from the solutions while the rubric's spatial_control section is on).

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
                               "or switch its section off in the rubric's [sections] (e.g. spatial_control = false)")
