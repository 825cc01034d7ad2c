"""What a student's result says about their code: the diagnosis the checks and the grader share.

The notebook checks (:mod:`cs231n_style.checks`) call a student's function on stored inputs; the
autograder (``autograder/grader.py``) calls it in a sandbox on hidden ones. Both hand what they saw
- the exception raised, the returned object's type, shape and dtype, its values, its gradients, the
inputs after the call - to the ``diagnose_...`` functions here, which say what is wrong in the
student's terms. So a student reads the same explanation ("off by exactly a factor C*H*W", "no
gradient flows back", "NOT IMPLEMENTED YET", ...) in the notebook and in the grade.

A wrong value is named when it matches the value a typical mistake gives (:data:`MISTAKES`: a
missing weight, mean instead of sum, no division by C*H*W, ...); else it is located
(:func:`locate_mistake`): the student's function is probed - called again, in the notebook or in the
grader's sandbox - on inputs built so that each image, region, style layer and term can be told
apart, and the verdict says which slice is wrong and how. A relative error that neither names is
reported with what it means (:func:`error_meaning`), never as rounding. The reference file
``data/reference_values.npz`` stores those values for the checks' inputs; the autograder computes
them for its hidden inputs (``autograder/variants.py``). The file holds inputs and outputs only,
so a check needs no network weights, images or GPU; it is made from the solution notebooks by
``tools/make_reference_data.py`` and does not contain the solutions.

The relative error is ``max|student - reference| / max|reference|`` (elementwise for Gram
matrices), accepted up to :data:`TOLERANCE` for the inputs' dtype. A NaN or inf anywhere in a
result or a gradient fails, with a verdict that says so and what usually causes it.

Text that comes from the student's code (an exception's type name and message, the line that
raised) is cut to a bounded length (:func:`clip`) before it goes into a verdict.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "MISTAKES",
    "REFERENCE_FILE",
    "TOLERANCE",
    "VECTORIZED",
    "Probe",
    "clip",
    "diagnose_exception",
    "diagnose_gradient",
    "diagnose_loops",
    "diagnose_output",
    "diagnose_unmodified",
    "diagnose_values",
    "error_meaning",
    "locate_mistake",
    "normalizer_eps",
    "reference_values",
    "relative_error",
    "source_uses_python_loops",
    "uses_python_loops",
]

#: The checks' inputs, reference outputs and mistakes' values (``tools/make_reference_data.py``).
REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "reference_values.npz"

#: Largest relative error accepted, per dtype of the inputs.
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}

_MASK_BOTH = ("multiply the features by the mask, F_nr = features[n] * masks[n, r] reshaped to (C, H*W), and use F_nr "
              "on both sides: G[n, r] = F_nr @ F_nr^T (the mask counts twice: weights m**2)")
_GUIDED_NORM = "divide each region's Gram matrix by C * (masks[n, r] ** 2).sum() (not by C*H*W)"

#: notebook 05's mistakes (Gatys et al., CVPR 2017, Sec. 4), keyed without their "guided_" prefix.
_GUIDED_MISTAKES = {
    # guided_gram_matrix
    "not_normalized": f"the result is not normalized: with normalize=True, {_GUIDED_NORM}.",
    "divided_by_chw": ("each region's Gram matrix is divided by C*H*W, as gram_matrix does (or it is gram_matrix of "
                       "the masked features): a region covers only part of the image - divide by C times the sum "
                       "of masks[n, r] ** 2 instead, C * (masks[n, r] ** 2).sum()."),
    "divided_by_mask_only": "the result is off by exactly a factor C: divide by C * (masks[n, r] ** 2).sum(), not "
                            "only by the masks' sum of squares.",
    "divided_by_mask_sum": ("the result is divided by C * sum(m), the mask's area: the mask is on both factors, so "
                            "its weights are m**2 - divide by C * (masks[n, r] ** 2).sum()."),
    "mask_once": f"the mask is applied to one factor only (weights m instead of m**2): {_MASK_BOTH}.",
    "mask_once_sum_m": (f"the mask is applied to one factor only (weights m instead of m**2) and the result divided "
                        f"by C * sum(m): {_MASK_BOTH}, then {_GUIDED_NORM}."),
    "mask_once_chw": (f"the mask is applied to one factor only (weights m instead of m**2) and the result divided by "
                      f"C*H*W: {_MASK_BOTH}, then {_GUIDED_NORM}."),
    "mask_once_raw": f"(normalize=False) the mask is applied to one factor only (weights m instead of m**2): "
                     f"{_MASK_BOTH}.",
    "plain_gram": ("every region got the plain Gram matrix of the whole image: the masks are not used. Multiply the "
                   f"features by each region's mask first: {_MASK_BOTH}."),
    "axes_swapped": ("the batch and region axes are swapped (an (R, N, C, C) result): G[n, r] belongs to image n and "
                     "region r - reshape features to (N, 1, C, H*W) and masks to (N, R, 1, H*W)."),
    "normalized_anyway": ("with normalize=False the result is still divided by C * sum(m**2): only normalize when "
                          "asked."),
    "normalized_anyway_chw": "with normalize=False the result is divided by C*H*W: only normalize when asked.",
    # guided_style_loss
    "style_unweighted": ("the result is the sum over layers without the style weights: multiply each layer's term "
                         "by style_weights[i]."),
    "style_not_squared": ("each layer's term is the norm of the Gram difference: use the squared distance, "
                          "sum((G - A) ** 2)."),
    "style_abs": "the result sums absolute differences: square the differences, sum((G - A) ** 2).",
    "style_mean": ("the result uses the *mean* of the squared differences: each layer's term is their *sum* over "
                   "all regions and entries."),
    "style_last_layer_only": ("only the last style layer counts: accumulate the loss over all style layers (+=), "
                              "don't overwrite it."),
    "style_unnormalized_gram": ("the values match guided Gram matrices computed with normalize=False: call "
                                "guided_gram_matrix(feats[layer], content_masks[i]) with its default "
                                "normalize=True, as the style targets were computed."),
    "style_gram_chw": ("the values match guided Gram matrices divided by C*H*W instead of C * sum(m**2): "
                       "check_guided_gram_matrix names the mistake; guided_style_loss should call "
                       "guided_gram_matrix(feats[layer], content_masks[i])."),
    "style_mask_once": ("the values match guided Gram matrices with the mask on one factor only (weights m instead "
                        "of m**2): check_guided_gram_matrix names the mistake; guided_style_loss should call "
                        "guided_gram_matrix(feats[layer], content_masks[i])."),
    "style_plain_gram": ("the values match the plain (unguided) gram_matrix(feats[layer]) compared with every "
                         "region's target: use guided_gram_matrix(feats[layer], content_masks[i]), so that each "
                         "region's Gram matrix is compared with its own target."),
}

#: What each stored wrong variant means, in the student's terms.
MISTAKES = {
    "missing_weight": "the result is off by exactly the weight: did you forget to multiply by the weight argument?",
    "mean_not_sum": "the result equals the *mean* of the squared differences: the loss is their *sum*.",
    "mean_no_weight": ("the result equals the mean of the squared differences without the weight: use the sum, "
                       "times the weight."),
    "not_squared": "the result is the weight times the square root of the sum: use the squared distance, not the norm.",
    "half": "the result is half the reference: remove the factor 1/2.",
    "not_normalized": "the result is off by exactly a factor C*H*W: divide by C*H*W when normalize=True.",
    "divided_by_hw_only": "the result is off by exactly a factor C: divide by C*H*W, not only by H*W.",
    "divided_by_c_only": "the result is off by exactly a factor H*W: divide by C*H*W, not only by C.",
    "divided_by_nchw": "the result is off by exactly a factor N: divide by C*H*W, not N*C*H*W.",
    "divided_by_2nchw": "the result is off by exactly a factor 2*N (divided by 2*N*C*H*W): divide by C*H*W only.",
    "batch_summed": ("every image got the Gram matrix of the whole batch (summed over the N images, e.g. an einsum "
                     "or sum over n): the Gram matrix mixes the batch. Compute one per image, F[n] @ F[n]^T."),
    "batch_mixed": ("the values mix different images of the batch (F[n] @ F[m]^T summed over m, e.g. "
                    "einsum('nci,mdi->ncd')): use the same batch index on both sides - torch.bmm, or "
                    "einsum('nci,ndi->ncd')."),
    "normalized_anyway": "with normalize=False the result is still divided by C*H*W: only normalize when asked.",
    "unweighted": ("the result is the sum over layers without the style weights: multiply each layer's term by "
                   "its weight."),
    "last_layer_only": ("only the last style layer counts: accumulate the loss over all style layers (+=), don't "
                        "overwrite it."),
    "first_layer_only": "only the first style layer counts: did you return inside the loop?",
    "layer_norm_not_squared": "each layer's term is the norm of the Gram difference: use the squared distance.",
    "unnormalized_gram": ("the values match Gram matrices computed with normalize=False: call "
                          "gram_matrix(feats[layer]) with its default normalize=True, as the style targets were "
                          "computed."),
    "vertical_only": ("only vertical neighbours (rows) count: add the differences between horizontal neighbours "
                      "too."),
    "horizontal_only": ("only horizontal neighbours (columns) count: add the differences between vertical "
                        "neighbours too."),
    "abs_not_squared": "the result sums absolute differences: square the differences instead.",
    "channels_too": ("the result also counts differences between neighbouring *channels* (axis 1): only neighbouring "
                     "pixels count, along the rows (axis 2) and the columns (axis 3) of each channel."),
    "channels_and_rows": ("the result counts differences along the channels (axis 1) and the rows, not the columns: "
                          "img has shape (1, 3, H, W), not (C, H, W) - use img[:, :, 1:, :] and img[:, :, :, 1:]."),
    "channels_and_columns": ("the result counts differences along the channels (axis 1) and the columns, not the rows: "
                             "img has shape (1, 3, H, W) - use img[:, :, 1:, :] and img[:, :, :, 1:]."),
    **{f"guided_{key}": value for key, value in _GUIDED_MISTAKES.items()},
    "reshaped_hw_by_c": ("the values match features.reshape(N, H*W, C): that reads the (N, C, H, W) memory as if "
                         "channels came last and mixes channels with positions. Reshape to (N, C, H*W), then F @ F^T."),
}


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


# --- Python loops in the source ------------------------------------------------------------------

def uses_python_loops(fn: Callable) -> bool | None:
    """Whether ``fn``'s source contains a ``for``/``while`` loop or a comprehension.

    Loops are slow on tensors: the functions of :data:`VECTORIZED` must have none (see :func:`diagnose_loops`).

    Args:
        fn: a function whose source ``inspect`` can find (a file, a notebook cell, a loaded notebook).

    Returns:
        ``True`` or ``False``, or ``None`` if the source is not available (e.g. a lambda built
        with ``exec`` and no source).
    """
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    return source_uses_python_loops(source)


def source_uses_python_loops(source: str) -> bool | None:
    """:func:`uses_python_loops` for source text (the autograder has source, not functions).

    Args:
        source: Python source, e.g. one ``def`` block.

    Returns:
        ``True`` or ``False``, or ``None`` if it does not parse.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    loops = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    return any(isinstance(node, loops) for node in ast.walk(tree))


# --- diagnosis: what a result says about the code, in the student's terms -------------------------

def diagnose_exception(name: str, type_name: str, text: str, shapes: str = "", where: str = "") -> tuple[str, str]:
    """Explain an exception raised by a student's function.

    ``type_name``, ``text`` and ``where`` come from the student's code: each is clipped (:func:`clip`,
    to :data:`TYPE_NAME_LIMIT`, :data:`TEXT_LIMIT` and :data:`WHERE_LIMIT` characters).

    Args:
        name: the function, e.g. ``"gram_matrix"``.
        type_name: the exception's class name, e.g. ``"RuntimeError"``.
        text: ``str(exception)``.
        shapes: the tensor inputs' shapes, e.g. ``"(2, 12, 5, 8)"``, quoted in size-mismatch hints.
        where: the student's line, ``"\\n  in your code (function), line N: ..."``, or ``""``
            (``cs231n_style._tracebacks.where_in_your_code`` makes it from the traceback).

    Returns:
        ``(status, message)``: status ``"not implemented"`` for ``NotImplementedError``, else
        ``"error"``.
    """
    type_name, text, where = clip(type_name, TYPE_NAME_LIMIT), clip(text, TEXT_LIMIT), clip(where, WHERE_LIMIT)
    if type_name == "NotImplementedError":
        return "not implemented", (f"{name}: NOT IMPLEMENTED YET - it still raises NotImplementedError. "
                                   "Replace the stub with your code, run its cell, then run this check again.")
    text = text.strip().rstrip(".")
    hint = ""
    if "in-place" in text or "inplace" in text:
        hint = " Don't modify the inputs in place (e.g. x /= n or x.add_()); compute new tensors."
    elif "view size is not compatible" in text and "reshape" not in text:
        hint = " Use .reshape(...) instead of .view(...)."
    elif "is invalid for input of size" in text or "size mismatch" in text or "must match the size" in text:
        hint = (f" The tensor inputs here have shapes {shapes}: a size in a reshape, product or subtraction does "
                "not fit them.")
        if name == "gram_matrix":
            hint += " Keep the batch axis N: reshape to (N, C, H*W)."
        elif name in _INDEXING:
            hint += " " + _INDEXING[name]
    elif name in _INDEXING and "index out of range" in text:
        hint = " " + _INDEXING[name]
    return "error", f"{name}: FAIL - it raised {type_name}: {text}.{hint}{where}"


_STYLE_INDEXING = ("feats is indexed by layer number, the other lists by position: for the i-th style layer "
                   "use feats[style_layers[i]] with style_targets[i] and style_weights[i].")

#: The hint for a size mismatch (or an index out of range) in each function, by name.
_INDEXING = {
    "style_loss": _STYLE_INDEXING,
    "guided_gram_matrix": ("features is (N, C, H, W) and masks (N, R, H, W), at the same H x W: give each its own "
                           "axes so that they broadcast, features.reshape(N, 1, C, H*W) * masks.reshape(N, R, 1, H*W) "
                           "-> (N, R, C, H*W)."),
    "guided_style_loss": ("feats is indexed by layer number, style_targets, style_weights and content_masks by "
                          "position: for the i-th style layer use feats[style_layers[i]] with content_masks[i], "
                          "style_targets[i] and style_weights[i]. content_masks[i] is already resized to style "
                          "layer i's feature maps: don't use one layer's masks for every layer, don't index "
                          "content_masks by layer number, and don't resize them again."),
}


def diagnose_output(name: str, type_name: str, shape: tuple, dtype: torch.dtype | None, expected_shape: tuple,
                    expected_dtype: torch.dtype, input_shape: tuple | None = None,
                    cut_from_graph: bool = False) -> str | None:
    """Check what a function returned: a tensor, of the expected shape and dtype.

    Args:
        name: the function.
        type_name: the returned object's class name (``"Tensor"`` for a torch tensor).
        shape, dtype: the returned tensor's shape and dtype (ignored when it is not a tensor).
        expected_shape, expected_dtype: what the reference returns (``()`` for a loss).
        input_shape: ``gram_matrix``'s features shape (N, C, H, W), to recognize a lost batch axis
            or ``F.T @ F``; for ``guided_gram_matrix``, (N, R, C, H, W) from its features and masks,
            to recognize summed regions or swapped batch and region axes.
        cut_from_graph: ``True`` when the inputs require gradients but the result does not: a
            wrong dtype then comes from building a new tensor (``torch.tensor(float(...))``).

    Returns:
        The failure message, or ``None`` when the output is fine. ``type_name`` comes from the
        student's code: it is clipped to :data:`TYPE_NAME_LIMIT` characters.
    """
    if type_name != "Tensor":
        return (f"{name}: FAIL - it returned a {clip(type_name, TYPE_NAME_LIMIT)}, not a torch.Tensor. "
                "Use torch operations throughout (no .item(), .numpy() or math) so gradients can flow.")
    shape = tuple(shape)
    if name == "guided_gram_matrix" and input_shape is not None and shape != tuple(expected_shape):
        message = _guided_shape_message(shape, *input_shape)
        if message:
            return (f"{name}: FAIL - it returned shape {shape} for features {input_shape[:1] + input_shape[2:]} and "
                    f"masks {input_shape[:2] + input_shape[3:]}: {message}")
    if name == "gram_matrix" and input_shape is not None:
        n, c, h, w = input_shape
        mixed = (" That is one Gram matrix for the whole batch: it mixes the N images (e.g. features.reshape(C, -1), "
                 "or an einsum/sum over n).") if n > 1 else ""
        if shape in ((c, c), (1, c, c)) and shape != tuple(expected_shape):
            return (f"{name}: FAIL - for features of shape {(n, c, h, w)} it returned shape "
                    f"{shape}: keep the batch axis and compute one Gram matrix per image, "
                    f"shape (N, C, C) = {(n, c, c)} (torch.bmm or @ on (N, C, H*W) tensors).{mixed}")
        if n > 1 and shape in ((n * c, n * c), (1, n * c, n * c)):
            return (f"{name}: FAIL - for features of shape {(n, c, h, w)} it returned shape {shape}, (N*C, N*C): "
                    "the reshape put the channels of all N images together (e.g. reshape(1, N*C, H*W)), so the Gram "
                    "matrix mixes the batch. Reshape to (N, C, H*W) and multiply per image (torch.bmm).")
        if shape == (n, c, n, c):
            return (f"{name}: FAIL - it returned shape {shape}, (N, C, N, C): it pairs the channels of different "
                    "images (tensordot, or an einsum without a shared batch index), mixing the batch. Use the same "
                    "index n on both sides: einsum('nci,ndi->ncd') or torch.bmm, shape (N, C, C).")
        if shape == (n, h * w, h * w) and shape != tuple(expected_shape):
            return (f"{name}: FAIL - it returned shape {shape}, (N, H*W, H*W): "
                    "you multiplied F.T @ F; the Gram matrix is F @ F.T, shape (N, C, C).")
        if shape in ((n, c, h * w), (n, c, h, w)) and shape != tuple(expected_shape):
            return (f"{name}: FAIL - it returned shape {shape}, the features' own shape: an elementwise product "
                    "(F * F) keeps every position apart. The Gram matrix is the matrix product G = F @ F^T, "
                    "(N, C, H*W) @ (N, H*W, C) -> (N, C, C): it sums over the positions and pairs every channel "
                    "with every other one.")
        if shape == (n, c) and shape != tuple(expected_shape):
            return (f"{name}: FAIL - it returned shape {shape}, (N, C): one number per channel, as an elementwise "
                    "product summed over the positions, (F * F).sum(-1), gives - each channel with itself only. The "
                    "Gram matrix pairs every channel with every other one: G = F @ F^T, shape (N, C, C).")
    if shape != tuple(expected_shape):
        return (f"{name}: FAIL - it returned shape {shape}; expected {tuple(expected_shape)}"
                + (" (a scalar: use .sum() over everything)." if tuple(expected_shape) == () else "."))
    if dtype != expected_dtype and cut_from_graph:
        return (f"{name}: FAIL - it returned a new {dtype} tensor cut off from autograd (no gradient flows back, "
                f"and the inputs were {expected_dtype}): don't rebuild the result with torch.tensor(...), "
                "float(...) or .item(); compute it with torch operations on the inputs.")
    if dtype != expected_dtype:
        return (f"{name}: FAIL - for {expected_dtype} inputs it returned {dtype}: "
                "don't hard-code a dtype; compute in the inputs' dtype.")
    return None


def _guided_shape_message(shape: tuple, n: int, r: int, c: int, h: int, w: int) -> str | None:
    """What a wrong ``guided_gram_matrix`` output shape says, or ``None`` (the generic message then)."""
    if shape in ((n, c, c), (c, c)):
        return ("one Gram matrix per image, not one per region: the regions were summed (or the masks not used). "
                f"Keep the region axis: shape (N, R, C, C) = {(n, r, c, c)}.")
    if shape == (r, n, c, c):
        return ("the batch and region axes are swapped, (R, N, C, C): the result is (N, R, C, C) = "
                f"{(n, r, c, c)} - reshape features to (N, 1, C, H*W) and masks to (N, R, 1, H*W).")
    if shape in ((n * r, c, c), (r, c, c)):
        return f"the batch and region axes are merged or lost: return shape (N, R, C, C) = {(n, r, c, c)}."
    if shape[-2:] == (h * w, h * w):
        return "you multiplied F.T @ F; the Gram matrix is F @ F.T, shape (N, R, C, C)."
    return None


def diagnose_unmodified(name: str, before: list[torch.Tensor], after: list[torch.Tensor]) -> str | None:
    """The failure message if the call changed an input in place, else ``None``.

    Args:
        name: the function.
        before: copies of the input tensors, made before the call.
        after: the same inputs after the call (same shapes; any dtype, compared as they are).
    """
    for old, new in zip(before, after):
        if not torch.equal(old, new.detach()):
            return (f"{name}: FAIL - it modified an input tensor in place. "
                    "Compute new tensors instead (x = x / n, not x /= n).")
    return None


def diagnose_values(name: str, out, expected, variants: dict, dtype: torch.dtype, own_gram: bool = True,
                    args: list | None = None, probe: Probe | None = None, grads: list | None = None,
                    expected_grads: list | None = None) -> tuple[float, str | None]:
    """Compare a result with the reference; on a mismatch, say what is wrong and where.

    A mismatch is named when it matches a variant (a whole typical mistake); else, with ``args``,
    it is located (:func:`locate_mistake`: which image, region, layer or term is wrong, and how);
    else the verdict says how large the difference is and what that means (never "rounding").

    Args:
        name: the function.
        out: the student's result (tensor or array), same shape as ``expected``.
        expected: the reference result.
        variants: mistake name (a key of :data:`MISTAKES`) -> the value that mistake gives (stored
            in the reference file; the autograder computes them for its hidden inputs).
        dtype: the inputs' dtype; sets the tolerance (:data:`TOLERANCE`).
        own_gram: whether ``style_loss`` (``guided_style_loss``) ran with the student's own
            ``gram_matrix`` (``guided_gram_matrix``): then a mismatch may come from it, and the
            message says so.
        args, probe, grads, expected_grads: the call's arguments (tensors as float64 arrays), a
            :data:`Probe` of the student's function, and the student's and the reference's gradients
            (the losses': one per style layer): see :func:`locate_mistake`. ``None``: not located.

    Returns:
        ``(relative error, failure message or None)``; a result holding a NaN or an inf fails with
        a message that says so (its relative error is ``inf``). A ``guided_gram_matrix`` result within
        the tolerance fails too when its normalizer adds a constant (an eps; :func:`normalizer_eps`).
    """
    tolerance = TOLERANCE[dtype]
    found = _nonfinite(out)
    if found:
        return float("inf"), (f"{name}: FAIL - for {str(dtype).removeprefix('torch.')} inputs the result {found}: "
                              "NaN and inf come from a division by 0, a log or sqrt of 0 or of a negative number, or "
                              "an overflow (exp, ** or a product of large values) - check each step of your "
                              "computation.")
    error = relative_error(out, expected)
    if error <= tolerance:
        eps = normalizer_eps(name, args, out, expected) if args is not None and dtype == torch.float64 else None
        return error, (None if eps is None else f"{name}: FAIL - {_eps_message(eps)}")
    for mistake, value in variants.items():
        if relative_error(out, value) <= max(tolerance, 1e-6):
            return error, f"{name}: FAIL - {MISTAKES[mistake]}"
    if args is not None:
        located = locate_mistake(name, args, out, expected, variants, probe, grads, expected_grads,
                                 max(tolerance, _SAME))
        if located:
            return error, f"{name}: FAIL - {located}"
    hint = ""
    if name == "style_loss" and own_gram:
        hint = (" style_loss calls your gram_matrix: if check_gram_matrix fails, fix that first; if it passes, "
                "compare each layer's term with w_l * sum((G_l - A_l) ** 2).")
    elif name == "guided_style_loss" and own_gram:
        hint = (" guided_style_loss calls your guided_gram_matrix: if check_guided_gram_matrix fails, fix that first; "
                "if it passes, compare each layer's term with style_weights[i] * sum((G_i - A_i) ** 2) over all "
                "regions, G_i = guided_gram_matrix(feats[style_layers[i]], content_masks[i]).")
    meaning = error_meaning(error, dtype, out, expected)
    return error, f"{name}: FAIL - the values differ from the reference ({meaning}).{hint}"


def error_meaning(error: float, dtype: torch.dtype, out, expected) -> str:
    """What a relative error above the tolerance means, in words: never rounding noise.

    Args:
        error: ``relative_error(out, expected)``, above :data:`TOLERANCE` for ``dtype``.
        dtype: the inputs' dtype.
        out, expected: the student's result and the reference (a scalar's values are quoted).

    Returns:
        E.g. ``"max relative error 3.8e-04 in float64: yours is 24.4110, the reference 24.4018 (+0.038%).
        Rounding in float64 stays below 1e-09 here (about 1e-16 per operation), so this is a
        difference in the formula, not rounding"``.
    """
    kind = str(dtype).removeprefix("torch.")
    text = f"max relative error {error:.1e} in {kind}"
    mine, want = _float64(out), _float64(expected)
    if mine.size == 1 and want.size == 1 and float(want.ravel()[0]) != 0.0:
        a, b = float(mine.ravel()[0]), float(want.ravel()[0])
        text += f": yours is {a:.6g}, the reference {b:.6g} ({100 * (a / b - 1):+.2g}%)"
    if dtype == torch.float64 and error < 1e-5:
        return (text + ". That is float32's rounding level (1e-7 to 1e-5), far above float64's (about 1e-16 per "
                "operation): part of your computation runs in float32 - look for .float(), torch.float32 or a new "
                "tensor made without the inputs' dtype")
    rounding = "1e-16" if dtype == torch.float64 else "1e-7"
    return (text + f". Rounding in {kind} stays below {TOLERANCE[dtype]:.0e} here (about {rounding} per operation), "
            "so this is a difference in the formula, not rounding")


def diagnose_gradient(name: str, requires_grad: bool, grads: list, expected: list) -> str | None:
    """Check the gradients of a result with respect to its inputs.

    Args:
        name: the function.
        requires_grad: whether the result is attached to the autograd graph.
        grads: the gradients obtained (tensors or arrays; ``None`` for an input it does not reach).
        expected: the reference gradients, same shapes.

    Returns:
        The failure message, or ``None`` when every gradient is within 1e-6 relative error. A
        gradient holding a NaN or an inf fails with a message that says so.
    """
    if not requires_grad:
        return (f"{name}: FAIL - the values are right but no gradient flows back to the inputs. "
                "Don't use .detach(), .item(), .numpy(), torch.tensor(...) or .data on intermediate results.")
    for grad, want in zip(grads, expected):
        found = None if grad is None else _nonfinite(grad)
        if found:
            return (f"{name}: FAIL - the values are right but the gradient {found}: a sqrt, log or "
                    "division at 0 in your code gives NaN or inf gradients, even multiplied by 0 (0 * "
                    "torch.sqrt(x - x) is 0, but its gradient is 0 * inf = NaN) - remove it, and compute the result "
                    "from the inputs with operations whose gradient is finite there.")
        if grad is None or not relative_error(grad, want) <= 1e-6:
            return (f"{name}: FAIL - the values are right but the gradient is not: "
                    "part of the computation is cut off from autograd (.detach(), .data or a NumPy detour).")
    return None


#: The functions whose hint says "no Python loops": their checks, the grader's ``public`` and
#: ``no_loops`` tests (``autograder/cases.py``) and so nbgrader's check cells reject a ``for``/``while``
#: loop or a comprehension in their source (:func:`diagnose_loops`).
VECTORIZED = ("content_loss", "gram_matrix", "guided_gram_matrix", "tv_loss")

_VECTORIZE = {
    "content_loss": ("subtract the two feature maps and sum the squared differences with torch operations on the "
                     "whole tensors at once, then multiply by the weight"),
    "gram_matrix": ("reshape the features to (N, C, H*W) and take one batched matrix product for all images, "
                    "torch.bmm(F, F.transpose(1, 2)) or F @ F.transpose(1, 2)"),
    "guided_gram_matrix": ("reshape features to (N, 1, C, H*W) and masks to (N, R, 1, H*W): broadcasting weights every "
                           "image by each of its masks at once, then one batched @ gives all N*R Gram matrices"),
    "tv_loss": "use slicing (img[:, :, 1:, :] - img[:, :, :-1, :]) instead",
}


def diagnose_loops(name: str, uses_loops: bool | None) -> str | None:
    """The failure message for a function that should have no Python loops (:data:`VECTORIZED`), or ``None``.

    Args:
        name: the function, one of :data:`VECTORIZED`.
        uses_loops: what :func:`uses_python_loops` found (``None``: unknown, not a failure).
    """
    if not uses_loops:
        return None
    return (f"{name}: FAIL - the values are right, but the code uses a Python loop or comprehension, and the "
            f"exercise asks for none: {_VECTORIZE[name]}; it is much faster on a GPU and on large batches.")


# --- where a wrong result goes wrong: locating the mistake ------------------------------------------
#
# When a result matches no stored mistake, the student's function is probed (called again, in float64)
# on inputs built so that each axis can be told apart: one image and one region at a time, the image
# transposed, a weight doubled, one style layer's masks or one region's targets changed. Comparing the
# answers with each other and with the reference says which slice is wrong and how. Nothing here
# computes a solution: the expected values are the reference's, the rest is the student's own code.

#: Runs the student's function again on other arguments - the call's own argument list, tensors as
#: float64 NumPy arrays (lists of them for ``feats``, ...) - and returns its result as a float64
#: array, or ``None`` when it raised or returned no tensor. The notebook checks call the function in
#: the notebook's process; the autograder in its sandbox.
Probe = Callable[[list], "np.ndarray | None"]

#: Two float64 results of different computations agree when their relative error is at most this.
_SAME = 1e-7


def _fit(actual, candidate) -> tuple[float, float]:
    """``(k, residual)``: the factor ``k`` that best gives ``actual ~ k * candidate`` (least squares),
    and the relative error left, ``relative_error(actual, k * candidate)`` (``inf`` for a zero candidate)."""
    a, c = _float64(actual).ravel(), _float64(candidate).ravel()
    if a.shape != c.shape or not (np.isfinite(a).all() and np.isfinite(c).all()) or not c.any():
        return 0.0, float("inf")
    k = float(a @ c) / float(c @ c)
    return k, relative_error(a, k * c)


def _nice(value: float, tolerance: float = 1e-6) -> float | None:
    """``value`` rounded to a multiple of 1/2 when it is one (within ``tolerance``), else ``None``."""
    rounded = round(2 * value) / 2
    return rounded if abs(value - rounded) <= tolerance * max(1.0, abs(rounded)) else None


def _times(k: float) -> str:
    return {0.5: "half", 1.0: "once", 2.0: "twice"}.get(k, f"{k:g} times")


def _scalar(probe: Probe, args: list) -> float | None:
    value = probe(args)
    return float(value.ravel()[0]) if value is not None and value.size == 1 and np.isfinite(value).all() else None


def _listing(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def locate_mistake(name: str, args: list, out, expected, variants: dict, probe: Probe | None = None,
                   grads: list | None = None, expected_grads: list | None = None,
                   tolerance: float = _SAME) -> str | None:
    """Say which slice of a wrong result is wrong, and how: per image, region, style layer or term.

    Args:
        name: the function (``gram_matrix``, ``guided_gram_matrix``, ``style_loss``,
            ``guided_style_loss`` or ``tv_loss``; others are not located).
        args: the call's arguments, tensors as float64 arrays (lists of arrays for list arguments).
        out, expected: the student's (wrong) result and the reference, same shape.
        variants: the call's mistake variants (:func:`diagnose_values`): ``tv_loss`` reads its
            one-term values there.
        probe: a :data:`Probe` of the student's function, or ``None`` (then only what ``out`` and
            the gradients show).
        grads, expected_grads: the losses' gradients with respect to ``feats[style_layers[i]]``, one
            per style layer (the student's: arrays or ``None``; the reference's), or ``None``.
        tolerance: the relative error under which two results count as equal.

    Returns:
        What is wrong, where, and the fix, in the student's terms (the part of a verdict after
        ``"name: FAIL - "``), or ``None`` when the probes find nothing they can name.
    """
    with np.errstate(all="ignore"):
        if name == "gram_matrix":
            return _locate_gram(args, out, expected, probe, tolerance)
        if name == "guided_gram_matrix":
            return _locate_guided_gram(args, out, expected, probe, tolerance)
        if name == "tv_loss" and probe is not None:
            return _locate_tv(args, variants, probe)
        if name in ("style_loss", "guided_style_loss"):
            return _locate_style(name, args, out, expected, probe, grads, expected_grads)
    return None


# gram_matrix: one Gram matrix per image, a product of two factors of F

def _locate_gram(args: list, out, expected, probe: Probe | None, tolerance: float) -> str | None:
    out, expected = _float64(out), _float64(expected)
    n, c = out.shape[:2]
    off = ~np.eye(c, dtype=bool)
    diagonal = np.diagonal(out, axis1=1, axis2=2)
    if np.abs(out[:, off]).max() <= tolerance * np.abs(out).max() and _fit(diagonal, np.diagonal(
            expected, axis1=1, axis2=2))[1] <= tolerance:
        return ("only the diagonal is filled (each channel with itself; every other entry is 0): that is an "
                "elementwise product, (F * F) summed over the positions. The Gram matrix pairs every channel with "
                "every other one: G = F @ F^T, (N, C, H*W) @ (N, H*W, C) -> (N, C, C).")
    if probe is not None:
        once, doubled = probe(args), probe([2 * _float64(args[0])] + list(args[1:]))
        k, residual = (_fit(doubled, once) if once is not None and doubled is not None else (0.0, 1.0))
        if residual <= tolerance and k > 0 and abs(np.log2(k) - 2) > 1e-6:
            degree = np.log2(k)
            how = (" the features are multiplied elementwise (F * F, or squared) before the matrix product"
                   if abs(degree - 4) <= 1e-6 else "")
            return (f"doubling the features multiplies your result by {k:.4g}, a Gram matrix by 4 (it is a product "
                    f"of two factors of F): your result grows as the power {degree:.3g} of the features -{how}. "
                    "The Gram matrix is G = F @ F^T of the features themselves, F reshaped to (N, C, H*W).")
    wrong = [i for i in range(n) if relative_error(out[i], expected[i]) > tolerance]
    if not 0 < len(wrong) < n:
        return None
    right = [i for i in range(n) if i not in wrong]
    said = []
    for i in wrong:
        source = [m for m in range(n) if m != i and _fit(out[i], expected[m])[1] <= tolerance]
        said.append(f"image {i} got image {source[0]}'s Gram matrix" if source else f"image {i}'s is wrong")
    return (f"image {_listing([str(i) for i in right])} {'is' if len(right) == 1 else 'are'} right, but "
            f"{_listing(said)}: compute each image's Gram matrix from its own features, the same index n on both "
            "sides (torch.bmm on (N, C, H*W) tensors, or einsum('nci,ndi->ncd')).")


# guided_gram_matrix: one Gram matrix per image and region, normalized by C * sum(masks[n, r] ** 2)

def _guided_inputs(args: list) -> tuple[np.ndarray, np.ndarray, bool]:
    return _float64(args[0]), _float64(args[1]), len(args) < 3 or bool(args[2])


def _student_normalizer(args: list, out, expected, tolerance: float = 1e-6) -> tuple[np.ndarray, np.ndarray] | None:
    """``(theirs, right)``, (N, R) each: what each region's Gram matrix was divided by, and C * sum(m**2),
    when every region's result is the reference's up to a factor (else ``None``)."""
    features, masks, normalize = _guided_inputs(args)
    out, expected = _float64(out), _float64(expected)
    if not normalize or out.shape != expected.shape or out.ndim != 4:
        return None
    fits = [[_fit(out[i, j], expected[i, j]) for j in range(out.shape[1])] for i in range(out.shape[0])]
    if any(residual > tolerance or k <= 0 for row in fits for k, residual in row):
        return None
    right = features.shape[1] * (masks ** 2).sum(axis=(2, 3))
    return right / np.array([[k for k, _ in row] for row in fits]), right


def normalizer_eps(name: str, args: list, out, expected) -> float | None:
    """The constant a ``guided_gram_matrix`` adds to its normalizer (``C * sum(m**2) + eps``), if it adds one.

    Found from float64 values alone, also when the result is within the tolerance: every region's
    result is the reference's divided by ``(C * sum(m**2) + eps) / (C * sum(m**2))``, the same ``eps``
    for every image and region, well above float64's rounding.

    Args:
        name: the function (anything but ``guided_gram_matrix`` gives ``None``).
        args: its arguments ``[features, masks]`` (+ ``normalize``), as arrays.
        out, expected: the student's float64 result and the reference, (N, R, C, C).

    Returns:
        ``eps`` (a positive float), or ``None``.
    """
    found = _student_normalizer(args, out, expected) if name == "guided_gram_matrix" else None
    if found is None:
        return None
    theirs, right = found
    eps = theirs - right
    if eps.min() <= 0 or (eps / right).min() < 1e-13 or eps.max() - eps.min() > 1e-2 * eps.mean():
        return None
    return float(eps.mean())


def _eps_message(eps: float) -> str:
    return (f"the normalizer adds a constant (an eps of about {eps:.1e}): each region's Gram matrix is divided by "
            "C * (masks[n, r] ** 2).sum() + eps. Leave the eps out: no region is ever empty here (the docstring "
            "says so; cs.check_masks refuses an empty region), and with it a region's Gram matrix - a weighted "
            "average over the region - depends on how strong its mask is overall: masks * 0.01 should give the "
            "same Gram matrices as masks, and with an eps it does not.")


def _locate_guided_gram(args: list, out, expected, probe: Probe | None, tolerance: float) -> str | None:
    found = _student_normalizer(args, out, expected, tolerance)
    if found is not None:
        return _guided_scale_message(args, *found)
    moved = _moved_slices(_float64(out), _float64(expected), tolerance)
    if moved:
        return moved
    if probe is None or not _guided_inputs(args)[2]:
        return None
    return _guided_pairing_message(args, _float64(out), _float64(expected), probe, tolerance)


def _moved_slices(out: np.ndarray, expected: np.ndarray, tolerance: float) -> str | None:
    """When every wrong (image, region) slice holds the right Gram matrix of another slice: which, and why."""
    n, r = out.shape[:2]
    moved = {}
    for i in range(n):
        for j in range(r):
            if relative_error(out[i, j], expected[i, j]) <= tolerance:
                continue
            sources = [(a, b) for a in range(n) for b in range(r)
                       if relative_error(out[i, j], expected[a, b]) <= tolerance]
            if not sources:
                return None
            moved[i, j] = sources[0]
    if not moved:
        return None
    if all(a == i for (i, _), (a, _) in moved.items()):
        said = _listing([f"region {j}'s result is region {b}'s" + (f" (image {i})" if n > 1 else "")
                         for (i, j), (_, b) in sorted(moved.items())][:4])
        return (f"{said}: every Gram matrix is right but some are in another region's place - keep the region axis "
                "in order, G[n, r] for masks[n, r] (no flip, roll or permute of the regions).")
    said = ", ".join(f"G[{i}, {j}] holds G[{a}, {b}] (image {a}'s region {b})" for (i, j), (a, b)
                     in sorted(moved.items())[:4])
    return (f"the Gram matrices are right but in the wrong places: {said}: a reshape or view of an (R, N, ...) "
            "result into (N, R, ...) mixes the images and the regions - compute in (N, R, C, C) order, features "
            "reshaped to (N, 1, C, H*W) and masks to (N, R, 1, H*W), with no transpose.")


def _guided_scale_message(args: list, theirs: np.ndarray, right: np.ndarray) -> str:
    features, masks, _ = _guided_inputs(args)
    c, m2 = features.shape[1], (masks ** 2).sum(axis=(2, 3))
    eps = theirs - right
    if eps.min() > 0 and eps.max() - eps.min() <= 1e-2 * eps.mean():
        return _eps_message(float(eps.mean()))
    wrong_sums = {
        "over all regions of the image, C * (masks[n] ** 2).sum()": c * m2.sum(axis=1, keepdims=True),
        "over all images, C * (masks[:, r] ** 2).sum()": c * m2.sum(axis=0, keepdims=True),
        "over all images and regions, C * (masks ** 2).sum()": np.full_like(m2, c * m2.sum()),
    }
    for label, value in wrong_sums.items():
        if relative_error(theirs, np.broadcast_to(value, theirs.shape)) <= 1e-6:
            return (f"each region's Gram matrix is right up to its normalization: it is divided by C times the sum "
                    f"of the squared masks {label}. Divide region r of image n by its own mask's, "
                    "C * (masks[n, r] ** 2).sum(): (masks ** 2).sum(dim=(2, 3)) has shape (N, R), one per image "
                    "and region.")
    factors = ", ".join(f"image {i} region {j}: x{right[i, j] / theirs[i, j]:.3g}"
                        for i in range(min(2, theirs.shape[0])) for j in range(theirs.shape[1]))
    return (f"each region's Gram matrix is right up to a factor ({factors}): the normalization is wrong. Divide "
            "region r of image n by C * (masks[n, r] ** 2).sum().")


def _guided_candidates(args: list, probe: Probe) -> dict | None:
    """The student's own unnormalized Gram matrix of each image with every single mask (and with the
    masks of all images summed), by probing one image and one region at a time; ``None`` when those
    single-slice results are not right themselves (up to a factor)."""
    features, masks, _ = _guided_inputs(args)
    n, r = masks.shape[:2]
    raw = {}
    for i in range(n):
        for a in range(n):
            for b in range(r):
                value = probe([features[i:i + 1], masks[a:a + 1, b:b + 1], False])
                if value is None or value.size != features.shape[1] ** 2:
                    return None
                raw[i, a, b] = value.reshape(features.shape[1], -1)
        for b in range(r):
            summed = probe([features[i:i + 1], masks[:, b:b + 1].sum(axis=0, keepdims=True), False])
            raw[i, "all", b] = None if summed is None or summed.size != raw[i, i, b].size else summed.reshape(
                raw[i, i, b].shape)
    return raw


def _guided_pairing_message(args: list, out: np.ndarray, expected: np.ndarray, probe: Probe,
                            tolerance: float) -> str | None:
    raw = _guided_candidates(args, probe)
    n, r = out.shape[:2]
    if raw is None or any(_fit(expected[i, j], raw[i, i, j])[1] > tolerance for i in range(n) for j in range(r)):
        return None
    found = {}
    for i in range(n):
        for j in range(r):
            if _fit(out[i, j], expected[i, j])[1] <= tolerance:
                continue
            pairs = [(a, b) for a in range(n) for b in range(r) if _fit(out[i, j], raw[i, a, b])[1] <= tolerance]
            if pairs:
                found[i, j] = pairs[0]
            elif raw[i, "all", j] is not None and _fit(out[i, j], raw[i, "all", j])[1] <= tolerance:
                found[i, j] = "all masks"
            elif _fit(out[i, j], sum(raw[a, a, j] for a in range(n)))[1] <= tolerance:
                found[i, j] = "all grams"
            else:
                return None
    return _pairing_words(found, n) if found else None


def _pairing_words(found: dict, n: int) -> str | None:
    kinds = set(found.values())
    if kinds == {"all masks"}:
        return ("each image's region r is weighted by the masks of all N images summed, masks[:, r].sum(0) (an "
                "einsum or a sum over the images' index): weight image n's features by its own masks[n, r] only, the "
                "same index n for both - einsum('nchw,nrhw->nrchw'), or features.reshape(N, 1, C, H*W) * "
                "masks.reshape(N, R, 1, H*W).")
    if kinds == {"all grams"}:
        return ("every image got the Gram matrices of all N images summed (its region r holds the sum over n of the "
                "images' region-r Gram matrices: an einsum or a sum over the images' index): keep n in the result, "
                "einsum('nrci,nrdi->nrcd'), or a batched @ on (N, R, C, H*W) tensors.")
    if any(isinstance(v, str) for v in kinds):
        return None
    right = sorted({i for i in range(n)} - {i for i, _ in found})
    tail = f" (image {_listing([str(i) for i in right])}'s are right)" if right else ""
    if all(b == j and a != i for (i, j), (a, b) in found.items()):
        pairs = sorted({(i, a) for (i, _), (a, _) in found.items()})
        said = _listing([f"image {i} got image {a}'s masks" for i, a in pairs])
        return (f"{said}{tail}: G[n, r] weights features[n] by masks[n, r] - index the masks by the image too; "
                "masks.reshape(N, R, 1, H*W) lines masks[n] up with features.reshape(N, 1, C, H*W) (not masks[0], "
                "not a reshape to (1, R, ...)).")
    if all(a == i for (i, _), (a, _) in found.items()):
        said = _listing([f"region {j}'s result is region {b}'s" + (f" (image {i})" if n > 1 else "")
                         for (i, j), (_, b) in sorted(found.items())][:4])
        return (f"{said}: region r must be weighted by its own mask, masks[n, r] - the region axis got mixed up (a "
                "permute, transpose or reshape of masks that moves the regions).")
    said = ", ".join(f"G[{i}, {j}] {'was computed ' if k == 0 else ''}with masks[{a}, {b}]"
                     for k, ((i, j), (a, b)) in enumerate(sorted(found.items())[:4]))
    more = f" (and {len(found) - 4} more)" if len(found) > 4 else ""
    return (f"the masks are paired with the wrong images and regions: {said}{more}{tail}. G[n, r] weights features[n] "
            "by masks[n, r]: a permute, transpose or reshape read masks (N, R, H, W) in another order (e.g. as "
            "(R, N, ...)) - reshape them to (N, R, 1, H*W) as they are.")


# tv_loss: tv_weight * (vertical term + horizontal term)

_TV_RIGHT = ("tv_loss = tv_weight * (sum of (img[:, :, 1:, :] - img[:, :, :-1, :]) ** 2, the vertical neighbours, "
             "+ sum of (img[:, :, :, 1:] - img[:, :, :, :-1]) ** 2, the horizontal ones)")


def _locate_tv(args: list, variants: dict, probe: Probe) -> str | None:
    img, weight = _float64(args[0]), float(args[1])
    base = _scalar(probe, [img, weight])
    if base is None or weight == 0:
        return None
    wraps, stride = [], []
    for axis, word in ((2, "row"), (3, "column")):
        shape = (-1, 1) if axis == 2 else (1, -1)
        ramp = np.ones_like(img) * np.arange(img.shape[axis], dtype=float).reshape(shape)
        if _scalar(probe, [ramp, weight]) == 0.0:
            continue  # this axis' differences are not counted at all: the terms' fit below says so
        rolled = _scalar(probe, [np.roll(img, 1, axis=axis), weight])
        alternating = _scalar(probe, [np.ones_like(img) * (-1.0) ** np.arange(img.shape[axis]).reshape(shape), weight])
        if rolled is not None and abs(rolled - base) <= 1e-12 * abs(base):
            wraps.append(word)
        elif alternating is not None and abs(alternating) <= 1e-12 * abs(base):
            stride.append(word)
    if wraps:
        return (f"your loss does not change when the image is shifted circularly by one {' or one '.join(wraps)} "
                f"(np.roll): the differences wrap around the border - torch.roll pairs the last {wraps[0]} with the "
                f"first, two pixels that are not neighbours. Take differences of slices instead, which have one pair "
                f"fewer: {_TV_RIGHT}.")
    if stride:
        return (f"for an image whose {' and '.join(w + 's' for w in stride)} alternate (+1, -1, +1, ...: neighbours "
                f"differ by 2, {stride[0]}s two apart are equal) your loss is 0: it compares "
                f"{' and '.join(w + 's' for w in stride)} two apart (slices 2: and :-2), not neighbours. {_TV_RIGHT}.")
    return _tv_terms(img, weight, variants, probe, base)


def _tv_terms(img: np.ndarray, weight: float, variants: dict, probe: Probe, base: float) -> str | None:
    """Your loss written as (a + b * tv_weight) * vertical + (c + d * tv_weight) * horizontal, from five probes."""
    if "vertical_only" not in variants or "horizontal_only" not in variants:
        return None
    v, h = float(variants["vertical_only"]) / weight, float(variants["horizontal_only"]) / weight
    flipped = np.ascontiguousarray(img.transpose(0, 1, 3, 2))  # its vertical term is img's horizontal one
    values = [_scalar(probe, [img, 0.0]), _scalar(probe, [img, 2 * weight]), _scalar(probe, [flipped, 0.0]),
              _scalar(probe, [flipped, weight])]
    if any(value is None for value in values) or abs(v - h) <= 1e-9 * (v + h):
        return None
    zero, double, flipped_zero, flipped_base = values
    if abs(double - 2 * base + zero) > 1e-9 * max(abs(double), abs(base)):
        return ("your loss is not proportional to tv_weight (doubling tv_weight does not double the weighted part): "
                f"multiply the sum of squared differences by tv_weight once. {_TV_RIGHT}.")
    system = np.array([[v, h], [h, v]])
    b, d = np.linalg.solve(system, [(base - zero) / weight, (flipped_base - flipped_zero) / weight])
    a, c = np.linalg.solve(system, [zero, flipped_zero])
    coefficients = [_nice(x) for x in (a, b, c, d)]
    if any(x is None for x in coefficients):
        return (f"your loss counts the vertical differences {b:.3g} times and the horizontal ones {d:.3g} times "
                "(found by probing it with the image and its transpose): some pairs of neighbours are missing or "
                f"counted twice - check where each slice starts and ends. {_TV_RIGHT}.")
    a, b, c, d = coefficients
    parts = [part for part in (_tv_term("vertical", b, a), _tv_term("horizontal", d, c)) if part]
    if not parts:
        return None
    if (b, a, d, c) == (2, 0, 0, 0):
        parts = ["the vertical differences are counted twice and the horizontal ones not at all: both terms compare "
                 "rows (img[:, :, 1:, :] - img[:, :, :-1, :]); the horizontal one compares columns"]
    elif (b, a, d, c) == (0, 0, 2, 0):
        parts = ["the horizontal differences are counted twice and the vertical ones not at all: both terms compare "
                 "columns (img[:, :, :, 1:] - img[:, :, :, :-1]); the vertical one compares rows"]
    return (f"{'; '.join(parts)} (found by probing your function with the image, its transpose and other weights). "
            f"{_TV_RIGHT}.")


def _tv_term(word: str, with_weight: float, without: float) -> str | None:
    """What is wrong with one term counted ``with_weight`` times times tv_weight and ``without`` times without it."""
    if (with_weight, without) == (1, 0):
        return None
    if (with_weight, without) == (0, 0):
        return f"the {word} differences are missing"
    if without == 0:
        return f"the {word} differences are counted {_times(with_weight)}"
    if with_weight == 0:
        return (f"the {word} differences are not multiplied by tv_weight"
                + ("" if without == 1 else f" (and counted {_times(without)})"))
    return f"the {word} differences are counted {_times(with_weight)} with tv_weight and {_times(without)} without it"


# style_loss, guided_style_loss: sum over style layers i of style_weights[i] * (a term per layer)

def _style_dependencies(args: list, probe: Probe, guided: bool) -> dict[str, list[int]]:
    """Which weights, masks (per style layer) and regions (their targets) the student's loss ignores:
    changing one leaves the loss unchanged."""
    base = _scalar(probe, args)
    unused: dict[str, list[int]] = {"weights": [], "masks": [], "regions": []}
    if base is None:
        return unused

    def ignores(changed: list) -> bool:
        value = _scalar(probe, changed)
        return value is not None and abs(value - base) <= 1e-12 * abs(base)

    feats, layers, targets, weights = args[:4]
    for i in range(len(layers)):
        if ignores([feats, layers, targets, [w * (2 if j == i else 1) for j, w in enumerate(weights)], *args[4:]]):
            unused["weights"].append(i)
    if guided:
        masks = [_float64(m) for m in args[4]]
        for i in range(len(layers)):
            if ignores([feats, layers, targets, weights, [m[..., ::-1].copy() if j == i else m
                                                          for j, m in enumerate(masks)]]):
                unused["masks"].append(i)
        for r in range(_float64(targets[0]).shape[1]):
            scaled = [_float64(t).copy() for t in targets]
            for t in scaled:
                t[:, r] *= 1.5
            if ignores([feats, layers, scaled, weights, masks]):
                unused["regions"].append(r)
    return unused


def _style_layer_status(weights: list[float], grads: list | None, expected_grads: list | None) -> dict[int, str]:
    """Per style layer (position i): ``"right"``, ``"unweighted"`` (its gradient is exactly 1/w_i of the
    reference's), ``"missing"`` (no gradient), ``"scaled"`` or ``"wrong"``; empty without gradients."""
    if not grads or not expected_grads or len(grads) != len(expected_grads):
        return {}
    status = {}
    for i, (grad, want) in enumerate(zip(grads, expected_grads)):
        if grad is None or not np.any(_float64(grad)):
            status[i] = "missing"
            continue
        k, residual = _fit(grad, want)
        status[i] = ("wrong" if residual > 1e-6 else "right" if abs(k - 1) <= 1e-6
                     else "unweighted" if abs(k * weights[i] - 1) <= 1e-6 else "scaled")
    return status


def _locate_style(name: str, args: list, out, expected, probe: Probe | None, grads: list | None,
                  expected_grads: list | None) -> str | None:
    guided = name == "guided_style_loss"
    mine, want = float(_float64(out).ravel()[0]), float(_float64(expected).ravel()[0])
    regions = _float64(args[2][0]).shape[1] if guided else 1
    if regions > 1 and want != 0 and abs(mine / want * regions - 1) <= 1e-6:
        return (f"your loss is exactly 1/{regions} of the reference, and there are R = {regions} regions: the "
                "regions are averaged (a mean over the region axis) instead of summed - each layer's term sums the "
                "squared differences over all regions and entries, ((G - A) ** 2).sum().")
    unused = _style_dependencies(args, probe, guided) if probe is not None else {}
    weights = [float(w) for w in args[3]]
    return _style_message([int(i) for i in args[1]], unused, _style_layer_status(weights, grads, expected_grads),
                          guided)


def _style_message(layers: list[int], unused: dict, status: dict, guided: bool) -> str | None:
    """The verdict from what the probes found unused and the layers' gradients (see :func:`_locate_style`)."""
    def named(positions: list[int]) -> str:
        return (f"style layer{'s' if len(positions) > 1 else ''} {_listing([str(layers[i]) for i in positions])} "
                f"(i = {_listing([str(i) for i in positions])})")

    def several(items: list, one: str, more: str) -> str:
        return more if len(items) > 1 else one

    right = [i for i, s in status.items() if s == "right"]
    right_clause = f"; the term of {named(right)} is right" if right and len(right) < len(layers) else ""
    if unused.get("regions"):
        lost = unused["regions"]
        return (f"{several(lost, 'region', 'regions')} {_listing([str(r) for r in lost])} "
                f"{several(lost, 'never counts', 'never count')}: changing {several(lost, 'its', 'their')} targets "
                f"(style_targets[i][:, {lost[0]}]) does not change your loss. Each layer's term sums the squared "
                "differences over all R regions: ((G - A) ** 2).sum() over the (1, R, C, C) tensors, not G[:, 0] only.")
    if unused.get("masks"):
        lost = unused["masks"]
        return (f"{_listing([f'content_masks[{i}]' for i in lost])} {several(lost, 'is', 'are')} never used "
                f"(changing {several(lost, 'it', 'them')} does not change your loss){right_clause}: style layer i "
                "must use content_masks[i] as it is - it is already resized to that layer's feature maps. Don't "
                "resize content_masks[0] (or other masks) again, and don't index content_masks by layer number.")
    unweighted = sorted(set(unused.get("weights", [])) | {i for i, s in status.items() if s == "unweighted"})
    if unweighted:
        how = (" (their gradients are exactly 1/style_weights[i] of the reference's)"
               if any(status.get(i) == "unweighted" for i in unweighted) else "")
        return (f"{several(unweighted, 'the term', 'the terms')} of {named(unweighted)} "
                f"{several(unweighted, 'is not multiplied by its weight', 'are not multiplied by their weights')}: "
                f"changing {_listing([f'style_weights[{i}]' for i in unweighted])} does not change your loss{how}"
                f"{right_clause}. Multiply each layer's term by its own weight, style_weights[i].")
    wrong = [i for i, s in status.items() if s != "right"]
    if not (wrong and right):
        return None
    gram = ("guided_gram_matrix(feats[style_layers[i]], content_masks[i])" if guided
            else "gram_matrix(feats[style_layers[i]])")
    return (f"the term of {named(wrong)} is wrong (its gradient differs from the reference's){right_clause}: look "
            f"at what changes from one layer to the next - layer i's term is style_weights[i] * sum(({gram} - "
            "style_targets[i]) ** 2).")
