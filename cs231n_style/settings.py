"""The settings of a style transfer run: every knob, its default, its help text, what it may hold.

:class:`TransferSettings` is the one declaration the rest reads: :func:`cs231n_style.style_transfer`
runs it, the command line (``cs231n-style --help``) makes its options of it, the widget panel its
sliders and tooltips. Each field is a ``dataclasses`` field whose ``metadata`` says what a value may
be (kind, bounds, choices; :func:`cs231n_style._fields._option`), checked by one validator
(:meth:`TransferSettings.__post_init__`, with :mod:`cs231n_style._fields`' checks).
A dataclass and the standard library, not pydantic or attrs: the checks are one page, add no
dependency to the students' install, and their messages say what to type instead.

:func:`plan_stages` says in which stages a run optimizes: one; two for coarse to fine (Gatys et al.,
"Controlling Perceptual Factors in Neural Style Transfer", CVPR 2017, Sec. 6); and the fast mode's
plan, coarse to fine in fewer steps. One rule gives every stage's content and TV weights for its
size (:func:`weights_for_size`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._fields import Slider, _checked, _option
from .backbones import BACKBONE_NAMES, get_backbone

__all__ = [
    "EXAMPLE_SETTINGS",
    "MAX_IMAGE_SIZE",
    "WEIGHTS_SIZE",
    "Slider",
    "Stage",
    "TransferSettings",
    "plan_stages",
    "weights_for_size",
]


#: The largest ``image_size`` / ``style_size`` (the shorter side): a square image of that size is
#: :data:`cs231n_style.images.MAX_PIXELS`, ~4 GB of memory in style transfer; wider images must
#: be smaller (``preprocess`` says so).
MAX_IMAGE_SIZE = 2048

#: The image size (shorter side, pixels) CS231n's weights were tuned at: the ``weights_size`` of the
#: command line, of its ``--example`` runs and of the widget panel (``TransferSettings()`` and
#: :data:`EXAMPLE_SETTINGS` keep 0, the weights as given, so the notebooks compute CS231n's numbers).
WEIGHTS_SIZE = 192

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

    backbone: str = _option(
        "squeezenet1_1", "The network whose feature maps define content and style: CS231n's SqueezeNet 1.1, or "
        "VGG-16 / VGG-19 as Gatys et al. (cs231n_style.backbones: its layers' names and default layers and "
        "weights; TransferSettings.for_backbone(name) starts from them). The layers may be given by name "
        "(content_layer='relu4_2')",
        kind="choice", choices=BACKBONE_NAMES)
    image_size: int = _option(
        192, "Shorter side of the content image and of the result, in pixels (32-2048).",
        kind="whole number", unit="pixels", minimum=32, maximum=MAX_IMAGE_SIZE,
        slider=Slider("image size (px)", "linear", step=16, low=32, high=512))
    style_size: int = _option(
        512, "Shorter side the style image is resized to, in pixels (32-2048).",
        kind="whole number", unit="pixels", minimum=32, maximum=MAX_IMAGE_SIZE)
    content_layer: int = _option(
        3, "The layer whose feature maps define content: its index in extract_features' list, or its name "
        "(cs.describe_layers; the backbone's layer_names, e.g. 'fire2', 'relu4_2')",
        kind="layer index", minimum=0)
    content_weight: float = _option(
        5e-2, "Weight of the content loss.",
        kind="number", minimum=0, slider=Slider("content weight", "log", step=0.05))
    style_layers: tuple[int, ...] = _option(
        (1, 4, 6, 7), "The layers whose Gram matrices define style: indices or names, as content_layer.",
        kind="layer index", minimum=0, item="style layer")
    style_weights: tuple[float, ...] = _option(
        (2e4, 500.0, 12.0, 1.0), "Weight of the style loss at each style layer.",
        kind="number", minimum=0, item="style weight", slider=Slider("style weight, layer {layer}", "log", step=0.05))
    tv_weight: float = _option(
        5e-2, "Weight of the total variation loss (smoothness).",
        kind="number", minimum=0, slider=Slider("TV weight", "log", step=0.05))
    photorealism_weight: float = _option(
        0.0, "Weight of the photorealism regularization of Luan et al. (Deep Photo Style Transfer, CVPR 2017, "
        "Sec. 3.1): the result must stay, in every 3 x 3 window, an affine recolouring of the content photo (its "
        "Matting Laplacian; notebook 06); 0: off. About 3000 with CS231n's weights at 128-192 px",
        kind="number", minimum=0, slider=Slider("photorealism weight", "log", step=0.05))
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
        "then a short polish at full size, reaching the same loss sooner (docs/benchmark.md has the speedups; a "
        "similar, not the same, image), "
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
        problems = self._layers_by_index()
        for option in dataclasses.fields(self):
            value, wrong = _checked(option, getattr(self, option.name))
            object.__setattr__(self, option.name, value)  # the same value; a sequence as a tuple
            problems += wrong
        problems += self._inconsistencies()
        if problems:
            raise ValueError("Invalid style transfer settings: " + "; ".join(problems) + ".")

    def _layers_by_index(self) -> list[str]:
        """Replace layer names in ``content_layer`` and ``style_layers`` by their indices in the
        backbone's list (``cs231n_style.backbones``); returns what was wrong (an unknown name, with
        the closest ones)."""
        if self.backbone not in BACKBONE_NAMES:
            return []  # said by the field's own check
        backbone, problems = get_backbone(self.backbone), []

        def index(layer):
            if not isinstance(layer, str):
                return layer
            try:
                return backbone.index(layer)
            except ValueError as error:
                problems.append(str(error).rstrip("."))
                return layer

        object.__setattr__(self, "content_layer", index(self.content_layer))
        if isinstance(self.style_layers, (list, tuple)):
            object.__setattr__(self, "style_layers", tuple(index(layer) for layer in self.style_layers))
        return problems

    @classmethod
    def for_backbone(cls, backbone: str, **changes) -> TransferSettings:
        """Settings with a backbone's default layers and weights (``cs231n_style.backbones``: CS231n's for
        SqueezeNet, Gatys et al.'s layers for VGG), then ``changes``.

        Args:
            backbone: ``"squeezenet1_1"``, ``"vgg16"`` or ``"vgg19"``.
            **changes: other fields, by name (layers by index or name).

        Returns:
            A valid ``TransferSettings``.

        Raises:
            ValueError: for an unknown backbone (the message lists them) or invalid changes.
        """
        defaults = get_backbone(backbone).default_settings()
        return cls(backbone=get_backbone(backbone).name, **{**defaults, **changes})

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

    @functools.cached_property
    def total_steps(self) -> int:
        """Optimization steps of a whole run, the length of a finished run's history: the sum over
        its stages (:func:`plan_stages`): ``num_steps``, twice that with a coarse stage
        (``coarse_size`` > 0); with ``speed="fast"``, 150 for 200 from 192 px up."""
        return sum(stage.settings.num_steps for stage in plan_stages(self))

    @property
    def deepest_layer(self) -> int:
        """Index of the deepest layer any loss needs: the network is not run beyond it."""
        return max(self.content_layer, *self.style_layers) if self.style_layers else self.content_layer

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



# --- Stages: the sizes a run optimizes at, and the weights for each ------------------------------

@dataclass(frozen=True)
class Stage:
    """One optimization stage of a run: the settings it runs with, and how it starts.

    Attributes:
        settings: the stage's own settings: its ``image_size`` and ``style_size``, its steps and
            schedule, its content and TV weights for its size (``coarse_size`` and
            ``weights_size`` 0).
        add_detail: start from the previous stage's result upsampled *plus* the content image's
            finer detail (the fast mode's full-size stage; ``cs231n_style._parts.add_detail``),
            not from the upsampled result alone.
    """

    settings: TransferSettings
    add_detail: bool = False


#: The fast mode's plan (``speed="fast"``; docs/benchmark.md "Fast mode: time to quality" has the
#: measurements): CS231n's schedule in ``FAST_COARSE_STEPS * num_steps`` Adam steps at
#: ``FAST_COARSE_FRACTION`` of the size, then ``FAST_FINE_STEPS * num_steps`` at full size from the
#: upsampled result plus the photo's detail: 100 + 50 steps for CS231n's 200.
FAST_COARSE_FRACTION, FAST_COARSE_STEPS, FAST_FINE_STEPS = 0.5, 0.5, 0.25

#: The smallest coarse stage (shorter side, pixels) the fast mode runs: below it (content images under
#: 192 px) it runs the exact loop. At 128 px, a 64 px coarse stage ended 3% above the exact loop's
#: loss; at 192 px and above, below it.
MIN_COARSE_SIZE = 96

#: The fewest steps (``num_steps``) the fast mode splits into stages; below it, the exact loop.
MIN_FAST_STEPS = 10


def plan_stages(settings: TransferSettings) -> list[Stage]:
    """The stages of a run, in order.

    * ``speed="exact"`` without ``coarse_size``: one stage, ``settings`` itself (CS231n's loop runs
      on exactly the settings given).
    * ``coarse_size`` > 0: coarse to fine (Gatys et al., 2017, Sec. 6), :func:`coarse_to_fine`.
    * ``speed="fast"``: coarse to fine at half the size, each stage in a fraction of ``num_steps``
      (:data:`FAST_COARSE_STEPS`, :data:`FAST_FINE_STEPS`, the Adam schedule compressed in
      proportion), the full-size stage starting with the photo's detail added (when the run starts
      from the photo, ``init="content"``). Under :data:`MIN_COARSE_SIZE` for the coarse stage or
      :data:`MIN_FAST_STEPS` steps: the exact loop's one stage.

    Every stage's content and TV weights are made for its size by :func:`weights_for_size`, the
    weights being meant for ``weights_size``, or when that is 0 for the run's ``image_size``.

    Args:
        settings: valid :class:`TransferSettings`.

    Returns:
        A list of one or two :class:`Stage`. Raises nothing for valid settings.
    """
    if settings.speed == "exact" and settings.coarse_size:
        return coarse_to_fine(settings)
    coarse_size = int(FAST_COARSE_FRACTION * settings.image_size)
    if settings.speed == "exact" or coarse_size < MIN_COARSE_SIZE or settings.num_steps < MIN_FAST_STEPS:
        return [Stage(weights_for_size(settings, settings.weights_size))]  # (0: the settings themselves)
    coarse, fine = coarse_to_fine(settings.replace(coarse_size=coarse_size))
    coarse_steps = max(1, round(FAST_COARSE_STEPS * settings.num_steps))
    fine_steps = max(1, round(FAST_FINE_STEPS * settings.num_steps))
    return [Stage(_compressed(coarse.settings, coarse_steps)),
            Stage(_compressed(fine.settings, fine_steps), add_detail=settings.init == "content")]


def _compressed(stage: TransferSettings, steps: int) -> TransferSettings:
    """``stage`` in ``steps`` steps, its Adam schedule (``decay_at``, ``clamp_until``) scaled to fit."""
    scale = steps / stage.num_steps if stage.num_steps else 1.0
    return stage.replace(num_steps=steps, decay_at=round(stage.decay_at * scale),
                         clamp_until=round(stage.clamp_until * scale))


def coarse_to_fine(settings: TransferSettings) -> list[Stage]:
    """The two stages of coarse to fine (Gatys et al., 2017, Sec. 6), ``num_steps`` each: the whole
    optimization at the shorter side ``coarse_size``, then at ``image_size`` from its upsampled result.

    The coarse stage runs with the style image shrunk by the same factor, so that it is the full run
    in miniature (strokes keep their size relative to the image), and with the content and TV
    weights made for its size (:func:`weights_for_size`; the weights are meant for
    ``weights_size``, or when that is 0 for ``image_size``). The fine stage runs one Adam at
    ``decayed_learning_rate`` from its first step to its last: at ``learning_rate`` (CS231n: 3.0)
    Adam's first steps move every pixel by about 3 normalized units whatever the gradient, which
    would wipe out what the coarse stage made; and a fresh Adam at ``decay_at`` would move every
    pixel by the rate once more.

    Args:
        settings: valid :class:`TransferSettings` with ``coarse_size`` > 0.

    Returns:
        Two :class:`Stage` (their settings with ``coarse_size`` and ``weights_size`` 0). Raises
        nothing for valid settings.
    """
    reference = settings.weights_size or settings.image_size
    scale = settings.coarse_size / settings.image_size
    coarse = settings.replace(image_size=settings.coarse_size, style_size=max(32, round(settings.style_size * scale)),
                              coarse_size=0)
    fine = settings.replace(coarse_size=0, learning_rate=settings.decayed_learning_rate, decay_at=settings.num_steps)
    return [Stage(weights_for_size(coarse, reference)), Stage(weights_for_size(fine, reference))]


def weights_for_size(stage: TransferSettings, reference: int) -> TransferSettings:
    """``stage`` with its content and TV weights, meant for a ``reference`` px image, made for its
    own ``image_size``: multiplied by ``(reference / image_size) ** 2``. The one place of the rule,
    for every stage of every run (:func:`plan_stages`).

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


# --- Runs under nbgrader -------------------------------------------------------------------------

#: Under nbgrader's autograde and validate (it sets ``NBGRADER_EXECUTION`` in the kernel), every run
#: is cut to this many steps per stage at this shorter side: no run is graded (only the check cells
#: are), and nbgrader stops a cell after 30 s by default, on a grading machine that may be busy.
GRADING_STEPS, GRADING_SIZE = 5, 64


def cut_while_grading(settings: TransferSettings) -> TransferSettings:
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


