"""The controls of Gatys et al. (CVPR 2017) in ``style_transfer``: blending several style images,
spatial guidance with masks (Sec. 4), colour preservation (Sec. 5) and coarse to fine (Sec. 6).

Reference values come from float64 NumPy written here (Gram matrices, YIQ, the colour transfer),
not from the package's own functions. The loss functions are CS231n's (tools/plain_loop.py) and
the guided pair of notebook 05 as the shared contract (notes/spec05.md) writes it, below. Images
are 32-48 px and runs a few steps, so the file takes seconds on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import cs231n_style as cs
from tools.plain_loop import CS231N_LOSSES, GUIDED_LOSSES

SIZE = 32
MEAN, STD = np.array(cs.IMAGENET_MEAN).reshape(3, 1, 1), np.array(cs.IMAGENET_STD).reshape(3, 1, 1)
# The FCC's NTSC coefficients, typed in again (not imported from cs231n_style.color).
YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


LOSSES = GUIDED_LOSSES  # CS231n's four and the reference guided pair (tools/plain_loop.py)


@pytest.fixture(scope="module")
def model():
    return cs.load_squeezenet()


@pytest.fixture(scope="module")
def settings():
    return cs.TransferSettings(image_size=SIZE, style_size=SIZE, num_steps=3)


def run(content, style, settings, **options) -> cs.TransferResult:
    return cs.style_transfer(content, style, options.pop("losses", LOSSES), options.pop("model"), settings,
                             progress=False, **options)


def spying(losses: cs.LossFunctions, seen: dict) -> cs.LossFunctions:
    """``losses`` whose style losses keep, at their first call, what they were given in ``seen``."""
    def style_loss(feats, layers, targets, weights):
        seen.setdefault("targets", [t.detach().clone() for t in targets])
        return losses.style_loss(feats, layers, targets, weights)

    def guided(feats, layers, targets, weights, masks):
        seen.setdefault("targets", [t.detach().clone() for t in targets])
        seen.setdefault("masks", [m.detach().clone() for m in masks])
        seen.setdefault("feature shapes", [tuple(feats[layer].shape) for layer in layers])
        return losses.guided_style_loss(feats, layers, targets, weights, masks)

    return dataclasses.replace(losses, style_loss=style_loss, guided_style_loss=guided)


def numpy_pixels(image, size: int) -> np.ndarray:
    """RGB pixels (3, H, W) in float64 of an image as the package resizes it."""
    return cs.preprocess(image, size)[0].double().numpy() * STD + MEAN


def numpy_grams(pixels: np.ndarray, model, layers) -> list[np.ndarray]:
    """Float64 Gram matrices (C, C), normalized by C*H*W, of an image given as pixels (3, H, W)."""
    normalized = torch.tensor((pixels - MEAN) / STD, dtype=torch.float32)[None]
    feats = cs.extract_features(normalized, model)
    grams = []
    for layer in layers:
        f = feats[layer][0].double().numpy()
        c, h, w = f.shape
        flat = f.reshape(c, h * w)
        grams.append(flat @ flat.T / (c * h * w))
    return grams


# --- blending ---------------------------------------------------------------------------------

def test_blend_weights_one_and_zero_run_the_first_style_alone(model, settings):
    blended = run("cat", ["starry_night", "the_scream"], settings.replace(style_blend_weights=(1.0, 0.0)), model=model)
    single = run("cat", "starry_night", settings, model=model)
    assert torch.equal(blended.image, single.image) and blended.history == single.history


@pytest.mark.parametrize("weights, normalized", [((), (0.5, 0.5)), ((3.0, 1.0), (0.75, 0.25))])
def test_blended_targets_are_the_weighted_mean_of_the_gram_matrices(model, settings, weights, normalized):
    seen = {}
    styles = ["starry_night", "the_scream"]
    run("cat", styles, settings.replace(style_blend_weights=weights, num_steps=1), model=model,
        losses=spying(LOSSES, seen))
    grams = [numpy_grams(numpy_pixels(style, SIZE), model, settings.style_layers) for style in styles]
    for i, target in enumerate(seen["targets"]):
        expected = normalized[0] * grams[0][i] + normalized[1] * grams[1][i]
        assert target.shape == (1, *expected.shape)
        np.testing.assert_allclose(target[0].double().numpy(), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


# --- spatial guidance -------------------------------------------------------------------------

def test_one_all_ones_region_gives_the_unguided_style_loss(model, settings):
    guided = run("coffee", ["starry_night"], settings, model=model, content_masks=torch.ones(1, 1, 10, 13))
    plain = run("coffee", "starry_night", settings, model=model)
    assert guided.history["style"][0] == pytest.approx(plain.history["style"][0], rel=1e-5)
    assert guided.history["total"][0] == pytest.approx(plain.history["total"][0], rel=1e-5)


def test_masks_reach_the_loss_resized_to_each_layer_with_one_target_per_region(model, settings):
    seen = {}
    masks = cs.split_masks((64, 96), "vertical", at=0.5)[0]  # (R, H, W) at twice the content's size
    run("coffee", ["the_scream", "starry_night"], settings.replace(num_steps=1), model=model,
        losses=spying(LOSSES, seen), content_masks=masks)
    assert [tuple(m.shape[2:]) for m in seen["masks"]] == [shape[2:] for shape in seen["feature shapes"]]
    for resized in seen["masks"]:
        assert resized.shape[:2] == (1, 2)
        np.testing.assert_allclose((resized[0, 0] + resized[0, 1]).numpy(), 1.0, atol=1e-6)  # still a partition
        assert resized[0, 0, :, 0].eq(1).all() and resized[0, 0, :, -1].eq(0).all()       # region 0 on the left
    grams = [numpy_grams(numpy_pixels(style, SIZE), model, settings.style_layers)
             for style in ("the_scream", "starry_night")]
    for i, target in enumerate(seen["targets"]):
        assert target.shape == (1, 2, *grams[0][i].shape)
        for region in range(2):
            expected = grams[region][i]
            np.testing.assert_allclose(target[0, region].double().numpy(), expected, rtol=1e-4,
                                       atol=1e-4 * np.abs(expected).max())


def test_one_style_image_serves_every_region(model, settings):
    seen = {}
    run("coffee", "starry_night", settings.replace(num_steps=1), model=model, losses=spying(LOSSES, seen),
        content_masks=cs.split_masks((32, 48), "horizontal"))
    for target in seen["targets"]:
        assert target.shape[:2] == (1, 2) and torch.equal(target[0, 0], target[0, 1])


# --- colour preservation ----------------------------------------------------------------------

def test_luminance_only_transfer_keeps_the_contents_chrominance(model, settings):
    result = run("coffee", "starry_night", settings.replace(preserve_colors="luminance"), model=model)
    content = numpy_pixels("coffee", SIZE)
    pixels = result.image[0].double().numpy() * STD + MEAN
    yiq_result, yiq_content = (np.einsum("ij,jhw->ihw", YIQ, p) for p in (pixels, content))
    inside = ((pixels > 1e-3) & (pixels < 1 - 1e-3)).all(axis=0)  # combine_luminance clamps the rest
    assert inside.mean() > 0.5
    np.testing.assert_allclose(yiq_result[1:, inside], yiq_content[1:, inside], atol=1e-4)
    assert np.abs(yiq_result[0] - yiq_content[0]).mean() > 0.01  # the luminance is the transfer's


def test_histogram_matching_recolours_the_style_to_the_contents_colours(model, settings):
    seen = {}
    run("coffee", "starry_night", settings.replace(preserve_colors="histogram", num_steps=1), model=model,
        losses=spying(LOSSES, seen))
    content, style = (numpy_pixels(image, SIZE).reshape(3, -1) for image in ("coffee", "starry_night"))

    def power(matrix, exponent):
        values, vectors = np.linalg.eigh(matrix)
        return vectors @ np.diag(values ** exponent) @ vectors.T

    mu_c, mu_s = content.mean(1, keepdims=True), style.mean(1, keepdims=True)
    recoloured = power(np.cov(content), 0.5) @ power(np.cov(style), -0.5) @ (style - mu_s) + mu_c
    np.testing.assert_allclose(recoloured.mean(1, keepdims=True), mu_c, atol=1e-12)
    np.testing.assert_allclose(np.cov(recoloured), np.cov(content), atol=1e-12)
    shape = numpy_pixels("starry_night", SIZE).shape
    expected = numpy_grams(np.clip(recoloured, 0, 1).reshape(shape), model, settings.style_layers)
    for target, gram in zip(seen["targets"], expected, strict=True):
        np.testing.assert_allclose(target[0].double().numpy(), gram, rtol=1e-3, atol=1e-3 * np.abs(gram).max())


# --- coarse to fine ---------------------------------------------------------------------------

def test_coarse_to_fine_runs_two_stages_and_returns_the_full_size(model):
    settings = cs.TransferSettings(image_size=48, style_size=48, num_steps=3, coarse_size=32)
    sizes = []
    result = run("cat", "starry_night", settings, model=model, preview_every=1,
                 callback=lambda step, image, losses: sizes.append(tuple(image.shape[2:])))
    assert result.stages == (32, 48) and len(result.history["total"]) == 6 == settings.total_steps
    assert sizes == [(32, 48)] * 3 + [(48, 72)] * 3
    assert result.image.shape == cs.preprocess("cat", 48).shape
    polls = []
    stopped = run("cat", "starry_night", settings, model=model, should_stop=lambda: polls.append(1) or len(polls) >= 2)
    assert stopped.stopped_early and stopped.image.shape == result.image.shape  # upsampled from the coarse stage


def test_the_fine_stage_runs_one_adam_at_the_decayed_rate(model, monkeypatch):
    # A fresh Adam's first step moves every pixel by its learning rate, whatever the gradient: the
    # fine stage must not restart Adam at decay_at (it is already at the decayed rate).
    settings = cs.TransferSettings(image_size=48, style_size=48, num_steps=6, decay_at=3, coarse_size=32)
    made = []
    real_adam = torch.optim.Adam
    monkeypatch.setattr(torch.optim, "Adam", lambda params, lr: made.append(lr) or real_adam(params, lr=lr))
    run("cat", "starry_night", settings, model=model)
    assert made == [settings.learning_rate, settings.decayed_learning_rate, settings.decayed_learning_rate]


# --- bad inputs -------------------------------------------------------------------------------

TWO = cs.split_masks((32, 48), "vertical")


@pytest.mark.parametrize("style, options, changes, message", [
    (["the_scream", "starry_night", "dots"], {"content_masks": TWO}, {},
     r"content_masks have 2 regions but style_image has 3 images: pass one style image per region"),
    (["the_scream", "starry_night"], {"content_masks": torch.ones(2, 1, 8, 8, 1)}, {}, r"shape \(1, R, H, W\)"),
    (["the_scream", "starry_night"], {"content_masks": [[0.0, 1.0]]}, {}, r"shape \(1, R, H, W\)"),
    (["the_scream", "starry_night"], {"content_masks": TWO * 2}, {}, r"values in \[0, 1\]"),
    (["the_scream", "starry_night"], {"content_masks": torch.stack([TWO[0, 0], 0 * TWO[0, 0]])}, {},
     r"region\(s\) \[1\] cover no pixel"),
    (None, {"content_masks": TWO}, {}, r"content_masks need style images"),
    (["the_scream", "starry_night"], {"content_masks": TWO}, {"style_blend_weights": (1.0, 1.0)},
     r"leave style_blend_weights empty"),
    (["the_scream", "starry_night"], {}, {"style_blend_weights": (1.0,)},
     r"style_blend_weights has 1 weights but there are 2 style images"),
    ([], {}, {}, r"style_image is an empty list"),
    (["the_scream", "starry_night"], {}, {"speed": "fast"}, r"speed='fast' does not support several style images"),
    ("the_scream", {"content_masks": TWO}, {"speed": "fast"}, r"speed='fast' does not support content_masks"),
    ("the_scream", {}, {"speed": "fast", "preserve_colors": "histogram"},
     r"does not support preserve_colors='histogram': use speed='exact'"),
    ("the_scream", {}, {"speed": "fast", "coarse_size": 32, "image_size": 48}, r"does not support coarse_size=32"),
    ("the_scream", {}, {"speed": "fast", "optimizer": "lbfgs"}, r"does not support optimizer='lbfgs'"),
])
def test_bad_inputs_are_named_before_any_work(model, settings, style, options, changes, message):
    with pytest.raises(ValueError, match=message):
        run("coffee", style, settings.replace(**changes), model=model, **options)


def test_masks_need_the_guided_style_loss(model, settings):
    with pytest.raises(ValueError, match=r"need guided_style_loss: pass it in LossFunctions.*content_masks=None"):
        run("coffee", ["the_scream", "starry_night"], settings, model=model, losses=CS231N_LOSSES, content_masks=TWO)


# --- photorealism (Luan et al., 2017, Sec. 3.1; notebook 06) ---------------------------------------

def test_the_photorealism_term_runs_only_with_a_weight_and_keeps_the_result_closer_to_a_recolouring(model):
    from cs231n_style.images import to_pixels
    from cs231n_style.photorealism import matting_laplacian
    from tools.plain_loop import CS231N_LOSSES, photorealism_loss

    losses = dataclasses.replace(CS231N_LOSSES, photorealism_loss=photorealism_loss)
    settings = cs.TransferSettings(image_size=48, style_size=48, num_steps=30, decay_at=25, clamp_until=28)
    plain = cs.style_transfer("coffee", "starry_night", losses, model, settings, progress=False)
    assert "photorealism" not in plain.history  # weight 0: the loop as before, the function never called
    photo = cs.style_transfer("coffee", "starry_night", losses, model, settings.replace(photorealism_weight=3e3),
                              progress=False)
    assert len(photo.history["photorealism"]) == 30
    assert photo.history["total"][0] == pytest.approx(
        sum(photo.history[key][0] for key in ("content", "style", "tv", "photorealism")), rel=1e-6)
    # The regularizer's own measure of "not a recolouring of the photo", float64: lower with the term on.
    laplacian = matting_laplacian(to_pixels(cs.preprocess("coffee", 48)), dtype=torch.float64)

    def cost(result):
        v = to_pixels(result.image).double().clamp(0, 1).reshape(3, -1).T
        return float((v * (laplacian @ v)).sum())

    assert cost(photo) < 0.5 * cost(plain)


def test_the_photorealism_term_needs_its_function_and_follows_coarse_to_fine(model):
    from tools.plain_loop import CS231N_LOSSES, photorealism_loss

    settings = cs.TransferSettings(image_size=48, style_size=48, num_steps=2, photorealism_weight=1e3)
    with pytest.raises(ValueError, match="photorealism_loss"):
        cs.style_transfer("coffee", "starry_night", CS231N_LOSSES, model, settings, progress=False)
    seen = []

    def recording(img, laplacian, weight):
        seen.append((tuple(img.shape[-2:]), tuple(laplacian.shape), float(img.detach().min()) >= 0))
        return photorealism_loss(img, laplacian, weight)

    losses = dataclasses.replace(CS231N_LOSSES, photorealism_loss=recording)
    cs.style_transfer("coffee", "starry_night", losses, model, settings.replace(image_size=64, coarse_size=32),
                      progress=False)
    (h1, w1), (h2, w2) = seen[0][0], seen[-1][0]
    assert seen[0][1] == (h1 * w1, h1 * w1) and seen[-1][1] == (h2 * w2, h2 * w2) and h2 == 64 and h1 == 32
    assert all(pixels for *_, pixels in seen[:1])  # pixels (the photo's are in [0, 1]), not normalized values


def test_the_photorealism_term_runs_with_a_style_per_region(model):
    """Luan et al.'s augmented style loss is notebook 05's guided one: masks and the regularizer together."""
    from tools.plain_loop import photorealism_loss

    calls = {"guided": 0, "photorealism": 0}

    def counting(name, function):
        def wrapped(*args):
            calls[name] += 1
            return function(*args)
        return wrapped

    losses = dataclasses.replace(LOSSES, guided_style_loss=counting("guided", LOSSES.guided_style_loss),
                                 photorealism_loss=counting("photorealism", photorealism_loss))
    settings = cs.TransferSettings(image_size=32, style_size=32, num_steps=3, photorealism_weight=1e3)
    result = cs.style_transfer("coffee", ["the_scream", "starry_night"], losses, model, settings, progress=False,
                               content_masks=cs.split_masks((32, 48), "horizontal"))
    assert calls == {"guided": 3, "photorealism": 3}
    assert len(result.history["photorealism"]) == 3 and all(v > 0 for v in result.history["photorealism"])
    assert result.history["total"][0] == pytest.approx(
        sum(result.history[key][0] for key in ("content", "style", "tv", "photorealism")), rel=1e-6)
