"""The fast loop of ``style_transfer`` computes exactly what a plain loop computes, and feeds the losses NCHW.

``style_transfer`` runs SqueezeNet only up to the deepest layer a loss reads, computes targets once
without autograd and, on the CPU, runs max-pooling's forward pass with PyTorch's channels-last
kernel. None of this may change a single bit of the result: CS231n's Adam (learning rate 3.0,
whose first steps move each pixel by about +-3 whatever the gradient's size) turns any
rounding-level difference into a visibly different image within a few steps (docs/benchmark.md,
"Same image?"). So these tests compare it with the plainest loop there is, ``tools/plain_loop.py`` (all
13 layers, nn.MaxPool2d, every iteration; the benchmark's baseline too), for exact equality.

No timing here: tools/benchmark.py measures speed.
"""

from __future__ import annotations

import re

import pytest
import torch

import cs231n_style as cs
from cs231n_style._pooling import network_for
from tools.plain_loop import CS231N_LOSSES as LOSSES, straightforward_loop

SIZE = 64  # small images keep this file well under 20 s on a 2-core CPU




def recording(losses: cs.LossFunctions, seen: list) -> cs.LossFunctions:
    """Wrap ``losses`` so that every tensor they receive is appended to ``seen`` as (name, tensor)."""
    def content(weight, current, original):
        seen.extend([("content_current", current), ("content_original", original)])
        return losses.content_loss(weight, current, original)

    def gram(features, normalize=True):
        seen.append(("gram_matrix features", features))
        return losses.gram_matrix(features, normalize)

    def style(feats, layers, targets, weights):
        seen.extend((f"style_loss feats[{i}]", feats[i]) for i in layers)
        return losses.style_loss(feats, layers, targets, weights)

    def tv(img, weight):
        seen.append(("tv_loss img", img))
        return losses.tv_loss(img, weight)

    return cs.LossFunctions(content, gram, style, tv)


@pytest.fixture(scope="module")
def model():
    return cs.load_squeezenet()


@pytest.fixture(scope="module")
def settings():
    return cs.TransferSettings(image_size=SIZE, style_size=SIZE, num_steps=1)


def test_losses_receive_contiguous_nchw_tensors(model, settings):
    seen = []
    cs.style_transfer("cat", "swirls", recording(LOSSES, seen), model, settings.replace(num_steps=2), progress=False)
    names = {name for name, _ in seen}
    assert {"content_current", "content_original", "gram_matrix features", "tv_loss img"} <= names
    assert {f"style_loss feats[{i}]" for i in settings.style_layers} <= names
    for name, tensor in seen:
        assert tensor.dim() == 4 and tensor.is_contiguous(), (f"{name}: shape {tuple(tensor.shape)}, "
                                                              f"strides {tensor.stride()}")


def test_model_is_left_untouched(model, settings):
    before = {name: (p.stride(), p.clone()) for name, p in model.named_parameters()}
    cs.style_transfer("cat", "swirls", LOSSES, model, settings, progress=False)
    for name, p in model.named_parameters():
        assert p.stride() == before[name][0] and torch.equal(p, before[name][1]), name
    assert cs.extract_features(torch.zeros(1, 3, SIZE, SIZE), model)[1].is_contiguous()


def test_the_loop_is_the_plain_loop_exactly(model, settings):
    # CS231n's learning rate 3.0, and the whole schedule: decay, then the end of clamping.
    schedule = settings.replace(num_steps=12, decay_at=8, clamp_until=10)
    reference = straightforward_loop("cat", "swirls", LOSSES, model, schedule)
    result = cs.style_transfer("cat", "swirls", LOSSES, model, schedule, progress=False)
    assert result.history["total"] == reference.totals
    assert torch.equal(result.image, reference.image)


def test_first_gradient_is_the_plain_loop_gradient_exactly(model, settings):
    reference_grad = straightforward_loop("cat", "swirls", LOSSES, model, settings).first_grad
    seen = []
    cs.style_transfer("cat", "swirls", recording(LOSSES, seen), model, settings, progress=False)
    img = next(tensor for name, tensor in seen if name == "tv_loss img")  # the image being optimized
    assert torch.equal(img.grad, reference_grad)


def relu_maps_with_ties(shape, dtype, seed=0):
    """ReLU-like maps: about half zeros, and positive values drawn from a few levels, so that most
    pooling windows hold several equal maxima."""
    generator = torch.Generator().manual_seed(seed)
    levels = torch.randint(-3, 4, shape, generator=generator).to(dtype).clamp(min=0) / 4
    mask = torch.rand(shape, generator=generator, dtype=dtype) < 0.3
    return levels + mask * torch.rand(shape, generator=generator, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape, pool", [
    ((1, 64, 95, 143), dict(kernel_size=3, stride=2, ceil_mode=True)),   # SqueezeNet's first pooling layer
    ((2, 5, 17, 16), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ((1, 3, 9, 11), dict(kernel_size=2, stride=2)),
    ((1, 4, 10, 7), dict(kernel_size=(3, 2), stride=(1, 2), padding=1)),
    ((1, 4, 12, 12), dict(kernel_size=3)),                                 # stride defaults to the kernel size
])
def test_fast_max_pooling_is_max_pooling_bit_for_bit(dtype, shape, pool):
    reference_layer = torch.nn.MaxPool2d(**pool)
    fast_layer = network_for(torch.nn.Sequential(reference_layer), 0)[0]
    assert type(fast_layer) is not torch.nn.MaxPool2d  # the replacement is in place
    x = relu_maps_with_ties(shape, dtype)
    upstream = torch.randn(reference_layer(x).shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    outputs, grads = [], []
    for layer in (reference_layer, fast_layer):
        leaf = x.clone().requires_grad_(True)
        out = layer(leaf)
        out.backward(upstream)
        outputs.append(out)
        grads.append(leaf.grad)
    assert outputs[1].is_contiguous() and outputs[1].dtype == dtype
    assert torch.equal(outputs[0], outputs[1])
    assert torch.equal(grads[0], grads[1])  # the same argmax in every window, ties included


def test_lbfgs_lowers_the_loss(model, settings):
    result = cs.style_transfer("cat", "swirls", LOSSES, model, settings.replace(optimizer="lbfgs", num_steps=15),
                               progress=False)
    assert min(result.history["total"]) < 0.8 * result.history["total"][0]
    assert result.image.abs().max() <= settings.clamp


@pytest.mark.parametrize("changes, words", [
    ({"content_layer": -1}, "content_layer must be a layer index >= 0"),
    ({"style_layers": (-1,), "style_weights": (1.0,)}, "style layer must be a layer index >= 0"),
    ({"image_size": 100.5}, "image_size must be a whole number of pixels"),
    ({"style_size": 8}, "style_size must be a whole number of pixels >= 32"),
    ({"learning_rate": -1.0}, "learning_rate must be a finite number > 0"),
    ({"clamp": float("nan")}, "clamp must be a finite number > 0"),
    ({"style_weights": "1234"}, "not a string"),
    ({"num_steps": 2.5}, "num_steps must be a whole number"),
    ({"style_layers": (1, 4), "style_weights": (1.0,)}, "2 style layers but 1 style weights"),
])
def test_bad_settings_are_refused_with_a_clear_message(changes, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        cs.TransferSettings(**changes)


def test_settings_as_a_dict_get_a_message_with_the_fix(model):
    with pytest.raises(TypeError, match=re.escape("not dict: pass TransferSettings(**settings)")):
        cs.style_transfer("cat", "swirls", LOSSES, model, {"num_steps": 2})


def test_nothing_to_optimize_is_an_error_not_an_autograd_crash(model):
    settings = cs.TransferSettings(content_weight=0.0, tv_weight=0.0, image_size=32, num_steps=1)
    with pytest.raises(ValueError, match="Nothing to optimize"):
        cs.style_transfer("cat", None, cs.LossFunctions(), model, settings)
