"""The attacks of issue 13, as a hostile student would try them, against the real sandbox.

Each test grades a submission whose other functions are correct (the solutions') and checks what
the attack got: free marks from the grader's own objects, other students' work or the grader's
files, files and processes left behind, the memory of a process tree, one function's
monkey-patching breaking another, and a hung ``gram_matrix`` costing ``style_loss`` its points.
Also the diagnoses the issue found missing, named in the grader's feedback.

The isolation tests need what Gradescope and CI have: root, and bubblewrap (``apt-get install
bubblewrap``); they are skipped, with the reason, elsewhere. Limits are lowered to keep them short.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from test_autograder import notebook_with, points_by_function, scores_by_function, solution_sources

from autograder.cases import Call
from autograder.grader import grade_batch, grade_submission, judge_call
from autograder.rubric import load_rubric
from autograder.sandbox import _UNSHARE, MemoryGroup, Sandbox, _works, isolation
from autograder.variants import mistake_variants

ROOT = Path(__file__).resolve().parents[1]
ROOTED = os.geteuid() == 0
needs_bwrap = pytest.mark.skipif(
    not (ROOTED and isolation() == "bwrap"),
    reason="needs root and bubblewrap (apt-get install -y bubblewrap): the grader's isolation "
           f"here is {isolation()!r}{'' if ROOTED else ', not root'}")


def _cgroup_works() -> bool:
    group = MemoryGroup.create(1 << 30) if ROOTED else None
    if group is not None:
        group.remove()
    return group is not None


needs_cgroup = pytest.mark.skipif(not _cgroup_works(), reason="needs root and a writable memory cgroup (v1 or v2)")


@pytest.fixture(scope="module")
def rubric():
    return load_rubric().with_limits(timeout_s=4, file_mb=1)


def grade(tmp_path, rubric, replaced: dict[str, str], name: str = "submission.ipynb", seed: int = 13):
    path = notebook_with({**solution_sources(), **replaced}, tmp_path / name)
    return grade_submission(path, rubric, seed=seed)


def feedback(result, function: str) -> list[str]:
    return [t.feedback for t in result.tests if t.spec.function == function]


def assert_scores(result, rubric, zero=(), full=None):
    scores, points = scores_by_function(result), points_by_function(rubric)
    for function in (full if full is not None else set(scores) - set(zero)):
        assert scores[function] == points[function], (function, feedback(result, function))
    for function in zero:
        assert scores[function] == 0, (function, feedback(result, function))


# --- free marks from the grader's own objects ------------------------------------------------------

HUNT = '''
_SCANNED = []


def _hunt():
    """Anything of the grader's that could give a right answer: correct functions, expected values."""
    import gc, sys
    import numpy as np
    found = []
    main = sys.modules.get("__main__")
    for name in ("correct_gram_matrix", "reference", "expected", "gram_matrix"):
        if main is not None and name in vars(main) and name != "gram_matrix":
            found.append("__main__." + name)
    for module in list(sys.modules):
        if module.startswith(("autograder", "cs231n_reference", "reference_solutions", "solutions")):
            found.append("module " + module)
    frame = sys._getframe()
    while frame is not None:
        for space in (frame.f_locals, frame.f_globals):
            for key in ("correct_gram_matrix", "expected", "reference", "call", "expected_grads", "variants"):
                if key in space:
                    found.append(f"frame {frame.f_code.co_name}: {key}")
        frame = frame.f_back
    if _SCANNED:  # the garbage collector's objects: once per process (slow)
        return found
    _SCANNED.append(True)
    for obj in gc.get_objects():
        if callable(obj) and getattr(obj, "__name__", "") in ("correct_gram_matrix", "reference_gram"):
            found.append("gc " + obj.__name__)
        if isinstance(obj, dict) and any(isinstance(obj.get(key), (torch.Tensor, np.ndarray))
                                         for key in ("expected", "expected_grads", "variants")):
            found.append("gc dict with expected values")
        if type(obj).__name__ == "Call" and hasattr(obj, "expected"):
            found.append("gc the grader's Call")
    return found
'''


def test_free_marks_via_main_gc_and_frames_give_nothing(tmp_path, rubric):
    """gram_matrix and style_loss search the process for the grader's correct Gram matrix or
    expected values (sys.modules["__main__"], every module, the call stack, the garbage collector)
    and use whatever they find; they find nothing and score 0."""
    gram = HUNT + '''
def gram_matrix(features, normalize=True):
    found = _hunt()
    if found:
        print("FOUND", found)
        return found[0] if callable(found[0]) else None
    n, c, h, w = features.shape
    return torch.zeros(n, c, c, dtype=features.dtype, device=features.device)
'''
    style = '''def style_loss(feats, style_layers, style_targets, style_weights):
    found = _hunt()
    if found:
        print("FOUND", found)
    try:  # the grader's stand-in gram_matrix is a lookup: it computes nothing for other tensors
        if gram_matrix(torch.ones(1, 3, 4, 5, dtype=feats[0].dtype) * 7).abs().sum() > 0:  # own: zeros
            print("FOUND a gram_matrix that computes")
    except Exception:
        pass
    return torch.zeros((), dtype=feats[0].dtype, requires_grad=True)
'''
    result = grade(tmp_path, rubric, {"gram_matrix": gram, "style_loss": style})
    assert "FOUND" not in result.printed, result.printed
    assert_scores(result, rubric, zero={"gram_matrix", "style_loss"})


# --- other students' work, the grader's files ----------------------------------------------------

SNOOP = '''def _probe(content_weight, content_current, content_original):
    import os
    leaks = []
    for path in PATHS:
        try:
            if os.path.isdir(path):
                leaks.append(f"{path}: {sorted(os.listdir(path))[:5]}")
            else:
                with open(path, "rb") as file:
                    leaks.append(f"{path}: {file.read(40)!r}")
        except OSError:
            pass
    marker = "SIBLING" + "-SECRET-" + "4711"
    for top, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev", "/usr")
                   and "site-packages" not in top and "python3." not in top]
        for name in files:
            try:
                with open(os.path.join(top, name), "rb") as file:
                    if marker.encode() in file.read(1 << 20):
                        leaks.append("found the marker in " + os.path.join(top, name))
            except OSError:
                pass
    if leaks:
        print("LEAK", leaks)
        return torch.zeros((), dtype=content_current.dtype)
    return content_weight * torch.sum((content_current - content_original) ** 2)

def content_loss(content_weight, content_current, content_original):  # loop-free: the probing is a helper's
    return _probe(content_weight, content_current, content_original)
'''


@needs_bwrap
def test_a_submission_reads_nothing_of_its_siblings_earlier_results_or_the_grader(tmp_path, rubric):
    """A batch of two: bob's code tries to read alice's notebook, the batch folder, an earlier
    results.json, the solutions, the repository, /root and the grader's temporary folders, and
    searches every file it can see for alice's marker. It scores full marks only if all failed."""
    batch = tmp_path / "class"
    (batch / "alice").mkdir(parents=True)
    (batch / "bob").mkdir()
    (batch / "results" / "carol").mkdir(parents=True)
    (batch / "results" / "carol" / "results.json").write_text('{"score": 100}')
    alice = solution_sources()
    alice["content_loss"] = "# SIBLING-SECRET-4711\n" + alice["content_loss"]
    notebook_with(alice, batch / "alice" / "work.ipynb")
    grader_tmp = Path(tempfile.mkdtemp(prefix="cs231n-grader-"))
    (grader_tmp / "expected.txt").write_text("expected values")
    paths = [batch / "alice" / "work.ipynb", batch / "alice", batch, batch / "results" / "carol" / "results.json",
             ROOT / "solutions" / "02_style_loss.ipynb", ROOT / "solutions", ROOT / "autograder" / "rubric.toml",
             ROOT / "autograder" / "grader.py", ROOT / "autograder", ROOT / "README.md", ROOT / ".git" / "config",
             Path("/root/.bashrc"), Path("/root/.profile"), grader_tmp / "expected.txt", grader_tmp]
    # (the repository's folder itself is listable: it holds the runtime's bound parts, .venv and cs231n_style)
    paths = [str(p) for p in paths if p.exists()]
    assert len(paths) >= 12  # the attack is meaningful: these exist for the grader
    notebook_with({**solution_sources(), "content_loss": f"PATHS = {paths!r}\n" + SNOOP}, batch / "bob" / "work.ipynb")
    try:
        alice_result, bob_result = grade_batch([batch / "alice", batch / "bob"], rubric, jobs=2, progress=False,
                                               seed=13)
    finally:
        (grader_tmp / "expected.txt").unlink()
        grader_tmp.rmdir()
    assert "LEAK" not in bob_result.printed, bob_result.printed
    assert_scores(bob_result, rubric)
    assert alice_result.score == bob_result.score == rubric.max_score
    assert any("bubblewrap" in m for m in bob_result.measures)


# --- leftovers ------------------------------------------------------------------------------------

def test_nothing_is_left_behind_in_tmp_dev_shm_var_tmp_or_as_a_process(tmp_path, rubric):
    """content_loss writes files to /tmp, /dev/shm, /var/tmp, its scratch folder and HOME, and starts
    a detached process; after grading, none of it is left (where the grader runs as root)."""
    tag = f"leftover-{os.getpid()}-{time.monotonic_ns()}"
    writer = f'''def _probe(content_weight, content_current, content_original):
    import os, subprocess
    for folder in ("/tmp", "/dev/shm", "/var/tmp", ".", os.path.expanduser("~"), os.environ.get("TMPDIR", "/tmp")):
        try:
            with open(os.path.join(folder, "{tag}"), "w") as file:
                file.write("x")
        except OSError:
            pass
    try:
        subprocess.Popen(["sleep", "4242"], start_new_session=True)
    except OSError:
        pass
    return content_weight * torch.sum((content_current - content_original) ** 2)

def content_loss(content_weight, content_current, content_original):  # loop-free: the probing is a helper's
    return _probe(content_weight, content_current, content_original)
'''
    result = grade(tmp_path, rubric, {"content_loss": writer})
    assert_scores(result, rubric)
    if not ROOTED:
        pytest.skip("needs root: without it the child's files cannot be told from the grader's")
    time.sleep(0.2)
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        assert not list(Path(folder).rglob(tag)), folder
    sleepers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x004242\x00":
                sleepers.append(pid)
        except OSError:
            pass
    assert not sleepers
    assert not [p for p in Path(tempfile.gettempdir()).glob("cs231n-grade-*") if (p / "submission").exists()
                and any(p.rglob(tag))]


# --- memory of a process tree ------------------------------------------------------------------------

FORKS = '''
_ATTACKED = []


def content_loss(content_weight, content_current, content_original):
    """The first call forks 5 children that each fill 300 MB, then returns the right value."""
    import os, time
    if not _ATTACKED:
        _ATTACKED.append(1)
        children = []
        for _ in range(5):
            try:
                pid = os.fork()
            except OSError as error:
                raise RuntimeError(f"fork refused: {error}")
            if pid == 0:
                try:
                    hog = bytearray(300 << 20)
                    hog[::4096] = b"x" * len(hog[::4096])
                    time.sleep(1.5)
                finally:
                    os._exit(0)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
    return content_weight * torch.sum((content_current - content_original) ** 2)
'''


@needs_bwrap
@needs_cgroup
def test_the_memory_of_a_process_tree_is_capped_and_reported(tmp_path):
    """5 forked children of 300 MB each (1.5 GB) against a 512 MB limit for the whole tree: the
    kernel kills some, the call fails with a message naming the limit, and the sandbox's peak
    stays under its cap. Only the first call attacks; the others pass."""
    rubric = load_rubric().with_limits(timeout_s=20, memory_mb=512)
    path = notebook_with({**solution_sources(), "content_loss": FORKS}, tmp_path / "forks.ipynb")
    from autograder import grader

    boxes = []
    original = grader.Sandbox

    class Recording(original):
        def __post_init__(self):
            super().__post_init__()
            boxes.append(self)

    grader.Sandbox = Recording
    try:
        result = grade_submission(path, rubric, seed=13)
    finally:
        grader.Sandbox = original
    first = result.by_id()["content_loss.public"]
    assert "went over the sandbox's memory limit of 512 MB" in first.feedback, first.feedback
    assert 0 < first.score < first.spec.points  # the other calls of the test passed
    box = boxes[0]
    assert box.oom_kills >= 1 and box.memory_cap_bytes is not None
    assert box.peak_bytes is not None and box.peak_bytes <= box.memory_cap_bytes + (16 << 20), (
        box.peak_bytes, box.memory_cap_bytes)
    assert any("capped" in m and "cgroup" in m for m in result.measures)
    assert_scores(result, rubric, full={"gram_matrix", "style_loss", "tv_loss"})


@needs_bwrap
def test_without_a_cgroup_the_student_process_cannot_fork(tmp_path):
    """The fallback where no cgroup can be made: RLIMIT_NPROC = the tasks it has, so fork fails."""
    pieces = [{"kind": "import", "name": None, "source": "import torch"},
              {"kind": "def", "name": "content_loss", "source": FORKS.replace("_ATTACKED = []\n", "")
               .replace("if not _ATTACKED:\n        _ATTACKED.append(1)\n        children",
                        "if True:\n        children")}]
    request = {"function": "content_loss", "dtype": "float64",
               "args": [0.5, {"tensor": np.ones((1, 2, 3, 4)), "grad": False}, {"tensor": np.zeros((1, 2, 3, 4))}]}
    with Sandbox(pieces, limits=load_rubric().limits, cgroup=False) as box:
        box.start()
        reply = box.call(request)
        assert any("may not start processes" in m for m in box.measures), box.measures
    assert reply["status"] == "raised" and "fork refused" in reply["error"]["text"], reply


# --- one function's monkey-patching ----------------------------------------------------------------

def test_monkey_patching_torch_in_one_function_does_not_break_another(tmp_path, rubric):
    """content_loss replaces torch.sum, Tensor.sum, matmul and diff after computing its own value
    without them (its own later calls may break: that is its business); every other function,
    graded in its own fresh process, keeps full marks."""
    patcher = '''def content_loss(content_weight, content_current, content_original):
    d = (content_current - content_original).flatten()
    value = content_weight * torch.dot(d, d)

    def broken(*args, **kwargs):
        raise RuntimeError("sabotaged by content_loss")

    torch.sum = torch.Tensor.sum = torch.matmul = torch.bmm = torch.Tensor.__matmul__ = broken
    torch.diff = torch.Tensor.diff = torch.einsum = torch.mean = broken
    return value
'''
    result = grade(tmp_path, rubric, {"content_loss": patcher})
    assert result.by_id()["content_loss.public"].passed
    others = [t.feedback for t in result.tests if t.spec.function != "content_loss"]
    assert "sabotaged" not in " ".join(others)
    assert_scores(result, rubric, full={"gram_matrix", "style_loss", "tv_loss"})


# --- a hung gram_matrix ------------------------------------------------------------------------------

def test_a_gram_matrix_timeout_still_lets_style_loss_be_graded_with_the_graders_gram(tmp_path, rubric):
    result = grade(tmp_path, rubric, {"gram_matrix": "def gram_matrix(features, normalize=True):\n"
                                                     "    while True:\n        pass\n"})
    gram = feedback(result, "gram_matrix")
    assert "did not finish within 4 s" in gram[0] and "not run" in gram[1]
    assert_scores(result, rubric, zero={"gram_matrix"})


def test_a_crashing_or_wrong_shaped_gram_matrix_costs_style_loss_nothing(tmp_path, rubric):
    crash = "def gram_matrix(features, normalize=True):\n    import os\n    os._exit(3)\n"
    result = grade(tmp_path, rubric, {"gram_matrix": crash})
    assert "exited with code 3" in feedback(result, "gram_matrix")[0]
    assert_scores(result, rubric, zero={"gram_matrix"})
    shape = ("def gram_matrix(features, normalize=True):\n    n, c, h, w = features.shape\n"
             "    return features.reshape(n * c, h * w) @ features.reshape(n * c, h * w).T\n")
    result = grade(tmp_path, rubric, {"gram_matrix": shape}, name="shape.ipynb")
    assert_scores(result, rubric, zero={"gram_matrix"})


# --- diagnoses the issue found missing ---------------------------------------------------------------

def test_batch_mixing_gram_and_channel_tv_are_named_in_the_feedback(tmp_path, rubric):
    mixed = ("def gram_matrix(features, normalize=True):\n    n, c, h, w = features.shape\n"
             "    flat = features.reshape(n, c, h * w)\n    gram = torch.einsum('nci,mdi->ncd', flat, flat)\n"
             "    return gram / (c * h * w) if normalize else gram\n")
    channels = ("def tv_loss(img, tv_weight):\n"
                "    return tv_weight * sum(torch.sum(torch.diff(img, dim=d) ** 2) for d in (1, 2, 3))\n")
    result = grade(tmp_path, rubric, {"gram_matrix": mixed, "tv_loss": channels}).by_id()
    assert "mix different images of the batch" in result["gram_matrix.batch"].feedback
    assert "mix different images of the batch" in result["gram_matrix.public"].feedback  # its batch of 2
    assert "neighbouring *channels*" in result["tv_loss.public"].feedback
    assert "neighbouring *channels*" in result["tv_loss.gradient"].feedback
    assert result["style_loss.public"].passed  # 1-image feature maps: the mixing does not show


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_a_gram_divided_by_2nchw_is_named_by_the_grader(batch):
    rng = np.random.default_rng(batch)
    features = np.abs(rng.normal(size=(batch, 5, 3, 4)))
    variants = mistake_variants("gram_matrix", features)
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    expected = flat @ flat.transpose(0, 2, 1) / (c * h * w)
    call = Call("gram_matrix", [{"tensor": features, "grad": False}], expected=expected, variants=variants)
    wrong = expected / (2 * n)  # what dividing by 2*N*C*H*W gives
    reply = {"status": "returned", "output": {"type": "Tensor", "dtype": "torch.float64", "shape": list(wrong.shape),
                                              "device": "cpu", "requires_grad": False, "value": wrong}}
    assert "divided by 2*N*C*H*W" in judge_call(call, reply)


# --- the fallbacks, where bubblewrap cannot run ------------------------------------------------------

@pytest.mark.skipif(not ROOTED, reason="needs root: the fallbacks' measures (own uid, no fork, clean-up) need it")
@pytest.mark.parametrize("mode", ["unshare", "none"])
def test_the_fallbacks_still_clean_up_and_forbid_forking(tmp_path, mode):
    """Without bubblewrap: the student process runs as a fresh uid that may not fork (no cgroup
    here), its files in /tmp, /dev/shm and /var/tmp are deleted afterwards, and with ``unshare``
    the grader's folders are covered."""
    if mode == "unshare" and not _works([*_UNSHARE, "true"]):
        pytest.skip("unshare does not work here")
    tag = f"fallback-{mode}-{os.getpid()}-{time.monotonic_ns()}"
    source = f'''def tv_loss(img, tv_weight):
    import os
    found = []
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        with open(os.path.join(folder, "{tag}"), "w") as file:
            file.write("x")
    try:
        open({str(ROOT / "solutions" / "03_tv_loss.ipynb")!r}).read(10)
        found.append("solutions")
    except OSError:
        pass
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        found.append("forked")
    except OSError:
        pass
    print("FOUND", found)
    return img.sum()
'''
    pieces = [{"kind": "def", "name": "tv_loss", "source": source}]
    request = {"function": "tv_loss", "dtype": "float64", "args": [{"tensor": np.ones((1, 3, 4, 5))}, 0.5]}
    with Sandbox(pieces, limits=load_rubric().limits, hide=[str(ROOT / "solutions")], mode=mode, cgroup=False) as box:
        box.start()
        reply = box.call(request)
        measures, printed = box.measures, box.printed_output()
    assert reply["status"] == "returned", reply
    assert any("FALLBACK" in m for m in measures) and any("may not start processes" in m for m in measures)
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        assert not (Path(folder) / tag).exists(), folder
    assert "FOUND" in printed and "forked" not in printed
    assert ("solutions" in printed) == (mode == "none")  # without namespaces, world-readable files are readable
