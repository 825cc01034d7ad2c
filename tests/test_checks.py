"""The notebook checks: the stored reference values are right, correct code passes in float32 and
float64, and each kind of wrong code is rejected with a message naming the mistake.

Reference values are re-computed here in float64 NumPy, written independently of the solutions.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import cs231n_style as cs
from cs231n_style.diagnosis import MISTAKES, reference_values, relative_error, uses_python_loops

ROOT = Path(__file__).resolve().parents[1]
REF = reference_values()


# --- independent float64 NumPy formulas (Gatys et al. 2016, Eqs. 1, 3, 5; CS231n conventions) ---

def np_gram(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = np.einsum("nik,njk->nij", flat, flat)
    return gram / (c * h * w) if normalize else gram


def test_reference_content_loss_matches_numpy():
    w = float(REF["content_loss.content_weight"])
    diff = REF["content_loss.content_current"] - REF["content_loss.content_original"]
    assert np.isclose(REF["content_loss.expected"], w * np.sum(diff**2), rtol=1e-12)
    np.testing.assert_allclose(REF["content_loss.grad"], 2 * w * diff, rtol=1e-12)


def test_reference_gram_matrix_matches_numpy():
    features = REF["gram_matrix.features"]
    assert features.shape[0] > 1 and features.shape[2] != features.shape[3]  # batch > 1, non-square
    np.testing.assert_allclose(REF["gram_matrix.expected"], np_gram(features), rtol=1e-12)
    np.testing.assert_allclose(REF["gram_matrix.expected_unnormalized"], np_gram(features, False), rtol=1e-12)
    # d<G, R>/dF = (R + R^T) F / (C H W)
    n, c, h, w = features.shape
    upstream = REF["gram_matrix.grad_upstream"]
    grad = np.einsum("nij,njk->nik", upstream + upstream.transpose(0, 2, 1), features.reshape(n, c, -1))
    np.testing.assert_allclose(REF["gram_matrix.grad"], grad.reshape(features.shape) / (c * h * w), rtol=1e-10)


def test_reference_style_loss_matches_numpy():
    layers = [int(i) for i in REF["style_loss.style_layers"]]
    weights = REF["style_loss.style_weights"]
    total = 0.0
    for j, (layer, weight) in enumerate(zip(layers, weights, strict=True)):
        feats = REF[f"style_loss.feats.{layer}"]
        diff = np_gram(feats) - REF[f"style_loss.style_targets.{j}"]
        total += weight * np.sum(diff**2)
        _, c, h, w = feats.shape
        grad = 2 * weight * np.einsum("nij,njk->nik", diff + diff.transpose(0, 2, 1), feats.reshape(1, c, -1))
        np.testing.assert_allclose(REF[f"style_loss.grad.{layer}"], grad.reshape(feats.shape) / (c * h * w), rtol=1e-10)
    assert np.isclose(REF["style_loss.expected"], total, rtol=1e-12)


def test_reference_tv_loss_matches_numpy():
    img, w = REF["tv_loss.img"], float(REF["tv_loss.tv_weight"])
    assert img.shape[:2] == (1, 3) and img.shape[2] != img.shape[3]
    total = sum(np.sum((img[:, :, i + 1, :] - img[:, :, i, :]) ** 2) for i in range(img.shape[2] - 1))
    total += sum(np.sum((img[:, :, :, j + 1] - img[:, :, :, j]) ** 2) for j in range(img.shape[3] - 1))
    assert np.isclose(REF["tv_loss.expected"], w * total, rtol=1e-12)


def test_variants_are_distinguishable_from_the_answer():
    for key in REF:
        if ".variant." in key:
            prefix = key.split(".variant.")[0]
            expected = REF[f"{prefix}.expected"]
            if key.endswith("normalized_anyway"):
                expected = REF[f"{prefix}.expected_unnormalized"]
            assert relative_error(REF[key], expected) > 1e-3, key
            assert key.split(".variant.")[1] in MISTAKES


def test_stored_reference_file_has_not_drifted_from_the_solutions():
    spec = importlib.util.spec_from_file_location("make_reference_data", ROOT / "tools" / "make_reference_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = {**module.build_reference(*module.solution_functions()), **module.build_guided_reference()}
    assert module.differences(REF, fresh) == []


# --- correct implementations pass -----------------------------------------------------------------

def content_loss(w, current, original):
    return w * ((current - original) ** 2).sum()


def gram_matrix(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, -1)
    gram = torch.einsum("nik,njk->nij", flat, flat)
    return gram / (c * h * w) if normalize else gram


def style_loss(feats, layers, targets, weights):
    return sum(w * ((gram_matrix(feats[i]) - t) ** 2).sum() for i, t, w in zip(layers, targets, weights, strict=True))


def tv_loss(img, w):
    return w * (img.diff(dim=2).pow(2).sum() + img.diff(dim=3).pow(2).sum())


def test_correct_functions_pass(capsys):
    results = cs.check_all(content_loss, gram_matrix, style_loss, tv_loss)
    assert bool(results) is True and results.raise_if_failed() is results
    assert [result.name for result in results] == ["content_loss", "gram_matrix", "style_loss", "tv_loss"]
    out = capsys.readouterr().out
    assert out.count("PASS") == 4 and "float64 and float32" in out


def test_check_all_shows_nothing_but_the_verdicts_in_a_notebook(capsys):
    """A cell ending with cs.check_all(...) shows the printed verdicts and no stray True (issue #24)."""
    from IPython.core.formatters import DisplayFormatter

    results = cs.check_all(content_loss, gram_matrix, style_loss, tv_loss)
    assert hasattr(results, "_ipython_display_") and DisplayFormatter().format(results) == ({}, {})
    failing = cs.check_all(content_loss, gram_matrix, style_loss, lambda img, w: w * img.sum())
    assert not failing
    with pytest.raises(AssertionError, match="tv_loss: FAIL") as raised:
        failing.raise_if_failed()
    assert "gram_matrix" not in str(raised.value)  # only the failed checks' verdicts
    capsys.readouterr()


def test_result_is_truthy_only_on_pass(capsys):
    good = cs.check_content_loss(content_loss)
    bad = cs.check_content_loss(lambda w, a, b: ((a - b) ** 2).sum())
    assert bool(good) and good.status == "pass" and good.relative_error < 1e-4
    assert not bool(bad) and bad.status == "fail"


# --- wrong implementations are rejected with the right diagnosis ---------------------------------

def _check(check, fn, capsys):
    result = check(fn)
    printed = capsys.readouterr().out
    assert printed.strip() == result.message
    assert not result
    return result.message


@pytest.mark.parametrize("fn, words", [
    (lambda w, a, b: ((a - b) ** 2).sum(), "forget to multiply by the weight"),
    (lambda w, a, b: w * ((a - b) ** 2).mean(), "*mean*"),
    (lambda w, a, b: ((a - b) ** 2).mean(), "mean of the squared differences without the weight"),
    (lambda w, a, b: w * ((a - b) ** 2).sum().sqrt(), "not the norm"),
    (lambda w, a, b: 0.5 * w * ((a - b) ** 2).sum(), "factor 1/2"),
    (lambda w, a, b: (w * ((a - b) ** 2).sum()).detach(), "no gradient flows back"),
    (lambda w, a, b: (w * ((a - b) ** 2).sum()).item(), "returned a float"),
    (lambda w, a, b: (w * ((a - b) ** 2).sum()).numpy(force=True), "returned a ndarray"),
    (lambda w, a, b: w * ((a - b) ** 2).sum(dim=(1, 2, 3)), "returned shape (1,)"),
    (lambda w, a, b: w * ((a - b) ** 2).sum().float(), "don't hard-code a dtype"),
    (lambda w, a, b: w * ((a - b.sub_(1)) ** 2).sum(), "modified an input tensor in place"),
    (lambda w, a, b: w * ((a - b) ** 2).sum() + 1.0, "differ from the reference"),
    (lambda w, a, b: w * (a - b).abs().sum(), "square the differences"),
])
def test_content_loss_mistakes(fn, words, capsys):
    assert words in _check(cs.check_content_loss, fn, capsys)


def _gram_no_batch(features, normalize=True):
    _n, c, h, w = features.shape
    flat = features[0].reshape(c, -1)
    return flat @ flat.T / (c * h * w)


def _gram_channels_last_reshape(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, h * w, c)
    gram = flat.transpose(1, 2) @ flat
    return gram / (c * h * w) if normalize else gram


def _gram_view_without_batch(features, normalize=True):
    _n, c, h, w = features.shape
    flat = features.view(c, h * w)
    return flat @ flat.T / (c * h * w)


def _gram_batch_summed(features, normalize=True):
    n, c, h, w = features.shape
    gram = torch.einsum("nchw,ndhw->cd", features, features)  # sums over the images
    return (gram / (c * h * w) if normalize else gram).expand(n, c, c)


def _gram_batch_mixed(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = torch.einsum("nci,mdi->ncd", flat, flat)  # m instead of n on the right
    return gram / (c * h * w) if normalize else gram


def _gram_all_channels_together(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(1, n * c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def _gram_reshape_c_rest(features, normalize=True):
    _n, c, h, w = features.shape
    flat = features.reshape(c, -1)
    return flat @ flat.T / (c * h * w)


@pytest.mark.parametrize("fn, words", [
    (lambda f, normalize=True: gram_matrix(f, False), "factor C*H*W"),
    (lambda f, normalize=True: gram_matrix(f, False) / (2 * f.numel()), "divided by 2*N*C*H*W"),
    (_gram_batch_summed, "mixes the batch"),
    (_gram_batch_mixed, "mix different images of the batch"),
    (_gram_all_channels_together, "mixes the batch"),
    (_gram_reshape_c_rest, "mixes the N images"),
    (lambda f, normalize=True: torch.tensordot(f.flatten(2), f.flatten(2), dims=([2], [2])), "mixing the batch"),
    (lambda f, normalize=True: gram_matrix(f, False) / (f.shape[2] * f.shape[3]), "factor C:"),
    (lambda f, normalize=True: gram_matrix(f, False) / f.shape[1], "factor H*W"),
    (lambda f, normalize=True: gram_matrix(f) / f.shape[0], "factor N"),
    (lambda f, normalize=True: gram_matrix(f, True), "with normalize=False"),
    (_gram_no_batch, "keep the batch axis"),
    (_gram_channels_last_reshape, "Reshape to (N, C, H*W)"),
    (_gram_view_without_batch, "Keep the batch axis N"),
    (lambda f, normalize=True: f.reshape(f.shape[0], f.shape[1], -1).transpose(1, 2)
     @ f.reshape(f.shape[0], f.shape[1], -1), "F.T @ F"),
    (lambda f, normalize=True: gram_matrix(f.detach(), normalize), "no gradient flows back"),
    (lambda f, normalize=True: gram_matrix(f.div_(1.0) if False else f.relu_(), normalize), "in-place"),
])
def test_gram_matrix_mistakes(fn, words, capsys):
    assert words in _check(cs.check_gram_matrix, fn, capsys)


def _style_last_only(feats, layers, targets, weights):
    for i, t, w in zip(layers, targets, weights, strict=True):
        loss = w * ((gram_matrix(feats[i]) - t) ** 2).sum()
    return loss


def _style_first_only(feats, layers, targets, weights):
    for i, t, w in zip(layers, targets, weights, strict=True):
        return w * ((gram_matrix(feats[i]) - t) ** 2).sum()


@pytest.mark.parametrize("fn, words", [
    (lambda f, layers, t, w: style_loss(f, layers, t, [1.0] * len(w)), "without the style weights"),
    (_style_last_only, "only the last style layer"),
    (_style_first_only, "only the first style layer"),
    (lambda f, layers, t, w: sum(wi * ((gram_matrix(f[i]) - ti) ** 2).sum().sqrt()
                                 for i, ti, wi in zip(layers, t, w, strict=True)),
     "norm of the Gram difference"),
    (lambda f, layers, t, w: sum(wi * ((gram_matrix(f[i]) - ti) ** 2).mean()
                                 for i, ti, wi in zip(layers, t, w, strict=True)),
     "*mean*"),
    (lambda f, layers, t, w: sum(wi * ((gram_matrix(f[i], False) - ti) ** 2).sum()
                                 for i, ti, wi in zip(layers, t, w, strict=True)),
     "normalize=False: call gram_matrix(feats[layer]) with its default normalize=True"),
    (lambda f, layers, t, w: sum(wi * ((gram_matrix(f[i]) - t[i]) ** 2).sum() for i, wi in zip(layers, w, strict=True)),
     "use feats[style_layers[i]] with style_targets[i]"),
    (lambda f, layers, t, w: torch.tensor(float(style_loss(f, layers, t, w).detach())), "cut off from autograd"),
    (lambda f, layers, t, w: style_loss(f, layers, t, w) * 1.5,
     "if check_gram_matrix fails, fix that first; if it passes"),
])
def test_style_loss_mistakes(fn, words, capsys):
    assert words in _check(cs.check_style_loss, fn, capsys)


def _tv_with_loop(img, w):
    total = 0.0
    for i in range(img.shape[2] - 1):
        total = total + ((img[:, :, i + 1, :] - img[:, :, i, :]) ** 2).sum()
    return w * (total + img.diff(dim=3).pow(2).sum())


@pytest.mark.parametrize("fn, words", [
    (lambda img, w: img.diff(dim=2).pow(2).sum() + img.diff(dim=3).pow(2).sum(), "forget to multiply by the weight"),
    (lambda img, w: w * (img.diff(dim=2).pow(2).mean() + img.diff(dim=3).pow(2).mean()), "*mean*"),
    (lambda img, w: w * img.diff(dim=2).pow(2).sum(), "only vertical neighbours"),
    (lambda img, w: w * img.diff(dim=3).pow(2).sum(), "only horizontal neighbours"),
    (lambda img, w: w * (img.diff(dim=2).abs().sum() + img.diff(dim=3).abs().sum()), "absolute differences"),
    (_tv_with_loop, "Python loop"),
    (lambda img, w: w * sum(img.diff(dim=d).pow(2).sum() for d in (1, 2, 3)), "neighbouring *channels*"),
    (lambda img, w: w * ((img[:, 1:] - img[:, :-1]) ** 2).sum() + w * ((img[:, :, 1:] - img[:, :, :-1]) ** 2).sum(),
     "not (C, H, W)"),
    (lambda img, w: w * (img.diff(dim=1).pow(2).sum() + img.diff(dim=3).pow(2).sum()),
     "the channels (axis 1) and the columns"),
    (lambda img, w: w * (img.clamp_(-9, 9).diff(dim=2).pow(2).sum()), "in-place"),
])
def test_tv_loss_mistakes(fn, words, capsys):
    assert words in _check(cs.check_tv_loss, fn, capsys)


def test_not_implemented_and_crashes_are_reported_not_raised(capsys):
    def stub(*args):
        raise NotImplementedError("content_loss is not implemented yet")

    result = cs.check_content_loss(stub)
    assert result.status == "not implemented" and "NOT IMPLEMENTED YET" in result.message

    def crash(img, w):
        return img @ img  # shapes do not fit

    result = cs.check_tv_loss(crash)
    assert result.status == "error" and "RuntimeError" in result.message
    assert "in your code" in result.message and "return img @ img" in result.message
    capsys.readouterr()


def test_float32_only_implementation_is_checked_in_both_dtypes(capsys):
    """Code that hard-codes float32 passes the float32 run but fails the float64 one."""
    result = cs.check_tv_loss(
        lambda img, w: w * (img.float().diff(dim=2).pow(2).sum() + img.float().diff(dim=3).pow(2).sum()))
    assert not result and "torch.float64" in result.message
    capsys.readouterr()


def test_uses_python_loops():
    assert uses_python_loops(_tv_with_loop) is True
    assert uses_python_loops(tv_loss) is False
    assert uses_python_loops(print) is None  # no Python source


def test_check_signatures_match_their_docstrings():
    """Parameter names documented in each check's one-line spec are the real ones (CS231n's names)."""
    import inspect

    specs = {
        cs.check_content_loss: "content_loss(content_weight, content_current, content_original)",
        cs.check_gram_matrix: "gram_matrix(features, normalize=True)",
        cs.check_style_loss: "style_loss(feats, style_layers, style_targets, style_weights)",
        cs.check_tv_loss: "tv_loss(img, tv_weight)",
    }
    for check, spec in specs.items():
        assert spec in inspect.getdoc(check)
    solution = cs.load_functions(ROOT / "solutions" / "02_style_loss.ipynb", ["gram_matrix", "style_loss"])
    assert list(inspect.signature(solution.style_loss).parameters) == ["feats", "style_layers", "style_targets",
                                                                       "style_weights"]
    assert list(inspect.signature(solution.gram_matrix).parameters) == ["features", "normalize"]


def _style_indexed_by_position(feats, layers, targets, weights):
    return sum(w * ((gram_matrix(feats[i]) - t) ** 2).sum()
               for i, (t, w) in enumerate(zip(targets, weights, strict=True)))


def test_style_loss_indexing_by_position_is_explained(capsys):
    message = _check(cs.check_style_loss, _style_indexed_by_position, capsys)
    assert "feats[style_layers[i]]" in message and "shapes [(1, 8, 9, 12), " in message


def test_view_hint_is_not_repeated(capsys):
    message = _check(cs.check_gram_matrix,
                     lambda f, normalize=True: gram_matrix(f.transpose(2, 3).view(*f.shape), normalize), capsys)
    assert message.count("reshape") == 1


STYLE_LOSS_WITH_ITS_GRAM = '''
import torch

def gram_matrix(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = flat @ flat.transpose(1, 2){gram_mistake}
    return gram / (c * h * w) if normalize else gram

def style_loss(feats, style_layers, style_targets, style_weights):
    loss = 0
    for i, layer in enumerate(style_layers):
        loss = loss + style_weights[i] * torch.sum((gram_matrix(feats[layer]) - style_targets[i]) ** 2){loss_mistake}
    return loss
'''


@pytest.mark.parametrize("gram_mistake, loss_mistake, blames_gram", [
    (" * (c * h * w)", "", True),        # never normalized, a right style loss
    ("[:, :, :, None]", "", True),       # a Gram matrix of the wrong shape: style_loss raises inside it
    ("", " * 2", False),                 # a right Gram matrix, a wrong style loss
])
def test_style_loss_check_says_when_the_gram_matrix_it_calls_is_the_problem(capsys, gram_mistake, loss_mistake,
                                                                            blames_gram):
    namespace = {}
    exec(STYLE_LOSS_WITH_ITS_GRAM.format(gram_mistake=gram_mistake, loss_mistake=loss_mistake), namespace)
    result = cs.check_style_loss(namespace["style_loss"])
    assert not result.passed
    blamed = result.message.startswith("style_loss: FAIL - your gram_matrix, which style_loss calls, does not pass")
    assert blamed == blames_gram, result.message
    assert capsys.readouterr().out.strip() == result.message  # only this check's verdict is printed


def test_style_loss_check_passes_with_a_right_gram_matrix_in_its_namespace():
    namespace = {}
    exec(STYLE_LOSS_WITH_ITS_GRAM.format(gram_mistake="", loss_mistake=""), namespace)
    assert cs.check_style_loss(namespace["style_loss"]).passed
