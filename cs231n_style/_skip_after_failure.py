"""After a failed check, a batch run of the notebook skips its later demo cells with one line each.

When a check fails (``cs.check_*``), the function it checked is broken, and the notebook's later
cells that use it fail too: ``NotImplementedError`` in the style transfer, then ``NameError`` for the
result it should have made, and so on - a screen of errors that hides the one verdict that matters.
Jupyter's *Run All* stops at the failed check cell anyway; a batch run (``make check``'s nbval, and
nbgrader's autograde and validate) goes on. There, once a check has failed, each later code cell
that does more than define (``def``, ``class``, ``import``, ``NAME = literal``) and does not run a
check keeps only its definitions (the other lines blanked out, so that later cells still find them and
tracebacks keep their line numbers), and prints instead::

    skipped: fix content_loss first (its check above failed)

A check that passes again takes its function off the list. Batch runs are told apart by their
environment: ``CS231N_STYLE_SKIP_AFTER_FAILED_CHECK=1`` (set by the course's conftest.py for nbval)
or ``NBGRADER_EXECUTION`` (set by nbgrader in the kernel it runs). Interactive sessions are
never changed, so a student's own debugging cells always run.

The cells are rewritten by an IPython input transformer (``input_transformers_post``), installed
by the first failed check; outside IPython nothing happens.
"""

from __future__ import annotations

import ast
import os
import sys

__all__ = ["BATCH_ENV_VAR", "record", "skipped_note"]

BATCH_ENV_VAR = "CS231N_STYLE_SKIP_AFTER_FAILED_CHECK"
#: The functions whose last check failed, in the order they failed (a dict as an ordered set).
_FAILED: dict[str, None] = {}


def _batch_run() -> bool:
    return os.environ.get(BATCH_ENV_VAR) == "1" or "NBGRADER_EXECUTION" in os.environ


def record(name: str, passed: bool) -> None:
    """Note a check's outcome; after a failure in a batch run under IPython, install the cell rewriter.

    Args:
        name: the function checked, e.g. ``"content_loss"``.
        passed: whether its check passed.
    """
    if passed:
        _FAILED.pop(name, None)
        return
    _FAILED[name] = None
    if not _batch_run() or "IPython" not in sys.modules:
        return
    shell = sys.modules["IPython"].get_ipython()
    if shell is not None and _skip_cell not in shell.input_transformers_post:
        shell.input_transformers_post.append(_skip_cell)


def _kept(node: ast.stmt) -> bool:
    """Whether a statement of a skipped cell is kept: a definition, an import, or ``NAME = literal``."""
    from .notebook import _is_constant  # the rule by which load_functions keeps a notebook's constants

    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)) \
        or _is_constant(node)


def _rewritten(source: str, note: str) -> str | None:
    """A cell's source with its demo statements blanked out (line numbers kept) and the note printed,
    or ``None`` when the cell runs as it is: it runs a check, holds only definitions, or does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None  # IPython reports it
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if callee.startswith("check_"):
                return None
    if all(_kept(node) for node in tree.body):
        return None
    lines = source.splitlines()
    keep: set[int] = set()
    for node in tree.body:
        if _kept(node):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            keep.update(range(first, (node.end_lineno or node.lineno) + 1))
    kept = [line if number in keep else "" for number, line in enumerate(lines, start=1)]
    return "\n".join([*kept, f"print({note!r})"]) + "\n"


def skipped_note() -> str | None:
    """The line a skipped cell prints, or ``None`` when no check has failed.

    Returns:
        e.g. ``"skipped: fix content_loss first (its check above failed)"``.
    """
    if not _FAILED:
        return None
    names = list(_FAILED)
    whose = "its check" if len(names) == 1 else "their checks"
    return f"skipped: fix {', '.join(names)} first ({whose} above failed)"


def _skip_cell(lines: list[str]) -> list[str]:
    """IPython input transformer: a cell's lines, or :func:`_rewritten`'s when a check has failed."""
    note = skipped_note()
    rewritten = None if note is None else _rewritten("".join(lines), note)
    return lines if rewritten is None else rewritten.splitlines(keepends=True)
