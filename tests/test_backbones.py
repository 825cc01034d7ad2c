"""Tests of cs231n_style.backbones: VGG-16 / VGG-19 beside SqueezeNet, their named layers and defaults.

Offline: VGG weights are random (torchvision's own builders, seeded) saved to temporary files; the
download is replaced at torchvision's weights API boundary (``load_state_dict_from_url`` as
``WeightsEnum.get_state_dict`` calls it). Reference values come from torchvision's own modules, from
published layer indices, or from float64 NumPy, never from the code under test.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models
import torchvision.models._api as tv_api
from test_features import SHARED_WEIGHTS, assert_same_parameters, isolated, needs_shared_weights  # noqa: F401
from torch import nn
from torchvision.models import VGG16_Weights, VGG19_Weights, squeezenet1_0

from autograder.cases import Call, _complete
from autograder.grader import judge_call
from autograder.protocol import decode, encode
from autograder.reference import load_reference
from autograder.runner import run_call
from cs231n_style import TransferSettings
from cs231n_style._pooling import network_for
from cs231n_style.backbones import (
    BACKBONE_NAMES,
    MEASURED_COSTS,
    average_pooling,
    backbone_of,
    cost_table,
    find_backbone_weights,
    get_backbone,
    how_to_get_weights,
    layer_indices,
    load_backbone,
)
from cs231n_style.diagnosis import MISTAKES
from cs231n_style.features import WEIGHTS_ENV_VAR, describe_layers, extract_features, load_squeezenet

VGG = ("vgg16", "vgg19")
ENUMS = {"vgg16": VGG16_Weights.IMAGENET1K_V1, "vgg19": VGG19_Weights.IMAGENET1K_V1}
ENV = {"vgg16": "CS231N_STYLE_VGG16_WEIGHTS", "vgg19": "CS231N_STYLE_VGG19_WEIGHTS"}
CHANNELS = (64, 128, 256, 512, 512)  # VGG's blocks (Simonyan and Zisserman 2015, Table 1)

# Published indices of torchvision's VGG-19 features (as neural style transfer code reads them:
# {'0': 'conv1_1', '5': 'conv2_1', '10': 'conv3_1', '19': 'conv4_1', '21': 'conv4_2', '28': 'conv5_1'}),
# each ReLU right after its convolution; VGG-16's by the same count with 3 convolutions in blocks 3-5.
PUBLISHED = {
    "vgg19": {"conv1_1": 0, "conv2_1": 5, "conv3_1": 10, "conv4_1": 19, "conv4_2": 21, "conv5_1": 28, "pool5": 36},
    "vgg16": {"conv1_1": 0, "conv2_1": 5, "conv3_1": 10, "conv4_1": 17, "conv4_2": 19, "conv5_1": 24, "pool5": 30},
}


@pytest.fixture(scope="module")
def torchvision_vgg():
    """torchvision's own VGG ``features`` (the full builder, in-place ReLUs), seeded random weights."""
    out = {}
    for seed, name in enumerate(VGG):
        torch.manual_seed(seed)
        out[name] = getattr(torchvision.models, name)(weights=None).features.eval()
    return out


@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory, torchvision_vgg):
    """Features-only files of the random weights: {name: path}."""
    folder = tmp_path_factory.mktemp("vgg")
    paths = {}
    for name, features in torchvision_vgg.items():
        paths[name] = folder / f"{name}_features.pth"
        torch.save(features.state_dict(), paths[name])
    return paths


@pytest.fixture
def offline(isolated, monkeypatch):  # noqa: F811 - test_features' fixture, extended
    """test_features' ``isolated`` (no variable, empty cache and course folders, no network), and no
    VGG variables: {name: the VGG file's path in torchvision's cache}."""
    for variable in ENV.values():
        monkeypatch.delenv(variable, raising=False)
    return {name: Path(torch.hub.get_dir()) / "checkpoints" / Path(ENUMS[name].url).name for name in VGG}


# --------------------------------------------------------------------------------- layer names


@pytest.mark.parametrize("name", VGG)
def test_vgg_layer_names_follow_torchvision_modules(name, torchvision_vgg):
    features, names = torchvision_vgg[name], get_backbone(name).layer_names
    assert len(names) == len(features) == {"vgg16": 31, "vgg19": 37}[name] and len(set(names)) == len(names)
    for layer, label in zip(features, names, strict=True):
        kind, block, _ = re.fullmatch(r"(conv|relu|pool)(\d)(?:_(\d))?", label).groups()
        assert type(layer) is {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[kind], label
        if kind == "conv":
            assert layer.out_channels == CHANNELS[int(block) - 1], label
    for label, index in PUBLISHED[name].items():
        assert names[index] == label
        if label.startswith("conv"):
            assert names[index + 1] == "relu" + label[4:]


def test_squeezenet_names_describe_cs231n_indices():
    features = torchvision.models.squeezenet1_1(weights=None).features
    names = get_backbone("squeezenet1_1").layer_names
    assert len(names) == len(features) == 13
    kinds = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d, "fire": torchvision.models.squeezenet.Fire}
    for layer, label in zip(features, names, strict=True):
        assert type(layer) is kinds[re.match("[a-z]+", label).group()], label
    # CS231n's content layer 3 and style layers 1, 4, 6, 7 (Iandola et al.'s v1.1 Caffe model: conv1, pool1, fire2 ...)
    assert layer_indices("squeezenet1_1", ["fire2", "relu_conv1", "fire3", "fire4", "fire5"]) == (3, 1, 4, 6, 7)
    assert [names[i] for i in (2, 5, 8, 12)] == ["pool1", "pool3", "pool5", "fire9"]


@pytest.mark.parametrize("name", VGG)
def test_describe_layers_names_each_vgg_layer_beside_its_index(name, torchvision_vgg):
    """What students read to pick layers: the published index of each named layer, its module and its
    output shape from torchvision's own forward pass (in-place ReLUs: the conv row's shape only)."""
    features = torchvision_vgg[name]
    rows = describe_layers(features, image_size=(64, 96))
    shapes, x = [], torch.zeros(1, 3, 64, 96)
    with torch.no_grad():
        for layer in features:
            x = layer(x)
            shapes.append(tuple(x.shape[1:]))
    assert [row["index"] for row in rows] == list(range(len(features)))
    assert [row["shape"] for row in rows] == shapes
    for label, index in PUBLISHED[name].items():
        assert rows[index]["layer"] == label
    assert rows[PUBLISHED[name]["conv4_2"]]["name"] == "Conv2d(512->512, 3x3)"
    assert rows[PUBLISHED[name]["conv4_2"] + 1]["layer"] == "relu4_2" and rows[-1]["name"] == "MaxPool2d"
    assert rows[-1]["shape"] == (512, 2, 3)  # five poolings halve 64 x 96 five times


def test_describe_layers_names_squeezenet_layers_with_either_pooling():
    cs231n = {1: "relu_conv1", 3: "fire2", 4: "fire3", 6: "fire4", 7: "fire5", 12: "fire9"}  # CS231n's indices
    for pooled in (lambda model: model, average_pooling):
        model = pooled(torchvision.models.squeezenet1_1(weights=None).features.eval())
        rows = describe_layers(model, image_size=(48, 48))
        assert {index: rows[index]["layer"] for index in cs231n} == cs231n
        assert rows[3]["name"] == "Fire(64->128)"


def test_describe_layers_of_another_model_has_no_layer_names():
    rows = describe_layers(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), image_size=(8, 8))
    assert [(row["layer"], row["name"], row["shape"]) for row in rows] == [
        (None, "Conv2d(3->4, 3x3)", (4, 6, 6)), (None, "ReLU", (4, 6, 6))]
    assert describe_layers(nn.Sequential(nn.MaxPool2d(2)), image_size=(8, 8))[0]["shape"] == (3, 4, 4)


# ------------------------------------------------------------------------------------ defaults


def test_squeezenet_defaults_are_the_course_settings():
    defaults, settings = get_backbone("squeezenet1_1").default_settings(), TransferSettings()
    assert defaults == {key: getattr(settings, key) for key in defaults}


@pytest.mark.parametrize("name", VGG)
def test_vgg_defaults_are_gatys_layers_with_the_tutorial_weights(name, torchvision_vgg):
    """Gatys et al. 2016, Sec. 3: content conv4_2, style conv1_1 ... conv5_1, read after their ReLUs (Caffe's
    in-place blobs); weights: the PyTorch tutorial's 1e6 and 1 on mean squared errors, in sum form, i.e.
    1e6 / C^2 per style layer and 1 / (C H W) of the content map of a 192 x 256 image."""
    backbone, published = get_backbone(name), PUBLISHED[name]
    defaults = backbone.default_settings()
    assert backbone.content_layer == "relu4_2" and defaults["content_layer"] == published["conv4_2"] + 1
    assert defaults["style_layers"] == tuple(published[f"conv{b}_1"] + 1 for b in range(1, 6))
    with torch.no_grad():
        feats = extract_features(torch.zeros(1, 3, 192, 256), torchvision_vgg[name])
    channels = [feats[i].shape[1] for i in defaults["style_layers"]]
    np.testing.assert_allclose(defaults["style_weights"], [1e6 / c**2 for c in channels], rtol=1e-12)
    assert defaults["content_weight"] == pytest.approx(1 / feats[defaults["content_layer"]][0].numel(), rel=1e-12)
    assert defaults["tv_weight"] == 0
    assert TransferSettings(backbone=name, **defaults) == TransferSettings.for_backbone(name)  # valid settings


# ----------------------------------------------------------------------------- layer indices


def test_layer_indices_take_names_and_indices():
    assert layer_indices("vgg19", ["relu1_1", 6, "conv4_2", np.int64(3)]) == (1, 6, 21, 3)
    assert get_backbone("VGG-19").index("pool5") == 36
    assert get_backbone("vgg16").index("relu5_3") == 29


@pytest.mark.parametrize("layers, match", [
    (["relu42"], r"'relu42' is not a layer of VGG-19\. Did you mean 'relu4_2'"),
    (["conv6_1"], r"Its layers are, by index: conv1_1, relu1_1, .*, pool5\."),
    ([37], r"Layer index 37 is out of range: VGG-19 has layers 0-36"),
    ([-1], "out of range"),
    ([1.0], "not a layer"),
    ("relu4_2", r"not a single 'relu4_2': write \['relu4_2'\]"),
])
def test_layer_errors_say_what_exists(layers, match):
    with pytest.raises(ValueError, match=match):
        layer_indices("vgg19", layers)


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError, match="'resnet50': choose one of 'squeezenet1_1', 'vgg16', 'vgg19'"):
        get_backbone("resnet50")


def test_backbone_of_recognizes_architectures_not_weights(torchvision_vgg):
    assert backbone_of(torchvision_vgg["vgg16"]).name == "vgg16"
    assert backbone_of(torchvision_vgg["vgg19"]).name == "vgg19"
    assert backbone_of(torchvision.models.squeezenet1_1(weights=None).features).name == "squeezenet1_1"
    assert backbone_of(squeezenet1_0(weights=None).features) is None  # the other SqueezeNet
    assert backbone_of(torchvision_vgg["vgg19"][:10]) is None
    assert backbone_of(nn.Linear(2, 2)) is None
    with pytest.raises(ValueError, match="none of the backbones"):
        get_backbone(torchvision_vgg["vgg19"][:10])


# ------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("name", VGG)
def test_vgg_file_loads_its_values_into_torchvision_architecture(name, offline, vgg_files, torchvision_vgg):
    reference = torchvision_vgg[name]
    model = load_backbone(name, weights_path=vgg_files[name], download=False)
    assert_same_parameters(model, reference.state_dict())
    assert [type(m) for m in model] == [type(m) for m in reference]
    assert str(model) == str(reference).replace("ReLU(inplace=True)", "ReLU()")  # every size, stride, padding
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert all(not m.inplace for m in model if isinstance(m, nn.ReLU))


def test_whole_checkpoint_with_features_prefix_loads(offline, vgg_files, tmp_path):
    state = torch.load(vgg_files["vgg16"], weights_only=True)
    whole = {f"features.{key}": value for key, value in state.items()}
    whole["classifier.6.weight"] = torch.zeros(3, 4)  # torchvision's file has the classifier too: ignored
    torch.save(whole, tmp_path / "vgg16-397923af.pth")
    assert_same_parameters(load_backbone("vgg16", weights_path=tmp_path / "vgg16-397923af.pth"), state)


def test_each_backbone_has_its_own_variable(offline, vgg_files, monkeypatch):
    monkeypatch.setenv(ENV["vgg19"], str(vgg_files["vgg19"]))
    assert_same_parameters(load_backbone("vgg19", download=False), torch.load(vgg_files["vgg19"], weights_only=True))
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(vgg_files["vgg19"]))  # SqueezeNet's variable: not looked at for VGG-16
    with pytest.raises(RuntimeError, match=f"No VGG-16 weights file found.*{ENV['vgg16']} \\(not set\\)"):
        load_backbone("vgg16", download=False)
    monkeypatch.setenv(ENV["vgg16"], str(vgg_files["vgg19"]))  # the wrong VGG
    with pytest.raises(ValueError, match=r"is not a VGG-16 state dict: (Missing|Unexpected|size mismatch)"):
        load_backbone("vgg16")


@needs_shared_weights
def test_squeezenet_file_is_not_taken_for_vgg(offline, monkeypatch):
    with pytest.raises(ValueError, match=r"squeezenet1_1_features\.pth.*is not a VGG-19 state dict"):
        load_backbone("vgg19", weights_path=SHARED_WEIGHTS)


def test_cache_then_course_folder(offline, vgg_files, tmp_path, monkeypatch):
    """torchvision's cache (its file holds the whole model), then the course's weights/ folder; the
    batch-normalized variant's file there is not taken for VGG-16."""
    folder = tmp_path / "course" / "weights"
    folder.mkdir()
    (folder / "vgg16_bn-6c64b313.pth").write_bytes(b"another architecture")
    assert find_backbone_weights("vgg16") is None
    with pytest.raises(RuntimeError, match="No VGG-16 weights file found"):
        load_backbone("vgg16", download=False)
    (folder / "vgg16_features.pth").write_bytes(vgg_files["vgg16"].read_bytes())
    assert find_backbone_weights("vgg16") == folder.resolve() / "vgg16_features.pth"
    state = torch.load(vgg_files["vgg16"], weights_only=True)
    assert_same_parameters(load_backbone("vgg16", download=False), state)
    torch.manual_seed(5)
    cached = {f"features.{k}": torch.randn_like(v) for k, v in state.items()}
    offline["vgg16"].parent.mkdir(parents=True)
    torch.save(cached, offline["vgg16"])
    assert find_backbone_weights("vgg16") == offline["vgg16"]
    assert_same_parameters(load_backbone("vgg16", download=False), {k[9:]: v for k, v in cached.items()})


@pytest.mark.parametrize("name", VGG)
def test_download_goes_through_torchvision_weights_api(name, offline, torchvision_vgg, monkeypatch):
    urls = []
    state = {f"features.{key}": value for key, value in torchvision_vgg[name].state_dict().items()}

    def fake_download(url, *args, **kwargs):
        urls.append(url)
        return state

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", fake_download)
    model = load_backbone(name)
    assert urls == [ENUMS[name].url]
    assert_same_parameters(model, torchvision_vgg[name].state_dict())
    assert not model.training and not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", VGG)
def test_no_weights_error_says_how_to_get_them(name, offline):
    with pytest.raises(RuntimeError) as info:
        load_backbone(name)  # the download fails: no network
    message = str(info.value)
    title = get_backbone(name).title
    assert message.startswith(f"Downloading the {title} weights failed (") and "no network in tests" in message
    for needed in (ENUMS[name].url, f"torchvision.models.{type(ENUMS[name]).__name__}.IMAGENET1K_V1", ENV[name],
                   str(offline[name]), f"{name}_features.pth", "weights_path=",
                   str(Path.cwd().parent / "weights"), f"torchvision.models.{name}(weights='IMAGENET1K_V1')"):
        assert needed in message, needed
    assert message.endswith(how_to_get_weights(name))
    assert not offline[name].exists()


@pytest.mark.parametrize("name", VGG)
def test_the_sizes_in_the_advice_are_right(name, vgg_files):
    """The advice's sizes are torchvision's (``meta["_file_size"]``, MiB) and that of the features file."""
    advice = get_backbone(name).weights.advice
    whole, features = (int(n) for n in re.findall(r"(\d+) MiB", advice))
    assert whole == round(ENUMS[name].meta["_file_size"])
    assert features == round(os.path.getsize(vgg_files[name]) / 2**20)


def test_squeezenet_through_load_backbone_is_load_squeezenet(offline, tmp_path):
    torch.manual_seed(3)
    state = torchvision.models.squeezenet1_1(weights=None).features.state_dict()
    torch.save(state, tmp_path / "s.pth")
    a = load_backbone("squeezenet1_1", weights_path=tmp_path / "s.pth")
    b = load_squeezenet(weights_path=tmp_path / "s.pth")
    assert str(a) == str(b) and [type(m) for m in a] == [type(m) for m in b]
    x = torch.randn(1, 3, 48, 64)
    assert all(torch.equal(p, q) for p, q in zip(extract_features(x, a), extract_features(x, b), strict=True))
    for call in (lambda: load_backbone(download=False), lambda: load_squeezenet(download=False)):
        with pytest.raises(RuntimeError) as info:
            call()
        assert str(info.value).startswith("No SqueezeNet 1.1 weights file found and download=False. Looked in:")
        assert "MiB" not in str(info.value)  # SqueezeNet's message is as it was: no VGG advice


def test_bad_pooling_is_refused(offline, vgg_files):
    with pytest.raises(ValueError, match=r"pooling must be 'max'.*'avg'.*not 'mean'"):
        load_backbone("vgg16", weights_path=vgg_files["vgg16"], pooling="mean")


# ---------------------------------------------------------------------------------- feature maps


def manual_forward(features: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output from torchvision's module as built (in-place ReLUs), cloned one by one."""
    outputs = []
    with torch.no_grad():
        for layer in features:
            x = layer(x)
            outputs.append(x.clone())  # the next in-place ReLU would overwrite x
    return outputs


@pytest.mark.parametrize("name", VGG)
def test_vgg_feature_maps_are_each_layers_output(name, offline, vgg_files, torchvision_vgg):
    """With torchvision's in-place ReLUs, extract_features' conv maps would be their ReLU's output
    (the list keeps the tensor the ReLU then overwrites); the loaded model's ReLUs are out of place."""
    model = load_backbone(name, weights_path=vgg_files[name])
    x = torch.randn(1, 3, 40, 48)
    expected = manual_forward(torchvision_vgg[name], x)
    feats = extract_features(x, model)
    assert len(feats) == len(expected)
    for index, (got, want) in enumerate(zip(feats, expected, strict=True)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=f"layer {index}")
    conv, relu = get_backbone(name).indices(["conv4_2", "relu4_2"])
    assert feats[conv].min() < 0 and torch.equal(feats[relu], feats[conv].clamp(min=0))
    with torch.no_grad():  # what the fix prevents: in place, conv4_2's map is relu4_2's
        aliased = extract_features(x, torchvision_vgg[name])
    assert aliased[conv].min() >= 0 and torch.equal(aliased[conv], aliased[relu])


def test_vgg_maps_give_the_image_a_gradient(offline, vgg_files):
    model = load_backbone("vgg19", weights_path=vgg_files["vgg19"])
    x = torch.randn(1, 3, 32, 40, requires_grad=True)
    feats = extract_features(x, model, up_to=22)
    (feats[21].square().sum() + feats[1].sum()).backward()  # conv4_2 and relu1_1
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_too_small_image_names_vgg_minimum(offline, vgg_files):
    model = load_backbone("vgg16", weights_path=vgg_files["vgg16"])
    expected = r"too small for layer 30.*only 1 x 1 pixels.*all 31 layers need at least 32 x 32 pixels"
    with pytest.raises(ValueError, match=expected):
        extract_features(torch.zeros(1, 3, 16, 16), model)
    assert len(extract_features(torch.zeros(1, 3, 32, 32), model)) == 31  # the documented minimum


@pytest.mark.parametrize("name", VGG)
def test_fast_max_pooling_is_bit_for_bit_on_vgg(name, offline, vgg_files):
    """The package's loop runs network_for's channels-last max pooling: on VGG's 2 x 2 pooling too it
    gives exactly nn.MaxPool2d's maps and gradients."""
    model = load_backbone(name, weights_path=vgg_files[name])
    last = get_backbone(name).index("relu5_1")
    fast = network_for(model, last)
    assert sum(type(m).__name__ == "_MaxPool2dFast" for m in fast) == 4
    x = torch.randn(1, 3, 67, 90)
    grads = []
    for network in (model, fast):
        image = x.clone().requires_grad_(True)
        feats = extract_features(image, network, up_to=last)
        sum(f.square().mean() for f in feats[5::6]).backward()
        grads.append((feats, image.grad))
    (plain, plain_grad), (quick, quick_grad) = grads
    assert all(torch.equal(a, b) for a, b in zip(plain, quick, strict=True)) and torch.equal(plain_grad, quick_grad)


# ---------------------------------------------------------------------------------- average pooling


def np_average_pool(x: np.ndarray, kernel: int, stride: int, ceil: bool) -> np.ndarray:
    """Average pooling in float64 NumPy; with ``ceil`` a window overhanging the map averages what is inside."""
    n, c, h, w = x.shape
    size = (lambda s: -(-(s - kernel) // stride) + 1) if ceil else (lambda s: (s - kernel) // stride + 1)
    out = np.zeros((n, c, size(h), size(w)))
    for i in range(size(h)):
        for j in range(size(w)):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel].mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("name, kernel, stride, ceil", [("vgg19", 2, 2, False), ("squeezenet1_1", 3, 2, True)])
def test_average_pooling_option(name, kernel, stride, ceil, offline, vgg_files, tmp_path):
    if name == "squeezenet1_1":
        torch.save(torchvision.models.squeezenet1_1(weights=None).features.state_dict(), tmp_path / "s.pth")
        path = tmp_path / "s.pth"
    else:
        path = vgg_files[name]
    model = load_backbone(name, weights_path=path, pooling="avg")
    plain = load_backbone(name, weights_path=path)
    assert all(type(m) is nn.MaxPool2d for m in plain if "Pool" in type(m).__name__)
    pools = [i for i, m in enumerate(plain) if isinstance(m, nn.MaxPool2d)]
    assert pools and all(type(model[i]) is nn.AvgPool2d for i in pools)
    assert backbone_of(model).name == name
    x = torch.randn(1, 3, 45, 61, dtype=torch.float64)
    feats = extract_features(x, model.double())
    for i in pools[:2]:
        expected = np_average_pool(feats[i - 1].numpy(), kernel, stride, ceil)
        np.testing.assert_allclose(feats[i].numpy(), expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------- checks and the autograder


@pytest.fixture(scope="module")
def vgg_maps(torchvision_vgg):
    """A VGG-19 set of feature maps as the losses read them (out-of-place ReLUs), float64, 32 x 40 input."""
    model = torchvision_vgg["vgg19"]
    with torch.no_grad():
        feats = manual_forward(model, torch.randn(1, 3, 32, 40))
    return [f.double().numpy() for f in feats[: get_backbone("vgg19").index("relu5_1") + 1]]


def np_gram(f: np.ndarray) -> np.ndarray:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(0, 2, 1) / (c * h * w)


def tensor(array, grad=False) -> dict:
    return {"tensor": array, "grad": grad}


def test_the_solutions_are_backbone_agnostic_on_vgg_maps(vgg_maps):
    """The reference solutions (those check_* and the grader compare with) on VGG-19's maps, against
    float64 NumPy: nothing in them assumes SqueezeNet's layers or sizes."""
    ref = load_reference()
    defaults = get_backbone("vgg19").default_settings()
    layers, weights = defaults["style_layers"], defaults["style_weights"]
    feats = [torch.from_numpy(f) for f in vgg_maps]
    rng = np.random.default_rng(0)
    targets = [np_gram(np.maximum(rng.normal(size=vgg_maps[i].shape), 0)) for i in layers]
    got = ref.style_loss(feats, list(layers), [torch.from_numpy(t) for t in targets], list(weights))
    expected = sum(w * ((np_gram(vgg_maps[i]) - t) ** 2).sum()
                   for i, t, w in zip(layers, targets, weights, strict=True))
    assert got.item() == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(ref.gram_matrix(feats[1]).numpy(), np_gram(vgg_maps[1]), rtol=1e-10)
    c = defaults["content_layer"]
    original = np.maximum(vgg_maps[c] + rng.normal(size=vgg_maps[c].shape), 0)
    got = ref.content_loss(2.5e-6, feats[c], torch.from_numpy(original)).item()
    assert got == pytest.approx(2.5e-6 * ((vgg_maps[c] - original) ** 2).sum(), rel=1e-10)


def _vgg_calls(vgg_maps) -> list[Call]:
    defaults = get_backbone("vgg19").default_settings()
    layers, weights, c = list(defaults["style_layers"]), list(defaults["style_weights"]), defaults["content_layer"]
    rng = np.random.default_rng(1)
    targets = [np_gram(np.maximum(rng.normal(size=vgg_maps[i].shape), 0)) for i in layers]
    return [
        Call("style_loss", [[tensor(f, i in layers) for i, f in enumerate(vgg_maps)], layers,
                            [tensor(t) for t in targets], weights], check_grad=True),
        Call("gram_matrix", [tensor(vgg_maps[layers[0]], True)], check_grad=True),
        Call("content_loss", [defaults["content_weight"], tensor(vgg_maps[c], True),
                              tensor(np.maximum(vgg_maps[c] + rng.normal(size=vgg_maps[c].shape), 0))],
             check_grad=True),
    ]


def test_the_grader_judges_vgg_shaped_calls(vgg_maps):
    """A call with VGG-19's 30 maps (64-512 channels, style layers 1, 6, 11, 20, 29) goes through the
    grader's machinery: the message format, the reference and mistake variants, the runner's call and the
    judge. The solutions pass; a style loss without the weights gets the diagnosis of that mistake."""
    reference = load_reference()
    solutions = dict(vars(reference))
    rng = np.random.default_rng(2)
    for call in _vgg_calls(vgg_maps):
        _complete(call, reference, rng)
        request = decode(encode(call.request()))  # as it travels to the sandbox
        assert len(encode(call.request())) < 64 << 20  # under the grader's request limit at this size
        assert judge_call(call, run_call(solutions, request)) is None, call.function
        if call.function == "style_loss":
            def unweighted(feats, style_layers, style_targets, style_weights):
                pairs = zip(style_layers, style_targets, strict=True)
                return sum(((reference.gram_matrix(feats[i]) - t) ** 2).sum() for i, t in pairs)

            message = judge_call(call, run_call({**solutions, "style_loss": unweighted}, request))
            assert message is not None and MISTAKES["unweighted"] in message


# ---------------------------------------------------------------------------- the cost table


def test_the_cost_table_is_the_one_in_docs_benchmark():
    """One copy of the measurements: docs/benchmark.md's table is cost_table()'s text, line for line."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "benchmark.md").read_text()
    table = cost_table()
    assert table in doc, "docs/benchmark.md's backbone table differs from cs231n_style.backbones.MEASURED_COSTS"
    assert len(table.splitlines()) == 2 + 3 * 3  # header, alignment, 3 backbones x 192 / 384 / 512 px
    assert "| VGG-19 | 20.02 M (143.7 M) |" in table and "|  |  |  |  | 512 | 609.2 |" in table


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_the_cost_tables_model_columns_match_torchvision(name, vgg_files, tmp_path):
    """The columns that are not timings, recomputed from torchvision: parameter counts (its builder and
    its weights' meta), file sizes (a features-only file saved here; meta ``_file_size``), layers run."""
    rows = [row for row in MEASURED_COSTS if row.backbone == name]
    assert [row.size for row in rows] == [192, 384, 512]
    if name == "squeezenet1_1":
        features = torchvision.models.squeezenet1_1(weights=None).features
        path = tmp_path / "squeezenet1_1_features.pth"
        torch.save(features.state_dict(), path)
        meta = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1.meta
    else:
        features = getattr(torchvision.models, name)(weights=None).features
        path, meta = vgg_files[name], ENUMS[name].meta
    params = sum(p.numel() for p in features.parameters())
    defaults = get_backbone(name).default_settings()
    deepest = max(defaults["content_layer"], *defaults["style_layers"])
    for row in rows:
        assert row.parameters == f"{params / 1e6:.2f} M ({meta['num_params'] / 1e6:.1f} M)"
        assert row.weights_file == f"{os.path.getsize(path) / 2**20:.1f} MiB ({meta['_file_size']:.0f} MiB)"
        assert row.layers_run == f"{deepest + 1} of {len(features)} (to {get_backbone(name).layer_names[deepest]})"
        # printed from unrounded measurements: the rounded ones agree to within their rounding
        assert abs(row.gflop / row.cpu_ms * 1000 - row.gflop_per_cpu_s) < 1, row


# ------------------------------------------------------------------ notebook 07's VGG cell, both ways

NOTEBOOK_07 = Path(__file__).resolve().parents[1] / "solutions" / "07_backbones_and_layers.ipynb"
#: The notebook's VGG cell's size and L-BFGS evaluations, and the tiny ones this test runs it with.
VGG_RUN, TINY_VGG_RUN = "VGG_SIZE, VGG_STEPS = 128, 100", "VGG_SIZE, VGG_STEPS = 32, 2"


@pytest.mark.parametrize("with_weights", [True, False], ids=["vgg-weights", "no-vgg-weights"])
def test_notebook_07s_vgg_cell_runs_with_and_without_vgg_weights(with_weights, offline, vgg_files, tmp_path,
                                                                 monkeypatch, capsys):
    """The cells the VGG comparison needs, run in order as nbval runs them: with (random) VGG weights it
    shows SqueezeNet beside each VGG; without (as in CI), it says which file is missing and how to get it."""
    import matplotlib.pyplot as plt
    from nbformat import read

    import cs231n_style as cs

    cells = {cell.id: cell.source for cell in read(NOTEBOOK_07, as_version=4).cells}
    assert cells["nb07-code11"].count(VGG_RUN) == 1, "the VGG cell's size line changed: update VGG_RUN here"
    torch.manual_seed(0)
    torch.save(torchvision.models.squeezenet1_1(weights=None).features.state_dict(), tmp_path / "squeezenet.pth")
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(tmp_path / "squeezenet.pth"))
    monkeypatch.setenv(cs.COURSE_FOLDER_ENV, str(NOTEBOOK_07.parent))  # the functions of notebooks 01-03
    if with_weights:
        for name in VGG:
            monkeypatch.setenv(ENV[name], str(vgg_files[name]))
    namespace: dict = {}
    plt.close("all")
    threads = torch.get_num_threads()
    try:
        for cell_id in ("nb07-setup", "nb07-code01", "nb07-code02", "nb07-code03", "nb07-code04", "nb07-code10",
                        "nb07-code11"):
            source = cells[cell_id].replace(VGG_RUN, TINY_VGG_RUN)
            exec(compile(source, f"notebook 07, cell {cell_id}", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)  # the notebook sets 1 for its small runs
    printed = capsys.readouterr().out
    titles = [[ax.get_title() for ax in plt.figure(number).axes] for number in plt.get_fignums()]
    plt.close("all")
    for name, title in (("vgg16", "VGG-16"), ("vgg19", "VGG-19")):
        if with_weights:
            assert f"{title}: content relu4_2, style relu1_1, relu2_1, relu3_1, relu4_1, relu5_1; " in printed
            assert ["photo", "SqueezeNet (CS231n)", f"{title} (L-BFGS)"] in titles
        else:
            assert f"{title}: no weights on this machine" in printed
            assert how_to_get_weights(name) in printed
    assert ("no weights" in printed) is not with_weights and (titles == []) is not with_weights
