"""The fast mode (``TransferSettings(speed="fast")``, cs231n_style/_fast.py) reaches the exact loop's quality.

Quality, not speed, is tested here (tools/benchmark.py measures time): at 96 px the fast mode's
final loss, evaluated in float32 by the one shared function, must be no worse than the exact
loop's after CS231n's 200 steps. A fast mode that diverged, stalled (bfloat16 NCHW convolutions on
some CPUs, pytorch#163347) or returned NaN would fail that. The student's losses still receive
float32 NCHW contiguous tensors, the model is not touched, and a low-precision network that
computes wrong numbers is refused by the probe.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import cs231n_style as cs
from cs231n_style import _fast
from tools.plain_loop import CS231N_LOSSES as LOSSES
from tools.plain_loop import content_loss, gram_matrix, style_loss, tv_loss

SIZE = 96  # a coarse stage runs at 48 px
#: The benchmark's other plans: bfloat16 where the CPU has it, coarse to fine.
LOW_PRECISION = _fast.FastPlan(precision="auto", fine_steps=0.1)
COARSE_TO_FINE = _fast.FastPlan(precision="auto", coarse_fraction=0.5, coarse_steps=0.1, fine_steps=0.1)


SETTINGS = cs.TransferSettings(image_size=SIZE, style_size=SIZE)


@pytest.fixture(scope="module")
def model():
    return cs.load_squeezenet()


@pytest.fixture(scope="module")
def evaluate(model):
    return _fast.LossEvaluator("cat", "starry_night", LOSSES, model, SETTINGS)


@pytest.fixture(scope="module")
def exact_loss(model, evaluate):
    return evaluate(cs.style_transfer("cat", "starry_night", LOSSES, model, SETTINGS, progress=False).image)["total"]


def test_fast_mode_is_at_least_as_good_as_the_exact_loop(model, evaluate, exact_loss):
    result = _fast.run_fast("cat", "starry_night", LOSSES, model, SETTINGS, progress=False)
    assert result.image.shape == (1, 3, SIZE, 144) and result.image.dtype == torch.float32
    assert result.final_loss == evaluate(result.image)  # the reported loss is the shared function's
    assert math.isfinite(result.final_loss["total"])
    assert result.final_loss["total"] <= exact_loss, (result.final_loss, exact_loss, result.precision)
    assert result.image.abs().max() <= SETTINGS.clamp
    assert len(result.history["total"]) == 60  # 0.3 * num_steps loss evaluations
    assert result.precision == "float32"


def test_float32_loss_of_the_exact_loops_image_is_its_own_history(model, evaluate):
    # The shared function computes what the exact loop computes: the loss before step 2 is that of
    # the image after step 1, bit for bit (no clamping changes it: clamp_until=0).
    settings = SETTINGS.replace(num_steps=2, clamp_until=0)
    seen = []
    result = cs.style_transfer("cat", "starry_night", LOSSES, model, settings, progress=False, preview_every=1,
                               callback=lambda step, img, terms: seen.append(img))
    assert evaluate(seen[0])["total"] == result.history["total"][1]


@pytest.mark.parametrize("plan", [_fast.FAST_PLAN, LOW_PRECISION, COARSE_TO_FINE], ids=["fast", "bf16", "c2f"])
def test_losses_receive_float32_nchw_contiguous_tensors(model, plan):
    seen = []

    def record(name, tensor):
        seen.append((name, tensor.dtype, tensor.dim(), tensor.is_contiguous()))

    def style(feats, layers, targets, weights):
        for i in layers:
            record(f"feats[{i}]", feats[i])
        return style_loss(feats, layers, targets, weights)

    def content(weight, current, original):
        record("content_current", current)
        return content_loss(weight, current, original)

    def tv(img, weight):
        record("tv img", img)
        return tv_loss(img, weight)

    losses = cs.LossFunctions(content, gram_matrix, style, tv)
    _fast.run_fast("cat", "starry_night", losses, model, SETTINGS.replace(num_steps=30), plan=plan, progress=False)
    assert {name for name, *_ in seen} >= {"content_current", "tv img"} | {f"feats[{i}]" for i in SETTINGS.style_layers}
    for name, dtype, dim, contiguous in seen:
        assert (dtype, dim, contiguous) == (torch.float32, 4, True), name


def test_model_is_left_untouched(model):
    before = {name: (p.dtype, p.stride(), p.clone()) for name, p in model.named_parameters()}
    _fast.run_fast("cat", "starry_night", LOSSES, model, SETTINGS.replace(num_steps=40), plan=LOW_PRECISION,
                   progress=False)
    for name, p in model.named_parameters():
        assert (p.dtype, p.stride()) == before[name][:2] and torch.equal(p, before[name][2]), name


def test_a_wrong_low_precision_network_is_refused(model, monkeypatch, exact_loss):
    # Simulate pytorch#163347 (bfloat16 convolutions computing wrong numbers) on any machine.
    monkeypatch.setattr(_fast, "low_precision_dtype", lambda device: torch.bfloat16)
    real = _fast._LowPrecisionObjective.features
    monkeypatch.setattr(_fast._LowPrecisionObjective, "features",
                        lambda self, img: [f * 0.5 for f in real(self, img)])
    plan = dataclasses.replace(LOW_PRECISION, fine_steps=0.3)
    result = _fast.run_fast("cat", "starry_night", LOSSES, model, SETTINGS, plan=plan, progress=False)
    assert result.precision.startswith("float32 (bfloat16 refused by the probe"), result.precision
    assert result.final_loss["total"] <= exact_loss


def test_the_low_precision_network_passes_the_probe_where_the_cpu_has_bfloat16(model):
    if _fast.low_precision_dtype(torch.device("cpu")) is None:
        pytest.skip("this CPU has no native bfloat16: the fast mode runs float32")
    settings = SETTINGS.replace(num_steps=100)
    result = _fast.run_fast("cat", "starry_night", LOSSES, model, settings, plan=LOW_PRECISION, progress=False)
    assert result.precision == "bfloat16"
    assert result.final_loss["total"] < 0.8 * result.history["total"][0]


@pytest.mark.skipif("speed" not in {f.name for f in dataclasses.fields(cs.TransferSettings)},
                    reason="TransferSettings has no speed field yet")
def test_style_transfer_dispatches_on_speed(model):
    settings = SETTINGS.replace(num_steps=10, speed="fast")
    result = cs.style_transfer("cat", "starry_night", LOSSES, model, settings, progress=False)
    assert result.final_loss is not None and len(result.history["total"]) == 3
    assert cs.style_transfer("cat", "starry_night", LOSSES, model, SETTINGS.replace(num_steps=2),
                             progress=False).final_loss is None
