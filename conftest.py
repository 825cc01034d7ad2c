"""Test-session setup shared by the course's tests and nbval runs (from any working directory).

* Points ``$CS231N_STYLE_WEIGHTS`` at ``../shared/weights/squeezenet1_1_features.pth`` when that
  file exists and the variable is unset, so tests and notebooks run offline (CI has no internet).
  Notebook kernels started by nbval inherit it.
* Gives nbval the sanitizer file (``tests/nbval_sanitize.cfg``) by absolute path, so check-cell
  outputs compare equal whatever the float rounding of the machine.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "squeezenet1_1_features.pth"


def pytest_configure(config):
    if not os.environ.get("CS231N_STYLE_WEIGHTS") and SHARED_WEIGHTS.is_file():
        os.environ["CS231N_STYLE_WEIGHTS"] = str(SHARED_WEIGHTS)
    os.environ.setdefault("MPLBACKEND", "Agg")  # headless figures in tests; notebooks use inline
    if hasattr(config.option, "nbval_sanitize_with") and config.option.nbval_sanitize_with is None:
        config.option.nbval_sanitize_with = str(ROOT / "tests" / "nbval_sanitize.cfg")
