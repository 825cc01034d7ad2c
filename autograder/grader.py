"""Grade a submission: run each rubric test's calls in the sandbox and judge the replies here.

Judging uses the notebook checks' own diagnosis (``cs231n_style.diagnosis.diagnose_*``), so a
student reads the same explanation ("off by exactly a factor C*H*W", "no gradient flows back",
"NOT IMPLEMENTED YET", ...) in the notebook and in the grade. A test's points are split evenly
over its cases (calls and source checks); the feedback quotes the first failure.

Each of the student's functions runs in a fresh sandboxed process (:mod:`autograder.sandbox`), so
one function's monkey-patching cannot touch another's grading, and one function's failure costs
only its own tests: a function that is missing or does not parse fails its tests without running;
a timeout or crash (exit, kill, limit) fails that test and skips the function's remaining tests.

``style_loss`` is graded on its own: a call that fails with the student's ``gram_matrix`` (wrong
values or shape, an exception, a timeout, a crash) is run again with ``gram_matrix`` standing for a
lookup of the Gram matrices of that call's own feature maps, computed here by the reference
(:func:`autograder.cases.given_grams`); after a timeout or crash that the lookup avoids, the
remaining calls use the lookup directly. No correct function ever runs in the student's process.
``guided_style_loss`` (notebook 05) is graded on its own the same way, with the grader's guided
Gram matrices of its style layers' feature maps and masks in place of the student's
``guided_gram_matrix`` (:func:`autograder.cases.given_guided_grams`).

``photorealism_loss`` (notebook 06) is judged with its notebook check's own verdicts
(``cs231n_style.photorealism``: the value each typical mistake gives, a result of 0, half the
gradient, a Laplacian made dense).

Only the functions the rubric grades are looked for (:attr:`autograder.rubric.Rubric.functions`):
with the rubric's ``spatial_control`` section switched off, notebook 05 is neither required nor
graded (``photorealism``: notebook 06). With it on, a submission without notebook 05 scores 0 on
those tests, and the feedback says which notebook to submit.

Hidden inputs are drawn at grading time from one seed per grading run (the rubric's ``[grading]
seed`` unless overridden), the same for every submission: the same code always gets the same grade.

``grade_batch`` grades many submissions in parallel (threads; each grading's work is in its own
child processes).
"""

from __future__ import annotations

import os
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cs231n_style.diagnosis import (
    clip,
    diagnose_exception,
    diagnose_gradient,
    diagnose_output,
    diagnose_unmodified,
    diagnose_values,
)
from cs231n_style.notebook import NOTEBOOK_OF
from cs231n_style.photorealism import dense_verdict, diagnose_photorealism_gradient, diagnose_photorealism_value

from .cases import Call, arrays, build_case, leaves
from .reference import default_reference_path, load_reference, require_reference
from .rubric import DEFAULT_RUBRIC, Rubric, TestSpec, load_rubric
from .sandbox import Sandbox, SandboxFailure
from .submission import READ_TIME_S, StudentCode, SubmissionError, code_pieces, read_submission

__all__ = ["GradingResult", "TestResult", "grade_batch", "grade_submission", "judge_call"]



@dataclass
class TestResult:
    """The outcome of one rubric test.

    Attributes:
        spec: the rubric's test.
        score: the points earned, ``0 <= score <= spec.points``.
        feedback: what the student reads (PASS, or the first failure's verdict).
        passed_cases, total_cases: the test's cases that passed, and all of them.
        printed: what the student's code printed during this test (part of the sandbox's 4 KB;
            shown, never parsed): with the test's own visibility, since a hidden test's inputs
            may be in it.
    """

    __test__ = False  # not a pytest test class

    spec: TestSpec
    score: float
    feedback: str
    passed_cases: int = 0
    total_cases: int = 0
    printed: str = ""

    @property
    def passed(self) -> bool:
        return self.score >= self.spec.points


@dataclass
class GradingResult:
    """A graded submission.

    Attributes:
        submission: its name (file or folder name).
        tests: one :class:`TestResult` per rubric test, in rubric order.
        execution_time: seconds the grading took.
        seed: the seed the hidden inputs were drawn with (the rubric's, unless overridden).
        measures: the sandbox measures applied.
        printed: the start of what the student's code printed (shown, never parsed), all of it: the
            instructor's report shows it; students see each test's part with that test
            (:attr:`TestResult.printed`).
        where: function -> the notebook it was found in.
        error: why nothing could be graded (no notebook found, ...), or ``""``.
        skipped: entries of the submission that were not read, each ``"NAME is why"`` (a symbolic
            link, a hard link, a special file, a notebook too large); shown in the feedback.
    """

    submission: str
    tests: list[TestResult]
    execution_time: float = 0.0
    seed: int = 0
    measures: list[str] = field(default_factory=list)
    printed: str = ""
    where: dict = field(default_factory=dict)
    error: str = ""
    skipped: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 4)

    @property
    def max_score(self) -> float:
        return sum(t.spec.points for t in self.tests)

    def by_id(self) -> dict[str, TestResult]:
        return {t.spec.id: t for t in self.tests}


# --- judging one call ---------------------------------------------------------------------------

_META_HINT = (" (The grader ran your function with its inputs on another device, PyTorch's 'meta' device: "
              "create new tensors on the inputs' device - device=x.device, torch.zeros_like(x) - and avoid "
              ".cpu(), .cuda(), .numpy() and .item().)")


def _dtype(name) -> torch.dtype | None:
    value = getattr(torch, str(name).removeprefix("torch."), None) if isinstance(name, str) else None
    return value if isinstance(value, torch.dtype) else None


#: Longest text taken from the student's process: a string in a reply, a load error, an extraction
#: problem (the runner cuts exception messages too; this is the grader's own guard).
STUDENT_TEXT_LIMIT = 2000


def _clip_reply(reply) -> dict:
    """A reply (anything but a dict: an empty one) with every string in it and in its dicts clipped to
    :data:`STUDENT_TEXT_LIMIT` (:func:`cs231n_style.diagnosis.clip`): an exception's type name, its
    message or the line that raised can be of any length, and a dict's arrays are left as they are."""
    def clipped(node):
        if isinstance(node, str):
            return clip(node, STUDENT_TEXT_LIMIT)
        if isinstance(node, dict):
            return {key: clip(value, STUDENT_TEXT_LIMIT) if isinstance(value, str) else value
                    for key, value in node.items()}
        return node

    return {key: clipped(value) for key, value in reply.items()} if isinstance(reply, dict) else {}


def judge_call(call: Call, reply: dict, memory_mb: float | None = None, own_gram: bool = True,
               probe=None) -> str | None:
    """The failure message for one call's reply from the sandbox, or ``None`` if it passed.

    Args:
        call: the call, with its expected values (:func:`autograder.cases.build_case`).
        reply: what the runner sent back (see :mod:`autograder.runner`).
        memory_mb: the sandbox's memory limit, named when the call raised ``MemoryError``.
        own_gram: ``False`` when ``style_loss`` (``guided_style_loss``) ran with the grader's Gram
            matrices instead of the student's ``gram_matrix`` (``guided_gram_matrix``): the message
            then does not blame the Gram matrix.
        probe: a ``cs231n_style.diagnosis.Probe`` of the student's function in the sandbox
            (:func:`_prober`): a wrong value is then located as the notebook check locates it (which
            image, region, layer or term); ``None``: not probed (the gradients may still say).

    Returns:
        The failure message (in the notebook checks' words), or ``None``. Text from the reply is
        clipped first (:data:`STUDENT_TEXT_LIMIT`); a NaN or inf in the values or the gradients fails.
    """
    name, dtype, expected = call.function, _dtype(call.dtype), call.expected
    if dtype is None or expected is None:  # the grader's own mistake, never the student's
        raise ValueError(f"a call of {name} without a torch dtype or expected values: make it with "
                         "autograder.cases.build_case")
    message: str | None
    reply = _clip_reply(reply)
    status = reply.get("status")
    if reply.get("oom_kills"):
        limit = f" of {memory_mb:g} MB" if memory_mb else ""
        return (f"{name}: FAIL - the processes your code started went over the sandbox's memory limit{limit} "
                f"together, and the system killed {reply['oom_kills']} of them. Don't start processes, and don't "
                "allocate huge tensors.")
    if status == "missing":
        return f"{name}: FAIL - {name} could not be defined from your notebook."
    inputs = call.input_arrays()
    shapes = ", ".join(str(tuple(a.shape)) for a in inputs)
    if status == "raised":
        error = reply["error"] if isinstance(reply.get("error"), dict) else {}
        if error.get("type") == "MemoryError":
            limit = f" of {memory_mb:g} MB" if memory_mb else ""
            return (f"{name}: FAIL - it hit the sandbox's memory limit{limit} (MemoryError): it allocated "
                    f"far more than these inputs ({shapes}) need. Don't build huge tensors."
                    + str(error.get("where", "")))
        if name == "photorealism_loss" and error.get("type") == "DenseLaplacianError":
            return dense_verdict(name, str(error.get("text")), str(error.get("where", "")))
        _, message = diagnose_exception(name, str(error.get("type")), str(error.get("text")), shapes,
                                        str(error.get("where", "")))
        return message + (_META_HINT if call.device == "meta" else "")
    if status != "returned" or not isinstance(reply.get("output"), dict):
        return f"{name}: FAIL - the grader got no usable answer for this call."
    out = reply["output"]
    input_shape = tuple(inputs[0].shape) if name == "gram_matrix" else None
    if name == "guided_gram_matrix" and len(inputs) > 1 and inputs[0].ndim == 4 and inputs[1].ndim == 4:
        input_shape = (inputs[0].shape[0], inputs[1].shape[1], *inputs[0].shape[1:])  # (N, R, C, H, W)
    shape = tuple(out.get("shape") or ()) if isinstance(out.get("shape"), list) else ()
    cut = bool(call.check_grad) and not out.get("requires_grad")
    message = diagnose_output(name, str(out.get("type")), shape, _dtype(out.get("dtype")), expected.shape, dtype,
                              input_shape, cut)
    if message:
        return message
    if call.device == "meta":
        if out.get("device") != "meta":
            return (f"{name}: FAIL - for inputs on another device ('meta') it returned a tensor on "
                    f"{out.get('device')!r}: don't hard-code a device; compute on the inputs' device.")
        return None
    value = out.get("value")
    if not isinstance(value, np.ndarray) or value.shape != expected.shape:
        return f"{name}: FAIL - the grader could not read the returned values."
    if call.check_unmodified:
        after = reply.get("inputs_after") or []
        if len(after) != len(inputs) or any(not isinstance(a, np.ndarray) or a.shape != b.shape
                                            for a, b in zip(after, inputs, strict=True)):
            return f"{name}: FAIL - the grader could not read the inputs back after the call."
        before = [torch.tensor(a, dtype=dtype).double() for a in inputs]
        message = diagnose_unmodified(name, before, [torch.from_numpy(a) for a in after])
        if message:
            return message
    grads = reply.get("grads") if call.check_grad and isinstance(reply.get("grads"), list) else None
    if grads is not None and len(grads) != len(call.expected_grads):
        grads = None
    if name == "photorealism_loss":  # notebook 06's check's own verdicts (cs231n_style.photorealism)
        _, message = diagnose_photorealism_value(name, value, float(expected),
                                                 {key: float(v) for key, v in call.variants.items()}, dtype)
    else:
        _, message = diagnose_values(name, value, expected, call.variants, dtype, own_gram,
                                     args=arrays(call.args), probe=probe, grads=grads,
                                     expected_grads=call.expected_grads if grads else None)
    if message:
        return message
    if call.check_grad:
        if reply.get("grad_error"):
            return f"{name}: FAIL - the values are right but computing the gradient failed: {reply['grad_error']}"
        diagnose = diagnose_photorealism_gradient if name == "photorealism_loss" else diagnose_gradient
        return diagnose(name, bool(out.get("requires_grad")), grads or [None] * len(call.expected_grads),
                        call.expected_grads)
    return None


def _prober(box: Sandbox, function: str, deadline: float):
    """A ``cs231n_style.diagnosis.Probe`` of the student's ``function`` in the sandbox: float64 calls on the
    CPU, no gradient; ``None`` for anything but a returned tensor. Probing stops at the first call that
    fails (a timeout, a crash) and at ``deadline`` (``time.monotonic()``)."""
    broken: list[bool] = []

    def probe(args: list):
        if broken or time.monotonic() > deadline:
            return None
        request = {"function": function, "args": leaves(args), "dtype": "float64", "device": "cpu", "grad": False,
                   "upstream": None}
        try:
            reply = box.call(request)
        except SandboxFailure:
            broken.append(True)
            return None
        out = reply.get("output") if reply.get("status") == "returned" else None
        value = out.get("value") if isinstance(out, dict) and out.get("type") == "Tensor" else None
        return value if isinstance(value, np.ndarray) else None

    return probe


# --- one test -------------------------------------------------------------------------------------

class _Stop(Exception):
    """A timeout or crash: the function's remaining tests are skipped."""


def _failure_message(function: str, failure: SandboxFailure, timeout_s: float) -> str:
    if failure.kind == "timeout":
        return (f"{function}: FAIL - it did not finish within {timeout_s:g} s (an infinite loop, or far too slow?). "
                f"The remaining tests of {function} were not run.")
    if failure.kind == "crashed":
        return (f"{function}: FAIL - the process running your code stopped during this test: {failure.detail}. "
                "Don't call sys.exit()/os._exit()/exit() in your functions, and don't allocate huge tensors. "
                f"The remaining tests of {function} were not run.")
    return (f"{function}: FAIL - your code interfered with the grader's communication ({failure.detail}). "
            f"The remaining tests of {function} were not run.")


#: What each property test checks, for its feedback when the values are wrong (see _run_test).
PROPERTIES = {
    "unmodified": "leaves its inputs unmodified",
    "tensor": "returns a torch.Tensor of the right shape and dtype",
    "device": "hard-codes no device",
    "no_loops": "uses no Python loops",
}


def _over_time(function: str, limit_s: float) -> str:
    """The feedback of a test not graded because the submission's time limit was reached."""
    return (f"{function}: FAIL - not graded: grading this submission took longer than its limit of {limit_s:g} s "
            "(the rubric's [sandbox] submission_s); the tests graded before it keep their points.")


def _call(box: Sandbox, request: dict, function: str, deadline: float = float("inf")) -> dict:
    """``box.call(request)``; a failure, or ``time.monotonic()`` past ``deadline``, raises :class:`_Stop`."""
    if time.monotonic() > deadline:
        raise _Stop(_over_time(function, box.limits.submission_s))
    try:
        return box.call(request)
    except SandboxFailure as failure:
        raise _Stop(_failure_message(function, failure, box.limits.timeout_s)) from None


@dataclass
class _StyleState:
    """Whether ``style_loss`` (``guided_style_loss``) still runs with the student's own Gram matrix
    function first (see _judge), and the submission's deadline (``time.monotonic()``) for calls."""

    own_gram_first: bool = True
    deadline: float = float("inf")


#: The losses graded on their own, re-run with the grader's Gram matrices when a call fails.
RERUN_WITH_GIVEN_GRAMS = ("style_loss", "guided_style_loss")


def _judge(call: Call, box: Sandbox, state: _StyleState, locate: bool = True) -> str | None:
    """Run one call and judge it; with ``locate``, a wrong value is located by probing (:func:`_prober`).

    ``style_loss`` is graded on its own: a call it fails with the student's ``gram_matrix`` - wrong
    values, an exception, a timeout or a crash - passes if it succeeds with the grader's Gram
    matrices of that call's feature maps, so a wrong Gram matrix costs only ``gram_matrix``'s
    points, while a student who moved the normalization from ``gram_matrix`` into ``style_loss``
    keeps ``style_loss``'s. After a timeout or crash with the student's ``gram_matrix`` that the
    grader's Gram matrices avoid, the function's remaining calls skip the student's ``gram_matrix``.
    ``guided_style_loss`` likewise, with the grader's guided Gram matrices.
    """
    memory = box.limits.memory_mb
    probe = _prober(box, call.function, state.deadline) if locate and call.device != "meta" else None
    if call.function not in RERUN_WITH_GIVEN_GRAMS:
        return judge_call(call, _call(box, call.request(), call.function, state.deadline), memory, probe=probe)
    stopped, message = None, None
    if state.own_gram_first:
        try:
            message = judge_call(call, _call(box, call.request(), call.function, state.deadline), memory,
                                 probe=probe)
        except _Stop as reason:
            stopped, message = reason, str(reason)
        if message is None:
            return None
    retry = judge_call(call, _call(box, call.request(grams=True), call.function, state.deadline), memory,
                       own_gram=False, probe=probe if stopped is None else None)
    if stopped is not None:
        state.own_gram_first = False  # the student's gram_matrix hung or crashed it; the grader's did not
    if retry and message and stopped is None and "the grader's stand-in" in retry:
        return message  # it called the stand-in on other tensors (e.g. the wrong masks): its own run says more
    return retry  # None: right with the grader's Gram matrices; else a message that does not blame the Gram


def _run_test(spec: TestSpec, box: Sandbox, rng: np.random.Generator, reference, source: str,
              state: _StyleState) -> TestResult:
    case = build_case(spec, rng, reference)
    failures: list[str] = []
    total = len(case.calls) + len(case.source_checks)
    later = "(this case counts only once the values are right)"
    for call in sorted(case.calls, key=lambda c: c.device == "meta"):  # value-checking calls first
        if call.device == "meta" and failures:
            failures.append(later)
            continue
        message = _judge(call, box, state, locate=not failures)  # the feedback quotes the first failure
        if message:
            failures.append(message)
    values_ok = not failures
    for check in case.source_checks:
        message = check(spec.function, source) if values_ok else later
        if message:
            failures.append(message)
    passed = total - len(failures)
    score = round(spec.points * passed / total, 4) if total else 0.0
    if not failures:
        feedback = f"PASS ({total} of {total} cases)."
    else:
        feedback = f"{failures[0]} ({passed} of {total} cases passed.)"
        if spec.kind in PROPERTIES:
            feedback = (f"This test checks that {spec.function} {PROPERTIES[spec.kind]}. It counts only when the "
                        f"values are right too, so that a placeholder cannot earn it; here they are not: {feedback}")
    return TestResult(spec, score, feedback, passed, total)


# --- a submission ---------------------------------------------------------------------------------

def _hidden_paths(submission: Path, reference: Path, extra: Iterable[str]) -> list[str]:
    """Folders the child must not see: the reference source, this package, the submission's folder.

    Also ``solutions/``, ``autograder/`` and ``.git`` beside this package and beside the imported
    ``cs231n_style`` (another checkout, e.g. an editable install pointing elsewhere).
    """
    import sys

    import cs231n_style

    here = Path(__file__).resolve().parent
    submission = submission.resolve()
    roots = dict.fromkeys([here.parent, Path(cs231n_style.__file__).resolve().parent.parent])
    candidates = [reference if reference.is_dir() else reference.parent, here,
                  *(root / name for root in roots for name in (".git", "solutions", "autograder")),
                  submission if submission.is_dir() else submission.parent, *map(Path, extra)]
    needed = [Path(tempfile.gettempdir()), Path(sys.prefix), Path(sys.base_prefix), Path(cs231n_style.__file__).parent]
    needed = [p.resolve() for p in needed]
    out = []
    for path in candidates:
        path = path.resolve()
        if path.is_dir() and not any(path == p or path in p.parents for p in needed) and str(path) not in out:
            out.append(str(path))
    return out


def _not_run(rubric: Rubric, name: str, message: str, **extra) -> GradingResult:
    return GradingResult(name, [TestResult(spec, 0.0, message, 0, 0) for spec in rubric.tests], **extra)


def grade_submission(path: str | Path, rubric: Rubric | None = None, reference=None, seed: int | None = None,
                     hide: Iterable[str] = (), reference_path: str | Path | None = None) -> GradingResult:
    """Grade one submission: a notebook, a folder of notebooks or a ``.zip`` of them.

    Args:
        path: the submission.
        rubric: the tests and limits (default: ``autograder/rubric.toml``).
        reference: the reference functions (default: loaded from ``reference_path``).
        seed: seeds the hidden inputs (default: the rubric's ``[grading] seed``, the same for
            every submission, so the same code gets the same grade; recorded in the result).
            Each test draws from its own generator, seeded by ``seed`` and the test's id, so its
            inputs never depend on which other tests ran.
        hide: more folders the student's process must not see.
        reference_path: solution notebooks folder or ``reference_solutions.py`` (default:
            ``$CS231N_REFERENCE`` or ``solutions/``).

    The submission is read, parsed and searched in a limited child process
    (:func:`autograder.submission.read_submission`: no link followed, a time and a memory limit);
    the whole grading has the rubric's ``[sandbox] submission_s`` seconds (see
    :class:`autograder.sandbox.Limits`).

    Returns:
        A :class:`GradingResult`. Never raises for a bad submission: an unreadable one, or one too
        large or too slow to read, scores 0 with the reason in every test's feedback; tests not
        graded within ``submission_s`` score 0, saying so.

    Raises:
        autograder.reference.MissingReference: if the rubric grades a function the reference
            solutions lack.
    """
    start = time.perf_counter()
    rubric = rubric or load_rubric(DEFAULT_RUBRIC)
    deadline = time.monotonic() + rubric.limits.submission_s
    reference_path = Path(reference_path) if reference_path else default_reference_path()
    reference = reference or load_reference(reference_path)
    require_reference(rubric.functions, reference, reference_path)
    seed = rubric.seed if seed is None else int(seed)
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="cs231n-submission-") as work:
        try:
            student = read_submission(path, work, rubric.functions,
                                      timeout_s=max(1.0, min(READ_TIME_S, deadline - time.monotonic())))
        except SubmissionError as error:
            return _not_run(rubric, path.name, f"FAIL - nothing to grade: {error}.", seed=seed, error=str(error),
                            execution_time=time.perf_counter() - start)
        with Sandbox(code_pieces(student.code), student.notebooks, rubric.limits,
                     hide=_hidden_paths(path, reference_path, hide)) as box:
            tests = _grade_functions(rubric, student, box, seed, reference, deadline)
            printed = box.printed_output()
            measures = list(box.measures)
    return GradingResult(path.name, tests, time.perf_counter() - start, seed, measures, printed, dict(student.where),
                         skipped=student.skipped)


def _problem(function: str, problem: str, student: StudentCode) -> str:
    """The feedback for a function that could not be found; it names the notebook to submit when
    the function's course notebook (e.g. notebook 05) is not in the submission."""
    notebook = NOTEBOOK_OF.get(function)
    if "no function named" in problem and notebook and all(nb.name != notebook for nb in student.notebooks):
        return (f"{problem}: it is written in {notebook}, which is not in your submission - submit that notebook "
                "too (it is graded in this assignment)")
    return problem


def _rng_for(seed: int, spec: TestSpec) -> np.random.Generator:
    """The generator of one test's inputs: from the grading's seed and the test's id only."""
    return np.random.default_rng([seed, zlib.crc32(spec.id.encode())])


def _grade_functions(rubric: Rubric, student: StudentCode, box: Sandbox, seed: int, reference,
                     deadline: float = float("inf")) -> list[TestResult]:
    """Grade each function in a fresh process (``box.start()``), its tests in rubric order; from
    ``deadline`` on (``time.monotonic()``), no process is started and no call made: the tests left
    score 0, saying that the submission went over its time limit.

    Each test's :attr:`TestResult.printed` is what the student's code printed since the previous
    test (the first test of a function also gets what loading the code printed), so that the
    reports can show it only to whom may see that test (hidden tests print their inputs).
    """
    results: dict[str, TestResult] = {}
    seen = ""  # the sandbox's printed output after the previous test
    for function in rubric.functions:
        specs = [s for s in rubric.tests if s.function == function]
        problem = student.code.problems.get(function)
        if problem:
            problem = _problem(function, problem, student)
        elif time.monotonic() <= deadline:  # past it, no process: the loop below says why
            try:
                load_errors = box.start()
            except SandboxFailure as failure:
                load_errors = {function: f"your code could not be started ({failure.detail})"}
            if function in load_errors:
                problem = f"defining it failed: {load_errors[function]}"
        stop = f"{function}: FAIL - {clip(problem, STUDENT_TEXT_LIMIT)}." if problem else None
        state = _StyleState(deadline=deadline)
        for spec in specs:
            if not stop and time.monotonic() > deadline:
                stop = _over_time(function, box.limits.submission_s)
            if stop:
                results[spec.id] = TestResult(spec, 0.0, stop)
            else:
                try:
                    results[spec.id] = _run_test(spec, box, _rng_for(seed, spec), reference,
                                                 student.code.functions[function], state)
                except _Stop as reason:
                    results[spec.id] = TestResult(spec, 0.0, str(reason))
                    stop = (_over_time(function, box.limits.submission_s) if time.monotonic() > deadline else
                            f"{function}: FAIL - not run: an earlier test of {function} timed out or crashed.")
            now = box.printed_output()
            results[spec.id].printed, seen = _added_text(seen, now), now
    return [results[spec.id] for spec in rubric.tests]


def _added_text(before: str, now: str) -> str:
    """What ``now``, the sandbox's printed output, adds to ``before``, an earlier reading of it: from
    where they first differ (a character cut in two at the end of ``before`` is whole in ``now``)."""
    return now[len(os.path.commonprefix([before, now])):]  # noqa: RUF071 - texts, not paths: by character is meant


def grade_batch(paths: Iterable[str | Path], rubric: Rubric | None = None, jobs: int | None = None,
                progress: bool = True, on_result: Callable[[GradingResult], None] | None = None,
                **options) -> list[GradingResult]:
    """Grade many submissions in parallel; results come back in the order of ``paths``.

    Args:
        paths: the submissions (each a notebook, folder or ``.zip``).
        rubric: as :func:`grade_submission` (loaded once for all).
        jobs: submissions graded at once (default: the number of CPU cores).
        progress: show a tqdm progress bar.
        on_result: called with each result as it completes (e.g. to write its files).
        **options: passed to :func:`grade_submission` (``seed``, ``hide``, ``reference_path``);
            every submission gets the same ``seed`` (default: the rubric's).

    Each submission is graded as :func:`grade_submission` says: read in a limited process, within
    the rubric's ``[sandbox] submission_s`` seconds (from its own start), so that one too large or
    too slow submission costs only its own grade. The folders holding the submissions are hidden
    from every student process too (where folders are hidden: the ``unshare`` fallback).
    """
    from tqdm.auto import tqdm

    paths = list(paths)
    rubric = rubric or load_rubric(DEFAULT_RUBRIC)
    reference = load_reference(options.get("reference_path"))
    require_reference(rubric.functions, reference, options.get("reference_path") or default_reference_path())
    jobs = jobs or os.cpu_count() or 1
    hide = [*options.pop("hide", ()), *dict.fromkeys(str(Path(path).absolute().parent) for path in paths)]

    def one(path):
        result = grade_submission(path, rubric, reference, hide=hide, **options)
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, path) for path in paths]
        for future in tqdm(futures, total=len(futures), desc="grading", unit="submission", disable=not progress):
            future.result()
    return [future.result() for future in futures]
