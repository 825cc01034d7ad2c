"""Behaviour of ``style_transfer`` beyond its arithmetic (tests/test_transfer_speedups.py has that):
previews, stopping, history, L-BFGS's best image, and the errors it names before any work."""

from __future__ import annotations

import pytest
import torch

import cs231n_style as cs
from cs231n_style.settings import GRADING_SIZE, GRADING_STEPS
from tools.plain_loop import CS231N_LOSSES, content_loss, gram_matrix, style_loss, tv_loss

SIZE = 48


LOSSES = CS231N_LOSSES  # CS231n's solutions, written plainly once (tools/plain_loop.py)


@pytest.fixture(scope="module")
def model():
    return cs.load_squeezenet()


@pytest.fixture(scope="module")
def settings():
    return cs.TransferSettings(image_size=SIZE, style_size=SIZE, num_steps=7)


def test_previews_come_every_n_steps_and_after_the_last(model, settings):
    calls = []
    result = cs.style_transfer("cat", "swirls", LOSSES, model, settings, progress=False, preview_every=3,
                               callback=lambda step, image, losses: calls.append((step, image, losses)))
    assert [step for step, _, _ in calls] == [3, 6, 7]
    _step, image, losses = calls[-1]
    assert image.shape == result.image.shape and image.device.type == "cpu" and not image.requires_grad
    assert set(losses) == {"content", "style", "tv", "total"}
    assert losses["total"] == pytest.approx(result.history["total"][-1])
    assert all(len(values) == 7 for values in result.history.values())
    assert not result.stopped_early


def test_should_stop_ends_the_run_early(model, settings):
    polls = []
    result = cs.style_transfer("cat", "swirls", LOSSES, model, settings, progress=False,
                               should_stop=lambda: polls.append(1) or len(polls) >= 2)
    assert result.stopped_early and len(result.history["total"]) == 2


def test_history_terms_add_up_and_unused_terms_are_zero(model, settings):
    result = cs.style_transfer("cat", None, LOSSES, model, settings.replace(num_steps=3), progress=False)
    assert result.history["style"] == [0.0, 0.0, 0.0]
    for c, s, t, total in zip(*(result.history[k] for k in ("content", "style", "tv", "total")), strict=True):
        assert total == pytest.approx(c + s + t)


def test_lbfgs_counts_evaluations_and_keeps_the_best_image(model, settings):
    result = cs.style_transfer("cat", "swirls", LOSSES, model, settings.replace(optimizer="lbfgs", num_steps=9),
                               progress=False)
    assert len(result.history["total"]) == 9
    best = cs.style_transfer("cat", "swirls", LOSSES, model, settings.replace(optimizer="lbfgs", num_steps=9),
                             progress=False)
    assert torch.equal(result.image, best.image)  # deterministic
    assert result.image.abs().max() <= settings.clamp


def test_noise_initialization_is_seeded(model, settings):
    noise = settings.replace(init="noise", num_steps=1)
    a = cs.style_transfer("cat", "swirls", LOSSES, model, noise, progress=False)
    b = cs.style_transfer("cat", "swirls", LOSSES, model, noise, progress=False)
    c = cs.style_transfer("cat", "swirls", LOSSES, model, noise.replace(seed=1), progress=False)
    assert torch.equal(a.image, b.image) and not torch.equal(a.image, c.image)


@pytest.mark.parametrize("losses, style, changes, error, message", [
    (cs.LossFunctions(content_loss=content_loss), "swirls", {}, ValueError, "need gram_matrix, style_loss, tv_loss"),
    (LOSSES, None, {"content_weight": 0.0, "tv_weight": 0.0}, ValueError, "Nothing to optimize"),
    (LOSSES, "swirls", {"style_layers": (1, 99), "style_weights": (1.0, 1.0)}, ValueError, "style layer 99"),
    (LOSSES, "swirls", {"content_layer": 40}, ValueError, "content_layer 40"),
])
def test_bad_arguments_are_named(model, settings, losses, style, changes, error, message):
    with pytest.raises(error, match=message):
        cs.style_transfer("cat", style, losses, model, settings.replace(**changes), progress=False)


def test_settings_and_losses_of_the_wrong_type_are_named(model):
    with pytest.raises(TypeError, match=r"TransferSettings\(\*\*settings\)"):
        cs.style_transfer("cat", "swirls", LOSSES, model, {"num_steps": 3})
    with pytest.raises(TypeError, match="LossFunctions"):
        cs.style_transfer("cat", "swirls", (content_loss,), model)


def test_while_nbgrader_grades_runs_are_cut_and_say_so(model, monkeypatch, capsys):
    """nbgrader sets NBGRADER_EXECUTION in the kernel it grades in; its default cell limit is 30 s."""
    settings = cs.TransferSettings(image_size=96, style_size=256, num_steps=50, coarse_size=48)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    result = cs.style_transfer("cat", "swirls", LOSSES, model, settings, progress=False)
    assert len(result.history["total"]) == GRADING_STEPS and result.stages == (GRADING_SIZE,)
    assert min(result.image.shape[-2:]) == GRADING_SIZE
    assert f"runs {GRADING_STEPS} steps at {GRADING_SIZE} px instead of 100 at 96 px" in capsys.readouterr().out
    monkeypatch.delenv("NBGRADER_EXECUTION")
    result = cs.style_transfer("cat", "swirls", LOSSES, model, settings.replace(num_steps=3), progress=False)
    assert result.stages == (48, 96) and "nbgrader" not in capsys.readouterr().out


# --- size-aware weights (TransferSettings.weights_size) -----------------------------------------

def recording(seen: list):
    """LOSSES whose content and TV losses note the weight each call gets, as (term, weight, height)."""
    def content(weight, current, original):
        seen.append(("content", weight, None))
        return content_loss(weight, current, original)

    def tv(img, weight):
        seen.append(("tv", weight, img.shape[2]))
        return tv_loss(img, weight)

    return cs.LossFunctions(content, gram_matrix, style_loss, tv)


def test_size_aware_weights_scale_the_content_and_tv_weights_of_the_run(model, settings):
    plain = cs.style_transfer("cat", "swirls", LOSSES, model, settings, progress=False)
    # At the size they are meant for, the factor is exactly 1.0: the same run, bit for bit.
    same = cs.style_transfer("cat", "swirls", LOSSES, model, settings.replace(weights_size=SIZE), progress=False)
    assert torch.equal(same.image, plain.image) and same.history == plain.history
    # Meant for twice the size: 4x the content and TV weights (exact in floating point), nothing else.
    scaled = cs.style_transfer("cat", "swirls", LOSSES, model, settings.replace(weights_size=2 * SIZE),
                               progress=False)
    by_hand = settings.replace(content_weight=4 * settings.content_weight, tv_weight=4 * settings.tv_weight)
    reference = cs.style_transfer("cat", "swirls", LOSSES, model, by_hand, progress=False)
    assert torch.equal(scaled.image, reference.image) and scaled.history == reference.history
    assert not torch.equal(scaled.image, plain.image)
    assert scaled.settings.weights_size == 2 * SIZE  # the result keeps the settings as given


def test_each_stage_of_coarse_to_fine_gets_the_weights_for_its_own_size(model):
    settings = cs.TransferSettings(image_size=64, style_size=64, num_steps=2, coarse_size=32, content_weight=0.5,
                                   tv_weight=0.25, weights_size=64)
    seen = []
    cs.style_transfer("cat", "swirls", recording(seen), model, settings, progress=False)
    assert [weight for term, weight, _ in seen if term == "content"] == [2.0, 2.0, 0.5, 0.5]  # (64/32)^2, then 1
    assert [(weight, height) for term, weight, height in seen if term == "tv"] == [(1.0, 32)] * 2 + [(0.25, 64)] * 2
    seen.clear()
    cs.style_transfer("cat", "swirls", recording(seen), model, settings.replace(weights_size=0), progress=False)
    # 0: the weights are meant for the run's own size (64 px), the one rule of both modes
    assert [weight for term, weight, _ in seen if term == "content"] == [2.0, 2.0, 0.5, 0.5]


def test_a_model_of_another_backbone_than_the_settings_say_is_refused(model):
    with pytest.raises(ValueError, match=r"The model is SqueezeNet 1.1 but settings.backbone is 'vgg16'"):
        cs.style_transfer("cat", "swirls", LOSSES, model, cs.TransferSettings(backbone="vgg16", num_steps=1),
                          progress=False)
