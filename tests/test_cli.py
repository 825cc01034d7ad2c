"""The headless command, ``python -m cs231n_style``: writes a PNG, never overwrites, clear errors."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cs231n_style import TransferSettings
from cs231n_style.__main__ import build_parser, main
from tools.plain_loop import GUIDED_SOURCE

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--image-size", "32", "--style-size", "32", "--num-steps", "3", "--functions", str(ROOT / "solutions")]


def test_writes_a_png_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "result.png"
    assert main(["--content", "coffee", "--style", "mosaic", "--output", str(out), *TINY]) == 0
    assert main(["--example", "cat_starry_night", "--content=coffee", "--output", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "coffee + mosaic" in printed and "coffee + starry_night" in printed  # --content=X beats the example's
    first, second = Image.open(out), Image.open(tmp_path / "result-1.png")
    assert first.size == second.size and min(first.size) == 32


def test_every_setting_is_an_option_with_its_help():
    text = build_parser().format_help()
    for option in ("--content-weight", "--style-layers", "--tv-weight", "--optimizer", "--init"):
        assert option in text
    assert "Weight of the total variation loss" in text


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["--output", str(tmp_path / "x.txt"), *TINY]) == 2
    assert main(["--content", str(tmp_path / "missing.jpg"), "--output", str(tmp_path / "r.png"), *TINY]) == 2
    assert main(["--output", str(tmp_path / "r.png"), *TINY[:-1], str(ROOT / "notebooks")]) == 1
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["--output", str(blocker / "r.png"), *TINY]) == 2  # refused before the run, not after
    assert main(["--output", str(tmp_path / "r.png"), "--style-layers", "1", "4", *TINY]) == 2
    assert main(["--output", str(tmp_path / "r.png"), "--content-layer", "99", *TINY]) == 2
    err = capsys.readouterr().err
    assert "must end in .png" in err and "No image file" in err and "not implemented yet" in err
    assert "--style-layers has 2 values but the style weights" in err and "pass --style-weights with 2 values" in err
    assert "content_layer 99: no such layer, the model has layers 0-12" in err
    assert "cannot write" in err and "Choose another --output" in err
    assert not list(tmp_path.glob("*.png"))


def test_options_are_made_from_the_settings_fields():
    parser = build_parser()
    text = parser.format_help()
    for field in dataclasses.fields(TransferSettings):
        assert "--" + field.name.replace("_", "-") in text
    assert "--speed {exact,fast}" in text and "bit for bit" in text
    args = parser.parse_args(["--style-layers", "1", "4", "--style-weights", "1", "2.5", "--image-size", "64",
                              "--learning-rate", "2", "--speed", "fast"])
    assert (args.style_layers, args.style_weights, args.image_size) == ([1, 4], [1.0, 2.5], 64)
    assert (args.learning_rate, args.speed, args.num_steps) == (2.0, "fast", None)  # None: not given


def test_bad_settings_get_the_settings_own_message_before_any_work(tmp_path, capsys):
    out = ["--output", str(tmp_path / "r.png"), "--functions", str(tmp_path / "no-notebooks-here")]
    assert main([*out, "--learning-rate", "0"]) == 2
    assert main([*out, "--style-layers", "1", "4", "--style-weights", "1", "-2"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: Invalid style transfer settings: learning_rate must be a finite number > 0, not 0.0.",
        "error: Invalid style transfer settings: style weight must be a finite number >= 0, not -2.0."]


def test_a_choice_not_offered_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--speed", "slow"])
    assert done.value.code == 2 and "invalid choice: 'slow' (choose from 'exact', 'fast')" in capsys.readouterr().err




@pytest.fixture
def course_with_05(tmp_path):
    """A course folder: the solution notebooks 01-03, and a notebook 05 holding the reference guided pair."""
    import shutil

    import nbformat

    folder = tmp_path / "course"
    folder.mkdir()
    for name in ("01_content_loss.ipynb", "02_style_loss.ipynb", "03_tv_loss.ipynb"):
        shutil.copy(ROOT / "solutions" / name, folder / name)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch\n" + GUIDED_SOURCE)])
    nbformat.write(notebook, folder / "05_controlling_style_transfer.ipynb")
    return folder


def test_the_controls_are_options(capsys):
    text = build_parser().format_help()
    assert "--preserve-colors {none,luminance,histogram}" in text and "--coarse-size N" in text
    assert "--style-blend-weights X [X ...]" in text and "--style IMAGE [IMAGE ...]" in text
    assert "--masks FILE [FILE ...]" in text and "white for the first --style" in text


def test_several_styles_are_blended_with_their_weights(tmp_path, capsys):
    blend, single = tmp_path / "blend.png", tmp_path / "single.png"
    assert main(["--content", "coffee", "--style", "mosaic", "dots", "--style-blend-weights", "1", "0",
                 "--output", str(blend), *TINY]) == 0
    assert main(["--content", "coffee", "--style", "mosaic", "--output", str(single), *TINY]) == 0
    assert "coffee + mosaic + dots" in capsys.readouterr().out
    assert (np.asarray(Image.open(blend)) == np.asarray(Image.open(single))).all()  # weight 0: the first alone


def test_a_mask_file_gives_each_half_its_style(tmp_path, capsys, course_with_05):
    drawing = np.zeros((30, 60), np.uint8)
    drawing[:, :30] = 255  # white on the left: the first style there
    Image.fromarray(drawing).save(tmp_path / "left.png")
    out = tmp_path / "r.png"
    functions = ["--functions", str(course_with_05)]
    assert main(["--content", "coffee", "--style", "mosaic", "dots", "--masks", str(tmp_path / "left.png"),
                 "--output", str(out), *TINY[:-2], *functions]) == 0
    assert "coffee + mosaic + dots (regions from" in capsys.readouterr().out
    assert min(Image.open(out).size) == 32
    assert main(["--content", "coffee", "--style", "mosaic", "dots", "swirls", "--masks", str(tmp_path / "left.png"),
                 "--output", str(out), *TINY[:-2], *functions]) == 2
    assert "content_masks have 2 regions but style_image has 3 images" in capsys.readouterr().err
    only_four = tmp_path / "four"
    only_four.mkdir()
    for name in ("01_content_loss.ipynb", "02_style_loss.ipynb", "03_tv_loss.ipynb"):
        (only_four / name).write_bytes((course_with_05 / name).read_bytes())
    assert main(["--content", "coffee", "--style", "mosaic", "dots", "--masks", str(tmp_path / "left.png"),
                 "--output", str(out), *TINY[:-2], "--functions", str(only_four)]) == 2
    assert main(["--content", "coffee", "--style", "mosaic", "--masks", str(tmp_path / "missing.png"),
                 "--output", str(out), *TINY[:-2], *functions]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "--masks needs guided_style_loss from 05_controlling_style_transfer.ipynb" in err[0]
    assert "missing.png" in err[1]


def test_the_weights_are_size_aware_by_default_and_can_be_used_as_given():
    from cs231n_style.__main__ import run_settings
    from cs231n_style.transfer import EXAMPLE_SETTINGS

    parser = build_parser()
    assert TransferSettings().weights_size == 0  # the package and the notebooks: CS231n's numbers as such
    _, _, settings = run_settings(parser.parse_args(["--image-size", "384"]))
    assert settings == TransferSettings(image_size=384, weights_size=192)
    content, styles, settings = run_settings(parser.parse_args(["--example", "coffee_the_scream"]))
    example = EXAMPLE_SETTINGS["coffee_the_scream"]
    assert (content, styles, settings) == (example[0], [example[1]], example[2].replace(weights_size=192))
    assert example[2].weights_size == 0  # EXAMPLE_SETTINGS itself is unchanged (the notebooks use it)
    for given, expected in ((["--weights-size", "0"], 0), (["--weights-size", "384"], 384)):
        assert run_settings(parser.parse_args(["--example", "cat_starry_night", *given]))[2].weights_size == expected
    text = " ".join(parser.format_help().split())
    assert "--weights-size N" in text and "multiplied by (weights_size / size)^2" in text
    assert "CS231n's weights are for 192) (default: 192)" in text


def test_a_negative_weights_size_is_refused_before_any_work(tmp_path, capsys):
    out = ["--output", str(tmp_path / "r.png"), "--functions", str(tmp_path / "no-notebooks-here")]
    assert main([*out, "--weights-size", "-192"]) == 2
    assert main([*out, "--weights-size", "8"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: Invalid style transfer settings: weights_size must be a whole number of pixels >= 0 and <= 2048, "
        "not -192.",
        "error: Invalid style transfer settings: weights_size must be 0 (the weights as given) or a whole number of "
        "pixels >= 32 (CS231n's weights are for 192), not 8."]


def test_an_error_in_a_students_function_is_located_as_the_checks_locate_it(tmp_path, capsys):
    # A tv_loss whose slices are off by one: torch raises a shape mismatch deep inside the run. The
    # command names the function, its notebook and line, and what the checks would say, not torch's words alone.
    import shutil

    import nbformat

    folder = tmp_path / "course"
    folder.mkdir()
    for name in ("01_content_loss.ipynb", "02_style_loss.ipynb"):
        shutil.copy(ROOT / "solutions" / name, folder / name)
    wrong = ("import torch\n\n"
             "def tv_loss(img, tv_weight):\n"
             "    down = torch.sum((img[:, :, 1:, :] - img[:, :, :-1, :]) ** 2)\n"
             "    right = torch.sum((img[:, :, :, 1:] - img[:, :, :-2, :]) ** 2)\n"
             "    return tv_weight * (down + right)\n")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(wrong)]), folder / "03_tv_loss.ipynb")
    assert main(["--output", str(tmp_path / "r.png"), *TINY[:-2], "--functions", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "tv_loss (in 03_tv_loss.ipynb)" in err
    assert "line 5: right = torch.sum((img[:, :, :, 1:] - img[:, :, :-2, :]) ** 2)" in err
    assert "shapes (1, 3, 32, 48)" in err and "03_tv_loss.ipynb's check cell" in err
    assert not (tmp_path / "r.png").exists()


def test_the_photorealism_weight_takes_notebook_06s_function(tmp_path, capsys):
    out = tmp_path / "photo.png"
    assert main(["--content", "coffee", "--style", "rocket", "--photorealism-weight", "3000", "--output", str(out),
                 *TINY]) == 0
    assert out.is_file()
    folder = tmp_path / "no06"
    folder.mkdir()
    for name in ("01_content_loss.ipynb", "02_style_loss.ipynb", "03_tv_loss.ipynb"):
        (folder / name).write_bytes((ROOT / "solutions" / name).read_bytes())
    assert main(["--photorealism-weight", "3000", "--output", str(tmp_path / "x.png"), *TINY[:-2],
                 "--functions", str(folder)]) == 2
    assert "06_photorealistic_style_transfer.ipynb" in capsys.readouterr().err


def test_a_vgg_backbone_runs_from_its_weights_file_with_layers_by_name(tmp_path, capsys):
    # Random VGG-16 weights (speed and wiring do not depend on the values; no VGG file exists offline).
    import torch
    import torchvision

    weights = tmp_path / "vgg16_features.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16(weights=None).features.state_dict(), weights)
    out = tmp_path / "vgg.png"
    assert main(["--backbone", "vgg16", "--weights", str(weights), "--content-layer", "relu3_1", "--pooling", "avg",
                 "--output", str(out), *TINY]) == 0, capsys.readouterr().err
    assert out.is_file()
    assert main(["--backbone", "vgg16", "--weights", str(tmp_path / "missing.pth"), "--output", str(out),
                 *TINY]) == 2
    assert "missing.pth" in capsys.readouterr().err
    assert main(["--backbone", "vgg16", "--content-layer", "fire2", "--output", str(out), *TINY]) == 2
    assert "'fire2' is not a layer of VGG-16" in capsys.readouterr().err
    assert main(["--backbone", "vgg16", "--example", "cat_starry_night", "--output", str(out), *TINY]) == 2
    assert "for SqueezeNet" in capsys.readouterr().err


def test_a_misspelled_image_is_said_at_once_with_the_sample_meant(tmp_path, capsys, monkeypatch):
    """A newcomer's --content caat printed 'style transfer on cpu ...' first, and the error ~8 s later."""
    import cs231n_style.__main__ as cli

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the images were checked")

    monkeypatch.setattr(cli, "load_backbone", never)
    assert main(["--content", "caat", "--output", str(tmp_path / "x.png")]) == 2
    out, err = capsys.readouterr()
    assert "style transfer on" not in out
    assert "No image file at 'caat'. Did you mean the sample 'cat'?" in err
    assert main(["--style", str(tmp_path / "nothing.png"), "--output", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "nothing.png" in err and "Did you mean" not in err


def test_a_run_too_short_to_lower_the_loss_says_why(tmp_path, capsys):
    """Adam at CS231n's learning rate (3.0) first overshoots: after 5 steps the loss is higher than at the start."""
    assert main(["--num-steps", "5", "--image-size", "64", "--output", str(tmp_path / "x.png")]) == 0
    out = capsys.readouterr().out
    start, end = (float(x) for x in out.split("total loss ")[1].split(" (")[0].split(" -> "))
    assert end > start and "run more --num-steps" in out
