"""Colour control (cs231n_style.color) against float64 NumPy computations written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cs231n_style.color import (
    combine_luminance,
    luminance_image,
    match_color_histogram,
    match_luminance,
    rgb_to_yiq,
    yiq_to_rgb,
)

# The FCC's NTSC coefficients, typed in again (not imported) so that a typo in the module fails.
YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def pixels(seed: int, shape=(1, 3, 9, 13), low=0.0, high=1.0, dtype=torch.float64) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.uniform(low, high, size=shape), dtype=dtype)


def numpy_yiq(image: torch.Tensor) -> np.ndarray:
    return np.einsum("ij,njhw->nihw", YIQ, image.numpy().astype(np.float64))


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_yiq_matches_numpy_and_inverts_exactly(dtype, tolerance):
    image = pixels(0, dtype=dtype)
    yiq = rgb_to_yiq(image)
    assert yiq.dtype == dtype and yiq.shape == image.shape
    np.testing.assert_allclose(yiq.numpy(), numpy_yiq(image), atol=tolerance)
    np.testing.assert_allclose(yiq_to_rgb(yiq).numpy(), image.numpy(), atol=10 * tolerance)


def test_grey_has_no_chrominance_and_white_has_luminance_one():
    grey = torch.full((1, 3, 2, 2), 0.25, dtype=torch.float64)
    np.testing.assert_allclose(rgb_to_yiq(grey)[0, :, 0, 0].numpy(), [0.25, 0, 0], atol=1e-6)
    np.testing.assert_allclose(rgb_to_yiq(torch.ones(1, 3, 1, 1, dtype=torch.float64))[0, 0].item(), 1.0)


def test_matched_luminance_has_the_contents_mean_and_std_on_three_equal_channels():
    style, content = pixels(1, low=0.0, high=0.4), pixels(2, shape=(1, 3, 11, 7), low=0.3, high=0.8)
    matched = match_luminance(style, content)
    assert matched.shape == style.shape
    assert torch.equal(matched[:, 0], matched[:, 1]) and torch.equal(matched[:, 1], matched[:, 2])
    y_content = numpy_yiq(content)[:, 0]
    np.testing.assert_allclose(matched[:, 0].mean().item(), y_content.mean(), rtol=1e-9)
    np.testing.assert_allclose(matched[:, 0].std().item(), y_content.std(ddof=1), rtol=1e-9)
    # and the order of the style's luminance is kept (an increasing affine map)
    y_style = numpy_yiq(style)[:, 0].ravel()
    assert (np.argsort(matched[:, 0].numpy().ravel()) == np.argsort(y_style)).all()


def test_combined_image_has_the_results_luminance_and_the_contents_colours():
    result, content = pixels(3, low=0.2, high=0.8), pixels(4, low=0.3, high=0.7)
    combined = combine_luminance(result, content)
    yiq = numpy_yiq(combined)
    np.testing.assert_allclose(yiq[:, 0], numpy_yiq(result)[:, 0], atol=1e-9)
    np.testing.assert_allclose(yiq[:, 1:], numpy_yiq(content)[:, 1:], atol=1e-9)


def test_histogram_matching_gives_the_contents_mean_and_covariance():
    # moderate colours so that nothing is clamped: the moments then match exactly
    rng = np.random.default_rng(5)
    style = torch.tensor(0.5 + 0.08 * rng.standard_normal((1, 3, 30, 40)), dtype=torch.float32)
    mixing = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.2, 0.0, 1.0]])
    content = torch.tensor(0.45 + np.einsum("ij,njhw->nihw", 0.05 * mixing, rng.standard_normal((1, 3, 25, 20))),
                           dtype=torch.float32)
    out = match_color_histogram(style, content)
    assert out.dtype == torch.float32 and out.shape == style.shape
    assert 0 < out.min() and out.max() < 1  # nothing clamped
    xs, xc = out.double().numpy().reshape(3, -1), content.double().numpy().reshape(3, -1)
    np.testing.assert_allclose(xs.mean(1), xc.mean(1), atol=1e-6)
    np.testing.assert_allclose(np.cov(xs), np.cov(xc), atol=1e-6)


def test_histogram_matching_keeps_a_style_already_like_the_content():
    content = pixels(6, low=0.2, high=0.8)
    np.testing.assert_allclose(match_color_histogram(content, content).numpy(), content.numpy(), atol=1e-9)


@pytest.mark.parametrize("bad, message", [
    (torch.rand(3, 8, 8), r"\(N, 3, H, W\)"),
    (torch.rand(1, 4, 8, 8), r"\(N, 3, H, W\)"),
    (torch.randint(0, 255, (1, 3, 8, 8)), "divide by 255"),
    (np.zeros((1, 3, 8, 8)), "ndarray"),
])
def test_bad_images_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        rgb_to_yiq(bad)


def test_combining_images_of_different_sizes_says_what_to_resize():
    with pytest.raises(ValueError, match="same size"):
        combine_luminance(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_luminance_image_is_y_on_three_equal_channels():
    image = pixels(5)
    grey = luminance_image(image)
    assert grey.shape == image.shape and grey.dtype == image.dtype
    for channel in range(3):
        np.testing.assert_allclose(grey[:, channel].numpy(), numpy_yiq(image)[:, 0], atol=1e-12)
