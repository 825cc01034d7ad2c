"""CS231n's style transfer loop written plainly: the yardstick of ``style_transfer``'s tests and benchmark.

One copy, used by ``tests/test_transfer_speedups.py`` (the package's loop must equal it bit for bit)
and ``tools/benchmark.py`` (the package's loop is timed against it). It is written as a student
would write it after CS231n's assignment 3: every iteration runs all 13 layers of SqueezeNet on an
NCHW image (``nn.MaxPool2d``, no truncation), and the targets are computed once before the loop
with autograd on (nothing needs their gradient, but nothing says so). Same settings, seeds and
schedule as :func:`cs231n_style.style_transfer` with Adam: learning rate ``settings.learning_rate``,
then ``settings.decayed_learning_rate`` from step ``settings.decay_at``, pixels clamped to
``[-clamp, clamp]`` before each step until ``settings.clamp_until``.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from typing import NamedTuple

import torch

import cs231n_style as cs
from cs231n_style import _parts, transfer
from cs231n_style._pooling import network_for
from cs231n_style.settings import weights_for_size

__all__ = [
    "CS231N_LOSSES",
    "GUIDED_LOSSES",
    "GUIDED_SOURCE",
    "LossEvaluator",
    "PlainRun",
    "content_loss",
    "gram_matrix",
    "guided_gram_matrix",
    "guided_style_loss",
    "photorealism_loss",
    "straightforward_loop",
    "style_loss",
    "synchronize",
    "tv_loss",
]


# CS231n's solutions written plainly, as the tests' loss functions (``view`` needs contiguous NCHW
# maps, as students' code often does: the package's loop must hand them such maps).
def content_loss(content_weight, content_current, content_original):
    return content_weight * torch.sum((content_current - content_original) ** 2)


def gram_matrix(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.view(n, c, h * w)
    gram = torch.bmm(flat, flat.transpose(1, 2))
    return gram / (c * h * w) if normalize else gram


def style_loss(feats, style_layers, style_targets, style_weights):
    loss = 0.0
    for layer, target, weight in zip(style_layers, style_targets, style_weights, strict=True):
        loss = loss + weight * torch.sum((gram_matrix(feats[layer]) - target) ** 2)
    return loss


def tv_loss(img, tv_weight):
    return tv_weight * (torch.sum((img[:, :, 1:] - img[:, :, :-1]) ** 2)
                        + torch.sum((img[:, :, :, 1:] - img[:, :, :, :-1]) ** 2))


#: The four functions as one :class:`cs231n_style.LossFunctions`.
CS231N_LOSSES = cs.LossFunctions(content_loss, gram_matrix, style_loss, tv_loss)


# Notebook 05's pair (Gatys et al. 2017, Sec. 4), written plainly: the mask on both factors, each
# region's Gram matrix normalized by C * sum(mask ** 2), one target per region.
def guided_gram_matrix(features, masks, normalize=True):
    N, C, H, W = features.shape
    R = masks.shape[1]
    F = features.reshape(N, 1, C, H * W) * masks.reshape(N, R, 1, H * W)
    G = F @ F.transpose(-1, -2)
    if normalize:
        G = G / (C * (masks ** 2).sum(dim=(2, 3))).reshape(N, R, 1, 1)
    return G


def guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks):
    loss = 0
    for i, layer in enumerate(style_layers):
        G = guided_gram_matrix(feats[layer], content_masks[i])
        loss = loss + style_weights[i] * ((G - style_targets[i]) ** 2).sum()
    return loss


#: The six functions as one :class:`cs231n_style.LossFunctions`.
GUIDED_LOSSES = dataclasses.replace(CS231N_LOSSES, guided_gram_matrix=guided_gram_matrix,
                                    guided_style_loss=guided_style_loss)
def photorealism_loss(img, laplacian, weight):
    """Luan et al. (2017, Sec. 3.1): ``weight * sum_c V_c^T M V_c`` over the image's three channels."""
    channels = img.reshape(3, -1).T
    return weight * (channels * (laplacian @ channels)).sum()


#: The guided pair's source code, for tests that write it into a notebook or vary it.
GUIDED_SOURCE = inspect.getsource(guided_gram_matrix) + "\n\n" + inspect.getsource(guided_style_loss)


class PlainRun(NamedTuple):
    """What :func:`straightforward_loop` returns.

    Attributes:
        image: the result, a normalized float32 CPU tensor (1, 3, H, W), detached.
        totals: the total loss (content + style + TV) before each step, ``num_steps`` floats.
        seconds: wall time of the iterations only (targets excluded), in seconds.
        first_grad: the gradient of the first step with respect to the image, float32
            (1, 3, H, W) on the model's device; ``None`` if ``num_steps`` is 0.
        step_seconds: wall time from the start of the iterations to the end of each step
            (``num_steps`` floats; ``totals[t]`` is known at ``step_seconds[t]``).
    """

    image: torch.Tensor
    totals: list[float]
    seconds: float
    first_grad: torch.Tensor | None
    step_seconds: list[float] | None = None


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA, MPS); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def straightforward_loop(content_image, style_image, losses: cs.LossFunctions, model,
                         settings: cs.TransferSettings, threads: int | None = None) -> PlainRun:
    """Run CS231n's loop plainly (see the module docstring).

    Args:
        content_image, style_image: sample names, paths or images (see ``cs.load_image``).
        losses: the four loss functions (:class:`cs231n_style.LossFunctions`).
        model: SqueezeNet ``features`` from ``cs.load_squeezenet``; its device is used.
        settings: Adam settings with ``init="content"`` (the only ones supported).
        threads: if given, run with this many CPU threads (restored afterwards).

    Returns:
        A :class:`PlainRun`.

    Raises:
        ValueError: if ``settings`` asks for L-BFGS or a noise initialization.
    """
    if settings.optimizer != "adam" or settings.init != "content":
        raise ValueError("the plain loop runs Adam from the content image only")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        device = next(model.parameters()).device
        content_img = cs.preprocess(content_image, settings.image_size).to(device)
        content_target = cs.extract_features(content_img, model)[settings.content_layer].clone()
        style_feats = cs.extract_features(cs.preprocess(style_image, settings.style_size).to(device), model)
        style_targets = [losses.gram_matrix(style_feats[i].clone()) for i in settings.style_layers]

        img = content_img.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([img], lr=settings.learning_rate)
        totals, first_grad, step_seconds = [], None, []
        synchronize(device)
        start = time.perf_counter()
        for t in range(settings.num_steps):
            if t < settings.clamp_until:
                img.data.clamp_(-settings.clamp, settings.clamp)
            optimizer.zero_grad()
            feats = cs.extract_features(img, model)
            loss = (losses.content_loss(settings.content_weight, feats[settings.content_layer], content_target)
                    + losses.style_loss(feats, list(settings.style_layers), style_targets,
                                        list(settings.style_weights))
                    + losses.tv_loss(img, settings.tv_weight))
            loss.backward()
            if t == settings.decay_at:
                optimizer = torch.optim.Adam([img], lr=settings.decayed_learning_rate)
            if first_grad is None:
                first_grad = img.grad.clone()
            optimizer.step()
            totals.append(loss.detach())
            step_seconds.append(time.perf_counter() - start)  # no sync: on a GPU, queued work is not counted
        synchronize(device)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(old_threads)
    return PlainRun(img.detach().to("cpu", torch.float32), torch.stack(totals).tolist() if totals else [],
                    seconds, first_grad, step_seconds)


class LossEvaluator:
    """The yardstick of the fast mode's tests and of the benchmark: the loss values (content, style,
    TV, total) of an image, for one content image, style image and settings, computed as the loop
    computes them (``cs231n_style.transfer.loss_values``, float32, the given loss functions).

    Args:
        content_image, style_image: as in :func:`cs231n_style.style_transfer` (``style_image``
            may be ``None``).
        losses: :class:`cs231n_style.LossFunctions` (the student's or these plain ones).
        model: SqueezeNet ``features``, float32, on the device to evaluate on.
        settings: :class:`cs231n_style.TransferSettings` (``image_size``, ``style_size``, layers
            and weights are used; with ``weights_size`` > 0, the content and TV weights scaled for
            ``image_size`` as the run scales them).

    Calling it with a normalized image (1, 3, H, W) of the content image's size (any float dtype
    and device) returns ``{"content", "style", "tv", "total"}`` as Python floats (an unused term is
    0.0): what a ``speed="fast"`` run reports as its ``final_loss``. Raises what
    :func:`cs231n_style.style_transfer` raises for bad arguments.
    """

    def __init__(self, content_image, style_image, losses: cs.LossFunctions, model, settings: cs.TransferSettings):
        self.used = _parts.losses_in_use(losses, settings, style_image, model)
        self.network = network_for(model, self.used.deepest_layer)
        self.device = next(model.parameters()).device
        images = _parts.load_images(content_image, style_image, None, settings, self.device)
        self.losses = losses
        self.settings = weights_for_size(settings, settings.weights_size)
        self.targets = _parts.targets(images, self.network, losses, settings, self.used)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> dict[str, float]:
        img = image.detach().to(self.device, torch.float32).contiguous()
        values = transfer.loss_values(img, self.network, self.losses, self.settings, self.used, self.targets)
        return {key: float(value) for key, value in values.items()}
