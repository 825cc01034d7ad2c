"""Backbones: the pretrained networks whose feature maps define content and style, and their layers.

Gatys et al. (CVPR 2016, Sec. 2) describe an image by the feature maps of VGG-19 (Simonyan and
Zisserman, 2015); CS231n, and this course by default, use SqueezeNet 1.1 (Iandola et al., 2016),
about 100 times smaller. Three backbones are known here, each torchvision's ``features`` part:

============== ============ ====================================================================
name           layers       default content / style layers (the source of each choice)
============== ============ ====================================================================
squeezenet1_1  13           ``fire2`` / ``relu_conv1``, ``fire3``, ``fire4``, ``fire5``: CS231n's
                            indices 3 / 1, 4, 6, 7 and weights (``TransferSettings()``'s defaults)
vgg16          31           ``relu4_2`` / ``relu1_1`` ... ``relu5_1``: a layer of block 4 for
                            content, the first of each block for style (the course's seed blog)
vgg19          37           ``relu4_2`` / ``relu1_1`` ... ``relu5_1``: Gatys et al. 2016, Sec. 3
============== ============ ====================================================================

**Layer names.** VGG's follow neural-style (Johnson, 2015) and Gatys et al.: block ``b`` (1-5),
``k``-th convolution in it: ``conv{b}_{k}``, its ReLU ``relu{b}_{k}``, the block's pooling
``pool{b}``. SqueezeNet's follow its authors' Caffe model (v1.1): ``conv1``, ``relu_conv1``,
``pool1``, ``fire2``, ``fire3``, ``pool3``, ``fire4``, ``fire5``, ``pool5``, ``fire6`` ... ``fire9``
(a fire module's output is already rectified). ``feats[i]`` of
:func:`cs231n_style.extract_features` is the output of the layer named ``backbone.layer_names[i]``.

**conv vs relu.** Gatys et al. name their layers ``conv4_2``, ``conv1_1`` ...: the blobs of Caffe's
VGG model, whose ReLUs work in place, so a "conv" blob holds the *rectified* map (their own PyTorch
port, leongatys/PytorchNeuralStyleTransfer, reads ``r42`` and ``r11`` ... ``r51``, the ReLU
outputs; neural-style uses ``relu4_2`` and ``relu1_1`` ...). torchvision keeps the convolution and
its ReLU as two layers, so the same maps are ``relu4_2`` and ``relu1_1`` ... here; ``conv4_2`` is
the map before the ReLU (negative values included), also available.

**Weights of the losses.** SqueezeNet's are CS231n's. For VGG the *layers* are the papers', but no
published weights fit this course's losses and torchvision's VGG: the weights Gatys et al. give
(Sec. 3: w_l = 1/5 per style layer and a ratio alpha / beta for each figure; 1e-3 and 1e-4 in their
arXiv version) are for Caffe's VGG, trained by its authors, rescaled by Gatys et al. so that each
filter's mean activation is 1 (Sec. 2), on 0-255 BGR images; torchvision's VGG weights were trained
again from scratch (their documentation says so) on normalized images, so their maps have other
magnitudes (the content loss scales with their square, the style loss with their fourth power). The
VGG defaults here are those of the PyTorch tutorial (Jacob, "Neural Transfer Using PyTorch"), which
uses torchvision's VGG-19 on images normalized as here: style weight 1e6 and content weight 1 on
*mean* squared errors, i.e., in this course's *sum* form (``style_loss``: sum over the C x C Gram
entries; ``content_loss``: sum over C x H x W), a style weight of 1e6 / C_l^2 per layer and a
content weight of 1 / (C H W) of the content layer, here for a 192 x 256 image (512 x 24 x 32 at
``relu4_2``). Gatys et al.'s own PyTorch port scales its style layers by 1 / C_l^2 too. No total
variation term (Gatys et al. and the tutorial have none). They were not tuned here: no VGG weights
are available offline.

**Pooling.** ``pooling="avg"`` replaces each max-pooling layer by an average-pooling layer of the
same size and stride: "for image synthesis we found that replacing the maximum pooling operation by
average pooling yields slightly more appealing results" (Gatys et al. 2016, Sec. 2). The default,
``"max"``, keeps torchvision's layers as they are.

**Weights files** are found as SqueezeNet's are (:mod:`cs231n_style.features`): ``weights_path=``, an
environment variable (``CS231N_STYLE_WEIGHTS`` for SqueezeNet, ``CS231N_STYLE_VGG16_WEIGHTS`` and
``CS231N_STYLE_VGG19_WEIGHTS``), torchvision's cache, the course's ``weights/`` folder
(``vgg16*.pth``, ``vgg19*.pth``), then torchvision's download (528 MiB and 548 MiB for VGG).
"""

from __future__ import annotations

import difflib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .features import SQUEEZENET_WEIGHTS, WeightsSource, find_weights_file, how_to_get, load_features

__all__ = [
    "BACKBONE_NAMES",
    "MEASURED_COSTS",
    "MEASURED_ON",
    "Backbone",
    "MeasuredCost",
    "average_pooling",
    "backbone_of",
    "cost_table",
    "find_backbone_weights",
    "get_backbone",
    "how_to_get_weights",
    "layer_indices",
    "load_backbone",
]

#: The backbones' names, as torchvision's builders are named.
BACKBONE_NAMES = ("squeezenet1_1", "vgg16", "vgg19")

#: Convolutions per block of VGG's five blocks (Simonyan and Zisserman 2015, Table 1, D and E).
_VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_VGG_CHANNELS = (64, 128, 256, 512, 512)  # of each block


def _vgg_layer_names(blocks: tuple[int, ...]) -> tuple[str, ...]:
    """``conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ...``: neural-style's names of VGG's layers."""
    names = []
    for block, convs in enumerate(blocks, start=1):
        for k in range(1, convs + 1):
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
        names.append(f"pool{block}")
    return tuple(names)


def _vgg_features(name: str) -> nn.Sequential:
    """torchvision's untrained VGG ``features`` (``make_layers`` of its configuration D or E), built without
    the classifier's 120 M parameters that ``torchvision.models.vgg16(weights=None)`` would also make."""
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs[{"vgg16": "D", "vgg19": "E"}[name]], batch_norm=False)


def _vgg_source(name: str, title: str, enum: str, file_mib: int, features_mib: int) -> WeightsSource:
    """Where VGG weights are looked for; the sizes (MiB, as torchvision's ``meta["_file_size"]``) are in the advice."""
    return WeightsSource(
        title, name, f"CS231N_STYLE_{name.upper()}_WEIGHTS", enum, functools.partial(_vgg_features, name),
        advice=(f"The file is torchvision.models.{enum}.IMAGENET1K_V1 ({file_mib} MiB): on a machine with internet, "
                f"python -c \"import torchvision; torchvision.models.{name}(weights='IMAGENET1K_V1')\" puts it in "
                f"torchvision's cache. Its features part alone (torch.save(model.features.state_dict(), "
                f"'{name}_features.pth'), {features_mib} MiB) is enough, in the same places."))


@dataclass(frozen=True)
class Backbone:
    """One backbone: its layers' names, default loss layers and weights, and where its weights come from.

    Attributes:
        name: ``"squeezenet1_1"``, ``"vgg16"`` or ``"vgg19"``.
        title: for people, e.g. ``"VGG-19"``.
        layer_names: the name of each layer of the ``features`` ``nn.Sequential``, by index.
        content_layer, style_layers: the default layers, by name.
        content_weight, style_weights, tv_weight: the default weights, as ``TransferSettings`` takes them.
        min_size: the smallest image side, in pixels, that all the layers take.
        weights: where the weights file is looked for (:class:`cs231n_style.features.WeightsSource`).
        source: where the defaults come from (paper, section).
    """

    name: str
    title: str
    layer_names: tuple[str, ...]
    content_layer: str
    content_weight: float
    style_layers: tuple[str, ...]
    style_weights: tuple[float, ...]
    tv_weight: float
    min_size: int
    weights: WeightsSource
    source: str

    def index(self, layer: str | int) -> int:
        """The index in ``extract_features``' list of a layer given by name (``"relu4_2"``) or index.

        Raises:
            ValueError: if the name is not one of :attr:`layer_names` (the message lists them and the
                closest ones) or the index is not in [0, len(layer_names) - 1].
        """
        count = len(self.layer_names)
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            if not 0 <= layer < count:
                raise ValueError(f"Layer index {layer} is out of range: {self.title} has layers 0-{count - 1}.")
            return int(layer)
        if isinstance(layer, str) and layer in self.layer_names:
            return self.layer_names.index(layer)
        close = difflib.get_close_matches(str(layer), self.layer_names, n=3)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"{layer!r} is not a layer of {self.title}.{hint} Its layers are, by index: "
                         f"{', '.join(self.layer_names)}.")

    def indices(self, layers) -> tuple[int, ...]:
        """:meth:`index` of each of ``layers`` (names or indices), as a tuple of ints."""
        if isinstance(layers, (str, int, np.integer)):
            raise ValueError(f"layers must be a list of layer names or indices, not a single {layers!r}: "
                             f"write [{layers!r}].")
        return tuple(self.index(layer) for layer in layers)

    def default_settings(self) -> dict:
        """The default layers (as indices) and weights, keyed by ``TransferSettings``' field names:
        ``content_layer``, ``content_weight``, ``style_layers``, ``style_weights``, ``tv_weight``."""
        return {"content_layer": self.index(self.content_layer), "content_weight": self.content_weight,
                "style_layers": self.indices(self.style_layers), "style_weights": self.style_weights,
                "tv_weight": self.tv_weight}


_GATYS_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
_TUTORIAL_STYLE_WEIGHTS = tuple(1e6 / channels**2 for channels in _VGG_CHANNELS)
_TUTORIAL_CONTENT_WEIGHT = 1 / (512 * 24 * 32)  # 1 / (C H W) of relu4_2 for a 192 x 256 image
_VGG_SOURCE_NOTE = ("the loss weights: the PyTorch tutorial's (style 1e6, content 1 on mean squared errors, "
                    "torchvision's VGG-19) in this course's sum form, not tuned here (see the module docstring)")


def _vgg_backbone(name: str, title: str, file_mib: int, features_mib: int, layers_source: str) -> Backbone:
    """A VGG backbone: Gatys et al.'s layers with the tutorial's weights (module docstring); the file sizes
    (MiB) go into the "how to get the weights" advice."""
    return Backbone(name, title, _vgg_layer_names(_VGG_BLOCKS[name]), content_layer="relu4_2",
                    content_weight=_TUTORIAL_CONTENT_WEIGHT, style_layers=_GATYS_STYLE,
                    style_weights=_TUTORIAL_STYLE_WEIGHTS, tv_weight=0.0, min_size=32,
                    weights=_vgg_source(name, title, f"{name.upper()}_Weights", file_mib, features_mib),
                    source=f"{layers_source}; {_VGG_SOURCE_NOTE}")


_BACKBONES = {
    "squeezenet1_1": Backbone(
        "squeezenet1_1", "SqueezeNet 1.1",
        ("conv1", "relu_conv1", "pool1", "fire2", "fire3", "pool3", "fire4", "fire5", "pool5",
         "fire6", "fire7", "fire8", "fire9"),
        content_layer="fire2", content_weight=5e-2, style_layers=("relu_conv1", "fire3", "fire4", "fire5"),
        style_weights=(2e4, 500.0, 12.0, 1.0), tv_weight=5e-2, min_size=17, weights=SQUEEZENET_WEIGHTS,
        source="CS231n, assignment 3 (style transfer): content layer 3, style layers 1, 4, 6, 7 and their weights, "
               "as TransferSettings()'s defaults"),
    "vgg16": _vgg_backbone(
        "vgg16", "VGG-16", 528, 56,
        "the course's seed blog: content from a convolution of block 4 (conv4_2, as Gatys et al.), style from the "
        "first convolution of each block, each read after its ReLU"),
    "vgg19": _vgg_backbone(
        "vgg19", "VGG-19", 548, 76,
        "Gatys et al., Image Style Transfer Using Convolutional Neural Networks, CVPR 2016, Sec. 3: content "
        "'conv4_2', style 'conv1_1', 'conv2_1', 'conv3_1', 'conv4_1', 'conv5_1' (Caffe blobs, rectified in place: "
        "relu4_2, relu1_1 ... here)"),
}


def get_backbone(backbone: str | Backbone | nn.Sequential) -> Backbone:
    """The :class:`Backbone` of a name, of a model (:func:`backbone_of`), or the one given.

    Args:
        backbone: ``"squeezenet1_1"``, ``"vgg16"``, ``"vgg19"`` (case-insensitive), a
            :class:`Backbone`, or an ``nn.Sequential`` from :func:`load_backbone` or
            :func:`cs231n_style.load_squeezenet`.

    Raises:
        ValueError: if the name is none of :data:`BACKBONE_NAMES`, or the model is none of them.
    """
    if isinstance(backbone, Backbone):
        return backbone
    if isinstance(backbone, nn.Module):
        found = backbone_of(backbone)
        if found is None:
            raise ValueError(f"This {type(backbone).__name__} is none of the backbones {', '.join(BACKBONE_NAMES)}: "
                             "pass the model from load_backbone(name) or cs.load_squeezenet().")
        return found
    key = backbone.lower().replace("-", "") if isinstance(backbone, str) else backbone
    if key not in _BACKBONES:
        raise ValueError(f"Unknown backbone {backbone!r}: choose one of {', '.join(map(repr, BACKBONE_NAMES))}.")
    return _BACKBONES[key]


def layer_indices(backbone: str | Backbone | nn.Sequential, layers) -> tuple[int, ...]:
    """The indices in ``extract_features``' list of ``layers`` of ``backbone``.

    Args:
        backbone: a name, :class:`Backbone` or model, as :func:`get_backbone` takes.
        layers: a list of layer names (``["relu1_1", "relu2_1"]``) and/or indices (ints).

    Returns:
        A tuple of ints, in the order given.

    Raises:
        ValueError: for an unknown backbone or layer (see :meth:`Backbone.index`).
    """
    return get_backbone(backbone).indices(layers)


def load_backbone(name: str = "squeezenet1_1", weights_path: str | os.PathLike | None = None,
                  device: torch.device | str = "cpu", pooling: str = "max", download: bool = True) -> nn.Sequential:
    """Return a backbone's ImageNet-pretrained ``features``, frozen, in eval mode, ready for ``extract_features``.

    ``load_backbone("squeezenet1_1", ...)`` is :func:`cs231n_style.load_squeezenet` (the same model,
    the same weights lookup, the same errors).

    Args:
        name: one of :data:`BACKBONE_NAMES`.
        weights_path: a ``.pth`` file holding the whole model's state dict (torchvision's file,
            ``features.0.weight``, ...) or only that of ``features`` (``0.weight``, ...). If ``None``:
            the backbone's environment variable, torchvision's cache, the course's ``weights/``
            folders, then the download (module docstring of :mod:`cs231n_style.features`).
        device: where to put the model (see :func:`cs231n_style.get_device`).
        pooling: ``"max"`` (torchvision's layers, as trained) or ``"avg"`` (each max-pooling layer
            replaced by an average-pooling one, Gatys et al. 2016, Sec. 2; :func:`average_pooling`).
        download: allow torchvision to download the weights when no file is found.

    Returns:
        An ``nn.Sequential`` of ``len(get_backbone(name).layer_names)`` layers (13, 31 or 37) taking
        a normalized float32 image (N, 3, H, W) of at least ``min_size`` pixels a side, with
        ``requires_grad=False`` parameters and out-of-place ReLUs (torchvision's VGG ReLUs work in
        place: layer ``conv4_2``'s output would be overwritten by ``relu4_2``'s; see
        :func:`cs231n_style.features.load_features`).

    Raises:
        ValueError: for an unknown name or pooling, or a file that is not this backbone's state dict.
        FileNotFoundError: if a given path (argument or environment variable) does not exist.
        RuntimeError: if no file is found and the download fails or ``download=False``; the message
            lists where it looked and how to get the file.
    """
    backbone = get_backbone(name)
    if pooling not in ("max", "avg"):
        raise ValueError(f"pooling must be 'max' (as trained) or 'avg' (Gatys et al. 2016), not {pooling!r}.")
    model = load_features(backbone.weights, weights_path, device, download)
    return average_pooling(model) if pooling == "avg" else model


def average_pooling(model: nn.Sequential) -> nn.Sequential:
    """``model`` with each ``nn.MaxPool2d`` layer replaced, in place, by an ``nn.AvgPool2d`` of the same
    kernel size, stride, padding and ``ceil_mode`` (Gatys et al. 2016, Sec. 2).

    Args:
        model: an ``nn.Sequential`` (a backbone's ``features``).

    Returns:
        ``model`` itself. A window that ``ceil_mode`` lets overhang the map averages the values inside it.

    Raises:
        ValueError: if a max-pooling layer is dilated (average pooling has no dilation).
    """
    for index, layer in enumerate(model):
        if isinstance(layer, nn.MaxPool2d):
            if layer.dilation not in (1, (1, 1)):
                raise ValueError(f"Layer {index} is a dilated max-pooling layer: no average pooling matches it.")
            model[index] = nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
    return model


def _layer_signature(layer: nn.Module) -> tuple:
    """What identifies a layer's architecture (not its parameters' values); both poolings alike."""
    if isinstance(layer, nn.Conv2d):
        return ("conv", layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
    if isinstance(layer, nn.ReLU):
        return ("relu",)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        return ("pool", *(tuple(v) if isinstance(v, (tuple, list)) else (v, v)
                          for v in (layer.kernel_size, layer.stride or layer.kernel_size)), layer.ceil_mode)
    # SqueezeNet's Fire module: a squeeze convolution, then two expand convolutions
    squeeze, expand1x1, expand3x3 = (getattr(layer, part, None) for part in ("squeeze", "expand1x1", "expand3x3"))
    if isinstance(squeeze, nn.Conv2d) and isinstance(expand1x1, nn.Conv2d) and isinstance(expand3x3, nn.Conv2d):
        return ("fire", squeeze.in_channels, squeeze.out_channels, expand1x1.out_channels, expand3x3.out_channels)
    return (type(layer).__name__,)


@functools.cache
def _reference_signature(name: str) -> tuple:
    return tuple(_layer_signature(layer) for layer in _BACKBONES[name].weights.build())


def backbone_of(model: nn.Module) -> Backbone | None:
    """The :class:`Backbone` whose architecture ``model`` has (max or average pooling), or ``None``.

    Args:
        model: an ``nn.Sequential``, e.g. from :func:`load_backbone` or :func:`cs231n_style.load_squeezenet`.

    Returns:
        The backbone, or ``None`` for any other module (another network, or only some of a backbone's layers).
    """
    if not isinstance(model, nn.Sequential):
        return None
    signature = tuple(_layer_signature(layer) for layer in model)
    for name, backbone in _BACKBONES.items():
        if len(signature) == len(backbone.layer_names) and signature == _reference_signature(name):
            return backbone
    return None


def find_backbone_weights(name: str) -> Path | None:
    """The weights file :func:`load_backbone` would load without ``weights_path``, or ``None`` (it would
    download); nothing is downloaded or read. For showing a choice only where its weights are there.

    Raises:
        ValueError: for an unknown name.
    """
    path, _ = find_weights_file(get_backbone(name).weights)
    return path if path is not None and path.is_file() else None


def how_to_get_weights(name: str) -> str:
    """Where :func:`load_backbone` looks for ``name``'s weights and how to get them (the end of its error)."""
    return how_to_get(get_backbone(name).weights)


@dataclass(frozen=True)
class MeasuredCost:
    """One row of the measured cost table: one backbone, one image size, one style transfer iteration.

    Measured by ``tools/benchmark_backbones.py`` (its docstring says how each column is measured),
    with random weights (speed and memory do not depend on their values) and the backbone's default
    layers and weights, with Adam.

    Attributes:
        backbone: one of :data:`BACKBONE_NAMES`.
        parameters: parameters of the ``features`` part (the layers style transfer uses) and, in
            brackets, of torchvision's whole model, e.g. ``"0.72 M (1.2 M)"``.
        weights_file: the ``features`` part saved alone and, in brackets, torchvision's download.
        layers_run: how many layers one iteration runs, up to the deepest default loss layer.
        size: the content and style images' shorter side, in pixels.
        gflop: GFLOP per iteration (convolutions and matmuls, forward and backward).
        ms, cpu_ms: wall and CPU (all threads) milliseconds per iteration.
        gflop_per_cpu_s: GFLOP per CPU second.
        peak_mib, growth_mib: the process's peak resident memory (VmHWM) and its growth from just
            before the first run, MiB.
    """

    backbone: str
    parameters: str
    weights_file: str
    layers_run: str
    size: int
    gflop: float
    ms: float
    cpu_ms: float
    gflop_per_cpu_s: float
    peak_mib: float
    growth_mib: float


#: When and where :data:`MEASURED_COSTS` was measured.
MEASURED_ON = ("2026-12-03 on the course's 2-core VM, 2 torch threads (load average 0.5-1.9; docs/benchmark.md, "
               "\"Backbones\", says more)")

_SQUEEZENET = ("squeezenet1_1", "0.72 M (1.2 M)", "2.8 MiB (5 MiB)", "8 of 13 (to fire5)")
_VGG16 = ("vgg16", "14.71 M (138.4 M)", "56.1 MiB (528 MiB)", "26 of 31 (to relu5_1)")
_VGG19 = ("vgg19", "20.02 M (143.7 M)", "76.4 MiB (548 MiB)", "30 of 37 (to relu5_1)")

#: The cost of one iteration of each backbone at 192, 384 and 512 px (``tools/benchmark_backbones.py``'s
#: output, :data:`MEASURED_ON`): the one copy of the table that docs/benchmark.md and notebook 07 show
#: (:func:`cost_table`).
MEASURED_COSTS: tuple[MeasuredCost, ...] = (
    MeasuredCost(*_SQUEEZENET, 192, 2.0, 50, 95, 21, 771, 90),
    MeasuredCost(*_SQUEEZENET, 384, 8.3, 199, 325, 26, 959, 277),
    MeasuredCost(*_SQUEEZENET, 512, 14.8, 371, 727, 20, 1094, 412),
    MeasuredCost(*_VGG16, 192, 69.3, 615, 1235, 56, 998, 211),
    MeasuredCost(*_VGG16, 384, 277.5, 2279, 4534, 61, 1586, 799),
    MeasuredCost(*_VGG16, 512, 493.2, 4492, 8730, 57, 1969, 1182),
    MeasuredCost(*_VGG19, 192, 85.7, 807, 1623, 53, 1016, 188),
    MeasuredCost(*_VGG19, 384, 342.7, 2239, 4517, 76, 1640, 812),
    MeasuredCost(*_VGG19, 512, 609.2, 5706, 11274, 54, 2118, 1291),
)

_COST_HEADER = ("backbone", "parameters: features (whole model)", "weights file: features (torchvision's)",
                "layers run", "size (px)", "GFLOP / iteration", "ms / iteration", "CPU ms / iteration",
                "GFLOP / CPU second", "peak memory (VmHWM, growth)")


def cost_table(costs: tuple[MeasuredCost, ...] = MEASURED_COSTS) -> str:
    """``costs`` as the Markdown table of docs/benchmark.md ("Backbones") and notebook 07: one row per
    backbone and size, the backbone's own columns only on its first row (as ``tools/benchmark_backbones.py``
    prints it).

    Args:
        costs: rows, grouped by backbone (default: :data:`MEASURED_COSTS`).

    Returns:
        The table's lines joined by newlines, without a trailing newline.
    """
    lines = ["| " + " | ".join(_COST_HEADER) + " |", "|" + "|".join("---:" for _ in _COST_HEADER) + "|"]
    previous = None
    for row in costs:
        own = ([get_backbone(row.backbone).title, row.parameters, row.weights_file, row.layers_run]
               if row.backbone != previous else [""] * 4)
        previous = row.backbone
        cells = [*own, str(row.size), f"{row.gflop:.1f}", f"{row.ms:.0f}", f"{row.cpu_ms:.0f}",
                 f"{row.gflop_per_cpu_s:.0f}", f"{row.peak_mib:.0f} MiB (+{row.growth_mib:.0f})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
