"""The reference values and how far a result is from them: the part of :mod:`cs231n_style.diagnosis`
that the verdicts and the locating probes (:mod:`cs231n_style._locate`) both stand on.

The relative error is ``max|student - reference| / max|reference|`` (elementwise for Gram
matrices), accepted up to :data:`TOLERANCE` for the inputs' dtype; text from the student's code is
cut to a bounded length (:func:`clip`) before it goes into a verdict.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

#: The checks' inputs, reference outputs and mistakes' values (``tools/make_reference_data.py``).
REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "reference_values.npz"

#: Largest relative error accepted, per dtype of the inputs.
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}


# --- the reference values and how far a result is from them -----------------------------------

@lru_cache(maxsize=1)
def _load_reference(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def reference_values(path: str | Path = REFERENCE_FILE) -> dict[str, np.ndarray]:
    """Return the stored inputs and reference outputs (float64 NumPy arrays) by key.

    Keys look like ``"gram_matrix.features"``, ``"gram_matrix.expected"``, ``"tv_loss.grad"``,
    ``"content_loss.variant.mean_not_sum"`` (the value that mistake of :data:`MISTAKES` gives).
    The file is read once per process.

    Args:
        path: an ``.npz`` file made by ``tools/make_reference_data.py``.

    Returns:
        A dict of float64 arrays (the weights and layer indices as 0-d or 1-d arrays).

    Raises:
        FileNotFoundError: if the file is missing (run ``python tools/make_reference_data.py``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No reference values at {str(path)!r}; run `python tools/make_reference_data.py`.")
    return _load_reference(str(path))


def _float64(values) -> np.ndarray:
    """A tensor (any dtype or device) or array-like as a float64 NumPy array."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray(values, np.float64)


def relative_error(actual, expected) -> float:
    """``max|actual - expected| / max|expected|``, computed in float64.

    Args:
        actual, expected: tensors or arrays of the same shape (any float dtype, any device).

    Returns:
        A Python ``float``: ``inf`` if ``expected`` is all zeros and ``actual`` is not, and ``inf``
        if either holds a NaN or an inf, so that such a result never passes a tolerance.
    """
    a, e = _float64(actual), _float64(expected)
    if not (np.isfinite(a).all() and np.isfinite(e).all()):
        return float("inf")
    scale = np.abs(e).max() if e.size else 0.0
    diff = np.abs(a - e).max() if a.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return float(diff / scale)


def _nonfinite(values) -> str | None:
    """What is not finite in ``values`` (tensor or array) - ``"is NaN"`` for a single value,
    ``"contains NaN at 40 and inf at 2 of 80 entries"`` - or ``None`` when all are finite."""
    array = _float64(values)
    nan, inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
    if not nan and not inf:
        return None
    if array.size == 1:
        return "is NaN" if nan else "is inf"
    found = " and ".join(f"{kind} at {count}" for kind, count in (("NaN", nan), ("inf", inf)) if count)
    return f"contains {found} of {array.size} entries"


#: Longest exception type name, exception message and source line (``where``) quoted in a verdict.
TYPE_NAME_LIMIT, TEXT_LIMIT, WHERE_LIMIT = 200, 2000, 1000


def clip(text, limit: int) -> str:
    """``text`` cut to its first ``limit`` characters, with a marker saying how many were cut.

    Text from a student's code - an exception's type name or message, a source line, printed
    output, a notebook's name - can be of any length (a class named ``"E" * 40_000_000``): it is
    clipped before it goes into a verdict, a report or a gradebook.

    Args:
        text: a string (anything else is converted with ``str``).
        limit: how many characters to keep, ``>= 0``.

    Returns:
        ``text`` unchanged when it has at most ``limit`` characters, else its first ``limit``
        characters followed by ``"... [N characters cut]"``. Clipping a clipped text again keeps
        one marker, which counts from the original text.

    Raises:
        ValueError: if ``limit`` is negative.
    """
    if limit < 0:
        raise ValueError(f"clip: limit must be >= 0, not {limit}")
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit:
        return text
    earlier = _CUT.search(text, max(0, len(text) - 60))  # the marker of an earlier clip, at the end
    body, cut = (text[:earlier.start()], int(earlier.group(1))) if earlier else (text, 0)
    cut += max(0, len(body) - limit)
    return f"{body[:limit]}... [{cut} character{'' if cut == 1 else 's'} cut]"


_CUT = re.compile(r"\.\.\. \[(\d+) characters? cut\]$")
