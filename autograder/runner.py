"""The sandboxed child: runs a student's functions on inputs it is sent, and sends back raw outputs.

Started by :mod:`autograder.sandbox` as ``python -I -u runner.py RESULT_FD`` (never imported by
the grader). It receives, on stdin, a nonce line and then framed messages (:mod:`autograder.protocol`):
first a setup (the student's extracted source pieces, limits, the user to become), then one
request per call. It answers on ``RESULT_FD`` (a pipe) with the call's raw facts: the output (type,
shape, dtype, device, values), the gradients, the inputs after the call, or the exception raised.
It judges nothing: expected values and diagnoses live only in the grader.

Before any student code runs, the runner (still trusted) imports what it needs, hides paths
(when it runs as root in a private mount namespace), sets resource limits (address space, CPU
time, file size, processes, open files, no core dumps) and drops to an unprivileged user. The
student's imports are executed one by one, lazily where possible (``import cs231n_style as cs``
costs nothing unless used), and each ``def`` separately, so one broken piece breaks only itself.
"""

from __future__ import annotations

import ast
import builtins
import collections  # noqa: F401 - pre-imported: after dropping privileges the stdlib may be unreadable
import encodings.idna  # noqa: F401 - (so that e.g. socket errors are the real ones)
import functools  # noqa: F401
import importlib.util
import itertools  # noqa: F401
import math  # noqa: F401
import os
import resource
import signal
import subprocess
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from autograder.protocol import build_tensors, read_message, read_nonce, write_message  # noqa: E402

sys.path.pop(0)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional  # noqa: E402,F401

STUDENT_FILE = "<your notebook: {name}>"


# --- before student code: hide, limit, drop privileges ----------------------------------------

def hide_paths(paths: list[str]) -> list[str]:
    """Mount an empty, unreadable tmpfs over each path (needs root in a private mount namespace).

    Returns the paths hidden.
    """
    hidden = []
    for path in paths:
        if os.path.isdir(path):
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,mode=000", "none", path],
                                  capture_output=True).returncode == 0
            if done:
                hidden.append(path)
    return hidden


def _vm_size_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def set_limits(memory_bytes: int, cpu_seconds: int, file_bytes: int, processes: int) -> None:
    """Limit what the student's code may use; ``memory_bytes`` counts beyond what is mapped now."""
    limits = {
        resource.RLIMIT_AS: _vm_size_bytes() + memory_bytes,
        resource.RLIMIT_CPU: cpu_seconds,
        resource.RLIMIT_FSIZE: file_bytes,
        resource.RLIMIT_NPROC: processes,
        resource.RLIMIT_NOFILE: 256,
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in limits.items():
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-long write raises OSError instead of killing us


def drop_privileges(uid: int | None, gid: int | None) -> None:
    """Become ``uid``/``gid`` (no supplementary groups) when running as root; exit if that fails."""
    if uid is None or os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        sys.exit("runner: could not drop root privileges")


def warm_up() -> None:
    """Run typical tensor code once on CPU and on the 'meta' device, with gradients.

    PyTorch imports some modules on first use (the meta device pulls in a few hundred); after
    dropping privileges the interpreter's standard library may be unreadable (e.g. a Python under
    /root), so everything the student's code is likely to touch is imported now.
    """
    for device in ("cpu", "meta"):
        x = torch.ones(2, 3, 4, 5, dtype=torch.float64, device=device, requires_grad=True)
        n, c, h, w = x.shape
        flat = x.reshape(n, c, h * w)
        gram = torch.bmm(flat, flat.transpose(1, 2)) + torch.einsum("nci,ndi->ncd", flat, flat) + flat @ flat.mT
        loss = gram.sum() + torch.sum((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2) + torch.diff(x, dim=3).pow(2).mean()
        loss = loss + x.abs().sum() + x.view(-1).norm() + torch.linalg.norm(flat) + torch.zeros_like(loss)
        loss = loss + torch.nn.functional.mse_loss(x, x.detach(), reduction="sum") + torch.tensor(0.0, device=device)
        torch.autograd.grad(gram, x, torch.ones_like(gram), retain_graph=True)
        torch.autograd.grad(loss, x)
    float(loss.detach().cpu().item()) if loss.device.type == "cpu" else None
    x.detach().cpu().numpy() if x.device.type == "cpu" else None


# --- loading the student's code ---------------------------------------------------------------

def _lazy_module(name: str):
    """A module that is imported on first attribute access (``importlib.util.LazyLoader``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def _run_import(source: str, namespace: dict) -> None:
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Import) and all("." not in alias.name for alias in node.names):
            for alias in node.names:
                namespace[alias.asname or alias.name] = _lazy_module(alias.name)
        else:
            exec(compile(ast.Module([node], []), "<your imports>", "exec"), namespace)


def load_student_code(pieces: list[dict]) -> tuple[dict, dict]:
    """Execute the student's imports and ``def`` blocks, each on its own.

    Args:
        pieces: ``{"kind": "import" | "def", "name": ..., "source": ...}`` in order.

    Returns:
        ``(namespace, errors)``: errors maps a piece's name (or its import line) to why it failed.
    """
    import linecache

    namespace: dict = {"__name__": "student", "__builtins__": builtins}
    errors: dict = {}
    for piece in pieces:
        try:
            if piece["kind"] == "import":
                _run_import(piece["source"], namespace)
            else:
                filename = STUDENT_FILE.format(name=piece["name"])
                source = piece["source"]
                linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
                exec(compile(source, filename, "exec"), namespace)
        except BaseException as error:  # noqa: BLE001 - anything the student wrote may fail
            errors[piece.get("name") or piece["source"]] = f"{type(error).__name__}: {error}"
    return namespace, errors


# --- one call -----------------------------------------------------------------------------------

def _where(error: BaseException) -> str:
    """``"\\n  in your code (function), line N: ..."`` for the student's innermost frame, as the checks say it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith("<your notebook")]
    if frames and frames[-1].line:
        function = f" ({frames[-1].name})" if frames[-1].name not in ("<module>", "<lambda>") else ""
        return f"\n  in your code{function}, line {frames[-1].lineno}: {frames[-1].line.strip()}"
    return ""


def _values(tensor) -> np.ndarray | None:
    if tensor is None or tensor.device.type == "meta":
        return None
    return tensor.detach().cpu().to(torch.float64).numpy()


def describe_output(out) -> dict:
    """The facts about a returned object that the grader needs."""
    if isinstance(out, torch.Tensor):
        return {"type": "Tensor", "dtype": str(out.dtype), "shape": list(out.shape), "device": out.device.type,
                "requires_grad": bool(out.requires_grad), "value": _values(out)}
    if isinstance(out, np.ndarray):
        value = out.astype(np.float64) if out.dtype.kind in "fiub" else None
        return {"type": "ndarray", "shape": list(out.shape), "value": value}
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return {"type": type(out).__name__, "shape": [], "value": np.array(float(out))}
    return {"type": type(out).__name__}


def correct_gram_matrix(features, normalize=True):
    """A correct Gram matrix (Gatys et al., 2016, Eq. 3, CS231n's normalization), swapped in for the
    student's own when the grader asks (``correct_gram_matrix`` in a request), so that ``style_loss``
    can be graded on its own. ``features`` (N, C, H, W), any float dtype and device -> (N, C, C),
    same dtype and device, divided by C*H*W when ``normalize``. Raises what torch raises for a
    tensor that is not 4-D."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = flat @ flat.transpose(1, 2)
    return gram / (c * h * w) if normalize else gram


def run_call(namespace: dict, request: dict) -> dict:
    """Call ``request["function"]`` on the request's inputs; return the facts (never raises)."""
    dtype = getattr(torch, request.get("dtype", "float64"))
    device = request.get("device", "cpu")
    tensors: list[torch.Tensor] = []
    args = build_tensors(request["args"], dtype, device, tensors)
    function = namespace.get(request["function"])
    if not callable(function):
        return {"status": "missing"}
    swap = bool(request.get("correct_gram_matrix"))
    own_gram = namespace.get("gram_matrix", correct_gram_matrix)
    if swap:
        namespace["gram_matrix"] = correct_gram_matrix  # the student's functions look it up at call time
    try:
        out = function(*args)
    except BaseException as error:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... all count as the student's
        return {"status": "raised", "error": {"type": type(error).__name__, "text": str(error)[:2000],
                                              "where": _where(error)}}
    finally:
        if swap and own_gram is correct_gram_matrix:
            del namespace["gram_matrix"]  # the student defined none
        elif swap:
            namespace["gram_matrix"] = own_gram
    result = {"status": "returned", "output": describe_output(out),
              "inputs_after": [_values(t) for t in tensors]}
    wanted = [t for t in tensors if t.requires_grad]
    if request.get("grad") and isinstance(out, torch.Tensor) and out.requires_grad and wanted:
        try:
            upstream = request.get("upstream")
            upstream = None if upstream is None else torch.tensor(upstream, dtype=out.dtype, device=out.device)
            grads = torch.autograd.grad(out, wanted, grad_outputs=upstream, allow_unused=True)
            result["grads"] = [_values(g) for g in grads]
        except BaseException as error:  # noqa: BLE001
            result["grad_error"] = f"{type(error).__name__}: {error}"[:2000]
    return result


def main() -> int:
    result_fd = int(sys.argv[1])
    nonce = read_nonce(0)
    setup = read_message(0, nonce)
    torch.set_num_threads(1)
    warm_up()
    hidden = hide_paths(setup.get("hide_paths", [])) if setup.get("hide") and os.geteuid() == 0 else []
    set_limits(setup["memory_bytes"], setup["cpu_seconds"], setup["file_bytes"], setup["processes"])
    drop_privileges(setup.get("uid"), setup.get("gid"))
    namespace, errors = load_student_code(setup["pieces"])
    write_message(result_fd, nonce, {"ready": True, "load_errors": errors, "uid": os.getuid(), "hidden": hidden})
    while True:
        try:
            request = read_message(0, nonce)
        except Exception:  # noqa: BLE001 - end of input: the grader is done
            return 0
        try:
            reply = run_call(namespace, request)
        except BaseException as error:  # noqa: BLE001 - e.g. the student's code broke torch itself
            reply = {"status": "raised", "error": {"type": type(error).__name__, "text": str(error)[:2000],
                                                   "where": ""}}
        reply["id"] = request.get("id")
        write_message(result_fd, nonce, reply)


if __name__ == "__main__":
    sys.exit(main())
