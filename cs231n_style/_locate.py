"""Where a wrong result goes wrong: the student's function probed on inputs that tell each image,
region, style layer and term apart (:func:`locate_mistake`). Part of :mod:`cs231n_style.diagnosis`
(read its docstring first), which calls it when a result matches no stored mistake.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._compare import _float64, relative_error

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
        once, doubled = probe(args), probe([2 * _float64(args[0]), *list(args[1:])])
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
    raw: dict[tuple[int, int | str, int], np.ndarray | None] = {}
    for i in range(n):
        for a in range(n):
            for b in range(r):
                value = probe([features[i:i + 1], masks[a:a + 1, b:b + 1], False])
                if value is None or value.size != features.shape[1] ** 2:
                    return None
                raw[i, a, b] = value.reshape(features.shape[1], -1)
        for b in range(r):
            summed = probe([features[i:i + 1], masks[:, b:b + 1].sum(axis=0, keepdims=True), False])
            single = raw[i, i, b]
            raw[i, "all", b] = None if summed is None or single is None or summed.size != single.size else (
                summed.reshape(single.shape))
    return raw


def _guided_pairing_message(args: list, out: np.ndarray, expected: np.ndarray, probe: Probe,
                            tolerance: float) -> str | None:
    raw = _guided_candidates(args, probe)
    n, r = out.shape[:2]
    if raw is None or any(_fit(expected[i, j], raw[i, i, j])[1] > tolerance for i in range(n) for j in range(r)):
        return None
    found: dict[tuple[int, int], tuple[int, int] | str] = {}
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
    known = [value for value in values if value is not None]
    if len(known) < len(values) or abs(v - h) <= 1e-9 * (v + h):
        return None
    zero, double, flipped_zero, flipped_base = known
    if abs(double - 2 * base + zero) > 1e-9 * max(abs(double), abs(base)):
        return ("your loss is not proportional to tv_weight (doubling tv_weight does not double the weighted part): "
                f"multiply the sum of squared differences by tv_weight once. {_TV_RIGHT}.")
    system = np.array([[v, h], [h, v]])
    b, d = np.linalg.solve(system, [(base - zero) / weight, (flipped_base - flipped_zero) / weight])
    a, c = np.linalg.solve(system, [zero, flipped_zero])
    coefficients = [_nice(x) for x in (a, b, c, d)]
    nice = [x for x in coefficients if x is not None]
    if len(nice) < len(coefficients):
        return (f"your loss counts the vertical differences {b:.3g} times and the horizontal ones {d:.3g} times "
                "(found by probing it with the image and its transpose): some pairs of neighbours are missing or "
                f"counted twice - check where each slice starts and ends. {_TV_RIGHT}.")
    a, b, c, d = nice
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
    changing one leaves the loss unchanged; ``"everything"`` when changing all the inputs at once does."""
    base = _scalar(probe, args)
    unused: dict[str, list[int]] = {"weights": [], "masks": [], "regions": []}
    if base is None:
        return unused

    def ignores(changed: list) -> bool:
        value = _scalar(probe, changed)
        return value is not None and abs(value - base) <= 1e-12 * abs(base)

    feats, layers, targets, weights = args[:4]
    everything = [[_float64(f) * 1.5 for f in feats], layers, [_float64(t) * 1.5 for t in targets],
                  [2 * float(w) for w in weights], *args[4:]]
    if ignores(everything):  # a constant: each weight would be "unused" too, which says less
        unused["everything"] = list(range(len(layers)))
        return unused
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
    for i, (grad, want) in enumerate(zip(grads, expected_grads, strict=True)):
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

    if unused.get("everything"):
        return ("your loss does not depend on its inputs: scaling feats and style_targets and doubling every "
                "style weight leaves it unchanged (a constant, or a value computed from something else). Compute "
                "it from feats[style_layers[i]], style_targets[i] and style_weights[i], layer by layer.")
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
