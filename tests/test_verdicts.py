"""Each mistake class -> the verdict it must produce (issue #24: verdicts that locate the error).

Every row of :data:`TABLE` is a real wrong student implementation, written as a student would write
it, and the words its verdict must contain: the slice that is wrong (image, region, layer, term) and
how. The notebook checks run each; the autograder's diagnosis is the same code (``test_autograder*``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cs231n_style as cs
from autograder.cases import build_case
from autograder.reference import load_reference
from autograder.rubric import RubricError, load_rubric
from cs231n_style.diagnosis import VECTORIZED
from cs231n_style.notebook import ALL_STUDENT_FUNCTIONS, read_notebook
from tools.plain_loop import gram_matrix, guided_gram_matrix

# The right helpers the mistakes below call (gram_matrix, guided_gram_matrix) are tools/plain_loop.py's.

# --- gram_matrix ---------------------------------------------------------------------------------------

def gram_elementwise(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = flat * flat
    return gram / (c * h * w) if normalize else gram


def gram_elementwise_summed(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = torch.diag_embed((flat * flat).sum(dim=2))
    return gram / (c * h * w) if normalize else gram


def gram_of_squares(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    squared = flat * flat
    gram = squared @ squared.transpose(1, 2)
    return gram / (c * h * w) if normalize else gram


def gram_loop(features, normalize=True):
    n, c, h, w = features.shape
    grams = []
    for i in range(n):
        flat = features[i].reshape(c, h * w)
        grams.append(flat @ flat.T)
    gram = torch.stack(grams)
    return gram / (c * h * w) if normalize else gram


# --- guided_gram_matrix ----------------------------------------------------------------------------------

def guided_masks_permuted(features, masks, normalize=True):
    n, c, h, w = features.shape
    r = masks.shape[1]
    m = masks.permute(1, 0, 2, 3).reshape(n, r, 1, h * w)
    masked = features.reshape(n, 1, c, h * w) * m
    gram = masked @ masked.transpose(-1, -2)
    if normalize:
        gram = gram / (c * (masks ** 2).sum(dim=(2, 3))).reshape(n, r, 1, 1)
    return gram


def guided_masks_as_r_n(features, masks, normalize=True):
    n, c, h, w = features.shape
    r = masks.shape[1]
    m = masks.reshape(r, n, h * w).transpose(0, 1).reshape(n, r, 1, h * w)
    masked = features.reshape(n, 1, c, h * w) * m
    gram = masked @ masked.transpose(-1, -2)
    if normalize:
        gram = gram / (c * (m ** 2).sum(dim=-1)).reshape(n, r, 1, 1)
    return gram


def guided_einsum_masks_of_all_images(features, masks, normalize=True):
    n, c, h, w = features.shape
    masked = torch.einsum("nchw,mrhw->nrchw", features, masks).reshape(n, masks.shape[1], c, h * w)
    gram = masked @ masked.transpose(-1, -2)
    if normalize:
        gram = gram / (c * (masks ** 2).sum(dim=(2, 3)))[..., None, None]
    return gram


def guided_einsum_summed_over_images(features, masks, normalize=True):
    n, c, h, w = features.shape
    masked = torch.einsum("nchw,nrhw->nrchw", features, masks).reshape(n, masks.shape[1], c, h * w)
    gram = torch.einsum("nrci,nrdi->rcd", masked, masked).expand(n, -1, -1, -1)
    if normalize:
        gram = gram / (c * (masks ** 2).sum(dim=(2, 3)))[..., None, None]
    return gram


def guided_image_0_masks(features, masks, normalize=True):
    n, c, h, w = features.shape
    r = masks.shape[1]
    m = masks[0].reshape(1, r, 1, h * w)
    masked = features.reshape(n, 1, c, h * w) * m
    gram = masked @ masked.transpose(-1, -2)
    if normalize:
        gram = gram / (c * (m ** 2).sum(dim=-1)).reshape(1, r, 1, 1)
    return gram


def guided_normalized_over_all_regions(features, masks, normalize=True):
    n, c, h, w = features.shape
    r = masks.shape[1]
    masked = features.reshape(n, 1, c, h * w) * masks.reshape(n, r, 1, h * w)
    gram = masked @ masked.transpose(-1, -2)
    if normalize:
        gram = gram / (c * (masks ** 2).sum(dim=(1, 2, 3))).reshape(n, 1, 1, 1)
    return gram


def guided_eps(features, masks, normalize=True):
    n, c, h, w = features.shape
    r = masks.shape[1]
    masked = features.reshape(n, 1, c, h * w) * masks.reshape(n, r, 1, h * w)
    gram = masked @ masked.transpose(-1, -2)
    if normalize:
        gram = gram / (c * (masks ** 2).sum(dim=(2, 3)) + 1e-8).reshape(n, r, 1, 1)
    return gram


def guided_loop(features, masks, normalize=True):
    n, c, h, w = features.shape
    grams = torch.zeros(n, masks.shape[1], c, c, dtype=features.dtype)
    for i in range(n):
        for r in range(masks.shape[1]):
            masked = (features[i] * masks[i, r]).reshape(c, h * w)
            gram = masked @ masked.T
            grams[i, r] = gram / (c * (masks[i, r] ** 2).sum()) if normalize else gram
    return grams


# --- guided_style_loss -----------------------------------------------------------------------------------

def guided_style_masks_from_layer_0(feats, style_layers, style_targets, style_weights, content_masks):
    loss = 0.0
    for i, layer in enumerate(style_layers):
        masks = F.interpolate(content_masks[0], size=feats[layer].shape[2:], mode="bilinear")
        gram = guided_gram_matrix(feats[layer], masks)
        loss = loss + style_weights[i] * torch.sum((gram - style_targets[i]) ** 2)
    return loss


def guided_style_mean_over_regions(feats, style_layers, style_targets, style_weights, content_masks):
    loss = 0.0
    for i, layer in enumerate(style_layers):
        gram = guided_gram_matrix(feats[layer], content_masks[i])
        per_region = ((gram - style_targets[i]) ** 2).sum(dim=(2, 3))
        loss = loss + style_weights[i] * per_region.mean()
    return loss


def guided_style_region_0_only(feats, style_layers, style_targets, style_weights, content_masks):
    loss = 0.0
    for i, layer in enumerate(style_layers):
        gram = guided_gram_matrix(feats[layer], content_masks[i])
        loss = loss + style_weights[i] * torch.sum((gram[:, 0] - style_targets[i][:, 0]) ** 2)
    return loss


def guided_style_first_layer_weighted(feats, style_layers, style_targets, style_weights, content_masks):
    loss = style_weights[0] * torch.sum(
        (guided_gram_matrix(feats[style_layers[0]], content_masks[0]) - style_targets[0]) ** 2)
    for i in range(1, len(style_layers)):
        gram = guided_gram_matrix(feats[style_layers[i]], content_masks[i])
        loss = loss + torch.sum((gram - style_targets[i]) ** 2)
    return loss


def guided_style_masks_by_layer(feats, style_layers, style_targets, style_weights, content_masks):
    loss = 0.0
    for i, layer in enumerate(style_layers):
        gram = guided_gram_matrix(feats[layer], content_masks[layer])
        loss = loss + style_weights[i] * torch.sum((gram - style_targets[i]) ** 2)
    return loss


# --- style_loss --------------------------------------------------------------------------------------------

def style_first_layer_weighted(feats, style_layers, style_targets, style_weights):
    loss = style_weights[0] * torch.sum((gram_matrix(feats[style_layers[0]]) - style_targets[0]) ** 2)
    for i in range(1, len(style_layers)):
        loss = loss + torch.sum((gram_matrix(feats[style_layers[i]]) - style_targets[i]) ** 2)
    return loss


# --- tv_loss -------------------------------------------------------------------------------------------------

def tv_roll(img, tv_weight):
    vertical = torch.sum((torch.roll(img, 1, dims=2) - img) ** 2)
    horizontal = torch.sum((torch.roll(img, 1, dims=3) - img) ** 2)
    return tv_weight * (vertical + horizontal)


def tv_off_by_two(img, tv_weight):
    vertical = torch.sum((img[:, :, 2:, :] - img[:, :, :-2, :]) ** 2)
    horizontal = torch.sum((img[:, :, :, 2:] - img[:, :, :, :-2]) ** 2)
    return tv_weight * (vertical + horizontal)


def tv_weight_on_one_term(img, tv_weight):
    vertical = torch.sum((img[:, :, 1:, :] - img[:, :, :-1, :]) ** 2)
    horizontal = torch.sum((img[:, :, :, 1:] - img[:, :, :, :-1]) ** 2)
    return tv_weight * vertical + horizontal


def tv_vertical_twice(img, tv_weight):
    vertical = torch.sum((img[:, :, 1:, :] - img[:, :, :-1, :]) ** 2)
    horizontal = torch.sum((img[:, :, 1:, :] - img[:, :, :-1, :]) ** 2)
    return tv_weight * (vertical + horizontal)


def style_constant(feats, style_layers, style_targets, style_weights):
    return torch.tensor(1.0, dtype=feats[0].dtype, requires_grad=True)


#: mistake -> (check, the student's function, words its verdict must contain). The verdicts before
#: issue #24 are in the docstring of each group's test below.
TABLE = {
    "gram: elementwise F * F": (cs.check_gram_matrix, gram_elementwise, [
        "the features' own shape: an elementwise product (F * F)", "G = F @ F^T"]),
    "gram: elementwise F * F summed over positions": (cs.check_gram_matrix, gram_elementwise_summed, [
        "only the diagonal is filled", "(F * F) summed over the positions"]),
    "gram: Gram matrix of the squared features": (cs.check_gram_matrix, gram_of_squares, [
        "doubling the features multiplies your result by 16", "grows as the power 4",
        "multiplied elementwise (F * F, or squared) before the matrix product"]),
    "gram: a Python loop over the images": (cs.check_gram_matrix, gram_loop, [
        "the values are right, but the code uses a Python loop", "torch.bmm"]),
    "guided gram: masks permuted (read as (R, N))": (cs.check_guided_gram_matrix, guided_masks_permuted, [
        "the masks are paired with the wrong images and regions: G[0, 1] was computed with masks[1, 0]"]),
    "guided gram: masks reshaped as (R, N)": (cs.check_guided_gram_matrix, guided_masks_as_r_n, [
        "the masks are paired with the wrong images and regions: G[0, 1] was computed with masks[0, 2]"]),
    "guided gram: einsum summing the masks over n": (cs.check_guided_gram_matrix, guided_einsum_masks_of_all_images,
                                                     ["weighted by the masks of all N images summed"]),
    "guided gram: einsum summing the Gram matrices over n": (
        cs.check_guided_gram_matrix, guided_einsum_summed_over_images,
        ["every image got the Gram matrices of all N images summed"]),
    "guided gram: image 0's masks for all images": (cs.check_guided_gram_matrix, guided_image_0_masks, [
        "image 1 got image 0's masks (image 0's are right)"]),
    "guided gram: normalized over all regions": (cs.check_guided_gram_matrix, guided_normalized_over_all_regions, [
        "right up to its normalization", "the squared masks over all regions of the image"]),
    "guided gram: an eps in the normalizer": (cs.check_guided_gram_matrix, guided_eps, [
        "the normalizer adds a constant (an eps of about 1.0e-08)", "Leave the eps out"]),
    "guided gram: Python loops over images and regions": (cs.check_guided_gram_matrix, guided_loop, [
        "the values are right, but the code uses a Python loop", "masks to (N, R, 1, H*W)"]),
    "guided style: masks resized again from layer 0": (cs.check_guided_style_loss, guided_style_masks_from_layer_0, [
        "content_masks[1] and content_masks[2] are never used", "the term of style layer 1 (i = 0) is right",
        "Don't resize content_masks[0]"]),
    "guided style: mean over regions": (cs.check_guided_style_loss, guided_style_mean_over_regions, [
        "exactly 1/2 of the reference, and there are R = 2 regions", "averaged"]),
    "guided style: region 0 only": (cs.check_guided_style_loss, guided_style_region_0_only, [
        "region 1 never counts", "over all R regions"]),
    "guided style: only the first layer weighted": (cs.check_guided_style_loss, guided_style_first_layer_weighted, [
        "the terms of style layers 3 and 4 (i = 1 and 2) are not multiplied by their weights",
        "the term of style layer 1 (i = 0) is right"]),
    "guided style: content_masks[layer]": (cs.check_guided_style_loss, guided_style_masks_by_layer, [
        "content_masks[layer])", "guided_gram_matrix passes its own check, so the arguments"]),
    "style: only the first layer weighted": (cs.check_style_loss, style_first_layer_weighted, [
        "the terms of style layers 3 and 4 (i = 1 and 2) are not multiplied by their weights",
        "the term of style layer 1 (i = 0) is right"]),
    "style: a constant": (cs.check_style_loss, style_constant, [
        "your loss does not depend on its inputs", "a constant"]),
    "tv: torch.roll wraps around": (cs.check_tv_loss, tv_roll, [
        "does not change when the image is shifted circularly by one row or one column", "torch.roll"]),
    "tv: off-by-two slices": (cs.check_tv_loss, tv_off_by_two, ["rows and columns two apart (slices 2: and :-2)"]),
    "tv: the weight on one term only": (cs.check_tv_loss, tv_weight_on_one_term, [
        "the horizontal differences are not multiplied by tv_weight"]),
    "tv: the vertical term twice": (cs.check_tv_loss, tv_vertical_twice, [
        "the vertical differences are counted twice and the horizontal ones not at all"]),
}


@pytest.mark.parametrize("mistake", list(TABLE))
def test_each_mistake_gets_the_verdict_that_names_it(mistake, capsys):
    check, fn, words = TABLE[mistake]
    result = check(fn)
    assert capsys.readouterr().out.strip() == result.message
    assert not result.passed, result.message
    assert "values differ" not in result.message, result.message
    for word in words:
        assert word in result.message, (word, result.message)


# --- the traceback names the function where the error is --------------------------------------------------

GUIDED_PAIR_BY_LAYER = (inspect.getsource(guided_gram_matrix) + "\n\n"
                        + inspect.getsource(guided_style_masks_by_layer).replace("guided_style_masks_by_layer",
                                                                                 "guided_style_loss"))


def _module(tmp_path: Path, source: str):
    """The source as a real module file, so that tracebacks and ``inspect`` find its lines, as in a notebook."""
    path = tmp_path / "student_code.py"
    path.write_text("import torch\nimport torch.nn.functional as F\n\n" + source)
    spec = importlib.util.spec_from_file_location(f"student_code_{abs(hash(source))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pointer_names_the_call_with_the_wrong_arguments_not_the_right_line_it_raised_in(tmp_path, capsys):
    """content_masks[layer]: the error is raised inside guided_gram_matrix, on a right line (before issue #24 the
    pointer said "in your code (guided_gram_matrix), line 18"); the mistake is the call in guided_style_loss."""
    code = _module(tmp_path, GUIDED_PAIR_BY_LAYER)
    message = cs.check_guided_style_loss(code.guided_style_loss).message
    lines = message.splitlines()
    assert lines[-2].startswith("  in your code (guided_style_loss), line ")
    assert lines[-2].endswith("gram = guided_gram_matrix(feats[layer], content_masks[layer])")
    assert lines[-1].startswith("  (it raised inside guided_gram_matrix, line ")
    assert "guided_gram_matrix passes its own check, so the arguments guided_style_loss gives it here are wrong" in (
        lines[-1])
    capsys.readouterr()


def test_the_pointer_names_the_helper_first_when_the_helper_is_wrong(tmp_path, capsys):
    wrong_helper = GUIDED_PAIR_BY_LAYER.replace("masks.reshape(N, R, 1, H * W)", "masks.reshape(N, R, H * W)", 1)
    code = _module(tmp_path, wrong_helper.replace("content_masks[layer]", "content_masks[i]"))
    message = cs.check_guided_style_loss(code.guided_style_loss).message
    assert message.startswith("guided_style_loss: FAIL - your guided_gram_matrix, which guided_style_loss calls, "
                              "does not pass check_guided_gram_matrix")
    assert "\n  in your code (guided_gram_matrix), line " in message
    assert "\n  (called from guided_style_loss, line " in message
    capsys.readouterr()


def test_without_knowing_the_helper_the_pointer_gives_both_lines_caller_first():
    """The autograder's runner does not know whether the helper is right: both lines, the call first."""
    from cs231n_style._tracebacks import where_in_your_code

    def helper(x):
        return x.reshape(7)

    def caller(x):
        return helper(x) + 1

    try:
        caller(torch.zeros(3))
    except RuntimeError as error:
        where = where_in_your_code(error, lambda frame: frame.name in ("caller", "helper"))
    assert where.splitlines()[1] == "  in your code (caller), line " + str(
        caller.__code__.co_firstlineno + 1) + ": return helper(x) + 1"
    assert where.splitlines()[2].startswith("  (it raised inside helper, line ") and where.endswith(
        "return x.reshape(7))")


# --- a relative error says what it means --------------------------------------------------------------------

def test_a_relative_error_is_never_reported_as_if_it_were_rounding():
    """3.8e-04 in float64 is a wrong formula (the vertical term twice gave exactly that before issue #24)."""
    from cs231n_style.diagnosis import diagnose_values

    _, message = diagnose_values("content_loss", np.array(24.4110), np.array(24.401791869929795), {}, torch.float64)
    assert "max relative error 3.8e-04 in float64: yours is 24.411, the reference 24.4018 (+0.038%)" in message
    assert "this is a difference in the formula, not rounding" in message
    _, message = diagnose_values("content_loss", np.array(1.0 + 3e-7), np.array(1.0), {}, torch.float64)
    assert "float32's rounding level" in message and ".float()" in message
    _, message = diagnose_values("content_loss", np.array(1.001), np.array(1.0), {}, torch.float32)
    assert "Rounding in float32 stays below 1e-04" in message


# --- the hints, the checks, the grader and nbgrader agree -----------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _hints(folder: Path) -> dict[str, str]:
    """Function -> the ``# HINT:`` lines of its cell, from the notebooks in ``folder``."""
    hints = {}
    for path in sorted(folder.glob("*.ipynb")):
        for cell in read_notebook(path).cells:
            for name in re.findall(r"^def (\w+)\(", cell.source, flags=re.MULTILINE):
                if name in ALL_STUDENT_FUNCTIONS:
                    hints[name] = " ".join(line for line in cell.source.splitlines() if "# HINT:" in line)
    return hints


def test_no_python_loops_is_said_checked_and_graded_for_the_same_functions():
    """The hints that say "no Python loops" are the ones the check (so nbgrader's check cell) and the
    grader's public and no_loops tests enforce; the student copies carry the same hints."""
    solutions, students = _hints(ROOT / "solutions"), _hints(ROOT / "notebooks")
    assert students == solutions
    assert {name for name, hint in solutions.items() if "no Python loops" in hint} == set(VECTORIZED)
    rubric = load_rubric()
    assert {spec.function for spec in rubric.tests if spec.kind == "no_loops"} == set(VECTORIZED)
    for spec in rubric.tests:
        if spec.kind == "public":
            case = build_case(spec, np.random.default_rng(0), load_reference())
            assert (len(case.source_checks) == 1) == (spec.function in VECTORIZED), spec.id


def test_a_rubric_cannot_grade_loops_where_the_hint_allows_them(tmp_path):
    (tmp_path / "r.toml").write_text('[[tests]]\nid = "x"\nfunction = "style_loss"\nkind = "no_loops"\npoints = 1\n')
    with pytest.raises(RubricError, match="'no_loops' is for content_loss, gram_matrix, guided_gram_matrix, tv_loss"):
        load_rubric(tmp_path / "r.toml")


# --- an eps in the guided normalizer: rejected, by name ---------------------------------------------------------

def _guided_with_eps(eps: float):
    def guided(features, masks, normalize=True):
        return guided_gram_matrix(features, masks, False) / (
            features.shape[1] * masks.pow(2).sum(dim=(2, 3)) + eps)[..., None, None] if normalize else (
            guided_gram_matrix(features, masks, False))
    return guided


@pytest.mark.parametrize("eps", [1e-10, 1e-8, 1e-3, 1.0])
def test_an_eps_in_the_guided_normalizer_is_named_however_small_float64_can_see_it(eps, capsys):
    """Decision (issue #24): rejected. The spec normalizes by C * sum(m**2) exactly, no region is empty
    (cs.check_masks refuses one), and an eps makes a region's average depend on its mask's overall scale.
    Below about 1e-13 of the normalizer, float64 cannot tell an eps from rounding: such a one passes."""
    result = cs.check_guided_gram_matrix(_guided_with_eps(eps))
    assert not result.passed and f"an eps of about {eps:.1e}" in result.message, result.message
    assert cs.check_guided_gram_matrix(_guided_with_eps(1e-16)).passed
    capsys.readouterr()


# --- the grader gives the same verdicts, and partial credit for a loop the hint forbids -----------------------

def _as(fn, name: str) -> str:
    """A mistake's source as the student's function ``name``."""
    return inspect.getsource(fn).replace(f"def {fn.__name__}(", f"def {name}(", 1)


def _graded(tmp_path: Path, sources: dict[str, str], functions: set[str]):
    from test_autograder import notebook_with, solution_sources

    from autograder.grader import grade_submission

    rubric = load_rubric()
    rubric = dataclasses.replace(rubric, tests=tuple(spec for spec in rubric.tests if spec.function in functions))
    path = notebook_with({**solution_sources(), **sources}, tmp_path / "mine.ipynb")
    return grade_submission(path, rubric, seed=24).by_id()


GRADED_MISTAKES = {"gram_matrix": gram_loop, "guided_gram_matrix": guided_image_0_masks, "tv_loss": tv_vertical_twice,
                   "style_loss": style_first_layer_weighted, "guided_style_loss": guided_style_region_0_only}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return _graded(tmp_path_factory.mktemp("verdicts"), {name: _as(fn, name) for name, fn in GRADED_MISTAKES.items()},
                   set(GRADED_MISTAKES))


@pytest.mark.parametrize("function", ["gram_matrix", "guided_gram_matrix", "tv_loss"])
def test_the_grader_quotes_the_checks_located_verdict(graded, function, capsys):
    """The public test runs the notebook check's inputs: its feedback is the check's verdict, word for word."""
    check = {"gram_matrix": cs.check_gram_matrix, "guided_gram_matrix": cs.check_guided_gram_matrix,
             "tv_loss": cs.check_tv_loss}[function]
    verdict = check(GRADED_MISTAKES[function]).message.replace("gram_loop", function)
    capsys.readouterr()
    assert graded[f"{function}.public"].feedback.startswith(verdict), (graded[f"{function}.public"].feedback, verdict)


@pytest.mark.parametrize("function, words", [
    ("style_loss", "the terms of style layers 3 and 4 (i = 1 and 2) are not multiplied by their weights"),
    ("guided_style_loss", "region 1 never counts"),
])
def test_the_grader_locates_a_wrong_loss_as_the_check_does(graded, function, words):
    assert words in graded[f"{function}.public"].feedback, graded[f"{function}.public"].feedback


def test_the_hidden_tests_locate_on_their_own_inputs(graded):
    """Batches of 3 and 4 images: every image after the first got image 0's masks; other shapes: the terms."""
    assert "image 1 got image 0's masks and image 2 got image 0's masks" in graded["guided_gram_matrix.batch"].feedback
    assert "the vertical differences are counted twice" in graded["tv_loss.shapes"].feedback


def test_a_loop_the_hint_forbids_costs_the_no_loops_test_and_part_of_the_public_one(graded):
    public, no_loops = graded["gram_matrix.public"], graded["gram_matrix.no_loops"]
    assert 0 < public.score < public.spec.points and public.passed_cases == public.total_cases - 1
    assert "the values are right, but the code uses a Python loop" in public.feedback
    assert no_loops.score == no_loops.spec.points / 2 and "Python loop" in no_loops.feedback  # 1 of its 2 cases
    others = [test for test_id, test in graded.items() if test_id.startswith("gram_matrix.")
              and test_id not in ("gram_matrix.public", "gram_matrix.no_loops")]
    assert others and all(test.passed for test in others), [t.feedback for t in others if not t.passed]


def test_the_grader_rejects_an_eps_and_a_loop_in_content_loss(tmp_path, capsys):
    loop = ("def content_loss(content_weight, content_current, content_original):\n"
            "    pairs = zip(content_current, content_original)\n"
            "    return content_weight * sum(((a - b) ** 2).sum() for a, b in pairs)\n")
    graded = _graded(tmp_path, {"content_loss": loop, "guided_gram_matrix": _as(guided_eps, "guided_gram_matrix")},
                     {"content_loss", "guided_gram_matrix"})
    assert "Python loop" in graded["content_loss.no_loops"].feedback and not graded["content_loss.no_loops"].passed
    public = graded["guided_gram_matrix.public"]
    assert public.feedback.startswith(cs.check_guided_gram_matrix(guided_eps).message)
    assert 0 < public.score < public.spec.points  # float32 cannot see an eps of 1e-8: those calls pass
    assert "an eps of about" in graded["guided_gram_matrix.shapes"].feedback
    capsys.readouterr()
