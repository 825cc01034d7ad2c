"""The sandboxed child: runs a student's functions on inputs it is sent, and sends back raw outputs.

Started by :mod:`autograder.sandbox` as ``python -I -u runner.py CONTROL_FD`` (never imported by
the grader). It is a *template* (the idea of Android's zygote and of multiprocessing's forkserver):
it imports torch and warms it up once, runs no student code, and forks one fresh process per
student function when the grader asks on the control socket, handing it the pipes of that
function (``SCM_RIGHTS``); one function's monkey-patching ends with its processes.

Each function gets two processes, so that the student's code never runs where the grader's channel is:

* the **relay** (the template's fork; :func:`relay`) holds the grader's request and reply pipes and
  the function's nonce, and never runs student code. As root it first gives itself a private mount
  namespace with fresh, size-limited tmpfs folders (under bubblewrap: scratch - the working folder
  and ``HOME`` -, ``/tmp``, ``/dev/shm``, ``/var/tmp``; in the ``unshare`` fallback ``/dev/shm``,
  ``/var/tmp``, ``TMPDIR`` and ``HOME``), what was mounted inside them (the read-only submission,
  a runtime folder under ``/tmp``) bound in again, so that nothing one function writes there is
  seen by another. It is not dumpable (``PR_SET_DUMPABLE`` 0), as the
  template is: a process of another uid - or of the same uid without ``CAP_SYS_PTRACE`` - can
  neither ptrace it nor open its ``/proc/PID/fd`` or memory.
* the **student's process** (:func:`serve`), forked by the relay *before* the relay has read the
  nonce (the grader writes it first on the request pipe), closes every descriptor but its own
  pipe pair to the relay, sets its limits, drops to its uid, and only then loads the student's
  code. It has no descriptor to the grader and never had its nonce in memory: there is nothing
  for its code to find by walking frames or the garbage collector.

The relay reads each request from the grader, writes the call's input tensors into a shared memory
region (an anonymous ``MAP_SHARED`` mapping made before the fork) and sends the student's process
the request with each input pointing there; the student's process wraps that memory without
copying (``torch.from_numpy``), calls the function and answers. The relay reads at most one reply
per request, at most :data:`REPLY_BYTES` (header :data:`REPLY_HEADER_BYTES`), decodes it with
:mod:`autograder.protocol`'s limits, checks it against the schema of a reply to that request
(:func:`check_reply`: keys, types, text lengths, array dtypes and shapes matching the inputs) and
forwards it to the grader framed with the nonce. Anything else the student's process writes to
its reply pipe - a second reply, a message before a request, a malformed or oversized one - makes
the relay refuse the function (``{"rejected": why}``; the grader gives the remaining calls 0).

What the grader gets, and from whom:

* **measured by the relay**: the inputs after the call (``inputs_after``: the shared memory the
  function's tensors are, read by the relay itself once the reply came), the uid the process runs
  as, whether its folders are private, its exit status;
* **reported by the student's process**, so as good as the student's code makes them: the output
  (type, dtype, shape, device, ``requires_grad``, values), the gradients, an exception raised,
  its load errors and (before any student code runs) its ``RLIMIT_NPROC``. Forging these gains
  nothing that computing them would not: the grader compares them with its own expected values.
  The one report it takes from the student's process about the inputs can only make them look
  modified, never unmodified: where the shared memory is unchanged, the values of the tensor
  objects themselves (a function that swapped a tensor's storage, e.g. ``x.data = ...``).

Messages (:mod:`autograder.protocol`, loaded from this file's folder) are framed: first, on stdin,
the template's nonce and setup (the student's extracted source pieces, limits, paths); per function,
on its request pipe, the function's nonce, then one request per call. The replies hold the call's
raw facts; the runner judges nothing and holds nothing of the grader's: no expected values, no
correct function.

Before any student code runs, the student's process (still root where the grader is) sets
resource limits (address space, CPU time, file size, open files, no core dumps), drops to the
sandbox's unprivileged uid (which clears every capability) and then limits its processes
(``RLIMIT_NPROC``: when no cgroup caps the memory of the whole process tree, to the tasks it has,
so that it cannot fork). In the ``unshare`` fallback the template first covers the grader's
folders with empty tmpfs mounts (under bubblewrap only what is bound exists). The student's
imports are executed one by one, lazily where possible (``import cs231n_style as cs`` costs nothing
unless used), and each ``def`` separately, so one broken piece breaks only itself.

``style_loss`` is graded on its own: when a call fails with the student's ``gram_matrix``, the
grader calls it again with ``gram_matrix`` standing for a lookup of Gram matrices the grader
computed in its own process for exactly that call's feature maps (:func:`given_gram_matrix`).
``guided_style_loss`` likewise, with ``guided_gram_matrix`` standing for a lookup of the guided
Gram matrices of that call's style layers' feature maps and masks (:func:`given_guided_gram_matrix`).

``photorealism_loss`` (notebook 06) gets its Matting Laplacian as a sparse leaf of the request (CSR
arrays the grader computed), built into the notebook's own tensor type, a ``MattingLaplacian`` that
refuses ``.to_dense()`` (``cs231n_style/_matting_tensor.py``, loaded by its path: :func:`_matting`).
It is not read back after the call (only the dense inputs are).
"""

from __future__ import annotations

import ast
import builtins
import collections  # noqa: F401 - pre-imported: after dropping privileges the stdlib may be unreadable
import ctypes
import encodings.idna  # noqa: F401 - (so that e.g. socket errors are the real ones)
import functools
import importlib.util
import itertools  # noqa: F401
import math  # noqa: F401
import mmap
import os
import re
import resource
import secrets
import select
import signal
import stat
import sys
from pathlib import Path


def _load_file(name: str, path: Path):
    """The Python file at ``path`` as a private module named ``name``: no package is imported and
    no ``sys.path`` entry is needed."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"runner: {path} is not a Python file that can be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# protocol.py from this file's folder (under bubblewrap these two files are all of the grader there is)
_protocol = _load_file("_cs231n_grading_protocol", Path(__file__).resolve().parent / "protocol.py")
build_tensors, read_message, read_nonce, write_message = (_protocol.build_tensors, _protocol.read_message,
                                                          _protocol.read_nonce, _protocol.write_message)
ProtocolError, MAX_DEPTH = _protocol.ProtocolError, _protocol.MAX_DEPTH

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional  # noqa: E402

STUDENT_FILE = "<your notebook: {name}>"
STUDENT_FILE_PREFIX = STUDENT_FILE.split("{")[0]
#: The most characters of a name (an exception's type, a piece of code) and of a text in a reply.
NAME_CHARS, TEXT_CHARS = 200, 2000
#: The largest reply the relay takes from the student's process: its JSON header, and in all.
REPLY_HEADER_BYTES, REPLY_BYTES = 1 << 20, 64 << 20
#: The shared memory for a call's inputs (a request is at most 64 MB; float32/float64 values fit).
INPUT_BYTES = 65 << 20

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_CHILD_SUBREAPER = 1, 4, 36
_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000


# --- before student code: hide, limit, drop privileges ----------------------------------------

def _libc(name: str, *args) -> None:
    """Call the C library's ``name`` (prctl, unshare, mount); raise ``OSError`` if it fails."""
    if getattr(_LIBC, name)(*args) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{name}: {os.strerror(number)}")


def _prctl(option: int, value: int) -> None:
    _libc("prctl", ctypes.c_int(option), *(ctypes.c_ulong(v) for v in (value, 0, 0, 0)))


def _mount_tmpfs(path: str, options: str) -> None:
    _libc("mount", b"tmpfs", path.encode(), b"tmpfs", ctypes.c_ulong(_MS_NOSUID | _MS_NODEV), options.encode())


def hide_paths(paths: list[str]) -> list[str]:
    """The ``unshare`` fallback's cover (the template, root in a private mount namespace): an empty,
    unreadable tmpfs over each of ``paths`` (the grader's folders).

    Returns the ``paths`` hidden (a path that is missing or could not be covered is left out).
    """
    hidden = []
    for path in paths:
        if os.path.isdir(path):
            try:
                _mount_tmpfs(path, "size=4k,mode=000")
            except OSError:
                continue
            hidden.append(path)
    return hidden


def _mounts_inside(path: str) -> list[str]:
    """The mount points strictly inside ``path`` (``/proc/self/mountinfo``), outermost only."""
    inside = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda code: chr(int(code.group(1), 8)), line.split()[4])
        if point.startswith(path.rstrip("/") + "/"):
            inside.add(point)
    return sorted(p for p in inside if not any(p.startswith(outer + "/") for outer in inside))


def _cover(path: str, options: str) -> None:
    """Mount a fresh tmpfs on ``path``, with what was mounted inside it (e.g. a runtime folder bound
    under /tmp, the submission under the scratch folder) bound again at the same places, as it was
    (read-only stays read-only)."""
    kept = [(point, os.open(point, os.O_PATH)) for point in _mounts_inside(path)]
    try:
        _mount_tmpfs(path, options)
        for point, fd in kept:
            parts = point.split("/")
            for depth in range(len(path.rstrip("/").split("/")) + 1, len(parts)):
                folder = "/".join(parts[:depth])
                if not os.path.isdir(folder):
                    os.mkdir(folder)
                    os.chmod(folder, 0o755)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.mkdir(point)
            else:
                os.close(os.open(point, os.O_WRONLY | os.O_CREAT, 0o644))
            _libc("mount", f"/proc/self/fd/{fd}".encode(), point.encode(), None, ctypes.c_ulong(_MS_BIND | _MS_REC),
                  None)
    finally:
        for _, fd in kept:
            os.close(fd)


def private_folders(paths: list[str], size: int) -> bool:
    """Give this process (a relay, before it forks the student's process) and its children a private
    mount namespace with a fresh, empty, world-writable tmpfs of ``size`` bytes on each of ``paths``,
    what was mounted inside them bound again (:func:`_cover`); the working folder, if one of them,
    is the fresh one. Needs ``CAP_SYS_ADMIN`` (root).

    Returns:
        Whether it was all done (``False``, e.g. without root: the folders stay those the
        sandbox's other processes share).
    """
    if not paths:
        return False
    try:
        _libc("unshare", _CLONE_NEWNS)
        _libc("mount", None, b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE), None)  # nothing propagates back
        for path in paths:
            _cover(path, f"size={size},mode=1777")
        os.chdir(os.getcwd())  # the fresh folder, where the working folder was covered
    except OSError:
        return False
    return True


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
    if gid is None:
        sys.exit("runner: a uid to drop to without its gid")
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
    pixels = torch.rand(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)  # notebook 06's sparse product
    crow, col = torch.arange(0, 13, dtype=torch.int64), torch.arange(12, dtype=torch.int64)
    laplacian = _matting_laplacian(crow, col, torch.ones(12, dtype=torch.float64), (12, 12), torch.float64, "cpu")
    channels = pixels.reshape(3, -1).T
    torch.autograd.grad((channels * (laplacian @ channels)).sum(), pixels)
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
            name = (piece.get("name") or piece["source"])[:NAME_CHARS]
            errors[name] = f"{type(error).__name__}: {error}"[:TEXT_CHARS]
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


@functools.cache
def _matting():
    """``cs231n_style/_matting_tensor.py`` (torch only), loaded by its path as :func:`_tracebacks`: notebook
    06's ``photorealism_loss`` gets its Laplacian as the notebook gives it, a ``MattingLaplacian`` that
    refuses ``.to_dense()`` (built from the request's CSR arrays by :func:`_matting_laplacian`)."""
    package = importlib.util.find_spec("cs231n_style")
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("runner: cs231n_style is not importable here")
    folder = Path(package.submodule_search_locations[0])
    return _load_file("_cs231n_style_matting_tensor", folder / "_matting_tensor.py")


def _matting_laplacian(*parts):
    """A sparse leaf of a request as the student's function gets it: ``_matting_tensor.laplacian_from_csr``."""
    return _matting().laplacian_from_csr(*parts)


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
        for known, gram in zip(feats, grams, strict=True):
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
        for masks_i, gram in zip(content_masks, grams, strict=True):
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


def _raised(error: BaseException, where: str) -> dict:
    return {"status": "raised", "error": {"type": type(error).__name__[:NAME_CHARS], "text": str(error)[:TEXT_CHARS],
                                          "where": where[:TEXT_CHARS]}}


def run_call(namespace: dict, request: dict, shared=None) -> dict:
    """Call ``request["function"]`` on the request's inputs; return the facts (never raises).

    With ``request["grams"]`` (a ``style_loss`` or ``guided_style_loss`` call only), the student's
    ``gram_matrix`` (``guided_gram_matrix``) is replaced during the call by
    :func:`given_gram_matrix` (:func:`given_guided_gram_matrix`) for that call's inputs.
    ``shared``: the buffer the request's shared leaves point into (see :func:`place_inputs`).
    """
    dtype = getattr(torch, request.get("dtype", "float64"))
    device = request.get("device", "cpu")
    tensors: list[torch.Tensor] = []
    args = build_tensors(request["args"], dtype, device, tensors, shared, _matting_laplacian)
    function = namespace.get(request["function"])
    if not callable(function):
        return {"status": "missing"}
    grams = request.get("grams") if request["function"] in _STAND_INS else None
    missing = object()
    helper, make_stand_in = _STAND_INS.get(request["function"], ("gram_matrix", None))
    own_helper = namespace.get(helper, missing)
    if grams and make_stand_in is not None:  # (it is: grams come only with the functions of _STAND_INS)
        # the student's code looks the helper up at call time
        namespace[helper] = make_stand_in(args, _build_grams(grams, dtype, device))
    try:
        out = function(*args)
    except BaseException as error:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... all count as the student's
        return _raised(error, _where(error))
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
            result["grad_error"] = f"{type(error).__name__}: {error}"[:TEXT_CHARS]
    return result


def serve(setup: dict, command: dict, request_fd: int, reply_fd: int, nonce: str, shared) -> None:
    """The student's process (forked by the relay, for one function): limit, drop privileges, say
    so, load the student's code, report ready, then answer the relay's requests until they end.

    Args:
        setup: the template's setup (pieces, limits).
        command: the grader's ``fork`` command (uid, gid, ``own_uid``, ``forbid_fork``).
        request_fd, reply_fd: its pipes from and to the relay (no other descriptor is open but 0-2).
        nonce: the frames' nonce on these pipes (the relay's own, not the grader's).
        shared: the memory the relay writes each call's inputs into.
    """
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")  # the kernel kills it first, never the template
    except OSError:
        pass
    set_limits(setup["memory_bytes"], setup["cpu_seconds"], setup["file_bytes"])
    drop_privileges(command.get("uid"), command.get("gid"))
    try:  # after the uid change, which clears it: it dies with its relay
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    nproc = (limit_processes(setup.get("processes"), bool(command.get("forbid_fork")))
             if command.get("own_uid") else None)
    write_message(reply_fd, nonce, {"prepared": True, "nproc": nproc})  # before any of the student's code
    namespace, errors = load_student_code(setup["pieces"])
    write_message(reply_fd, nonce, {"load_errors": errors})
    while True:
        try:
            request = read_message(request_fd, nonce)
        except ProtocolError:  # end of input: the relay is done with this function
            return
        try:
            reply = run_call(namespace, request, shared)
        except BaseException as error:  # noqa: BLE001 - e.g. the student's code broke torch itself
            reply = _raised(error, "")
        write_message(reply_fd, nonce, reply)


# --- the relay: between the grader and the student's process ------------------------------------

def place_inputs(args, dtype: str, shared) -> tuple[list, list[tuple[int, np.ndarray]]]:
    """Write each tensor leaf's values (``{"tensor": array, "grad": bool}``) into ``shared``, as
    ``dtype``, 64-byte aligned, in the order :func:`build_tensors` makes tensors.

    Args:
        args: the call's arguments tree.
        dtype: ``"float32"`` or ``"float64"``.
        shared: a writable buffer (the relay's shared memory).

    Returns:
        ``(args, placed)``: the tree with each leaf replaced by ``{"shared": offset, "shape": [...],
        "grad": bool}``, and for each leaf ``(offset, the values written)``.

    Raises:
        ValueError: if the values do not fit into ``shared``.
    """
    placed: list[tuple[int, np.ndarray]] = []
    end = 0

    def place(node):
        nonlocal end
        if isinstance(node, dict) and "tensor" in node:
            values = np.ascontiguousarray(node["tensor"], dtype=dtype)
            if end + values.nbytes > len(shared):
                raise ValueError(f"a call's inputs over the {len(shared)} bytes of shared memory")
            shared[end:end + values.nbytes] = values.tobytes()
            placed.append((end, values))
            leaf = {"shared": end, "shape": list(values.shape), "grad": bool(node.get("grad"))}
            end += -(-values.nbytes // 64) * 64
            return leaf
        if isinstance(node, list):
            return [place(value) for value in node]
        return node

    return place(args), placed


def _leaves(args) -> list[dict]:
    """The tensor leaves of an arguments tree, in the order :func:`build_tensors` makes tensors."""
    if isinstance(args, dict) and "tensor" in args:
        return [args]
    return [leaf for value in args for leaf in _leaves(value)] if isinstance(args, list) else []


def _text(value, limit: int, what: str) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ProtocolError(f"{what} is not a text of at most {limit} characters")
    return value


def _array(value, shape, what: str) -> np.ndarray | None:
    if value is not None and not (isinstance(value, np.ndarray) and value.dtype == np.float64
                                  and list(value.shape) == list(shape)):
        raise ProtocolError(f"{what} are not float64 values of shape {tuple(shape)}")
    return value


def _keys(node, allowed: set, what: str) -> dict:
    if not isinstance(node, dict) or not set(node) <= allowed:
        raise ProtocolError(f"{what} is not a dict with keys among {sorted(allowed)}")
    return node


def check_reply(reply, shapes: list, grad_shapes: list) -> dict:
    """A reply of the student's process to one call, checked against the schema of :func:`run_call`'s
    replies to that call, as a new dict of only the checked fields (``inputs_after`` as reported).

    Args:
        reply: the decoded reply.
        shapes: the shape of each of the call's input tensors, in order.
        grad_shapes: the shapes of those that require gradients, in order.

    Raises:
        ProtocolError: naming the first field that does not fit (a key, type, text length, array
            dtype or shape, or list length).
    """
    reply = _keys(reply, {"status", "error", "output", "inputs_after", "grads", "grad_error"}, "the reply")
    status = reply.get("status")
    if status == "missing" and set(reply) == {"status"}:
        return {"status": "missing"}
    if status == "raised" and set(reply) == {"status", "error"}:
        error = _keys(reply["error"], {"type", "text", "where"}, "the error")
        return {"status": "raised", "error": {"type": _text(error.get("type"), NAME_CHARS, "the error's type"),
                                              "text": _text(error.get("text", ""), TEXT_CHARS, "the error's text"),
                                              "where": _text(error.get("where", ""), TEXT_CHARS, "the error's line")}}
    if status != "returned" or not {"output", "inputs_after"} <= set(reply) or "error" in reply:
        raise ProtocolError("the reply's status and fields do not match")
    out = _keys(reply["output"], {"type", "dtype", "shape", "device", "requires_grad", "value"}, "the output")
    checked: dict[str, object] = {"type": _text(out.get("type"), NAME_CHARS, "the output's type")}
    for key in ("dtype", "device"):
        if key in out:
            checked[key] = _text(out[key], NAME_CHARS, f"the output's {key}")
    if "requires_grad" in out:
        if not isinstance(out["requires_grad"], bool):
            raise ProtocolError("the output's requires_grad is not a bool")
        checked["requires_grad"] = out["requires_grad"]
    if "shape" in out:
        shape = out["shape"]
        if (not isinstance(shape, list) or len(shape) > MAX_DEPTH
                or not all(type(size) is int and size >= 0 for size in shape)):
            raise ProtocolError("the output's shape is not a list of sizes")
        checked["shape"] = shape
        checked["value"] = _array(out.get("value"), shape, "the output's values")
    elif out.get("value") is not None:
        raise ProtocolError("the output has values but no shape")
    result: dict[str, object] = {"status": "returned", "output": checked}
    after = reply["inputs_after"]
    if not isinstance(after, list) or len(after) != len(shapes):
        raise ProtocolError(f"the reply does not give the {len(shapes)} inputs after the call")
    result["inputs_after"] = [_array(a, shape, "the inputs after the call")
                              for a, shape in zip(after, shapes, strict=True)]
    if "grads" in reply:
        grads = reply["grads"]
        if not isinstance(grads, list) or len(grads) != len(grad_shapes):
            raise ProtocolError(f"the reply does not give the {len(grad_shapes)} gradients")
        result["grads"] = [_array(g, shape, "the gradients") for g, shape in zip(grads, grad_shapes, strict=True)]
    if "grad_error" in reply:
        result["grad_error"] = _text(reply["grad_error"], TEXT_CHARS, "the gradient's error")
    return result


def inputs_after(shared, placed: list, reported: list) -> list:
    """The inputs after a call, as the grader gets them (float64 arrays; ``None`` on 'meta').

    For each input placed in ``shared`` (``(offset, the values written)``, or ``None``), the values
    there now, as the relay reads them, when they differ from those written; where they do not,
    the student's process's own report (``reported``: e.g. a tensor whose storage the function
    swapped) - which can only show a change, as the relay's reading shows none.
    """
    after = []
    for spot, told in zip(placed, reported, strict=True):
        if spot is None:
            after.append(told)
            continue
        offset, written = spot
        now = np.frombuffer(shared, dtype=written.dtype, count=written.size, offset=offset).reshape(written.shape)
        after.append(now.astype(np.float64) if now.tobytes() != written.tobytes() or told is None else told)
    return after


def _exit_code(pid: int) -> int:
    """Wait for the student's process and return its exit status as the relay's own (a signal n: 128 + n)."""
    try:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:
        return 1
    return code if code >= 0 else 128 - code


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _close_other_fds(keep: set[int]) -> None:
    """Close every file descriptor above 2 except ``keep``."""
    low = 3
    for fd in [*sorted(keep), resource.getrlimit(resource.RLIMIT_NOFILE)[0]]:
        os.closerange(low, fd)
        low = fd + 1


def relay(setup: dict, command: dict, request_fd: int, reply_fd: int) -> int:
    """The relay of one function (see the module docstring): private folders, the shared memory and
    the student's process, then the nonce from the grader, and each request passed on and each
    reply checked and passed back; refuses the function (``{"rejected": why}`` to the grader) when
    the student's process writes to its reply pipe out of turn or sends what is no reply.

    Returns:
        Its exit status: the student's process's when that ended first (a signal n: 128 + n), else 0.
    """
    private = private_folders(setup.get("private_paths") or [], setup["private_bytes"])
    shared = mmap.mmap(-1, INPUT_BYTES)  # MAP_SHARED | MAP_ANONYMOUS: the student's process sees the same pages
    local = secrets.token_hex(16)  # the frames' nonce between the two (not a secret: the student's process has it)
    (to_student, requests), (replies, from_student) = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _close_other_fds({to_student, from_student})  # the grader's pipes among them
            serve(setup, command, to_student, from_student, local, shared)
            code = 0
        except BaseException:  # noqa: BLE001 - the process ends here, whatever happened
            pass
        os._exit(code)
    os.close(to_student)
    os.close(from_student)
    try:
        ended = os.pidfd_open(pid)
    except (AttributeError, OSError):
        ended = None
    nonce = read_nonce(request_fd)  # only now: the student's process was forked without it

    def reject(why: str) -> int:
        write_message(reply_fd, nonce, {"rejected": why})
        _kill(pid)
        return 0

    def receive():
        """The next message of the student's process, or ``None`` if it ended first."""
        if ended is not None and replies not in select.select([replies, ended], [], [])[0]:
            return None
        try:
            return read_message(replies, local, max_bytes=REPLY_BYTES, max_header=REPLY_HEADER_BYTES)
        except ProtocolError as error:
            if str(error) == "end of stream":
                return None
            raise

    try:
        prepared = receive()  # written before any of the student's code ran
        if prepared is None:
            return _exit_code(pid)
        ready = receive()
        if ready is None:
            return _exit_code(pid)
        nproc = _keys(prepared, {"prepared", "nproc"}, "the prepared message").get("nproc")
        errors = _keys(ready, {"load_errors"}, "the ready message").get("load_errors")
        if not isinstance(errors, dict) or not all(isinstance(k, str) and len(k) <= NAME_CHARS for k in errors):
            raise ProtocolError("the load errors are not a dict of names")
        errors = {name: _text(why, TEXT_CHARS, "a load error") for name, why in errors.items()}
    except ProtocolError as error:
        return reject(f"your function's process sent the grader a malformed message ({error})")
    uid = command.get("uid")
    write_message(reply_fd, nonce, {"ready": True, "load_errors": errors, "uid": os.getuid() if uid is None else uid,
                                    "nproc": nproc if isinstance(nproc, int) else None, "private": private})
    while True:
        try:
            request = read_message(request_fd, nonce)
        except ProtocolError:  # the grader is done with this function
            _kill(pid)
            return 0
        if select.select([replies], [], [], 0)[0]:
            if not os.read(replies, 1):
                return _exit_code(pid)
            return reject("your function's process wrote to the grader's channel outside a reply "
                          "(a second reply, or a message before the request)")
        leaves = _leaves(request["args"])
        placed: list = [None] * len(leaves)
        student_request = request
        if request.get("device", "cpu") != "meta":
            args, placed = place_inputs(request["args"], request.get("dtype", "float64"), shared)
            student_request = {**request, "args": args}
        try:
            write_message(requests, local, student_request)
        except BrokenPipeError:
            return _exit_code(pid)
        try:
            reply = receive()
            if reply is None:
                return _exit_code(pid)
            shapes = [list(np.shape(leaf["tensor"])) for leaf in leaves]
            reply = check_reply(reply, shapes, [s for s, leaf in zip(shapes, leaves, strict=True) if leaf.get("grad")])
        except ProtocolError as error:
            return reject(f"your function's process sent the grader a malformed reply ({error})")
        if "inputs_after" in reply:
            reply["inputs_after"] = inputs_after(shared, placed, reply["inputs_after"])
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


def _reap_group(group: int) -> None:
    """Wait for every child left in process ``group`` (killed with it: a relay's student's process,
    orphaned to the template), so that none stays a zombie of the relay's uid."""
    while True:
        try:
            os.waitpid(-group, 0)
        except ChildProcessError:
            return


def main() -> int:
    """The template: set up once (imports, warm-up, hidden paths), then fork one relay per ``fork``
    command received on the control socket (``sys.argv[1]``), with the pipes and output file sent
    along (``SCM_RIGHTS``); ``kill`` kills the current one (and its student's process). Runs no
    student code itself."""
    import json
    import socket

    control = socket.socket(fileno=int(sys.argv[1]))
    for option, value in ((_PR_SET_DUMPABLE, 0), (_PR_SET_CHILD_SUBREAPER, 1)):
        try:  # its relays inherit the first (no student's process can ptrace them); by the second, the
            _prctl(option, value)  # student's processes come back to it, to be reaped, when their relay dies
        except OSError:
            pass
    nonce = read_nonce(0)
    setup = read_message(0, nonce)
    torch.set_num_threads(1)
    for path in setup.get("extra_path") or []:
        if path not in sys.path:
            sys.path.append(path)  # where cs231n_style is when the runtime does not install it
    _tracebacks()
    _matting()
    warm_up()
    hidden = []
    if setup.get("hide") and os.geteuid() == 0:
        hidden = hide_paths(setup.get("hide_paths", []))
    control.sendall(json.dumps({"ready": True, "hidden": hidden}).encode())
    child: int | None = None
    codes: dict[int, int] = {}
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
                code = 1
                try:
                    control.close()
                    os.setsid()  # its own process group, its student's process in it: killed as one
                    request_fd, reply_fd, output_fd = fds
                    os.dup2(output_fd, 1)
                    os.dup2(output_fd, 2)
                    os.close(output_fd)
                    code = relay(setup, command, request_fd, reply_fd)
                except BaseException:  # noqa: BLE001 - the process ends here, whatever happened
                    pass
                os._exit(code)
            child, codes = pid, {}
            reply: dict[str, object] = {"pid": pid}
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
                _reap_group(child)
            child, reply = None, {"killed": True, "code": code}
        for fd in fds:
            os.close(fd)
        control.sendall(json.dumps(reply).encode())


if __name__ == "__main__":
    sys.exit(main())
