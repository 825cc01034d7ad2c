"""Colour control: keep the content photo's colours while taking the style's strokes and textures.

Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017), Sec. 5, give
two ways, both here, both on pixels in [0, 1]:

* **Luminance-only transfer** (Sec. 5.1): style transfer sees only the luminance channel (Y of the
  YIQ colour space) of the content and style images; the result's luminance is then combined with
  the content image's colour channels (I and Q). The style image's luminance is first shifted and
  scaled to the mean and standard deviation of the content's (:func:`match_luminance`), so that a
  dark painting does not darken the photo.
* **Colour histogram matching** (Sec. 5.2): before style transfer, the style image's colours are
  moved by an affine map so that their mean and covariance equal the content image's
  (:func:`match_color_histogram`); the transfer then runs as usual on the recoloured style image.

YIQ is the NTSC colour space (the FCC's coefficients), as in the paper.
"""

from __future__ import annotations

import torch

__all__ = [
    "RGB_TO_YIQ",
    "combine_luminance",
    "luminance_image",
    "match_color_histogram",
    "match_luminance",
    "rgb_to_yiq",
    "yiq_to_rgb",
]

#: RGB -> YIQ (NTSC, FCC coefficients): rows give Y (luminance), I and Q (chrominance).
RGB_TO_YIQ = ((0.299, 0.587, 0.114),
              (0.595716, -0.274453, -0.321263),
              (0.211456, -0.522591, 0.311135))


def _check_pixels(image: torch.Tensor, name: str) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{name} must be a tensor of RGB pixels in [0, 1], shape (N, 3, H, W), not {shape}: "
                         "e.g. torchvision.transforms.functional.to_tensor(cs.load_image(...))[None].")
    if not image.is_floating_point():
        raise ValueError(f"{name} must hold float pixels in [0, 1], not {image.dtype}: divide by 255.")


def _apply(matrix, image: torch.Tensor) -> torch.Tensor:
    """A 3x3 colour matrix applied to every pixel of an (N, 3, H, W) tensor."""
    m = torch.as_tensor(matrix, dtype=image.dtype, device=image.device)
    return torch.einsum("ij,njhw->nihw", m, image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """Convert RGB pixels to YIQ (Y in [0, 1], I in about [-0.6, 0.6], Q in about [-0.52, 0.52]).

    Args:
        image: float tensor (N, 3, H, W), RGB pixels in [0, 1].

    Returns:
        Float tensor (N, 3, H, W) of the same dtype and device: channels Y, I, Q.

    Raises:
        ValueError: if ``image`` is not a float (N, 3, H, W) tensor.
    """
    _check_pixels(image, "image")
    return _apply(RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Convert YIQ back to RGB pixels (the exact inverse of :func:`rgb_to_yiq`; not clamped).

    Args:
        image: float tensor (N, 3, H, W), channels Y, I, Q.

    Returns:
        Float tensor (N, 3, H, W), RGB; values may leave [0, 1] slightly where the YIQ values
        came from elsewhere (clamp before saving).

    Raises:
        ValueError: if ``image`` is not a float (N, 3, H, W) tensor.
    """
    _check_pixels(image, "image")
    inverse = torch.linalg.inv(torch.tensor(RGB_TO_YIQ, dtype=torch.float64))
    return _apply(inverse, image)


def luminance_image(image: torch.Tensor) -> torch.Tensor:
    """The image's luminance as a grey image: Y of YIQ on all three channels (Gatys et al., 2017,
    Sec. 5.1: the content image of a luminance-only transfer, made readable for a network trained
    on RGB).

    Args:
        image: float tensor (N, 3, H, W), RGB pixels in [0, 1].

    Returns:
        Float tensor (N, 3, H, W) of the same dtype and device, three equal channels in [0, 1].

    Raises:
        ValueError: if ``image`` is not a float (N, 3, H, W) tensor.
    """
    return rgb_to_yiq(image)[:, :1].clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style image as grey luminance matched to the content's (Gatys et al., 2017, Sec. 5.1).

    ``L_s' = sigma_c / sigma_s * (L_s - mu_s) + mu_c``, with ``mu`` and ``sigma`` the mean and
    standard deviation of each image's luminance Y, then repeated on three channels so that the
    network (trained on RGB) can read it.

    Args:
        style: float tensor (1, 3, Hs, Ws), RGB pixels in [0, 1].
        content: float tensor (1, 3, Hc, Wc), RGB pixels in [0, 1].

    Returns:
        Float tensor (1, 3, Hs, Ws): the matched luminance on all three channels, clamped to [0, 1].

    Raises:
        ValueError: if an argument is not a float (N, 3, H, W) tensor.
    """
    _check_pixels(style, "style")
    _check_pixels(content, "content")
    ys, yc = rgb_to_yiq(style)[:, :1], rgb_to_yiq(content)[:, :1]
    matched = (ys - ys.mean()) * (yc.std() / ys.std().clamp_min(1e-8)) + yc.mean()
    return matched.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def combine_luminance(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The result's luminance with the content image's colours (Gatys et al., 2017, Sec. 5.1).

    Args:
        result: float tensor (1, 3, H, W), RGB pixels in [0, 1] of the luminance-only transfer
            (grey, or nearly: only its Y channel is used).
        content: float tensor (1, 3, H, W), RGB pixels in [0, 1], the same size.

    Returns:
        Float tensor (1, 3, H, W): Y from ``result``, I and Q from ``content``, as RGB pixels
        clamped to [0, 1].

    Raises:
        ValueError: if an argument is not a float (N, 3, H, W) tensor, or the sizes differ.
    """
    _check_pixels(result, "result")
    _check_pixels(content, "content")
    if result.shape != content.shape:
        raise ValueError(f"result {tuple(result.shape)} and content {tuple(content.shape)} must have the "
                         "same size: resize the content image to the result's size first.")
    yiq = torch.cat([rgb_to_yiq(result)[:, :1], rgb_to_yiq(content)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def _symmetric_power(covariance: torch.Tensor, power: float) -> torch.Tensor:
    """``covariance ** power`` for a symmetric positive semi-definite 3x3 matrix (eigenvalues
    clamped to 1e-8 first, so that a flat image has an inverse square root)."""
    values, vectors = torch.linalg.eigh(covariance)
    return vectors @ torch.diag(values.clamp_min(1e-8) ** power) @ vectors.T


def match_color_histogram(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Recolour the style image so its colours' mean and covariance are the content's (Sec. 5.2).

    An affine map of every pixel, ``x' = A (x - mu_s) + mu_c`` with
    ``A = Sigma_c^(1/2) Sigma_s^(-1/2)`` (symmetric matrix square roots, as in Hertzmann's image
    analogies colour transfer, which Gatys et al. use), computed in float64.

    Args:
        style: float tensor (1, 3, Hs, Ws), RGB pixels in [0, 1].
        content: float tensor (1, 3, Hc, Wc), RGB pixels in [0, 1].

    Returns:
        Float tensor (1, 3, Hs, Ws) of ``style``'s dtype: the recoloured style image, clamped
        to [0, 1] (so the moments match exactly only where no pixel was clamped).

    Raises:
        ValueError: if an argument is not a float (N, 3, H, W) tensor.
    """
    _check_pixels(style, "style")
    _check_pixels(content, "content")
    xs = style.to(torch.float64).flatten(2)[0]   # (3, Hs*Ws)
    xc = content.to(torch.float64).flatten(2)[0]
    mu_s, mu_c = xs.mean(1, keepdim=True), xc.mean(1, keepdim=True)
    a = _symmetric_power(torch.cov(xc), 0.5) @ _symmetric_power(torch.cov(xs), -0.5)
    recoloured = a @ (xs - mu_s) + mu_c
    return recoloured.reshape(style.shape).clamp(0, 1).to(style.dtype)
