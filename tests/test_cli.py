"""The headless command, ``python -m cs231n_style``: writes a PNG, never overwrites, clear errors."""

import dataclasses
from pathlib import Path

import pytest
from PIL import Image

from cs231n_style import TransferSettings
from cs231n_style.__main__ import build_parser, main

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
