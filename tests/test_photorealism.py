"""The Matting Laplacian (Levin et al., PAMI 2008, Eq. 12) against a float64 NumPy computation written
straight from the paper, window by window; its known properties; and check_photorealism_loss's verdicts
on real wrong implementations of notebook 06's photorealism_loss (Luan et al., CVPR 2017, Sec. 3.1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cs231n_style import photorealism
from cs231n_style.photorealism import DenseLaplacianError, MattingLaplacian, check_photorealism_loss, matting_laplacian


def paper_laplacian(image: np.ndarray, eps: float, window: int = 3) -> np.ndarray:
    """Eq. 12 of Levin et al. as printed, dense, one window at a time: for every window w_k wholly inside
    the image and every pair (i, j) of its pixels, add delta_ij - (1 + (I_i - mu_k)^T (Sigma_k +
    eps/|w_k| E_3)^-1 (I_j - mu_k)) / |w_k|. ``image`` is (H, W, 3) float64; pixels are numbered row by row."""
    height, width, _ = image.shape
    n, r = window * window, window // 2
    colours = image.reshape(-1, 3)
    laplacian = np.zeros((height * width, height * width))
    for y in range(r, height - r):
        for x in range(r, width - r):
            members = [(y + dy) * width + (x + dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
            window_colours = colours[members]
            mean = window_colours.mean(axis=0)
            covariance = (window_colours - mean).T @ (window_colours - mean) / n
            inverse = np.linalg.inv(covariance + eps / n * np.eye(3))
            for a, i in enumerate(members):
                for b, j in enumerate(members):
                    laplacian[i, j] += (a == b) - (1 + (colours[i] - mean) @ inverse @ (colours[j] - mean)) / n
    return laplacian


def _tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) NumPy pixels -> (1, 3, H, W) float64 tensor."""
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def _dense(laplacian: MattingLaplacian) -> np.ndarray:
    """The test's own way to see every entry: the CSR arrays written into a NumPy matrix."""
    crow, col, values = (t.numpy() for t in (laplacian.crow_indices(), laplacian.col_indices(), laplacian.values()))
    dense = np.zeros(tuple(laplacian.shape))
    rows = np.repeat(np.arange(len(crow) - 1), np.diff(crow))
    dense[rows, col] = values
    return dense


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo-like (H, W, 3) image in [0, 1]: a smooth colour gradient plus noise (no flat window)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, height * width).reshape(height, width, 1) * np.array([0.8, 0.4, 0.1])
    return 0.6 * ramp + 0.4 * rng.random((height, width, 3))


# --- against the paper ---------------------------------------------------------------------------

@pytest.mark.parametrize("height, width, eps, window", [(5, 6, 1e-7, 3), (7, 7, 1e-7, 3), (6, 5, 1e-2, 3),
                                                        (3, 3, 1e-7, 3), (6, 8, 1e-4, 5)])
def test_matches_the_papers_formula_window_by_window(height, width, eps, window):
    image = _photo(height, width, seed=height * width)
    laplacian = matting_laplacian(_tensor(image), eps=eps, window=window, dtype=torch.float64)
    expected = paper_laplacian(image, eps, window)
    assert isinstance(laplacian, MattingLaplacian) and laplacian.layout == torch.sparse_csr
    assert laplacian.shape == (height * width, height * width) and laplacian.dtype == torch.float64
    np.testing.assert_allclose(_dense(laplacian), expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    assert laplacian.values().numel() == np.count_nonzero(expected)  # stores exactly the entries a window makes


def test_a_real_photo_with_flat_and_grey_windows_matches_too():
    """The coffee photo's 8-bit colours (repeated values, near-singular covariances): eps = 1e-7 as Luan et al."""
    from PIL import Image

    from cs231n_style.images import sample_image

    image = np.asarray(Image.open(sample_image("coffee")).convert("RGB").resize((9, 7)), np.float64) / 255
    image[:4, :4] = image[0, 0]  # a flat corner: Sigma_k = 0, only eps keeps it invertible
    laplacian = matting_laplacian(_tensor(image), dtype=torch.float64)
    expected = paper_laplacian(image, 1e-7)
    np.testing.assert_allclose(_dense(laplacian), expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_float32_is_the_float64_laplacian_rounded():
    image = _tensor(_photo(6, 7))
    single, double = matting_laplacian(image.float()), matting_laplacian(image, dtype=torch.float64)
    assert single.dtype == torch.float32
    np.testing.assert_allclose(_dense(single), _dense(double), rtol=1e-6, atol=1e-6)


# --- the closed form's known properties ----------------------------------------------------------

@pytest.fixture(scope="module")
def photo_and_laplacian():
    image = _photo(8, 9, seed=3)
    return image, _dense(matting_laplacian(_tensor(image), eps=1e-5, dtype=torch.float64))


def test_symmetric_positive_semidefinite_rows_summing_to_zero(photo_and_laplacian):
    _, laplacian = photo_and_laplacian
    scale = np.abs(laplacian).max()
    np.testing.assert_allclose(laplacian, laplacian.T, rtol=0, atol=1e-13 * scale)
    eigenvalues = np.linalg.eigvalsh(laplacian)
    assert eigenvalues.min() >= -1e-10 * scale and eigenvalues.max() > 1.0
    np.testing.assert_allclose(laplacian.sum(axis=1), 0, atol=1e-12 * scale)


def test_a_constant_image_costs_nothing(photo_and_laplacian):
    _, laplacian = photo_and_laplacian
    constant = np.full(laplacian.shape[0], 0.37)
    np.testing.assert_allclose(laplacian @ constant, 0, atol=1e-12)


def test_an_affine_recolouring_of_the_photo_is_in_the_null_space():
    """alpha = a^T I + b: exactly in the null space for eps = 0 (Levin et al., Theorem 2); for eps > 0 its
    cost is at most eps * |a|^2 per window (a_k = a fits every window with no error)."""
    image = _photo(7, 8, seed=5)
    a, b = np.array([0.7, -1.3, 0.4]), 0.25
    alpha = image.reshape(-1, 3) @ a + b
    exact = _dense(matting_laplacian(_tensor(image), eps=0.0, dtype=torch.float64))
    np.testing.assert_allclose(exact @ alpha, 0, atol=1e-9)
    eps, windows = 1e-6, (7 - 2) * (8 - 2)
    regularized = _dense(matting_laplacian(_tensor(image), eps=eps, dtype=torch.float64))
    cost = alpha @ regularized @ alpha
    assert 0 <= cost <= eps * (a @ a) * windows
    texture = np.random.default_rng(1).random(alpha.shape)  # what a painting adds: not affine in the photo
    assert texture @ regularized @ texture > 1e3 * cost


# --- the tensor: products, gradients, never dense ----------------------------------------------

def test_products_and_their_gradients_use_the_symmetric_laplacian():
    image = _photo(5, 7, seed=2)
    laplacian = matting_laplacian(_tensor(image), dtype=torch.float64)
    expected = paper_laplacian(image, 1e-7)
    v = torch.rand(35, 3, dtype=torch.float64, requires_grad=True)
    products = {"@": lambda: laplacian @ v, "sparse.mm": lambda: torch.sparse.mm(laplacian, v),
                "mm": lambda: torch.mm(laplacian, v), ".mm": lambda: laplacian.mm(v),
                "matmul": lambda: torch.matmul(laplacian, v), "v.T @": lambda: (v.T @ laplacian).T,
                "vector": lambda: torch.stack([laplacian @ v[:, c] for c in range(3)], dim=1)}
    for name, product in products.items():
        out = product()
        assert type(out) is torch.Tensor, name
        np.testing.assert_allclose(out.detach().numpy(), expected @ v.detach().numpy(), atol=1e-12, err_msg=name)
        (grad,) = torch.autograd.grad((v * out).sum(), v)
        np.testing.assert_allclose(grad.numpy(), 2 * expected @ v.detach().numpy(), atol=1e-12, err_msg=name)


def test_it_refuses_to_become_dense_and_stays_itself_when_moved():
    laplacian = matting_laplacian(_tensor(_photo(4, 5)))
    with pytest.raises(DenseLaplacianError, match="must stay sparse: as a dense matrix it would hold 20 x 20"):
        laplacian.to_dense()
    with pytest.raises(DenseLaplacianError):
        laplacian.double().to_sparse_coo().to_dense()
    assert type(laplacian.double()) is MattingLaplacian and laplacian.double().dtype == torch.float64
    assert type(laplacian.to("cpu")) is MattingLaplacian and type(laplacian.values()) is torch.Tensor
    with pytest.raises(ValueError, match=r"is torch.float32 on cpu, the other factor torch.float64"):
        laplacian @ torch.rand(20, 3, dtype=torch.float64)


# --- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("image, kwargs, error, match", [
    (np.zeros((5, 5, 3)), {}, TypeError, "must be a torch tensor"),
    (torch.rand(5, 6, 3), {}, ValueError, "looks channels-last"),
    (torch.rand(2, 3, 5, 6), {}, ValueError, r"\(1, 3, H, W\) or \(3, H, W\)"),
    (torch.rand(1, 3, 5, 6) * 4 - 2, {}, ValueError, "pixels in \\[0, 1\\].*to_pixels"),
    (torch.full((1, 3, 5, 6), float("nan")), {}, ValueError, "contains NaN values"),
    (torch.rand(1, 3, 2, 6), {}, ValueError, "at least window = 3 pixels"),
    (torch.rand(1, 3, 5, 6), {"eps": -1.0}, ValueError, "eps must be a finite number >= 0"),
    (torch.rand(1, 3, 5, 6), {"eps": float("inf")}, ValueError, "eps must be"),
    (torch.rand(1, 3, 5, 6), {"window": 4}, ValueError, "window must be an odd integer >= 3"),
    (torch.rand(1, 3, 5, 6), {"dtype": torch.int64}, ValueError, "dtype must be torch.float32 or torch.float64"),
    (torch.full((1, 3, 5, 6), 0.5), {"eps": 0.0}, ValueError, "with eps = 0 a window's colour covariance is singular"),
])
def test_bad_input_is_refused_with_what_to_do(image, kwargs, error, match):
    with pytest.raises(error, match=match):
        matting_laplacian(image, **kwargs)


def test_too_big_an_image_is_refused_before_any_work(monkeypatch):
    monkeypatch.setattr(photorealism, "MAX_LAPLACIAN_PIXELS", 100)
    with pytest.raises(ValueError, match="11 x 10 = 110 px: the Matting Laplacian of more than 100 px"):
        matting_laplacian(torch.rand(1, 3, 11, 10))


# --- check_photorealism_loss: real wrong implementations, each named ------------------------------

def right(img, laplacian, weight):
    channels = img.reshape(3, -1).T                           # (H*W, 3), row by row
    return weight * (channels * (laplacian @ channels)).sum()


def right_per_channel(img, laplacian, weight):
    loss = 0.0
    for c in range(3):
        v = img[0, c].reshape(-1, 1)
        loss = loss + (v.T @ torch.sparse.mm(laplacian, v)).squeeze()
    return weight * loss


def one_channel(img, laplacian, weight):
    v = img[0, 0].reshape(-1, 1)
    return weight * (v * (laplacian @ v)).sum()


def sum_of_m_times_v(img, laplacian, weight):
    return weight * (laplacian @ img.reshape(3, -1).T).sum()


def v_transpose_v(img, laplacian, weight):
    channels = img.reshape(3, -1)
    return weight * (channels @ channels.T).trace()


def all_channel_pairs(img, laplacian, weight):
    channels = img.reshape(3, -1).T
    return weight * (channels.T @ (laplacian @ channels)).sum()


def dense(img, laplacian, weight):
    channels = img.reshape(3, -1).T
    return weight * (channels * (laplacian.to_dense() @ channels)).sum()


def one_factor_detached(img, laplacian, weight):
    channels = img.reshape(3, -1).T
    return weight * (channels.detach() * (laplacian @ channels)).sum()


def all_detached(img, laplacian, weight):
    channels = img.detach().reshape(3, -1).T
    return weight * (channels * (laplacian @ channels)).sum()


def weight_missing(img, laplacian, weight):
    channels = img.reshape(3, -1).T
    return (channels * (laplacian @ channels)).sum()


def weight_twice(img, laplacian, weight):
    channels = img.reshape(3, -1).T
    return weight * weight * (channels * (laplacian @ channels)).sum()


def column_by_column(img, laplacian, weight):
    channels = img[0].transpose(1, 2).reshape(3, -1).T
    return weight * (channels * (laplacian @ channels)).sum()


def three_by_three(img, laplacian, weight):
    channels = img.reshape(3, -1).T
    return weight * channels.T @ (laplacian @ channels)


def wrong_orientation(img, laplacian, weight):
    channels = img.reshape(3, -1)
    return weight * (channels * (laplacian @ channels)).sum()


def stub(img, laplacian, weight):
    raise NotImplementedError("not implemented yet")


@pytest.mark.parametrize("fn", [right, right_per_channel])
def test_correct_implementations_pass(fn, capsys):
    result = check_photorealism_loss(fn)
    assert result.passed, result.message
    assert capsys.readouterr().out.startswith("photorealism_loss: PASS - matches the reference values in float64")


@pytest.mark.parametrize("fn, status, named", [
    (one_channel, "fail", "counts one colour channel only"),
    (sum_of_m_times_v, "fail", "the result is 0 (up to rounding): that is what sum(M @ V_c) gives"),
    (v_transpose_v, "fail", "the Matting Laplacian is not used"),
    (all_channel_pairs, "fail", "over all nine pairs of channels"),
    (dense, "fail", "it made the Laplacian dense (.to_dense()). The Matting Laplacian must stay sparse"),
    (one_factor_detached, "fail", "the gradient is half of what it should be"),
    (all_detached, "fail", "no gradient flows back"),
    (weight_missing, "fail", "off by exactly the weight"),
    (weight_twice, "fail", "the weight times too large: multiply by the weight once"),
    (column_by_column, "fail", "numbered column by column"),
    (three_by_three, "fail", "it returned shape (3, 3)"),
    (wrong_orientation, "error", "V = img.reshape(3, H*W).T has shape (H*W, 3)"),
    (stub, "not implemented", "NOT IMPLEMENTED YET"),
])
def test_each_mistake_is_named(fn, status, named, capsys):
    result = check_photorealism_loss(fn)
    assert (result.status, result.passed) == (status, False)
    assert named in result.message and result.message.startswith("photorealism_loss: ")
    assert capsys.readouterr().out.strip() == result.message


def test_the_dense_verdict_points_at_the_students_line():
    message = check_photorealism_loss(dense).message
    assert "in your code (dense), line" in message and "laplacian.to_dense()" in message
