"""Pretrained SqueezeNet 1.1 as a frozen feature extractor.

Gatys et al. (2016, Sec. 2) describe an image by the feature maps of a pretrained convolutional
network. Like CS231n, this course uses SqueezeNet 1.1 (Iandola et al., 2016) instead of VGG-19:
it has about 100 times fewer parameters (1.2 M against 144 M; a 5 MB file against 548 MB),
so style transfer runs on a laptop CPU.

The weights come from torchvision's weights API (``SqueezeNet1_1_Weights.IMAGENET1K_V1``) and are
looked for in this order:

1. an explicit file path (``load_squeezenet(weights_path=...)``);
2. a file named by the environment variable ``CS231N_STYLE_WEIGHTS``;
3. torchvision's own download cache (``$TORCH_HOME/hub/checkpoints``);
4. a ``weights/`` folder of the course (``squeezenet1_1*.pth``): in the working directory, in its
   parent (the notebooks run from ``notebooks/``) or at the root of the checkout the package is
   installed from. ``make course`` fills the checkout's from ``../shared/weights`` when that exists;
5. torchvision's download (needs the internet; about 5 MB).

When none of these has the file and the download fails, the error lists every place tried.

A file may hold the whole model's state dict (``features.0.weight``, ..., ``classifier.1.bias``)
or only that of ``features`` (``0.weight``, ...).

The other backbones (VGG-16 and VGG-19, :func:`cs231n_style.backbones.load_backbone`) are found by
the same rule, each with its own environment variable and file names (a :class:`WeightsSource`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "WEIGHTS_ENV_VAR",
    "describe_layers",
    "extract_features",
    "load_squeezenet",
]

WEIGHTS_ENV_VAR = "CS231N_STYLE_WEIGHTS"


@dataclass(frozen=True)
class WeightsSource:
    """Where one network's ImageNet weights are looked for, in the order of the module docstring.

    Attributes:
        title: the network's name in messages, e.g. ``"SqueezeNet 1.1"``.
        file_prefix: torchvision's file name stem, e.g. ``"squeezenet1_1"``: the course's ``weights/``
            folders are searched for ``{file_prefix}*.pth`` (not ``{file_prefix}_bn*``: the
            batch-normalized variant, another architecture).
        env_var: the environment variable that may name a file.
        weights_enum: the name of torchvision's weights enum in ``torchvision.models`` (e.g.
            ``"SqueezeNet1_1_Weights"``); its ``IMAGENET1K_V1`` entry gives the URL and the download.
        build: returns the untrained ``features`` (an ``nn.Sequential``): the architecture a file must fit.
        advice: a sentence added to the "how to get the weights" part of the errors (``""``: none).
    """

    title: str
    file_prefix: str
    env_var: str
    weights_enum: str
    build: Callable[[], nn.Sequential]
    advice: str = ""

    def weights(self):
        """torchvision's ``{weights_enum}.IMAGENET1K_V1`` (importing torchvision: seconds, on first use)."""
        import torchvision.models

        return getattr(torchvision.models, self.weights_enum).IMAGENET1K_V1

    def cache_path(self) -> Path:
        """Where torchvision's download puts the file (``$TORCH_HOME/hub/checkpoints/...``), read at call time."""
        return Path(torch.hub.get_dir()) / "checkpoints" / Path(self.weights().url).name

    def course_files(self, folder: Path) -> list[Path]:
        """The ``{file_prefix}*.pth`` files in ``folder`` (sorted by name), batch-normalized variants excluded."""
        if not folder.is_dir():
            return []
        return sorted(path for path in folder.glob(f"{self.file_prefix}*.pth")
                      if not path.name.startswith(f"{self.file_prefix}_bn"))


def _squeezenet_features() -> nn.Sequential:
    """torchvision's untrained ``squeezenet1_1().features``, imported on first use: importing torchvision
    takes seconds and about 160 MB, and ``import cs231n_style`` (the autograder's too, which never loads a
    network) does not need it."""
    from torchvision.models import squeezenet1_1

    return squeezenet1_1(weights=None).features


#: SqueezeNet 1.1's weights: ``$CS231N_STYLE_WEIGHTS``, ``squeezenet1_1*.pth``, ``SqueezeNet1_1_Weights``.
SQUEEZENET_WEIGHTS = WeightsSource("SqueezeNet 1.1", "squeezenet1_1", WEIGHTS_ENV_VAR, "SqueezeNet1_1_Weights",
                                   _squeezenet_features)

#: The checkout this package runs from, when it is one (an editable install): its weights/ is looked in.
_CHECKOUT = Path(__file__).resolve().parents[1]


def _course_weights(source: WeightsSource = SQUEEZENET_WEIGHTS) -> tuple[list[Path], Path | None]:
    """The course's ``weights/`` folders looked in (step 4 of the module docstring), and the first
    of ``source``'s files found in them (sorted by name), or ``None``."""
    folders = [Path.cwd() / "weights", Path.cwd().parent / "weights"]
    if (_CHECKOUT / "pyproject.toml").is_file():  # an editable install or a run from the checkout
        folders.append(_CHECKOUT / "weights")
    folders = list(dict.fromkeys(folder.resolve() for folder in folders))
    for folder in folders:
        found = source.course_files(folder)
        if found:
            return folders, found[0]
    return folders, None


def find_weights_file(source: WeightsSource, weights_path: str | os.PathLike | None = None
                      ) -> tuple[Path | None, str]:
    """The weights file steps 1-4 of the module docstring pick, and where it came from; no download.

    Args:
        source: the network's :class:`WeightsSource`.
        weights_path: an explicit file (step 1), or ``None``.

    Returns:
        ``(path, origin)``, ``origin`` one of ``"weights_path"``, ``"$<env_var>"``, ``"torchvision's
        cache"``, ``"the course's weights/ folder"``; or ``(None, "")`` when none of the four has
        a file. A path given by the argument or the variable is returned even if it does not exist
        (the loader then says so, rather than falling back to another file).
    """
    if weights_path is not None:
        return Path(weights_path).expanduser(), "weights_path"
    if os.environ.get(source.env_var):
        return Path(os.environ[source.env_var]).expanduser(), f"${source.env_var}"
    if source.cache_path().is_file():
        return source.cache_path(), "torchvision's cache"
    course_file = _course_weights(source)[1]
    if course_file is not None:
        return course_file, "the course's weights/ folder"
    return None, ""


def _features_state_dict(path: Path, origin: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt file
        raise ValueError(
            f"{str(path)!r} (from {origin}) is not a readable PyTorch weights file ({error}); "
            "a broken download can be deleted and fetched again."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
        raise ValueError(
            f"{str(path)!r} (from {origin}) holds a {type(state).__name__}, not a state dict (str -> tensor)."
        )
    return _features_part(state)


def _features_part(state: dict) -> dict:
    """A whole model's state dict reduced to its ``features`` part (prefix removed); a features-only one as is."""
    if any(key.startswith("features.") for key in state):
        state = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    return state


def _frozen(features: nn.Sequential, device: torch.device | str) -> nn.Sequential:
    for module in features:
        if isinstance(module, nn.ReLU):
            module.inplace = False  # so feats[i] really is layer i's output, not overwritten later
    features.requires_grad_(False)
    return features.eval().to(device)


def load_squeezenet(weights_path: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                    download: bool = True) -> nn.Sequential:
    """Return ImageNet-pretrained SqueezeNet 1.1 ``features``, frozen and in eval mode.

    Args:
        weights_path: a ``.pth`` file holding the whole model's or only ``features``' state dict.
            If ``None``: ``$CS231N_STYLE_WEIGHTS``, torchvision's cache, the course's ``weights/``
            folder, then the download (the module docstring gives the order).
        device: where to put the model (see :func:`cs231n_style.get_device`).
        download: allow torchvision to download the weights when no file is found.

    Returns:
        ``torchvision.models.squeezenet1_1().features``: an ``nn.Sequential`` of 13 layers
        taking a normalized float32 image (N, 3, H, W), with ``requires_grad=False`` parameters.

    Raises:
        FileNotFoundError: if a given path (argument or environment variable) does not exist.
        ValueError: if the file is not a SqueezeNet 1.1 state dict.
        RuntimeError: if no file is found and the download fails (offline); the message says
            how to get the file.
    """
    return load_features(SQUEEZENET_WEIGHTS, weights_path, device, download)


def load_features(source: WeightsSource, weights_path: str | os.PathLike | None = None,
                  device: torch.device | str = "cpu", download: bool = True) -> nn.Sequential:
    """Return ``source``'s ImageNet-pretrained ``features``, frozen, in eval mode, with out-of-place ReLUs.

    The file is the one :func:`find_weights_file` picks, else torchvision's download of
    ``source.weights()`` (which leaves the whole model's file in torchvision's cache).

    Args:
        source: the network's :class:`WeightsSource`.
        weights_path, device, download: as in :func:`load_squeezenet`.

    Returns:
        ``source.build()`` with the file's parameters: an ``nn.Sequential`` taking a normalized
        float32 image (N, 3, H, W), ``requires_grad=False`` parameters, on ``device``. Its top-level
        ReLUs are made out-of-place, so that a layer's output is not overwritten by the next ReLU
        (``extract_features`` returns every layer's output; see :func:`_frozen`).

    Raises:
        FileNotFoundError, ValueError, RuntimeError: as :func:`load_squeezenet`, naming ``source.title``.
    """
    features = source.build()
    path, origin = find_weights_file(source, weights_path)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"No weights file at {str(path)!r} (from {origin}).")
        try:
            features.load_state_dict(_features_state_dict(path, origin))
        except RuntimeError as error:
            # torch's first line is only "Error(s) in loading state_dict for Sequential:"; the
            # reasons (missing keys, size mismatches) follow, one per line.
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            reason = lines[1] if len(lines) > 1 else lines[0] if lines else type(error).__name__
            if len(reason) > 300:
                reason = reason[:300] + " ..."
            raise ValueError(
                f"{str(path)!r} (from {origin}) is not a {source.title} state dict: {reason}"
            ) from None
        return _frozen(features, device)
    if not download:
        raise RuntimeError(f"No {source.title} weights file found and download=False. {how_to_get(source)}")
    try:
        state = source.weights().get_state_dict(progress=True, check_hash=True)
    except Exception as error:  # URLError, HTTPError, socket errors, SSL errors...
        raise RuntimeError(f"Downloading the {source.title} weights failed ({error}). {how_to_get(source)}") from None
    features.load_state_dict(_features_part(state))
    return _frozen(features, device)


def how_to_get(source: WeightsSource = SQUEEZENET_WEIGHTS) -> str:
    """Where the weights were looked for and how to get them: the end of the loaders' "not found" errors.

    A function, not a constant: the cache folder follows ``$TORCH_HOME`` / ``torch.hub.set_dir`` at
    call time.
    """
    folders = ", ".join(repr(str(folder)) for folder in _course_weights(source)[0])
    text = (
        f"Looked in: weights_path= (not given), ${source.env_var} (not set), torchvision's cache "
        f"{str(source.cache_path())!r}, the course's weights/ folders {folders}, then the download. "
        f"To work offline, download {source.weights().url} on a machine with internet and put it in one of those "
        f"folders, or point ${source.env_var} (or weights_path=) at the file."
    )
    return f"{text} {source.advice}" if source.advice else text


def extract_features(x: torch.Tensor, model: nn.Sequential, up_to: int | None = None) -> list[torch.Tensor]:
    """Run ``x`` through ``model`` and return every layer's output (CS231n's ``extract_features``).

    Args:
        x: a normalized image batch, float tensor of shape (N, 3, H, W), on the model's device.
        model: the ``nn.Sequential`` from :func:`load_squeezenet` (or from
            :func:`cs231n_style.backbones.load_backbone`: any ``nn.Sequential`` works).
        up_to: index of the deepest layer needed; layers after it are not run (faster).
            ``None`` runs them all.

    Returns:
        A list of feature maps: ``feats[i]`` is layer i's output, shape (N, C_i, H_i, W_i),
        same dtype and device as ``x``. The list has ``up_to + 1`` entries (or ``len(model)``).

    Raises:
        ValueError: if ``x`` is not a 4-D tensor with 3 channels, its dtype or device differs from
            the model's, ``up_to`` is not an ``int`` in [0, len(model) - 1], or the image is too
            small for the layers run (SqueezeNet's 13 need at least 17 x 17 pixels, VGG's 32 x 32).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"extract_features expects an image batch of shape (N, 3, H, W); got {shape}. "
                         "Make one from an image with cs.preprocess(image).")
    weight = next(model.parameters(), None)  # None for a model without parameters (e.g. only pooling)
    if weight is not None and (x.dtype != weight.dtype or x.device != weight.device):
        raise ValueError(f"extract_features got a {x.dtype} image on {x.device}, but the model is {weight.dtype} on "
                         f"{weight.device}: convert it with x.to({str(weight.device)!r}, {weight.dtype}) "
                         "(a normalized image, as cs.preprocess makes).")
    if up_to is not None and (not isinstance(up_to, (int, np.integer)) or isinstance(up_to, bool)):
        raise ValueError(f"up_to must be an int layer index or None; got {up_to!r}.")
    last = len(model) - 1 if up_to is None else int(up_to)
    if not 0 <= last < len(model):
        raise ValueError(f"up_to must be in [0, {len(model) - 1}]; got {up_to}.")
    feats = []
    for index in range(last + 1):
        try:
            x = model[index](x)
        except RuntimeError as error:
            if "too small" not in str(error):
                raise
            raise ValueError(f"The image is too small for layer {index}: the feature maps reaching it are only "
                             f"{x.shape[2]} x {x.shape[3]} pixels. {_size_advice(model)}") from None
        feats.append(x)
    return feats


def _size_advice(model: nn.Sequential) -> str:
    """What to do about a too small image: the smallest size the whole of ``model`` takes, where
    ``model`` is one of the backbones (:func:`cs231n_style.backbones.backbone_of`)."""
    from .backbones import backbone_of

    backbone = backbone_of(model)
    if backbone is None:
        return "Use a larger image or a shallower layer."
    side = backbone.min_size
    return f"Use a larger image (all {len(model)} layers need at least {side} x {side} pixels) or a shallower layer."


def describe_layers(model: nn.Sequential, image_size: tuple[int, int] = (192, 256)) -> list[dict]:
    """List each layer's index, its name in the backbone, its module and output shape, for choosing
    content and style layers (by index, or by name: ``TransferSettings(content_layer="fire2")``).

    Args:
        model: an ``nn.Sequential``: a backbone from :func:`load_squeezenet` or
            :func:`cs231n_style.backbones.load_backbone` (its layers get their names), or any other.
        image_size: (H, W) of the input image in pixels.

    Returns:
        One ``dict`` per layer with keys ``index`` (int, as in :func:`extract_features`' list),
        ``layer`` (str, the backbone's name of the layer: ``"fire2"`` for SqueezeNet, ``"relu4_2"``
        for VGG, as :attr:`cs231n_style.backbones.Backbone.layer_names`; ``None`` for a model that
        is none of the backbones), ``name`` (str, the module, e.g. ``"Fire(128->128)"``,
        ``"Conv2d(3->64, 3x3)"``) and ``shape`` (tuple (C, H, W) of the feature map).

    Raises:
        ValueError: from :func:`extract_features`, if ``image_size`` is too small for the layers
            (SqueezeNet needs at least 17 x 17 pixels, VGG 32 x 32).
    """
    from .backbones import backbone_of

    backbone = backbone_of(model)
    parameter = next(iter(model.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.no_grad():
        feats = extract_features(torch.zeros(1, 3, *image_size, device=device), model)
    rows = []
    for index, (layer, feat) in enumerate(zip(model, feats, strict=True)):
        name, squeeze = type(layer).__name__, getattr(layer, "squeeze", None)
        if isinstance(squeeze, nn.Conv2d):  # SqueezeNet's Fire module
            name += f"({squeeze.in_channels}->{feat.shape[1]})"
        elif isinstance(layer, nn.Conv2d):
            name += f"({layer.in_channels}->{layer.out_channels}, {layer.kernel_size[0]}x{layer.kernel_size[1]})"
        rows.append({"index": index, "layer": backbone.layer_names[index] if backbone is not None else None,
                     "name": name, "shape": tuple(feat.shape[1:])})
    return rows
