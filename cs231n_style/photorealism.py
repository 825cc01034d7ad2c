"""Photorealism regularization: the Matting Laplacian, and the check of the loss built on it.

Luan, Paris, Shechtman and Bala, "Deep Photo Style Transfer" (CVPR 2017), Sec. 3.1: style
transfer between two photos still *paints* (it distorts edges and adds texture), because nothing
asks the result to be a photo. They add a penalty that is small when the output is, in every
small window, an **affine function of the input photo's colours** - a recolouring that keeps every
edge of the photo and adds none:

    L_m = sum_{c in R, G, B} V_c[O]^T  M_I  V_c[O]

``V_c[O]`` is channel ``c`` of the output image flattened to a vector of ``N = H*W`` values, and
``M_I`` the (N, N) **Matting Laplacian** of the input photo ``I`` (Levin, Lischinski and Weiss,
"A Closed-Form Solution to Natural Image Matting", PAMI 2008, Eq. 12), which :func:`matting_laplacian`
builds. Students write the loss itself (``photorealism_loss``, notebook 06); :func:`check_photorealism_loss`
checks it as :mod:`cs231n_style.checks` checks the other functions, with the same verdicts.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ._checking import CheckResult, _fail_if, _require_tensor, _require_unmodified, _run_check, _Verdict
from ._matting_tensor import DenseLaplacianError, MattingLaplacian, laplacian_from_csr
from ._tracebacks import where_in_your_code
from .diagnosis import TOLERANCE, diagnose_exception, diagnose_gradient, relative_error

__all__ = [
    "MAX_LAPLACIAN_PIXELS",
    "DenseLaplacianError",
    "MattingLaplacian",
    "check_inputs",
    "check_photorealism_loss",
    "dense_verdict",
    "diagnose_photorealism_gradient",
    "diagnose_photorealism_value",
    "matting_laplacian",
    "photo_pair",
    "photorealism_values",
]

#: The largest image (in pixels, H*W) :func:`matting_laplacian` accepts. A 3 x 3 window gives 25
#: entries per row: stored as CSR (float32 values, int64 indices) ~0.3 KB per pixel, and building it
#: takes ~1.2 KB per pixel more at its peak (tools/benchmark_photorealism.py: 444 MiB at 512 x 767
#: px): ~1.5 GB at this size, 1024 x 1024, and ~10 s of one core.
MAX_LAPLACIAN_PIXELS = 1024 * 1024


def matting_laplacian(image: torch.Tensor, eps: float = 1e-7, window: int = 3,
                      dtype: torch.dtype = torch.float32) -> MattingLaplacian:
    """The Matting Laplacian of a photo (Levin et al., 2008, Eq. 12), as a sparse (N, N) tensor.

    For pixels ``i, j`` (N = H*W of them, numbered row by row: ``i = y * W + x``)::

        M[i, j] = sum over the windows w_k that hold both i and j of
                  delta_ij - 1/n * (1 + (I_i - mu_k)^T (Sigma_k + eps/n * E_3)^(-1) (I_j - mu_k))

    with ``w_k`` every ``window x window`` square lying wholly inside the image (``n = window**2``
    pixels), ``I_i`` the RGB colour (3,) of pixel ``i``, ``mu_k`` and ``Sigma_k`` the mean (3,) and
    covariance (3, 3, divided by ``n``) of the colours in ``w_k``, ``E_3`` the 3 x 3 identity.
    ``V^T M V`` is then the smallest squared error with which ``V`` can be written as ``a_k^T I + b_k``
    in every window (plus ``eps * |a_k|**2``): for an affine recolouring ``a^T I + b`` of the photo at
    most ``eps * |a|**2`` per window, and exactly 0 with ``eps = 0`` (Levin et al., Theorem 2); large
    for a texture the photo does not have. Luan et al. (CVPR 2017,
    Sec. 3.1) use it, with ``eps = 1e-7`` and 3 x 3 windows, as the photorealism regularizer
    ``sum_c V_c^T M V_c``.

    Properties (for any ``eps >= 0``): ``M`` is symmetric, positive semi-definite, its rows sum to 0
    (a constant image costs nothing), and entries are non-zero only for pixels at most
    ``window - 1`` rows and columns apart (25 per row for 3 x 3 windows). Computed in float64 (a
    flat window's covariance is nearly singular: with ``eps = 1e-7`` its inverse reaches ~1e8),
    with NumPy, one vectorized step per pair of window positions, then converted to ``dtype``.

    Args:
        image: the input photo's RGB **pixels in [0, 1]** (not ImageNet-normalized: apply
            :func:`cs231n_style.images.to_pixels` to a preprocessed image first), a float tensor of shape
            (1, 3, H, W) or (3, H, W), any device. At least ``window`` pixels high and wide, at most
            :data:`MAX_LAPLACIAN_PIXELS` pixels.
        eps: the regularizer ``eps >= 0`` of Levin et al.'s Eq. 12 (Luan et al.: 1e-7). With 0, every
            window's colours must span all three dimensions (no flat or grey window).
        window: the side of the square windows, an odd number >= 3 (Luan et al.: 3).
        dtype: the returned tensor's dtype, ``torch.float32`` (the optimized image's) or
            ``torch.float64``.

    Returns:
        A :class:`MattingLaplacian`: a sparse CSR tensor (``torch.sparse_csr``, int64 indices) of
        shape (H*W, H*W) and ``dtype`` on the CPU (``.to(device)`` moves it). ``laplacian @ v`` (or
        ``torch.sparse.mm``) multiplies it with a dense (H*W, K) tensor, gradients flowing back to
        ``v``; ``.to_dense()`` is refused: at 192 x 288 px it would hold 3 * 10**9 numbers (12 GB).

    Raises:
        TypeError: if ``image`` is not a torch tensor.
        ValueError: if ``image`` is not (1, 3, H, W) or (3, H, W), holds NaN or values outside
            [0, 1] (e.g. a normalized image), is smaller than ``window`` or larger than
            :data:`MAX_LAPLACIAN_PIXELS`; if ``eps`` is negative or not finite, ``window`` not an
            odd integer >= 3, ``dtype`` neither float32 nor float64; or, with ``eps = 0``, if a
            window's colour covariance is singular.
    """
    pixels = _photo_pixels(image, window)
    eps = _checked_eps(eps)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, not {dtype}.")
    height, width, _ = pixels.shape
    band, offsets = _laplacian_band(pixels, eps, window)
    covered = _covered(height, width, window, offsets).reshape(height * width, len(offsets))
    rows, slots = np.nonzero(covered)  # row by row, each row's offsets in raster order: sorted columns
    columns = rows + np.array([dy * width + dx for dy, dx in offsets])[slots]
    row_starts = np.concatenate([[0], np.cumsum(covered.sum(axis=1))])
    values = band.reshape(height * width, len(offsets))[rows, slots]
    return laplacian_from_csr(torch.from_numpy(row_starts), torch.from_numpy(columns), torch.from_numpy(values),
                              (height * width, height * width), dtype)


def _photo_pixels(image, window) -> np.ndarray:
    """``image`` as float64 NumPy (H, W, 3) pixels, checked (the errors of :func:`matting_laplacian`)."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch tensor of pixels (1, 3, H, W), not {type(image).__name__}: "
                        "e.g. cs231n_style.images.to_pixels(cs.preprocess('cat', 160)).")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3 (the side of the square windows), not {window!r}.")
    shape = tuple(image.shape)
    if image.dim() == 4 and shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (1, 3, H, W) or (3, H, W), RGB first; got {shape}."
                         + (" It looks channels-last: use image.permute(2, 0, 1)." if shape[-1:] == (3,) else ""))
    height, width = image.shape[1:]
    if height < window or width < window:
        raise ValueError(f"image is {height} x {width} px: it must be at least window = {window} pixels high and "
                         "wide.")
    if height * width > MAX_LAPLACIAN_PIXELS:
        raise ValueError(f"image is {height} x {width} = {height * width:,} px: the Matting Laplacian of more than "
                         f"{MAX_LAPLACIAN_PIXELS:,} px needs gigabytes. Resize it first (e.g. cs.preprocess(photo, "
                         "384)).")
    pixels = image.detach().to("cpu", torch.float64).permute(1, 2, 0).numpy()
    if np.isnan(pixels).any():
        raise ValueError("image contains NaN values: a Matting Laplacian needs real pixels in [0, 1].")
    if pixels.min() < 0 or pixels.max() > 1:
        raise ValueError(f"image must hold pixels in [0, 1]; got values in [{pixels.min():.3g}, {pixels.max():.3g}]. "
                         "A normalized image (cs.preprocess) goes through cs231n_style.images.to_pixels first; 8-bit "
                         "values are divided by 255.")
    return pixels


def _checked_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
            or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0 (Luan et al. use 1e-7), not {eps!r}.")
    return float(eps)


def _window_statistics(pixels: np.ndarray, eps: float, window: int):
    """For every window position (kh x kw of them): its pixels' colours minus their mean, (kh, kw, n, 3),
    and ``(Sigma_k + eps / n * E_3)^(-1)``, (kh, kw, 3, 3); ``n = window ** 2``."""
    n = window * window
    patches = sliding_window_view(pixels, (window, window), axis=(0, 1))  # (kh, kw, 3, window, window)
    patches = patches.reshape(*patches.shape[:3], n).transpose(0, 1, 3, 2)  # (kh, kw, n, 3), row by row
    centred = patches - patches.mean(axis=2, keepdims=True)
    covariance = np.einsum("hwnc,hwnd->hwcd", centred, centred) / n
    try:
        inverse = np.linalg.inv(covariance + eps / n * np.eye(3))
    except np.linalg.LinAlgError:
        raise ValueError("with eps = 0 a window's colour covariance is singular (a flat or grey window): "
                         "use eps > 0 (Luan et al.: 1e-7).") from None
    return centred, inverse


def _laplacian_band(pixels: np.ndarray, eps: float, window: int):
    """Eq. 12 summed into a band: ``band[y, x, d] = M[(y, x), (y, x) + offsets[d]]``, (H, W, D) float64,
    with ``offsets`` the D = (2 * window - 1) ** 2 pixel offsets (dy, dx) in raster order.

    Raster order of the offsets is raster order of the columns in each row (every stored column is
    inside the image), so the band read row-major is a sorted (coalesced) sparse matrix.
    """
    height, width, _ = pixels.shape
    n, reach = window * window, window - 1
    centred, inverse = _window_statistics(pixels, eps, window)
    kh, kw = centred.shape[:2]
    offsets = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)]
    slot = {offset: d for d, offset in enumerate(offsets)}
    band = np.zeros((len(offsets), height, width))
    positions = [divmod(a, window) for a in range(n)]
    for a, (ay, ax) in enumerate(positions):
        weighted = np.einsum("hwc,hwcd->hwd", centred[:, :, a], inverse)  # (I_a - mu)^T (Sigma + eps/n)^-1
        for b, (by, bx) in enumerate(positions):
            g = (1.0 + np.einsum("hwd,hwd->hw", weighted, centred[:, :, b])) / n
            band[slot[(by - ay, bx - ax)], ay:ay + kh, ax:ax + kw] += (a == b) - g
    return np.ascontiguousarray(band.transpose(1, 2, 0)), offsets


def _covered(height: int, width: int, window: int, offsets: list) -> np.ndarray:
    """(H, W, D) booleans: whether some window holds both pixel (y, x) and pixel (y, x) + offsets[d]:
    the stored entries (the others are 0 by Eq. 12)."""
    ys, xs = np.arange(height)[:, None], np.arange(width)[None, :]
    covered = np.empty((height, width, len(offsets)), dtype=bool)
    for d, (dy, dx) in enumerate(offsets):
        # A window's top-left corner (ty, tx) lies in [0, H - window] x [0, W - window] and within
        # window - 1 of both pixels: y - (window - 1) <= ty <= y and the same for y + dy.
        low_y, high_y = np.maximum(np.maximum(ys, ys + dy) - window + 1, 0), np.minimum(np.minimum(ys, ys + dy),
                                                                                        height - window)
        low_x, high_x = np.maximum(np.maximum(xs, xs + dx) - window + 1, 0), np.minimum(np.minimum(xs, xs + dx),
                                                                                        width - window)
        covered[:, :, d] = (low_y <= high_y) & (low_x <= high_x)
    return covered


# --- the check of the student's photorealism_loss ------------------------------------------------

#: What each wrong value means, in the student's terms (the keys of :func:`photorealism_values`).
PHOTOREALISM_MISTAKES = {
    "one_channel": ("the result counts one colour channel only: sum V_c^T M V_c over the three channels R, G and B "
                    "(e.g. V = img.reshape(3, H*W).T, then (V * (laplacian @ V)).sum())."),
    "channel_pairs": ("the result sums V_c^T M V_d over all nine pairs of channels (e.g. (V.T @ laplacian @ V).sum()): "
                      "only each channel with itself counts - the trace of that 3 x 3 matrix, or "
                      "(V * (laplacian @ V)).sum()."),
    "no_laplacian": ("the result is weight * sum(V ** 2): the Matting Laplacian is not used. The loss is the "
                     "quadratic form V_c^T (M V_c): multiply by the laplacian between the two V's."),
    "missing_weight": "the result is off by exactly the weight: multiply by the weight argument.",
    "weight_twice": "the result is the weight times too large: multiply by the weight once.",
    "column_major": ("the pixels are numbered column by column (e.g. img.transpose(2, 3).reshape(...), or a "
                     "transpose before the reshape): the Laplacian numbers them row by row, i = y * W + x - "
                     "img.reshape(3, H*W) does."),
}

_NOT_QUADRATIC = ("the result is 0 (up to rounding): that is what sum(M @ V_c) gives, since the Matting Laplacian's "
                  "rows sum to 0. The loss is the quadratic form V_c^T (M V_c): multiply M @ V_c by V_c again, "
                  "elementwise, then sum.")
_HALF_GRADIENT = ("the values are right but the gradient is half of what it should be: one of the two factors of "
                  "V_c^T M V_c is cut off from autograd (.detach(), .data or torch.no_grad()): use img itself on "
                  "both sides.")

#: The check's images: (H, W) with H != W, a photo-like content image and an output image (both seeded).
_CHECK_SIZE, _CHECK_WEIGHT, _CHECK_SEED = (6, 9), 2.5, 231


def check_photorealism_loss(photorealism_loss: Callable) -> CheckResult:
    """Check ``photorealism_loss(img, laplacian, weight) -> scalar tensor`` (notebook 06).

    Inputs: ``img``, an output image of pixels in [0, 1], shape (1, 3, H, W) with H != W (float64,
    then float32, requiring gradients); ``laplacian``, the :func:`matting_laplacian` (H*W, H*W) of
    another (content) image, of the same dtype - a :class:`MattingLaplacian`, which refuses to become
    dense; ``weight``, a Python float. The reference is ``weight * sum_c V_c^T M V_c`` with ``V_c``
    channel ``c`` of ``img`` flattened row by row (Luan et al., CVPR 2017, Sec. 3.1),
    computed here from the Laplacian's entries; its gradient is ``2 * weight * M V_c``.

    A wrong value is named when it is that of a typical mistake (:data:`PHOTOREALISM_MISTAKES`: one
    channel only, all pairs of channels, no Laplacian, the weight missing or applied twice, pixels
    numbered column by column), or 0 (``sum(M @ V)``: no quadratic form); ``.to_dense()`` is named by
    the error the Laplacian raises, a half gradient as a factor cut off by ``.detach()``.

    Args:
        photorealism_loss: the student's function.

    Returns:
        A :class:`~cs231n_style.checks.CheckResult` (truthy if it passed). The verdict is also printed.
    """
    name = "photorealism_loss"

    def body(ref, dtype):
        img, laplacian, content = _check_inputs(dtype)
        before = [img.detach().clone(), laplacian.values().clone()]
        out = _call_student(name, photorealism_loss, img, laplacian, _CHECK_WEIGHT)
        if isinstance(out, torch.Tensor) and tuple(out.shape) == (3, 3):
            _fail_if(f"{name}: FAIL - it returned shape (3, 3): V^T M V for every pair of channels. Only each channel "
                     "with itself counts: the sum of its diagonal (its trace), times the weight.")
        _require_tensor(name, out, (), dtype, inputs=[img])
        _require_unmodified(name, before, [img, laplacian.values()])
        error = _compare_photorealism(name, out, img, content, dtype)
        if dtype == torch.float64:
            _require_photorealism_gradient(name, out, img, laplacian)
        return error

    return _run_check(name, body)


def photo_pair(height: int, width: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A photo-like content image and an output image, both (1, 3, H, W) float64 pixels in [0, 1].

    The content image is a smooth colour ramp plus texture (no window is flat, so its Matting
    Laplacian is well conditioned); the output image is uniform noise. The check's inputs, and
    the autograder's hidden ones (drawn with other sizes).

    Args:
        height, width: the image size, each at least 3 (the Laplacian's window).
        generator: the random generator (seeded by the caller).

    Returns:
        ``(content, img)``.
    """
    ramp = torch.linspace(0, 1, height * width, dtype=torch.float64).reshape(1, 1, height, width)
    content = (0.6 * ramp * torch.tensor([0.9, 0.5, 0.2], dtype=torch.float64).reshape(1, 3, 1, 1)
               + 0.4 * torch.rand(1, 3, height, width, generator=generator, dtype=torch.float64))
    img = torch.rand(1, 3, height, width, generator=generator, dtype=torch.float64)
    return content, img


def check_inputs() -> tuple[torch.Tensor, torch.Tensor, float]:
    """The notebook check's inputs (also the autograder's public test): ``(content, img, weight)``,
    content and output images (1, 3, 6, 9) of float64 pixels in [0, 1] (:func:`photo_pair`, seeded) and
    the weight 2.5."""
    content, img = photo_pair(*_CHECK_SIZE, torch.Generator().manual_seed(_CHECK_SEED))
    return content, img, _CHECK_WEIGHT


def _check_inputs(dtype: torch.dtype):
    """The check's output image (1, 3, H, W) in [0, 1] requiring gradients, the Matting Laplacian of its
    content image in ``dtype``, and that content image."""
    content, img, _ = check_inputs()
    return img.to(dtype).requires_grad_(True), matting_laplacian(content, dtype=dtype), content


def _quadratic_forms(laplacian: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """(3, 3) float64: ``[c, d] = sum_ij M_ij V_c[i] V_d[j]``, from the Laplacian's stored entries (no
    matrix product), for ``channels`` (3, N) float64."""
    with torch._C.DisableTorchFunctionSubclass():
        plain = torch.Tensor._make_subclass(torch.Tensor, laplacian.detach()).to(torch.float64)
        rows = torch.repeat_interleave(torch.arange(plain.shape[0]), plain.crow_indices().diff())
        columns, values = plain.col_indices(), plain.values()
    return torch.einsum("k,ck,dk->cd", values, channels[:, rows], channels[:, columns])


def photorealism_values(img: torch.Tensor, laplacian: torch.Tensor, weight: float) -> tuple[float, dict[str, float]]:
    """The right value of ``photorealism_loss(img, laplacian, weight)`` and the values typical mistakes give.

    Computed in float64 from the Laplacian's stored entries (no matrix product, no solution code):
    ``weight * sum_c V_c^T M V_c`` (Luan et al., CVPR 2017, Sec. 3.1), ``V_c`` channel ``c`` of ``img``
    flattened row by row.

    Args:
        img: the output image, (1, 3, H, W), any float dtype (pixels in [0, 1]).
        laplacian: its sparse CSR (H*W, H*W) Matting Laplacian (:func:`matting_laplacian`, any float dtype).
        weight: the weight.

    Returns:
        ``(reference, variants)``: variants maps a mistake name (a key of :data:`PHOTOREALISM_MISTAKES`,
        ``one_channel`` with the channel's number appended) to the value it gives.
    """
    pixels = img.detach().to(torch.float64)[0]
    forms = _quadratic_forms(laplacian, pixels.reshape(3, -1))
    column_major = _quadratic_forms(laplacian, pixels.transpose(1, 2).reshape(3, -1))
    reference = weight * forms.trace()
    values = {f"one_channel_{c}": weight * forms[c, c] for c in range(3)}
    values.update(channel_pairs=weight * forms.sum(), no_laplacian=weight * (pixels ** 2).sum(),
                  missing_weight=forms.trace(), weight_twice=weight ** 2 * forms.trace(),
                  column_major=weight * column_major.trace())
    return float(reference), {key: float(value) for key, value in values.items()}


def diagnose_photorealism_value(name: str, value, reference: float, variants: dict[str, float],
                                dtype: torch.dtype) -> tuple[float, str | None]:
    """Compare a ``photorealism_loss`` result with the reference; on a mismatch, name the mistake.

    Args:
        name: the function's name, for the message.
        value: the student's result (a scalar tensor or array).
        reference, variants: from :func:`photorealism_values`.
        dtype: the inputs' dtype; sets the tolerance (:data:`cs231n_style.diagnosis.TOLERANCE`).

    Returns:
        ``(relative error, failure message or None)``: the message names the mistake whose value
        matches (:data:`PHOTOREALISM_MISTAKES`), or a result of 0 (no quadratic form), or says how far
        off the value is. Used by the notebook check and the autograder alike.
    """
    tolerance = TOLERANCE[dtype]
    error = relative_error(value, np.float64(reference))
    if error <= tolerance:
        return error, None
    value = float(np.asarray(value.detach().to(torch.float64) if isinstance(value, torch.Tensor) else value))
    if abs(value) <= 1e-6 * abs(reference):
        return error, f"{name}: FAIL - {_NOT_QUADRATIC}"
    for mistake, expected in variants.items():
        if relative_error(np.float64(value), np.float64(expected)) <= max(tolerance, 1e-6):
            return error, f"{name}: FAIL - {PHOTOREALISM_MISTAKES[mistake.rstrip('_012')]}"
    return error, (f"{name}: FAIL - the values differ from the reference (max relative error {error:.1e}, threshold "
                   f"{tolerance:.0e} in {str(dtype).removeprefix('torch.')}): the loss is weight * sum over the "
                   "channels c of V_c^T (M V_c), with V_c = img[0, c] flattened row by row.")


def diagnose_photorealism_gradient(name: str, requires_grad: bool, grads: list, expected: list) -> str | None:
    """The failure message for a ``photorealism_loss`` gradient, or ``None`` if it is right.

    Args:
        name: the function's name.
        requires_grad: whether the result required gradients.
        grads: the student's gradient with respect to ``img`` (one array or tensor, or ``None``), in a list.
        expected: the right one, ``2 * weight * M V_c`` per channel, (1, 3, H, W), in a list.

    Returns:
        Half the right gradient is named as a factor cut off from autograd (``.detach()``); other
        mismatches as :func:`cs231n_style.diagnosis.diagnose_gradient` words them.
    """
    if grads and grads[0] is not None and relative_error(grads[0], np.asarray(expected[0]) / 2) <= 1e-6:
        return f"{name}: FAIL - {_HALF_GRADIENT}"
    return diagnose_gradient(name, requires_grad, list(grads), list(expected))


def dense_verdict(name: str, error_text: str, where: str = "") -> str:
    """The verdict for a ``photorealism_loss`` that made the Laplacian dense (its
    :class:`DenseLaplacianError`, whose text is ``error_text``; ``where``: the line, if known)."""
    return f"{name}: FAIL - it made the Laplacian dense (.to_dense()). {error_text}{where}"


def _compare_photorealism(name: str, out: torch.Tensor, img: torch.Tensor, content: torch.Tensor,
                          dtype: torch.dtype) -> float:
    """The relative error of ``out``; a failed verdict naming the mistake when a variant matches."""
    reference, variants = photorealism_values(img, matting_laplacian(content, dtype=torch.float64), _CHECK_WEIGHT)
    error, message = diagnose_photorealism_value(name, out, reference, variants, dtype)
    _fail_if(message, error)
    return error


def _require_photorealism_gradient(name: str, out: torch.Tensor, img: torch.Tensor, laplacian) -> None:
    """The gradient must be ``2 * weight * M V_c`` per channel; half of it is named (a detached factor)."""
    grads = torch.autograd.grad(out, [img], allow_unused=True) if out.requires_grad else []
    channels = img.detach().reshape(3, -1)
    expected = (2 * _CHECK_WEIGHT * (laplacian @ channels.T)).T.reshape(img.shape).numpy()
    _fail_if(diagnose_photorealism_gradient(name, out.requires_grad, list(grads), [expected]))


def _call_student(name: str, fn: Callable, *args):
    """Call the student's function, turning an exception into a verdict (a dense Laplacian named)."""
    try:
        return fn(*args)
    except Exception as error:  # a student's bug can raise anything: report it, don't crash
        where = where_in_your_code(error, _is_students)
        if isinstance(error, DenseLaplacianError):
            raise _Verdict("fail", dense_verdict(name, str(error), where)) from None
        img, laplacian = args[0], args[1]
        shapes = f"img {tuple(img.shape)}, laplacian {tuple(laplacian.shape)} (sparse)"
        status, message = diagnose_exception(name, type(error).__name__, str(error), shapes, where)
        if status == "error":
            message += ("\n  Hint: the Laplacian is (H*W, H*W); each channel is a column of H*W values: "
                        "V = img.reshape(3, H*W).T has shape (H*W, 3), and laplacian @ V too.")
        raise _Verdict(status, message) from None


def _is_students(frame: traceback.FrameSummary) -> bool:
    """Whether a traceback frame is the student's code: neither torch's nor this package's."""
    path = Path(frame.filename)
    return "torch" not in path.parts and path.parent != Path(__file__).parent
