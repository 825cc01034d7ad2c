"""TransferSettings: each field declared with its default, its help and what it may hold (its
metadata), and every value checked against that.

The ranges below are the course's rules written out (sizes 32-2048, weights >= 0 and finite,
learning rates and clamp > 0, steps and layers >= 0), not read back from the metadata: the test
fails if the metadata says otherwise. The command line and the panel, which are made from the
same metadata, are tested in tests/test_cli.py and tests/test_widgets.py.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from cs231n_style import TransferSettings
from cs231n_style.settings import plan_stages

FIELDS = {field.name: field for field in dataclasses.fields(TransferSettings)}

#: Per single-valued field: values refused, values accepted (each as the only change to the defaults).
RANGES = {
    "image_size": ([31, 2049, 64.0, True, "64"], [32, 2048, np.int64(64)]),
    "style_size": ([31, 2049, 100.5], [32, 2048]),
    "content_layer": ([-1, 3.0], [0, 12]),
    "content_weight": ([-1e-9, math.inf, math.nan, "0.1", None, 10**400], [0, 0.0, 1e9, np.float32(0.5)]),
    "tv_weight": ([-1.0, math.inf], [0.0, 2e-2]),
    "backbone": (["vgg21", 3, "VGG-16"], ["vgg16", "squeezenet1_1"]),
    "photorealism_weight": ([-1.0, math.nan, "3000"], [0.0, 3e3]),
    "init": (["Content", "random", 0], ["content", "noise"]),
    "num_steps": ([-1, 2.5], [0, 5000]),
    "optimizer": (["sgd", "Adam"], ["adam", "lbfgs"]),
    "learning_rate": ([0, 0.0, -1.0, math.inf], [1e-12, 3]),
    "decayed_learning_rate": ([0.0, math.nan], [1e-6]),
    "decay_at": ([-1, 1.5], [0]),
    "clamp": ([0.0, -1.5, math.nan], [1e-3]),
    "clamp_until": ([-1], [0]),
    "seed": ([-1, 0.5], [0, 2**31]),
    "speed": (["slow", "FAST", None], ["exact", "fast"]),
    "preserve_colors": (["yes", "Luminance", True, None], ["none", "luminance", "histogram"]),
    "coarse_size": ([-1, 2049, 64.5, "96"], [0, 96, 191]),  # and 32 <= coarse_size < image_size: below
    "weights_size": ([-1, 1, 31, 2049, 192.0, "192", True], [0, 32, 192, 2048]),  # 1-31: no image is that small
}


def test_every_field_has_a_default_a_help_and_a_kind():
    assert set(RANGES) | {"style_layers", "style_weights", "style_blend_weights"} == set(FIELDS)  # a new field: a row
    for field in FIELDS.values():
        assert field.default is not dataclasses.MISSING and field.metadata["help"]
        assert field.metadata["kind"] in ("whole number", "number", "layer index", "choice")
        assert (field.metadata["kind"] == "choice") == (field.metadata["choices"] is not None)
    assert TransferSettings().speed == "exact"  # the default is CS231n's loop, bit for bit
    controls_off = {"preserve_colors": "none", "style_blend_weights": (), "coarse_size": 0, "weights_size": 0,
                    "photorealism_weight": 0.0}
    assert {name: getattr(TransferSettings(), name) for name in controls_off} == controls_off


@pytest.mark.parametrize("name", RANGES)
def test_each_field_takes_its_range_and_refuses_the_rest(name):
    refused, accepted = RANGES[name]
    for value in accepted:
        assert getattr(TransferSettings(**{name: value}), name) == value
    for value in refused:
        pattern = rf"^Invalid style transfer settings: {name} must be .+, not {re.escape(repr(value))}\.$"
        with pytest.raises(ValueError, match=pattern):
            TransferSettings(**{name: value})


@pytest.mark.parametrize("changes, message", [
    ({"learning_rate": 0}, "learning_rate must be a finite number > 0, not 0"),
    ({"content_weight": "0.1"}, "content_weight must be a finite number >= 0, not '0.1'"),
    ({"seed": -1}, "seed must be a whole number >= 0, not -1"),
    ({"image_size": 31}, "image_size must be a whole number of pixels >= 32 and <= 2048, not 31"),
    ({"content_layer": 3.0}, "content_layer must be a layer index >= 0 (see cs.describe_layers), not 3.0"),
    ({"init": "random"}, "init must be 'content' or 'noise', not 'random'"),
    ({"speed": "slow"}, "speed must be 'exact' or 'fast', not 'slow'"),
    ({"style_weights": (1.0, -2.0, math.inf, 3.0)}, "style weight must be a finite number >= 0, not -2.0; "
                                                    "style weight must be a finite number >= 0, not inf"),
    ({"style_layers": (1, 4.5, 6, 7)}, "style_layers must be a sequence of numbers such as (1, 4, 6, 7) "
                                       "(4.5 is not a whole number)"),
    ({"style_weights": 5.0}, "style_weights must be a sequence of numbers such as (20000.0, 500.0, 12.0, 1.0) "
                             "('float' object is not iterable)"),
    ({"style_layers": "1467"}, "style_layers must be a sequence of numbers such as (1, 4, 6, 7), not a string"),
])
def test_messages_say_what_the_value_must_be(changes, message):
    with pytest.raises(ValueError, match=re.escape(f"Invalid style transfer settings: {message}.")):
        TransferSettings(**changes)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ValueError) as error:
        TransferSettings(image_size=8, learning_rate=0.0, speed="slow", style_layers=(1, 4))
    problems = str(error.value).removeprefix("Invalid style transfer settings: ").removesuffix(".").split("; ")
    assert [problem.split(" must be")[0] for problem in problems] == [
        "image_size", "learning_rate", "speed", "2 style layers but 4 style weights"]


def test_sequences_are_stored_as_tuples_of_ints_and_floats():
    settings = TransferSettings(style_layers=[1.0, np.int64(4)], style_weights=np.array([1, 2]))
    assert settings.style_layers == (1, 4) and [type(i) for i in settings.style_layers] == [int, int]
    assert settings.style_weights == (1.0, 2.0) and [type(w) for w in settings.style_weights] == [float, float]
    assert hash(settings) == hash(TransferSettings(style_layers=(1, 4), style_weights=(1.0, 2.0)))
    assert TransferSettings(style_layers=(), style_weights=()).deepest_layer == 3  # the content layer alone


def test_changing_only_the_style_layers_says_to_change_the_weights_too():
    defaults = TransferSettings()
    with pytest.raises(ValueError, match=re.escape(
            "Invalid style transfer settings: style_layers has 2 values but the style weights "
            "(20000.0, 500.0, 12.0, 1.0) have 4: pass style_weights with 2 values too.")):
        defaults.replace(style_layers=(1, 4))
    with pytest.raises(ValueError, match=re.escape("--style-weights has 1 values but the style layers (1, 4, 6, 7)")):
        defaults.with_changes({"style_weights": [1.0]}, name_of=lambda name: "--" + name.replace("_", "-"))
    assert defaults.replace(style_layers=(1, 4, 6, 8)).style_weights == defaults.style_weights  # same count
    assert defaults.replace(style_layers=(1, 4), style_weights=(1, 2)).style_weights == (1.0, 2.0)
    with pytest.raises(ValueError, match=re.escape("2 style layers but 1 style weights")):
        defaults.replace(style_layers=(1, 4), style_weights=(1.0,))  # both given: the constructor's message


def test_linear_slider_ranges_lie_within_the_allowed_range():
    sliders = {name: field.metadata["slider"] for name, field in FIELDS.items() if field.metadata["slider"]}
    assert set(sliders) == {"content_weight", "style_weights", "tv_weight", "image_size", "num_steps",
                            "photorealism_weight"}  # the panel's sliders (photorealism: its log slider, #21)
    for name, slider in sliders.items():
        meta = FIELDS[name].metadata
        assert slider.scale in ("linear", "log")
        if slider.scale == "linear":
            assert meta["minimum"] <= slider.low < slider.high <= (meta["maximum"] or math.inf)
        else:
            assert meta["minimum"] == 0 and meta["kind"] == "number"  # a log slider's lowest end is > 0


@pytest.mark.parametrize("changes, message", [
    ({"coarse_size": 192}, "coarse_size must be 0 (no coarse stage) or a whole number of pixels >= 32 and smaller "
                           "than image_size (192), not 192"),
    ({"coarse_size": 256, "image_size": 128}, "coarse_size must be 0 (no coarse stage) or a whole number of pixels "
                                              ">= 32 and smaller than image_size (128), not 256"),
    ({"coarse_size": 16}, "coarse_size must be 0 (no coarse stage) or a whole number of pixels >= 32 and smaller "
                          "than image_size (192), not 16"),
    ({"weights_size": -192}, "weights_size must be a whole number of pixels >= 0 and <= 2048, not -192"),
    ({"weights_size": 16}, "weights_size must be 0 (the weights as given) or a whole number of pixels >= 32 "
                           "(CS231n's weights are for 192), not 16"),
    ({"style_blend_weights": (0.0, 0)}, "the style blend weights (0.0, 0.0) are all 0: give at least one style "
                                        "image a weight > 0 (or leave style_blend_weights empty for equal weights)"),
    ({"style_blend_weights": (1.0, -0.5)}, "style blend weight must be a finite number >= 0, not -0.5"),
    ({"style_blend_weights": "12"}, "style_blend_weights must be a sequence of numbers such as (), not a string"),
])
def test_the_controls_are_checked_against_each_other(changes, message):
    with pytest.raises(ValueError, match=re.escape(f"Invalid style transfer settings: {message}.")):
        TransferSettings(**changes)


def test_blend_weights_are_stored_as_floats_and_coarse_size_may_be_just_below_the_image_size():
    settings = TransferSettings(style_blend_weights=[1, np.float32(0.5)], coarse_size=96, image_size=97)
    assert settings.style_blend_weights == (1.0, 0.5) and [type(w) for w in settings.style_blend_weights] == [float] * 2
    assert TransferSettings(style_blend_weights=(0.0, 2.0)).style_blend_weights == (0.0, 2.0)  # one > 0 is enough


def test_total_steps_count_both_stages_of_coarse_to_fine():
    assert TransferSettings(num_steps=50).total_steps == 50
    assert TransferSettings(num_steps=50, coarse_size=96).total_steps == 100


# --- size-aware weights: one rule for every stage of every run (settings.plan_stages) ----------------

W = TransferSettings()  # CS231n's weights: content 5e-2, TV 5e-2


def weights(stage: TransferSettings) -> tuple[float, float]:
    return stage.content_weight, stage.tv_weight


def stage_settings(settings: TransferSettings) -> list[TransferSettings]:
    return [stage.settings for stage in plan_stages(settings)]


def test_without_a_weights_size_a_one_stage_run_keeps_the_settings_given():
    settings = TransferSettings(image_size=384)
    assert stage_settings(settings)[0] is settings  # CS231n's loop runs on the very settings given


@pytest.mark.parametrize("image_size, factor", [(192, 1.0), (384, 0.25), (768, 1 / 16), (96, 4.0), (288, 4 / 9)])
def test_each_stage_scales_the_content_and_tv_weights_with_the_inverse_area(image_size, factor):
    (stage,) = stage_settings(TransferSettings(image_size=image_size, weights_size=192))
    assert weights(stage) == (W.content_weight * factor, W.tv_weight * factor)
    assert stage.style_weights == W.style_weights and stage.image_size == image_size
    assert stage.weights_size == 0  # its weights are now for its own size: never scaled twice
    assert weights(stage_settings(TransferSettings(image_size=image_size, weights_size=image_size))[0]) == weights(W)


def test_coarse_to_fine_scales_each_stage_for_its_own_size():
    coarse, fine = stage_settings(TransferSettings(image_size=768, coarse_size=384, weights_size=192))
    assert (coarse.image_size, fine.image_size) == (384, 768)
    assert weights(coarse) == (W.content_weight / 4, W.tv_weight / 4)
    assert weights(fine) == (W.content_weight / 16, W.tv_weight / 16)


@pytest.mark.parametrize("speed", ["exact", "fast"])
def test_without_a_weights_size_the_weights_are_meant_for_the_runs_own_size(speed):
    # One rule for both modes: the coarse stage's weights times (image_size / coarse_size)^2, the
    # full-size stage's as given.
    settings = TransferSettings(image_size=384, speed=speed, coarse_size=192 if speed == "exact" else 0)
    coarse, fine = stage_settings(settings)
    assert (coarse.image_size, weights(coarse), weights(fine)) == (192, (0.2, 0.2), weights(W))


def test_the_fast_mode_uses_the_same_rule():
    # weights_size 192: each stage's weights for its own size, as in the exact loop.
    coarse, fine = stage_settings(TransferSettings(image_size=384, weights_size=192, speed="fast"))
    assert weights(coarse) == weights(W) and weights(fine) == (W.content_weight / 4, W.tv_weight / 4)
    (small,) = stage_settings(TransferSettings(image_size=96, weights_size=192, speed="fast"))  # the exact loop
    assert weights(small) == (W.content_weight * 4, W.tv_weight * 4)


# --- backbones: layers by name, each backbone's defaults (cs231n_style.backbones) -----------------------

def test_layers_may_be_named_by_the_backbones_layer_names():
    named = TransferSettings(content_layer="fire2", style_layers=("relu_conv1", "fire3", "fire4", "fire5"))
    assert named == TransferSettings()  # CS231n's indices 3 / 1, 4, 6, 7
    vgg = TransferSettings(backbone="vgg19", content_layer="relu4_2", style_layers=["relu1_1", 6],
                           style_weights=[1, 1])
    # torchvision's VGG-19 features: relu4_2 is layer 22, relu1_1 layer 1 (conv, relu, ... by block)
    assert (vgg.content_layer, vgg.style_layers) == (22, (1, 6))
    with pytest.raises(ValueError, match=r"'relu4_2' is not a layer of SqueezeNet 1.1"):
        TransferSettings(content_layer="relu4_2")


def test_for_backbone_starts_from_its_defaults():
    assert TransferSettings.for_backbone("squeezenet1_1") == TransferSettings()
    vgg = TransferSettings.for_backbone("vgg16", num_steps=10)
    assert (vgg.backbone, vgg.content_layer, vgg.style_layers, vgg.num_steps) == ("vgg16", 20, (1, 6, 11, 18, 25), 10)
    with pytest.raises(ValueError, match="Unknown backbone"):
        TransferSettings.for_backbone("resnet50")
