"""How a check runs a student's function and turns what it sees into a verdict: the machinery that
:mod:`cs231n_style.checks` (the six checks of notebooks 01-05) and
:mod:`cs231n_style.photorealism` (notebook 06's) share - the result type, the call that names the
student's line, the comparison with the reference values, the gradient, the unmodified inputs, the
loops rule and the probes that locate a mistake (:mod:`cs231n_style.diagnosis`).
"""

from __future__ import annotations

import contextlib
import io
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import _skip_after_failure
from ._tracebacks import where_in_your_code
from .diagnosis import (
    VECTORIZED,
    Probe,
    diagnose_exception,
    diagnose_gradient,
    diagnose_loops,
    diagnose_output,
    diagnose_unmodified,
    diagnose_values,
    reference_values,
    uses_python_loops,
)


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


# --- the checks ----------------------------------------------------------------------------------

# --- the machinery shared by all checks ----------------------------------------------------------

class _Verdict(Exception):
    """Raised inside a check to stop at the first problem found."""

    def __init__(self, status: str, message: str, error: float | None = None):
        super().__init__(message)
        self.status, self.message, self.error = status, message, error


def _tensor(array: np.ndarray, dtype: torch.dtype, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(array, dtype=dtype, requires_grad=requires_grad)


#: The files of the checks' own frames: this module and the modules of the checks that use it.
_CHECKS_FILES = ("_checking.py", "checks.py", "photorealism.py")


def _is_students(frame: traceback.FrameSummary) -> bool:
    """Whether a traceback frame is the student's code: neither torch's nor the checks' own."""
    path = Path(frame.filename)
    return "torch" not in path.parts and path.name not in _CHECKS_FILES


def _call(name: str, fn: Callable, *args, passes_own_check: Callable[[str], bool | None] | None = None):
    """Call the student's function, turning exceptions into verdicts (``passes_own_check``: see
    :func:`cs231n_style._tracebacks.where_in_your_code`)."""
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
        where = where_in_your_code(error, _is_students, passes_own_check)
        status, message = diagnose_exception(name, type(error).__name__, str(error), shapes, where)
        raise _Verdict(status, message) from None


def _fail_if(message: str | None, error: float | None = None) -> None:
    if message is not None:
        raise _Verdict("fail", message, error)


def _require_tensor(name: str, out, shape: tuple, dtype: torch.dtype, input_shape: tuple | None = None,
                    inputs: Sequence[torch.Tensor] = ()) -> None:
    is_tensor = isinstance(out, torch.Tensor)
    cut = is_tensor and not out.requires_grad and any(t.requires_grad for t in inputs)
    _fail_if(diagnose_output(name, "Tensor" if is_tensor else type(out).__name__, out.shape if is_tensor else (),
                             out.dtype if is_tensor else None, shape, dtype, input_shape, cut))


def _require_unmodified(name: str, before: list[torch.Tensor], after: list[torch.Tensor]) -> None:
    _fail_if(diagnose_unmodified(name, before, after))


def _compare(name: str, out: torch.Tensor, ref: dict, prefix: str, dtype: torch.dtype,
             expected_key: str = "expected", variant_key: str = "variant", args: list | None = None,
             probe: Probe | None = None, grads: list | None = None, expected_grads: list | None = None) -> float:
    """Compare with the reference; on a mismatch, name the mistake if a stored variant matches, else
    locate it with ``args`` (the call's arguments), ``probe`` and the gradients (see
    :func:`cs231n_style.diagnosis.diagnose_values`)."""
    variant_prefix = f"{prefix}.{variant_key}."
    variants = {key[len(variant_prefix):]: ref[key] for key in ref if key.startswith(variant_prefix)}
    error, message = diagnose_values(name, out, ref[f"{prefix}.{expected_key}"], variants, dtype,
                                     args=None if args is None else _arrays(args), probe=probe, grads=grads,
                                     expected_grads=expected_grads)
    _fail_if(message, error)
    return error


def _arrays(args):
    """The arguments with every tensor as a float64 NumPy array (lists of tensors too)."""
    if isinstance(args, torch.Tensor):
        return args.detach().to("cpu", torch.float64).numpy()
    if isinstance(args, (list, tuple)):
        return [_arrays(arg) for arg in args]
    return args


def _tensors(args):
    """:func:`_arrays` undone: every array a new float64 tensor."""
    if isinstance(args, np.ndarray):
        return torch.tensor(args, dtype=torch.float64)
    if isinstance(args, list):
        return [_tensors(arg) for arg in args]
    return args


def _prober(fn: Callable) -> Probe:
    """A :data:`cs231n_style.diagnosis.Probe` of the student's function: called in float64 on fresh tensors,
    what it prints is not shown, and whatever it raises gives ``None``."""
    def probe(args: list):
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                out = fn(*_tensors(args))
        except Exception:  # a probe of wrong code may raise anything: it just finds nothing
            return None
        return out.detach().to("cpu", torch.float64).numpy() if isinstance(out, torch.Tensor) else None

    return probe


def _no_loops(name: str, fn: Callable) -> Callable[[], None]:
    """The check's last step for a function of :data:`cs231n_style.diagnosis.VECTORIZED`: no Python loop."""
    assert name in VECTORIZED, name

    def check() -> None:
        _fail_if(diagnose_loops(name, uses_python_loops(fn)))

    return check


def _student_grads(out: torch.Tensor, wrt: list[torch.Tensor]) -> list | None:
    """The student's gradients of a scalar ``out`` with respect to ``wrt`` (arrays; ``None`` where unused), kept
    for locating a wrong value; ``None`` when there are none."""
    if not (isinstance(out, torch.Tensor) and out.requires_grad):
        return None
    try:
        grads = torch.autograd.grad(out, wrt, retain_graph=True, allow_unused=True)
    except RuntimeError:
        return None
    return [None if g is None else _arrays(g) for g in grads]


def _require_gradient(name: str, out: torch.Tensor, inputs: list[torch.Tensor], expected: list[np.ndarray],
                      upstream: torch.Tensor | None = None) -> None:
    grads = torch.autograd.grad(out, inputs, grad_outputs=upstream, allow_unused=True) if out.requires_grad else []
    _fail_if(diagnose_gradient(name, out.requires_grad, list(grads), expected))


def _run_check(name: str, body: Callable[[dict, torch.dtype], float], extra: Callable[[], None] | None = None,
               note_if_failed: str | None = None) -> CheckResult:
    errors = []
    try:
        ref = reference_values()
        for dtype in (torch.float64, torch.float32):
            errors.append(body(ref, dtype))
        if extra is not None:
            extra()
    except _Verdict as verdict:
        message = verdict.message
        if note_if_failed and verdict.status in ("fail", "error"):
            message = f"{name}: FAIL - {note_if_failed}. What this check sees: {message.split(' - ', 1)[-1]}"
        result = CheckResult(name, verdict.status, message, verdict.error)
    else:
        worst = max(errors)
        result = CheckResult(name, "pass", f"{name}: PASS - matches the reference values in float64 and float32 "
                             f"(max relative error {worst:.1e}); gradients flow back; inputs are unmodified.", worst)
    print(result.message)
    _skip_after_failure.record(name, result.passed)  # a batch run skips the demo cells that would fail next
    return result


def _check_scalar_loss(name: str, loss: Callable, make_inputs: Callable, extra: Callable[[], None] | None = None,
                       note_if_failed: str | None = None,
                       passes_own_check: Callable[[str], bool | None] | None = None) -> CheckResult:
    """The check of a loss that returns a scalar: call, output, unmodified inputs, values, gradient.

    ``make_inputs(ref, dtype)`` returns ``(args, tensors, wrt, grad_keys)``: the call's arguments,
    the tensors among them that must stay unmodified, those whose gradient is checked (float64
    only), and the reference keys of those gradients. A wrong value is located by probing ``loss``
    and, in float64, from its gradients.
    """
    def body(ref, dtype):
        args, tensors, wrt, grad_keys = make_inputs(ref, dtype)
        before = [t.detach().clone() for t in tensors]
        out = _call(name, loss, *args, passes_own_check=passes_own_check)
        _require_tensor(name, out, (), dtype, inputs=wrt)
        _require_unmodified(name, before, tensors)
        grads = _student_grads(out, wrt) if dtype == torch.float64 else None
        error = _compare(name, out, ref, name, dtype, args=args, probe=_prober(loss), grads=grads,
                         expected_grads=[ref[key] for key in grad_keys] if grads is not None else None)
        if dtype == torch.float64:
            _require_gradient(name, out, wrt, [ref[key] for key in grad_keys])
        return error

    return _run_check(name, body, extra, note_if_failed)
