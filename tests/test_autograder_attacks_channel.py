"""Issue 23's attacks on the channel between the student's process and the grader (item 3), and on
what one function's process sees of another's and of the host (item 7's ``/tmp`` and ``/proc``).

* The student's process could walk its frames (``sys._getframe``, the garbage collector) up to the
  runner's locals, take the nonce and the reply pipe, and forge a reply - an in-place
  ``content_loss`` reported its inputs "unmodified". Now a relay that never runs student code holds
  the grader's pipe and nonce; the student's process has neither, and the inputs after a call are
  read by the relay from the shared memory they live in, whatever the student's process reports.
* A frame of ``b"[" * 100000 + b"]" * 100000`` raised a ``RecursionError`` out of
  ``protocol.decode``: ``grade`` died without ``results.json``. Decoding now raises nothing but
  ``ProtocolError``, and the function that sent it scores 0.
* A second reply, or a message out of turn, makes the relay refuse the function.
* ``/tmp`` (and ``/dev/shm``, ``/var/tmp``, the scratch folder) were shared by one submission's
  function processes; ``/proc/1/cmdline`` showed the bubblewrap command line with host paths.
"""

from __future__ import annotations

import mmap
import os
import random
import threading
import time

import jsonschema
import numpy as np
import pytest
import test_autograder_attacks
import torch
from test_autograder import RESULTS_SCHEMA
from test_autograder_attacks import assert_scores, feedback, grade, needs_bwrap

from autograder import runner, sandbox
from autograder.protocol import MAX_DEPTH, ProtocolError, build_tensors, decode, encode, read_message
from autograder.report import results_json
from autograder.sandbox import Limits, Sandbox, SandboxFailure

rubric = test_autograder_attacks.rubric  # the fixture: its lowered limits

DEEP = b"[" * 100_000 + b"]" * 100_000


def deep_frame(nonce: str) -> bytes:
    """A frame whose JSON header nests 100000 arrays deep."""
    payload = len(DEEP).to_bytes(8, "big") + DEEP
    return b"CS231N" + nonce.encode() + len(payload).to_bytes(8, "big") + payload


def writing(fd: int, data: bytes) -> threading.Thread:
    """A started thread writing ``data`` to ``fd`` (more than a pipe holds: the reader must read)."""
    thread = threading.Thread(target=os.write, args=(fd, data))
    thread.start()
    return thread


# --- decoding: never anything but ProtocolError ----------------------------------------------------

def test_a_deeply_nested_or_malformed_frame_raises_only_protocol_errors():
    nonce = "d" * 32
    read_fd, write_fd = os.pipe()
    try:
        writer = writing(write_fd, deep_frame(nonce))
        with pytest.raises(ProtocolError, match=f"more than {MAX_DEPTH} levels deep"):
            read_message(read_fd, nonce, timeout=10)
        writer.join()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    for depth in (MAX_DEPTH + 1, 900):  # valid JSON, under Python's recursion limit: refused after parsing
        with pytest.raises(ProtocolError, match="levels deep"):
            decode(len(b"[" * depth * 2).to_bytes(8, "big") + b"[" * depth + b"]" * depth)
    valid = encode({"a": np.arange(6.0).reshape(2, 3), "b": ["[[[", {"c": [1, 2.5, None]}]})
    header = len(b'{"__array__": 0, "dtype": "float64", "shape": [4294967296, 4294967296]}')
    bad = [b"", b"\0" * 7, (1 << 63).to_bytes(8, "big") + b"{}", (2).to_bytes(8, "big") + b"{}trailing",
           header.to_bytes(8, "big") + b'{"__array__": 0, "dtype": "float64", "shape": [4294967296, 4294967296]}',
           (4).to_bytes(8, "big") + b'"\xff"', (5).to_bytes(8, "big") + b"[1e99999]"[:5],
           len(b"{" * 40).to_bytes(8, "big") + b"{" * 40]
    rng = random.Random(23)
    for _ in range(3000):  # random damage to a valid message: a ProtocolError or a message, nothing else
        damaged = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.choice(b"[]{}\"\\0 \xff")
        bad.append(bytes(damaged[:rng.randint(0, len(damaged))] if rng.random() < 0.2 else damaged))
    for payload in bad:
        try:
            decode(payload)
        except ProtocolError:
            pass
    assert decode(valid)["b"] == ["[[[", {"c": [1, 2.5, None]}]


def test_the_graders_reading_path_turns_a_deep_frame_into_a_protocol_failure(tmp_path):
    """Sandbox._receive, fed the recursion frame on its reply pipe: a SandboxFailure("protocol")."""
    box = Sandbox([], mode="none", cgroup=False)
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    try:
        box._child = {"requests": requests_w, "replies": replies_r, "nonce": "e" * 32, "uid": None}
        writer = writing(replies_w, deep_frame("e" * 32))
        with pytest.raises(SandboxFailure) as failure:
            box._receive(time.monotonic() + 10)
        writer.join()
        assert failure.value.kind == "protocol" and "levels deep" in failure.value.detail
    finally:
        for fd in (requests_r, replies_w):
            os.close(fd)
        box.close()


# --- the relay's checks ----------------------------------------------------------------------------

def test_the_relay_accepts_only_replies_that_fit_the_call():
    shapes, grad_shapes = [[1, 2, 3], [1, 2, 3]], [[1, 2, 3]]
    value = np.array(1.5)
    good = {"status": "returned", "inputs_after": [np.zeros((1, 2, 3)), None], "grads": [np.ones((1, 2, 3))],
            "output": {"type": "Tensor", "dtype": "torch.float64", "shape": [], "device": "cpu",
                       "requires_grad": True, "value": value}}
    checked = runner.check_reply(decode(encode(good)), shapes, grad_shapes)
    assert checked["output"]["value"] == 1.5 and checked["grads"][0].shape == (1, 2, 3)
    assert runner.check_reply({"status": "missing"}, shapes, grad_shapes) == {"status": "missing"}
    wrong = [
        {**good, "id": "forged"},  # the relay sets the id itself
        {**good, "grads": [np.ones((1, 2, 4))]},  # not the input's shape
        {**good, "grads": []},
        {**good, "inputs_after": [np.zeros((1, 2, 3))]},
        {**good, "inputs_after": [np.zeros((1, 2, 3), dtype=np.float32), None]},
        {**good, "output": {**good["output"], "value": np.ones(3)}},  # values that do not match the shape
        {**good, "output": {**good["output"], "shape": [-1]}},
        {**good, "output": {**good["output"], "type": "E" * 40_000}},
        {**good, "output": {**good["output"], "extra": 1}},
        {"status": "raised", "error": {"type": "ValueError", "text": "x" * 3000, "where": ""}},
        {"status": "raised", "error": "ValueError"},
        {"status": "returned"},
        {"status": "missing", "output": good["output"]},
        ["status", "returned"],
    ]
    for reply in wrong:
        with pytest.raises(runner.ProtocolError):  # (the runner's own copy of protocol.py: its own class)
            runner.check_reply(reply, shapes, grad_shapes)


def test_the_inputs_after_a_call_are_read_from_shared_memory_not_taken_from_the_report():
    shared = mmap.mmap(-1, 1 << 16)
    original = np.arange(24.0).reshape(1, 2, 3, 4)
    args, placed = runner.place_inputs([0.5, {"tensor": original, "grad": False}, {"tensor": original * 2}],
                                       "float32", shared)
    assert args[0] == 0.5 and args[1]["shared"] == 0 and args[2]["shared"] % 64 == 0
    built = build_tensors(args, torch.float32, "cpu", [], shared)
    built[1].mul_(3)  # the student's in-place change lands in the relay's memory
    unmodified = [original, original * 2]  # what a lying student's process reports
    after = runner.inputs_after(shared, placed, unmodified)
    assert np.array_equal(after[0], original * 3) and after[1] is unmodified[1]
    swapped = [original + 1, original * 2]  # a storage swap only its own report shows
    assert np.array_equal(runner.inputs_after(shared, [None, placed[1]], swapped)[0], original + 1)


# --- the attacks, graded ---------------------------------------------------------------------------

HUNT = '''
_FOUND = set()


def _nonces():
    """Every 32-hex-digit string in reach: the locals and globals of every frame up the stack and
    (once: slow) the values of every dict and list the garbage collector knows."""
    import gc, re, sys

    def look(items):
        for item in items:
            if isinstance(item, str) and len(item) == 32 and re.fullmatch("[0-9a-f]{32}", item):
                _FOUND.add(item)

    frame = sys._getframe()
    while frame is not None:
        look(frame.f_locals.values())
        look(frame.f_globals.values())
        frame = frame.f_back
    if "gc" not in _FOUND:  # (first called while the code loads, as a default argument: no time limit then)
        _FOUND.add("gc")
        for obj in gc.get_objects():
            if isinstance(obj, dict):
                look(list(obj.values()))
            elif isinstance(obj, list):
                look(list(obj))
    return sorted(n for n in _FOUND if n != "gc")


def _runners_channel():
    """(reply descriptor, nonce) from the locals of the runner's ``serve`` up the stack (runner.py
    is readable in the sandbox: an attacker knows its names)."""
    import sys
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "serve":
            return frame.f_locals["reply_fd"], frame.f_locals["nonce"]
        frame = frame.f_back
    return None, None


def _write_everywhere(make_frame):
    """A frame first on the runner's reply descriptor with its nonce, then, with every other nonce
    found, on the other descriptors 3-255 and on every /proc/PID/fd/N it can open for writing."""
    import os
    reply_fd, runners = _runners_channel()
    if reply_fd is not None:
        os.write(reply_fd, make_frame(runners))
    for nonce in _nonces():
        if nonce != runners:
            _spray(make_frame(nonce), reply_fd)


def _spray(data, skip):
    """data on its descriptors 3-255 but ``skip``, and on every other process's it can open."""
    import os
    for fd in set(range(3, 256)) - {skip}:
        try:
            os.write(fd, data)
        except OSError:
            pass
    for pid in set(filter(str.isdigit, os.listdir("/proc"))) - {str(os.getpid())}:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for name in names:
            try:
                fd = os.open(f"/proc/{pid}/fd/{name}", os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                os.write(fd, data)
            except OSError:
                pass
            finally:
                os.close(fd)
'''

FORGER = HUNT + '''

def content_loss(content_weight, content_current, content_original, _hunted=_nonces()):  # (slow gc: at load)
    """Modifies its input in place, then forges the reply a correct function gets - "unmodified" -
    with every nonce it finds, on every descriptor it can reach, and silences the runner's own."""
    import sys
    import numpy as np
    before = [t.detach().to(torch.float64).numpy().copy() for t in (content_current, content_original)]
    value = content_weight * torch.sum((content_current.detach() - content_original.detach()) ** 2)
    content_current.data.mul_(3.0)
    request_id, protocol, frame = None, None, sys._getframe()
    while frame is not None:
        request = frame.f_locals.get("request")
        if isinstance(request, dict) and "id" in request:
            request_id = request["id"]
        if "write_message" in frame.f_globals:  # the runner's: its genuine reply would come second
            protocol = frame.f_globals["_protocol"]
            frame.f_globals["write_message"] = lambda *args, **kwargs: None
        frame = frame.f_back
    forged = {"status": "returned", "id": request_id, "inputs_after": before,
              "output": {"type": "Tensor", "dtype": str(value.dtype), "shape": [], "device": "cpu",
                         "requires_grad": False, "value": np.array(value.item())}}
    _write_everywhere(lambda nonce: protocol.frame(nonce, forged))
    return value
'''

RECURSION = HUNT + '''

def tv_loss(img, tv_weight, _hunted=_nonces()):
    """The recursion frame, with every nonce it finds, on every descriptor it can reach."""
    deep = b"[" * 100000 + b"]" * 100000
    payload = len(deep).to_bytes(8, "big") + deep
    _write_everywhere(lambda nonce: b"CS231N" + nonce.encode() + len(payload).to_bytes(8, "big") + payload)
    dh = torch.sum((img[:, :, 1:, :] - img[:, :, :-1, :]) ** 2)
    dw = torch.sum((img[:, :, :, 1:] - img[:, :, :, :-1]) ** 2)
    return tv_weight * (dh + dw)
'''


def test_forged_replies_and_the_recursion_frame_cost_only_the_attacking_functions(tmp_path, rubric):
    """content_loss forges "unmodified" replies (it modified its input) with every nonce it finds in
    its frames and the garbage collector, on every descriptor it has or can open through /proc;
    tv_loss writes the recursion frame the same way. Both score 0, saying the grader's channel was
    written to; every other function full marks, and results.json is valid."""
    result = grade(tmp_path, rubric, {"content_loss": FORGER, "tv_loss": RECURSION})
    assert_scores(result, rubric, zero={"content_loss", "tv_loss"})
    assert result.by_id()["content_loss.unmodified"].score == 0
    for function in ("content_loss", "tv_loss"):
        assert "interfered with the grader's communication" in feedback(result, function)[0], feedback(result, function)
    assert "levels deep" in feedback(result, "tv_loss")[0] or "nonce" in feedback(result, "tv_loss")[0]
    jsonschema.validate(results_json(result, rubric), RESULTS_SCHEMA)


LIAR = '''def content_loss(content_weight, content_current, content_original):
    """Modifies its input in place, then swaps the runner's list of input tensors for unmodified
    copies: the runner in its process reports those as the inputs after the call."""
    import sys
    copies = [content_current.detach().clone(), content_original.detach().clone()]
    value = content_weight * torch.sum((content_current - content_original) ** 2)
    content_current.data.mul_(3.0)
    frame = sys._getframe()
    while frame is not None:
        tensors = frame.f_locals.get("tensors")
        if isinstance(tensors, list) and len(tensors) == 2 and tensors[0] is content_current:
            tensors[:] = copies
        frame = frame.f_back
    return value
'''

TWICE = '''def tv_loss(img, tv_weight):
    """Answers twice: a reply of its own on its process's reply pipe (with that pipe's nonce, found
    in the runner's frame), then the runner's."""
    import os, sys
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "serve":
            space = frame.f_locals
            os.write(space["reply_fd"], frame.f_globals["_protocol"].frame(space["nonce"], {"status": "missing"}))
        frame = frame.f_back
    dh = torch.sum((img[:, :, 1:, :] - img[:, :, :-1, :]) ** 2)
    dw = torch.sum((img[:, :, :, 1:] - img[:, :, :, :-1]) ** 2)
    return tv_weight * (dh + dw)
'''


def test_a_lie_about_the_inputs_after_the_call_or_a_second_reply_gains_nothing(tmp_path, rubric):
    """content_loss modifies its input and makes its process report unmodified copies: the relay
    reads the inputs from the shared memory and the unmodified test fails. tv_loss answers twice:
    the relay refuses it at the next request."""
    result = grade(tmp_path, rubric, {"content_loss": LIAR, "tv_loss": TWICE})
    unmodified = result.by_id()["content_loss.unmodified"]
    assert unmodified.score == 0 and "modified an input tensor in place" in unmodified.feedback, unmodified.feedback
    assert any("outside a reply" in text for text in feedback(result, "tv_loss")), feedback(result, "tv_loss")
    assert_scores(result, rubric, zero={"tv_loss"}, full={"gram_matrix", "style_loss"})


LEAVER = '''def _leave(content_weight, content_current, content_original):
    """Leaves a file in every writable folder (they must exist for it), and looks for the host's
    bubblewrap command line or paths in /proc."""
    import os
    value = content_weight * torch.sum((content_current - content_original) ** 2)
    for folder in ("/tmp", "/dev/shm", "/var/tmp", ".", os.path.expanduser("~")):
        with open(os.path.join(folder, "left-by-content-loss"), "w") as file:
            file.write("x")
    seen = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                line = file.read()
        except OSError:
            continue
        if b"bwrap" in line or b"cs231n-grade-" in line:
            seen.append((pid, line[:200]))
    if seen:
        print("SEEN", seen)
        return 0 * value
    return value


def content_loss(content_weight, content_current, content_original):  # loop-free: the probing is a helper's
    return _leave(content_weight, content_current, content_original)
'''

LOOKER = '''def _look(features, normalize=True):
    """Right only if nothing content_loss left is here, and the submission is (read-only)."""
    import os
    left = [folder for folder in ("/tmp", "/dev/shm", "/var/tmp", ".", os.path.expanduser("~"))
            if os.path.exists(os.path.join(folder, "left-by-content-loss"))]
    try:
        open("submission/planted", "w")
        left.append("wrote into the submission")
    except OSError:
        pass
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = flat @ flat.transpose(1, 2) / (c * h * w if normalize else 1)
    if left or not os.listdir("submission"):
        print("LEFT", left)
        return 2 * gram
    return gram


def gram_matrix(features, normalize=True):  # loop-free: the looking is a helper's
    return _look(features, normalize)
'''


@needs_bwrap
def test_each_function_has_its_own_folders_and_proc_shows_no_host_command_line(tmp_path, rubric):
    """content_loss writes into /tmp, /dev/shm, /var/tmp, its working folder and HOME, and reads
    every /proc/PID/cmdline; gram_matrix (the next function's process) must see none of those
    files, and still its submission folder. Both score full marks only if so."""
    result = grade(tmp_path, rubric, {"content_loss": LEAVER, "gram_matrix": LOOKER})
    assert "SEEN" not in result.printed and "LEFT" not in result.printed, result.printed
    assert_scores(result, rubric)


@needs_bwrap
def test_a_runtime_folder_bound_under_tmp_is_still_there_in_each_functions_fresh_tmp(tmp_path, monkeypatch):
    """A runtime folder under /tmp (e.g. a virtual environment made there) is bound into the sandbox
    under its /tmp: each function's fresh /tmp binds it in again."""
    bound = tmp_path / "runtime"
    bound.mkdir()
    (bound / "marker.txt").write_text("still bound")
    runtime = sandbox.runtime_paths()
    monkeypatch.setattr(sandbox, "runtime_paths", lambda: [*runtime, bound])
    source = (f"def tv_loss(img, tv_weight):\n    print(open({str(bound / 'marker.txt')!r}).read())\n"
              "    return tv_weight * img.sum()\n")
    request = {"function": "tv_loss", "dtype": "float64", "args": [{"tensor": np.ones((1, 3, 4, 5))}, 0.5]}
    with Sandbox([{"kind": "def", "name": "tv_loss", "source": source}], limits=Limits(timeout_s=20)) as box:
        box.start()
        reply = box.call(request)
        printed = box.printed_output()
    assert reply["status"] == "returned", reply
    assert "still bound" in printed
