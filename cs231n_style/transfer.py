"""The style transfer optimization loop, given to students: they write the losses, not the loop.

Gatys et al. (2016, Sec. 2.3) synthesize an image by gradient descent on its pixels so that its
feature maps match those of the content image and its Gram matrices match those of the style
image. This module follows CS231n assignment 3's version of that loop: Adam on the pixels of a
normalized image, learning rate 3.0 then 0.1 from step 180, pixels clamped to [-1.5, 1.5] until
step 190. L-BFGS, the optimizer of the paper and of PyTorch's tutorial, is an option.

The loss functions are arguments, so the code that runs is the student's own.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from .features import extract_features
from .images import deprocess, preprocess

__all__ = ["TransferSettings", "TransferResult", "LossFunctions", "EXAMPLE_SETTINGS", "style_transfer"]


def _integer(value) -> int:
    """``value`` as an int if it is a whole number (1, 4.0, np.int64(6)); else ValueError."""
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)


def _option(default, help: str, **choices):
    return field(default=default, metadata={"help": help, **choices})


@dataclass(frozen=True)
class TransferSettings:
    """Every knob of :func:`style_transfer`, with CS231n's first example run as the defaults.

    Each field's ``metadata["help"]`` is the text the widget panel and the docs show.
    """

    image_size: int = _option(192, "Shorter side of the content image and of the result, in pixels.")
    style_size: int = _option(512, "Shorter side the style image is resized to, in pixels.")
    content_layer: int = _option(3, "Index of the SqueezeNet layer whose feature maps define content.")
    content_weight: float = _option(5e-2, "Weight of the content loss.")
    style_layers: tuple[int, ...] = _option((1, 4, 6, 7), "Indices of the layers whose Gram matrices define style.")
    style_weights: tuple[float, ...] = _option((2e4, 500.0, 12.0, 1.0), "Weight of the style loss at each style layer.")
    tv_weight: float = _option(5e-2, "Weight of the total variation loss (smoothness).")
    init: str = _option("content", "Start from the content image or from uniform noise.", choices=("content", "noise"))
    num_steps: int = _option(200, "Number of optimization steps.")
    optimizer: str = _option("adam", "Adam with CS231n's schedule, or L-BFGS as in Gatys et al.", choices=("adam", "lbfgs"))
    learning_rate: float = _option(3.0, "Adam's learning rate at the start.")
    decayed_learning_rate: float = _option(0.1, "Adam's learning rate from step `decay_at` on.")
    decay_at: int = _option(180, "Step at which Adam's learning rate drops (CS231n: 180 of 200).")
    clamp: float = _option(1.5, "Pixels are clamped to [-clamp, clamp] in normalized space ...")
    clamp_until: int = _option(190, "... before each step until this one (CS231n: 190 of 200).")
    seed: int = _option(0, "Seed of the noise initialization.")

    def __post_init__(self):
        problems = []
        for name in ("style_layers", "style_weights"):
            if isinstance(getattr(self, name), (str, bytes)):
                problems.append(f"{name} must be a sequence of numbers such as (1, 4, 6, 7), not a string")
        if not problems:
            try:
                object.__setattr__(self, "style_layers", tuple(_integer(i) for i in self.style_layers))
                object.__setattr__(self, "style_weights", tuple(float(w) for w in self.style_weights))
            except (TypeError, ValueError) as error:
                problems.append(f"style layers must be integers and style weights numbers ({error})")
        if problems:
            raise ValueError("Invalid style transfer settings: " + "; ".join(problems) + ".")
        if len(self.style_layers) != len(self.style_weights):
            problems.append(f"{len(self.style_layers)} style layers but {len(self.style_weights)} style weights")
        for name, value in (("content_layer", self.content_layer), *(("style layer", i) for i in self.style_layers)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                problems.append(f"{name} must be a layer index >= 0 (see cs.describe_layers), not {value!r}")
        if self.init not in ("content", "noise"):
            problems.append(f"init must be 'content' or 'noise', not {self.init!r}")
        if self.optimizer not in ("adam", "lbfgs"):
            problems.append(f"optimizer must be 'adam' or 'lbfgs', not {self.optimizer!r}")
        for name in ("image_size", "style_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 32:
                problems.append(f"{name} must be a whole number of pixels >= 32, not {value!r}")
        for name in ("num_steps", "decay_at", "clamp_until", "seed"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                problems.append(f"{name} must be a whole number >= 0, not {value!r}")
        for name in ("content_weight", "tv_weight"):
            if not _finite(getattr(self, name)) or getattr(self, name) < 0:
                problems.append(f"{name} must be a finite number >= 0, not {getattr(self, name)}")
        if any(not math.isfinite(w) or w < 0 for w in self.style_weights):
            problems.append(f"style weights must be finite numbers >= 0, not {self.style_weights}")
        for name in ("learning_rate", "decayed_learning_rate", "clamp"):
            if not _finite(getattr(self, name)) or getattr(self, name) <= 0:
                problems.append(f"{name} must be a finite number > 0, not {getattr(self, name)}")
        if problems:
            raise ValueError("Invalid style transfer settings: " + "; ".join(problems) + ".")

    def replace(self, **changes) -> TransferSettings:
        """Return a copy with some fields changed (``settings.replace(tv_weight=0.0)``)."""
        return dataclasses.replace(self, **changes)

    @property
    def deepest_layer(self) -> int:
        """Index of the deepest layer any loss needs: the network is not run beyond it."""
        return max(self.content_layer, *self.style_layers) if self.style_layers else self.content_layer


#: CS231n's three example weightings, each paired with a bundled content and style image:
#: name -> (content image, style image, settings). The first is ``TransferSettings()``.
EXAMPLE_SETTINGS = {
    "astronaut_dots": ("astronaut", "dots", TransferSettings()),
    "coffee_mosaic": ("coffee", "mosaic", TransferSettings(
        content_weight=3e-2, style_weights=(2e5, 800.0, 12.0, 1.0), tv_weight=2e-2)),
    "cat_swirls": ("cat", "swirls", TransferSettings(
        content_weight=6e-2, style_weights=(3e5, 1e3, 15.0, 3.0), tv_weight=2e-2)),
}


@dataclass(frozen=True)
class LossFunctions:
    """The four functions students write, with CS231n's signatures.

    * ``content_loss(content_weight, content_current, content_original) -> scalar tensor``
    * ``gram_matrix(features, normalize=True) -> (N, C, C) tensor``
    * ``style_loss(feats, style_layers, style_targets, style_weights) -> scalar tensor``
    * ``tv_loss(img, tv_weight) -> scalar tensor``

    A function may be left out (``None``) when its term is not used: the content loss when
    ``content_weight`` is 0, the Gram matrix and style loss when there is no style image, the TV
    loss when ``tv_weight`` is 0. So texture synthesis runs before the content loss is written.
    """

    content_loss: Callable | None = None
    gram_matrix: Callable | None = None
    style_loss: Callable | None = None
    tv_loss: Callable | None = None


@dataclass
class TransferResult:
    """What :func:`style_transfer` returns.

    Attributes:
        image: the result, a normalized float32 tensor (1, 3, H, W) on the CPU, detached.
        history: per step, the loss terms as Python floats: keys ``"content"``, ``"style"``,
            ``"tv"`` and ``"total"``, each a list of ``num_steps`` floats (fewer if stopped).
        settings: the :class:`TransferSettings` used.
        seconds: wall-clock time of the optimization, in seconds.
        stopped_early: ``True`` if ``should_stop`` ended the run before ``num_steps``.
    """

    image: torch.Tensor
    history: dict[str, list[float]]
    settings: TransferSettings
    seconds: float
    stopped_early: bool = False

    def to_pil(self) -> Image.Image:
        """Return the result as a displayable RGB ``PIL.Image`` (pixels clamped to [0, 1])."""
        return deprocess(self.image)


class _Stop(Exception):
    """Raised inside an L-BFGS closure to leave ``optimizer.step`` early."""


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# --- Speed ---------------------------------------------------------------------------------------
#
# (Not part of the lesson: you can skip this section.)
#
# The loop computes exactly what CS231n's loop computes, bit for bit (the same image), with less
# work: it runs the network only up to the deepest layer a loss reads, computes the targets once
# without a graph, and never copies a loss value to the host inside the loop. On CPUs one more
# thing is free: PyTorch's max-pooling kernel for plain NCHW tensors is slow (measured on a 2-core
# CPU: 2.5 ms for SqueezeNet's first pooling layer at 192 x 288 pixels, against 0.15 ms for the
# same tensor in channels-last layout), so the pooling layers use the channels-last kernel for
# their forward pass, with identical results (see _MaxPool2dChannelsLastForward).
#
# Running the whole network in channels-last (NHWC) layout was tried and dropped: oneDNN's NHWC
# convolutions are faster, but the students' losses need NCHW maps, and copying the five maps
# they read back and forth cost what the convolutions gained (no faster in the end); and those
# convolutions round differently, which CS231n's learning rate of 3.0 amplifies into a visibly
# different final image. docs/benchmark.md has the measurements; tools/benchmark.py makes them.


class _MaxPool2dChannelsLastForward(torch.autograd.Function):
    """2-D max-pooling of an NCHW tensor whose forward pass runs PyTorch's channels-last kernel.

    The results are those of :class:`torch.nn.MaxPool2d`, bit for bit. The forward pass picks,
    in each window, the largest value (taking a maximum involves no rounding) and records where
    it was: the "argmax index" ``h * W + w`` within its channel, the same number whatever the
    memory layout. Both of PyTorch's CPU kernels scan a window row by row and keep the first
    maximum, so they record the same index even when several values tie (tests/test_transfer_speedups.py
    checks this). The backward pass sends each gradient to the recorded index; it runs PyTorch's
    own NCHW ``max_pool2d_with_indices_backward`` with those indices, as ``nn.MaxPool2d`` does.

    Args (of ``apply``):
        x: float tensor (N, C, H, W), contiguous (NCHW).
        kernel_size, stride, padding, dilation: lists of two ints, as in :class:`nn.MaxPool2d`.
        ceil_mode: bool, as in :class:`nn.MaxPool2d`.

    Returns:
        The pooled tensor (N, C, H_out, W_out), contiguous NCHW, same dtype and device as ``x``.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        args = (kernel_size, stride, padding, dilation, ceil_mode)
        pooled, indices = torch.ops.aten.max_pool2d_with_indices(x.contiguous(memory_format=torch.channels_last), *args)
        indices = indices.contiguous()
        ctx.save_for_backward(x, indices)
        ctx.args = args
        ctx.mark_non_differentiable(indices)
        return pooled.contiguous()  # NCHW again, so the next convolution runs its NCHW kernel

    @staticmethod
    def backward(ctx, grad):
        x, indices = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, *ctx.args, indices), None, None, None, None, None


class _MaxPool2dFast(nn.MaxPool2d):
    """:class:`nn.MaxPool2d` with the same results, faster on CPUs for NCHW tensors (see above)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or not x.is_contiguous() or self.return_indices:
            return super().forward(x)
        stride = self.stride if self.stride is not None else self.kernel_size
        return _MaxPool2dChannelsLastForward.apply(x, _two(self.kernel_size), _two(stride), _two(self.padding),
                                                   _two(self.dilation), self.ceil_mode)


def _two(value) -> list[int]:
    """A pooling argument (``3`` or ``(3, 3)``) as the list of two ints aten expects."""
    return list(value) if isinstance(value, (tuple, list)) else [value, value]


def _network_for(model: nn.Sequential, last: int) -> nn.Sequential:
    """Return ``model[: last + 1]``, the layers the losses need, with its max-pooling layers
    replaced by :class:`_MaxPool2dFast`. The other layers are shared, not copied; the caller's
    model is untouched."""
    return nn.Sequential(*(
        _MaxPool2dFast(layer.kernel_size, layer.stride, layer.padding, layer.dilation, ceil_mode=layer.ceil_mode)
        if type(layer) is nn.MaxPool2d else layer for layer in model[: last + 1]))


def style_transfer(
    content_image,
    style_image,
    losses: LossFunctions,
    model: nn.Sequential,
    settings: TransferSettings = TransferSettings(),
    *,
    progress: bool = True,
    preview_every: int = 0,
    callback: Callable[[int, torch.Tensor, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TransferResult:
    """Synthesize an image with the content of one image and the style of another.

    Minimizes ``content_loss + style_loss + tv_loss`` over the pixels of the image (Gatys et al.,
    2016, Sec. 2.3 and Eq. 7; total variation as in Johnson et al., 2016), with the loss
    functions given in ``losses``.

    Args:
        content_image: anything :func:`cs231n_style.load_image` accepts (path, sample name,
            ``PIL.Image``, array). Resized so its shorter side is ``settings.image_size``.
        style_image: the same kinds, resized to ``settings.style_size``; or ``None`` for no style
            term (feature inversion).
        losses: the four loss functions (:class:`LossFunctions`).
        model: the frozen SqueezeNet ``features`` from :func:`cs231n_style.load_squeezenet`;
            the computation runs on its device.
        settings: a :class:`TransferSettings`; defaults are CS231n's first example run.
        progress: show a tqdm progress bar.
        preview_every: if > 0, call ``callback`` every this many steps (and after the last one).
        callback: ``callback(step, image, losses)`` with ``image`` a detached normalized CPU
            tensor (1, 3, H, W) and ``losses`` a dict of floats (``content``, ``style``, ``tv``,
            ``total``).
        should_stop: polled every step; return ``True`` to end the run early (e.g. a Stop button).

    Returns:
        A :class:`TransferResult`.

    Raises:
        FileNotFoundError: if an image path does not exist.
        ValueError: if the style layers reach beyond the model, a loss function these settings need
            is missing, or an image cannot be read.
        TypeError: if ``losses`` is not a :class:`LossFunctions` or ``settings`` not a
            :class:`TransferSettings`.
    """
    if not isinstance(losses, LossFunctions):
        raise TypeError("losses must be a LossFunctions(content_loss=..., gram_matrix=..., style_loss=..., tv_loss=...).")
    if not isinstance(settings, TransferSettings):
        hint = "TransferSettings(**settings)" if isinstance(settings, dict) else "TransferSettings(num_steps=100, ...)"
        raise TypeError(f"settings must be a TransferSettings, not {type(settings).__name__}: pass {hint}.")
    use_content = settings.content_weight > 0
    use_style = style_image is not None and len(settings.style_layers) > 0
    use_tv = settings.tv_weight > 0
    needed = {"content_loss": use_content, "gram_matrix": use_style, "style_loss": use_style, "tv_loss": use_tv}
    missing = [name for name, used in needed.items() if used and getattr(losses, name) is None]
    if missing:
        raise ValueError(f"These settings need {', '.join(missing)}: pass it in LossFunctions(...), "
                         "or set its weight to 0 (content_weight, tv_weight) / style_image=None.")
    if not (use_content or use_style or use_tv):
        raise ValueError("Nothing to optimize: content_weight and tv_weight are 0 and there is no style "
                         "term (style_image=None or no style layers).")
    too_deep = [f"content_layer {settings.content_layer}"] if settings.content_layer >= len(model) else []
    too_deep += [f"style layer {i}" for i in settings.style_layers if i >= len(model)]
    if too_deep:
        raise ValueError(f"{', '.join(too_deep)}: no such layer, the model has layers 0-{len(model) - 1} "
                         "(cs.describe_layers(model) lists them).")
    device = _model_device(model)
    last = settings.deepest_layer if use_style else settings.content_layer
    network = _network_for(model, last)

    # The image being optimized must be plain NCHW for students' tv_loss (``view``) and for L-BFGS
    # (``grad.view(-1)``); preprocess returns it so, and .contiguous() keeps that true for any device.
    content = preprocess(content_image, settings.image_size).to(device).contiguous()
    with torch.no_grad():  # targets are constants: no graph, computed once
        content_target = None
        if use_content:
            content_target = extract_features(content, network, up_to=settings.content_layer)[settings.content_layer]
        style_targets = []
        if use_style:
            style = preprocess(style_image, settings.style_size).to(device)
            style_feats = extract_features(style, network, up_to=last)
            style_targets = [losses.gram_matrix(style_feats[i]) for i in settings.style_layers]
            del style_feats

    if settings.init == "content":
        img = content.clone()
    else:
        generator = torch.Generator().manual_seed(settings.seed)  # CPU generator: same noise on every device
        img = torch.rand(content.shape, generator=generator).to(device)
    img.requires_grad_(True)

    def loss_terms() -> dict[str, torch.Tensor]:
        feats = extract_features(img, network, up_to=last)
        zero = torch.zeros((), device=device)
        terms = {
            "content": losses.content_loss(settings.content_weight, feats[settings.content_layer], content_target)
            if use_content else zero,
            "style": losses.style_loss(feats, list(settings.style_layers), style_targets, list(settings.style_weights))
            if use_style else zero,
            "tv": losses.tv_loss(img, settings.tv_weight) if use_tv else zero,
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms

    recorded: list[torch.Tensor] = []  # losses stay on the device: no host sync per step
    bar = tqdm(total=settings.num_steps, disable=not progress, desc="style transfer", leave=False)
    stopped = False

    def after_step(step: int, terms: dict[str, torch.Tensor]) -> None:
        nonlocal stopped
        recorded.append(torch.stack([terms[k].detach().reshape(()) for k in ("content", "style", "tv", "total")]))
        bar.update(1)
        done = step + 1 == settings.num_steps
        if callback is not None and preview_every > 0 and ((step + 1) % preview_every == 0 or done):
            values = dict(zip(("content", "style", "tv", "total"), recorded[-1].tolist()))
            callback(step + 1, img.detach().to("cpu", torch.float32), values)
        if should_stop is not None and not done and should_stop():
            stopped = True

    start = time.perf_counter()
    try:
        if settings.optimizer == "adam":
            _run_adam(img, loss_terms, settings, after_step, lambda: stopped)
        else:
            _run_lbfgs(img, loss_terms, settings, after_step, lambda: stopped)
    finally:
        bar.close()
    seconds = time.perf_counter() - start

    values = torch.stack(recorded).tolist() if recorded else []
    history = {key: [row[i] for row in values] for i, key in enumerate(("content", "style", "tv", "total"))}
    return TransferResult(image=img.detach().to("cpu", torch.float32), history=history, settings=settings,
                          seconds=seconds, stopped_early=stopped)


def _run_adam(img, loss_terms, settings: TransferSettings, after_step, stopped) -> None:
    """CS231n's schedule: Adam at ``learning_rate``, a fresh Adam at ``decayed_learning_rate``
    from ``decay_at`` on (as CS231n re-creates the optimizer), clamping until ``clamp_until``."""
    optimizer = torch.optim.Adam([img], lr=settings.learning_rate)
    for step in range(settings.num_steps):
        if step < settings.clamp_until:
            with torch.no_grad():
                img.clamp_(-settings.clamp, settings.clamp)
        optimizer.zero_grad(set_to_none=True)
        terms = loss_terms()
        terms["total"].backward()
        if step == settings.decay_at:
            optimizer = torch.optim.Adam([img], lr=settings.decayed_learning_rate)
        optimizer.step()
        after_step(step, terms)
        if stopped():
            return


def _run_lbfgs(img, loss_terms, settings: TransferSettings, after_step, stopped) -> None:
    """L-BFGS with a strong-Wolfe line search (as in PyTorch's neural style tutorial); each loss
    evaluation counts as one step. Pixels are clamped once at the end, not during the search.

    The run ends when the evaluations are used up, possibly inside a line search, where the image
    is a trial point whose loss was never computed; so the image ends as the evaluated one with
    the lowest loss. (L-BFGS reads every loss on the host anyway, so this costs no extra sync.)
    """
    optimizer = torch.optim.LBFGS([img], lr=1.0, max_iter=settings.num_steps, max_eval=settings.num_steps,
                                  tolerance_grad=0.0, tolerance_change=0.0, history_size=50,
                                  line_search_fn="strong_wolfe")
    evaluations = 0
    best_loss, best_img = math.inf, img.detach().clone()

    def closure():
        nonlocal evaluations, best_loss
        if evaluations >= settings.num_steps or stopped():
            raise _Stop
        optimizer.zero_grad(set_to_none=True)
        terms = loss_terms()
        terms["total"].backward()
        after_step(evaluations, terms)
        evaluations += 1
        loss = terms["total"].item()
        if loss < best_loss:
            best_loss = loss
            best_img.copy_(img.detach())
        return terms["total"]

    try:
        if settings.num_steps > 0:
            optimizer.step(closure)
    except _Stop:
        pass
    with torch.no_grad():
        if evaluations > 0:
            img.copy_(best_img)
        img.clamp_(-settings.clamp, settings.clamp)
