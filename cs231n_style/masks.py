"""Masks for spatial control: which region of the result takes which style.

Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017), Sec. 4: a
*guidance channel* per region, a map of values in [0, 1] over the image; each style is matched
only where its region's mask is on (the guided Gram matrix, which students write in notebook 5).

Masks here are float32 tensors of shape (1, R, H, W) - one channel per region, values in [0, 1],
at the size of the content image as :func:`cs231n_style.preprocess` makes it - made without any
drawing tool:

* :func:`split_masks` - two halves, or a horizon line (sky above, ground below);
* :func:`threshold_masks` - bright vs dark parts of the content photo (its luminance);
* :func:`load_masks` - a black-and-white image file of any size (white: region 0, black: region 1),
  or several files, one region each (its white part).

:func:`resize_masks` brings masks to a layer's feature-map size (the fraction of each
feature-map cell a region covers: adaptive average pooling), as the guided style loss needs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .images import load_image

__all__ = ["check_masks", "load_masks", "resize_masks", "split_masks", "threshold_masks"]


def check_masks(masks: torch.Tensor, size: tuple[int, int] | None = None, name: str = "masks") -> torch.Tensor:
    """Check masks and return them as float32 (1, R, H, W).

    Args:
        masks: tensor (1, R, H, W) with values in [0, 1].
        size: the (H, W) they must have, if given (the content image's, after resizing).
        name: what to call them in messages.

    Returns:
        ``masks`` as a contiguous float32 tensor.

    Raises:
        ValueError: if ``masks`` is not a (1, R, H, W) tensor with R >= 1, has values outside
            [0, 1] or NaN, has the wrong size, or has a region that is empty (all zero): a style
            for a region of no pixels cannot be matched.
    """
    if not isinstance(masks, torch.Tensor) or masks.dim() != 4 or masks.shape[0] != 1 or masks.shape[1] < 1:
        shape = tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise ValueError(f"{name} must be a tensor of shape (1, R, H, W), one channel per region, not {shape}.")
    masks = masks.detach().to(torch.float32).contiguous()
    if torch.isnan(masks).any() or masks.min() < 0 or masks.max() > 1:
        raise ValueError(f"{name} must hold values in [0, 1] (0: outside the region, 1: inside).")
    if size is not None and tuple(masks.shape[2:]) != tuple(size):
        raise ValueError(f"{name} are {tuple(masks.shape[2:])} pixels (H, W) but the content image is {tuple(size)}: "
                         "make them at the content image's size (cs.preprocess(content, size).shape[2:]).")
    empty = [r for r in range(masks.shape[1]) if masks[0, r].sum() == 0]
    if empty:
        raise ValueError(f"{name}: region(s) {empty} cover no pixel; every region needs some area "
                         "(move the split, change the threshold, or drop the region).")
    return masks


def split_masks(size: tuple[int, int], direction: str = "vertical", at: float = 0.5) -> torch.Tensor:
    """Two regions on either side of a straight line.

    Args:
        size: (H, W) of the content image after resizing.
        direction: ``"vertical"`` for a vertical line (region 0 left, region 1 right) or
            ``"horizontal"`` for a horizon (region 0 above, region 1 below).
        at: where the line is, as a fraction of the width or height, in (0, 1).

    Returns:
        Float32 tensor (1, 2, H, W) of 0s and 1s; the two channels add up to 1 everywhere.

    Raises:
        ValueError: for another ``direction``, or an ``at`` that leaves a region empty.
    """
    if direction not in ("vertical", "horizontal"):
        raise ValueError(f"direction must be 'vertical' or 'horizontal', not {direction!r}.")
    height, width = size
    length = width if direction == "vertical" else height
    cut = round(at * length)
    if not 0 < cut < length:
        raise ValueError(f"at={at} puts the line at pixel {cut} of {length}: choose a value in (0, 1) away from "
                         "the edges.")
    first = torch.zeros(height, width)
    if direction == "vertical":
        first[:, :cut] = 1
    else:
        first[:cut, :] = 1
    return torch.stack([first, 1 - first])[None]


def threshold_masks(image, size: int = 192, threshold: float = 0.5) -> torch.Tensor:
    """Two regions of the content photo: bright (luminance above ``threshold``) and dark.

    Args:
        image: the content image, anything :func:`cs231n_style.load_image` accepts.
        size: the shorter side it is resized to (the same as the style transfer's ``image_size``).
        threshold: luminance (Y of YIQ, in [0, 1]) that separates the regions.

    Returns:
        Float32 tensor (1, 2, H, W) of 0s and 1s: region 0 bright, region 1 dark.

    Raises:
        ValueError: if a region is empty at this threshold (the message gives the luminance range
            found), plus what :func:`cs231n_style.load_image` raises.
    """
    from .color import rgb_to_yiq
    from .images import preprocess, to_pixels

    luminance = rgb_to_yiq(to_pixels(preprocess(image, size)))[0, 0]
    bright = (luminance > threshold).to(torch.float32)
    masks = torch.stack([bright, 1 - bright])[None]
    if bright.sum() == 0 or bright.sum() == bright.numel():
        raise ValueError(f"threshold {threshold} leaves a region empty: the image's luminance lies in "
                         f"[{luminance.min():.2f}, {luminance.max():.2f}]; choose a threshold inside it.")
    return masks


def load_masks(path: str | os.PathLike | Sequence[str | os.PathLike], size: tuple[int, int]) -> torch.Tensor:
    """Regions from black-and-white image files (any size; e.g. painted in any editor).

    Each file is converted to grey, resized to ``size`` and split at mid-grey. One file makes two
    regions: its white part (> 0.5) is region 0, its black part region 1. Several files make one
    region each, in order: file ``r``'s white part is region ``r`` (regions may overlap or leave
    pixels out: such pixels take no style, only the content and TV terms).

    Args:
        path: an image file (PNG, JPEG, ...), any size and mode; or a list of them.
        size: (H, W) of the content image after resizing.

    Returns:
        Float32 tensor (1, R, H, W) of 0s and 1s: R = 2 for one file, the number of files for a list.

    Raises:
        ValueError: if a file is not an image, one file is all white or all black at this size, a
            file of a list has no white pixel, or the list is empty.
        FileNotFoundError: if a file does not exist.
    """
    if isinstance(path, (str, os.PathLike)):
        white = _white(path, size)
        return check_masks(torch.stack([white, 1 - white])[None], size, name=f"the masks from {os.fspath(path)!r}")
    paths = list(path)
    if not paths:
        raise ValueError("load_masks got an empty list of files: pass one file (two regions) or one per region.")
    names = ", ".join(repr(os.fspath(p)) for p in paths)
    return check_masks(torch.stack([_white(p, size) for p in paths])[None], size, name=f"the masks from {names}")


def _white(path: str | os.PathLike, size: tuple[int, int]) -> torch.Tensor:
    """Float32 (H, W): 1 where the image file, grey and resized to ``size`` = (H, W), is lighter than mid-grey."""
    grey = load_image(path).convert("L").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return torch.from_numpy((np.asarray(grey, dtype=np.float32) / 255 > 0.5).astype(np.float32))


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Masks at a layer's feature-map size: the fraction of each cell that a region covers.

    Args:
        masks: float tensor (1, R, H, W), values in [0, 1], at the image's size.
        size: (H_l, W_l), the layer's feature-map size (``feats[layer].shape[-2:]``).

    Returns:
        Float32 tensor (1, R, H_l, W_l), values in [0, 1], on ``masks``' device (adaptive average
        pooling: Gatys et al. 2017, Sec. 4.1, down-sample the guidance channels to each layer).

    Raises:
        ValueError: if ``masks`` is not valid (see :func:`check_masks`).
    """
    return F.adaptive_avg_pool2d(check_masks(masks), (size[0], size[1]))
