"""The fast mode of style transfer, ``TransferSettings(speed="fast")`` (not part of the lesson: skip it).

The default loop (``speed="exact"``) computes exactly what CS231n's loop computes, bit for bit. The
fast mode gives that up for the time a user waits: it aims at an image *as good as* the exact
loop's after its 200 steps - the same total loss (content + style + TV), evaluated in float32 by
:func:`float32_loss` / :class:`LossEvaluator` with the student's own loss functions, *and* as
stylized (a style loss close to the exact loop's, and the same look side by side) - in a fraction
of the time. docs/benchmark.md ("Fast mode: time to quality") has the numbers and the images;
tools/benchmark.py makes them.

**The fast mode: coarse to fine** (Gatys et al., "Controlling Perceptual Factors in Neural Style
Transfer", CVPR 2017, Sec. 6), :data:`FAST_PLAN`. CS231n's schedule (Adam at learning rate 3.0,
then 0.1) runs in half the steps at half the size, where a step costs about a quarter. The coarse
stage is the full run in miniature: the style image is shrunk by the same factor (strokes keep
their size relative to the image), and the content and TV weights are multiplied by the ratio of
the areas, because those two losses are sums over pixels while the style loss's Gram matrices are
normalized; so the three keep the balance the user chose (:func:`_stages`; the exact mode's rule
for ``weights_size``, with the run's own size as the reference when that is 0). Its result is
upsampled, the photo's finer detail is added back (:func:`_add_detail`, a Laplacian pyramid's
idea), and Adam at the decayed rate polishes it for a quarter of the steps at full size (100 + 50
steps for CS231n's 200). On a 2-core CPU it reached the 200-step loss of CS231n's loop written
plainly 3.2-4.2x sooner at 192 px on six content/style pairs and 4.0-6.4x sooner at 512 px on four
(measured with 40 and with 60 full-size steps: each reached it before its 40th), with the style
loss within about 12% of that loop's and images that look alike (docs/benchmark.md). Content
images under 192 px (a coarse stage under :data:`MIN_COARSE_SIZE`) and budgets under
:data:`MIN_FAST_STEPS` run the exact loop: there, the coarse stage is too small for SqueezeNet's
deeper style layers (it ended above the exact loop's loss), or too short to split.

**Tried, measured and left as** :class:`FastPlan` **options for the benchmark:**

1. **L-BFGS from the photo** (the first fast mode). Gatys et al. (2016) optimized with L-BFGS;
   with a strong-Wolfe line search (as in PyTorch's neural style tutorial) and a short history
   (:data:`LBFGS_HISTORY`) it reached the exact loop's total loss after 60 evaluations, 5-6x
   sooner at 192 and 512 px. But the images were not as good: L-BFGS finds a minimum near the photo (a
   lower content loss, a style loss 52-70% higher at the same total), a lightly textured photo
   rather than a painting. CS231n's Adam at learning rate 3.0 first moves every pixel by about 3
   normalized units and rebuilds the image from there, in the painting's colours and strokes; the
   coarse stage keeps that, cheaply. L-BFGS after the coarse stage (``optimizer="lbfgs"``)
   reached the target about as soon, with a higher style loss than Adam's polish.
2. **bfloat16 where the device computes it natively** (``FastPlan.precision="auto"``): the
   network (convolutions, ReLU, pooling, concatenation) in bfloat16, channels-last (NHWC). Never
   bfloat16 in NCHW layout: on a Zen 5 CPU those convolutions gave wrong results (the loss stuck
   from step 4; pytorch/pytorch#163347). :func:`low_precision_dtype` says where: CPUs with
   AVX512-BF16 or AMX (not where oneDNN merely emulates bfloat16), CUDA (bfloat16, or float16 where
   bfloat16 is not supported - *untested on CUDA*: no GPU was available when this was written).
   The student's loss functions receive what they always receive: float32, NCHW contiguous maps
   (converted at the boundary, one copy per map a loss reads) and the float32 image, so the Gram
   matrices - 40% of an iteration - stay float32. That is why it gains little here: ~6% per
   evaluation at 512 px, less than the probe and the slightly slower convergence cost, so the
   fast mode stays float32. Guards whenever it is used: a probe (:func:`_probe`) on the starting
   image - the loss within 2% of float32's and the gradient's cosine to float32's >= 0.95, else
   float32 - and a check of the finished run (:func:`_doubt`) - the image's float32 loss finite
   and within 10% of what the run computed, the last stage's loss falling - else the run is redone
   in float32. ``TransferResult.precision`` says which ran, and why.

``TransferResult.final_loss`` holds the float32 loss terms of the returned image (clamped to
[-clamp, clamp] after L-BFGS, as the exact mode's L-BFGS does; after Adam, as the exact mode's
Adam leaves it). ``history`` records each step's loss as the run computed it, the coarse stage's
at the coarse size: a progress trace, not the yardstick.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._pooling import network_for
from .transfer import (
    LossFunctions,
    TransferResult,
    TransferSettings,
    _load_images,
    _initial_image,
    _Monitor,
    _Objective,
    _run_adam,
    _stages as _exact_stages,
    _targets,
    _Targets,
    _Terms,
    _lbfgs_evaluations,
    _terms_to_use,
    _weights_for_size,
)

__all__ = ["FastPlan", "FAST_PLAN", "LossEvaluator", "fast_total_steps", "float32_loss", "low_precision_dtype",
           "run_fast"]

#: L-BFGS history length of the benchmark's L-BFGS variants (see the module docstring).
LBFGS_HISTORY = 10

#: The smallest coarse stage (shorter side, pixels) worth running: below it (content images under
#: 192 px with :data:`FAST_PLAN`) the fast mode runs the exact mode's loop. At 128 px, a 64 px
#: coarse stage ended 3% above the exact loop's loss; at 192 px and above, below it.
MIN_COARSE_SIZE = 96

#: The fewest steps (``num_steps``) the fast mode splits into stages; below it, the exact mode's
#: loop (0 steps: the content image, as the exact mode returns it).
MIN_FAST_STEPS = 10


@dataclass(frozen=True)
class FastPlan:
    """How a fast run optimizes; :data:`FAST_PLAN` is ``speed="fast"``, the others are the
    benchmark's single-idea variants.

    Attributes:
        precision: ``"auto"`` (low precision where :func:`low_precision_dtype` finds it, guarded
            by a probe) or ``"float32"``.
        optimizer: the full-size stage's: ``"adam"`` (CS231n's schedule if it is the only stage,
            else Adam at ``decayed_learning_rate``) or ``"lbfgs"`` (strong Wolfe,
            :data:`LBFGS_HISTORY`). A coarse stage always runs Adam with CS231n's schedule.
        coarse_fraction: the coarse stage's size as a fraction of ``image_size`` (0 for none).
        coarse_steps, fine_steps: steps (loss evaluations) of each stage as fractions of
            ``num_steps`` (``fine_steps`` alone when there is no coarse stage).
        add_detail: start the full-size stage from the upsampled coarse result plus the content
            image's finer detail (:func:`_add_detail`), not from the upsampled result alone (only
            with ``init="content"``: a run from noise never sees the photo's pixels).
    """

    precision: str = "float32"
    optimizer: str = "adam"
    coarse_fraction: float = 0.5
    coarse_steps: float = 0.5
    fine_steps: float = 0.25
    add_detail: bool = True


#: ``speed="fast"``: in float32, CS231n's schedule in 0.5 * num_steps Adam steps at half the size,
#: then the photo's detail added and 0.25 * num_steps Adam steps at full size (100 + 50 for
#: CS231n's 200; module docstring).
FAST_PLAN = FastPlan()


# --- precision --------------------------------------------------------------------------------

def low_precision_dtype(device: torch.device) -> torch.dtype | None:
    """The low-precision dtype the fast mode may use on ``device``, or ``None`` for float32 only.

    CPU: ``torch.bfloat16`` if oneDNN is available and the CPU computes bfloat16 natively
    (AVX512-BF16 or AMX); ``_is_mkldnn_bf16_supported`` alone is not enough, it is also true
    where bfloat16 is emulated (slower than float32). CUDA: bfloat16 where supported, else
    float16. Any other device: ``None``.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type != "cpu":
        return None
    try:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return torch.bfloat16 if (torch.backends.mkldnn.is_available() and native
                                  and torch.ops.mkldnn._is_mkldnn_bf16_supported()) else None
    except (AttributeError, RuntimeError):  # another torch build: stay in float32
        return None


class _LowPrecisionObjective(_Objective):
    """:class:`_Objective` with the network run in ``dtype``, channels-last; the losses get float32
    NCHW contiguous maps. The caller's model is not touched (the layers are copied)."""

    def __init__(self, img, network, losses, settings, terms, targets, dtype: torch.dtype):
        super().__init__(img, network, losses, settings, terms, targets)
        self.dtype = dtype
        self.layers = copy.deepcopy(network).to(dtype=dtype, memory_format=torch.channels_last)
        for layer in self.layers:  # the fast CPU pooling of _pooling is for NCHW: plain pooling here
            if isinstance(layer, nn.MaxPool2d):
                layer.__class__ = nn.MaxPool2d
        self.needed = {settings.content_layer} if terms.content else set()
        if terms.style:
            self.needed |= set(settings.style_layers)

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        x = img.to(self.dtype).contiguous(memory_format=torch.channels_last)
        feats = []
        for index in range(self.terms.last_layer + 1):
            x = self.layers[index](x)
            feats.append(x.to(torch.float32, memory_format=torch.contiguous_format) if index in self.needed else x)
        return feats


# --- the shared float32 loss ------------------------------------------------------------------

@torch.no_grad()
def float32_loss(image: torch.Tensor, network: nn.Sequential, losses: LossFunctions, settings: TransferSettings,
                 terms: _Terms, targets: _Targets) -> dict[str, float]:
    """The loss terms of ``image`` in float32 with the given loss functions and targets.

    Args:
        image: a normalized image (1, 3, H, W), any float dtype and device; H, W those of the
            content target.
        network: float32 layers (``network_for(model, terms.last_layer)``).
        losses, settings, terms, targets: as in :func:`cs231n_style.style_transfer`.

    Returns:
        ``{"content", "style", "tv", "total"}`` as Python floats (an unused term is 0.0).
    """
    device = next(network.parameters()).device
    img = image.detach().to(device, torch.float32).contiguous()
    return {key: float(value) for key, value in _Objective(img, network, losses, settings, terms, targets)().items()}


class LossEvaluator:
    """The one yardstick of the benchmark and of the fast mode's ``final_loss``: the float32 total
    loss (content + style + TV) of an image, for one content image, style image and settings.

    Args:
        content_image, style_image: as in :func:`cs231n_style.style_transfer` (``style_image``
            may be ``None``).
        losses: :class:`cs231n_style.LossFunctions` (the student's or the solutions).
        model: SqueezeNet ``features``, float32, on the device to evaluate on.
        settings: :class:`cs231n_style.TransferSettings` (``image_size``, ``style_size``, layers
            and weights are used; with ``weights_size`` > 0, the content and TV weights scaled for
            ``image_size`` as the run scales them, ``transfer._weights_for_size``).

    Calling it with a normalized image (1, 3, H, W) of the content image's size returns the dict
    of :func:`float32_loss`. Raises what :func:`cs231n_style.style_transfer` raises for bad
    arguments.
    """

    def __init__(self, content_image, style_image, losses: LossFunctions, model: nn.Sequential,
                 settings: TransferSettings):
        self.terms = _terms_to_use(losses, settings, style_image, model)
        self.network = network_for(model, self.terms.last_layer)
        device = next(model.parameters()).device
        images = _load_images(content_image, style_image, None, settings, device)
        self.content, self.losses = images.content, losses
        self.settings = _weights_for_size(settings, settings.weights_size)
        self.targets = _targets(images, self.network, losses, settings, self.terms)

    def __call__(self, image: torch.Tensor) -> dict[str, float]:
        return float32_loss(image, self.network, self.losses, self.settings, self.terms, self.targets)


# --- the run ----------------------------------------------------------------------------------

def _probe(img, float32_objective: _Objective, low_objective: _LowPrecisionObjective) -> str | None:
    """Why the low-precision network must not be used (``None`` if it may): compares its loss and
    gradient at ``img`` with the float32 network's."""
    results = []
    for objective in (float32_objective, low_objective):
        img.grad = None
        total = objective()["total"]
        total.backward()
        results.append((total.detach().double(), img.grad.detach().double().flatten()))
    img.grad = None
    (loss32, grad32), (loss_low, grad_low) = results
    if not (torch.isfinite(loss_low) and torch.isfinite(grad_low).all()):
        return "its loss or gradient is not finite"
    if abs(loss_low - loss32) > 0.02 * abs(loss32):
        return f"its loss {float(loss_low):.6g} differs from float32's {float(loss32):.6g} by more than 2%"
    cosine = float(F.cosine_similarity(grad32, grad_low, dim=0))
    if not cosine >= 0.95:
        return f"its gradient's cosine to float32's is {cosine:.3f} (< 0.95)"
    return None


def _run_lbfgs_stage(img, objective: _Objective, evaluations: int, monitor: _Monitor) -> None:
    """At most ``evaluations`` loss evaluations of L-BFGS with the short :data:`LBFGS_HISTORY`;
    ``img`` ends as the evaluated image with the lowest loss (not clamped)."""
    _lbfgs_evaluations(img, objective, evaluations, monitor, history_size=LBFGS_HISTORY)


def _doubt(final: float, monitor: _Monitor, stage_start: int, optimizer: str) -> str | None:
    """Why a finished low-precision run must be redone in float32, or ``None``: its image's float32
    loss ``final`` is not finite, or more than 10% above the loss the run itself computed for that
    image (L-BFGS keeps the evaluated image with the lowest loss; Adam's last image moved one small
    step from the last evaluated one), so the low-precision network computed something else; or
    the last stage's loss never fell below its first value (stalled)."""
    totals = monitor.history()["total"][stage_start:]
    if not math.isfinite(final):
        return f"the result's float32 loss is {final}"
    own = (min(totals) if optimizer == "lbfgs" else totals[-1]) if totals else final
    if final > 1.1 * own:
        return f"the result's float32 loss {final:.6g} is far above the run's own {own:.6g}"
    if len(totals) >= 3 and not min(totals[1:]) < totals[0]:
        return f"the loss did not fall in the last stage (it stayed at or above {totals[0]:.6g})"
    return None


def _stages(settings: TransferSettings, plan: FastPlan) -> list[tuple[TransferSettings, str]]:
    """(settings, optimizer) of each stage of a fast run.

    Without a coarse stage, one stage of ``fine_steps``. With one: if it would be smaller than
    :data:`MIN_COARSE_SIZE`, or ``num_steps`` is under :data:`MIN_FAST_STEPS`, CS231n's whole
    schedule at full size (the exact mode's loop); else the
    exact mode's coarse to fine (``transfer._stages``: the style image shrunk by the same factor,
    the full-size stage at ``decayed_learning_rate``), and each stage gets its fraction of
    ``num_steps``, with the schedule (``decay_at``, ``clamp_until``) compressed in proportion.

    The content and TV weights of every stage are scaled by the exact mode's one rule
    (``transfer._weights_for_size``, applied by ``transfer._stages``), with the weights meant for
    ``weights_size``, or when that is 0 for the run's ``image_size``: so the coarse stage's are
    multiplied by the ratio of the areas, ``(image_size / coarse_size) ** 2``, and keep about the
    full size's balance (both losses are sums over pixels, though a smooth image's TV changes less
    with the size; the style loss's Gram matrices are normalized; the factor was measured to work,
    docs/benchmark.md), and the full-size stage's are those given (a factor of exactly 1.0).
    """
    reference = settings.replace(weights_size=settings.weights_size or settings.image_size)
    fine_steps = max(1, round(plan.fine_steps * settings.num_steps))
    if plan.coarse_fraction <= 0:
        return [(_compressed(_exact_stages(reference)[0], fine_steps), plan.optimizer)]
    coarse_size = int(plan.coarse_fraction * settings.image_size)
    if coarse_size < MIN_COARSE_SIZE or settings.num_steps < MIN_FAST_STEPS:  # the exact mode's loop
        return [(_exact_stages(reference)[0], "adam")]
    coarse, fine = _exact_stages(reference.replace(coarse_size=coarse_size))
    coarse_steps = max(1, round(plan.coarse_steps * settings.num_steps))
    return [(_compressed(coarse, coarse_steps), "adam"), (_compressed(fine, fine_steps), plan.optimizer)]


@torch.no_grad()
def _add_detail(img: torch.Tensor, content: torch.Tensor, coarse_content: torch.Tensor) -> None:
    """Add to ``img`` (the coarse result upsampled, (1, 3, H, W), normalized) the content image's
    detail finer than the coarse stage could see: ``content`` (1, 3, H, W) minus ``coarse_content``
    (the coarse stage's content image, (1, 3, h, w)) upsampled the same way (bilinear), in place.

    The idea of a Laplacian pyramid (Burt & Adelson, 1983): the coarse stage decides the low
    frequencies, the photo gives the band above them, as the exact loop starts from the photo's
    every detail. A coarse stage that changed nothing thus leaves exactly the photo (bar rounding).
    Without it the full-size stage starts from a blurred image and spends its steps sharpening it.
    Measured at 192 px with 40 full-size steps: four of five content/style pairs ended above the
    exact loop's 200-step loss without it, one with it; with 50 steps and it, all six tested
    reached it.
    """
    img += content - F.interpolate(coarse_content, size=content.shape[-2:], mode="bilinear", align_corners=False)


def fast_total_steps(settings: TransferSettings) -> int:
    """The number of steps (loss evaluations) of a ``speed="fast"`` run, all stages together
    (``TransferSettings.total_steps``).

    Args:
        settings: a valid :class:`cs231n_style.TransferSettings` (``speed`` is not read).

    Returns:
        An int >= 0: ``0.5 + 0.25`` of ``num_steps`` (rounded per stage) with :data:`FAST_PLAN`'s
        coarse stage (Gatys et al. 2017, Sec. 6); ``num_steps`` where the exact loop runs instead
        (under 192 px or :data:`MIN_FAST_STEPS` steps). Raises nothing for valid settings.
    """
    return sum(stage.num_steps for stage, _ in _stages(settings, FAST_PLAN))


def _compressed(stage: TransferSettings, steps: int) -> TransferSettings:
    """``stage`` in ``steps`` steps, its Adam schedule (``decay_at``, ``clamp_until``) scaled to fit."""
    scale = steps / stage.num_steps if stage.num_steps else 1.0
    return stage.replace(num_steps=steps, decay_at=round(stage.decay_at * scale),
                         clamp_until=round(stage.clamp_until * scale))


def run_fast(content_image, style_image, losses: LossFunctions, model: nn.Sequential, settings: TransferSettings,
             *, content_masks=None, plan: FastPlan = FAST_PLAN, progress: bool = True, preview_every: int = 0,
             callback=None, should_stop=None) -> TransferResult:
    """Style transfer in the fast mode (see the module docstring); arguments, return value and errors
    as :func:`cs231n_style.style_transfer`, which calls this for ``settings.speed == "fast"``.

    ``plan`` chooses the stages, optimizer and precision (:data:`FAST_PLAN` for the fast mode).
    ``settings.num_steps`` sets the budget: each stage gets its fraction of it (with
    :data:`FAST_PLAN` and 200: 100 Adam steps at half size, 50 at full size; under 192 px, the
    exact loop's 200). The result's ``image`` is a normalized
    float32 CPU tensor (1, 3, H, W) at full size (clamped to [-clamp, clamp] after L-BFGS);
    ``final_loss`` holds its float32 loss terms; ``precision`` says which dtype the network ran in
    and why; ``stages`` the size of each stage.

    The controls of Gatys et al. (2017) are the exact mode's only: with several style images,
    ``content_masks``, ``preserve_colors``, ``coarse_size`` or ``optimizer="lbfgs"`` this raises
    ValueError (:func:`_refuse_controls`).
    """
    _refuse_controls(style_image, content_masks, settings)
    run = _FastRun(content_image, style_image, losses, model, settings, plan)
    low_dtype = low_precision_dtype(run.device) if plan.precision == "auto" else None
    monitor_args = (progress, preview_every, callback, should_stop)
    begin = time.perf_counter()
    img, unclamped, monitor, note = run.attempt(low_dtype, *monitor_args)
    final = run.float32_loss(img)
    problem = None
    if note != "float32" and not monitor.stopped:  # the image as the run left it, before clamping
        problem = _doubt(run.float32_loss(unclamped)["total"], monitor, run.last_stage_start, plan.optimizer)
    if problem:
        img, _, monitor, _ = run.attempt(None, *monitor_args)
        note = f"float32 (the {note} run was redone in float32: {problem})"
        final = run.float32_loss(img)
    return TransferResult(image=img.to("cpu", torch.float32).contiguous(), history=monitor.history(),
                          settings=settings, seconds=time.perf_counter() - begin, stopped_early=monitor.stopped,
                          final_loss=final, precision=note, stages=tuple(stage.image_size for stage, _ in run.stages))


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


class _FastRun:
    """One fast-mode run's fixed parts (network, stages, the full-size image and targets), and one
    attempt at it in a given precision (:meth:`attempt`), stage after stage."""

    def __init__(self, content_image, style_image, losses: LossFunctions, model: nn.Sequential,
                 settings: TransferSettings, plan: FastPlan):
        self.content_image, self.style_image = content_image, style_image
        self.losses, self.settings, self.plan = losses, settings, plan
        self.terms = _terms_to_use(losses, settings, style_image, model)
        self.network = network_for(model, self.terms.last_layer)
        self.device = next(model.parameters()).device
        self.stages = _stages(settings, plan)
        images = _load_images(content_image, style_image, None, settings, self.device)
        self.full = images.content
        self.full_targets = _targets(images, self.network, losses, settings, self.terms)
        self.last_stage_start = 0  # index in the history where the last stage's evaluations begin

    @property
    def adds_detail(self) -> bool:
        """Whether the full-size stage gets the photo's detail (:func:`_add_detail`): only when the
        run starts from the photo (``init="content"``), as the exact loop does."""
        return self.plan.add_detail and self.settings.init == "content"

    def float32_loss(self, img: torch.Tensor) -> dict[str, float]:
        """The float32 loss terms of a full-size image (:func:`float32_loss`), with the full-size
        stage's weights (those given, or scaled for ``image_size`` with ``weights_size``)."""
        return float32_loss(img, self.network, self.losses, self.stages[-1][0], self.terms, self.full_targets)

    def _stage_targets(self, index: int, stage: TransferSettings) -> tuple[torch.Tensor, _Targets]:
        """The content image and targets of a stage (the coarse stage's from its smaller images)."""
        if index == len(self.stages) - 1:
            return self.full, self.full_targets
        images = _load_images(self.content_image, self.style_image, None, stage, self.device)
        return images.content, _targets(images, self.network, self.losses, stage, self.terms)

    def _objective(self, img, stage: TransferSettings, targets: _Targets, dtype, first: bool):
        """The stage's objective in ``dtype`` (float32 if ``None``); on the first stage the low
        precision must pass :func:`_probe`. Returns (objective, dtype kept, precision note or None)."""
        objective = _Objective(img, self.network, self.losses, stage, self.terms, targets)
        if dtype is None:
            return objective, None, None
        low = _LowPrecisionObjective(img, self.network, self.losses, stage, self.terms, targets, dtype)
        name = str(dtype).removeprefix("torch.")
        if first:
            refused = _probe(img, objective, low)
            if refused:
                return objective, None, f"float32 ({name} refused by the probe: {refused})"
            return low, dtype, name
        return low, dtype, None

    def _start(self, content: torch.Tensor, stage: TransferSettings, previous: torch.Tensor | None,
               previous_content: torch.Tensor | None) -> torch.Tensor:
        """A stage's starting image, a leaf tensor like ``content``: as the exact mode's
        (``settings.init``, or the previous stage's result upsampled), with the photo's finer
        detail added after a coarse stage (:meth:`adds_detail`, :func:`_add_detail`)."""
        img = _initial_image(content, stage, previous=previous)
        if previous_content is not None and self.adds_detail:
            _add_detail(img, content, previous_content)
        return img

    def attempt(self, dtype, progress, preview_every, callback, should_stop):
        """Run every stage with the network in ``dtype`` (float32 if ``None``).

        Returns:
            (image at full size, clamped after L-BFGS; the image as the run left it; the
            :class:`_Monitor` with the history; the precision note).
        """
        monitor = _Monitor(sum(stage.num_steps for stage, _ in self.stages), progress, preview_every, callback,
                           should_stop)
        note, img, previous_content = "float32", None, None
        with monitor:
            for index, (stage, optimizer) in enumerate(self.stages):
                content, targets = self._stage_targets(index, stage)
                img = self._start(content, stage, img, previous_content)
                previous_content = content
                objective, dtype, new_note = self._objective(img, stage, targets, dtype, first=index == 0)
                note = new_note or note
                self.last_stage_start = monitor.steps_done
                if optimizer == "lbfgs":
                    _run_lbfgs_stage(img, objective, stage.num_steps, monitor)
                else:
                    _run_adam(img, objective, stage, monitor)
                if monitor.stopped:
                    break
        unclamped = img.detach().clone()
        with torch.no_grad():
            if img.shape[-2:] != self.full.shape[-2:]:  # stopped in the coarse stage: as the next would start
                img = self._start(self.full, self.stages[-1][0], img, previous_content).detach()
            if self.stages[-1][1] == "lbfgs":  # as the exact mode's L-BFGS; Adam's schedule ends unclamped
                img = img.clamp(-self.settings.clamp, self.settings.clamp)
        return img.detach(), unclamped, monitor, note
