"""The style transfer loop, given to students: they write the losses, not the loop.

Read it top-down after notebook 04. Gatys et al. (2016, Sec. 2.3) synthesize an image by gradient
descent on its pixels so that its feature maps match those of the content image and its Gram
matrices match those of the style image. :func:`style_transfer` does that in four steps: check
the arguments, compute the targets, start from the content image (or noise), and run Adam on the
pixels, as CS231n's assignment 3 does: learning rate 3.0, then 0.1 from step 180, pixels
clamped to [-1.5, 1.5] until step 190. :func:`loss_values` is the loss it minimizes, made of the
functions the students wrote; the Adam loop is in :func:`optimize`.

Coarse to fine (Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer", CVPR 2017,
Sec. 6) and the fast mode are the same loop run in stages (``cs231n_style.settings.plan_stages``):
each stage starts from the previous one's result, upsampled. The other controls of that paper
(several style images blended, a style per region, the photo's colours kept) change the images and
the targets, not the loop: they are options, off by default, handled in ``cs231n_style._parts``
with the rest of the bookkeeping (progress bar, previews, and the loop of the L-BFGS optimizer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from . import _parts
from ._pooling import network_for
from .features import extract_features
from .images import deprocess, to_pixels
from .settings import EXAMPLE_SETTINGS, TransferSettings, cut_while_grading, plan_stages

__all__ = ["EXAMPLE_SETTINGS", "LossFunctions", "TransferResult", "TransferSettings", "style_transfer"]


@dataclass(frozen=True)
class LossFunctions:
    """The functions students write: CS231n's four, and the guided pair for spatial control (notebook 05).

    * ``content_loss(content_weight, content_current, content_original) -> scalar tensor``
    * ``gram_matrix(features, normalize=True) -> (N, C, C) tensor``
    * ``style_loss(feats, style_layers, style_targets, style_weights) -> scalar tensor``
    * ``tv_loss(img, tv_weight) -> scalar tensor``
    * ``guided_gram_matrix(features, masks, normalize=True) -> (N, R, C, C) tensor`` and
      ``guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks) ->
      scalar tensor`` (notebook 05; Gatys et al., CVPR 2017, Sec. 4; UMich EECS 498 A6).
    * ``photorealism_loss(img, laplacian, weight) -> scalar tensor`` (notebook 06; Luan et al.,
      CVPR 2017, Sec. 3.1): ``img`` the image's pixels in [0, 1], ``laplacian`` the content photo's
      Matting Laplacian (:func:`cs231n_style.photorealism.matting_laplacian`).

    A function may be left out (``None``) when its term is not used: the content loss when
    ``content_weight`` is 0, the Gram matrix and style loss when there is no style image, the TV
    loss when ``tv_weight`` is 0. So texture synthesis runs before the content loss is written.
    The guided pair is needed only with ``style_transfer(..., content_masks=...)``, which then
    uses ``guided_style_loss`` instead of ``style_loss`` (the loop calls ``guided_style_loss``, which
    calls the student's ``guided_gram_matrix``; the targets are made with ``gram_matrix``).
    """

    content_loss: Callable | None = None
    gram_matrix: Callable | None = None
    style_loss: Callable | None = None
    tv_loss: Callable | None = None
    guided_gram_matrix: Callable | None = None
    guided_style_loss: Callable | None = None
    photorealism_loss: Callable | None = None


@dataclass
class TransferResult:
    """What :func:`style_transfer` returns.

    Attributes:
        image: the result, a normalized float32 tensor (1, 3, H, W) on the CPU, detached, at
            ``settings.image_size``.
        history: per step, the loss terms as Python floats: keys ``"content"``, ``"style"``,
            ``"tv"`` and ``"total"`` (and ``"photorealism"`` when that term runs), each a list of
            one float per step (``num_steps`` per stage; ``settings.total_steps`` in all), the
            stages one after the other (fewer if stopped).
            A coarse stage's losses are those at its size: not comparable with the full size's;
            with ``weights_size`` > 0, each stage's with its scaled content and TV weights.
        settings: the :class:`TransferSettings` used.
        seconds: wall-clock time of the run (images, targets and optimization), in seconds.
        stopped_early: ``True`` if ``should_stop`` ended the run before its last step.
        final_loss: fast mode only (``None`` otherwise): the loss values of ``image`` (``content``,
            ``style``, ``tv``, ``total``, floats) at full size, with the full-size stage's weights:
            the fast mode's history starts at the coarse size, so its last entry is not that.
        stages: the shorter side, in pixels, of each optimization stage in order:
            ``(image_size,)``, or ``(coarse_size, image_size)`` for coarse to fine (the fast
            mode's: ``(image_size // 2, image_size)`` from 192 px up), even if stopped early.
    """

    image: torch.Tensor
    history: dict[str, list[float]]
    settings: TransferSettings
    seconds: float
    stopped_early: bool = False
    final_loss: dict[str, float] | None = None
    stages: tuple[int, ...] = ()

    def to_pil(self) -> Image.Image:
        """Return the result as a displayable RGB ``PIL.Image`` (pixels clamped to [0, 1])."""
        return deprocess(self.image)



def style_transfer(
    content_image,
    style_image,
    losses: LossFunctions,
    model: nn.Sequential,
    settings: TransferSettings = TransferSettings(),
    *,
    content_masks: torch.Tensor | np.ndarray | None = None,
    progress: bool = True,
    preview_every: int = 0,
    callback: Callable[[int, torch.Tensor, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TransferResult:
    """Synthesize an image with the content of one image and the style of another (or of several).

    Minimizes ``content_loss + style_loss + tv_loss`` over the pixels of the image (Gatys et al.,
    2016, Sec. 2.3 and Eq. 7; total variation as in Johnson et al., 2016), with the loss
    functions given in ``losses``. With the default settings, one style image and no masks, this
    is CS231n's loop, bit for bit.

    Notebook 05's options (skip them on a first read; each is off by default) come from Gatys et
    al., "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017): several style images
    blended, a style per region (``content_masks``), the photo's colours kept
    (``preserve_colors``), coarse to fine (``coarse_size``); ``cs231n_style._parts``' docstring
    says how each works. ``weights_size`` makes the content and TV weights size-aware (the command
    line and the panel use 192): each stage multiplies them by ``(weights_size / size) ** 2``
    (:func:`cs231n_style.settings.weights_for_size`), so a 384 px result is as stylized as a 192 px one.

    Args:
        content_image: anything :func:`cs231n_style.load_image` accepts (path, sample name,
            ``PIL.Image``, array). Resized so its shorter side is ``settings.image_size``.
        style_image: the same kinds, resized to ``settings.style_size``; or a list or tuple of
            them (blended; or one per region with ``content_masks``); or ``None`` for no style
            term (feature inversion).
        losses: the loss functions (:class:`LossFunctions`).
        model: the frozen SqueezeNet ``features`` from :func:`cs231n_style.load_squeezenet`;
            the computation runs on its device.
        settings: a :class:`TransferSettings`; defaults are CS231n's first example run.
        content_masks: ``None``, or one mask per region: a float tensor or array (1, R, H, W) or
            (R, H, W), values in [0, 1], every region non-empty, any size (resized bilinearly to
            the content image), e.g. from :func:`cs231n_style.split_masks`, ``threshold_masks``
            or ``load_masks``. Needs ``losses.guided_style_loss`` and R style images in a list
            (one image not in a list: the same style in every region).
        progress: show a tqdm progress bar.
        preview_every: if > 0, call ``callback`` every this many steps (and after the last one).
        callback: ``callback(step, image, losses)`` with ``image`` a normalized CPU float32
            tensor (1, 3, H, W), a copy (it may be kept) of the image being optimized (at
            ``coarse_size`` in a coarse stage, grey with ``preserve_colors="luminance"``), ``step``
            counted over all stages, and ``losses`` a dict of floats (``content``, ``style``,
            ``tv``, ``total``).
        should_stop: polled every step; return ``True`` to end the run early (e.g. a Stop button).

    Returns:
        A :class:`TransferResult`.

    Raises:
        FileNotFoundError: if an image path does not exist.
        ValueError: if the style layers reach beyond the model, a loss function these settings need
            is missing, an image cannot be read, the style images are not as many as the masks'
            regions or the blend weights, the masks are not valid, or ``speed="fast"`` is asked
            for with blending, masks, colour control or coarse to fine (use ``speed="exact"``).
        TypeError: if ``losses`` is not a :class:`LossFunctions` or ``settings`` not a
            :class:`TransferSettings`.
    """
    # 1. Check the arguments; decide which loss terms run and how deep the network must go.
    if not isinstance(losses, LossFunctions):
        raise TypeError("losses must be a LossFunctions(content_loss=..., gram_matrix=..., style_loss=..., "
                        "tv_loss=...).")
    settings = cut_while_grading(settings)  # fewer steps only while nbgrader autogrades (its 30 s cell limit)
    # used: which terms run (a weight of 0 or no style image turns one off) and the deepest layer they read
    used = _parts.losses_in_use(losses, settings, style_image, model, content_masks)
    network = network_for(model, used.deepest_layer)  # the model's layers up to the deepest one a loss reads
    device = next(model.parameters()).device
    stages = plan_stages(settings)  # by default one stage; coarse to fine two (each its own size, steps, rates)
    start = time.perf_counter()
    images = _parts.load_images(content_image, style_image, content_masks, stages[0].settings, device)
    # monitor: records each step's losses (the history), shows progress, and asks should_stop
    monitor = _parts.Monitor(settings.total_steps, progress, preview_every, callback, should_stop)

    img = previous_content = None
    with monitor:
        for stage_index, stage in enumerate(stages):
            if stage_index > 0:  # the next stage's images, at its size
                previous_content = images.content
                images = _parts.load_images(content_image, style_image, content_masks, stage.settings, device)
            # 2. The targets, once per stage: the content image's feature maps, the style image's Gram
            #    matrices (made with your gram_matrix).
            targets = _parts.targets(images, network, losses, stage.settings, used)
            # 3. The image to optimize: the content image (or noise), or the last stage's result upsampled.
            img = _parts.initial_image(images.content, stage, previous=img, previous_content=previous_content)
            # 4. Minimize the loss over its pixels.
            optimize(img, network, losses, stage.settings, used, targets, monitor)
            if monitor.stopped:
                break
    return _result(img, stages, stage_index, images, start, monitor, content_image, style_image, content_masks,
                   network, losses, settings, used, targets)


def loss_values(img: torch.Tensor, network: nn.Sequential, losses: LossFunctions, settings: TransferSettings,
                used: _parts.LossesInUse, targets: _parts.Targets) -> dict[str, torch.Tensor]:
    """The loss being minimized, term by term, computed with the students' functions: Gatys et
    al.'s ``content + style`` (2016, Eq. 7) plus the total variation loss (Johnson et al., 2016), and
    with ``photorealism_weight`` > 0 Luan et al.'s photorealism regularization (2017, Sec. 3.1).

    Args:
        img: the normalized image being optimized, float32 (1, 3, H, W).
        network: the layers up to ``used.deepest_layer``; losses, settings: as in :func:`style_transfer`.
        used: which terms run; a term that does not run is 0.
        targets: the content image's feature maps and the style targets (``_parts.targets``).

    Returns:
        ``{"content", "style", "tv", "total"}`` (and ``"photorealism"`` when it runs): scalar
        tensors on ``img``'s device, with graphs.
    """
    feats = extract_features(img, network, up_to=used.deepest_layer)
    zero = torch.zeros((), device=img.device)
    content = zero
    if used.content:
        content = losses.content_loss(settings.content_weight, feats[settings.content_layer], targets.content)
    style = zero
    if used.style and targets.masks is None:
        style = losses.style_loss(feats, list(settings.style_layers), targets.style, list(settings.style_weights))
    elif used.style:  # spatial control: a style per region (Gatys et al., 2017, Sec. 4)
        style = losses.guided_style_loss(feats, list(settings.style_layers), targets.style,
                                         list(settings.style_weights), targets.masks)
    tv = losses.tv_loss(img, settings.tv_weight) if used.tv else zero
    if not used.photorealism:
        return {"content": content, "style": style, "tv": tv, "total": content + style + tv}
    # Luan et al. (2017): the output's pixels, locally an affine recolouring of the photo
    photo = losses.photorealism_loss(to_pixels(img), targets.laplacian, settings.photorealism_weight)
    return {"content": content, "style": style, "tv": tv, "photorealism": photo,
            "total": content + style + tv + photo}


def optimize(img: torch.Tensor, network: nn.Sequential, losses: LossFunctions, settings: TransferSettings,
             used: _parts.LossesInUse, targets: _parts.Targets, monitor: _parts.Monitor) -> None:
    """Minimize the total loss (:func:`loss_values`) over the pixels of ``img`` (a leaf tensor,
    changed in place) with CS231n's schedule: Adam at ``learning_rate``; a fresh Adam at
    ``decayed_learning_rate`` from step ``decay_at`` on (CS231n re-creates the optimizer); pixels
    clamped to [-clamp, clamp] before each step numbered below ``clamp_until``. ``optimizer="lbfgs"``: L-BFGS
    instead (``_parts.run_lbfgs``). Each step's loss values go to ``monitor``, which may stop the run."""
    if settings.optimizer == "lbfgs":
        _parts.run_lbfgs(img, lambda: loss_values(img, network, losses, settings, used, targets), settings, monitor)
        return
    optimizer = torch.optim.Adam([img], lr=settings.learning_rate)
    for step in range(settings.num_steps):
        if step < settings.clamp_until:
            with torch.no_grad():
                img.clamp_(-settings.clamp, settings.clamp)
        optimizer.zero_grad(set_to_none=True)
        values = loss_values(img, network, losses, settings, used, targets)
        values["total"].backward()
        if step == settings.decay_at:  # the new Adam takes this step, with the gradient just computed
            optimizer = torch.optim.Adam([img], lr=settings.decayed_learning_rate)
        optimizer.step()
        monitor.after_step(img, values)
        if monitor.stopped:
            return


# --- Bookkeeping: the result of a run (you can skip this) ------------------------------------------

def _result(img, stages, stage_index, images, start, monitor, content_image, style_image, content_masks, network,
            losses, settings, used, targets) -> TransferResult:
    """The :class:`TransferResult` of a run that ended in stage ``stage_index``: a run stopped in its
    coarse stage returns the image the full-size stage would have started from; the fast mode reports
    the result's own loss values (its history starts at the coarse size); after a luminance-only
    transfer the photo's colours are put back (Gatys et al., 2017, Sec. 5.1)."""
    last = stages[-1]
    if stage_index < len(stages) - 1:  # stopped in the coarse stage
        previous_content = images.content
        images = _parts.load_images(content_image, style_image, content_masks, last.settings, images.content.device)
        img = _parts.initial_image(images.content, last, previous=img, previous_content=previous_content)
        targets = None
    final_loss = None
    if settings.speed == "fast":
        if targets is None:
            targets = _parts.targets(images, network, losses, last.settings, used)
        with torch.no_grad():
            values = loss_values(img.detach(), network, losses, last.settings, used, targets)
        final_loss = {key: float(value) for key, value in values.items()}
    image = _parts.with_original_colors(img.detach().to("cpu", torch.float32).contiguous(), content_image, settings)
    return TransferResult(image=image, history=monitor.history(), settings=settings,
                          seconds=time.perf_counter() - start, stopped_early=monitor.stopped,
                          final_loss=final_loss, stages=tuple(stage.settings.image_size for stage in stages))
