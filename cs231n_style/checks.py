"""One-line checks of the functions students write, with feedback that says what is wrong.

The four of notebooks 01-03 (``check_content_loss``, ``check_gram_matrix``, ``check_style_loss``,
``check_tv_loss``) and the two of notebook 05's spatial control (``check_guided_gram_matrix``,
``check_guided_style_loss``: Gatys et al., CVPR 2017, Sec. 4).

Each ``check_...(fn)`` calls the student's function on stored inputs, in float64 and float32,
compares the result with stored reference values, checks that gradients flow back and that the
inputs are left unmodified, and prints one verdict::

    check_gram_matrix(gram_matrix)
    gram_matrix: PASS - matches the reference values in float64 and float32 (max relative error 2.1e-16) ...

When the result is wrong, the verdict names the mistake if it is a typical one (a missing weight,
mean instead of sum, no division by C*H*W, ...); otherwise it locates it: the check calls the
function again on inputs built so that each image, region, style layer and term can be told apart,
and says which one is wrong and how ("image 1 got image 0's masks", "the vertical differences are
counted twice", "the terms of style layers 3 and 4 are not multiplied by their weights"). A
relative error it cannot place is reported with what it means - a difference in the formula, or
float32 somewhere - never as rounding. The diagnosis is :mod:`cs231n_style.diagnosis`, which the
autograder uses too, so a student reads the same explanation in the notebook and in the grade.
Where a function's hint says "no Python loops" (``content_loss``, ``gram_matrix``,
``guided_gram_matrix``, ``tv_loss``), its check fails a loop or comprehension, as the grader's tests
and, through the check cells, nbgrader do. A NaN or an inf in a result or a gradient fails, with a
verdict that says so and what usually causes it. The stored inputs and reference values
(``data/reference_values.npz``) contain no solutions, and a check needs no network weights, images
or GPU. The relative error in a verdict is ``max|yours - reference| / max|reference|``. How a check
calls the function and turns what it sees into a verdict is :mod:`cs231n_style._checking`, shared
with notebook 06's check (:mod:`cs231n_style.photorealism`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import torch

from ._checking import (
    CheckResult,
    _call,
    _check_scalar_loss,
    _compare,
    _no_loops,
    _prober,
    _require_gradient,
    _require_tensor,
    _require_unmodified,
    _run_check,
    _tensor,
)
from .diagnosis import (
    diagnose_loops,
)

__all__ = [
    "CheckResult",
    "check_all",
    "check_content_loss",
    "check_gram_matrix",
    "check_guided_gram_matrix",
    "check_guided_style_loss",
    "check_style_loss",
    "check_tv_loss",
]

def check_content_loss(content_loss: Callable) -> CheckResult:
    """Check ``content_loss(content_weight, content_current, content_original) -> scalar tensor``.

    Inputs are feature maps of shape (1, C, H, W) (float64, then float32) and a Python float
    weight; the reference is ``content_weight * sum((current - original) ** 2)`` (Gatys et al.,
    2016, Eq. 1, without the 1/2; CS231n's convention). Its source must have no Python loop or
    comprehension (its hint says so).

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

    return _check_scalar_loss("content_loss", content_loss, inputs, _no_loops("content_loss", content_loss))


def check_gram_matrix(gram_matrix: Callable) -> CheckResult:
    """Check ``gram_matrix(features, normalize=True) -> (N, C, C) tensor``.

    Inputs are feature maps of shape (2, C, H, W) with H != W (float64, then float32); the
    reference is ``G[n] = F[n] @ F[n].T`` with ``F[n]`` of shape (C, H*W), divided by C*H*W when
    ``normalize`` (Gatys et al., 2016, Eq. 3; CS231n's normalization). Both ``normalize=True``
    and ``normalize=False`` are checked, and that the source has no Python loop or comprehension
    (the hint says so). A wrong result is located: per image, and by how it grows with the features.

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
        probe = _prober(gram_matrix)
        error = _compare(name, out, ref, name, dtype, args=[features], probe=probe)
        out_raw = _call(name, gram_matrix, features, False)
        _require_tensor(name, out_raw, (n, c, c), dtype)
        error = max(error, _compare(name, out_raw, ref, name, dtype, expected_key="expected_unnormalized",
                                    args=[features, False], probe=probe))
        if dtype == torch.float64:
            upstream = _tensor(ref[f"{name}.grad_upstream"], dtype)
            _require_gradient(name, out, [features], [ref[f"{name}.grad"]], upstream)
        return error

    return _run_check(name, body, _no_loops(name, gram_matrix))


def check_style_loss(style_loss: Callable) -> CheckResult:
    """Check ``style_loss(feats, style_layers, style_targets, style_weights) -> scalar tensor``.

    ``feats`` is a list of feature maps (1, C_l, H_l, W_l), ``style_targets`` the normalized
    Gram matrices (1, C_l, C_l) of the style image at ``style_layers``, ``style_weights`` a list of
    floats; the reference is ``sum_l w_l * sum((gram_matrix(feats[l]) - target_l) ** 2)``
    (Gatys et al., 2016, Eqs. 4-5, with CS231n's weighting). The student's function calls the
    student's own ``gram_matrix``. A wrong result is located per style layer (its weight, its term).

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

    note, passes = _helper_verdict("style_loss", style_loss, "gram_matrix", check_gram_matrix)
    return _check_scalar_loss("style_loss", style_loss, inputs, note_if_failed=note, passes_own_check=passes)


def check_tv_loss(tv_loss: Callable) -> CheckResult:
    """Check ``tv_loss(img, tv_weight) -> scalar tensor``, and that it has no Python loops.

    ``img`` has shape (1, 3, H, W), H != W, normalized values (float64, then float32); the
    reference is ``tv_weight * (sum of squared differences of vertically adjacent pixels + the
    same for horizontally adjacent pixels)`` (total variation regularization as in Johnson et
    al., 2016, and CS231n). A wrong result is located by probing: per term (vertical, horizontal),
    with and without the weight, wrapping around the border, pixels two apart.

    Args:
        tv_loss: the student's function.

    Returns:
        A :class:`CheckResult` (truthy if it passed). The verdict is also printed.
    """
    def inputs(ref, dtype):
        img = _tensor(ref["tv_loss.img"], dtype, requires_grad=True)
        return (img, float(ref["tv_loss.tv_weight"])), [img], [img], ["tv_loss.grad"]

    return _check_scalar_loss("tv_loss", tv_loss, inputs, _no_loops("tv_loss", tv_loss))


def check_guided_gram_matrix(guided_gram_matrix: Callable) -> CheckResult:
    """Check ``guided_gram_matrix(features, masks, normalize=True) -> (N, R, C, C) tensor``.

    Inputs are feature maps of shape (2, C, H, W) with H != W and soft masks (2, 3, H, W) with
    values in (0, 1] (float64, then float32; R = 3 regions differ from N = 2 images). The reference
    is ``G[n, r] = F_nr @ F_nr.T`` with ``F_nr = features[n] * masks[n, r]`` of shape (C, H*W) - the
    mask on both factors, weights m**2 - divided by ``C * sum(masks[n, r] ** 2)`` when ``normalize``
    (Gatys et al., CVPR 2017, Sec. 4, "guided Gram matrices"; an all-ones mask gives
    ``gram_matrix``). Both ``normalize=True`` and ``normalize=False`` are checked, the gradient with
    respect to ``features`` too, that neither input is modified, and that the source has no Python
    loop or comprehension (the hint says so). A wrong result is located per image and region (which
    masks each Gram matrix was computed with, what it was divided by); a constant added to the
    normalizer (an eps) fails by name even when the values are within the tolerance
    (:func:`cs231n_style.diagnosis.normalizer_eps`): no region is ever empty, and with an eps a
    region's average depends on its mask's overall scale.

    Args:
        guided_gram_matrix: the student's function.

    Returns:
        A :class:`CheckResult` (truthy if it passed). The verdict is also printed.
    """
    name = "guided_gram_matrix"

    def body(ref, dtype):
        features = _tensor(ref[f"{name}.features"], dtype, requires_grad=True)
        masks = _tensor(ref[f"{name}.masks"], dtype)
        (n, c, h, w), r = features.shape, masks.shape[1]
        before = [features.detach().clone(), masks.clone()]
        out = _call(name, guided_gram_matrix, features, masks)
        _require_tensor(name, out, (n, r, c, c), dtype, input_shape=(n, r, c, h, w), inputs=[features])
        _require_unmodified(name, before, [features, masks])
        probe = _prober(guided_gram_matrix)
        error = _compare(name, out, ref, name, dtype, args=[features, masks], probe=probe)
        out_raw = _call(name, guided_gram_matrix, features, masks, False)
        _require_tensor(name, out_raw, (n, r, c, c), dtype, input_shape=(n, r, c, h, w))
        error = max(error, _compare(name, out_raw, ref, name, dtype, expected_key="expected_unnormalized",
                                    variant_key="variant_unnormalized", args=[features, masks, False], probe=probe))
        if dtype == torch.float64:
            upstream = _tensor(ref[f"{name}.grad_upstream"], dtype)
            _require_gradient(name, out, [features], [ref[f"{name}.grad"]], upstream)
        return error

    return _run_check(name, body, _no_loops(name, guided_gram_matrix))


def check_guided_style_loss(guided_style_loss: Callable) -> CheckResult:
    """Check ``guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks) -> scalar``.

    ``feats`` is a list of 5 feature maps (1, C_l, H_l, W_l) of different sizes, indexed by layer
    number; ``style_layers`` is ``[1, 3, 4]`` (not from 0, not contiguous); the other lists go by
    position: ``style_targets[i]`` (1, R, C, C) the regions' targets, ``style_weights[i]`` floats,
    ``content_masks[i]`` (1, R, H, W) soft masks already at layer ``style_layers[i]``'s size
    (R = 2). The reference is ``sum_i w_i * sum((guided_gram_matrix(feats[style_layers[i]],
    content_masks[i]) - style_targets[i]) ** 2)`` over all regions and entries (Gatys et al., CVPR
    2017, Sec. 4). The student's function calls the student's own ``guided_gram_matrix``; when that
    one fails its own check, the verdict says so first. A wrong result is located by probing and from
    the gradients: per region (its targets), per style layer (its masks, its weight, its term).

    Args:
        guided_style_loss: the student's function.

    Returns:
        A :class:`CheckResult` (truthy if it passed). The verdict is also printed.
    """
    prefix = "guided_style_loss."

    def inputs(ref, dtype):
        count = int(ref[prefix + "num_feats"])
        layers = [int(i) for i in ref[prefix + "style_layers"]]
        weights = [float(w) for w in ref[prefix + "style_weights"]]
        feats = [_tensor(ref[f"{prefix}feats.{i}"], dtype, requires_grad=i in layers) for i in range(count)]
        targets = [_tensor(ref[f"{prefix}style_targets.{j}"], dtype) for j in range(len(layers))]
        masks = [_tensor(ref[f"{prefix}content_masks.{j}"], dtype) for j in range(len(layers))]
        return ((feats, layers, targets, weights, masks), feats + targets + masks, [feats[i] for i in layers],
                [f"{prefix}grad.{i}" for i in layers])

    note, passes = _helper_verdict("guided_style_loss", guided_style_loss, "guided_gram_matrix",
                                   check_guided_gram_matrix)
    return _check_scalar_loss("guided_style_loss", guided_style_loss, inputs, note_if_failed=note,
                              passes_own_check=passes)


def _helper_verdict(name: str, loss: Callable, helper: str, check: Callable[[Callable], CheckResult]
                    ) -> tuple[str | None, Callable[[str], bool | None]]:
    """What the ``helper`` that ``loss`` (named ``name``) calls - the one in its notebook's namespace -
    says about a failure of ``loss``: the note to say first when the helper fails its own ``check``
    (the mistake may be there, not in the loss), and, for the traceback pointer, whether a function
    of that name passes its own check (``None``: unknown)."""
    function = getattr(loss, "__globals__", {}).get(helper)
    passed = None
    if callable(function):
        with contextlib.redirect_stdout(io.StringIO()):  # the helper's verdict is not this check's
            result = check(function)
        # a helper whose values are right but that has a loop its hint forbids cannot make the loss wrong
        passed = result.passed or result.message == diagnose_loops(helper, True)
    note = None if passed is not False else (f"your {helper}, which {name} calls, does not pass {check.__name__}: "
                                             "fix it first, then run this check again")
    return note, lambda function_name: passed if function_name == helper else None


class CheckResults(tuple):
    """The :class:`CheckResult` of each check :func:`check_all` ran, in order; truthy exactly when all passed.

    A notebook cell ending with ``cs.check_all(...)`` shows nothing more than the verdicts each check
    printed (no stray ``True``), as a cell ending with one check does.
    """

    def __bool__(self) -> bool:
        return all(result.passed for result in self)

    @property
    def passed(self) -> bool:
        return bool(self)

    def raise_if_failed(self) -> CheckResults:
        """Raise unless every check passed (see :meth:`CheckResult.raise_if_failed`).

        Raises:
            AssertionError: with the verdicts of the checks that did not pass, one per line.
        """
        __tracebackhide__ = True
        failed = [result.message for result in self if not result.passed]
        if failed:
            raise AssertionError("\n".join(failed))
        return self

    def _ipython_display_(self) -> None:
        """Jupyter shows nothing more: each check printed its verdict already."""


def check_all(content_loss: Callable, gram_matrix: Callable, style_loss: Callable, tv_loss: Callable,
              guided_gram_matrix: Callable | None = None, guided_style_loss: Callable | None = None) -> CheckResults:
    """Run the four checks, and notebook 05's two when their functions are given, each printing its verdict.

    Args:
        content_loss, gram_matrix, style_loss, tv_loss: the student's four functions.
        guided_gram_matrix, guided_style_loss: notebook 05's functions (optional: ``None`` skips
            their checks).

    Returns:
        A :class:`CheckResults`, the checks' results in order: truthy only if every check run passed
        (``bool(check_all(...))``), and ``.raise_if_failed()`` to fail a cell. As a cell's last line it
        displays nothing beyond the printed verdicts.
    """
    results = [check_content_loss(content_loss), check_gram_matrix(gram_matrix),
               check_style_loss(style_loss), check_tv_loss(tv_loss)]
    if guided_gram_matrix is not None:
        results.append(check_guided_gram_matrix(guided_gram_matrix))
    if guided_style_loss is not None:
        results.append(check_guided_style_loss(guided_style_loss))
    return CheckResults(results)
