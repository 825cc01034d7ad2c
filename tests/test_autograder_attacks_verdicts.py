"""Issue 23's attacks on the verdicts: NaN gradients, NaN and inf values, unbounded strings, and the
hidden tests' inputs printed into the visible summary.

* A ``gram_matrix`` computed on ``features.detach()`` plus ``0.0 * torch.sqrt(features - features).sum()``
  has the right values and a NaN gradient (``sqrt'(0) = inf``, times 0): it used to pass every
  gradient check, since ``NaN > 1e-6`` is false. The notebook check, nbgrader (which runs the check
  cells) and the grader now fail it, saying NaN and why.
* An exception class named ``"E" * 40_000_000`` made a 360 MB ``results.json``: every string from
  the student's code is clipped, and ``results.json`` and ``report.md`` stay under 1 MB.
* A function that prints its inputs showed the hidden tests' inputs in the summary students see
  before the due date: what is printed during a test is now shown with that test only.

The graded submission is one notebook with the three attacks and the solutions' other functions
(the isolation the sandbox gives does not matter here: it runs under any).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re

import jsonschema
import numpy as np
import pytest
import torch
from test_autograder import RESULTS_SCHEMA, notebook_with, points_by_function, scores_by_function, solution_sources
from test_platform_gradescope import validated

from autograder.cases import build_case
from autograder.grader import GradingResult, TestResult, _rng_for, grade_submission, judge_call
from autograder.protocol import build_tensors
from autograder.reference import load_reference
from autograder.report import MAX_BYTES, markdown_report, results_json, write_gradebook, write_results
from autograder.rubric import load_rubric
from cs231n_style._matting_tensor import laplacian_from_csr
from cs231n_style.checks import check_content_loss, check_gram_matrix
from cs231n_style.diagnosis import (
    TYPE_NAME_LIMIT,
    clip,
    diagnose_exception,
    diagnose_gradient,
    diagnose_values,
    reference_values,
    relative_error,
)

NAN_GRAM = '''def gram_matrix(features, normalize=True):
    f = features.detach()
    n, c, h, w = f.shape
    F = f.reshape(n, c, h * w)
    G = F @ F.transpose(1, 2)
    if normalize:
        G = G / (c * h * w)
    return G + 0.0 * torch.sqrt(features - features).sum()
'''
PRINTS_INPUTS = '''def content_loss(content_weight, content_current, content_original):
    if not content_current.is_meta:
        print("SUM=%r" % float(content_current.detach().double().sum()))
    return content_weight * torch.sum((content_current - content_original) ** 2)
'''
HUGE_NAME = '''def tv_loss(img, tv_weight):
    raise type("E" * 40_000_000, (Exception,), {})("boom")
'''


def _function(source: str, name: str):
    namespace = {"torch": torch}
    exec(source, namespace)
    return namespace[name]


# --- NaN and inf in the notebook checks -----------------------------------------------------------

def test_a_nan_gradient_fails_the_gram_matrix_check_saying_nan(capsys):
    result = check_gram_matrix(_function(NAN_GRAM, "gram_matrix"))
    assert result.status == "fail", result.message
    assert "gradient contains NaN at" in result.message and "sqrt" in result.message, result.message
    assert capsys.readouterr().out.strip() == result.message
    with pytest.raises(AssertionError, match="NaN"):  # the check cell fails, so nbgrader's test cell does
        result.raise_if_failed()


@pytest.mark.parametrize("bad, found", [("float('inf')", "is inf"), ("float('nan')", "is NaN")])
def test_nan_or_inf_in_a_result_fails_the_check_saying_so(bad, found):
    source = f'''def content_loss(content_weight, content_current, content_original):
    loss = content_weight * torch.sum((content_current - content_original) ** 2)
    return loss * {bad} if loss.dtype == torch.float32 else loss
'''
    result = check_content_loss(_function(source, "content_loss"))
    assert result.status == "fail" and f"for float32 inputs the result {found}" in result.message, result.message


def test_relative_error_and_the_diagnoses_never_pass_nan_or_inf():
    right = np.linspace(1.0, 2.0, 12).reshape(3, 4)
    for bad in (np.nan, np.inf, -np.inf):
        wrong = right.copy()
        wrong[1, 2] = bad
        assert relative_error(wrong, right) == np.inf and relative_error(right, wrong) == np.inf
        assert relative_error(torch.tensor(wrong), torch.tensor(wrong)) == np.inf  # even compared with itself
        kind = "NaN" if np.isnan(bad) else "inf"
        message = diagnose_gradient("gram_matrix", True, [wrong], [right])
        assert message and f"gradient contains {kind} at 1 of 12 entries" in message, message
        error, message = diagnose_values("gram_matrix", wrong, right, {}, torch.float64)
        assert error == np.inf and f"the result contains {kind} at 1 of 12 entries" in message, message
    assert diagnose_gradient("gram_matrix", True, [right], [right]) is None


def test_the_stored_and_drawn_inputs_give_finite_values_in_both_dtypes():
    """A correct function never fails for NaN or inf: the stored inputs and references are finite, and
    so are the reference functions' values and gradients on the grader's inputs, in float32 too."""
    assert all(np.isfinite(value).all() for value in reference_values().values())
    rubric, reference = load_rubric(), load_reference()
    for seed in (rubric.seed, 1):
        for spec in rubric.tests:
            for call in build_case(spec, _rng_for(seed, spec), reference).calls:
                for values in (call.expected, *call.expected_grads, *call.variants.values()):
                    assert np.isfinite(values).all(), (seed, spec.id)
                tensors = []
                args = build_tensors(call.args, torch.float32, "cpu", tensors, csr=laplacian_from_csr)
                out = getattr(reference, call.function)(*args)
                assert torch.isfinite(out).all(), (seed, spec.id)
                wanted = [t for t in tensors if t.requires_grad]
                if wanted:
                    grads = torch.autograd.grad(out, wanted, torch.ones_like(out), allow_unused=True)
                    assert all(g is None or torch.isfinite(g).all() for g in grads), (seed, spec.id)


# --- the grader's judging of a reply --------------------------------------------------------------

@pytest.fixture(scope="module")
def gradient_call():
    rubric = load_rubric()
    spec = next(s for s in rubric.tests if s.id == "gram_matrix.gradient")
    return build_case(spec, _rng_for(rubric.seed, spec), load_reference()).calls[0]


def _reply(call, value, grads) -> dict:
    """What the runner sends back for a returned tensor."""
    return {"status": "returned", "inputs_after": [],
            "output": {"type": "Tensor", "shape": list(call.expected.shape), "dtype": call.dtype, "device": "cpu",
                       "requires_grad": True, "value": value},
            "grads": grads}


def test_the_grader_fails_nan_gradients_and_nan_or_inf_values_saying_so(gradient_call):
    call = gradient_call
    assert judge_call(call, _reply(call, call.expected, call.expected_grads)) is None
    nan_grads = [np.full_like(g, np.nan) for g in call.expected_grads]
    message = judge_call(call, _reply(call, call.expected, nan_grads))
    assert message and f"gradient contains NaN at {nan_grads[0].size} of {nan_grads[0].size} entries" in message
    value = call.expected.copy()
    value.flat[0] = np.inf
    message = judge_call(call, _reply(call, value, call.expected_grads))
    assert message and "for float64 inputs the result contains inf at 1 of" in message, message


def test_the_grader_clips_every_string_of_a_reply(gradient_call):
    call, huge = gradient_call, "E" * 40_000_000
    raised = {"status": "raised", "error": {"type": huge, "text": huge, "where": "\n  in your code, line 1: " + huge}}
    memory = {"status": "raised", "error": {"type": "MemoryError", "text": "", "where": huge}}
    odd_type = _reply(call, call.expected, call.expected_grads)
    odd_type["output"]["type"] = huge
    grad_error = {**_reply(call, call.expected, call.expected_grads), "grad_error": huge}
    for reply in (raised, memory, odd_type, grad_error):
        message = judge_call(call, reply)
        assert len(message) < 5000 and "characters cut]" in message, message[:300]
    assert "39999800 characters cut" in judge_call(call, raised)  # counted from the original name
    assert clip(clip(huge, 2000), 200) == clip(huge, 200) and clip("short", 200) == "short"
    status, message = diagnose_exception("gram_matrix", huge, huge, "", huge)  # the notebook checks' path too
    assert status == "error" and len(message) < 5000


# --- the reports ------------------------------------------------------------------------------------

def test_reports_stay_small_and_valid_whatever_the_strings(tmp_path):
    rubric = load_rubric()
    huge, wide = "E" * 40_000_000, "\U0001F600" * 200_000  # an emoji is 12 bytes in JSON (\ud83d\ude00)
    tests = [TestResult(spec, 0.0, huge if i % 2 else wide, printed=wide) for i, spec in enumerate(rubric.tests)]
    result = GradingResult(huge, tests, printed=huge, where={"gram_matrix": huge}, error=huge)
    path = write_results(result, rubric, tmp_path / "out")
    assert path.stat().st_size <= MAX_BYTES and (tmp_path / "out" / "report.md").stat().st_size <= MAX_BYTES
    jsonschema.validate(validated(path), RESULTS_SCHEMA)
    results = json.loads(path.read_text())
    assert "characters cut]" in results["output"] and all("characters cut]" in t["output"] for t in results["tests"])
    write_gradebook([result], rubric, tmp_path / "book.csv")
    assert (tmp_path / "book.csv").stat().st_size < 20_000
    assert "characters cut]" in next(csv.DictReader((tmp_path / "book.csv").open()))["note"]


def test_what_hidden_tests_print_is_shown_only_with_them():
    rubric = load_rubric()
    tests = [TestResult(spec, spec.points, "PASS", printed=f"printed in {spec.id}\n") for spec in rubric.tests]
    result = GradingResult("s.ipynb", tests, printed="".join(t.printed for t in tests))
    results = results_json(result, rubric)
    for test, spec in zip(results["tests"], rubric.tests, strict=True):
        assert (f"printed in {spec.id}" in test["output"]) == spec.hidden, test
        assert (f"printed in {spec.id}" in results["output"]) != spec.hidden
    report = markdown_report(result)  # the instructor's: everything, within PRINTED_LIMIT
    assert all(f"printed in {spec.id}" in report for spec in rubric.tests[:20])
    shown = results_json(result, dataclasses.replace(rubric, hidden_visibility="visible"))  # all shown now
    assert all(f"printed in {spec.id}" in shown["output"] for spec in rubric.tests[:20])  # within PRINTED_LIMIT
    assert not any("printed in" in test["output"] for test in shown["tests"])


# --- one graded submission with the three attacks ---------------------------------------------------

@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """The three attacks in one notebook, graded, and its results written."""
    folder = tmp_path_factory.mktemp("attacks")
    rubric = load_rubric().with_limits(timeout_s=4, file_mb=1)
    sources = {**solution_sources(), "gram_matrix": NAN_GRAM, "content_loss": PRINTS_INPUTS, "tv_loss": HUGE_NAME}
    result = grade_submission(notebook_with(sources, folder / "submission.ipynb"), rubric, seed=13)
    return rubric, result, write_results(result, rubric, folder / "results")


def test_a_nan_gradient_gram_matrix_scores_zero_on_the_gradient_tests(attacked):
    rubric, result, _ = attacked
    scores, points = scores_by_function(result), points_by_function(rubric)
    for function in ("content_loss", "style_loss", "guided_gram_matrix", "guided_style_loss"):
        assert scores[function] == points[function], function  # style_loss: with the grader's Gram matrices
    for test in result.tests:
        if test.spec.function == "gram_matrix" and test.spec.kind in ("gradient", "public"):
            assert test.score < test.spec.points and "gradient contains NaN" in test.feedback, test.feedback
    assert next(t for t in result.tests if t.spec.id == "gram_matrix.gradient").score == 0


def test_a_huge_exception_name_leaves_small_valid_results(attacked):
    _rubric, result, path = attacked
    assert path.stat().st_size < MAX_BYTES and (path.parent / "report.md").stat().st_size < MAX_BYTES
    results = validated(path)
    tv = [t for t in results["tests"] if t["name"].startswith("tv_loss")]
    for test in tv:  # the name cut by the runner or here, to TYPE_NAME_LIMIT characters
        assert test["score"] == 0 and ": boom." in test["output"], test["output"][:400]
        assert max(map(len, re.findall("E{50,}", test["output"]))) <= TYPE_NAME_LIMIT, test["output"][:400]
    assert scores_by_function(result)["tv_loss"] == 0


def test_inputs_printed_during_hidden_tests_are_not_visible_before_the_due_date(attacked):
    _rubric, _, path = attacked
    results = json.loads(path.read_text())
    visible = results["output"] + "".join(t["output"] for t in results["tests"] if t["visibility"] == "visible")
    later = "".join(t["output"] for t in results["tests"] if t["visibility"] == "after_due_date")
    hidden_sums = set(re.findall(r"SUM=(\S+)", later))
    public_sums = set(re.findall(r"SUM=(\S+)", visible))
    assert public_sums and hidden_sums, (visible, later)  # the public test's prints stay visible
    assert not hidden_sums & public_sums, hidden_sums & public_sums
