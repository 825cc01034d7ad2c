"""Notebook 05's checks (spatial control, Gatys et al., CVPR 2017, Sec. 4): ``check_guided_gram_matrix``
and ``check_guided_style_loss``.

The stored reference values are re-computed here with independent float64 NumPy (einsum, loops over
regions); right implementations (einsum, bmm, matmul) pass in float64 and float32, and one with a loop
over the regions only has its values right (the hint says no loops); each typical mistake of the spec
fails with its name in the verdict.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cs231n_style as cs
from cs231n_style.diagnosis import MISTAKES, reference_values, relative_error
from tools.plain_loop import GUIDED_SOURCE

REF = reference_values()
GG, GS = "guided_gram_matrix.", "guided_style_loss."


# --- independent float64 NumPy (a loop over images and regions) ------------------------------------

def np_guided_gram(features, masks, normalize=True):
    n, c, _h, _w = features.shape
    out = np.zeros((n, masks.shape[1], c, c))
    for i in range(n):
        for r in range(masks.shape[1]):
            weighted = (features[i] * masks[i, r]).reshape(c, -1)
            out[i, r] = np.einsum("ik,jk->ij", weighted, weighted)
            if normalize:
                out[i, r] /= c * np.sum(masks[i, r] ** 2)
    return out


def _style_inputs(ref=REF, dtype=torch.float64, grad=True):
    layers = [int(i) for i in ref[GS + "style_layers"]]
    feats = [torch.tensor(ref[f"{GS}feats.{i}"], dtype=dtype, requires_grad=grad and i in layers)
             for i in range(int(ref[GS + "num_feats"]))]
    targets = [torch.tensor(ref[f"{GS}style_targets.{j}"], dtype=dtype) for j in range(len(layers))]
    masks = [torch.tensor(ref[f"{GS}content_masks.{j}"], dtype=dtype) for j in range(len(layers))]
    return feats, layers, targets, [float(w) for w in ref[GS + "style_weights"]], masks


def test_stored_guided_gram_inputs_tell_the_mistakes_apart():
    features, masks = REF[GG + "features"], REF[GG + "masks"]
    n, _c, h, w = features.shape
    assert n == 2 and masks.shape == (n, 3, h, w) and h != w  # R != N, non-square
    assert masks.min() > 0 and masks.max() <= 1 and len(np.unique(masks)) > 10  # soft masks
    np.testing.assert_allclose(REF[GG + "expected"], np_guided_gram(features, masks), rtol=1e-12)
    np.testing.assert_allclose(REF[GG + "expected_unnormalized"], np_guided_gram(features, masks, False), rtol=1e-12)


def test_stored_guided_gram_gradient_matches_a_finite_difference():
    features, masks, upstream = REF[GG + "features"], REF[GG + "masks"], REF[GG + "grad_upstream"]
    rng = np.random.default_rng(0)
    for _ in range(5):
        index = tuple(int(rng.integers(0, s)) for s in features.shape)
        step = np.zeros_like(features)
        step[index] = 1e-6
        numeric = ((np_guided_gram(features + step, masks) - np_guided_gram(features - step, masks)) * upstream).sum()
        assert np.isclose(REF[GG + "grad"][index], numeric / 2e-6, rtol=1e-5, atol=1e-9)


def test_stored_guided_style_loss_matches_numpy():
    layers = [int(i) for i in REF[GS + "style_layers"]]
    assert layers[0] != 0 and np.any(np.diff(layers) > 1)  # not from 0, not contiguous
    sizes = [REF[f"{GS}feats.{i}"].shape[2:] for i in range(int(REF[GS + "num_feats"]))]
    assert len(set(sizes)) == len(sizes)  # every layer has its own size
    total = 0.0
    for j, (layer, weight) in enumerate(zip(layers, REF[GS + "style_weights"], strict=True)):
        masks = REF[f"{GS}content_masks.{j}"]
        assert masks.shape[2:] == REF[f"{GS}feats.{layer}"].shape[2:] and masks.min() > 0
        diff = np_guided_gram(REF[f"{GS}feats.{layer}"], masks) - REF[f"{GS}style_targets.{j}"]
        total += weight * np.sum(diff**2)
    assert np.isclose(REF[GS + "expected"], total, rtol=1e-12)


def test_stored_guided_style_loss_gradient_matches_a_finite_difference():
    layers = [int(i) for i in REF[GS + "style_layers"]]

    def loss(changed_layer, changed):
        total = 0.0
        for j, (layer, weight) in enumerate(zip(layers, REF[GS + "style_weights"], strict=True)):
            f = changed if layer == changed_layer else REF[f"{GS}feats.{layer}"]
            diff = np_guided_gram(f, REF[f"{GS}content_masks.{j}"]) - REF[f"{GS}style_targets.{j}"]
            total += weight * np.sum(diff**2)
        return total

    rng = np.random.default_rng(1)
    for layer in layers:
        feats = REF[f"{GS}feats.{layer}"]
        index = tuple(int(rng.integers(0, s)) for s in feats.shape)
        step = np.zeros_like(feats)
        step[index] = 1e-6
        numeric = (loss(layer, feats + step) - loss(layer, feats - step)) / 2e-6
        assert np.isclose(REF[f"{GS}grad.{layer}"][index], numeric, rtol=1e-5, atol=1e-8)


def test_guided_variants_differ_from_the_answer_and_are_named():
    for key in REF:
        for kind, expected in ((".variant.", "expected"), (".variant_unnormalized.", "expected_unnormalized")):
            if key.startswith("guided") and kind in key:
                prefix, mistake = key.split(kind)
                assert relative_error(REF[key], REF[f"{prefix}.{expected}"]) > 1e-3, key
                assert mistake in MISTAKES, key


# --- right implementations pass --------------------------------------------------------------------

def guided_gram_einsum(features, masks, normalize=True):
    n, c, h, w = features.shape
    weighted = torch.einsum("nchw,nrhw->nrchw", features, masks).reshape(n, masks.shape[1], c, h * w)
    gram = torch.einsum("nrci,nrdi->nrcd", weighted, weighted)
    return gram / (c * masks.pow(2).sum(dim=(2, 3)))[..., None, None] if normalize else gram


def guided_gram_bmm(features, masks, normalize=True):
    n, c, h, w = features.shape
    r = masks.shape[1]
    weighted = (features[:, None] * masks[:, :, None]).reshape(n * r, c, h * w)
    gram = torch.bmm(weighted, weighted.transpose(1, 2)).reshape(n, r, c, c)
    if normalize:
        gram = gram / (c * (masks * masks).sum(dim=(2, 3))).reshape(n, r, 1, 1)
    return gram


def guided_gram_loop(features, masks, normalize=True):
    n, c, _h, _w = features.shape
    grams = []
    for r in range(masks.shape[1]):
        weighted = (features * masks[:, r:r + 1]).reshape(n, c, -1)
        gram = weighted @ weighted.mT
        if normalize:
            gram = gram / (c * masks[:, r].square().sum(dim=(1, 2))).view(n, 1, 1)
        grams.append(gram)
    return torch.stack(grams, dim=1)


def make_style_loss(guided_gram_matrix):
    def guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks):
        loss = 0
        for i, layer in enumerate(style_layers):
            gram = guided_gram_matrix(feats[layer], content_masks[i])
            loss = loss + style_weights[i] * ((gram - style_targets[i]) ** 2).sum()
        return loss
    return guided_style_loss


@pytest.mark.parametrize("fn", [guided_gram_einsum, guided_gram_bmm])
def test_right_guided_gram_matrices_pass(fn, capsys):
    result = cs.check_guided_gram_matrix(fn)
    assert result.passed and result.relative_error < 1e-4, result.message
    assert "PASS" in capsys.readouterr().out


def test_a_loop_over_regions_has_the_right_values_but_fails_the_no_loops_hint(capsys):
    """The hint says "no Python loops": the check enforces it as the grader and nbgrader do (issue #24)."""
    result = cs.check_guided_gram_matrix(guided_gram_loop)
    assert not result.passed and result.message.startswith("guided_gram_matrix: FAIL - the values are right, but")
    assert "Python loop" in result.message and "masks to (N, R, 1, H*W)" in result.message
    capsys.readouterr()


@pytest.mark.parametrize("fn", [guided_gram_einsum, guided_gram_bmm, guided_gram_loop])
def test_right_guided_style_losses_pass(fn, capsys):
    assert cs.check_guided_style_loss(make_style_loss(fn)).passed
    capsys.readouterr()


def test_guided_gram_matrix_with_all_ones_masks_is_the_gram_matrix():
    """The spec's definition: an all-ones mask gives exactly gram_matrix(features, normalize=True)."""
    features = torch.tensor(REF["gram_matrix.features"])
    masks = torch.ones(features.shape[0], 1, *features.shape[2:], dtype=features.dtype)
    np.testing.assert_allclose(guided_gram_bmm(features, masks)[:, 0].numpy(), REF["gram_matrix.expected"],
                               rtol=1e-12)


def test_check_all_runs_the_guided_checks_only_when_given(capsys):
    from test_checks import content_loss, gram_matrix, style_loss, tv_loss

    assert bool(cs.check_all(content_loss, gram_matrix, style_loss, tv_loss)) is True
    assert capsys.readouterr().out.count("PASS") == 4
    assert bool(cs.check_all(content_loss, gram_matrix, style_loss, tv_loss, guided_gram_bmm,
                             make_style_loss(guided_gram_bmm))) is True
    assert capsys.readouterr().out.count("PASS") == 6
    assert bool(cs.check_all(content_loss, gram_matrix, style_loss, tv_loss, guided_gram_bmm,
                             lambda *args: torch.tensor(0.0))) is False
    capsys.readouterr()


# --- each typical mistake is named -------------------------------------------------------------------

def _check(check, fn, capsys):
    result = check(fn)
    assert not result, result.message
    assert capsys.readouterr().out.strip() == result.message
    return result.message


def _weighted(features, masks, twice=True):
    n, c, h, w = features.shape
    r = masks.shape[1]
    flat = features.reshape(n, 1, c, h * w)
    weighted = flat * masks.reshape(n, r, 1, h * w)
    return weighted, (weighted if twice else flat.expand(n, r, c, h * w))


def _gram_with(norm, twice=True):
    def fn(features, masks, normalize=True):
        _n, c, h, w = features.shape
        left, right = _weighted(features, masks, twice)
        gram = left @ right.transpose(-1, -2)
        m1, m2 = masks.sum(dim=(2, 3))[..., None, None], masks.pow(2).sum(dim=(2, 3))[..., None, None]
        return gram / {"c*m2": c * m2, "chw": c * h * w, "m2": m2, "c*m1": c * m1, "1": 1}[norm] if normalize else gram
    return fn


def _regions_summed(features, masks, normalize=True):
    return guided_gram_bmm(features, masks, normalize).sum(dim=1)


def _axes_swapped(features, masks, normalize=True):
    return guided_gram_bmm(features, masks, normalize).transpose(0, 1)


def _axes_swapped_reshape(features, masks, normalize=True):
    gram = guided_gram_bmm(features, masks, normalize)
    return gram.transpose(0, 1).reshape(gram.shape)


def _plain_gram_every_region(features, masks, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, -1)
    gram = (flat @ flat.mT / (c * h * w))[:, None]
    return gram.expand(n, masks.shape[1], c, c)


def _normalized_anyway(features, masks, normalize=True):
    return guided_gram_bmm(features, masks, True)


def _broadcast_wrong(features, masks, normalize=True):
    n, c, h, w = features.shape
    weighted = features.reshape(n, c, h * w) * masks.reshape(n, -1, h * w)  # (N, C, HW) * (N, R, HW)
    return weighted @ weighted.mT


@pytest.mark.parametrize("fn, words", [
    (_gram_with("c*m2", twice=False), MISTAKES["guided_mask_once"]),
    (_gram_with("c*m1", twice=False), MISTAKES["guided_mask_once_sum_m"]),
    (_gram_with("chw", twice=False), MISTAKES["guided_mask_once_chw"]),
    (_gram_with("chw"), "divided by C*H*W, as gram_matrix does"),
    (_gram_with("m2"), "off by exactly a factor C"),
    (_gram_with("c*m1"), "divided by C * sum(m), the mask's area"),
    (_gram_with("1"), "not normalized"),
    (_regions_summed, "the regions were summed"),
    (_axes_swapped, "batch and region axes are swapped"),
    (_axes_swapped_reshape, "the Gram matrices are right but in the wrong places: G[0, 1] holds G[1, 0]"),
    (_plain_gram_every_region, "the masks are not used"),
    (_normalized_anyway, "with normalize=False the result is still divided"),
    (_broadcast_wrong, "masks.reshape(N, R, 1, H*W)"),
    (lambda f, m, normalize=True: guided_gram_bmm(f, m, normalize).detach(), "no gradient flows back"),
    (lambda f, m, normalize=True: guided_gram_bmm(f, m.mul_(1.0).clamp_(0.5), normalize), "modified an input"),
    (lambda f, m, normalize=True: guided_gram_bmm(f.float(), m.float(), normalize), "don't hard-code a dtype"),
])
def test_guided_gram_matrix_mistakes_are_named(fn, words, capsys):
    message = _check(cs.check_guided_gram_matrix, fn, capsys)
    assert message.startswith("guided_gram_matrix: FAIL") and words in message, message


def _style(body):
    def guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks):
        return body(feats, style_layers, style_targets, style_weights, content_masks)
    return guided_style_loss


def _sum_terms(term):
    return _style(lambda f, layers, t, w, m: sum(term(i, layer, f, t, w, m) for i, layer in enumerate(layers)))


GOOD = guided_gram_bmm


@pytest.mark.parametrize("fn, words", [
    (_sum_terms(lambda i, L, f, t, w, m: ((GOOD(f[L], m[i]) - t[i]) ** 2).sum()), "without the style weights"),
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * ((GOOD(f[L], m[i]) - t[i]) ** 2).sum().sqrt()), "norm of the Gram"),
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * (GOOD(f[L], m[i]) - t[i]).abs().sum()), "absolute differences"),
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * ((GOOD(f[L], m[i]) - t[i]) ** 2).mean()), "*mean*"),
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * ((GOOD(f[L], m[i], False) - t[i]) ** 2).sum()), "normalize=False"),
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * ((_gram_with("chw")(f[L], m[i]) - t[i]) ** 2).sum()),
     "divided by C*H*W instead of C * sum(m**2)"),
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * ((_gram_with("c*m2", False)(f[L], m[i]) - t[i]) ** 2).sum()),
     "one factor only"),
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * ((_plain_gram_every_region(f[L], m[i])[:, :1] - t[i]) ** 2).sum()),
     "plain (unguided) gram_matrix"),
    (_style(lambda f, layers, t, w, m: w[-1] * ((GOOD(f[layers[-1]], m[-1]) - t[-1]) ** 2).sum()), "only the last"),
    # indexing mistakes: shapes do not fit, so they raise; the hint says how the lists are indexed
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * ((GOOD(f[i], m[i]) - t[i]) ** 2).sum()), "feats[style_layers[i]]"),
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * ((GOOD(f[L], m[0]) - t[i]) ** 2).sum()),
     "content_masks[i] is already resized to style layer i's feature maps"),
    (_sum_terms(lambda i, L, f, t, w, m: w[i] * ((GOOD(f[L], m[L]) - t[i]) ** 2).sum()),
     "don't index content_masks by layer number"),
    (_style(lambda f, layers, t, w, m: sum(w[i] * ((GOOD(f[L], m[i]) - t[i]) ** 2).sum()
                                           for i, L in enumerate(layers)).detach()), "no gradient flows back"),
])
def test_guided_style_loss_mistakes_are_named(fn, words, capsys):
    message = _check(cs.check_guided_style_loss, fn, capsys)
    assert message.startswith("guided_style_loss: FAIL") and words in message, message


# The reference pair (tools/plain_loop.py) with a place for one mistake in each function.
GUIDED_PAIR = "import torch\n\n" + (
    GUIDED_SOURCE.replace("masks.reshape(N, R, 1, H * W)\n", "masks.reshape(N, R, 1, H * W){gram_mistake}\n", 1)
    .replace("** 2).sum()\n", "** 2).sum(){loss_mistake}\n", 1))
assert GUIDED_PAIR.count("{gram_mistake}") == GUIDED_PAIR.count("{loss_mistake}") == 1


@pytest.mark.parametrize("gram_mistake, loss_mistake, blames_gram", [
    (" * 2", "", True),                # a wrong guided Gram matrix, a right loss
    (".sum(dim=1)", "", True),         # regions summed: the loss raises or is wrong inside it
    ("", " * 2", False),               # a right guided Gram matrix, a wrong loss
    ("", "", None),                    # both right: passes
])
def test_guided_style_loss_check_says_when_its_guided_gram_matrix_is_the_problem(capsys, gram_mistake,
                                                                                  loss_mistake, blames_gram):
    namespace = {}
    exec(GUIDED_PAIR.format(gram_mistake=gram_mistake, loss_mistake=loss_mistake), namespace)
    result = cs.check_guided_style_loss(namespace["guided_style_loss"])
    assert capsys.readouterr().out.strip() == result.message  # only this check's verdict is printed
    if blames_gram is None:
        assert result.passed, result.message
        return
    assert not result.passed
    blamed = result.message.startswith("guided_style_loss: FAIL - your guided_gram_matrix, which guided_style_loss "
                                       "calls, does not pass check_guided_gram_matrix")
    assert blamed == blames_gram, result.message


def test_not_implemented_guided_functions_say_so(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError

    for check in (cs.check_guided_gram_matrix, cs.check_guided_style_loss):
        result = check(stub)
        assert result.status == "not implemented" and "NOT IMPLEMENTED YET" in result.message
    capsys.readouterr()


def test_guided_inputs_are_the_documented_ones():
    import inspect

    assert "guided_gram_matrix(features, masks, normalize=True)" in inspect.getdoc(cs.check_guided_gram_matrix)
    assert ("guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks)"
            in inspect.getdoc(cs.check_guided_style_loss))
    feats, layers, targets, _weights, masks = _style_inputs()
    assert all(t.shape == (1, masks[0].shape[1], feats[L].shape[1], feats[L].shape[1])
               for L, t in zip(layers, targets, strict=True))
