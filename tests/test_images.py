"""Tests of cs231n_style.images (loading, pre/deprocessing, saving, showing) and cs231n_style.plots.

Reference values are computed here independently (float64 NumPy), never by the code under test.
"""

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from cs231n_style.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SAMPLE_IMAGES,
    deprocess,
    load_image,
    preprocess,
    sample_image,
    save_image,
    show_images,
)
from cs231n_style.plots import plot_loss_history, show_feature_maps

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def pixels(image):
    """An RGB PIL image's pixels as an int array (H, W, 3)."""
    assert image.mode == "RGB"
    return np.asarray(image).astype(np.int64)


def random_rgb(height=12, width=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------- load_image


def test_constants_are_imagenet_statistics():
    np.testing.assert_array_equal(IMAGENET_MEAN, MEAN)
    np.testing.assert_array_equal(IMAGENET_STD, STD)


def test_samples_exist_and_sample_image_rejects_unknown_names():
    for name, path in SAMPLE_IMAGES.items():
        assert sample_image(name) == path and path.is_file()
    with pytest.raises(KeyError, match="astronaut"):
        sample_image("dog")


def test_load_from_path_sample_name_and_str_agree_with_pillow():
    path = SAMPLE_IMAGES["cat"]
    with Image.open(path) as opened:
        expected = np.asarray(opened.convert("RGB")).astype(np.int64)
    for source in (path, str(path), "cat"):
        image = load_image(source)
        assert isinstance(image, Image.Image) and image.mode == "RGB"
        np.testing.assert_array_equal(pixels(image), expected)


def test_load_from_file_path_round_trips_png(tmp_path):
    array = random_rgb()
    Image.fromarray(array).save(tmp_path / "x.png")
    np.testing.assert_array_equal(pixels(load_image(tmp_path / "x.png")), array)


def test_load_pil_image_returns_rgb_copy():
    source = Image.fromarray(random_rgb())
    image = load_image(source)
    np.testing.assert_array_equal(pixels(image), np.asarray(source))
    assert image is not source
    before = source.getpixel((0, 0))
    image.putpixel((0, 0), tuple(255 - v for v in before))
    assert source.getpixel((0, 0)) == before


def test_load_uint8_arrays():
    rgb = random_rgb()
    np.testing.assert_array_equal(pixels(load_image(rgb)), rgb)
    gray = rgb[..., 0]
    np.testing.assert_array_equal(pixels(load_image(gray)), np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(pixels(load_image(gray[..., None])), np.repeat(gray[..., None], 3, axis=2))


def test_load_rgba_array_composites_on_white():
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red 200 everywhere
    rgba[0, 0, 3] = 0  # fully transparent
    rgba[0, 1, 3] = 255  # opaque
    rgba[0, 2, 3] = 128  # half
    out = pixels(load_image(rgba))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [200, 0, 0]
    alpha = 128 / 255
    expected = np.array([200, 0, 0]) * alpha + 255 * (1 - alpha)
    assert np.abs(out[0, 2] - expected).max() <= 1


def test_load_uint16_array_scales_by_257():
    values = np.array([[0, 257, 25700], [65535, 200, 32896]], dtype=np.uint16)
    expected = np.round(values / 257.0)  # 0, 1, 100, 255, 1, 128
    out = pixels(load_image(values))
    np.testing.assert_array_equal(out, np.repeat(expected[..., None], 3, axis=2))
    rgb16 = np.stack([values, values // 2, 65535 - values], axis=2)
    np.testing.assert_array_equal(pixels(load_image(rgb16)), np.round(rgb16 / 257.0))


def test_load_float_arrays_in_unit_range():
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        array = rng.random((5, 7, 3)).astype(dtype)
        array[0, 0] = [0.0, 1.0, 0.5]
        expected = np.round(array.astype(np.float64) * 255)
        assert np.abs(pixels(load_image(array)) - expected).max() <= 0
    gray = rng.random((4, 4))
    np.testing.assert_array_equal(pixels(load_image(gray))[..., 1], np.round(gray * 255))


def test_load_bool_array_is_black_and_white():
    mask = np.array([[True, False]])
    assert pixels(load_image(mask)).tolist() == [[[255, 255, 255], [0, 0, 0]]]


# ------------------------------------------------------------------------------------- Pillow modes


def test_mode_l():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = pixels(load_image(Image.fromarray(gray)))
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))


def test_mode_p_uses_the_palette_and_its_transparency():
    image = Image.new("P", (3, 1))
    palette = [0] * 768
    palette[3:6] = [10, 20, 30]
    palette[6:9] = [250, 0, 5]
    image.putpalette(palette)
    image.putdata([1, 2, 0])
    assert pixels(load_image(image))[0].tolist() == [[10, 20, 30], [250, 0, 5], [0, 0, 0]]
    image.info["transparency"] = 0  # index 0 transparent -> composited on white
    assert pixels(load_image(image))[0].tolist() == [[10, 20, 30], [250, 0, 5], [255, 255, 255]]


def test_mode_rgba_transparent_pixel_becomes_white():
    image = Image.new("RGBA", (2, 1), (0, 0, 255, 255))
    image.putpixel((1, 0), (0, 0, 0, 0))  # transparent black
    assert pixels(load_image(image))[0].tolist() == [[0, 0, 255], [255, 255, 255]]


def test_mode_la_transparent_pixel_becomes_white():
    image = Image.new("LA", (2, 1), (40, 255))
    image.putpixel((1, 0), (0, 0))
    assert pixels(load_image(image))[0].tolist() == [[40, 40, 40], [255, 255, 255]]


def test_mode_cmyk():
    image = Image.new("CMYK", (3, 1))
    image.putdata([(0, 255, 255, 0), (0, 0, 0, 0), (0, 0, 0, 255)])  # red, white, black
    assert pixels(load_image(image))[0].tolist() == [[255, 0, 0], [255, 255, 255], [0, 0, 0]]


def test_mode_i16_is_scaled_from_16_bits_even_when_dark(tmp_path):
    bright = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    dark = np.array([[0, 100, 200, 255]], dtype=np.uint16)  # all nearly black in 16 bits
    for values in (bright, dark):
        image = Image.fromarray(values)
        assert image.mode == "I;16"
        expected = np.round(values / 257.0)
        np.testing.assert_array_equal(pixels(load_image(image))[..., 0], expected)
        image.save(tmp_path / "16bit.png")  # and through a 16-bit PNG file
        np.testing.assert_array_equal(pixels(load_image(tmp_path / "16bit.png"))[..., 2], expected)
    assert pixels(load_image(Image.fromarray(dark))).max() <= 1


def test_mode_i_guesses_8_or_16_bits():
    wide = Image.fromarray(np.array([[0, 1000, 65535]], dtype=np.int32))
    assert wide.mode == "I"
    np.testing.assert_array_equal(pixels(load_image(wide))[0, :, 0], np.round(np.array([0, 1000, 65535]) / 257))
    narrow = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32))
    assert pixels(load_image(narrow))[0, :, 0].tolist() == [0, 100, 255]


def test_mode_f_unit_range_and_8_bit_range():
    unit = Image.fromarray(np.array([[0.0, 0.25, 1.0]], dtype=np.float32))
    assert unit.mode == "F"
    assert pixels(load_image(unit))[0, :, 0].tolist() == [0, round(0.25 * 255), 255]
    big = Image.fromarray(np.array([[0.0, 100.0, 300.0]], dtype=np.float32))
    assert pixels(load_image(big))[0, :, 0].tolist() == [0, 100, 255]


# ---------------------------------------------------------------------------------- EXIF orientation


def _exif_jpeg(path, orientation):
    """A 48 x 32 (W x H) JPEG whose top-left quadrant is red and the rest blue."""
    array = np.zeros((32, 48, 3), dtype=np.uint8)
    array[...] = (0, 0, 255)
    array[:16, :24] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, "JPEG", quality=95, exif=exif.tobytes())
    return array


@pytest.mark.parametrize("as_pil", [False, True])
def test_exif_orientation_6_rotates_90_clockwise(tmp_path, as_pil):
    stored = _exif_jpeg(tmp_path / "phone.jpg", 6)
    if as_pil:
        with Image.open(tmp_path / "phone.jpg") as opened:
            image = load_image(opened)
    else:
        image = load_image(tmp_path / "phone.jpg")
    assert image.size == (32, 48)  # (W, H): rotated
    expected = np.rot90(stored, k=-1)  # clockwise: the stored top-left goes to the top-right
    assert expected.shape == (48, 32, 3)
    assert np.abs(pixels(image) - expected).mean() < 8  # JPEG noise only
    assert pixels(image)[8, 24].tolist()[0] > 200 and pixels(image)[8, 8].tolist()[2] > 200


def test_exif_orientation_1_changes_nothing(tmp_path):
    stored = _exif_jpeg(tmp_path / "upright.jpg", 1)
    image = load_image(tmp_path / "upright.jpg")
    assert image.size == (48, 32)
    assert np.abs(pixels(image) - stored).mean() < 8


# ------------------------------------------------------------------------------------ load_image errors


def test_missing_file_mentions_samples(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_image(tmp_path / "nope.png")
    assert "nope.png" in str(info.value) and "cat" in str(info.value)
    with pytest.raises(FileNotFoundError):
        load_image("no-such-sample")
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path)  # a folder is not an image file


def test_non_image_file_raises_value_error(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a PNG")
    with pytest.raises(ValueError, match="could not be read as an image"):
        load_image(tmp_path / "notes.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError):
        load_image(tmp_path / "empty.jpg")


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((3, 8, 8), dtype=np.uint8), "channels-first"),
        (np.zeros((4, 8, 8), dtype=np.uint8), "channels-first"),
        (np.zeros((8, 8, 2), dtype=np.uint8), "shape"),
        (np.zeros((1, 8, 8, 3), dtype=np.uint8), "shape"),
        (np.zeros(8, dtype=np.uint8), "shape"),
        (np.full((2, 2, 3), 1.5), r"\[0, 1\]"),
        (np.full((2, 2, 3), -0.1, dtype=np.float32), r"\[0, 1\]"),
        (np.full((2, 2, 3), np.inf), r"\[0, 1\]"),
        (np.full((2, 2, 3), 255.0), "255"),
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.zeros((2, 2, 3), dtype=np.int64), "dtype"),
    ],
)
def test_bad_arrays_raise_value_error(array, match):
    with pytest.raises(ValueError, match=match):
        load_image(array)


@pytest.mark.parametrize("source", [[[0, 0], [0, 0]], 3, None, b"cat.jpg", torch.zeros(3, 4, 4)])
def test_wrong_type_raises_type_error(source):
    with pytest.raises(TypeError, match="load_image takes"):
        load_image(source)


# ------------------------------------------------------------------------------------------ preprocess


def reference_normalize(array):
    """(pixel / 255 - mean) / std in float64, as (1, 3, H, W)."""
    return ((array.astype(np.float64) / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None]


def test_preprocess_without_resize_matches_numpy_normalization():
    array = random_rgb(9, 14)
    array[0, 0], array[0, 1] = (0, 0, 0), (255, 255, 255)
    x = preprocess(array, size=None)
    assert type(x) is torch.Tensor and x.dtype == torch.float32 and x.device.type == "cpu"
    assert x.shape == (1, 3, 9, 14)
    np.testing.assert_allclose(x.numpy(), reference_normalize(array), rtol=0, atol=2e-6)


def test_preprocess_sample_without_resize_matches_numpy_normalization():
    with Image.open(SAMPLE_IMAGES["coffee"]) as opened:
        array = np.asarray(opened.convert("RGB"))
    np.testing.assert_allclose(preprocess("coffee", None).numpy(), reference_normalize(array), atol=2e-6)


@pytest.mark.parametrize("size", [64, 37, np.int64(50)])
def test_preprocess_resizes_shorter_side_and_keeps_aspect(size):
    image = load_image("cat")  # landscape
    width, height = image.size
    assert width > height
    x = preprocess(image, size)
    assert x.shape[:3] == (1, 3, size)
    assert abs(x.shape[3] - width * size / height) <= 1
    portrait = image.transpose(Image.Transpose.TRANSPOSE)
    y = preprocess(portrait, size)
    assert y.shape[:2] == (1, 3) and y.shape[3] == size
    assert abs(y.shape[2] - width * size / height) <= 1


def test_preprocess_resize_keeps_colours():
    array = np.asarray(load_image("cat")).astype(np.float64)
    small = np.asarray(deprocess(preprocess("cat", 48))).astype(np.float64)
    np.testing.assert_allclose(small.mean(axis=(0, 1)), array.mean(axis=(0, 1)), atol=2.0)


def test_preprocess_can_upscale():
    assert preprocess(random_rgb(8, 10), 16).shape == (1, 3, 16, 20)


@pytest.mark.parametrize("size", [0, -3, 1.5, 64.0, "64", True])
def test_preprocess_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="size"):
        preprocess(random_rgb(), size)


# ------------------------------------------------------------------------------------------- deprocess


def test_round_trip_gives_back_the_pixels_exactly():
    array = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 16, 3)  # every 8-bit value
    array = np.concatenate([array, random_rgb(16, 16, seed=3)], axis=1)
    out = deprocess(preprocess(array, size=None))
    assert out.mode == "RGB" and out.size == (32, 16)
    np.testing.assert_array_equal(pixels(out), array)
    cat = pixels(load_image("cat"))
    np.testing.assert_array_equal(pixels(deprocess(preprocess("cat", None))), cat)


def test_deprocess_rounds_to_nearest_and_clamps():
    k = np.arange(0, 255, 5, dtype=np.float64)
    wanted = np.stack([k + 0.3, k + 0.7, k + 0.49], axis=0)  # 8-bit values, per channel
    targets = np.stack([k, k + 1, k], axis=0)
    normalized = (wanted / 255.0 - MEAN[:, None]) / STD[:, None]  # (3, len(k))
    tensor = torch.tensor(normalized[:, None, :], dtype=torch.float64)  # (3, 1, W)
    out = pixels(deprocess(tensor))[0].T  # (3, W)
    np.testing.assert_array_equal(out, targets)
    extreme = torch.tensor([[[100.0, -100.0]]]).expand(3, 1, 2)
    assert pixels(deprocess(extreme))[0].tolist() == [[255, 255, 255], [0, 0, 0]]


def test_deprocess_accepts_batch_of_one_any_float_dtype_and_grad():
    x = preprocess(random_rgb(6, 5), None)
    reference = pixels(deprocess(x))
    for tensor in (x[0], x.double(), x.clone().requires_grad_(True)):
        np.testing.assert_array_equal(pixels(deprocess(tensor)), reference)
    assert np.abs(pixels(deprocess(x.half())) - reference).max() <= 2


@pytest.mark.parametrize(
    "tensor",
    [torch.zeros(2, 3, 4, 4), torch.zeros(1, 1, 4, 4), torch.zeros(4, 4, 3), torch.zeros(4, 4),
     torch.zeros(1, 1, 3, 4, 4), np.zeros((3, 4, 4), dtype=np.float32)],
)
def test_deprocess_rejects_wrong_shapes(tensor):
    with pytest.raises(ValueError, match="deprocess"):
        deprocess(tensor)


# ------------------------------------------------------------------------------------------ save_image


def test_save_never_overwrites(tmp_path):
    first, second, third = (Image.fromarray(random_rgb(seed=s)) for s in (1, 2, 3))
    path = tmp_path / "result.png"
    assert save_image(first, path) == path
    original_bytes = path.read_bytes()
    assert save_image(second, path) == tmp_path / "result-1.png"
    assert save_image(third, path) == tmp_path / "result-2.png"
    assert path.read_bytes() == original_bytes
    for name, image in (("result.png", first), ("result-1.png", second), ("result-2.png", third)):
        np.testing.assert_array_equal(pixels(load_image(tmp_path / name)), np.asarray(image))


def test_save_overwrite_replaces(tmp_path):
    path = tmp_path / "result.png"
    save_image(Image.fromarray(random_rgb(seed=1)), path)
    new = Image.fromarray(random_rgb(seed=2))
    assert save_image(new, path, overwrite=True) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]
    np.testing.assert_array_equal(pixels(load_image(path)), np.asarray(new))


def test_save_tensor_creates_folders_and_picks_format_from_extension(tmp_path):
    array = random_rgb(10, 7)
    written = save_image(preprocess(array, None), tmp_path / "a" / "b" / "out.PNG")
    assert written == tmp_path / "a" / "b" / "out.PNG"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(pixels(load_image(written)), array)
    jpeg = save_image(Image.fromarray(array), tmp_path / "out.jpg")
    assert jpeg.read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.parametrize("name", ["out.txt", "out", "out.psd", "out.fli"])  # .psd/.fli: Pillow reads only
def test_save_bad_extension_raises_and_writes_nothing(tmp_path, name):
    with pytest.raises(ValueError, match="png"):
        save_image(Image.fromarray(random_rgb()), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_failure_leaves_no_file_and_keeps_existing_one(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (1, 2, 3, 4))
    with pytest.raises(OSError):
        save_image(rgba, tmp_path / "out.jpg")  # JPEG cannot hold alpha
    assert list(tmp_path.iterdir()) == []
    path = save_image(Image.fromarray(random_rgb()), tmp_path / "keep.jpg")
    before = path.read_bytes()
    with pytest.raises(OSError):
        save_image(rgba, path, overwrite=True)
    assert path.read_bytes() == before


def test_save_wrong_type_raises_type_error(tmp_path):
    with pytest.raises(TypeError):
        save_image(random_rgb(), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------------------------- figures


def test_show_images_one_panel_per_image_with_titles():
    images = [Image.fromarray(random_rgb(10, 20)), preprocess(random_rgb(10, 10), None), "dots"]
    fig = show_images(images, titles=["content", "tensor", "style"])
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["content", "tensor", "style"]
    assert [len(ax.get_images()) for ax in fig.axes] == [1, 1, 1]
    np.testing.assert_array_equal(np.asarray(fig.axes[0].get_images()[0].get_array()), random_rgb(10, 20))
    assert len(show_images(["cat"]).axes) == 1


def test_show_images_title_count_mismatch_and_empty_raise():
    with pytest.raises(ValueError, match="2 images but 1 titles"):
        show_images(["cat", "dots"], titles=["one"])
    with pytest.raises(ValueError):
        show_images([])


def test_show_feature_maps_grid():
    feats = [torch.rand(1, 8, 5, 5), torch.rand(1, 2, 3, 3), torch.rand(2, 16, 4, 4)]
    fig = show_feature_maps(feats, layers=[0, 1, 2], num_channels=4)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 12
    images_per_panel = [len(ax.get_images()) for ax in fig.axes]
    assert images_per_panel == [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]  # layer 1 has only 2 channels
    np.testing.assert_allclose(np.asarray(fig.axes[8].get_images()[0].get_array()), feats[2][0, 0].numpy())
    assert "layer 2" in fig.axes[8].get_title(loc="left")


@pytest.mark.parametrize("layers, num_channels, error", [([3], 2, IndexError), ([-1], 2, IndexError),
                                                         ([], 2, ValueError), ([0], 0, ValueError)])
def test_show_feature_maps_errors(layers, num_channels, error):
    with pytest.raises(error):
        show_feature_maps([torch.rand(1, 2, 3, 3)] * 3, layers=layers, num_channels=num_channels)


def test_plot_loss_history_lines_skip_zero_terms():
    history = {"content": [3.0, 2.0, 1.0], "style": [30.0, 10.0, 5.0], "tv": [0.0, 0.0, 0.0],
               "total": [33.0, 12.0, 6.0]}
    ax = plot_loss_history(history, title="run 1")
    assert isinstance(ax, matplotlib.axes.Axes)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(lines) == ["content", "style", "total"]
    np.testing.assert_array_equal(lines["style"].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines["style"].get_ydata(), [30.0, 10.0, 5.0])
    assert ax.get_yscale() == "log" and ax.get_title() == "run 1"
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["content", "style", "total"]


def test_plot_loss_history_draws_on_given_axes_and_all_zero_history():
    _fig, (left, right) = plt.subplots(1, 2)
    assert plot_loss_history({"total": [1.0, 0.5]}, ax=right) is right
    assert len(right.get_lines()) == 1 and len(left.get_lines()) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "No artists with labels" warning
        ax = plot_loss_history({"content": [0.0, 0.0]})
    assert ax.get_lines() == [] and ax.get_legend() is None


def test_show_images_accepts_png_bytes_via_pil():
    buffer = io.BytesIO()
    Image.fromarray(random_rgb()).save(buffer, format="PNG")
    buffer.seek(0)
    with Image.open(buffer) as opened:
        assert len(show_images([opened]).axes) == 1


def test_preprocess_returns_a_standard_nchw_tensor():
    """Students may call .view() on it (and L-BFGS does on gradients): NCHW-contiguous, not channels-last."""
    x = preprocess("cat", size=64)
    assert x.is_contiguous() and x.stride()[-1] == 1
