"""The course's autograder (instructor-only): grade submitted notebooks with hidden tests, safely.

Modules, in the order a grading goes through them:

* :mod:`autograder.submission` - find the notebooks of a submission (a notebook, a folder, a .zip)
  and the student's functions in them (through ``cs231n_style.notebook.extract_functions``);
* :mod:`autograder.rubric` - the instructor's rubric file (``rubric.toml``): tests, points, limits;
* :mod:`autograder.reference` - the reference functions, loaded in the grader from the solutions;
* :mod:`autograder.cases` - each test kind's inputs, drawn at grading time, and expected values;
* :mod:`autograder.sandbox` / :mod:`autograder.runner` / :mod:`autograder.protocol` - the student's
  code in a separate, limited, unprivileged process that sends raw outputs back over a pipe;
* :mod:`autograder.grader` - judging each test with the notebook checks' diagnoses; batches;
* :mod:`autograder.report` - Gradescope's ``results.json``, a Markdown report, a CSV gradebook;
* :mod:`autograder.packaging` - the Gradescope autograder zip and the student release.

The command line is ``python -m autograder`` (see :mod:`autograder.__main__`). This package's
``__init__`` imports nothing, so the sandboxed runner can use :mod:`autograder.protocol` cheaply.
"""

__all__ = ["grade_batch", "grade_submission", "load_rubric"]


def __getattr__(name):  # PEP 562: the API on first use, so that importing the package stays cheap
    if name in ("grade_submission", "grade_batch"):
        from . import grader

        return getattr(grader, name)
    if name == "load_rubric":
        from .rubric import load_rubric

        return load_rubric
    raise AttributeError(name)
