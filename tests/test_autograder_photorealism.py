"""The autograder's photorealism section (notebook 06: photorealism_loss; Luan et al., CVPR 2017, Sec. 3.1).

Its own rubric section, switched off with one line as spatial_control; the student's function gets the
Matting Laplacian as the notebook gives it (a ``MattingLaplacian`` that refuses ``.to_dense()``),
through the sandbox; the expected values are checked here against an independent float64 NumPy
computation (a dense Laplacian of a tiny image); typical mistakes lose points with the notebook
check's named verdicts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_autograder import notebook_with, points_by_function, solution_sources
from test_autograder_guided import rubric_with

from autograder.cases import build_case, draw_args, public_args
from autograder.grader import grade_submission
from autograder.reference import MissingReference, load_reference
from autograder.rubric import RubricError, load_rubric, switched_off
from autograder.variants import mistake_variants
from cs231n_style.notebook import PHOTOREALISM_FUNCTIONS
from cs231n_style.photorealism import DenseLaplacianError

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
NOTEBOOK_06 = "06_photorealistic_style_transfer.ipynb"


@pytest.fixture(scope="module")
def rubric():
    return load_rubric()


def only_photorealism(rubric):
    """The rubric's photorealism tests alone (grading them needs only notebook 06's function)."""
    import dataclasses

    return dataclasses.replace(rubric, tests=tuple(t for t in rubric.tests if t.function in PHOTOREALISM_FUNCTIONS))


def test_the_section_has_its_points_and_one_line_switches_it_off(tmp_path, rubric):
    specs = [spec for spec in rubric.tests if spec.function == "photorealism_loss"]
    assert {spec.section for spec in specs} == {"photorealism"}
    assert points_by_function(rubric)["photorealism_loss"] == 15
    assert [spec.points for spec in specs if spec.kind == "public"] == [5]
    assert all(spec.hidden == (spec.kind != "public") for spec in specs)
    off = load_rubric(rubric_with(tmp_path, on=True, photorealism=False))
    assert switched_off(off) == ["photorealism"] and "photorealism_loss" not in off.functions
    assert off.max_score == 130 == rubric.max_score - 15  # the maximum with it off is unchanged
    assert [s.id for s in off.tests] == [s.id for s in rubric.tests if s.function != "photorealism_loss"]


def test_the_schema_refuses_a_device_test_of_the_sparse_loss(tmp_path):
    test = '[[tests]]\nid = "x"\nfunction = "photorealism_loss"\nkind = "device"\npoints = 1\n'
    (tmp_path / "r.toml").write_text(test)
    with pytest.raises(RubricError, match="photorealism_loss has no 'device' test"):
        load_rubric(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text(test.replace('"device"', '"gradient"'))
    assert load_rubric(tmp_path / "r.toml").max_score == 1


def _dense(leaf: dict) -> np.ndarray:
    """The sparse leaf as a dense float64 NumPy matrix (tiny images only)."""
    parts = leaf["csr"]
    n = parts["size"][0]
    dense = np.zeros((n, n))
    for row in range(n):
        start, end = parts["crow_indices"][row], parts["crow_indices"][row + 1]
        dense[row, parts["col_indices"][start:end]] = parts["values"][start:end]
    return dense


def test_expected_values_and_gradients_match_an_independent_float64_computation(rubric):
    """For each test's drawn inputs: expected = weight * sum_c V_c^T M V_c and gradient 2 * weight * M V_c,
    with M dense (NumPy), V_c channel c flattened row by row; the Laplacian is symmetric with rows summing to 0."""
    reference, seen = load_reference(), 0
    for spec in (s for s in rubric.tests if s.function == "photorealism_loss"):
        case = build_case(spec, np.random.default_rng(5), reference)
        for call in case.calls:
            img, leaf, weight = call.args[0]["tensor"], call.args[1], call.args[2]
            m = _dense(leaf)
            assert m.shape == (img.shape[2] * img.shape[3],) * 2 and img.shape[2] != img.shape[3]
            np.testing.assert_allclose(m, m.T, atol=1e-9)
            np.testing.assert_allclose(m.sum(axis=1), 0, atol=1e-6)
            v = img[0].reshape(3, -1)
            expected = weight * np.einsum("ci,ij,cj->", v, m, v)
            np.testing.assert_allclose(call.expected, expected, rtol=1e-9)
            if call.check_grad:
                np.testing.assert_allclose(call.expected_grads[0], (2 * weight * v @ m).reshape(img.shape),
                                           rtol=1e-8, atol=1e-10)
            seen += 1
    assert seen >= 15


def test_the_public_test_is_the_notebook_checks_inputs_and_the_variants_differ():
    (img, leaf, weight), = public_args("photorealism_loss")
    assert img["tensor"].shape == (1, 3, 6, 9) and weight == 2.5
    for seed in range(20):
        img, leaf, weight = draw_args("photorealism_loss", np.random.default_rng(seed))
        variants = mistake_variants("photorealism_loss", img["tensor"], leaf, weight)
        values = np.array([float(v) for v in variants.values()])
        v = img["tensor"][0].reshape(3, -1)
        right = weight * np.einsum("ci,ij,cj->", v, _dense(leaf), v)
        assert 3 <= img["tensor"].shape[2] != img["tensor"].shape[3] >= 3 and 0.1 <= weight <= 1000
        assert np.all(np.abs(values / right - 1) > 1e-3), variants  # every mistake gives another value


def _with_06(tmp_path: Path, source: str | None = None) -> Path:
    """A submission: the solution notebook 06, with ``photorealism_loss`` replaced by ``source`` if given."""
    if source is None:
        folder = tmp_path / "submission"
        folder.mkdir()
        shutil.copyfile(SOLUTIONS / NOTEBOOK_06, folder / NOTEBOOK_06)
        return folder
    return notebook_with({"photorealism_loss": source}, tmp_path / "mine.ipynb")


def test_the_solution_scores_full_marks_and_a_missing_notebook_06_zero(tmp_path, rubric):
    section = only_photorealism(rubric)
    result = grade_submission(_with_06(tmp_path), section, seed=4)
    assert result.score == result.max_score == 15, [t.feedback for t in result.tests]
    empty = notebook_with({"content_loss": solution_sources()["content_loss"]}, tmp_path / "nothing.ipynb")
    result = grade_submission(empty, section, seed=4)
    assert result.score == 0 and f"{NOTEBOOK_06}, which is not in your submission" in result.tests[0].feedback


def _loss(body: str) -> str:
    return f"def photorealism_loss(img, laplacian, weight):\n    V = img.reshape(3, -1).T\n{body}"


MISTAKES = {
    "one channel only": (_loss("    v = V[:, :1]\n    return weight * (v * (laplacian @ v)).sum()\n"),
                         "counts one colour channel only"),
    "no quadratic form": (_loss("    return weight * (laplacian @ V).sum()\n"), "the result is 0 (up to rounding)"),
    "no transpose (all channel pairs)": (_loss("    return weight * (V.T @ (laplacian @ V)).sum()\n"),
                                         "over all nine pairs of channels"),
    "no Laplacian": (_loss("    return weight * (V ** 2).sum()\n"), "the Matting Laplacian is not used"),
    "dense": (_loss("    return weight * (V * (laplacian.to_dense() @ V)).sum()\n"),
              "it made the Laplacian dense (.to_dense())"),
    "detach": (_loss("    return weight * (V.detach() * (laplacian @ V)).sum()\n"),
               "the gradient is half of what it should be"),
    "weight missing": (_loss("    return (V * (laplacian @ V)).sum()\n"), "off by exactly the weight"),
    "column by column": ("def photorealism_loss(img, laplacian, weight):\n"
                         "    V = img.transpose(2, 3).reshape(3, -1).T\n"
                         "    return weight * (V * (laplacian @ V)).sum()\n", "numbered column by column"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_mistake_loses_points_with_its_named_verdict(tmp_path, rubric, mistake):
    source, words = MISTAKES[mistake]
    result = grade_submission(_with_06(tmp_path, source), only_photorealism(rubric), seed=6)
    public = result.by_id()["photorealism_loss.public"]
    assert public.score < public.spec.points and words in public.feedback, public.feedback
    assert result.score < result.max_score
    if mistake == "detach":  # right values: only the gradient cases fail
        assert result.by_id()["photorealism_loss.gradient"].score == 0
        assert result.by_id()["photorealism_loss.dtypes"].score == 1
    else:
        assert result.score <= result.max_score / 2, [t.feedback for t in result.tests]


def test_the_sandboxed_function_gets_a_laplacian_that_refuses_to_become_dense():
    """The runner builds the same tensor type as the notebook (loaded by path, without the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("autograder_runner_for_test", ROOT / "autograder" / "runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    img, leaf, weight = draw_args("photorealism_loss", np.random.default_rng(1))
    laplacian = runner._matting_laplacian(*(torch.from_numpy(leaf["csr"][k]) for k in ("crow_indices", "col_indices",
                                                                                       "values")),
                                          tuple(leaf["csr"]["size"]), torch.float32, "cpu")
    assert laplacian.dtype == torch.float32 and laplacian.layout == torch.sparse_csr
    with pytest.raises(Exception, match="must stay sparse") as raised:
        laplacian.to_dense()
    assert type(raised.value).__name__ == DenseLaplacianError.__name__
    namespace = {}
    exec(MISTAKES["weight missing"][0], {"torch": torch}, namespace)
    reply = runner.run_call({**namespace}, {"function": "photorealism_loss", "args": [img, leaf, weight],
                                            "dtype": "float64", "grad": True})
    assert reply["status"] == "returned" and reply["grads"][0].shape == img["tensor"].shape
    assert len(reply["inputs_after"]) == 1  # the image; the Laplacian is not read back


def test_a_rubric_grading_notebook_06_needs_it_in_the_reference(tmp_path, rubric):
    folder = tmp_path / "reference"
    folder.mkdir()
    for name in ("01_content_loss.ipynb", "02_style_loss.ipynb", "03_tv_loss.ipynb",
                 "05_controlling_style_transfer.ipynb"):
        shutil.copyfile(SOLUTIONS / name, folder / name)
    with pytest.raises(MissingReference, match=f"{NOTEBOOK_06}.*photorealism = false"):
        grade_submission(folder, rubric, reference_path=folder)
