"""Masks for spatial control (cs231n_style.masks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cs231n_style.masks import check_masks, load_masks, resize_masks, split_masks, threshold_masks


def test_vertical_split_puts_region_0_on_the_left():
    masks = split_masks((4, 10), "vertical", at=0.3)
    assert masks.shape == (1, 2, 4, 10) and masks.dtype == torch.float32
    assert masks[0, 0, :, :3].eq(1).all() and masks[0, 0, :, 3:].eq(0).all()
    assert torch.equal(masks.sum(1), torch.ones(1, 4, 10))


def test_horizon_puts_the_sky_in_region_0():
    masks = split_masks((10, 4), "horizontal", at=0.6)
    assert masks[0, 0, :6].eq(1).all() and masks[0, 1, 6:].eq(1).all()


@pytest.mark.parametrize("direction, at, message", [("diagonal", 0.5, "direction"), ("vertical", 0.0, "at=0.0"),
                                                    ("horizontal", 1.0, "at=1.0")])
def test_bad_splits_are_named(direction, at, message):
    with pytest.raises(ValueError, match=message):
        split_masks((8, 8), direction, at)


def test_threshold_masks_split_a_photo_by_luminance():
    masks = threshold_masks("coffee", size=64, threshold=0.5)
    assert masks.shape[:2] == (1, 2) and min(masks.shape[2:]) == 64
    assert 0 < masks[0, 0].mean() < 1 and torch.equal(masks.sum(1), torch.ones(1, *masks.shape[2:]))
    with pytest.raises(ValueError, match="luminance lies in"):
        threshold_masks("coffee", size=64, threshold=1.5)


def test_a_black_and_white_file_of_another_size_becomes_masks(tmp_path):
    drawing = np.zeros((50, 100), np.uint8)
    drawing[:, 60:] = 255  # white on the right
    Image.fromarray(drawing).save(tmp_path / "mask.png")
    masks = load_masks(tmp_path / "mask.png", (20, 40))
    assert masks.shape == (1, 2, 20, 40)
    assert masks[0, 0, :, 25:].eq(1).all() and masks[0, 0, :, :23].eq(0).all()


def test_several_files_make_one_region_each(tmp_path):
    for name, columns in (("left.png", slice(0, 40)), ("right.png", slice(40, 100))):
        drawing = np.zeros((50, 100), np.uint8)
        drawing[:, columns] = 255
        Image.fromarray(drawing).save(tmp_path / name)
    masks = load_masks([tmp_path / "left.png", tmp_path / "right.png"], (10, 20))
    assert masks.shape == (1, 2, 10, 20)
    assert masks[0, 0, :, :7].eq(1).all() and masks[0, 0, :, 9:].eq(0).all()
    assert masks[0, 1, :, 9:].eq(1).all() and masks[0, 1, :, :7].eq(0).all()
    with pytest.raises(ValueError, match="empty list"):
        load_masks([], (10, 20))
    Image.new("L", (30, 30), 0).save(tmp_path / "black.png")
    with pytest.raises(ValueError, match=r"black.png.*region\(s\) \[1\] cover no pixel"):
        load_masks([tmp_path / "left.png", tmp_path / "black.png"], (10, 20))


def test_an_all_white_file_is_refused_naming_it(tmp_path):
    Image.new("L", (30, 30), 255).save(tmp_path / "white.png")
    with pytest.raises(ValueError, match=r"white.png.*region\(s\) \[1\] cover no pixel"):
        load_masks(tmp_path / "white.png", (16, 16))


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="could not be read as an image"):
        load_masks(tmp_path / "notes.png", (16, 16))


@pytest.mark.parametrize("masks, message", [
    (torch.ones(2, 8, 8), r"\(1, R, H, W\)"),
    (torch.full((1, 1, 8, 8), 2.0), r"\[0, 1\]"),
    (torch.full((1, 1, 8, 8), float("nan")), r"\[0, 1\]"),
])
def test_check_masks_names_what_is_wrong(masks, message):
    with pytest.raises(ValueError, match=message):
        check_masks(masks)


def test_check_masks_names_a_size_mismatch():
    with pytest.raises(ValueError, match=r"\(8, 8\) pixels .* content image is \(8, 9\)"):
        check_masks(torch.ones(1, 1, 8, 8), size=(8, 9))


def test_resized_masks_hold_the_covered_fraction_of_each_cell():
    masks = split_masks((8, 12), "vertical", at=0.5)  # left 6 columns
    small = [resize_masks(masks, size) for size in ((4, 6), torch.Size([3, 4]))]
    assert [m.shape for m in small] == [(1, 2, 4, 6), (1, 2, 3, 4)]
    assert all(m.dtype == torch.float32 for m in small)
    np.testing.assert_allclose(small[0][0, 0].numpy(), np.repeat([[1, 1, 1, 0, 0, 0]], 4, axis=0))
    # 12 columns into 4 cells of 3 columns each: the line at column 6 lies between cells 2 and 3
    np.testing.assert_allclose(small[1][0, 0, 0].numpy(), [1, 1, 0, 0], atol=1e-6)
    np.testing.assert_allclose((small[1][0, 0] + small[1][0, 1]).numpy(), np.ones((3, 4)), atol=1e-6)


def test_resizing_averages_a_soft_mask_over_each_cell():
    masks = torch.tensor(np.random.default_rng(0).uniform(0.1, 1.0, size=(1, 1, 6, 9)), dtype=torch.float32)
    expected = masks.numpy()[0, 0].reshape(2, 3, 3, 3).mean(axis=(1, 3))  # 3 x 3 cells, by hand
    np.testing.assert_allclose(resize_masks(masks, (2, 3))[0, 0].numpy(), expected, rtol=1e-6)
