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

Three modules, layered (no circle): :mod:`cs231n_style._compare` (the reference values, the
relative error, :func:`clip`) <- :mod:`cs231n_style._locate` (the probes of :func:`locate_mistake`)
<- this one (the mistakes' table and the ``diagnose_...`` functions), which re-exports the names
the checks and the grader use.

The relative error is ``max|student - reference| / max|reference|`` (elementwise for Gram
matrices), accepted up to :data:`TOLERANCE` for the inputs' dtype. A NaN or inf anywhere in a
result or a gradient fails, with a verdict that says so and what usually causes it.

Text that comes from the student's code (an exception's type name and message, the line that
raised) is cut to a bounded length (:func:`clip`) before it goes into a verdict.
"""
from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable

import torch

from ._compare import (
    REFERENCE_FILE,
    TEXT_LIMIT,
    TOLERANCE,
    TYPE_NAME_LIMIT,
    WHERE_LIMIT,
    _float64,
    _nonfinite,
    clip,
    reference_values,
    relative_error,
)
from ._locate import _SAME, Probe, _eps_message, locate_mistake, normalizer_eps

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
    for old, new in zip(before, after, strict=True):
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
    for grad, want in zip(grads, expected, strict=True):
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
