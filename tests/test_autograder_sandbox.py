"""Hostile submissions: infinite loops, exits, memory bombs, output floods, forged result frames,
monkey-patching, reading or writing outside the scratch directory, the network. Each must cost
only its own function's points, never another student's score or the grader's verdict, and never
alter the submission.

Each test grades one submission whose other functions are correct (taken from the solutions), and
checks that those still score full marks. Limits are lowered to keep the tests short.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from test_autograder import notebook_with, points_by_function, scores_by_function, solution_sources

from autograder.grader import grade_submission
from autograder.protocol import ProtocolError, decode, encode, frame, read_message
from autograder.rubric import load_rubric
from autograder.sandbox import isolation_available
from cs231n_style import diagnosis

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rubric():
    return load_rubric().with_limits(timeout_s=3, file_mb=1)


def grade_with(tmp_path, rubric, replaced: dict[str, str], seed: int = 11):
    sources = {**solution_sources(), **replaced}
    path = notebook_with(sources, tmp_path / "submission.ipynb")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = grade_submission(path, rubric, seed=seed)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, "the submission was altered"
    return result


def assert_only(result, rubric, zero: set[str]):
    scores, points = scores_by_function(result), points_by_function(rubric)
    for function in scores:
        assert scores[function] == (0 if function in zero else points[function]), (function, result.tests)


def feedback(result, function: str) -> list[str]:
    return [t.feedback for t in result.tests if t.spec.function == function]


def test_infinite_loop_and_os_exit_cost_only_their_functions(tmp_path, rubric):
    result = grade_with(tmp_path, rubric, {
        "content_loss": "def content_loss(w, a, b):\n    while True:\n        pass\n",
        "tv_loss": "def tv_loss(img, w):\n    import os\n    os._exit(0)\n",
    })
    assert_only(result, rubric, {"content_loss", "tv_loss"})
    content, tv = feedback(result, "content_loss"), feedback(result, "tv_loss")
    assert "did not finish within 3 s" in content[0] and "not run" in content[1]
    assert "stopped during this test" in tv[0] and "exited with code 0" in tv[0]


def test_sys_exit_memory_bomb_and_flood_are_reported_as_the_students_errors(tmp_path, rubric):
    result = grade_with(tmp_path, rubric, {
        "content_loss": "def content_loss(w, a, b):\n    import sys\n    sys.exit('done')\n",
        "tv_loss": "def tv_loss(img, w):\n    hog = bytearray(3 << 30)\n    return w * img.sum()\n",
        "style_loss": ("def style_loss(feats, layers, targets, weights):\n"
                       "    while True:\n        print('spam' * 1000)\n"),
    })
    assert_only(result, rubric, {"content_loss", "tv_loss", "style_loss"})
    assert "raised SystemExit" in feedback(result, "content_loss")[0]
    memory = feedback(result, "tv_loss")[0]
    assert f"memory limit of {rubric.limits.memory_mb} MB" in memory and "MemoryError" in memory and ": ." not in memory
    assert "File too large" in feedback(result, "style_loss")[0]  # the 1 MB output limit, then OSError
    assert len(result.printed) <= 4096


def test_escape_attempts_are_blocked(tmp_path, rubric):
    """content_loss returns the right value only if every attempt failed; style_loss patches torch
    and the checking code, prints fake results and returns a wrong value."""
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("grader's file")
    os.chmod(secret, 0o600)
    # (no Python loop: the grader's no_loops test would cost content_loss points of its own)
    read, secret_path = str(ROOT / "solutions" / "02_style_loss.ipynb"), str(secret)
    spy = f'''def content_loss(content_weight, content_current, content_original):
    import os, socket

    def must_fail(attempt, what):
        try:
            attempt()
        except OSError:
            return
        raise RuntimeError(what)

    must_fail(lambda: open({read!r}).read(10), "READ " + {read!r})
    must_fail(lambda: open({secret_path!r}).read(10), "READ " + {secret_path!r})
    must_fail(lambda: open({str(tmp_path / "submission.ipynb")!r}, "a").write("x"), "WROTE submission")
    must_fail(lambda: open({str(tmp_path / "planted.txt")!r}, "a").write("x"), "WROTE planted.txt")
    must_fail(lambda: socket.create_connection(("1.1.1.1", 80), timeout=1), "NETWORK")
    return content_weight * torch.sum((content_current - content_original) ** 2)
'''
    cheat = '''def style_loss(feats, style_layers, style_targets, style_weights):
    try:
        import cs231n_style.diagnosis as diagnosis
        diagnosis.diagnose_values = lambda *a, **k: (0.0, None)
        diagnosis.relative_error = lambda *a, **k: 0.0
    except Exception:
        pass
    torch.allclose = lambda *a, **k: True
    torch.equal = lambda *a, **k: True
    print('{"score": 100, "tests": []}')
    print("style_loss: PASS")
    return torch.tensor(123.0, dtype=feats[0].dtype, requires_grad=True)
'''
    before = (torch.equal, torch.allclose, diagnosis.diagnose_values)
    result = grade_with(tmp_path, rubric, {"content_loss": spy, "style_loss": cheat})
    assert (torch.equal, torch.allclose, diagnosis.diagnose_values) == before  # the grader is untouched
    assert not (tmp_path / "planted.txt").exists() and secret.read_text() == "grader's file"
    if not (os.geteuid() == 0 and isolation_available()):
        pytest.skip("needs root and bubblewrap (or unshare): without them the child runs as the grader's user, "
                    "with network")
    assert_only(result, rubric, {"style_loss"})
    assert feedback(result, "style_loss")[0].startswith("style_loss: FAIL")  # its printed PASS counts for nothing
    assert any("unprivileged uid" in m for m in result.measures) and any("no network" in m for m in result.measures)
    assert '"score": 100' in result.printed  # shown to the student as printed text, never parsed


def test_forged_result_frames_cost_only_the_forger(tmp_path, rubric):
    forger = '''def gram_matrix(features, normalize=True):
    import os
    fake = b"CS231N" + b"0" * 32 + (100).to_bytes(8, "big") + b"x" * 100
    for fd in range(1, 64):
        try:
            os.write(fd, fake)
        except OSError:
            pass
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w if normalize else 1)
'''
    result = grade_with(tmp_path, rubric, {"gram_matrix": forger})
    gram = feedback(result, "gram_matrix")
    assert "interfered with the grader's communication" in gram[0] and "nonce" in gram[0]
    scores, points = scores_by_function(result), points_by_function(rubric)
    assert scores["gram_matrix"] == 0
    assert scores["content_loss"] == points["content_loss"] and scores["tv_loss"] == points["tv_loss"]


def test_protocol_rejects_foreign_nonces_and_never_unpickles():
    nonce, other = "a" * 32, "b" * 32
    read_fd, write_fd = os.pipe()
    os.write(write_fd, frame(other, {"x": 1}))
    with pytest.raises(ProtocolError, match="nonce"):
        read_message(read_fd, nonce, timeout=2)
    os.close(read_fd), os.close(write_fd)
    message = {"a": np.arange(6.0).reshape(2, 3), "b": [np.float32(1.5), None, "text"], "c": np.zeros((0,))}
    back = decode(encode(message))
    assert np.array_equal(back["a"], message["a"]) and back["b"] == [1.5, None, "text"] and back["c"].shape == (0,)
    with pytest.raises(ProtocolError):
        decode(encode({"a": np.ones(3)})[:-8])  # truncated arrays are refused


def test_a_timeout_never_reads_a_dead_childs_pipe_forever():
    read_fd, write_fd = os.pipe()
    with pytest.raises(ProtocolError, match="timeout"):
        read_message(read_fd, "c" * 32, timeout=0.2)
    os.close(write_fd)
    with pytest.raises(ProtocolError, match="end of stream"):
        read_message(read_fd, "c" * 32, timeout=0.2)
    os.close(read_fd)
