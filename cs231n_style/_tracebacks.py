"""The student's line in a traceback, as the checks and the autograder both say it.

When a student's function raises, the verdict ends with the line that raised, in the student's
own code: ``"\\n  in your code (gram_matrix), line 4: return F @ F.T"``. The notebook checks
(:mod:`cs231n_style.checks`) and the autograder's sandboxed runner (``autograder/runner.py``) tell
the student's frames apart differently - the checks skip torch's and their own, the runner keeps
the files it named after the student's notebook - so each passes its own test of a frame.

When the error is raised inside another of the student's functions (``guided_style_loss`` calls
``guided_gram_matrix``), the line that raised may be a right line given wrong arguments: the
pointer then names both - the call in the function that was called first, and the line inside the
helper - and, where the caller knows whether the helper passes its own check, which one to fix.

Standard library only, and no import of the package: the runner loads this one file by its path,
so that a student process starts without importing the rest of ``cs231n_style`` (torchvision, ...).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

__all__ = ["where_in_your_code"]


def _source(frame: traceback.FrameSummary) -> str:
    """The frame's source line, stripped; empty where Python could not read it."""
    return (frame.line or "").strip()


def where_in_your_code(error: BaseException, is_students: Callable[[traceback.FrameSummary], bool],
                       passes_own_check: Callable[[str], bool | None] | None = None) -> str:
    """Say where in the student's code ``error`` was raised.

    Args:
        error: a raised exception (its ``__traceback__`` is read; the source lines come from
            ``linecache``, which also knows code loaded from a notebook).
        is_students: whether a frame (``filename``, ``lineno``, ``name``, ``line``) is the student's.
        passes_own_check: for a helper the student wrote (a function name, e.g.
            ``"guided_gram_matrix"``), whether it passes its own notebook check (``None``: unknown).
            Used only when the error was raised inside a helper called from the student's function.

    Returns:
        ``""`` when no frame is the student's or its source line is unknown. When every student
        frame is in one function: ``"\\n  in your code (function), line N: source line"`` -
        ``" (function)"`` left out for a lambda or module-level code. When the innermost student
        frame is in another function (a helper) than the outermost (the function called): the
        line of the outer function that called the helper, and the helper's line that raised -
        first the caller's when the helper passes its own check (its arguments are wrong), first
        the helper's when it does not (fix it first), the caller's when unknown.
    """
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if is_students(frame)]
    if not frames or not frames[-1].line:
        return ""
    inner = frames[-1]
    outer_name = frames[0].name
    callers = [frame for frame in frames if frame.name == outer_name]
    anonymous = ("<module>", "<lambda>")
    if inner.name == outer_name or inner.name in anonymous or outer_name in anonymous or not callers[-1].line:
        function = "" if inner.name in anonymous else f" ({inner.name})"
        return f"\n  in your code{function}, line {inner.lineno}: {_source(inner)}"
    call, caller = callers[-1], outer_name
    passes = passes_own_check(inner.name) if passes_own_check is not None else None
    if passes is False:
        return (f"\n  in your code ({inner.name}), line {inner.lineno}: {_source(inner)}"
                f"\n  (called from {caller}, line {call.lineno}: {_source(call)})")
    text = (f"\n  in your code ({caller}), line {call.lineno}: {_source(call)}"
            f"\n  (it raised inside {inner.name}, line {inner.lineno}: {_source(inner)}")
    if passes:
        return text + f" - {inner.name} passes its own check, so the arguments {caller} gives it here are wrong)"
    return text + ")"
