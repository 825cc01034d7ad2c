"""Input that cannot sink the machine (issue 13): a 5.7 KB PNG of 10 x 9600 px once used 24 GB in
the CLI. Images are refused before resizing when the result would be too large, decompression
bombs are named in one line, and the sizes in TransferSettings have upper bounds that the CLI
checks before any work.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cs231n_style as cs
from cs231n_style.images import MAX_PIXELS, MAX_SIDE

ROOT = Path(__file__).resolve().parents[1]


def wide_png(path: Path) -> Path:
    Image.fromarray(np.full((9600, 10, 3), 200, np.uint8)).save(path)  # 10 px wide, 9600 px high
    return path


def test_a_strip_that_would_grow_huge_is_refused_before_resizing(tmp_path):
    path = wide_png(tmp_path / "my.png")
    assert path.stat().st_size < 20_000
    with pytest.raises(ValueError) as error:
        cs.preprocess(path, 192)
    message = str(error.value)
    assert message.startswith("'my.png' is 10 x 9,600 px; after resizing to size 192 (192 x 184,320 px)")
    assert f"long side would be 184,320 px (limit {MAX_SIDE:,})" in message
    assert message.endswith("crop it or pass a smaller size.") and "\n" not in message
    with pytest.raises(ValueError, match="crop it or pass a size"):
        cs.preprocess(np.zeros((9600, 10, 3), np.uint8), None)
    assert cs.preprocess(path, 4).shape == (1, 3, 3840, 4)  # small enough: 4 x 3840 px


def test_too_many_pixels_is_refused_even_within_the_long_side():
    side = int(np.sqrt(MAX_PIXELS)) + 64
    with pytest.raises(ValueError, match=rf"would have [\d,]+ pixels \(limit {MAX_PIXELS:,}\)"):
        cs.preprocess(np.zeros((100, 100, 3), np.uint8), side)
    assert cs.preprocess(np.zeros((100, 200, 3), np.uint8), 64).shape == (1, 3, 64, 128)


def test_a_decompression_bomb_is_named_in_one_line(tmp_path, monkeypatch):
    """Pillow's limit for untrusted images, lowered so that the test's images are small: over it
    (Pillow only warns) and over twice it (Pillow raises DecompressionBombError in Image.open)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    Image.new("RGB", (150, 100)).save(tmp_path / "bomb.png")  # 15,000 px: over the limit
    Image.new("RGB", (300, 300)).save(tmp_path / "huge.png")  # 90,000 px: over twice the limit
    with pytest.raises(ValueError) as error:
        cs.load_image(tmp_path / "bomb.png")
    assert str(error.value).startswith("'bomb.png' is 150 x 100 px") and "decompression bomb" in str(error.value)
    with pytest.raises(ValueError) as error:
        cs.load_image(tmp_path / "huge.png")
    assert str(error.value).startswith("'huge.png' is too large to be opened safely (a decompression bomb?)")
    assert "\n" not in str(error.value)
    with pytest.warns(Image.DecompressionBombWarning):
        lazy = Image.open(tmp_path / "bomb.png")  # an opened, not yet decoded image
    with lazy, pytest.raises(ValueError, match="decompression bomb"):
        cs.load_image(lazy)


@pytest.mark.parametrize("name", ["image_size", "style_size"])
def test_settings_sizes_have_an_upper_bound(name):
    assert getattr(cs.TransferSettings(**{name: 2048}), name) == 2048
    with pytest.raises(ValueError, match=rf"{name} must be a whole number of pixels >= 32 and <= 2048, not 10000"):
        cs.TransferSettings(**{name: 10000})
    assert "(32-2048)" in next(f for f in cs.TransferSettings.__dataclass_fields__.values()
                               if f.name == name).metadata["help"]


def _cli(args: list[str], tmp_path: Path, **env) -> tuple[subprocess.CompletedProcess, int]:
    """Run the CLI in a child of a small wrapper; return it and the CLI's peak RSS in bytes
    (``RUSAGE_CHILDREN`` of the wrapper: that one child only)."""
    wrapper = ("import resource, subprocess, sys\n"
               "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "sys.stdout.write(done.stdout)\nsys.stderr.write(done.stderr)\n"
               "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
               "sys.exit(done.returncode)\n")
    done = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "cs231n_style", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CS231N_STYLE_DEVICE": "cpu", "OMP_NUM_THREADS": "1", **env})
    peak_kb = int(done.stdout.rsplit("PEAK_KB", 1)[1].split()[0])
    return done, peak_kb * 1024


def test_the_cli_refuses_the_wide_png_with_bounded_memory(tmp_path):
    wide_png(tmp_path / "my.png")
    done, peak = _cli(["--content", "my.png", "--style", "swirls", "--num-steps", "1", "--functions",
                       str(ROOT / "solutions"), "--output", str(tmp_path / "out.png")], tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 'my.png' is 10 x 9,600 px") and "crop it" in lines[0]
    assert peak < 1.5e9, f"the CLI peaked at {peak / 1e9:.2f} GB"
    print(f"\nthe CLI refused the 10 x 9600 px PNG with a peak RSS of {peak / 1e6:.0f} MB")
    assert not (tmp_path / "out.png").exists()


def test_the_cli_refuses_a_huge_image_size_before_any_work(tmp_path):
    """The settings are checked before the functions, the device and the weights are touched:
    with weights that do not exist, the error is still about the size."""
    done, peak = _cli(["--image-size", "10000", "--functions", str(ROOT / "solutions"),
                       "--output", str(tmp_path / "out.png")], tmp_path,
                      CS231N_STYLE_WEIGHTS=str(tmp_path / "no-such-weights.pth"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: Invalid style transfer settings: image_size must be a whole number of pixels >= 32 and <= 2048, "
        "not 10000."]
    assert peak < 1.5e9
