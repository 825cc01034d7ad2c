"""The student's line in a traceback, as the checks and the autograder both say it.

When a student's function raises, the verdict ends with the line that raised, in the student's
own code: ``"\\n  in your code (gram_matrix), line 4: return F @ F.T"``. The notebook checks
(:mod:`cs231n_style.checks`) and the autograder's sandboxed runner (``autograder/runner.py``) tell
the student's frames apart differently - the checks skip torch's and their own, the runner keeps
the files it named after the student's notebook - so each passes its own test of a frame.

Standard library only, and no import of the package: the runner loads this one file by its path,
so that a student process starts without importing the rest of ``cs231n_style`` (torchvision, ...).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

__all__ = ["where_in_your_code"]


def where_in_your_code(error: BaseException, is_students: Callable[[traceback.FrameSummary], bool]) -> str:
    """Say where in the student's code ``error`` was raised: the innermost of the student's frames.

    Args:
        error: a raised exception (its ``__traceback__`` is read; the source lines come from
            ``linecache``, which also knows code loaded from a notebook).
        is_students: whether a frame (``filename``, ``lineno``, ``name``, ``line``) is the student's.

    Returns:
        ``"\\n  in your code (function), line N: source line"`` - ``" (function)"`` left out for
        a lambda or module-level code - or ``""`` when no frame is the student's or its source
        line is unknown.
    """
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if is_students(frame)]
    if not frames or not frames[-1].line:
        return ""
    frame = frames[-1]
    function = "" if frame.name in ("<module>", "<lambda>") else f" ({frame.name})"
    return f"\n  in your code{function}, line {frame.lineno}: {frame.line.strip()}"
