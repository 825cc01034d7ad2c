"""The sandboxed child: runs a student's functions on inputs it is sent, and sends back raw outputs.

Started by :mod:`autograder.sandbox` as ``python -I -u runner.py CONTROL_FD`` (never imported by
the grader). It is a *template* (the idea of Android's zygote and of multiprocessing's forkserver):
it imports torch and warms it up once, runs no student code, and forks one fresh process per
student function when the grader asks on the control socket, handing it the pipes of that
function (``SCM_RIGHTS``). Each forked process sets its limits, drops to its own uid, loads the
student's code and answers requests; one function's monkey-patching ends with its process.

Messages (:mod:`autograder.protocol`, loaded from this file's folder) are framed with a nonce:
first, on stdin, the setup (the student's extracted source pieces, limits, paths), then on each
student process's request pipe one request per call. It answers on its reply pipe with the call's
raw facts: the output (type, shape, dtype, device, values), the gradients, the inputs after the
call, or the exception raised. It judges nothing and holds nothing of the grader's: no expected
values, no correct function.

Before any student code runs, the runner (still trusted) imports what it needs, hides paths and
makes private tmpfs folders (only in the ``unshare`` fallback: under bubblewrap only what is bound
exists), sets resource limits (address space, CPU time, file size, open files, no core dumps),
drops to the sandbox's unprivileged uid and then limits its processes (``RLIMIT_NPROC``: when no
cgroup caps the memory of the whole process tree, to the tasks it has, so that it cannot fork).
The student's imports are executed one by one, lazily where possible (``import cs231n_style as
cs`` costs nothing unless used), and each ``def`` separately, so one broken piece breaks only itself.

``style_loss`` is graded on its own: when a call fails with the student's ``gram_matrix``, the
grader calls it again with ``gram_matrix`` standing for a lookup of Gram matrices the grader
computed in its own process for exactly that call's feature maps (:func:`given_gram_matrix`).
``guided_style_loss`` likewise, with ``guided_gram_matrix`` standing for a lookup of the guided
Gram matrices of that call's style layers' feature maps and masks (:func:`given_guided_gram_matrix`).
"""

from __future__ import annotations

import ast
import builtins
import collections  # noqa: F401 - pre-imported: after dropping privileges the stdlib may be unreadable
import encodings.idna  # noqa: F401 - (so that e.g. socket errors are the real ones)
import functools
import importlib.util
import itertools  # noqa: F401
import math  # noqa: F401
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path


def _load_file(name: str, path: Path):
    """The Python file at ``path`` as a private module named ``name``: no package is imported and
    no ``sys.path`` entry is needed."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# protocol.py from this file's folder (under bubblewrap these two files are all of the grader there is)
_protocol = _load_file("_cs231n_grading_protocol", Path(__file__).resolve().parent / "protocol.py")
build_tensors, read_message, read_nonce, write_message = (_protocol.build_tensors, _protocol.read_message,
                                                          _protocol.read_nonce, _protocol.write_message)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional  # noqa: E402,F401

STUDENT_FILE = "<your notebook: {name}>"
STUDENT_FILE_PREFIX = STUDENT_FILE.split("{")[0]


# --- before student code: hide, limit, drop privileges ----------------------------------------

def hide_paths(paths: list[str], private: list[str], private_bytes: int) -> list[str]:
    """The ``unshare`` fallback's mounts (root in a private mount namespace): an empty, unreadable
    tmpfs over each of ``paths`` (the grader's folders) and a fresh, size-limited, world-writable
    tmpfs on each of ``private`` (e.g. /dev/shm, /var/tmp), gone when the namespace ends.

    Returns the ``paths`` hidden (a path that is missing or could not be covered is left out).
    """
    hidden = []
    for path in private:
        if os.path.isdir(path):
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={private_bytes},mode=1777", "none", path],
                           capture_output=True)
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


def set_limits(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    """Limit what the student's code may use; ``memory_bytes`` (address space of each process)
    counts beyond what is mapped now."""
    limits = {
        resource.RLIMIT_AS: _vm_size_bytes() + memory_bytes,
        resource.RLIMIT_CPU: cpu_seconds,
        resource.RLIMIT_FSIZE: file_bytes,
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


def own_tasks() -> int:
    """How many tasks (processes and threads) this process's real uid has, as far as /proc shows
    (in the sandbox's PID namespace: only the sandbox's)."""
    uid, count = str(os.getuid()), 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Uid:"):
                    count += len(os.listdir(f"/proc/{pid}/task")) if line.split()[1] == uid else 0
                    break
        except OSError:
            continue
    return count


def limit_processes(processes: int | None, forbid_fork: bool) -> int | None:
    """Set ``RLIMIT_NPROC`` (after dropping privileges: it counts the tasks of the real uid, which
    is the sandbox's own). ``forbid_fork``: to the tasks there are now, so that no process or
    thread can be created (the fallback when no cgroup caps the memory of the whole tree).

    Returns the limit set, or ``None`` (nothing set).
    """
    value = own_tasks() if forbid_fork else processes
    if not value:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (value, value))
    except (ValueError, OSError):
        return None
    return value


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
        masks = torch.ones(n, 3, h, w, dtype=x.dtype, device=device)  # notebook 05's guided Gram matrices
        masked = x.reshape(n, 1, c, h * w) * masks.reshape(n, 3, 1, h * w)
        guided = masked @ masked.transpose(-1, -2) / (c * (masks**2).sum(dim=(2, 3))).reshape(n, 3, 1, 1)
        guided = guided + torch.einsum("nrci,nrdi->nrcd", masked, masked) + torch.stack([g for g in guided], dim=0)
        torch.autograd.grad(guided, x, torch.ones_like(guided), retain_graph=True)
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

@functools.cache
def _tracebacks():
    """``cs231n_style/_tracebacks.py``, the checks' own formatter of the student's line, loaded by its
    path: importing the package would import all of it (torchvision, nbformat, ...). Loaded by the
    template (:func:`main`), before anything is hidden or any privilege dropped."""
    package = importlib.util.find_spec("cs231n_style")
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("runner: cs231n_style is not importable here")
    return _load_file("_cs231n_style_tracebacks", Path(package.submodule_search_locations[0]) / "_tracebacks.py")


def _where(error: BaseException) -> str:
    """``"\\n  in your code (function), line N: ..."`` for the student's innermost frame, as the checks say it."""
    return _tracebacks().where_in_your_code(error, lambda frame: frame.filename.startswith(STUDENT_FILE_PREFIX))


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


class _GivenGram(torch.autograd.Function):
    """A Gram matrix the grader computed (``value``), attached to the autograd graph of ``features``.

    Forward returns a copy of ``value``; backward is the Gram matrix's vector-Jacobian product,
    ``dF = scale * (dG + dG^T) @ F`` (``F``: features as (N, C, H*W); ``scale``: 1/(C*H*W) or 1),
    so that ``style_loss``'s gradient can be checked too.
    """

    @staticmethod
    def forward(ctx, features, value, scale):
        ctx.save_for_backward(features)
        ctx.scale = scale
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        (features,) = ctx.saved_tensors
        n, c = features.shape[:2]
        flat = features.reshape(n, c, -1)
        return ((grad + grad.transpose(1, 2)) @ flat * ctx.scale).reshape(features.shape), None, None


def given_gram_matrix(feats: list, grams: list):
    """A stand-in ``gram_matrix`` for one ``style_loss`` call: a lookup, not an implementation.

    Args:
        feats: the call's feature maps (tensors, (1, C_l, H_l, W_l)), as the student's code got them.
        grams: for each of ``feats``, ``{"normalized": tensor, "raw": tensor, "scale": float}``: its
            Gram matrix divided by C*H*W and not, computed by the grader, and 1/(C*H*W).

    Returns:
        ``gram_matrix(features, normalize=True)`` that returns the given Gram matrix of the one of
        ``feats`` that ``features`` is (or equals: same shape and values), and raises
        ``LookupError`` for any other tensor - so it can never compute a Gram matrix of its own.
    """
    def gram_matrix(features, normalize=True):
        for known, gram in zip(feats, grams):
            if features is known or (isinstance(features, torch.Tensor) and features.shape == known.shape
                                     and features.device == known.device
                                     and (known.device.type == "meta"
                                          or torch.equal(features.detach().to(known.dtype), known.detach()))):
                value = gram["normalized" if normalize else "raw"].to(features.dtype)
                return _GivenGram.apply(features, value, gram["scale"] if normalize else 1.0)
        raise LookupError("the grader's stand-in gram_matrix (used because a call with yours failed) knows only "
                          "the feature maps style_loss is given: call gram_matrix(feats[layer]) on them, unchanged")
    return gram_matrix


class _GivenGuidedGram(torch.autograd.Function):
    """A guided Gram matrix the grader computed (``value``, (N, R, C, C)), attached to the autograd graph
    of ``features``.

    Forward returns a copy of ``value``; backward is the guided Gram matrix's vector-Jacobian product
    (Gatys et al., CVPR 2017, Sec. 4): with ``W_r = F * m_r`` (features (N, 1, C, H*W) times region
    r's mask), ``dF = sum_r m_r * (scale_r (dG_r + dG_r^T) @ W_r)`` (``scale``: (N, R, 1, 1), 1 / (C
    * sum m^2) or 1). The masks get no gradient.
    """

    @staticmethod
    def forward(ctx, features, masks, value, scale):
        ctx.save_for_backward(features, masks, scale)
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        features, masks, scale = ctx.saved_tensors
        n, c = features.shape[:2]
        mask = masks.reshape(n, masks.shape[1], 1, -1)
        weighted = features.reshape(n, 1, c, -1) * mask
        d_weighted = (scale * (grad + grad.transpose(-1, -2))) @ weighted
        return (d_weighted * mask).sum(dim=1).reshape(features.shape), None, None, None


def _same_tensor(tensor, known) -> bool:
    """Whether ``tensor`` is ``known`` or equals it (same shape, device and values; shape only on 'meta')."""
    return tensor is known or (isinstance(tensor, torch.Tensor) and tensor.shape == known.shape
                               and tensor.device == known.device
                               and (known.device.type == "meta"
                                    or torch.equal(tensor.detach().to(known.dtype), known.detach())))


def given_guided_gram_matrix(feats: list, content_masks: list, grams: list):
    """A stand-in ``guided_gram_matrix`` for one ``guided_style_loss`` call: a lookup, not an implementation.

    Args:
        feats: the call's feature maps (tensors, (1, C_l, H_l, W_l)), as the student's code got them.
        content_masks: the call's masks, ``content_masks[i]`` (1, R, H, W) for the i-th style layer.
        grams: for each position i, ``{"layer": style_layers[i], "normalized": tensor, "raw": tensor,
            "scale": tensor (1, R, 1, 1)}``, computed by the grader.

    Returns:
        ``guided_gram_matrix(features, masks, normalize=True)`` that returns the given guided Gram
        matrix when ``features`` is (or equals) ``feats[style_layers[i]]`` and ``masks`` is (or
        equals) ``content_masks[i]`` for some i, and raises ``LookupError`` for anything else.
    """
    def guided_gram_matrix(features, masks, normalize=True):
        for masks_i, gram in zip(content_masks, grams):
            if _same_tensor(features, feats[gram["layer"]]) and _same_tensor(masks, masks_i):
                value = gram["normalized" if normalize else "raw"].to(features.dtype)
                scale = gram["scale"] if normalize else torch.ones_like(gram["scale"])
                return _GivenGuidedGram.apply(features, masks, value, scale.to(features.dtype))
        raise LookupError("the grader's stand-in guided_gram_matrix (used because a call with yours failed) knows "
                          "only the style layers' feature maps with their masks: call guided_gram_matrix("
                          "feats[style_layers[i]], content_masks[i]) on them, unchanged")
    return guided_gram_matrix


#: The functions re-run with a stand-in: function -> (the name it calls, the stand-in's maker).
_STAND_INS = {
    "style_loss": ("gram_matrix", lambda args, grams: given_gram_matrix(args[0], grams)),
    "guided_style_loss": ("guided_gram_matrix", lambda args, grams: given_guided_gram_matrix(args[0], args[4], grams)),
}


def _build_grams(grams: list, dtype, device: str) -> list[dict]:
    """The grader's Gram matrices as tensors (a ``scale`` leaf too for the guided ones)."""
    out = []
    for gram in grams:
        built = {"normalized": build_tensors(gram["normalized"], dtype, device),
                 "raw": build_tensors(gram["raw"], dtype, device)}
        if isinstance(gram["scale"], dict):
            built.update(layer=int(gram["layer"]), scale=build_tensors(gram["scale"], dtype, device))
        else:
            built["scale"] = float(gram["scale"])
        out.append(built)
    return out


def run_call(namespace: dict, request: dict) -> dict:
    """Call ``request["function"]`` on the request's inputs; return the facts (never raises).

    With ``request["grams"]`` (a ``style_loss`` or ``guided_style_loss`` call only), the student's
    ``gram_matrix`` (``guided_gram_matrix``) is replaced during the call by
    :func:`given_gram_matrix` (:func:`given_guided_gram_matrix`) for that call's inputs.
    """
    dtype = getattr(torch, request.get("dtype", "float64"))
    device = request.get("device", "cpu")
    tensors: list[torch.Tensor] = []
    args = build_tensors(request["args"], dtype, device, tensors)
    function = namespace.get(request["function"])
    if not callable(function):
        return {"status": "missing"}
    grams = request.get("grams") if request["function"] in _STAND_INS else None
    missing = object()
    helper, make_stand_in = _STAND_INS.get(request["function"], ("gram_matrix", None))
    own_helper = namespace.get(helper, missing)
    if grams:
        # the student's code looks the helper up at call time
        namespace[helper] = make_stand_in(args, _build_grams(grams, dtype, device))
    try:
        out = function(*args)
    except BaseException as error:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... all count as the student's
        return {"status": "raised", "error": {"type": type(error).__name__, "text": str(error)[:2000],
                                              "where": _where(error)}}
    finally:
        if grams and own_helper is missing:
            namespace.pop(helper, None)  # the student defined none
        elif grams:
            namespace[helper] = own_helper
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


def serve(setup: dict, command: dict, request_fd: int, reply_fd: int) -> None:
    """One student process (a fresh fork of the template, for one function): limit, drop
    privileges, load the student's code, report ready, then answer requests until they end."""
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")  # the kernel kills it first, never the template
    except OSError:
        pass
    set_limits(setup["memory_bytes"], setup["cpu_seconds"], setup["file_bytes"])
    drop_privileges(command.get("uid"), command.get("gid"))
    nproc = (limit_processes(setup.get("processes"), bool(command.get("forbid_fork")))
             if command.get("own_uid") else None)
    nonce = command["nonce"]
    namespace, errors = load_student_code(setup["pieces"])
    write_message(reply_fd, nonce, {"ready": True, "load_errors": errors, "uid": os.getuid(), "nproc": nproc})
    while True:
        try:
            request = read_message(request_fd, nonce)
        except Exception:  # noqa: BLE001 - end of input: the grader is done with this function
            return
        try:
            reply = run_call(namespace, request)
        except BaseException as error:  # noqa: BLE001 - e.g. the student's code broke torch itself
            reply = {"status": "raised", "error": {"type": type(error).__name__, "text": str(error)[:2000],
                                                   "where": ""}}
        reply["id"] = request.get("id")
        write_message(reply_fd, nonce, reply)


def _reap(codes: dict) -> None:
    """Collect ended children: ``codes[pid]`` = exit code (negative: killed by that signal)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        codes[pid] = os.waitstatus_to_exitcode(status)


def main() -> int:
    """The template: set up once (imports, warm-up, hidden paths), then fork one student process per
    ``fork`` command received on the control socket (``sys.argv[1]``), with the pipes and output
    file sent along (``SCM_RIGHTS``); ``kill`` kills the current one. Runs no student code itself."""
    import json
    import socket

    control = socket.socket(fileno=int(sys.argv[1]))
    nonce = read_nonce(0)
    setup = read_message(0, nonce)
    torch.set_num_threads(1)
    for path in setup.get("extra_path") or []:
        if path not in sys.path:
            sys.path.append(path)  # where cs231n_style is when the runtime does not install it
    _tracebacks()
    warm_up()
    hidden = []
    if setup.get("hide") and os.geteuid() == 0:
        hidden = hide_paths(setup.get("hide_paths", []), setup.get("private_paths", []), setup["private_bytes"])
    control.sendall(json.dumps({"ready": True, "hidden": hidden}).encode())
    child, codes = None, {}
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 16, 3)
        except OSError:
            return 0
        if not data:
            return 0  # the grader is done
        _reap(codes)
        command = json.loads(data)
        if command.get("cmd") == "fork" and len(fds) == 3:
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    control.close()
                    os.setsid()  # its own process group: killed as one
                    request_fd, reply_fd, output_fd = fds
                    os.dup2(output_fd, 1)
                    os.dup2(output_fd, 2)
                    os.close(output_fd)
                    serve(setup, command, request_fd, reply_fd)
                except BaseException:  # noqa: BLE001 - the process ends here, whatever happened
                    code = 1
                os._exit(code)
            child, codes = pid, {}
            reply = {"pid": pid}
        else:  # "kill" (the reply says how it ended), or a fork without its three files
            code = None
            if child is not None:
                try:
                    os.killpg(child, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
                except ChildProcessError:
                    code = codes.get(child)
            child, reply = None, {"killed": True, "code": code}
        for fd in fds:
            os.close(fd)
        control.sendall(json.dumps(reply).encode())


if __name__ == "__main__":
    sys.exit(main())
