"""The style transfer optimization loop, given to students: they write the losses, not the loop.

Gatys et al. (2016, Sec. 2.3) synthesize an image by gradient descent on its pixels so that its
feature maps match those of the content image and its Gram matrices match those of the style
image. This module follows CS231n assignment 3's version of that loop: Adam on the pixels of a
normalized image, learning rate 3.0 then 0.1 from step 180, pixels clamped to [-1.5, 1.5] until
step 190. L-BFGS, the optimizer of the paper and of PyTorch's tutorial, is an option.

The loss functions are arguments, so the code that runs is the student's own.

The controls of Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer" (CVPR
2017) - several style images blended, a style per region (Sec. 4), the photo's colours kept
(Sec. 5), coarse to fine (Sec. 6) - are options of the same loop, off by default: see
:func:`style_transfer`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from ._pooling import network_for
from .color import combine_luminance, luminance_image, match_color_histogram, match_luminance
from .features import extract_features
from .images import deprocess, preprocess, to_normalized, to_pixels
from .masks import check_masks, resize_masks

__all__ = ["TransferSettings", "TransferResult", "LossFunctions", "EXAMPLE_SETTINGS", "style_transfer"]


#: The largest ``image_size`` / ``style_size`` (the shorter side): a square image of that size is
#: :data:`cs231n_style.images.MAX_PIXELS`, ~4 GB of memory in style transfer; wider images must
#: be smaller (``preprocess`` says so).
MAX_IMAGE_SIZE = 2048

#: The image size (shorter side, pixels) CS231n's weights were tuned at: the ``weights_size`` of the
#: command line, of its ``--example`` runs and of the widget panel (``TransferSettings()`` and
#: :data:`EXAMPLE_SETTINGS` keep 0, the weights as given, so the notebooks compute CS231n's numbers).
WEIGHTS_SIZE = 192


@dataclass(frozen=True)
class Slider:
    """How the widget panel shows a setting: a slider captioned ``label``, on a linear or log scale.

    Attributes:
        label: the caption; ``{layer}`` in it stands for a style layer's index.
        scale: ``"linear"``: a whole-number slider from ``low`` to ``high`` (raised when a setting
            needs more), moving by ``step``. ``"log"``: a base-10 slider from ``decades`` powers of
            ten below its first value to ``decades`` above, moving by ``step`` powers of ten (for
            weights: useful values span many powers of ten).
        step: the smallest move, in the scale's units.
        low, high: the ends of a linear slider (``None`` for a log one).
        decades: the reach of a log slider either side of its first value.
    """

    label: str
    scale: str
    step: float
    low: int | None = None
    high: int | None = None
    decades: int = 3


def _option(default, help: str, *, kind: str, minimum: float | None = None,
            exclusive_minimum: float | None = None, maximum: float | None = None, unit: str | None = None,
            choices: tuple[str, ...] | None = None, item: str | None = None, slider: Slider | None = None):
    """Declare a field of :class:`TransferSettings`: its default, and in its ``metadata`` what the
    checks, the command line and the widget panel need to know of it.

    Args:
        default: the field's default value.
        help: what the field does, in a sentence: the panel's tooltip and the command line's help.
        kind: what one value is: ``"whole number"`` (an int), ``"number"`` (a finite int or
            float), ``"layer index"`` (a whole number naming a SqueezeNet layer) or ``"choice"``
            (one of ``choices``).
        minimum, exclusive_minimum, maximum: the allowed range, ``>=``, ``>`` and ``<=`` (the
            names JSON Schema uses); ``None``: no such bound.
        unit: what a whole number counts, for error messages (``"pixels"``); ``None``: nothing.
        choices: the allowed values of a ``"choice"``.
        item: for a sequence of values of ``kind`` (stored as a tuple), what one value is called
            in error messages (``"style layer"``); ``None`` for a single value.
        slider: how the widget panel shows the field, if with a slider.

    Returns:
        A ``dataclasses.field``: ``metadata`` maps each of the names above but ``default`` to its
        value (``None`` where not given).
    """
    return field(default=default, metadata={
        "help": help, "kind": kind, "minimum": minimum, "exclusive_minimum": exclusive_minimum,
        "maximum": maximum, "unit": unit, "choices": choices, "item": item, "slider": slider})


@dataclass(frozen=True)
class TransferSettings:
    """Every knob of :func:`style_transfer`, with CS231n's first example run as the defaults.

    Each field is declared with its default, its help text and, in its ``metadata``, what it may
    hold (``kind``, ``minimum`` / ``exclusive_minimum`` / ``maximum``, ``choices``) and how the
    widget panel shows it (``slider``): see :func:`_option`. The constructor checks every value
    against that metadata, the command line (``python -m cs231n_style --help``) makes its options
    of it, and the panel its sliders and tooltips, so the three say the same thing.

    Raises:
        ValueError: if a value is not what its field's metadata allows, or the style layers and
            style weights are not as many; the message lists every such problem (``"Invalid style
            transfer settings: num_steps must be a whole number >= 0, not 2.5."``).
    """

    image_size: int = _option(
        192, "Shorter side of the content image and of the result, in pixels (32-2048).",
        kind="whole number", unit="pixels", minimum=32, maximum=MAX_IMAGE_SIZE,
        slider=Slider("image size (px)", "linear", step=16, low=32, high=512))
    style_size: int = _option(
        512, "Shorter side the style image is resized to, in pixels (32-2048).",
        kind="whole number", unit="pixels", minimum=32, maximum=MAX_IMAGE_SIZE)
    content_layer: int = _option(
        3, "Index of the SqueezeNet layer whose feature maps define content.",
        kind="layer index", minimum=0)
    content_weight: float = _option(
        5e-2, "Weight of the content loss.",
        kind="number", minimum=0, slider=Slider("content weight", "log", step=0.05))
    style_layers: tuple[int, ...] = _option(
        (1, 4, 6, 7), "Indices of the layers whose Gram matrices define style.",
        kind="layer index", minimum=0, item="style layer")
    style_weights: tuple[float, ...] = _option(
        (2e4, 500.0, 12.0, 1.0), "Weight of the style loss at each style layer.",
        kind="number", minimum=0, item="style weight", slider=Slider("style weight, layer {layer}", "log", step=0.05))
    tv_weight: float = _option(
        5e-2, "Weight of the total variation loss (smoothness).",
        kind="number", minimum=0, slider=Slider("TV weight", "log", step=0.05))
    weights_size: int = _option(
        0, "The shorter side, in pixels, the content and TV weights are meant for; at any other image size (of the "
        "run or of a coarse-to-fine stage) they are multiplied by (weights_size / size)^2, so that the balance of "
        "content, style and smoothness, and so how stylized the result looks, stays the same (content and TV "
        "losses are sums over pixels, the style loss's Gram matrices are normalized). 0: the weights are used "
        "as given (CS231n's exact numbers); else 32-2048 (CS231n's weights are for 192)",
        kind="whole number", unit="pixels", minimum=0, maximum=MAX_IMAGE_SIZE)
    init: str = _option(
        "content", "Start from the content image or from uniform noise.",
        kind="choice", choices=("content", "noise"))
    num_steps: int = _option(
        200, "Number of optimization steps.",
        kind="whole number", minimum=0, slider=Slider("steps", "linear", step=10, low=0, high=1000))
    optimizer: str = _option(
        "adam", "Adam with CS231n's schedule, or L-BFGS as in Gatys et al.",
        kind="choice", choices=("adam", "lbfgs"))
    learning_rate: float = _option(
        3.0, "Adam's learning rate at the start.",
        kind="number", exclusive_minimum=0)
    decayed_learning_rate: float = _option(
        0.1, "Adam's learning rate from step `decay_at` on.",
        kind="number", exclusive_minimum=0)
    decay_at: int = _option(
        180, "Step at which Adam's learning rate drops (CS231n: 180 of 200).",
        kind="whole number", minimum=0)
    clamp: float = _option(
        1.5, "Pixels are clamped to [-clamp, clamp] in normalized space ...",
        kind="number", exclusive_minimum=0)
    clamp_until: int = _option(
        190, "... before each step until this one (CS231n: 190 of 200).",
        kind="whole number", minimum=0)
    seed: int = _option(
        0, "Seed of the noise initialization.",
        kind="whole number", minimum=0)
    speed: str = _option(
        "exact", "exact: the same image as CS231n's loop, bit for bit; fast: CS231n's schedule at half the size, "
        "then a short polish at full size, reaching the same loss about 4x sooner (a similar, not the same, image), "
        "for one style image without the colour, mask and coarse-to-fine controls",
        kind="choice", choices=("exact", "fast"))
    preserve_colors: str = _option(
        "none", "Keep the content photo's colours (Gatys et al. 2017, Sec. 5): none; luminance: transfer on "
        "the luminance only, then the photo's colours put back; histogram: each style image recoloured to the "
        "photo's colour mean and covariance first",
        kind="choice", choices=("none", "luminance", "histogram"))
    style_blend_weights: tuple[float, ...] = _option(
        (), "With several style images and no masks: the weight of each in the blend of their Gram matrices "
        "(normalized to sum 1; empty: equal weights), as neural-style's -style_blend_weights",
        kind="number", minimum=0, item="style blend weight")
    coarse_size: int = _option(
        0, "Coarse to fine (Gatys et al. 2017, Sec. 6): 0 for off, else first optimize at this shorter side "
        "(>= 32, < image_size), then upsample and optimize at image_size; num_steps each",
        kind="whole number", unit="pixels", minimum=0, maximum=MAX_IMAGE_SIZE)

    def __post_init__(self):
        """Check every field against its metadata, then the fields that depend on each other."""
        problems = []
        for option in dataclasses.fields(self):
            value, wrong = _checked(option, getattr(self, option.name))
            object.__setattr__(self, option.name, value)  # the same value; a sequence as a tuple
            problems += wrong
        problems += self._inconsistencies()
        if problems:
            raise ValueError("Invalid style transfer settings: " + "; ".join(problems) + ".")

    def _inconsistencies(self) -> list[str]:
        """What is wrong between fields (each checked only where its own values are of the right
        kind): style layers and weights not as many, all blend weights 0, a coarse size not between
        32 and the image size, a weights size between 1 and 31 (no image is that small)."""
        problems = []
        layers, weights, blend = self.style_layers, self.style_weights, self.style_blend_weights
        if isinstance(layers, tuple) and isinstance(weights, tuple) and len(layers) != len(weights):
            problems.append(f"{len(layers)} style layers but {len(weights)} style weights")
        if isinstance(blend, tuple) and blend and not any(blend):
            problems.append(f"the style blend weights {blend} are all 0: give at least one style image a "
                            "weight > 0 (or leave style_blend_weights empty for equal weights)")
        coarse, image, reference = self.coarse_size, self.image_size, self.weights_size
        whole = all(isinstance(size, (int, np.integer)) and not isinstance(size, bool) for size in (coarse, image))
        if whole and coarse and not 32 <= coarse < image:
            problems.append(f"coarse_size must be 0 (no coarse stage) or a whole number of pixels >= 32 and "
                            f"smaller than image_size ({image}), not {coarse}")
        if isinstance(reference, (int, np.integer)) and not isinstance(reference, bool) and 0 < reference < 32:
            problems.append(f"weights_size must be 0 (the weights as given) or a whole number of pixels >= 32 "
                            f"(CS231n's weights are for {WEIGHTS_SIZE}), not {reference}")
        return problems

    def replace(self, **changes) -> TransferSettings:
        """Return a copy with some fields changed: ``settings.replace(tv_weight=0.0)``.

        Args:
            **changes: new values, by field name.

        Returns:
            A new ``TransferSettings`` (this one is frozen: it never changes).

        Raises:
            TypeError: if a name is not a field's.
            ValueError: if a value is invalid (as the constructor says); if ``style_layers``
                changes to another number of layers and ``style_weights`` does not change (or the
                reverse), the message says to pass both.
        """
        return self.with_changes(changes)

    def with_changes(self, changes: Mapping[str, Any], name_of: Callable[[str], str] = str) -> TransferSettings:
        """:meth:`replace` for a program whose users name the fields their own way, as the command
        line does (``--style-layers``).

        Args:
            changes: new values, by field name.
            name_of: ``name_of(field_name)`` is how the message about a lone change to the style
                layers or weights names those two fields (default: their own names).

        Returns, Raises:
            As :meth:`replace`.
        """
        for given, other in (("style_layers", "style_weights"), ("style_weights", "style_layers")):
            new, kept = changes.get(given), getattr(self, other)
            if other not in changes and isinstance(new, (tuple, list)) and len(new) != len(kept):
                raise ValueError(
                    f"Invalid style transfer settings: {name_of(given)} has {len(new)} values but the "
                    f"{other.replace('_', ' ')} {kept} have {len(kept)}: pass {name_of(other)} with {len(new)} "
                    "values too.")
        return dataclasses.replace(self, **changes)

    @property
    def total_steps(self) -> int:
        """Optimization steps of a whole run, the length of a finished run's history: ``num_steps``,
        twice that with a coarse stage (``coarse_size`` > 0); with ``speed="fast"``, its plan's
        (:mod:`cs231n_style._fast`: 150 for 200 from 192 px up)."""
        if self.speed == "fast":
            from ._fast import fast_total_steps  # _fast imports this module
            return fast_total_steps(self)
        return self.num_steps * (2 if self.coarse_size else 1)

    @property
    def deepest_layer(self) -> int:
        """Index of the deepest layer any loss needs: the network is not run beyond it."""
        return max(self.content_layer, *self.style_layers) if self.style_layers else self.content_layer


# --- Checking a value against its field's metadata (TransferSettings.__post_init__) ---------------

#: What a value of each kind must be, as the error messages say it: ``{unit}`` becomes " of pixels"
#: (or nothing), ``{range}`` the field's bounds (">= 32 and <= 2048").
_MUST_BE = {
    "whole number": "a whole number{unit} {range}",
    "number": "a finite number {range}",
    "layer index": "a layer index {range} (see cs.describe_layers)",
}


def _checked(option: dataclasses.Field, value) -> tuple[Any, list[str]]:
    """Check one field's value against the field's metadata.

    Returns:
        ``(value, problems)``: the value to store (a sequence as a tuple of ints for layer indices,
        4.0 read as 4, or of floats for numbers; else as given) and a message for each thing
        wrong with it, such as ``"num_steps must be a whole number >= 0, not 2.5"`` (none: ``[]``).
    """
    meta, name = option.metadata, option.name
    if meta["item"] is None:
        return value, [] if _fits(value, meta) else [f"{name} must be {_must_be(meta)}, not {value!r}"]
    if isinstance(value, (str, bytes)):
        return value, [f"{name} must be a sequence of numbers such as {option.default}, not a string"]
    try:
        items = tuple((float if meta["kind"] == "number" else _whole)(item) for item in value)
    except (TypeError, ValueError) as error:
        return value, [f"{name} must be a sequence of numbers such as {option.default} ({error})"]
    return items, [f"{meta['item']} must be {_must_be(meta)}, not {item!r}" for item in items if not _fits(item, meta)]


def _fits(value, meta: Mapping[str, Any]) -> bool:
    """Whether one value is of the field's kind and within its bounds (``True`` is no number, 4.0 no
    whole number; ``nan``, ``inf`` and ints too large for a float are no finite number)."""
    if meta["kind"] == "choice":
        return isinstance(value, str) and value in meta["choices"]
    numbers = (int, np.integer, float, np.floating) if meta["kind"] == "number" else (int, np.integer)
    if isinstance(value, bool) or not isinstance(value, numbers):
        return False
    if meta["kind"] == "number" and not _finite(value):
        return False
    return ((meta["minimum"] is None or value >= meta["minimum"])
            and (meta["exclusive_minimum"] is None or value > meta["exclusive_minimum"])
            and (meta["maximum"] is None or value <= meta["maximum"]))


def _must_be(meta: Mapping[str, Any]) -> str:
    """What a value of the field must be: ``"a whole number of pixels >= 32 and <= 2048"``,
    ``"a finite number > 0"``, ``"'adam' or 'lbfgs'"``."""
    if meta["kind"] == "choice":
        *others, last = (repr(choice) for choice in meta["choices"])
        return f"{', '.join(others)} or {last}" if others else last
    bounds = ((">=", meta["minimum"]), (">", meta["exclusive_minimum"]), ("<=", meta["maximum"]))
    return _MUST_BE[meta["kind"]].format(
        unit=f" of {meta['unit']}" if meta["unit"] else "",
        range=" and ".join(f"{sign} {bound}" for sign, bound in bounds if bound is not None))


def _finite(value) -> bool:
    """Whether a number is neither ``nan`` nor infinite, and fits a float (``10**400`` does not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _whole(value) -> int:
    """``value`` as an int if it is a whole number (4, 4.0, ``np.int64(4)``); else ValueError."""
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


#: The course's three example runs: CS231n's three weightings with the paintings they were tuned
#: for (Composition VII, The Scream, The Starry Night), each with a bundled photo and the style
#: size that suits it: name -> (content image, style image, settings). ``TransferSettings()``
#: itself stays CS231n's first weighting.
EXAMPLE_SETTINGS = {
    "astronaut_composition_vii": ("astronaut", "composition_vii", TransferSettings(
        style_size=256, content_weight=5e-2, style_weights=(1e5, 2e3, 50.0, 5.0), tv_weight=5e-2)),
    "coffee_the_scream": ("coffee", "the_scream", TransferSettings(
        style_size=224, content_weight=3e-2, style_weights=(2e5, 800.0, 12.0, 1.0), tv_weight=2e-2)),
    "cat_starry_night": ("cat", "starry_night", TransferSettings(
        style_size=192, content_weight=6e-2, style_weights=(3e5, 1e3, 15.0, 3.0), tv_weight=2e-2)),
}


@dataclass(frozen=True)
class LossFunctions:
    """The functions students write: CS231n's four, and the guided pair of spatial control.

    * ``content_loss(content_weight, content_current, content_original) -> scalar tensor``
    * ``gram_matrix(features, normalize=True) -> (N, C, C) tensor``
    * ``style_loss(feats, style_layers, style_targets, style_weights) -> scalar tensor``
    * ``tv_loss(img, tv_weight) -> scalar tensor``
    * ``guided_gram_matrix(features, masks, normalize=True) -> (N, R, C, C) tensor`` and
      ``guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks) ->
      scalar tensor`` (notebook 05; Gatys et al., CVPR 2017, Sec. 4; UMich EECS 498 A6).

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


@dataclass
class TransferResult:
    """What :func:`style_transfer` returns.

    Attributes:
        image: the result, a normalized float32 tensor (1, 3, H, W) on the CPU, detached, at
            ``settings.image_size``.
        history: per step, the loss terms as Python floats: keys ``"content"``, ``"style"``,
            ``"tv"`` and ``"total"``, each a list of one float per step (``num_steps`` per stage;
            ``settings.total_steps`` in all), the stages one after the other (fewer if stopped).
            A coarse stage's losses are those at its size: not comparable with the full size's;
            with ``weights_size`` > 0, each stage's with its scaled content and TV weights.
        settings: the :class:`TransferSettings` used.
        seconds: wall-clock time of the run (images, targets and optimization), in seconds.
        stopped_early: ``True`` if ``should_stop`` ended the run before its last step.
        final_loss: fast mode only (``None`` otherwise): the loss terms of ``image`` evaluated in
            float32 with the given loss functions (``content``, ``style``, ``tv``, ``total``), the
            yardstick of docs/benchmark.md.
        precision: the dtype the network ran in ("float32"; the fast mode may say "bfloat16",
            or why it fell back to float32).
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
    precision: str = "float32"
    stages: tuple[int, ...] = ()

    def to_pil(self) -> Image.Image:
        """Return the result as a displayable RGB ``PIL.Image`` (pixels clamped to [0, 1])."""
        return deprocess(self.image)


# --- The loop: validate -> targets -> initial image -> optimize -> result ------------------------

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
    is CS231n's loop, bit for bit. Gatys et al., "Controlling Perceptual Factors in Neural Style
    Transfer" (CVPR 2017), add controls, each off by default:

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
      shorter side ``coarse_size``, then at ``image_size`` from the upsampled result (see
      :func:`_stages`).

    **Size-aware weights** (``settings.weights_size``, off by default; the command line and the panel
    use 192): the content and TV weights are meant for that shorter side, and each stage multiplies
    them by ``(weights_size / size) ** 2`` (:func:`_weights_for_size`), so a 384 or 768 px result is
    as stylized as a 192 px one. The history's losses are then those of the scaled weights.

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
    settings = _cut_while_grading(settings)  # (only under nbgrader: demo runs are never graded)
    terms = _terms_to_use(losses, settings, style_image, model, content_masks)    # 1. validate
    if settings.speed == "fast":  # opt-in: a short coarse-to-fine plan (see _fast.py)
        from ._fast import run_fast
        return run_fast(content_image, style_image, losses, model, settings, content_masks=content_masks,
                        progress=progress, preview_every=preview_every, callback=callback, should_stop=should_stop)
    network = network_for(model, terms.last_layer)
    device = next(model.parameters()).device
    stages = _stages(settings)
    # The first stage's images are read before the progress bar starts, so that an unreadable or
    # too large image gives its error alone.
    images = _load_images(content_image, style_image, content_masks, stages[0], device)
    monitor = _Monitor(settings.total_steps, progress, preview_every, callback, should_stop)
    start, img = time.perf_counter(), None
    with monitor:
        for number, stage in enumerate(stages):
            if number > 0:  # the coarse stage's images were read above; now the full size's
                images = _load_images(content_image, style_image, content_masks, stage, device)
            targets = _targets(images, network, losses, stage, terms)                # 2. targets
            img = _initial_image(images.content, stage, previous=img)                # 3. initial image
            objective = _Objective(img, network, losses, stage, terms, targets)
            _OPTIMIZERS[stage.optimizer](img, objective, stage, monitor)             # 4. optimize
            if monitor.stopped:
                break
    return TransferResult(image=_result_image(img, content_image, settings),          # 5. result
                          history=monitor.history(), settings=settings, seconds=time.perf_counter() - start,
                          stopped_early=monitor.stopped, stages=tuple(stage.image_size for stage in stages))


#: Under nbgrader's autograde and validate (it sets ``NBGRADER_EXECUTION`` in the kernel), every run
#: is cut to this many steps per stage at this shorter side: no run is graded (only the check cells
#: are), and nbgrader stops a cell after 30 s by default, on a grading machine that may be busy.
GRADING_STEPS, GRADING_SIZE = 5, 64


def _cut_while_grading(settings: TransferSettings) -> TransferSettings:
    """``settings`` as they are, or, while nbgrader grades, cut to ``GRADING_STEPS`` steps at
    ``GRADING_SIZE`` px (style images at most twice that, no coarse stage), with a printed note."""
    if not os.environ.get("NBGRADER_EXECUTION"):
        return settings
    cut = settings.replace(num_steps=min(settings.num_steps, GRADING_STEPS),
                           image_size=min(settings.image_size, GRADING_SIZE),
                           style_size=min(settings.style_size, 2 * GRADING_SIZE), coarse_size=0)
    print(f"(nbgrader is grading: this style transfer runs {cut.total_steps} steps at {cut.image_size} px instead of "
          f"{settings.total_steps} at {settings.image_size} px. Runs are not graded; the checks are.)")
    return cut


@dataclass(frozen=True)
class _Terms:
    """Which loss terms a run uses, and the deepest layer they read."""

    content: bool
    style: bool
    tv: bool
    last_layer: int


def _terms_to_use(losses, settings, style_image, model: nn.Sequential, content_masks=None) -> _Terms:
    """Step 1: check the arguments and decide which loss terms run (the errors of :func:`style_transfer`)."""
    if not isinstance(losses, LossFunctions):
        raise TypeError("losses must be a LossFunctions(content_loss=..., gram_matrix=..., style_loss=..., "
                        "tv_loss=...).")
    if not isinstance(settings, TransferSettings):
        hint = "TransferSettings(**settings)" if isinstance(settings, dict) else "TransferSettings(num_steps=100, ...)"
        raise TypeError(f"settings must be a TransferSettings, not {type(settings).__name__}: pass {hint}.")
    _check_style_images(style_image, content_masks, settings)
    use_style = style_image is not None and len(settings.style_layers) > 0
    terms = _Terms(content=settings.content_weight > 0, style=use_style, tv=settings.tv_weight > 0,
                   last_layer=settings.deepest_layer if use_style else settings.content_layer)
    guided = content_masks is not None
    needed = {"content_loss": terms.content, "gram_matrix": terms.style, "style_loss": terms.style and not guided,
              "guided_style_loss": terms.style and guided, "tv_loss": terms.tv}
    missing = [name for name, used in needed.items() if used and getattr(losses, name) is None]
    if missing:
        raise ValueError(f"These settings need {', '.join(missing)}: pass it in LossFunctions(...), "
                         "or set its weight to 0 (content_weight, tv_weight) / style_image=None"
                         + (" / content_masks=None." if guided else "."))
    if not (terms.content or terms.style or terms.tv):
        raise ValueError("Nothing to optimize: content_weight and tv_weight are 0 and there is no style "
                         "term (style_image=None or no style layers).")
    too_deep = [f"content_layer {settings.content_layer}"] if settings.content_layer >= len(model) else []
    too_deep += [f"style layer {i}" for i in settings.style_layers if i >= len(model)]
    if too_deep:
        raise ValueError(f"{', '.join(too_deep)}: no such layer, the model has layers 0-{len(model) - 1} "
                         "(cs.describe_layers(model) lists them).")
    return terms


def _style_list(style_image) -> list:
    """The style images as a list: none for ``None``, the items of a list or tuple, else the one image."""
    if style_image is None:
        return []
    return list(style_image) if isinstance(style_image, (list, tuple)) else [style_image]


def _check_style_images(style_image, content_masks, settings: TransferSettings) -> None:
    """Step 1 for the controls: as many style images as the masks' regions or the blend weights."""
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


def _given_masks(content_masks) -> torch.Tensor:
    """``content_masks`` checked, as a float32 tensor (1, R, H, W): an (R, H, W) one gets the batch
    axis, an array becomes a tensor (:func:`cs231n_style.check_masks` raises ValueError for the rest)."""
    if isinstance(content_masks, np.ndarray):
        content_masks = torch.from_numpy(content_masks)
    if isinstance(content_masks, torch.Tensor) and content_masks.dim() == 3:
        content_masks = content_masks[None]
    return check_masks(content_masks, name="content_masks")


def _stages(settings: TransferSettings) -> list[TransferSettings]:
    """The settings of each optimization stage: ``[settings]``, or for coarse to fine (Gatys et al.,
    2017, Sec. 6) two stages of ``num_steps`` each; each stage's content and TV weights for its own
    size (:func:`_weights_for_size`, with ``settings.weights_size``; 0: as given).

    The coarse stage runs at ``coarse_size`` with the style image shrunk by the same factor, so
    that it is the full run in miniature (strokes keep their size relative to the image). The fine
    stage starts from its upsampled result and runs one Adam at ``decayed_learning_rate`` from its
    first step to its last: at ``learning_rate`` (CS231n: 3.0) Adam's first steps move every pixel
    by about 3 normalized units whatever the gradient, which would wipe out what the coarse stage
    made; and a fresh Adam at ``decay_at`` would move every pixel by the rate once more.

    Returns:
        A list of one or two valid ``TransferSettings`` (``coarse_size`` 0; ``weights_size`` 0
        when scaled). With ``weights_size`` 0 and no coarse stage, ``[settings]`` itself, so
        CS231n's loop runs on exactly the settings given. Raises nothing for valid settings.
    """
    reference = settings.weights_size
    if not settings.coarse_size:
        return [_weights_for_size(settings, reference)]
    scale = settings.coarse_size / settings.image_size
    coarse = settings.replace(image_size=settings.coarse_size, style_size=max(32, round(settings.style_size * scale)),
                              coarse_size=0)
    fine = settings.replace(coarse_size=0, learning_rate=settings.decayed_learning_rate, decay_at=settings.num_steps)
    return [_weights_for_size(coarse, reference), _weights_for_size(fine, reference)]


def _weights_for_size(stage: TransferSettings, reference: int) -> TransferSettings:
    """``stage`` with its content and TV weights, meant for a ``reference`` px image, made for its
    own ``image_size``: multiplied by ``(reference / image_size) ** 2``. The one place of the rule,
    for every stage of the exact loop (:func:`_stages`) and of the fast mode
    (:mod:`cs231n_style._fast`, whose reference is the run's ``image_size`` when ``weights_size``
    is 0).

    Why: the content loss and the TV loss are sums over positions, so at twice the size (4x the
    pixels) they are about 4x larger, while the style loss compares Gram matrices normalized by the
    number of positions, which do not grow. With the same weights the content term thus outweighs
    the style term more at every larger size and the result stays closer to the photo; scaling the
    two weights with the inverse area keeps the balance the weights were chosen for.

    Args:
        stage: a stage's settings (its ``image_size`` is the size the stage optimizes at).
        reference: the shorter side (pixels, >= 1) the weights are meant for; 0: no scaling.

    Returns:
        ``stage`` itself if ``reference`` is 0; else a copy with ``content_weight`` and
        ``tv_weight`` scaled (style weights unchanged) and ``weights_size`` 0 (its weights are now
        for its own size). At ``reference == image_size`` the factor is exactly 1.0, so the weights
        are bit for bit the same. Raises nothing for valid settings.
    """
    if not reference:
        return stage
    factor = (reference / stage.image_size) ** 2
    return stage.replace(content_weight=stage.content_weight * factor, tv_weight=stage.tv_weight * factor,
                         weights_size=0)


@dataclass
class _Images:
    """A stage's images as the network sees them: normalized float32 (1, 3, H, W) on the run's device,
    colour-controlled as ``preserve_colors`` says; and the masks (1, R, H, W) at the content's size."""

    content: torch.Tensor
    styles: list[torch.Tensor]
    masks: torch.Tensor | None = None


def _load_images(content_image, style_image, content_masks, settings: TransferSettings, device) -> _Images:
    """Step 1's images, at the stage's sizes: the content image at ``image_size``, each style image at
    ``style_size`` (one per region with masks), colour-controlled (Gatys et al., 2017, Sec. 5)."""
    # The image being optimized must be plain NCHW for students' tv_loss (``view``) and for L-BFGS
    # (``grad.view(-1)``); preprocess returns it so, and .contiguous() keeps that true for any device.
    content = preprocess(content_image, settings.image_size).to(device).contiguous()
    styles = [preprocess(style, settings.style_size).to(device) for style in _style_list(style_image)]
    if settings.preserve_colors != "none":
        content, styles = _control_colors(content, styles, settings.preserve_colors)
    if content_masks is None:
        return _Images(content, styles)
    masks = _given_masks(content_masks)
    size = tuple(content.shape[-2:])
    if tuple(masks.shape[-2:]) != size:  # bilinear, antialiased: a weighted mean, so values stay in [0, 1]
        masks = F.interpolate(masks, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    masks = check_masks(masks, size, name="content_masks (resized to the content image)").to(device)
    return _Images(content, styles * masks.shape[1] if len(styles) == 1 else styles, masks)


def _control_colors(content: torch.Tensor, styles: list[torch.Tensor], mode: str):
    """The content and style images for colour control (Gatys et al., 2017, Sec. 5): ``"histogram"``:
    each style image recoloured to the content's colour mean and covariance; ``"luminance"``: the
    content's luminance, and each style's luminance matched to it, as grey (Y, Y, Y) images."""
    content_pixels = to_pixels(content)
    if mode == "histogram":
        return content, [to_normalized(match_color_histogram(to_pixels(style), content_pixels)) for style in styles]
    grey = to_normalized(luminance_image(content_pixels)).contiguous()
    return grey, [to_normalized(match_luminance(to_pixels(style), content_pixels)) for style in styles]


@dataclass
class _Targets:
    """What the result should match: the content image's feature maps at the content layer
    (``None`` without a content term) and the style targets at each style layer: (1, C, C) Gram
    matrices, or with masks (1, R, C, C) ones and ``masks``, the masks (1, R, H_l, W_l) resized to
    each style layer (``None`` without masks)."""

    content: torch.Tensor | None
    style: list[torch.Tensor]
    masks: list[torch.Tensor] | None = None


@torch.no_grad()  # targets are constants: no graph, computed once
def _targets(images: _Images, network: nn.Sequential, losses: LossFunctions, settings: TransferSettings,
             terms: _Terms) -> _Targets:
    """Step 2: the content target and the style targets (with the student's ``gram_matrix``): one
    style image's Gram matrices; several images' blend; with masks, each region's style image's,
    stacked (1, R, C, C), and the masks resized to each style layer (Gatys et al., 2017, Sec. 4)."""
    content_target = None
    if terms.content:
        content_target = extract_features(images.content, network, up_to=settings.content_layer)[settings.content_layer]
    if not terms.style:
        return _Targets(content_target, [])
    grams = [_gram_matrices(style, network, losses, settings, terms) for style in images.styles]
    if images.masks is None:
        return _Targets(content_target, _blend(grams, settings.style_blend_weights))
    feats = extract_features(images.content, network, up_to=terms.last_layer)
    masks = [resize_masks(images.masks, feats[layer].shape[-2:]) for layer in settings.style_layers]
    return _Targets(content_target, [torch.stack(layer, dim=1) for layer in zip(*grams)], masks)


def _gram_matrices(style: torch.Tensor, network: nn.Sequential, losses: LossFunctions, settings: TransferSettings,
                   terms: _Terms) -> list[torch.Tensor]:
    """The style image's Gram matrix (1, C, C) at each style layer, with the student's ``gram_matrix``."""
    style_feats = extract_features(style, network, up_to=terms.last_layer)
    return [losses.gram_matrix(style_feats[i]) for i in settings.style_layers]


def _blend(grams: list[list[torch.Tensor]], weights: tuple[float, ...]) -> list[torch.Tensor]:
    """Per style layer, the blend ``sum_k w_k G_k`` of the style images' Gram matrices ``grams[k]``,
    the weights normalized to sum 1 (equal if none are given): neural-style's ``-style_blend_weights``
    (Johnson, 2015). One style image's Gram matrices are returned as they are."""
    if len(grams) == 1:
        return grams[0]
    weights = weights or (1.0,) * len(grams)
    total = sum(weights)
    return [sum(weight / total * gram for weight, gram in zip(weights, layer)) for layer in zip(*grams)]


def _initial_image(content: torch.Tensor, settings: TransferSettings, previous: torch.Tensor | None = None):
    """Step 3: the image to optimize, a leaf tensor like ``content``: a copy of it, or uniform noise;
    in a later stage of coarse to fine, the previous stage's result upsampled (bilinear)."""
    if previous is not None:
        img = F.interpolate(previous.detach(), size=content.shape[-2:], mode="bilinear", align_corners=False)
        img = img.contiguous()
    elif settings.init == "content":
        img = content.clone()
    else:
        generator = torch.Generator().manual_seed(settings.seed)  # CPU generator: same noise on every device
        img = torch.rand(content.shape, generator=generator).to(content.device)
    return img.requires_grad_(True)


def _result_image(img: torch.Tensor, content_image, settings: TransferSettings) -> torch.Tensor:
    """Step 5: the optimized image as a normalized float32 CPU tensor at ``image_size`` (upsampled if
    a run stopped in its coarse stage), with the content's colours back after a luminance-only
    transfer (Gatys et al., 2017, Sec. 5.1)."""
    image = img.detach().to("cpu", torch.float32)
    if settings.coarse_size == 0 and settings.preserve_colors != "luminance":
        return image
    content = preprocess(content_image, settings.image_size)
    if image.shape != content.shape:
        image = F.interpolate(image, size=content.shape[-2:], mode="bilinear", align_corners=False)
    if settings.preserve_colors == "luminance":
        image = to_normalized(combine_luminance(to_pixels(image), to_pixels(content)))
    return image.contiguous()


class _Objective:
    """The loss being minimized: calling it computes the loss terms of the image as it is now.

    Returns a dict of scalar tensors (``content``, ``style``, ``tv``, ``total``) with the
    students' functions; a term that is not used is 0.
    """

    def __init__(self, img, network, losses: LossFunctions, settings: TransferSettings, terms: _Terms,
                 targets: _Targets):
        self.img, self.network, self.losses, self.settings = img, network, losses, settings
        self.terms, self.targets = terms, targets

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output up to the deepest one a loss reads (the fast mode's subclass runs
        the network in lower precision)."""
        return extract_features(img, self.network, up_to=self.terms.last_layer)

    def style(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """The style term: the student's ``style_loss``, or with masks their ``guided_style_loss``."""
        layers, weights, targets = list(self.settings.style_layers), list(self.settings.style_weights), self.targets
        if targets.masks is None:
            return self.losses.style_loss(feats, layers, targets.style, weights)
        return self.losses.guided_style_loss(feats, layers, targets.style, weights, targets.masks)

    def __call__(self) -> dict[str, torch.Tensor]:
        settings, losses, terms = self.settings, self.losses, self.terms
        feats = self.features(self.img)
        zero = torch.zeros((), device=self.img.device)
        values = {
            "content": losses.content_loss(settings.content_weight, feats[settings.content_layer],
                                           self.targets.content) if terms.content else zero,
            "style": self.style(feats) if terms.style else zero,
            "tv": losses.tv_loss(self.img, settings.tv_weight) if terms.tv else zero,
        }
        values["total"] = values["content"] + values["style"] + values["tv"]
        return values


_KEYS = ("content", "style", "tv", "total")


class _Monitor:
    """What happens after each step: record the losses, advance the progress bar, call the
    preview ``callback``, and poll ``should_stop``. Losses stay on the device until the end:
    no host sync per step."""

    def __init__(self, num_steps: int, progress: bool, preview_every: int, callback, should_stop):
        self.num_steps, self.preview_every = num_steps, preview_every
        self.callback, self.should_stop = callback, should_stop
        self.progress = progress
        self.recorded: list[torch.Tensor] = []
        self.stopped = False

    def __enter__(self) -> _Monitor:
        self.bar = tqdm(total=self.num_steps, disable=not self.progress, desc="style transfer", leave=False)
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    @property
    def steps_done(self) -> int:
        return len(self.recorded)

    def after_step(self, img: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        self.recorded.append(torch.stack([terms[key].detach().reshape(()) for key in _KEYS]))
        self.bar.update(1)
        step, done = self.steps_done, self.steps_done == self.num_steps
        if self.callback is not None and self.preview_every > 0 and (step % self.preview_every == 0 or done):
            image = img.detach().to("cpu", torch.float32, copy=True)  # a copy: the callback may keep it
            self.callback(step, image, dict(zip(_KEYS, self.recorded[-1].tolist())))
        if self.should_stop is not None and not done and self.should_stop():
            self.stopped = True

    def history(self) -> dict[str, list[float]]:
        """The recorded losses as Python floats, one list per key of :data:`_KEYS`."""
        rows = torch.stack(self.recorded).tolist() if self.recorded else []
        return {key: [row[i] for row in rows] for i, key in enumerate(_KEYS)}


def _run_adam(img, objective: _Objective, settings: TransferSettings, monitor: _Monitor) -> None:
    """Step 4 with CS231n's schedule: Adam at ``learning_rate``, a fresh Adam at
    ``decayed_learning_rate`` from ``decay_at`` on (as CS231n re-creates the optimizer), pixels
    clamped to [-clamp, clamp] before each step until ``clamp_until``."""
    optimizer = torch.optim.Adam([img], lr=settings.learning_rate)
    for step in range(settings.num_steps):
        if step < settings.clamp_until:
            with torch.no_grad():
                img.clamp_(-settings.clamp, settings.clamp)
        optimizer.zero_grad(set_to_none=True)
        terms = objective()
        terms["total"].backward()
        if step == settings.decay_at:
            optimizer = torch.optim.Adam([img], lr=settings.decayed_learning_rate)
        optimizer.step()
        monitor.after_step(img, terms)
        if monitor.stopped:
            return


class _Stop(Exception):
    """Raised inside an L-BFGS closure to leave ``optimizer.step`` early."""


def _run_lbfgs(img, objective: _Objective, settings: TransferSettings, monitor: _Monitor) -> None:
    """Step 4 with L-BFGS and a strong-Wolfe line search (as in PyTorch's neural style tutorial);
    each loss evaluation counts as one step. Pixels are clamped once at the end, not during the search.
    """
    _lbfgs_evaluations(img, objective, settings.num_steps, monitor, history_size=50)
    with torch.no_grad():
        img.clamp_(-settings.clamp, settings.clamp)


def _lbfgs_evaluations(img, objective: _Objective, evaluations: int, monitor: _Monitor, history_size: int) -> None:
    """At most ``evaluations`` loss evaluations of L-BFGS (strong Wolfe; ``history_size`` pairs of
    image-sized vectors), each reported to ``monitor``; ``img`` ends as the evaluated image with the
    lowest loss, not clamped. Also the fast mode's optimizer (:mod:`cs231n_style._fast`).

    The run ends when the evaluations are used up, possibly inside a line search, where the image
    is a trial point whose loss was never computed; so the image ends as the evaluated one with
    the lowest loss. (L-BFGS reads every loss on the host anyway, so this costs no extra sync.)
    """
    if evaluations <= 0:
        return
    optimizer = torch.optim.LBFGS([img], lr=1.0, max_iter=evaluations, max_eval=evaluations, tolerance_grad=0.0,
                                  tolerance_change=0.0, history_size=history_size, line_search_fn="strong_wolfe")
    best = {"loss": math.inf, "img": img.detach().clone(), "evaluations": 0}

    def closure():
        if best["evaluations"] >= evaluations or monitor.stopped:
            raise _Stop
        optimizer.zero_grad(set_to_none=True)
        terms = objective()
        terms["total"].backward()
        best["evaluations"] += 1
        monitor.after_step(img, terms)
        loss = terms["total"].item()
        if loss < best["loss"]:
            best["loss"] = loss
            best["img"].copy_(img.detach())
        return terms["total"]

    try:
        optimizer.step(closure)
    except _Stop:
        pass
    with torch.no_grad():
        if best["evaluations"] > 0:
            img.copy_(best["img"])


#: Step 4's optimizers, by ``TransferSettings.optimizer``.
_OPTIMIZERS = {"adam": _run_adam, "lbfgs": _run_lbfgs}
