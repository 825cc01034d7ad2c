"""Tests of cs231n_style.features: finding and loading SqueezeNet 1.1 weights, extracting features.

Loader mechanics use small files of random weights written to ``tmp_path``; the tests of the
pretrained network use the shared weights file (``$CS231N_STYLE_WEIGHTS``, set by conftest.py)
and are skipped where it is missing. No test touches the network: downloads are replaced by
functions that raise ``URLError``.
"""

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
import torchvision.models._api as tv_api
from torch import nn
from torchvision.models import SqueezeNet1_1_Weights, squeezenet1_0, squeezenet1_1

import cs231n_style.features as features_module
from cs231n_style.features import WEIGHTS_ENV_VAR, describe_layers, extract_features, load_squeezenet
from cs231n_style.images import preprocess

SHARED_WEIGHTS = os.environ.get(WEIGHTS_ENV_VAR) or str(
    Path(__file__).resolve().parents[2] / "shared" / "weights" / "squeezenet1_1_features.pth")
needs_shared_weights = pytest.mark.skipif(not Path(SHARED_WEIGHTS).is_file(),
                                          reason="shared pretrained weights file not available")
CACHE_NAME = Path(SqueezeNet1_1_Weights.IMAGENET1K_V1.url).name  # e.g. squeezenet1_1-b8a52dc0.pth

# (C, H, W) of each layer's output for a 192 x 256 input, worked out by hand: conv 3x3 stride 2
# (no padding) -> floor((n - 3) / 2) + 1; max-pool 3x3 stride 2 ceil_mode -> ceil((n - 3) / 2) + 1.
SHAPES_192x256 = [(64, 95, 127), (64, 95, 127), (64, 47, 63), (128, 47, 63), (128, 47, 63),
                  (128, 23, 31), (256, 23, 31), (256, 23, 31), (256, 11, 15), (384, 11, 15),
                  (384, 11, 15), (512, 11, 15), (512, 11, 15)]


def random_features_state(seed):
    torch.manual_seed(seed)
    return {key: value.clone() for key, value in squeezenet1_1(weights=None).features.state_dict().items()}


def assert_same_parameters(model, state):
    got = model.state_dict()
    assert sorted(got) == sorted(state)
    for key, value in state.items():
        assert torch.equal(got[key], value), key


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $CS231N_STYLE_WEIGHTS, torchvision's cache in an empty temporary folder, no course weights/
    folder (the working directory and the checkout are empty temporary folders), no network."""
    monkeypatch.delenv(WEIGHTS_ENV_VAR, raising=False)
    (tmp_path / "course" / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "course" / "notebooks")
    monkeypatch.setattr(features_module, "_CHECKOUT", tmp_path / "checkout")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch_home" / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    yield tmp_path / "torch_home" / "hub" / "checkpoints" / CACHE_NAME
    torch.hub.set_dir(previous)


@pytest.fixture
def weight_files(tmp_path):
    """Three features-only files with different random weights: {name: (path, state)}."""
    files = {}
    for seed, name in enumerate(("a", "b", "c")):
        state = random_features_state(seed)
        torch.save(state, tmp_path / f"{name}.pth")
        files[name] = (tmp_path / f"{name}.pth", state)
    return files


@pytest.fixture(scope="module")
def pretrained():
    if not Path(SHARED_WEIGHTS).is_file():
        pytest.skip("shared pretrained weights file not available")
    return load_squeezenet(weights_path=SHARED_WEIGHTS)


# ------------------------------------------------------------------------------------- loading


@needs_shared_weights
def test_shared_file_loads_exactly_its_values(pretrained):
    state = torch.load(SHARED_WEIGHTS, map_location="cpu", weights_only=True)
    assert len(state) == 50 and sum(v.numel() for v in state.values()) == 722_496
    assert_same_parameters(pretrained, state)


@needs_shared_weights
def test_whole_model_state_dict_gives_identical_parameters(tmp_path, pretrained):
    features = torch.load(SHARED_WEIGHTS, map_location="cpu", weights_only=True)
    whole = {f"features.{key}": value for key, value in features.items()}
    whole.update({f"classifier.{k}": v for k, v in squeezenet1_1(weights=None).classifier.state_dict().items()})
    assert "classifier.1.weight" in whole
    torch.save(whole, tmp_path / "whole.pth")
    model = load_squeezenet(weights_path=tmp_path / "whole.pth")
    assert_same_parameters(model, features)
    for (name, a), (_, b) in zip(model.named_parameters(), pretrained.named_parameters(), strict=True):
        assert torch.equal(a, b), name


def test_explicit_path_beats_env_var_beats_cache(isolated, weight_files, monkeypatch):
    (path_a, state_a), (path_b, state_b), (path_c, state_c) = weight_files.values()
    isolated.parent.mkdir(parents=True)
    isolated.write_bytes(path_c.read_bytes())
    assert_same_parameters(load_squeezenet(download=False), state_c)  # cache only
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(path_b))
    assert_same_parameters(load_squeezenet(download=False), state_b)  # env beats cache
    assert_same_parameters(load_squeezenet(weights_path=path_a, download=False), state_a)  # path beats env
    assert_same_parameters(load_squeezenet(weights_path=str(path_a)), state_a)


def test_cache_location_follows_torch_hub_dir(isolated):
    assert isolated.parent == Path(torch.hub.get_dir()) / "checkpoints"


def test_whole_model_file_in_cache_is_used(isolated):
    torch.manual_seed(3)
    full = squeezenet1_1(weights=None)
    isolated.parent.mkdir(parents=True)
    torch.save(full.state_dict(), isolated)  # what torchvision's download leaves there
    assert_same_parameters(load_squeezenet(download=False), full.features.state_dict())


def test_missing_explicit_path(isolated, tmp_path):
    with pytest.raises(FileNotFoundError, match="weights_path") as info:
        load_squeezenet(weights_path=tmp_path / "missing.pth")
    assert "missing.pth" in str(info.value)


def test_missing_env_var_path_does_not_fall_back(isolated, weight_files, monkeypatch, tmp_path):
    isolated.parent.mkdir(parents=True)
    isolated.write_bytes(weight_files["c"][0].read_bytes())
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(tmp_path / "gone.pth"))
    with pytest.raises(FileNotFoundError, match=WEIGHTS_ENV_VAR):
        load_squeezenet()


def _wrong_shapes():
    return {key: torch.randn(3) for key in squeezenet1_1(weights=None).features.state_dict()}


@pytest.mark.parametrize(
    "content, match",
    [
        (_wrong_shapes, "size mismatch for 0.weight"),
        (lambda: squeezenet1_0(weights=None).features.state_dict(), "key"),  # the other SqueezeNet
        (lambda: {"weight": torch.zeros(2)}, "Missing key"),
        (lambda: {}, "Missing key"),
        (lambda: torch.zeros(3), "not a state dict"),
        (lambda: [torch.zeros(3)], "not a state dict"),
        (lambda: {0: torch.zeros(3)}, "not a state dict"),
    ],
)
def test_wrong_file_raises_value_error_naming_the_problem(isolated, tmp_path, content, match):
    path = tmp_path / "wrong.pth"
    torch.save(content(), path)
    with pytest.raises(ValueError, match=match) as info:
        load_squeezenet(weights_path=path)
    assert "wrong.pth" in str(info.value)


def test_garbage_bytes_raise_value_error(isolated, tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"\x00\x01 not a torch file " * 50)
    with pytest.raises(ValueError, match="not a readable PyTorch weights file"):
        load_squeezenet(weights_path=path)


def test_corrupt_cache_file_names_the_cache(isolated):
    isolated.parent.mkdir(parents=True)
    isolated.write_bytes(b"truncated download")
    with pytest.raises(ValueError, match="torchvision's cache"):
        load_squeezenet()


def _assert_how_to_get(message, cache_file):
    assert SqueezeNet1_1_Weights.IMAGENET1K_V1.url in message
    assert str(cache_file) in message  # the cache folder of now, not of import time
    assert WEIGHTS_ENV_VAR in message and "weights_path" in message
    course = cache_file.parents[3] / "course"  # every weights/ folder looked in is named
    assert str(course / "notebooks" / "weights") in message and str(course / "weights") in message


@pytest.mark.parametrize("where", ["notebooks", "course", "checkout"])
def test_a_course_weights_folder_is_found_without_any_variable(isolated, tmp_path, monkeypatch, where):
    """The working directory's weights/, its parent's (notebooks run from notebooks/), the checkout's."""
    folder = {"notebooks": tmp_path / "course" / "notebooks", "course": tmp_path / "course",
              "checkout": tmp_path / "checkout"}[where] / "weights"
    folder.mkdir(parents=True)
    (tmp_path / "checkout" / "pyproject.toml").parent.mkdir(exist_ok=True)
    (tmp_path / "checkout" / "pyproject.toml").write_text("")
    state = random_features_state(7)
    torch.save(state, folder / "squeezenet1_1_features.pth")
    assert_same_parameters(load_squeezenet(download=False), state)


def test_the_variable_and_the_cache_come_before_the_course_folder(isolated, tmp_path, monkeypatch):
    (tmp_path / "course" / "weights").mkdir()
    torch.save(random_features_state(7), tmp_path / "course" / "weights" / "squeezenet1_1_features.pth")
    cached = random_features_state(8)
    isolated.parent.mkdir(parents=True)
    torch.save(cached, isolated)
    assert_same_parameters(load_squeezenet(download=False), cached)
    named = random_features_state(9)
    torch.save(named, tmp_path / "named.pth")
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(tmp_path / "named.pth"))
    assert_same_parameters(load_squeezenet(download=False), named)


def test_offline_without_download_says_how_to_get_the_file(isolated):
    with pytest.raises(RuntimeError, match="download=False") as info:
        load_squeezenet(download=False)
    _assert_how_to_get(str(info.value), isolated)


def test_failed_download_gives_clear_runtime_error(isolated):
    with pytest.raises(RuntimeError, match=r"Downloading the SqueezeNet 1.1 weights failed") as info:
        load_squeezenet(download=True)
    assert "no network in tests" in str(info.value)
    _assert_how_to_get(str(info.value), isolated)
    assert not isolated.exists()


def test_download_path_uses_torchvision_weights_and_freezes(isolated, monkeypatch):
    torch.manual_seed(4)
    full = squeezenet1_1(weights=None)
    urls = []

    def fake_download(url, *args, **kwargs):
        urls.append(url)
        return full.state_dict()

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", fake_download)
    model = load_squeezenet()
    assert urls == [SqueezeNet1_1_Weights.IMAGENET1K_V1.url]
    assert_same_parameters(model, full.features.state_dict())
    assert not model.training and not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("source", ["file", "cache"])
def test_model_is_frozen_in_eval_mode_with_out_of_place_relus(isolated, weight_files, source):
    path = weight_files["a"][0]
    if source == "cache":
        isolated.parent.mkdir(parents=True)
        isolated.write_bytes(path.read_bytes())
        path = None
    model = load_squeezenet(weights_path=path, device="cpu")
    assert isinstance(model, nn.Sequential) and len(model) == 13
    assert not model.training and not any(m.training for m in model.modules())
    assert all(not p.requires_grad for p in model.parameters())
    assert all(p.device.type == "cpu" for p in model.parameters())
    relus = [m for m in model if isinstance(m, nn.ReLU)]
    assert len(relus) == 1 and not relus[0].inplace


# ------------------------------------------------------------------------------ extract_features


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "random.pth"
    torch.save(random_features_state(11), path)
    return load_squeezenet(weights_path=path, download=False), path


def manual_forward(path, x):
    """Every layer's output from a fresh torchvision SqueezeNet 1.1 (in-place ReLUs and all)."""
    features = squeezenet1_1(weights=None).features
    features.load_state_dict(torch.load(path, weights_only=True))
    outputs = []
    with torch.no_grad():
        for layer in features.eval():
            x = layer(x)
            outputs.append(x.clone())  # clone: the next in-place ReLU would overwrite x
    return outputs


def test_extract_features_matches_a_manual_forward(random_model):
    model, path = random_model
    x = torch.randn(2, 3, 64, 80)
    expected = manual_forward(path, x)
    feats = extract_features(x, model)
    assert len(feats) == 13
    for index, (got, want) in enumerate(zip(feats, expected, strict=True)):
        assert got.shape == want.shape, index
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=f"layer {index}")
    assert feats[0].min() < 0  # conv output before the ReLU, not overwritten by it
    torch.testing.assert_close(feats[-1], model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("up_to", [0, 1, 5, 12])
def test_extract_features_up_to(random_model, up_to):
    model, _ = random_model
    x = torch.randn(1, 3, 48, 48)
    feats = extract_features(x, model, up_to=up_to)
    assert len(feats) == up_to + 1
    full = extract_features(x, model)
    for got, want in zip(feats, full, strict=False):  # feats stops at up_to, full goes on
        assert torch.equal(got, want)


def test_extract_features_shapes_and_gradient_to_the_image(random_model):
    model, _ = random_model
    x = torch.randn(1, 3, 192, 256, requires_grad=True)
    feats = extract_features(x, model, up_to=12)
    assert [tuple(f.shape[1:]) for f in feats] == SHAPES_192x256
    assert all(f.dtype == torch.float32 for f in feats)
    feats[7].square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("x", [torch.zeros(3, 32, 32), torch.zeros(1, 1, 32, 32), torch.zeros(1, 4, 32, 32),
                               torch.zeros(1, 1, 3, 32, 32)])
def test_extract_features_rejects_bad_shapes(random_model, x):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        extract_features(x, random_model[0])


def test_extract_features_rejects_non_tensors(random_model):
    with pytest.raises(ValueError, match="ndarray"):
        extract_features(torch.zeros(1, 3, 32, 32).numpy(), random_model[0])


@pytest.mark.parametrize("dtype", [torch.float64, torch.uint8])
def test_extract_features_names_a_dtype_mismatch_and_the_fix(random_model, dtype):
    with pytest.raises(ValueError, match=rf"{dtype}.*torch.float32.*x.to\('cpu', torch.float32\)"):
        extract_features(torch.zeros(1, 3, 32, 32, dtype=dtype), random_model[0])


def test_extract_features_runs_a_model_without_parameters_in_any_dtype():
    feats = extract_features(torch.ones(1, 3, 8, 8, dtype=torch.float64), torch.nn.Sequential(torch.nn.MaxPool2d(2)))
    assert feats[0].shape == (1, 3, 4, 4) and feats[0].dtype == torch.float64


def test_extract_features_says_when_the_image_is_too_small(random_model):
    with pytest.raises(ValueError, match="too small for layer 5: the feature maps reaching it are only 1 x 1"):
        extract_features(torch.zeros(1, 3, 5, 5), random_model[0])
    assert len(extract_features(torch.zeros(1, 3, 17, 17), random_model[0])) == 13  # the documented minimum


@pytest.mark.parametrize("up_to", [-1, 13, 100, 1.5, True, "3"])
def test_extract_features_rejects_bad_up_to(random_model, up_to):
    with pytest.raises(ValueError, match="up_to"):
        extract_features(torch.zeros(1, 3, 32, 32), random_model[0], up_to=up_to)


def test_describe_layers(random_model):
    model, _ = random_model
    rows = describe_layers(model)
    assert [row["index"] for row in rows] == list(range(13))
    assert [row["shape"] for row in rows] == SHAPES_192x256
    assert rows[0]["name"] == "Conv2d(3->64, 3x3)"
    assert rows[1]["name"] == "ReLU" and rows[2]["name"] == "MaxPool2d"
    assert rows[3]["name"] == "Fire(64->128)" and rows[12]["name"] == "Fire(512->512)"
    small = describe_layers(model, image_size=(40, 56))
    feats = extract_features(torch.zeros(1, 3, 40, 56), model)
    assert [row["shape"] for row in small] == [tuple(f.shape[1:]) for f in feats]


# --------------------------------------------------------------------------- pretrained weights


def _channel_correlation(conv1_weight):
    """Mean correlation between the R, G and B parts of the first layer's 3x3 filters."""
    w = conv1_weight.reshape(conv1_weight.shape[0], 3, -1)
    w = w - w.mean(-1, keepdim=True)
    w = w / w.norm(dim=-1, keepdim=True)
    return torch.stack([(w[:, i] * w[:, j]).sum(-1) for i, j in ((0, 1), (0, 2), (1, 2))]).mean().item()


def _pooled(model, x):
    with torch.no_grad():
        return extract_features(x, model)[-1].mean(dim=(2, 3))[0]


@needs_shared_weights
def test_pretrained_features_tell_images_apart_where_random_ones_do_not(pretrained):
    """ImageNet features see what is in a picture: the cat photo's pooled last-layer features are
    nearly those of its mirror image, but far from the other samples'. A random network's pooled
    features are nearly the same for every picture (cosine > 0.95), so this fails for it."""
    images = {name: preprocess(name, 128) for name in ("cat", "coffee", "astronaut", "dots", "swirls")}
    cos = torch.nn.functional.cosine_similarity
    torch.manual_seed(0)
    random_net = squeezenet1_1(weights=None).features.eval()
    for model, pretrained_net in ((pretrained, True), (random_net, False)):
        cat = _pooled(model, images["cat"])
        mirror = cos(cat, _pooled(model, images["cat"].flip(-1)), dim=0).item()
        others = [cos(cat, _pooled(model, images[name]), dim=0).item() for name in images if name != "cat"]
        assert mirror > 0.9
        if pretrained_net:
            assert max(others) < 0.6, others  # measured: 0.07-0.35
        else:
            assert min(others) > 0.9, others


@needs_shared_weights
def test_pretrained_first_layer_filters_are_mostly_colour_blind(pretrained):
    """Trained first-layer filters are largely achromatic edge detectors (R, G, B parts alike;
    measured 0.58); random initialization gives about 0 +- 0.05."""
    assert _channel_correlation(pretrained[0].weight) > 0.4
    torch.manual_seed(0)
    assert abs(_channel_correlation(squeezenet1_1(weights=None).features[0].weight.detach())) < 0.2
