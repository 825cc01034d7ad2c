"""One-line checks of the four functions students write, with feedback that says what is wrong.

Each ``check_...(fn)`` calls the student's function on stored inputs, in float64 and float32,
compares the result with stored reference values, checks that gradients flow back and that the
inputs are left unmodified, and prints one verdict::

    check_gram_matrix(gram_matrix)
    gram_matrix: PASS - matches the reference values in float64 and float32 (max relative error 2.1e-16) ...

When the result is wrong, the check compares it with the values that typical mistakes produce
(a missing weight, mean instead of sum, no division by C*H*W, ...), which the reference file also
stores, and names the mistake. The reference file ``data/reference_values.npz`` holds inputs and
outputs only, so a check needs no network weights, images or GPU; it is made from the solution
notebooks by ``tools/make_reference_data.py``. It does not contain the solutions.

The relative error is ``max|student - reference| / max|reference|`` (elementwise for Gram matrices).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "REFERENCE_FILE",
    "TOLERANCE",
    "CheckResult",
    "reference_values",
    "relative_error",
    "uses_python_loops",
    "source_uses_python_loops",
    "MISTAKES",
    "diagnose_exception",
    "diagnose_output",
    "diagnose_unmodified",
    "diagnose_values",
    "diagnose_gradient",
    "diagnose_loops",
    "check_content_loss",
    "check_gram_matrix",
    "check_style_loss",
    "check_tv_loss",
    "check_all",
]

REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "reference_values.npz"

#: Largest relative error accepted, per dtype of the inputs.
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}

#: What each stored wrong variant means, in the student's terms.
MISTAKES = {
    "missing_weight": "the result is off by exactly the weight: did you forget to multiply by the weight argument?",
    "mean_not_sum": "the result equals the *mean* of the squared differences: the loss is their *sum*.",
    "mean_no_weight": "the result equals the mean of the squared differences without the weight: use the sum, times the weight.",
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
    "unweighted": "the result is the sum over layers without the style weights: multiply each layer's term by its weight.",
    "last_layer_only": "only the last style layer counts: accumulate the loss over all style layers (+=), don't overwrite it.",
    "first_layer_only": "only the first style layer counts: did you return inside the loop?",
    "layer_norm_not_squared": "each layer's term is the norm of the Gram difference: use the squared distance.",
    "unnormalized_gram": ("the values match Gram matrices computed with normalize=False: call gram_matrix(feats[layer]) "
                          "with its default normalize=True, as the style targets were computed."),
    "vertical_only": "only vertical neighbours (rows) count: add the differences between horizontal neighbours too.",
    "horizontal_only": "only horizontal neighbours (columns) count: add the differences between vertical neighbours too.",
    "abs_not_squared": "the result sums absolute differences: square the differences instead.",
    "channels_too": ("the result also counts differences between neighbouring *channels* (axis 1): only neighbouring "
                     "pixels count, along the rows (axis 2) and the columns (axis 3) of each channel."),
    "channels_and_rows": ("the result counts differences along the channels (axis 1) and the rows, not the columns: "
                          "img has shape (1, 3, H, W), not (C, H, W) - use img[:, :, 1:, :] and img[:, :, :, 1:]."),
    "channels_and_columns": ("the result counts differences along the channels (axis 1) and the columns, not the rows: "
                             "img has shape (1, 3, H, W) - use img[:, :, 1:, :] and img[:, :, :, 1:]."),
    "reshaped_hw_by_c": ("the values match features.reshape(N, H*W, C): that reads the (N, C, H, W) memory as if "
                         "channels came last and mixes channels with positions. Reshape to (N, C, H*W), then F @ F^T."),
}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check; truthy exactly when the check passed.

    Attributes:
        name: the function checked, e.g. ``"gram_matrix"``.
        status: ``"pass"``, ``"fail"``, ``"not implemented"`` or ``"error"`` (it raised).
        message: the verdict printed by the check.
        relative_error: the largest relative error seen, or ``None`` if there was no result.
    """

    name: str
    status: str
    message: str
    relative_error: float | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult({self.name!r}, {self.status!r})"

    def raise_if_failed(self) -> CheckResult:
        """Raise unless the check passed, so that a failed check fails its cell.

        The course's check cells end with it - ``cs.check_gram_matrix(gram_matrix).raise_if_failed()``
        - so that an autograder that grades a cell by whether it raises (nbgrader's test cells) sees
        a wrong function; the verdict is printed first either way.

        Returns:
            This result, when it passed.

        Raises:
            AssertionError: with the verdict (:attr:`message`) as its message, when the check did
                not pass (``"fail"``, ``"not implemented"`` or ``"error"``).
        """
        __tracebackhide__ = True  # pytest and IPython show the cell's line, not this one
        if not self.passed:
            raise AssertionError(self.message)
        return self

    def _ipython_display_(self) -> None:
        """Jupyter shows nothing more when a check is a cell's last line: the verdict is printed
        already (IPython's display protocol calls this instead of showing the repr)."""


@lru_cache(maxsize=1)
def _load_reference(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def reference_values(path: str | Path = REFERENCE_FILE) -> dict[str, np.ndarray]:
    """Return the stored inputs and reference outputs (float64 NumPy arrays) by key.

    Keys look like ``"gram_matrix.features"``, ``"gram_matrix.expected"``, ``"tv_loss.grad"``,
    ``"content_loss.variant.mean_not_sum"``.

    Raises:
        FileNotFoundError: if the file is missing (run ``python tools/make_reference_data.py``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No reference values at {str(path)!r}; run `python tools/make_reference_data.py`.")
    return _load_reference(str(path))


def relative_error(actual, expected) -> float:
    """``max|actual - expected| / max|expected|``, computed in float64.

    Args:
        actual, expected: tensors or arrays of the same shape (any float dtype, any device).

    Returns:
        A Python ``float`` (``inf`` if ``expected`` is all zeros and ``actual`` is not).
    """
    a = actual.detach().cpu().double().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual, np.float64)
    e = expected.detach().cpu().double().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected, np.float64)
    scale = np.abs(e).max() if e.size else 0.0
    diff = np.abs(a - e).max() if a.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return float(diff / scale)


def uses_python_loops(fn: Callable) -> bool | None:
    """Whether ``fn``'s source contains a ``for``/``while`` loop or a comprehension.

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
    """:func:`uses_python_loops` for source text; ``None`` if it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    loops = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    return any(isinstance(node, loops) for node in ast.walk(tree))


def diagnose_loops(name: str, uses_loops: bool | None) -> str | None:
    """The failure message for a function that should have no Python loops, or ``None``."""
    if not uses_loops:
        return None
    return (f"{name}: FAIL - the values are right, but the code uses a Python loop or "
            "comprehension: use slicing (img[:, :, 1:, :] - img[:, :, :-1, :]) instead; it is "
            "much faster.")

# --- diagnosis: what a result says about the code, in the student's terms -------------------------

def diagnose_exception(name: str, type_name: str, text: str, shapes: str = "", where: str = "") -> tuple[str, str]:
    """Explain an exception raised by a student's function.

    Args:
        name: the function, e.g. ``"gram_matrix"``.
        type_name: the exception's class name, e.g. ``"RuntimeError"``.
        text: ``str(exception)``.
        shapes: the tensor inputs' shapes, e.g. ``"(2, 12, 5, 8)"``, quoted in size-mismatch hints.
        where: ``"\\n  in your code (function), line ...: ..."`` or ``""``.

    Returns:
        ``(status, message)``: status ``"not implemented"`` for ``NotImplementedError``, else
        ``"error"``.
    """
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
        hint = f" The tensor inputs here have shapes {shapes}: a size in a reshape, product or subtraction does not fit them."
        if name == "gram_matrix":
            hint += " Keep the batch axis N: reshape to (N, C, H*W)."
        elif name == "style_loss":
            hint += " " + _STYLE_INDEXING
    elif name == "style_loss" and "index out of range" in text:
        hint = " " + _STYLE_INDEXING
    return "error", f"{name}: FAIL - it raised {type_name}: {text}.{hint}{where}"


_STYLE_INDEXING = ("feats is indexed by layer number, the other lists by position: for the i-th style layer "
                   "use feats[style_layers[i]] with style_targets[i] and style_weights[i].")


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
            or ``F.T @ F``.
        cut_from_graph: ``True`` when the inputs require gradients but the result does not: a
            wrong dtype then comes from building a new tensor (``torch.tensor(float(...))``).

    Returns:
        The failure message, or ``None`` when the output is fine.
    """
    if type_name != "Tensor":
        return (f"{name}: FAIL - it returned a {type_name}, not a torch.Tensor. "
                "Use torch operations throughout (no .item(), .numpy() or math) so gradients can flow.")
    shape = tuple(shape)
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


def diagnose_unmodified(name: str, before: list[torch.Tensor], after: list[torch.Tensor]) -> str | None:
    """The failure message if any input changed during the call (``before``: copies), else ``None``."""
    for old, new in zip(before, after):
        if not torch.equal(old, new.detach()):
            return (f"{name}: FAIL - it modified an input tensor in place. "
                    "Compute new tensors instead (x = x / n, not x /= n).")
    return None


def diagnose_values(name: str, out, expected, variants: dict, dtype: torch.dtype,
                    own_gram: bool = True) -> tuple[float, str | None]:
    """Compare a result with the reference; on a mismatch, name the mistake if a variant matches.

    Args:
        name: the function.
        out: the student's result (tensor or array), same shape as ``expected``.
        expected: the reference result.
        variants: mistake name (a key of :data:`MISTAKES`) -> the value that mistake gives (stored
            in the reference file; the autograder computes them for its hidden inputs).
        dtype: the inputs' dtype; sets the tolerance (:data:`TOLERANCE`).
        own_gram: whether ``style_loss`` ran with the student's own ``gram_matrix`` (then a
            mismatch may come from it, and the message says so).

    Returns:
        ``(relative error, failure message or None)``.
    """
    tolerance = TOLERANCE[dtype]
    error = relative_error(out, expected)
    if error <= tolerance:
        return error, None
    for mistake, value in variants.items():
        if relative_error(out, value) <= max(tolerance, 1e-6):
            return error, f"{name}: FAIL - {MISTAKES[mistake]}"
    hint = (" style_loss calls your gram_matrix: if check_gram_matrix fails, fix that first; if it passes, compare "
            "each layer's term with w_l * sum((G_l - A_l) ** 2).") if name == "style_loss" and own_gram else ""
    return error, (f"{name}: FAIL - the values differ from the reference (max relative error {error:.1e}, "
                   f"threshold {tolerance:.0e} in {str(dtype).removeprefix('torch.')}).{hint}")


def diagnose_gradient(name: str, requires_grad: bool, grads: list, expected: list) -> str | None:
    """Check the gradients of a result with respect to its inputs.

    Args:
        name: the function.
        requires_grad: whether the result is attached to the autograd graph.
        grads: the gradients obtained (tensors or arrays; ``None`` for an input it does not reach).
        expected: the reference gradients, same shapes.

    Returns:
        The failure message, or ``None`` when every gradient is within 1e-6 relative error.
    """
    if not requires_grad:
        return (f"{name}: FAIL - the values are right but no gradient flows back to the inputs. "
                "Don't use .detach(), .item(), .numpy(), torch.tensor(...) or .data on intermediate results.")
    for grad, want in zip(grads, expected):
        if grad is None or relative_error(grad, want) > 1e-6:
            return (f"{name}: FAIL - the values are right but the gradient is not: "
                    "part of the computation is cut off from autograd (.detach(), .data or a NumPy detour).")
    return None


# --- the machinery shared by all checks ----------------------------------------------------------

class _Verdict(Exception):
    """Raised inside a check to stop at the first problem found."""

    def __init__(self, status: str, message: str, error: float | None = None):
        super().__init__(message)
        self.status, self.message, self.error = status, message, error


def _tensor(array: np.ndarray, dtype: torch.dtype, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(array, dtype=dtype, requires_grad=requires_grad)


def _student_line(error: BaseException) -> str:
    """The last line of the traceback that is not inside torch or this module."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if "torch" not in Path(f.filename).parts and Path(f.filename).name != "checks.py"]
    if frames and frames[-1].line:
        function = f" ({frames[-1].name})" if frames[-1].name not in ("<module>", "<lambda>") else ""
        return f"\n  in your code{function}, line {frames[-1].lineno}: {frames[-1].line.strip()}"
    return ""


def _call(name: str, fn: Callable, *args):
    """Call the student's function, turning exceptions into verdicts."""
    def describe(arg) -> str | None:
        if isinstance(arg, torch.Tensor):
            return str(tuple(arg.shape))
        if isinstance(arg, (list, tuple)) and arg and all(isinstance(a, torch.Tensor) for a in arg):
            return "[" + ", ".join(str(tuple(a.shape)) for a in arg) + "]"
        return None

    shapes = "; ".join(d for d in map(describe, args) if d is not None)
    try:
        return fn(*args)
    except Exception as error:  # a student's bug can raise anything: report it, don't crash
        status, message = diagnose_exception(name, type(error).__name__, str(error), shapes, _student_line(error))
        raise _Verdict(status, message) from None


def _fail_if(message: str | None, error: float | None = None) -> None:
    if message is not None:
        raise _Verdict("fail", message, error)


def _require_tensor(name: str, out, shape: tuple, dtype: torch.dtype, input_shape: tuple | None = None,
                    inputs: list[torch.Tensor] = ()) -> None:
    is_tensor = isinstance(out, torch.Tensor)
    cut = is_tensor and not out.requires_grad and any(t.requires_grad for t in inputs)
    _fail_if(diagnose_output(name, "Tensor" if is_tensor else type(out).__name__, out.shape if is_tensor else (),
                             out.dtype if is_tensor else None, shape, dtype, input_shape, cut))


def _require_unmodified(name: str, before: list[torch.Tensor], after: list[torch.Tensor]) -> None:
    _fail_if(diagnose_unmodified(name, before, after))


def _compare(name: str, out: torch.Tensor, ref: dict, prefix: str, dtype: torch.dtype,
             expected_key: str = "expected") -> float:
    """Compare with the reference; on a mismatch, name the mistake if a stored variant matches."""
    variant_prefix = f"{prefix}.variant."
    variants = {key[len(variant_prefix):]: ref[key] for key in ref if key.startswith(variant_prefix)}
    error, message = diagnose_values(name, out, ref[f"{prefix}.{expected_key}"], variants, dtype)
    _fail_if(message, error)
    return error


def _require_gradient(name: str, out: torch.Tensor, inputs: list[torch.Tensor], expected: list[np.ndarray],
                      upstream: torch.Tensor | None = None) -> None:
    grads = torch.autograd.grad(out, inputs, grad_outputs=upstream, allow_unused=True) if out.requires_grad else []
    _fail_if(diagnose_gradient(name, out.requires_grad, list(grads), expected))


def _run_check(name: str, body: Callable[[dict, torch.dtype], float], extra: Callable[[], None] | None = None
               ) -> CheckResult:
    errors = []
    try:
        ref = reference_values()
        for dtype in (torch.float64, torch.float32):
            errors.append(body(ref, dtype))
        if extra is not None:
            extra()
    except _Verdict as verdict:
        result = CheckResult(name, verdict.status, verdict.message, verdict.error)
    else:
        worst = max(errors)
        result = CheckResult(name, "pass", f"{name}: PASS - matches the reference values in float64 and float32 "
                             f"(max relative error {worst:.1e}); gradients flow back; inputs are unmodified.", worst)
    print(result.message)
    return result


def _check_scalar_loss(name: str, loss: Callable, make_inputs: Callable, extra: Callable[[], None] | None = None
                       ) -> CheckResult:
    """The check of a loss that returns a scalar: call, output, unmodified inputs, values, gradient.

    ``make_inputs(ref, dtype)`` returns ``(args, tensors, wrt, grad_keys)``: the call's arguments,
    the tensors among them that must stay unmodified, those whose gradient is checked (float64
    only), and the reference keys of those gradients.
    """
    def body(ref, dtype):
        args, tensors, wrt, grad_keys = make_inputs(ref, dtype)
        before = [t.detach().clone() for t in tensors]
        out = _call(name, loss, *args)
        _require_tensor(name, out, (), dtype, inputs=wrt)
        _require_unmodified(name, before, tensors)
        error = _compare(name, out, ref, name, dtype)
        if dtype == torch.float64:
            _require_gradient(name, out, wrt, [ref[key] for key in grad_keys])
        return error

    return _run_check(name, body, extra)


# --- the four checks -----------------------------------------------------------------------------

def check_content_loss(content_loss: Callable) -> CheckResult:
    """Check ``content_loss(content_weight, content_current, content_original) -> scalar tensor``.

    Inputs are feature maps of shape (1, C, H, W) (float64, then float32) and a Python float
    weight; the reference is ``content_weight * sum((current - original) ** 2)`` (Gatys et al.,
    2016, Eq. 1, without the 1/2; CS231n's convention).

    Args:
        content_loss: the student's function.

    Returns:
        A :class:`CheckResult` (truthy if it passed). The verdict is also printed.
    """
    def inputs(ref, dtype):
        weight = float(ref["content_loss.content_weight"])
        current = _tensor(ref["content_loss.content_current"], dtype, requires_grad=True)
        original = _tensor(ref["content_loss.content_original"], dtype)
        return (weight, current, original), [current, original], [current], ["content_loss.grad"]

    return _check_scalar_loss("content_loss", content_loss, inputs)


def check_gram_matrix(gram_matrix: Callable) -> CheckResult:
    """Check ``gram_matrix(features, normalize=True) -> (N, C, C) tensor``.

    Inputs are feature maps of shape (2, C, H, W) with H != W (float64, then float32); the
    reference is ``G[n] = F[n] @ F[n].T`` with ``F[n]`` of shape (C, H*W), divided by C*H*W when
    ``normalize`` (Gatys et al., 2016, Eq. 3; CS231n's normalization). Both ``normalize=True``
    and ``normalize=False`` are checked.

    Args:
        gram_matrix: the student's function.

    Returns:
        A :class:`CheckResult` (truthy if it passed). The verdict is also printed.
    """
    name = "gram_matrix"

    def body(ref, dtype):
        features = _tensor(ref[f"{name}.features"], dtype, requires_grad=True)
        n, c, h, w = features.shape
        before = [features.detach().clone()]
        out = _call(name, gram_matrix, features)
        _require_tensor(name, out, (n, c, c), dtype, input_shape=(n, c, h, w), inputs=[features])
        _require_unmodified(name, before, [features])
        error = _compare(name, out, ref, name, dtype)
        out_raw = _call(name, gram_matrix, features, False)
        _require_tensor(name, out_raw, (n, c, c), dtype)
        error = max(error, _compare(name, out_raw, ref, name, dtype, expected_key="expected_unnormalized"))
        if dtype == torch.float64:
            upstream = _tensor(ref[f"{name}.grad_upstream"], dtype)
            _require_gradient(name, out, [features], [ref[f"{name}.grad"]], upstream)
        return error

    return _run_check(name, body)


def check_style_loss(style_loss: Callable) -> CheckResult:
    """Check ``style_loss(feats, style_layers, style_targets, style_weights) -> scalar tensor``.

    ``feats`` is a list of feature maps (1, C_l, H_l, W_l), ``style_targets`` the normalized
    Gram matrices (1, C_l, C_l) of the style image at ``style_layers``, ``style_weights`` a list of
    floats; the reference is ``sum_l w_l * sum((gram_matrix(feats[l]) - target_l) ** 2)``
    (Gatys et al., 2016, Eqs. 4-5, with CS231n's weighting). The student's function calls the
    student's own ``gram_matrix``.

    Args:
        style_loss: the student's function.

    Returns:
        A :class:`CheckResult` (truthy if it passed). The verdict is also printed.
    """
    def inputs(ref, dtype):
        count = int(ref["style_loss.num_feats"])
        layers = [int(i) for i in ref["style_loss.style_layers"]]
        weights = [float(w) for w in ref["style_loss.style_weights"]]
        feats = [_tensor(ref[f"style_loss.feats.{i}"], dtype, requires_grad=i in layers) for i in range(count)]
        targets = [_tensor(ref[f"style_loss.style_targets.{j}"], dtype) for j in range(len(layers))]
        return ((feats, layers, targets, weights), feats + targets, [feats[i] for i in layers],
                [f"style_loss.grad.{i}" for i in layers])

    return _check_scalar_loss("style_loss", style_loss, inputs)


def check_tv_loss(tv_loss: Callable) -> CheckResult:
    """Check ``tv_loss(img, tv_weight) -> scalar tensor``, and that it has no Python loops.

    ``img`` has shape (1, 3, H, W), H != W, normalized values (float64, then float32); the
    reference is ``tv_weight * (sum of squared differences of vertically adjacent pixels + the
    same for horizontally adjacent pixels)`` (total variation regularization as in Johnson et
    al., 2016, and CS231n).

    Args:
        tv_loss: the student's function.

    Returns:
        A :class:`CheckResult` (truthy if it passed). The verdict is also printed.
    """
    def inputs(ref, dtype):
        img = _tensor(ref["tv_loss.img"], dtype, requires_grad=True)
        return (img, float(ref["tv_loss.tv_weight"])), [img], [img], ["tv_loss.grad"]

    def no_loops():
        _fail_if(diagnose_loops("tv_loss", uses_python_loops(tv_loss)))

    return _check_scalar_loss("tv_loss", tv_loss, inputs, no_loops)


def check_all(content_loss: Callable, gram_matrix: Callable, style_loss: Callable, tv_loss: Callable) -> bool:
    """Run all four checks; return ``True`` only if every one passed."""
    results = [check_content_loss(content_loss), check_gram_matrix(gram_matrix),
               check_style_loss(style_loss), check_tv_loss(tv_loss)]
    return all(results)
