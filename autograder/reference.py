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

from cs231n_style.notebook import STUDENT_FUNCTIONS

from .submission import find_student_code

__all__ = ["SOLUTIONS", "reference_source", "load_reference", "default_reference_path"]

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def default_reference_path() -> Path:
    """``$CS231N_REFERENCE`` if set, else the repository's ``solutions/`` folder."""
    return Path(os.environ.get("CS231N_REFERENCE", SOLUTIONS))


def reference_source(path: str | Path | None = None) -> str:
    """The reference functions' source as one module (imports, helpers, the four functions).

    Args:
        path: a folder of solution notebooks or a ``.py`` file; default :func:`default_reference_path`.

    Raises:
        LookupError: if a function is missing from the solution notebooks.
    """
    path = Path(path) if path is not None else default_reference_path()
    if path.is_file() and path.suffix == ".py":
        return path.read_text()
    found = find_student_code(sorted(path.glob("*.ipynb")))
    if found.code.problems:
        raise LookupError(f"reference functions missing in {path}: {found.code.problems}")
    return found.code.module_source()


def load_reference(path: str | Path | None = None) -> types.SimpleNamespace:
    """The four reference functions (``content_loss``, ``gram_matrix``, ``style_loss``, ``tv_loss``)."""
    module = types.ModuleType("cs231n_reference")
    exec(compile(reference_source(path), "<reference solutions>", "exec"), module.__dict__)
    return types.SimpleNamespace(**{name: module.__dict__[name] for name in STUDENT_FUNCTIONS})
