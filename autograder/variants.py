"""The values typical mistakes produce, computed with NumPy: "variants" for the diagnosis.

``mistake_variants("tv_loss", img, tv_weight)`` returns, e.g., what ``tv_loss`` gives when the
weight is forgotten or only vertical neighbours count; ``cs231n_style.diagnosis.diagnose_values``
names the mistake whose value a wrong result matches (messages in ``cs231n_style.diagnosis.MISTAKES``).

One implementation for both users: ``tools/make_reference_data.py`` stores the variants of the
public inputs in ``cs231n_style/data/reference_values.npz`` (the notebook checks read them there),
and the grader computes them for its hidden inputs. These formulas are close to the solutions, so
they live here, in the instructor-only package, never in the student release.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["mistake_variants"]


def _content_loss_variants(content_weight: float, content_current: np.ndarray, content_original: np.ndarray
                           ) -> dict[str, np.ndarray]:
    squared = (content_current - content_original) ** 2
    w = content_weight
    return {
        "missing_weight": np.array(squared.sum()),
        "mean_not_sum": np.array(w * squared.mean()),
        "mean_no_weight": np.array(squared.mean()),
        "not_squared": np.array(w * np.sqrt(squared.sum())),
        "half": np.array(w * squared.sum() / 2),
        "abs_not_squared": np.array(w * np.abs(content_current - content_original).sum()),
    }


def _gram_matrix_variants(features: np.ndarray) -> dict[str, np.ndarray]:
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    raw = flat @ flat.transpose(0, 2, 1)
    return {
        "not_normalized": raw,
        "divided_by_hw_only": raw / (h * w),
        "divided_by_c_only": raw / c,
        "divided_by_nchw": raw / (n * c * h * w),
        "divided_by_2nchw": raw / (2 * n * c * h * w),
        "normalized_anyway": raw / (c * h * w),
        "reshaped_hw_by_c": _mixed_up_gram(features) / (c * h * w),
        "batch_summed": np.broadcast_to(raw.sum(axis=0), raw.shape) / (c * h * w),
        "batch_mixed": np.einsum("nci,mdi->ncd", flat, flat) / (c * h * w),
    }


def _mixed_up_gram(features: np.ndarray) -> np.ndarray:
    """``F.T @ F`` with ``F = features.reshape(N, H*W, C)``: shape (N, C, C), but the reshape
    reads the (N, C, H, W) memory as if channels came last, mixing channels and positions."""
    n, c, h, w = features.shape
    mixed = features.reshape(n, h * w, c)
    return mixed.transpose(0, 2, 1) @ mixed


def _style_loss_variants(feats: list[np.ndarray], style_layers: list[int], style_targets: list[np.ndarray],
                         style_weights: list[float]) -> dict[str, np.ndarray]:
    per_layer, unnormalized = [], []
    for i, target in zip(style_layers, style_targets, strict=True):
        _, ci, hi, wi = feats[i].shape
        flat = feats[i].reshape(1, ci, hi * wi)
        gram = flat @ flat.transpose(0, 2, 1)
        per_layer.append((gram / (ci * hi * wi) - target) ** 2)
        unnormalized.append((gram - target) ** 2)
    sums = np.array([p.sum() for p in per_layer])
    weights = style_weights
    return {
        "unnormalized_gram": np.array(sum(wt * u.sum() for wt, u in zip(weights, unnormalized, strict=True))),
        "unweighted": np.array(sums.sum()),
        "last_layer_only": np.array(weights[-1] * sums[-1]),
        "first_layer_only": np.array(weights[0] * sums[0]),
        "layer_norm_not_squared": np.array((np.array(weights) * np.sqrt(sums)).sum()),
        "mean_not_sum": np.array(sum(wt * p.mean() for wt, p in zip(weights, per_layer, strict=True))),
    }


def _tv_loss_variants(img: np.ndarray, tv_weight: float) -> dict[str, np.ndarray]:
    dc, dv, dh = np.diff(img, axis=1), np.diff(img, axis=2), np.diff(img, axis=3)
    tw = tv_weight
    return {
        "missing_weight": np.array((dv**2).sum() + (dh**2).sum()),
        "mean_not_sum": np.array(tw * ((dv**2).mean() + (dh**2).mean())),
        "vertical_only": np.array(tw * (dv**2).sum()),
        "horizontal_only": np.array(tw * (dh**2).sum()),
        "abs_not_squared": np.array(tw * (np.abs(dv).sum() + np.abs(dh).sum())),
        "half": np.array(tw * ((dv**2).sum() + (dh**2).sum()) / 2),
        # differences along the channel axis (1): as well, or in place of rows (img indexed as (C, H, W))
        "channels_too": np.array(tw * ((dc**2).sum() + (dv**2).sum() + (dh**2).sum())),
        "channels_and_rows": np.array(tw * ((dc**2).sum() + (dv**2).sum())),
        "channels_and_columns": np.array(tw * ((dc**2).sum() + (dh**2).sum())),
    }


def _guided_parts(features: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, ...]:
    """The pieces of a guided Gram matrix (Gatys et al., CVPR 2017, Sec. 4), in NumPy.

    Returns ``(twice, once, plain, m1, m2, chw)``: the unnormalized (N, R, C, C) Gram matrices with the
    mask on both factors (weights m^2, the right one) and on one factor (weights m), the plain
    (N, C, C) Gram matrix, the masks' sums of m and of m^2, (N, R), and C*H*W.
    """
    n, c, h, w = features.shape
    r = masks.shape[1]
    flat = features.reshape(n, 1, c, h * w)
    mask = masks.reshape(n, r, 1, h * w)
    weighted = flat * mask
    twice = weighted @ weighted.transpose(0, 1, 3, 2)
    once = weighted @ np.broadcast_to(flat, weighted.shape).transpose(0, 1, 3, 2)
    plain = flat[:, 0] @ flat[:, 0].transpose(0, 2, 1)
    return twice, once, plain, masks.sum(axis=(2, 3)), (masks**2).sum(axis=(2, 3)), c * h * w


def _guided_gram_matrix_variants(features: np.ndarray, masks: np.ndarray, normalize: bool = True
                                 ) -> dict[str, np.ndarray]:
    """``guided_gram_matrix(features, masks, normalize)``'s typical mistakes, (N, R, C, C) each."""
    twice, once, plain, m1, m2, chw = _guided_parts(features, masks)
    n, r, c, _ = twice.shape
    by = {"c_m2": (c * m2)[..., None, None], "c_m1": (c * m1)[..., None, None], "m2": m2[..., None, None]}
    if not normalize:
        return {
            "guided_normalized_anyway": twice / by["c_m2"],
            "guided_normalized_anyway_chw": twice / chw,
            "guided_mask_once_raw": once,
        }
    out = {
        "guided_not_normalized": twice,
        "guided_divided_by_chw": twice / chw,
        "guided_divided_by_mask_only": twice / by["m2"],
        "guided_divided_by_mask_sum": twice / by["c_m1"],
        "guided_mask_once": once / by["c_m2"],
        "guided_mask_once_sum_m": once / by["c_m1"],
        "guided_mask_once_chw": once / chw,
        "guided_plain_gram": np.broadcast_to(plain[:, None] / chw, twice.shape),
    }
    if n == r and n > 1:  # only then does swapping the batch and region axes keep the shape
        out["guided_axes_swapped"] = (twice / by["c_m2"]).transpose(1, 0, 2, 3)
    return out


def _guided_style_loss_variants(feats: list[np.ndarray], style_layers: list[int], style_targets: list[np.ndarray],
                                style_weights: list[float], content_masks: list[np.ndarray]
                                ) -> dict[str, np.ndarray]:
    """``guided_style_loss``'s typical mistakes, each a 0-d array (the loss it would give)."""
    terms: dict[str, list] = {key: [] for key in ("right", "raw", "chw", "once", "plain")}
    for i, layer in enumerate(style_layers):
        twice, once, plain, _, m2, chw = _guided_parts(feats[layer], content_masks[i])
        c = twice.shape[-1]
        target = style_targets[i]
        terms["right"].append(twice / (c * m2)[..., None, None] - target)
        terms["raw"].append(twice - target)
        terms["chw"].append(twice / chw - target)
        terms["once"].append(once / (c * m2)[..., None, None] - target)
        terms["plain"].append(plain[:, None] / chw - target)  # (1, C, C) broadcast against (1, R, C, C)
    weights = np.array(style_weights, dtype=np.float64)

    def total(key: str) -> np.ndarray:
        return np.array(sum(wt * (d**2).sum() for wt, d in zip(weights, terms[key], strict=True)))

    sums = np.array([(d**2).sum() for d in terms["right"]])
    out = {
        "guided_style_unweighted": np.array(sums.sum()),
        "guided_style_not_squared": np.array((weights * np.sqrt(sums)).sum()),
        "guided_style_abs": np.array(sum(wt * np.abs(d).sum() for wt, d in zip(weights, terms["right"], strict=True))),
        "guided_style_mean": np.array(sum(wt * (d**2).mean() for wt, d in zip(weights, terms["right"], strict=True))),
        "guided_style_last_layer_only": np.array(weights[-1] * sums[-1]),
        "guided_style_unnormalized_gram": total("raw"),
        "guided_style_gram_chw": total("chw"),
        "guided_style_mask_once": total("once"),
        "guided_style_plain_gram": total("plain"),
    }
    return out


def _photorealism_loss_variants(img: np.ndarray, laplacian: dict, weight: float) -> dict[str, np.ndarray]:
    """``photorealism_loss``'s typical mistakes, each a 0-d array: ``cs231n_style.photorealism.photorealism_values``
    (the notebook check's own, from the Laplacian's entries in float64) on the sparse leaf ``laplacian``."""
    import torch

    from cs231n_style._matting_tensor import laplacian_from_csr
    from cs231n_style.photorealism import photorealism_values

    from .protocol import build_tensors

    matrix = build_tensors(laplacian, torch.float64, csr=laplacian_from_csr)
    _, values = photorealism_values(torch.from_numpy(np.asarray(img, dtype=np.float64)), matrix, weight)
    return {mistake: np.array(value) for mistake, value in values.items()}


_VARIANTS: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "content_loss": _content_loss_variants,
    "gram_matrix": _gram_matrix_variants,
    "style_loss": _style_loss_variants,
    "tv_loss": _tv_loss_variants,
    "guided_gram_matrix": _guided_gram_matrix_variants,
    "guided_style_loss": _guided_style_loss_variants,
    "photorealism_loss": _photorealism_loss_variants,
}


def mistake_variants(name: str, *args) -> dict[str, np.ndarray]:
    """The values typical mistakes produce on the given inputs, computed with NumPy (no solution code).

    Args:
        name: one of ``"content_loss"``, ``"gram_matrix"``, ``"style_loss"``, ``"tv_loss"``,
            ``"guided_gram_matrix"``, ``"guided_style_loss"``.
        *args: the function's arguments, with float64 NumPy arrays for tensors (lists of arrays
            for ``style_loss``'s ``feats`` and ``style_targets``) - e.g.
            ``mistake_variants("tv_loss", img, tv_weight)`` with ``img`` of shape (1, 3, H, W).
            ``gram_matrix`` takes only ``features`` (N, C, H, W); ``guided_gram_matrix`` takes
            ``features`` (N, C, H, W), ``masks`` (N, R, H, W) and ``normalize`` (the mistakes
            differ with it); ``guided_style_loss`` takes its five arguments; ``photorealism_loss`` takes
            ``img`` (1, 3, H, W), its Laplacian as a sparse leaf (``autograder.cases.laplacian_leaf``)
            and ``weight`` (its mistakes' names: ``cs231n_style.photorealism.PHOTOREALISM_MISTAKES``).

    Returns:
        Mistake name (a key of :data:`MISTAKES`) -> the wrong result, a float64 array of the
        function's output shape (``()`` for losses, (N, C, C) for Gram matrices, (N, R, C, C) for
        guided ones).

    Raises:
        KeyError: for an unknown function name.
    """
    return _VARIANTS[name](*args)
