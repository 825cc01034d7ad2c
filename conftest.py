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
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "squeezenet1_1_features.pth"


def pytest_configure(config):
    if not os.environ.get("CS231N_STYLE_WEIGHTS") and SHARED_WEIGHTS.is_file():
        os.environ["CS231N_STYLE_WEIGHTS"] = str(SHARED_WEIGHTS)
    os.environ.setdefault("MPLBACKEND", "Agg")  # headless figures in tests; notebooks use inline
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
