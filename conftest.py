"""Test-session setup shared by the course's tests and nbval runs (from any working directory).

* Points ``$CS231N_STYLE_WEIGHTS`` at ``../shared/weights/squeezenet1_1_features.pth`` when that
  file exists and the variable is unset, so tests and notebooks run offline (CI has no internet).
  Notebook kernels started by nbval inherit it.
* Forgets ``$JPY_SESSION_NAME`` and ``$CS231N_STYLE_COURSE_DIR``: inherited (pytest run from a
  notebook, a course folder set for Colab), they would make the notebooks under test load earlier
  notebooks from another folder (see ``cs231n_style.find_course_notebook``); tests that need them
  set them.
* Gives nbval the sanitizer file (``tests/nbval_sanitize.cfg``) by absolute path, so check-cell
  outputs compare equal whatever the float rounding of the machine.
* Gives nbval time on a slow or loaded machine: nbval 0.11 waits a fixed 5 s for a cell's output
  messages after the cell finished ("Timeout of 5 seconds exceeded waiting for output"), here
  120 s; and 300 s for the kernel to start instead of 60. A hung cell is still stopped by nbval's
  cell timeout (``--nbval-cell-timeout``, 2000 s).
* Sets ``CS231N_STYLE_SKIP_AFTER_FAILED_CHECK=1`` for the notebooks' kernels: after a failed check,
  a notebook's later demo cells print "skipped: fix <function> first" instead of failing one after
  another (``cs231n_style/_skip_after_failure.py``).
* Ends ``make check`` (``pytest notebooks/``) with one line per student function and its whole
  verdict (``notebooks/test_my_functions.py``), after pytest's own summary, whose lines are cut at
  the terminal's width.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "squeezenet1_1_features.pth"


def pytest_configure(config):
    if not os.environ.get("CS231N_STYLE_WEIGHTS") and SHARED_WEIGHTS.is_file():
        os.environ["CS231N_STYLE_WEIGHTS"] = str(SHARED_WEIGHTS)
    os.environ.setdefault("CS231N_STYLE_SKIP_AFTER_FAILED_CHECK", "1")  # nbval's kernels inherit it
    os.environ.setdefault("MPLBACKEND", "Agg")  # headless figures in tests; notebooks use inline
    if getattr(config.option, "color", None) == "auto" and not sys.stdout.isatty():
        config.option.color = "no"  # nbval colours its messages unless --color=no, even into a file or pipe
    for name in ("JPY_SESSION_NAME", "CS231N_STYLE_COURSE_DIR"):  # notebooks under test look next to themselves
        os.environ.pop(name, None)
    if hasattr(config.option, "nbval_sanitize_with") and config.option.nbval_sanitize_with is None:
        config.option.nbval_sanitize_with = str(ROOT / "tests" / "nbval_sanitize.cfg")
    if getattr(config.option, "nbval_kernel_startup_timeout", None) is not None:
        config.option.nbval_kernel_startup_timeout = max(float(config.option.nbval_kernel_startup_timeout),
                                                         NBVAL_KERNEL_STARTUP_S)


#: Seconds nbval waits for a finished cell's output messages (nbval 0.11 hard-codes 5) and for the
#: kernel to start (nbval's default: 60).
NBVAL_OUTPUT_S, NBVAL_KERNEL_STARTUP_S = 120, 300


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout") and type(item).__module__.startswith("nbval"):
            item.output_timeout = max(item.output_timeout, NBVAL_OUTPUT_S)


#: test_my_function's verdicts in this session: function name -> (outcome, message).
_VERDICTS: dict[str, tuple[str, str]] = {}


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.when == "setup" and report.skipped):
        return
    test, _, name = report.nodeid.partition("::test_my_function[")
    if name and test.endswith("test_my_functions.py"):
        message = report.longreprtext.strip() if report.failed else ""
        if report.skipped and isinstance(report.longrepr, tuple):
            message = report.longrepr[2].removeprefix("Skipped: ")
        _VERDICTS[name.rstrip("]")] = (report.outcome, message)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    yield  # after pytest's short summary: tryfirst makes this wrapper the outermost
    if not _VERDICTS:
        return
    terminalreporter.section("your functions")
    for name, (outcome, message) in _VERDICTS.items():
        if outcome == "passed":
            terminalreporter.write_line(f"{name}: PASS")
        elif outcome == "skipped":
            terminalreporter.write_line(f"{name}: skipped ({message})")
        else:
            text = message if message.startswith(name) else f"{name}: {message}"
            terminalreporter.write_line(" ".join(text.split()))
