"""The parts of :func:`cs231n_style.style_transfer` that are not the lesson (you can skip this module).

``transfer.py`` reads as the lesson: the loss, the Adam loop, the stages. What it calls from here is
bookkeeping: checking the arguments and deciding which losses run (:func:`losses_in_use`), reading
the images with the colour control of Gatys et al. (CVPR 2017, Sec. 5) (:func:`load_images`),
the style targets with blending and spatial control (Sec. 4) (:func:`targets`), the image
a stage starts from (:func:`initial_image`), the progress bar and previews (:class:`Monitor`), and
L-BFGS (:func:`run_lbfgs`). Nothing here imports ``transfer.py``: it sits below it.

The controls of Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017),
each off by default, change the images and the targets, not the loop:

* **Blending** (``style_image`` a list, no masks): the style target at each layer is the
  weighted sum ``sum_k w_k G_k`` of the style images' Gram matrices, ``w`` =
  ``settings.style_blend_weights`` normalized to sum 1 (equal weights if empty), as
  neural-style's ``-style_blend_weights`` does.
* **Spatial control** (Sec. 4; ``content_masks``): region ``r`` of the result takes the style
  of ``style_image[r]``. The loss is ``losses.guided_style_loss`` with targets
  ``style_targets[i]`` (1, R, C, C), region ``r``'s the ``gram_matrix`` of the whole style
  image ``r`` at style layer ``i``, and ``content_masks[i]`` the masks resized to that layer's
  H x W (:func:`cs231n_style.resize_masks`).
* **Colour control** (Sec. 5; ``settings.preserve_colors``): ``"histogram"`` recolours each
  style image to the content's colour mean and covariance before its Gram matrices are made
  (:func:`cs231n_style.match_color_histogram`); ``"luminance"`` runs the transfer on grey
  images (the content's luminance, the style's luminance matched to it:
  :func:`cs231n_style.match_luminance`) and returns the result's luminance with the content's
  colours (:func:`cs231n_style.combine_luminance`).
* **Scale control** (Sec. 6; ``settings.coarse_size``): the whole optimization first at the
  shorter side ``coarse_size``, then at ``image_size`` from the upsampled result
  (:func:`cs231n_style.settings.coarse_to_fine`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .backbones import backbone_of
from .color import combine_luminance, luminance_image, match_color_histogram, match_luminance
from .features import extract_features
from .images import preprocess, to_normalized, to_pixels
from .masks import check_masks, resize_masks
from .settings import Stage, TransferSettings

#: The loss values each step reports, in this order (``TransferResult.history``'s keys).
LOSS_KEYS = ("content", "style", "tv", "total")


# --- Step 1: check the arguments, decide which losses run ------------------------------------------

@dataclass(frozen=True)
class LossesInUse:
    """Which loss terms a run computes (a weight of 0, or no style image, turns a term off), and
    the deepest layer they read (the network is not run beyond it)."""

    content: bool
    style: bool
    tv: bool
    deepest_layer: int
    photorealism: bool = False


def losses_in_use(losses, settings, style_image, model: nn.Sequential, content_masks=None) -> LossesInUse:
    """Check :func:`cs231n_style.style_transfer`'s arguments (but ``losses``' type) and decide which
    loss terms run; raises the errors ``style_transfer`` documents."""
    if not isinstance(settings, TransferSettings):
        hint = "TransferSettings(**settings)" if isinstance(settings, dict) else "TransferSettings(num_steps=100, ...)"
        raise TypeError(f"settings must be a TransferSettings, not {type(settings).__name__}: pass {hint}.")
    _check_style_images(style_image, content_masks, settings)
    if settings.speed == "fast":
        _refuse_controls(style_image, content_masks, settings)
    use_style = style_image is not None and len(settings.style_layers) > 0
    used = LossesInUse(content=settings.content_weight > 0, style=use_style, tv=settings.tv_weight > 0,
                       deepest_layer=settings.deepest_layer if use_style else settings.content_layer,
                       photorealism=settings.photorealism_weight > 0)
    guided = content_masks is not None
    needed = {"content_loss": used.content, "gram_matrix": used.style, "style_loss": used.style and not guided,
              "guided_style_loss": used.style and guided, "tv_loss": used.tv,
              "photorealism_loss": used.photorealism}
    missing = [name for name, is_needed in needed.items() if is_needed and getattr(losses, name) is None]
    if missing:
        raise ValueError(f"These settings need {', '.join(missing)}: pass it in LossFunctions(...), "
                         "or set its weight to 0 (content_weight, tv_weight, photorealism_weight) / style_image=None"
                         + (" / content_masks=None." if guided else "."))
    if not (used.content or used.style or used.tv):
        raise ValueError("Nothing to optimize: content_weight and tv_weight are 0 and there is no style "
                         "term (style_image=None or no style layers).")
    found = backbone_of(model)
    if found is not None and found.name != settings.backbone:
        raise ValueError(f"The model is {found.title} but settings.backbone is {settings.backbone!r}: its layers "
                         f"and weights are for another network. Use TransferSettings.for_backbone({found.name!r}, "
                         "...) (or pass the model of load_backbone(settings.backbone)).")
    too_deep = [f"content_layer {settings.content_layer}"] if settings.content_layer >= len(model) else []
    too_deep += [f"style layer {i}" for i in settings.style_layers if i >= len(model)]
    if too_deep:
        raise ValueError(f"{', '.join(too_deep)}: no such layer, the model has layers 0-{len(model) - 1} "
                         "(cs.describe_layers(model) lists them).")
    return used


def _style_list(style_image) -> list:
    """The style images as a list: none for ``None``, the items of a list or tuple, else the one image."""
    if style_image is None:
        return []
    return list(style_image) if isinstance(style_image, (list, tuple)) else [style_image]


def _check_style_images(style_image, content_masks, settings: TransferSettings) -> None:
    """As many style images as the masks' regions or the blend weights."""
    count, several = len(_style_list(style_image)), isinstance(style_image, (list, tuple))
    if several and count == 0:
        raise ValueError("style_image is an empty list: pass one style image or more, or None for no style term.")
    blend = settings.style_blend_weights
    if content_masks is None:
        if blend and count != len(blend):
            raise ValueError(f"style_blend_weights has {len(blend)} weights but there are {count} style images: "
                             "give one weight per style image, in order (or leave it empty for equal weights).")
        return
    regions = _given_masks(content_masks).shape[1]
    if style_image is None:
        raise ValueError(f"content_masks need style images: pass style_image=[...] with {regions}, one per region.")
    if blend:
        raise ValueError("style_blend_weights blend styles over the whole image, but with content_masks each region "
                         "has its own style: leave style_blend_weights empty, or drop content_masks to blend.")
    if several and count != regions:
        raise ValueError(f"content_masks have {regions} regions but style_image has {count} images: pass one style "
                         "image per region (region r takes style_image[r]), or one image, not in a list, for the "
                         "same style everywhere.")


def _refuse_controls(style_image, content_masks, settings: TransferSettings) -> None:
    """Raise ValueError naming each control of Gatys et al. (2017) asked of the fast mode: it was
    measured with one style image and none of them, and its coarse-to-fine plan (Adam) is its own;
    nor ``optimizer="lbfgs"``, which it would otherwise ignore."""
    asked = [name for name, used in (
        ("several style images", isinstance(style_image, (list, tuple))),
        ("content_masks", content_masks is not None),
        (f"preserve_colors={settings.preserve_colors!r}", settings.preserve_colors != "none"),
        (f"coarse_size={settings.coarse_size}", settings.coarse_size != 0),
        (f"optimizer={settings.optimizer!r}", settings.optimizer != "adam")) if used]
    if asked:
        raise ValueError(f"speed='fast' does not support {', '.join(asked)}: use speed='exact' (the default), "
                         "which does.")


def _given_masks(content_masks) -> torch.Tensor:
    """``content_masks`` checked, as a float32 tensor (1, R, H, W): an (R, H, W) one gets the batch
    axis, an array becomes a tensor (:func:`cs231n_style.check_masks` raises ValueError for the rest)."""
    if isinstance(content_masks, np.ndarray):
        content_masks = torch.from_numpy(content_masks)
    if isinstance(content_masks, torch.Tensor) and content_masks.dim() == 3:
        content_masks = content_masks[None]
    return check_masks(content_masks, name="content_masks")


# --- A stage's images ----------------------------------------------------------------------------

@dataclass
class Images:
    """A stage's images as the network sees them: normalized float32 (1, 3, H, W) on the run's device,
    colour-controlled as ``preserve_colors`` says; and the masks (1, R, H, W) at the content's size."""

    content: torch.Tensor
    styles: list[torch.Tensor]
    masks: torch.Tensor | None = None


def load_images(content_image, style_image, content_masks, settings: TransferSettings, device) -> Images:
    """The images at the stage's sizes: the content image at ``image_size``, each style image at
    ``style_size`` (one per region with masks), colour-controlled (Gatys et al., 2017, Sec. 5)."""
    # The image being optimized must be plain NCHW for students' tv_loss (``view``) and for L-BFGS
    # (``grad.view(-1)``); preprocess returns it so, and .contiguous() keeps that true for any device.
    content = preprocess(content_image, settings.image_size).to(device).contiguous()
    styles = [preprocess(style, settings.style_size).to(device) for style in _style_list(style_image)]
    if settings.preserve_colors != "none":
        content, styles = _control_colors(content, styles, settings.preserve_colors)
    if content_masks is None:
        return Images(content, styles)
    masks = _given_masks(content_masks)
    size = (content.shape[-2], content.shape[-1])
    if tuple(masks.shape[-2:]) != size:  # bilinear, antialiased: a weighted mean, so values stay in [0, 1]
        masks = F.interpolate(masks, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    masks = check_masks(masks, size, name="content_masks (resized to the content image)").to(device)
    return Images(content, styles * masks.shape[1] if len(styles) == 1 else styles, masks)


def _control_colors(content: torch.Tensor, styles: list[torch.Tensor], mode: str):
    """The content and style images for colour control (Gatys et al., 2017, Sec. 5): ``"histogram"``:
    each style image recoloured to the content's colour mean and covariance; ``"luminance"``: the
    content's luminance, and each style's luminance matched to it, as grey (Y, Y, Y) images."""
    content_pixels = to_pixels(content)
    if mode == "histogram":
        return content, [to_normalized(match_color_histogram(to_pixels(style), content_pixels)) for style in styles]
    grey = to_normalized(luminance_image(content_pixels)).contiguous()
    return grey, [to_normalized(match_luminance(to_pixels(style), content_pixels)) for style in styles]


# --- Step 2: the targets ---------------------------------------------------------------------------

@dataclass
class Targets:
    """What the result should match: the content image's feature maps at the content layer
    (``None`` without a content term) and the style targets at each style layer: (1, C, C) Gram
    matrices, or with masks (1, R, C, C) ones and ``masks``, the masks (1, R, H_l, W_l) resized to
    each style layer (``None`` without masks); with ``photorealism_weight`` > 0, ``laplacian``, the
    content image's Matting Laplacian at the stage's size (Luan et al., 2017, Sec. 3.1)."""

    content: torch.Tensor | None
    style: list[torch.Tensor]
    masks: list[torch.Tensor] | None = None
    laplacian: torch.Tensor | None = None


def targets(images: Images, network: nn.Sequential, losses, settings: TransferSettings,
            used: LossesInUse) -> Targets:
    """:func:`_feature_targets`, plus the content image's Matting Laplacian when the photorealism
    term runs (built from its pixels in [0, 1], on the CPU, then moved to the image's device)."""
    found = _feature_targets(images, network, losses, settings, used)
    if used.photorealism:
        from .photorealism import matting_laplacian  # only for this term: NumPy work, on first use

        found.laplacian = matting_laplacian(to_pixels(images.content).cpu()).to(images.content.device)
    return found


@torch.no_grad()  # targets are constants: no graph, computed once
def _feature_targets(images: Images, network: nn.Sequential, losses, settings: TransferSettings,
                     used: LossesInUse) -> Targets:
    """The content target and the style targets (with the student's ``gram_matrix``): one style
    image's Gram matrices; several images' blend; with masks, each region's style image's, stacked
    (1, R, C, C), and the masks resized to each style layer (Gatys et al., 2017, Sec. 4)."""
    content_target = None
    if used.content:
        content_target = extract_features(images.content, network, up_to=settings.content_layer)[settings.content_layer]
    if not used.style:
        return Targets(content_target, [])
    grams = [[losses.gram_matrix(feats[i]) for i in settings.style_layers]
             for feats in (extract_features(style, network, up_to=used.deepest_layer) for style in images.styles)]
    if images.masks is None:
        return Targets(content_target, _blend(grams, settings.style_blend_weights))
    feats = extract_features(images.content, network, up_to=used.deepest_layer)
    masks = [resize_masks(images.masks, (feats[layer].shape[-2], feats[layer].shape[-1]))
             for layer in settings.style_layers]
    return Targets(content_target, [torch.stack(layer, dim=1) for layer in zip(*grams, strict=True)], masks)


def _blend(grams: list[list[torch.Tensor]], weights: tuple[float, ...]) -> list[torch.Tensor]:
    """Per style layer, the blend ``sum_k w_k G_k`` of the style images' Gram matrices ``grams[k]``,
    the weights normalized to sum 1 (equal if none are given): neural-style's ``-style_blend_weights``
    (Johnson, 2015). One style image's Gram matrices are returned as they are."""
    if len(grams) == 1:
        return grams[0]
    weights = weights or (1.0,) * len(grams)
    total = sum(weights)
    return [sum(weight / total * gram for weight, gram in zip(weights, layer, strict=True))
            for layer in zip(*grams, strict=True)]


# --- Step 3: the image a stage starts from ---------------------------------------------------------

def initial_image(content: torch.Tensor, stage: Stage, previous: torch.Tensor | None = None,
                  previous_content: torch.Tensor | None = None) -> torch.Tensor:
    """The image a stage optimizes, a leaf tensor like ``content`` (normalized (1, 3, H, W)): a copy
    of the content image, or uniform noise (``init``); after a coarse stage, its result ``previous``
    upsampled (bilinear), plus with ``stage.add_detail`` the content image's finer detail
    (:func:`add_detail`, given ``previous_content``, the coarse stage's content image)."""
    if previous is not None:
        img = F.interpolate(previous.detach(), size=content.shape[-2:], mode="bilinear", align_corners=False)
        img = img.contiguous()
        if stage.add_detail and previous_content is not None:
            add_detail(img, content, previous_content)
    elif stage.settings.init == "content":
        img = content.clone()
    else:
        generator = torch.Generator().manual_seed(stage.settings.seed)  # CPU generator: same noise on every device
        img = torch.rand(content.shape, generator=generator).to(content.device)
    return img.requires_grad_(True)


@torch.no_grad()
def add_detail(img: torch.Tensor, content: torch.Tensor, coarse_content: torch.Tensor) -> None:
    """Add to ``img`` (the coarse result upsampled, (1, 3, H, W), normalized) the content image's
    detail finer than the coarse stage could see: ``content`` (1, 3, H, W) minus ``coarse_content``
    (the coarse stage's content image, (1, 3, h, w)) upsampled the same way (bilinear), in place.

    The idea of a Laplacian pyramid (Burt & Adelson, 1983): the coarse stage decides the low
    frequencies, the photo gives the band above them, as the exact loop starts from the photo's
    every detail. A coarse stage that changed nothing thus leaves exactly the photo (bar rounding).
    Without it the full-size stage starts from a blurred image and spends its steps sharpening it.
    Measured at 192 px with 40 full-size steps: four of five content/style pairs ended above the
    exact loop's 200-step loss without it, one with it; with 50 steps and it, all six tested
    reached it (docs/benchmark.md).
    """
    img += content - F.interpolate(coarse_content, size=content.shape[-2:], mode="bilinear", align_corners=False)


def with_original_colors(image: torch.Tensor, content_image, settings: TransferSettings) -> torch.Tensor:
    """After a luminance-only transfer (Gatys et al., 2017, Sec. 5.1), the result's luminance with
    the content image's colours; else ``image`` as it is. ``image``: a normalized CPU float32
    (1, 3, H, W) at ``image_size``; returns the same kind."""
    if settings.preserve_colors != "luminance":
        return image
    content = preprocess(content_image, settings.image_size)
    return to_normalized(combine_luminance(to_pixels(image), to_pixels(content))).contiguous()


# --- What happens after each step; L-BFGS --------------------------------------------------------

class Monitor:
    """What happens after each step: record the loss values, advance the progress bar, call the
    preview ``callback``, and poll ``should_stop``. The values stay on the device until the end:
    no host sync per step."""

    def __init__(self, num_steps: int, progress: bool, preview_every: int, callback: Callable | None,
                 should_stop: Callable[[], bool] | None):
        self.num_steps, self.preview_every = num_steps, preview_every
        self.callback, self.should_stop = callback, should_stop
        self.progress = progress
        self.recorded: list[torch.Tensor] = []
        self.stopped = False
        self.keys: tuple[str, ...] = LOSS_KEYS

    def __enter__(self) -> Monitor:
        self.bar = tqdm(total=self.num_steps, disable=not self.progress, desc="style transfer", leave=False)
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def after_step(self, img: torch.Tensor, values: dict[str, torch.Tensor]) -> None:
        self.keys = tuple(values)  # LOSS_KEYS, with "photorealism" when that term runs
        self.recorded.append(torch.stack([values[key].detach().reshape(()) for key in self.keys]))
        self.bar.update(1)
        step = len(self.recorded)
        done = step == self.num_steps
        if self.callback is not None and self.preview_every > 0 and (step % self.preview_every == 0 or done):
            image = img.detach().to("cpu", torch.float32, copy=True)  # a copy: the callback may keep it
            self.callback(step, image, dict(zip(self.keys, self.recorded[-1].tolist(), strict=True)))
        if self.should_stop is not None and not done and self.should_stop():
            self.stopped = True

    def history(self) -> dict[str, list[float]]:
        """The recorded loss values as Python floats, one list per key of :data:`LOSS_KEYS` (and
        ``"photorealism"`` when that term ran)."""
        rows = torch.stack(self.recorded).tolist() if self.recorded else []
        return {key: [row[i] for row in rows] for i, key in enumerate(self.keys)}


class _Stop(Exception):
    """Raised inside an L-BFGS closure to leave ``optimizer.step`` early."""


def run_lbfgs(img: torch.Tensor, loss_values: Callable[[], dict[str, torch.Tensor]], settings: TransferSettings,
              monitor: Monitor) -> None:
    """``num_steps`` loss evaluations of L-BFGS with a strong-Wolfe line search (as in PyTorch's
    neural style tutorial; Gatys et al. 2016 optimized with L-BFGS), each reported to ``monitor``
    as a step. ``img`` ends as the evaluated image with the lowest loss, then clamped to
    [-clamp, clamp] (once, not during the search).

    The run ends when the evaluations are used up, possibly inside a line search, where the image
    is a trial point whose loss was never computed: hence the evaluated image with the lowest loss.
    (L-BFGS reads every loss on the host anyway, so this costs no extra sync.)
    """
    evaluations = settings.num_steps
    if evaluations > 0:
        optimizer = torch.optim.LBFGS([img], lr=1.0, max_iter=evaluations, max_eval=evaluations, tolerance_grad=0.0,
                                      tolerance_change=0.0, history_size=50, line_search_fn="strong_wolfe")
        best: dict[str, Any] = {"loss": math.inf, "img": img.detach().clone(), "evaluations": 0}

        def closure():
            if best["evaluations"] >= evaluations or monitor.stopped:
                raise _Stop
            optimizer.zero_grad(set_to_none=True)
            values = loss_values()
            values["total"].backward()
            best["evaluations"] += 1
            monitor.after_step(img, values)
            loss = values["total"].item()
            if loss < best["loss"]:
                best["loss"] = loss
                best["img"].copy_(img.detach())
            return values["total"]

        try:
            optimizer.step(closure)
        except _Stop:
            pass
        with torch.no_grad():
            if best["evaluations"] > 0:
                img.copy_(best["img"])
    with torch.no_grad():
        img.clamp_(-settings.clamp, settings.clamp)
