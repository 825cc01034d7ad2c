"""The autograder's spatial-control section (notebook 05: guided_gram_matrix, guided_style_loss).

Its own rubric section, switched off with one line; partial credit with the notebook checks'
diagnoses; guided_style_loss graded on its own (re-run with the grader's guided Gram matrices); a
missing notebook 05 scores 0 on those tests only, with a message saying which notebook to submit.
The photorealism section (notebook 06) is switched off where a test grades without notebook 06
(tests/test_autograder_photorealism.py grades it).
"""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from test_autograder import notebook_with, points_by_function, scores_by_function, solution_sources

from autograder.cases import draw_args, given_guided_grams
from autograder.grader import grade_submission
from autograder.reference import MissingReference, load_reference
from autograder.rubric import DEFAULT_RUBRIC, RubricError, load_rubric, switched_off
from cs231n_style.notebook import GUIDED_FUNCTIONS, PHOTOREALISM_FUNCTIONS, STUDENT_FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
CORE_NOTEBOOKS = ["01_content_loss.ipynb", "02_style_loss.ipynb", "03_tv_loss.ipynb"]


@pytest.fixture(scope="module")
def rubric():
    return load_rubric()


def rubric_with(tmp_path: Path, on: bool, photorealism: bool = True) -> Path:
    """The default rubric with the spatial_control line (and the photorealism line) changed, and nothing else."""
    text = DEFAULT_RUBRIC.read_text()
    for section, value in (("spatial_control", on), ("photorealism", photorealism)):
        line = f"{section} = true"
        assert text.count(line) == 1
        text = text.replace(line, f"{section} = {'true' if value else 'false'}")
    path = tmp_path / "rubric.toml"
    path.write_text(text)
    return path


def test_the_section_has_the_agreed_points(rubric):
    guided = [spec for spec in rubric.tests if spec.function in GUIDED_FUNCTIONS]
    assert {spec.section for spec in guided} == {"spatial_control"}
    assert points_by_function(rubric)["guided_gram_matrix"] == points_by_function(rubric)["guided_style_loss"] == 15
    public = {spec.function: spec.points for spec in guided if spec.kind == "public"}
    assert public == {"guided_gram_matrix": 5, "guided_style_loss": 5}
    assert all(spec.hidden == (spec.kind != "public") for spec in guided)
    assert rubric.max_score == 145 and rubric.functions[-3:] == GUIDED_FUNCTIONS + PHOTOREALISM_FUNCTIONS


def test_one_line_switches_the_section_off(tmp_path):
    off = load_rubric(rubric_with(tmp_path, on=False))
    assert off.max_score == 115 and off.functions == STUDENT_FUNCTIONS + PHOTOREALISM_FUNCTIONS
    assert switched_off(off) == ["spatial_control"]
    assert load_rubric(rubric_with(tmp_path, on=False, photorealism=False)).max_score == 100
    assert [s.id for s in off.tests] == [s.id for s in load_rubric().tests if s.function not in GUIDED_FUNCTIONS]


def test_rubric_sections_are_checked(tmp_path):
    test = '[[tests]]\nid = "x"\nfunction = "guided_gram_matrix"\nkind = "batch"\npoints = 1\n'
    (tmp_path / "r.toml").write_text(test + 'section = "spatial"\n')
    with pytest.raises(RubricError, match=r"section 'spatial' is not in \[sections\]"):
        load_rubric(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text('[sections]\nspatial_control = "no"\n' + test)
    with pytest.raises(RubricError, match="spatial_control must be a boolean"):
        load_rubric(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text(test.replace("guided_gram_matrix", "guided_style_loss"))
    with pytest.raises(RubricError, match="kind 'batch' is for gram_matrix and guided_gram_matrix"):
        load_rubric(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text('[sections]\nspatial_control = false\n' + test + 'section = "spatial_control"\n'
                                     + test.replace('"x"', '"y"'))
    assert [spec.id for spec in load_rubric(tmp_path / "r.toml").tests] == ["y"]


def test_drawn_guided_inputs_keep_the_mistakes_apart():
    for seed in range(100):
        rng = np.random.default_rng(seed)
        features, masks = (leaf["tensor"] for leaf in draw_args("guided_gram_matrix", rng, batch=int(seed % 4) + 1))
        assert masks.shape[0] == features.shape[0] != masks.shape[1] and masks.shape[2:] == features.shape[2:]
        assert features.shape[2] != features.shape[3] and 0.05 <= masks.min() and masks.max() <= 1.0
        feats, layers, targets, weights, content_masks = draw_args("guided_style_loss", rng)
        assert 2 <= len(layers) == len(targets) == len(weights) == len(content_masks) < len(feats)
        assert all(layer > position for position, layer in enumerate(layers)), layers
        regions = content_masks[0]["tensor"].shape[1]
        for layer, target, mask in zip(layers, targets, content_masks, strict=True):
            c = feats[layer]["tensor"].shape[1]
            assert target["tensor"].shape == (1, regions, c, c)
            assert mask["tensor"].shape == (1, regions, *feats[layer]["tensor"].shape[2:])


def _load_runner():
    spec = importlib.util.spec_from_file_location("autograder_runner_for_test", ROOT / "autograder" / "runner.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stand_in_guided_gram_matrix_is_a_lookup_with_the_right_gradient():
    """The runner's stand-in returns the grader's values for the call's own (feats[layer], content_masks[i])
    and back-propagates like the real guided Gram matrix; it computes nothing for other tensors."""
    runner, reference = _load_runner(), load_reference()
    feats_args, layers, _, _, masks_args = draw_args("guided_style_loss", np.random.default_rng(7))
    grams = given_guided_grams(feats_args, layers, masks_args, reference.guided_gram_matrix)
    built = runner._build_grams(grams, torch.float64, "cpu")
    feats = [torch.tensor(leaf["tensor"], requires_grad=True) for leaf in feats_args]
    masks = [torch.tensor(leaf["tensor"]) for leaf in masks_args]
    stand_in = runner.given_guided_gram_matrix(feats, masks, built)
    for i, layer in enumerate(layers):
        for normalize in (True, False):
            mine = stand_in(feats[layer], masks[i], normalize)
            want = reference.guided_gram_matrix(feats[layer], masks[i], normalize)
            torch.testing.assert_close(mine, want, rtol=1e-12, atol=0)
            upstream = torch.randn_like(want, dtype=torch.float64)
            (got,) = torch.autograd.grad(mine, feats[layer], upstream)
            (expected,) = torch.autograd.grad(want, feats[layer], upstream)
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(LookupError, match="content_masks"):
        stand_in(feats[layers[0]], masks[-1] if len(layers) > 1 and masks[-1].shape == masks[0].shape
                 else masks[0] * 0.5)


def _folder(tmp_path: Path, notebooks: list[str]) -> Path:
    folder = tmp_path / "submission"
    folder.mkdir()
    for name in notebooks:
        shutil.copyfile(SOLUTIONS / name, folder / name)
    return folder


def test_without_the_section_notebook_05_is_not_required(tmp_path):
    rubric = load_rubric(rubric_with(tmp_path, on=False, photorealism=False))
    result = grade_submission(_folder(tmp_path, CORE_NOTEBOOKS), rubric, seed=2)
    assert result.score == result.max_score == 100
    assert not any(test.spec.function in GUIDED_FUNCTIONS for test in result.tests)
    assert set(result.where) == set(STUDENT_FUNCTIONS)


def test_with_the_section_a_missing_notebook_05_scores_zero_there_only(tmp_path):
    rubric = load_rubric(rubric_with(tmp_path, on=True, photorealism=False))
    result = grade_submission(_folder(tmp_path, CORE_NOTEBOOKS), rubric, seed=2)
    scores, points = scores_by_function(result), points_by_function(rubric)
    assert {f: scores[f] for f in STUDENT_FUNCTIONS} == {f: points[f] for f in STUDENT_FUNCTIONS}
    assert scores["guided_gram_matrix"] == scores["guided_style_loss"] == 0 and result.max_score == 130
    for test in result.tests:
        if test.spec.function in GUIDED_FUNCTIONS:
            assert "05_controlling_style_transfer.ipynb, which is not in your submission" in test.feedback


def test_a_rubric_grading_what_the_reference_lacks_is_refused(tmp_path, rubric):
    reference = _folder(tmp_path, CORE_NOTEBOOKS)
    with pytest.raises(MissingReference, match="spatial_control = false"):
        grade_submission(reference, rubric, reference_path=reference)
    off = load_rubric(rubric_with(tmp_path, on=False, photorealism=False))
    assert grade_submission(reference, off, reference_path=reference, seed=1).score == 100


GUIDED_GRAM_BY_CHW = '''def guided_gram_matrix(features, masks, normalize=True):
    N, C, H, W = features.shape
    F = features.reshape(N, 1, C, H * W) * masks.reshape(N, masks.shape[1], 1, H * W)
    G = F @ F.transpose(-1, -2)
    return G / (C * H * W) if normalize else G
'''

GUIDED_STYLE_NORMALIZING_ITSELF = '''
def guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks):
    loss = 0
    for i, layer in enumerate(style_layers):
        _, C, H, W = feats[layer].shape
        m2 = (content_masks[i] ** 2).sum(dim=(2, 3)).reshape(1, -1, 1, 1)
        G = guided_gram_matrix(feats[layer], content_masks[i]) * (H * W) / m2
        loss = loss + style_weights[i] * ((G - style_targets[i]) ** 2).sum()
    return loss
'''


@pytest.mark.parametrize("style_loss", ["right", "normalizing itself"])
def test_guided_style_loss_is_graded_on_its_own(tmp_path, rubric, style_loss):
    """A guided Gram matrix divided by C*H*W costs guided_gram_matrix's points only, named; a guided
    style loss that undoes it (so it is right only with that Gram matrix) keeps its own."""
    sources = {**solution_sources(), "guided_gram_matrix": GUIDED_GRAM_BY_CHW}
    if style_loss != "right":
        sources["guided_style_loss"] = GUIDED_STYLE_NORMALIZING_ITSELF
    result = grade_submission(notebook_with(sources, tmp_path / "mine.ipynb"), rubric, seed=8)
    scores, points = scores_by_function(result), points_by_function(rubric)
    # right: re-run with the grader's guided Gram matrices; normalizing itself: right with the student's own
    assert scores["guided_style_loss"] == points["guided_style_loss"], [t.feedback for t in result.tests]
    assert {f: scores[f] for f in STUDENT_FUNCTIONS} == {f: points[f] for f in STUDENT_FUNCTIONS}
    assert scores["guided_gram_matrix"] < points["guided_gram_matrix"] / 2
    public = result.by_id()["guided_gram_matrix.public"]
    assert 0 < public.score < public.spec.points and "divided by C*H*W, as gram_matrix does" in public.feedback


GUIDED_STYLE_ONE_LAYERS_MASKS = '''
def guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks):
    loss = 0
    for i, layer in enumerate(style_layers):
        G = guided_gram_matrix(feats[layer], content_masks[0])
        loss = loss + style_weights[i] * ((G - style_targets[i]) ** 2).sum()
    return loss
'''

GUIDED_STYLE_UNWEIGHTED = '''def guided_style_loss(feats, style_layers, style_targets, style_weights, content_masks):
    return sum(((guided_gram_matrix(feats[L], content_masks[i]) - style_targets[i]) ** 2).sum()
               for i, L in enumerate(style_layers))
'''


@pytest.mark.parametrize("source, words", [
    (GUIDED_STYLE_ONE_LAYERS_MASKS, "content_masks[i] is already resized to style layer i's feature maps"),
    # the pointer names the call with the wrong masks first, then the (right) line it raised in (issue #24)
    (GUIDED_STYLE_ONE_LAYERS_MASKS, "in your code (guided_style_loss), line 4: G = guided_gram_matrix(feats[layer], "
                                    "content_masks[0])\n  (it raised inside guided_gram_matrix, line "),
    (GUIDED_STYLE_UNWEIGHTED, "without the style weights"),
])
def test_a_wrong_guided_style_loss_loses_its_points_with_the_diagnosis(tmp_path, rubric, source, words):
    sources = {**solution_sources(), "guided_style_loss": source}
    result = grade_submission(notebook_with(sources, tmp_path / "mine.ipynb"), rubric, seed=9)
    scores, points = scores_by_function(result), points_by_function(rubric)
    assert scores == {**points, "guided_style_loss": 0.0}
    assert words in result.by_id()["guided_style_loss.public"].feedback


def test_the_gradescope_zip_ships_what_the_rubric_grades(tmp_path):
    from autograder.packaging import build_gradescope_zip

    core = _folder(tmp_path, CORE_NOTEBOOKS)
    with pytest.raises(MissingReference, match=r"05_controlling_style_transfer\.ipynb"):
        build_gradescope_zip(tmp_path / "on.zip", solutions=core)
    assert not (tmp_path / "on.zip").exists()
    build_gradescope_zip(tmp_path / "off.zip", rubric=rubric_with(tmp_path, on=False, photorealism=False),
                         solutions=core)
    with zipfile.ZipFile(tmp_path / "off.zip") as zf:
        assert "spatial_control = false" in zf.read("autograder/rubric.toml").decode()
        assert "def guided_gram_matrix(" not in zf.read("reference_solutions.py").decode()
