"""Generate ``cs231n_style/data/reference_values.npz``: the check functions' inputs and answers.

The expected outputs and gradients are computed in float64 by the *solution notebooks'* functions
(loaded with ``cs231n_style.load_functions``, the same mechanism students' code goes through).
The values that typical mistakes produce ("variants", named as in ``cs231n_style.diagnosis.MISTAKES``)
are computed with NumPy from the inputs by ``autograder.variants.mistake_variants`` (which the
grader uses too, on its hidden inputs), so that a check can name a mistake without the package
containing a solution.

Inputs are seeded random numbers: non-negative, sparse "feature maps" (like ReLU outputs) and a
normalized-range image; batch size 2 and non-square shapes for the Gram matrix.

Notebook 05's functions (``guided_gram_matrix``, ``guided_style_loss``: Gatys et al., CVPR 2017,
Sec. 4) get their expected values and gradients from an independent float64 NumPy computation here
(:func:`build_guided_reference`; the gradients written out by hand), not from a solution, and from
their own random generator, so the four functions' stored values stay what they were. Their masks
are soft, in (0, 1], so that normalizing by C*sum(m^2), by C*sum(m) and by C*H*W give different
values; the batch (2) differs from the number of regions (3), H from W; the style layers neither
start at 0 nor are contiguous, and every layer has its own size.

Usage::

    python tools/make_reference_data.py            # writes the file
    python tools/make_reference_data.py --check    # exits 1 if the stored file differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.variants import mistake_variants  # noqa: E402
from cs231n_style.diagnosis import REFERENCE_FILE  # noqa: E402
from cs231n_style.notebook import load_course_functions  # noqa: E402

SEED = 231


def solution_functions(solutions_dir: Path = ROOT / "solutions"):
    """The four reference functions, loaded from the solution notebooks."""
    found = load_course_functions(solutions_dir)
    return found.content_loss, found.gram_matrix, found.style_loss, found.tv_loss


def _features(rng: np.random.Generator, shape) -> np.ndarray:
    return np.maximum(rng.normal(0.0, 1.0, size=shape) - 0.3, 0.0) * rng.uniform(0.5, 3.0)


def _t(array, requires_grad=False) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=requires_grad)


def _variants(name: str, *args) -> dict[str, np.ndarray]:
    """``mistake_variants(name, *args)`` keyed as stored: ``"<name>.variant.<mistake>"``."""
    return {f"{name}.variant.{mistake}": value for mistake, value in mistake_variants(name, *args).items()}


def build_reference(content_loss, gram_matrix, style_loss, tv_loss) -> dict[str, np.ndarray]:
    """Return every array of the reference file, by key (see ``cs231n_style.checks``)."""
    rng = np.random.default_rng(SEED)
    ref: dict[str, np.ndarray] = {}

    # content loss: (1, C, H, W) feature maps
    w = 6e-2
    current, original = _features(rng, (1, 24, 7, 11)), _features(rng, (1, 24, 7, 11))
    x = _t(current, requires_grad=True)
    out = content_loss(w, x, _t(original))
    out.backward()
    ref.update({
        "content_loss.content_weight": np.array(w),
        "content_loss.content_current": current,
        "content_loss.content_original": original,
        "content_loss.expected": out.detach().numpy(),
        "content_loss.grad": x.grad.numpy(),
    })
    ref.update(_variants("content_loss", w, current, original))

    # Gram matrix: batch of 2, non-square maps
    features = _features(rng, (2, 12, 5, 8))
    n, c, _h, _wd = features.shape
    f = _t(features, requires_grad=True)
    gram = gram_matrix(f)
    upstream = rng.normal(size=(n, c, c))
    (grad,) = torch.autograd.grad(gram, f, _t(upstream))
    ref.update({
        "gram_matrix.features": features,
        "gram_matrix.expected": gram.detach().numpy(),
        "gram_matrix.expected_unnormalized": gram_matrix(_t(features), False).numpy(),
        "gram_matrix.grad_upstream": upstream,
        "gram_matrix.grad": grad.numpy(),
    })
    ref.update(_variants("gram_matrix", features))

    # style loss: 5 layers of feature maps, 3 of them style layers
    shapes = [(1, 8, 9, 12), (1, 16, 9, 12), (1, 16, 5, 6), (1, 24, 5, 6), (1, 24, 3, 4)]
    layers, weights = [1, 3, 4], [300.0, 15.0, 2.0]
    feats_np = [_features(rng, s) for s in shapes]
    targets_np = [gram_matrix(_t(_features(rng, shapes[i]))).numpy() for i in layers]
    feats = [_t(a, requires_grad=i in layers) for i, a in enumerate(feats_np)]
    out = style_loss(feats, layers, [_t(t) for t in targets_np], weights)
    grads = torch.autograd.grad(out, [feats[i] for i in layers])
    ref.update({
        "style_loss.num_feats": np.array(len(shapes)),
        "style_loss.style_layers": np.array(layers),
        "style_loss.style_weights": np.array(weights),
        "style_loss.expected": out.detach().numpy(),
    })
    ref.update(_variants("style_loss", feats_np, layers, targets_np, weights))
    ref.update({f"style_loss.feats.{i}": a for i, a in enumerate(feats_np)})
    ref.update({f"style_loss.style_targets.{j}": t for j, t in enumerate(targets_np)})
    ref.update({f"style_loss.grad.{i}": g.numpy() for i, g in zip(layers, grads, strict=True)})

    # TV loss: a normalized-range image (1, 3, H, W), H != W
    tw = 2e-2
    img = rng.normal(0.0, 1.0, size=(1, 3, 9, 14))
    x = _t(img, requires_grad=True)
    out = tv_loss(x, tw)
    out.backward()
    ref.update({
        "tv_loss.img": img,
        "tv_loss.tv_weight": np.array(tw),
        "tv_loss.expected": out.detach().numpy(),
        "tv_loss.grad": x.grad.numpy(),
    })
    ref.update(_variants("tv_loss", img, tw))
    return {key: np.asarray(value, dtype=np.float64) for key, value in ref.items()}


GUIDED_SEED = 2017


def _guided_gram(features: np.ndarray, masks: np.ndarray, normalize: bool = True) -> tuple[np.ndarray, ...]:
    """NumPy ``guided_gram_matrix``: ``(G, weighted, scale)`` with G (N, R, C, C), the masked features
    (N, R, C, H*W) and the factor applied, (N, R, 1, 1) (1 when not normalized)."""
    n, c, h, w = features.shape
    r = masks.shape[1]
    weighted = features.reshape(n, 1, c, h * w) * masks.reshape(n, r, 1, h * w)
    scale = 1.0 / (c * (masks**2).sum(axis=(2, 3))) if normalize else np.ones((n, r))
    scale = scale.reshape(n, r, 1, 1)
    return scale * (weighted @ weighted.transpose(0, 1, 3, 2)), weighted, scale


def _guided_gram_grad(features: np.ndarray, masks: np.ndarray, upstream: np.ndarray, normalize: bool = True
                      ) -> np.ndarray:
    """d(sum(upstream * G)) / d(features), by hand: dW = scale (U + U^T) W, dF = sum_r dW * m_r."""
    n, _c, h, w = features.shape
    _, weighted, scale = _guided_gram(features, masks, normalize)
    d_weighted = scale * (upstream + upstream.transpose(0, 1, 3, 2)) @ weighted
    return (d_weighted * masks.reshape(n, -1, 1, h * w)).sum(axis=1).reshape(features.shape)


def _soft_masks(rng: np.random.Generator, shape) -> np.ndarray:
    """Soft masks with values in (0, 1] (sum m, sum m^2 and H*W all differ)."""
    return rng.uniform(0.05, 1.0, size=shape)


def build_guided_reference() -> dict[str, np.ndarray]:
    """The arrays of notebook 05's two checks, computed with NumPy only (see the module docstring)."""
    rng = np.random.default_rng(GUIDED_SEED)
    ref: dict[str, np.ndarray] = {}

    # guided Gram matrix: N=2 images, R=3 regions, C=6, H=5 != W=7
    features, masks = _features(rng, (2, 6, 5, 7)), _soft_masks(rng, (2, 3, 5, 7))
    expected, _, _ = _guided_gram(features, masks)
    upstream = rng.normal(size=expected.shape)
    ref.update({
        "guided_gram_matrix.features": features,
        "guided_gram_matrix.masks": masks,
        "guided_gram_matrix.expected": expected,
        "guided_gram_matrix.expected_unnormalized": _guided_gram(features, masks, False)[0],
        "guided_gram_matrix.grad_upstream": upstream,
        "guided_gram_matrix.grad": _guided_gram_grad(features, masks, upstream),
    })
    ref.update(_variants("guided_gram_matrix", features, masks, True))
    ref.update({f"guided_gram_matrix.variant_unnormalized.{mistake}": value
                for mistake, value in mistake_variants("guided_gram_matrix", features, masks, False).items()})

    # guided style loss: 5 layers of different sizes, style layers 1, 3, 4; R=2 regions
    shapes = [(1, 8, 11, 14), (1, 12, 9, 12), (1, 12, 7, 9), (1, 16, 5, 6), (1, 16, 3, 4)]
    layers, weights, regions = [1, 3, 4], [200.0, 10.0, 1.5], 2
    feats = [_features(rng, s) for s in shapes]
    masks_per_layer = [_soft_masks(rng, (1, regions, *shapes[i][2:])) for i in layers]
    targets = []
    for i in layers:  # region r's target: the plain normalized Gram matrix of style image r's features
        styles = [_features(rng, shapes[i]).reshape(shapes[i][1], -1) for _ in range(regions)]
        targets.append(np.stack([s @ s.T / s.size for s in styles])[None])
    loss, grads = 0.0, {}
    for layer, weight, target, mask in zip(layers, weights, targets, masks_per_layer, strict=True):
        gram, _, _ = _guided_gram(feats[layer], mask)
        loss += weight * ((gram - target) ** 2).sum()
        grads[layer] = _guided_gram_grad(feats[layer], mask, 2 * weight * (gram - target))
    ref.update({
        "guided_style_loss.num_feats": np.array(len(shapes)),
        "guided_style_loss.style_layers": np.array(layers),
        "guided_style_loss.style_weights": np.array(weights),
        "guided_style_loss.expected": np.array(loss),
    })
    ref.update(_variants("guided_style_loss", feats, layers, targets, weights, masks_per_layer))
    ref.update({f"guided_style_loss.feats.{i}": a for i, a in enumerate(feats)})
    ref.update({f"guided_style_loss.style_targets.{j}": t for j, t in enumerate(targets)})
    ref.update({f"guided_style_loss.content_masks.{j}": m for j, m in enumerate(masks_per_layer)})
    ref.update({f"guided_style_loss.grad.{i}": g for i, g in grads.items()})
    return {key: np.asarray(value, dtype=np.float64) for key, value in ref.items()}


def differences(stored: dict[str, np.ndarray], fresh: dict[str, np.ndarray]) -> list[str]:
    """Keys that are missing, extra or different (beyond 1e-12 relative) between two references."""
    problems = sorted(set(stored) ^ set(fresh))
    for key in sorted(set(stored) & set(fresh)):
        a, b = stored[key], fresh[key]
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-12, atol=0.0):
            problems.append(key)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the stored file instead of writing")
    parser.add_argument("--output", type=Path, default=REFERENCE_FILE, help="where to write")
    args = parser.parse_args()
    fresh = {**build_reference(*solution_functions()), **build_guided_reference()}
    if args.check:
        with np.load(args.output) as data:
            stored = {key: data[key] for key in data.files}
        problems = differences(stored, fresh)
        print("reference values are up to date" if not problems else f"reference values drifted: {problems}")
        return 1 if problems else 0
    np.savez_compressed(args.output, **fresh)
    print(f"wrote {args.output} ({len(fresh)} arrays)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
