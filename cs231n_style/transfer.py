"""The style transfer optimization loop, given to students: they write the losses, not the loop.

Gatys et al. (2016, Sec. 2.3) synthesize an image by gradient descent on its pixels so that its
feature maps match those of the content image and its Gram matrices match those of the style
image. This module follows CS231n assignment 3's version of that loop: Adam on the pixels of a
normalized image, learning rate 3.0 then 0.1 from step 180, pixels clamped to [-1.5, 1.5] until
step 190. L-BFGS, the optimizer of the paper and of PyTorch's tutorial, is an option.

The loss functions are arguments, so the code that runs is the student's own.
"""

from __future__ import annotations

import copy
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
    memory_format: str = _option(
        "auto", "Memory layout of the network's activations inside the loop: 'channels_last' (NHWC) is "
        "much faster on CPUs; 'auto' uses it on the CPU and plain NCHW ('contiguous') on GPUs. The loss "
        "functions always receive contiguous NCHW tensors, and results agree to float rounding.",
        choices=("auto", "channels_last", "contiguous"))

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
        if self.memory_format not in ("auto", "channels_last", "contiguous"):
            problems.append(f"memory_format must be 'auto', 'channels_last' or 'contiguous', not {self.memory_format!r}")
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


# --- Speed: the network runs in channels-last layout, the losses see plain NCHW -------------------
#
# A float32 image batch of shape (N, C, H, W) is usually stored "contiguous" (NCHW: all of channel
# 0, then all of channel 1, ...). "Channels last" (NHWC) stores the C values of each pixel next to
# each other; the shape stays (N, C, H, W), only ``stride()`` changes. On CPUs, oneDNN's
# convolutions and PyTorch's max-pooling are much faster in NHWC (measured on a 2-core CPU:
# SqueezeNet's layers 0-7, forward + backward, 10.5 ms in NCHW, 5.5 ms in NHWC at 192x288;
# max-pooling's forward pass alone ~15x faster). But students' losses are written for NCHW
# (``features.view(N, C, -1)`` happens to work on NHWC, ``view(-1)`` and index arithmetic on the
# storage do not), so the few feature maps the losses read are copied back to contiguous NCHW
# (tools/benchmark.py measures all of this; docs/benchmark.md has the numbers).


def _use_channels_last(memory_format: str, device: torch.device) -> bool:
    """``settings.memory_format`` -> whether to run the network in channels-last layout."""
    if memory_format == "auto":
        return device.type == "cpu"  # measured only on CPUs; NCHW is the safe choice on CUDA and MPS
    return memory_format == "channels_last"


def _network_for(model: nn.Sequential, last: int, channels_last: bool) -> nn.Sequential:
    """Return ``model[: last + 1]``; in channels-last layout it is a converted *copy* (a few MB), so
    the caller's model is untouched (a convolution with channels-last weights returns channels-last
    maps even for an NCHW input, which would break ``view`` in the students' own code later)."""
    network = model[: last + 1]
    if channels_last:
        network = copy.deepcopy(network).to(memory_format=torch.channels_last)
    return network


class _Relayout(torch.autograd.Function):
    """Copy a tensor to another memory layout; its gradient goes back in the input's layout.

    ``_Relayout.apply(x, torch.contiguous_format)`` is ``x.contiguous()`` for the forward pass.
    Plain ``x.contiguous()`` would hand the NCHW gradient unchanged to the NHWC network, where
    adding it to an NHWC gradient (for a layer read by a loss *and* by the next layer) and the
    ReLU backward then run on mixed layouts, about 10x slower than on one layout; and the image's
    ``.grad`` would come out NHWC, which ``torch.optim.LBFGS`` (``grad.view(-1)``) rejects.

    Args (of ``apply``):
        x: a float tensor (N, C, H, W) that is contiguous in NCHW or in NHWC layout.
        memory_format: ``torch.contiguous_format`` (NCHW) or ``torch.channels_last`` (NHWC).

    Returns:
        A tensor with the same shape, values, dtype and device, stored in ``memory_format``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
        ctx.input_format = torch.contiguous_format if x.is_contiguous() else torch.channels_last
        return x.contiguous(memory_format=memory_format)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.contiguous(memory_format=ctx.input_format), None


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
        ValueError: if the style layers reach beyond the model, or an image cannot be read.
        TypeError: if ``losses`` is not a :class:`LossFunctions`.
    """
    if not isinstance(losses, LossFunctions):
        raise TypeError("losses must be a LossFunctions(content_loss=..., gram_matrix=..., style_loss=..., tv_loss=...).")
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
    if settings.deepest_layer >= len(model):
        raise ValueError(f"Layer {settings.deepest_layer} does not exist: the model has layers 0-{len(model) - 1}.")
    device = _model_device(model)
    last = settings.deepest_layer if use_style else settings.content_layer
    # The layers whose feature maps the losses read: only these are converted back to NCHW.
    loss_layers = ({settings.content_layer} if use_content else set()) | (set(settings.style_layers) if use_style else set())
    channels_last = _use_channels_last(settings.memory_format, device)
    network = _network_for(model, last, channels_last)

    def loss_features(image: torch.Tensor, up_to: int) -> list[torch.Tensor]:
        """Feature maps of layers 0..up_to of a normalized NCHW image (1, 3, H, W), as
        :func:`extract_features` returns them; the maps of ``loss_layers`` are contiguous NCHW."""
        if not channels_last:
            return extract_features(image, network, up_to=up_to)
        feats = extract_features(_Relayout.apply(image, torch.channels_last), network, up_to=up_to)
        return [_Relayout.apply(f, torch.contiguous_format) if i in loss_layers else f for i, f in enumerate(feats)]

    # The image being optimized must be plain NCHW for students' tv_loss (``view``) and for L-BFGS
    # (``grad.view(-1)``); preprocess returns it so, and .contiguous() keeps that true for any device.
    content = preprocess(content_image, settings.image_size).to(device).contiguous()
    with torch.no_grad():  # targets are constants: no graph, computed once
        content_target = loss_features(content, settings.content_layer)[settings.content_layer] if use_content else None
        style_targets = []
        if use_style:
            style = preprocess(style_image, settings.style_size).to(device)
            style_feats = loss_features(style, last)
            style_targets = [losses.gram_matrix(style_feats[i]) for i in settings.style_layers]
            del style_feats

    if settings.init == "content":
        img = content.clone()
    else:
        generator = torch.Generator().manual_seed(settings.seed)  # CPU generator: same noise on every device
        img = torch.rand(content.shape, generator=generator).to(device)
    img.requires_grad_(True)

    def loss_terms() -> dict[str, torch.Tensor]:
        feats = loss_features(img, last)
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
