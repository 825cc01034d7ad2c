"""Find a submission's notebooks (one notebook, a folder, or a .zip) and the student's functions in them.

Student code is found by one mechanism only, ``cs231n_style.notebook.extract_functions`` (tagged
cells first, then by name), run on every submitted notebook: a function may sit in any of them.
Nothing is executed here; the grader only parses.

A submission is student-made, and the grader may run as root, so it is read without trusting it:

* links are never followed: a symbolic link, a hard link (a file with more than one name) or a
  special file (a FIFO, a device, a socket) in a folder or a ``.zip`` is skipped, with a line in
  the feedback (:attr:`StudentCode.skipped`); a submission path that is itself a symbolic link is
  refused. Each notebook is opened with ``O_NOFOLLOW`` (each folder on the way too), checked to be
  a regular file on the open descriptor, read up to :data:`MAX_NOTEBOOK_BYTES` from it, and the
  bytes written to the grader's own folder: everything after (the sandbox's copy included) reads
  those copies, never a path the student chose;
* reading, parsing and extraction (:func:`read_submission`) run in a child process with limits
  (:data:`READ_TIME_S` wall-clock seconds, :data:`READ_MEMORY_MB` more memory than the grader's)
  that sends plain data back: a notebook that would stall the grader or fill its memory is a
  "too large / took too long to read" result for that submission only.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from cs231n_style.notebook import STUDENT_FUNCTIONS, ExtractedCode, extract_functions

__all__ = [
    "StudentCode",
    "SubmissionError",
    "code_pieces",
    "collect_notebooks",
    "find_student_code",
    "list_submissions",
    "read_regular_file",
    "read_submission",
    "submission_problem",
]

MAX_NOTEBOOK_BYTES = 50 << 20
MAX_NOTEBOOKS = 50
#: Folder entries looked at in a folder submission, at most (a git checkout has a few hundred).
MAX_ENTRIES = 20_000
#: Limits of the child process that reads a submission (:func:`read_submission`): wall-clock
#: seconds, and memory (MB) beyond what the grader had when it started it.
READ_TIME_S = 60
READ_MEMORY_MB = 2048
#: Skipped entries named in the feedback, at most; and the longest name shown.
_MAX_SKIPPED, _NAME_CHARS = 20, 120
_TOO_LARGE = f"larger than {MAX_NOTEBOOK_BYTES >> 20} MB"
#: How a submission that went over :func:`read_submission`'s limits is described.
TOO_LARGE = "the submission is too large or took too long to read"


class SubmissionError(Exception):
    """A submission with no notebook to grade (empty, unreadable or oversized archive, ...)."""


@dataclass
class StudentCode:
    """The student's functions, merged over all submitted notebooks.

    Attributes:
        code: imports, functions, helpers and problems, as ``extract_functions`` returns them.
        where: function name -> the notebook file it was taken from.
        notebooks: the notebooks searched.
        skipped: entries of the submission that were not read, each ``"NAME: why"`` (a symbolic
            link, a hard link, a special file); shown in the feedback.
    """

    code: ExtractedCode
    where: dict[str, str] = field(default_factory=dict)
    notebooks: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _shown(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[:_NAME_CHARS] + "..."


def _skip(skipped: list[str] | None, line: str) -> None:
    """Note ``line`` ("NAME is why") in ``skipped`` (up to :data:`_MAX_SKIPPED` lines, then one more)."""
    if skipped is None:
        return
    if len(skipped) < _MAX_SKIPPED:
        skipped.append(line)
    elif len(skipped) == _MAX_SKIPPED:
        skipped.append("more entries skipped, not listed")


def _not_regular(mode: int, links: int) -> str | None:
    """Why a file of this ``st_mode`` and ``st_nlink`` is not read, or ``None`` for a plain file."""
    if stat.S_ISLNK(mode):
        return "a symbolic link (links are never followed; submit the file itself)"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, a device or a socket)"
    if links > 1:
        return "a hard link (a file with another name elsewhere; submit a copy of it)"
    return None


def _read_fd(fd: int, name: str) -> bytes:
    """Up to ``MAX_NOTEBOOK_BYTES`` of the open file ``fd`` (closed), which must be a plain file."""
    try:
        info = os.fstat(fd)
        why = _not_regular(info.st_mode, info.st_nlink)
        if why:
            raise SubmissionError(f"{_shown(name)} is {why}")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise SubmissionError(f"{_shown(name)} is {_TOO_LARGE}")
        chunks, left = [], MAX_NOTEBOOK_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    if left <= 0:
        raise SubmissionError(f"{_shown(name)} is {_TOO_LARGE}")
    return b"".join(chunks)


_NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def read_regular_file(path: str | Path, dir_fd: int | None = None, name: str | None = None) -> bytes:
    """The bytes of a plain file, read without following a link.

    Opened with ``O_NOFOLLOW | O_NONBLOCK`` (a symbolic link fails; a FIFO does not block), then
    checked on the open descriptor: a regular file, with one name only (no hard link), of at most
    :data:`MAX_NOTEBOOK_BYTES`.

    Args:
        path: the file (its last component is never followed).
        dir_fd: an open folder ``path`` is relative to (``openat``), or ``None``.
        name: how messages name it (default: ``path``).

    Returns:
        Its content, at most ``MAX_NOTEBOOK_BYTES`` bytes.

    Raises:
        SubmissionError: if it is a symbolic link, a hard link, not a regular file, too large, or
            cannot be opened; the message names it and says why.
    """
    name = os.fspath(path) if name is None else name
    try:
        fd = os.open(path, _NOFOLLOW, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW on a symbolic link
            raise SubmissionError(f"{_shown(name)} is {_not_regular(stat.S_IFLNK, 1)}") from None
        raise SubmissionError(f"{_shown(name)} cannot be read: {error.strerror}") from None
    return _read_fd(fd, name)


def _unzip_notebooks(archive: Path, workdir: Path, skipped: list[str] | None) -> list[Path]:
    """Extract only ``*.ipynb`` members that are plain files, by base name (no paths from the
    archive are trusted; a member stored as a symbolic link or a special file is skipped)."""
    out = []
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if m.filename.endswith(".ipynb") and not m.is_dir()
                       and ".ipynb_checkpoints" not in m.filename
                       and not PurePosixPath(m.filename).name.startswith("._")]
            for member in members[:MAX_NOTEBOOKS]:
                mode = member.external_attr >> 16  # a Unix mode, where the archive has one with a file type
                why = _not_regular(mode, 1) if stat.S_IFMT(mode) else None
                if not why and member.file_size <= MAX_NOTEBOOK_BYTES:
                    with zf.open(member) as source:
                        data = source.read(MAX_NOTEBOOK_BYTES + 1)
                if why or member.file_size > MAX_NOTEBOOK_BYTES or len(data) > MAX_NOTEBOOK_BYTES:
                    _skip(skipped, f"{_shown(member.filename)} is {why or _TOO_LARGE}")
                    continue
                out.append(_write_copy(workdir, PurePosixPath(member.filename).name, data))
    except zipfile.BadZipFile as error:
        raise SubmissionError(f"{archive.name} is not a readable .zip file: {error}") from None
    return out


def _write_copy(workdir: Path, relative: str, data: bytes) -> Path:
    """Write ``data`` to ``workdir / relative`` (the grader's own folder; parents made)."""
    target = workdir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def _folder_notebooks(folder: Path, workdir: Path, skipped: list[str] | None) -> list[Path]:
    """The ``*.ipynb`` plain files under ``folder``, copied into ``workdir`` (same relative paths).

    Walked from descriptors (``openat``, ``O_NOFOLLOW`` at every level): a symbolic link - to a
    file or a folder - is never followed, and ``.ipynb_checkpoints`` folders are skipped.
    """
    found: list[tuple[str, ...]] = []
    stack: list[tuple[str, ...]] = [()]
    seen = 0
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while stack:
            parts = stack.pop()
            fd = _open_folder(top, parts)
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        seen += 1
                        if seen > MAX_ENTRIES:
                            raise SubmissionError(f"{folder.name} has more than {MAX_ENTRIES} files and folders")
                        info = entry.stat(follow_symlinks=False)
                        relative = "/".join((*parts, entry.name))
                        if stat.S_ISDIR(info.st_mode):
                            if entry.name != ".ipynb_checkpoints":
                                stack.append((*parts, entry.name))
                        elif stat.S_ISLNK(info.st_mode):
                            _skip(skipped, f"{_shown(relative)} is {_not_regular(info.st_mode, 1)}")
                        elif entry.name.endswith(".ipynb"):
                            why = _not_regular(info.st_mode, info.st_nlink)
                            if why:
                                _skip(skipped, f"{_shown(relative)} is {why}")
                            else:
                                found.append((*parts, entry.name))
            finally:
                os.close(fd)
        found.sort(key=lambda parts: (parts[-1], "/".join(parts)))
        out = []
        for parts in found[:MAX_NOTEBOOKS]:
            fd = _open_folder(top, parts[:-1])
            try:
                data = read_regular_file(parts[-1], dir_fd=fd, name="/".join(parts))
            except SubmissionError as error:  # too large, or changed since it was listed
                _skip(skipped, str(error))
                continue
            finally:
                os.close(fd)
            out.append(_write_copy(workdir, "/".join(parts), data))
        return out
    finally:
        os.close(top)


def _open_folder(top: int, parts: tuple[str, ...]) -> int:
    """A new descriptor of ``top``'s sub-folder ``parts``, each step opened with ``O_NOFOLLOW``."""
    fd = os.dup(top)
    for part in parts:
        try:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def collect_notebooks(path: str | Path, workdir: str | Path, skipped: list[str] | None = None) -> list[Path]:
    """The notebooks of a submission, copied into ``workdir``, sorted by file name.

    Nothing is followed: see the module docstring. The copies are what the grader reads after.

    Args:
        path: a ``.ipynb`` file, a folder (searched recursively, checkpoints skipped) or a ``.zip``;
            not a symbolic link.
        workdir: the grader's own folder, where the notebooks are copied (a folder's keep their
            relative paths, a ``.zip``'s their base names).
        skipped: a list to which ``"NAME: why"`` is appended for each entry not read (a symbolic
            link, a hard link, a special file), or ``None``.

    Returns:
        Paths of the copies (``.ipynb`` files in ``workdir``), at most :data:`MAX_NOTEBOOKS`.

    Raises:
        SubmissionError: if there is none (a notebook too large, a link... is skipped), the path
            is a symbolic link or not one of the above, or a folder has more than
            :data:`MAX_ENTRIES` entries.
    """
    path, workdir = Path(path), Path(workdir)
    skipped = [] if skipped is None else skipped
    try:
        info = os.lstat(path)
    except OSError:
        raise SubmissionError(f"{str(path)!r} is not a notebook, a folder or a .zip file") from None
    if stat.S_ISLNK(info.st_mode):
        raise SubmissionError(f"{path.name!r} is {_not_regular(info.st_mode, 1)}")
    if stat.S_ISDIR(info.st_mode):
        notebooks = _folder_notebooks(path, workdir, skipped)
    elif path.suffix == ".ipynb":
        notebooks = [_write_copy(workdir, path.name, read_regular_file(path))]
    elif path.suffix == ".zip":
        if _not_regular(info.st_mode, info.st_nlink):
            raise SubmissionError(f"{path.name!r} is {_not_regular(info.st_mode, info.st_nlink)}")
        notebooks = _unzip_notebooks(path, workdir, skipped)
    else:
        raise SubmissionError(f"{str(path)!r} is not a notebook, a folder or a .zip file")
    if not notebooks:
        not_read = f" (not read: {'; '.join(skipped)})" if skipped else ""
        raise SubmissionError(f"no .ipynb notebook found in {_shown(path.name)!r}{not_read}")
    return sorted(notebooks, key=lambda p: (p.name, str(p)))[:MAX_NOTEBOOKS]


def submission_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be a submission, or ``None`` when it can (a ``.ipynb``, a folder or a ``.zip``).

    Only the kind of path is checked, not its content: an empty folder or a notebook without the
    functions is a submission (graded 0, with feedback). A symbolic link is refused (links are
    never followed).

    Args:
        path: the candidate.

    Returns:
        ``None``, ``"no such file or folder"``, ``"a symbolic link (...)"`` or
        ``"not a notebook, folder or .zip"``.
    """
    path = Path(path)
    if path.is_symlink():
        return _not_regular(stat.S_IFLNK, 1)
    if not path.exists():
        return "no such file or folder"
    if path.is_dir() or (path.is_file() and path.suffix in (".ipynb", ".zip")):
        return None
    return "not a notebook, folder or .zip"


def list_submissions(folder: str | Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The submissions of a batch folder: one entry per student, a folder, a ``.zip`` or a ``.ipynb``.

    Hidden entries (``.DS_Store``, ``.ipynb_checkpoints``) and macOS's ``__MACOSX`` are skipped, as
    is anything :func:`submission_problem` refuses (a PDF, a symbolic link, ...).

    Args:
        folder: the folder.

    Returns:
        The submissions, sorted by name, and ``(name, why)`` for each skipped entry.

    Raises:
        FileNotFoundError: if ``folder`` does not exist.
        NotADirectoryError: if it is not a folder.
    """
    submissions, skipped = [], []
    for entry in sorted(Path(folder).iterdir()):
        why: str | None
        if entry.name.startswith(".") or entry.name == "__MACOSX":
            why = "a hidden or system entry"
        else:
            why = submission_problem(entry)
        if why:
            skipped.append((entry.name, why))
        else:
            submissions.append(entry)
    return submissions, skipped


def find_student_code(notebooks: Iterable[Path], names: Iterable[str] = STUDENT_FUNCTIONS) -> StudentCode:
    """Search every notebook for the named functions; merge what is found.

    A function defined in a tagged solution cell wins over one found by name; among equals, the
    first notebook in file-name order wins (the course notebooks are numbered). Imports and helpers
    of all notebooks are kept. A function found nowhere keeps the most telling problem (a syntax
    error over "not found").

    Returns:
        A :class:`StudentCode`.
    """
    names = list(names)
    merged, where = ExtractedCode(), {}
    rank: dict[str, int] = {}  # function -> 0 if found in a tagged solution cell, 1 if found by name
    notebooks = list(notebooks)
    unreadable, imports = [], set()
    for notebook in notebooks:
        try:
            found = extract_functions(notebook, names)
        except (ValueError, FileNotFoundError) as error:
            unreadable.append(str(error))
            continue
        for line in found.imports:  # a set: a cell of 20000 imports stays linear
            if line not in imports:
                imports.add(line)
                merged.imports.append(line)
        for helper, source in found.helpers.items():
            merged.helpers.setdefault(helper, source)
        for name, source in found.functions.items():
            score = 0 if found.origin[name] == "tagged cell" else 1
            if score < rank.get(name, 2):
                merged.functions[name], merged.origin[name], where[name], rank[name] = \
                    source, found.origin[name], notebook.name, score
        for name, problem in found.problems.items():
            if "syntax error" in problem or name not in merged.problems:
                merged.problems[name] = f"{problem} (in {notebook.name})" if "syntax error" in problem else problem
    for name in names:
        if name in merged.functions:
            merged.problems.pop(name, None)
        elif name not in merged.problems:
            merged.problems[name] = f"no function named {name!r} was found"
    if unreadable:
        for name in names:
            if name in merged.problems:
                merged.problems[name] += "; unreadable notebooks: " + "; ".join(unreadable)
    return StudentCode(merged, where, notebooks)


def code_pieces(code: ExtractedCode) -> list[dict]:
    """The pieces the sandboxed runner executes one by one: imports, then helpers, then functions."""
    pieces = [{"kind": "import", "name": None, "source": line} for line in dict.fromkeys(code.imports)]
    pieces += [{"kind": "def", "name": name, "source": source} for name, source in code.helpers.items()]
    pieces += [{"kind": "def", "name": name, "source": source} for name, source in code.functions.items()]
    return pieces


# --- reading a submission in a limited process ---------------------------------------------------

def read_submission(path: str | Path, workdir: str | Path, names: Iterable[str] = STUDENT_FUNCTIONS,
                    timeout_s: float = READ_TIME_S, memory_mb: int = READ_MEMORY_MB) -> StudentCode:
    """:func:`collect_notebooks` and :func:`find_student_code`, in a child process with limits.

    Everything done with the student's bytes - reading the files, parsing the JSON, parsing and
    extracting the code - runs in a child forked from the grader (``multiprocessing``'s ``fork``:
    nothing to import again), with ``RLIMIT_AS`` at the grader's address space plus ``memory_mb``,
    ``RLIMIT_CPU`` at ``timeout_s``, and killed after ``timeout_s`` seconds of wall-clock time. It
    sends back plain data (JSON); the notebooks' copies are in ``workdir``.

    Args:
        path: the submission (see :func:`collect_notebooks`).
        workdir: the grader's own folder for the copies.
        names: the functions to find.
        timeout_s: wall-clock (and CPU) seconds the reading may take.
        memory_mb: memory it may add to the grader's, in MB.

    Returns:
        A :class:`StudentCode` (``skipped`` filled in).

    Raises:
        SubmissionError: nothing to grade (see :func:`collect_notebooks`), or the reading went over
            a limit: the message starts with "the submission is too large or took too long to read".
    """
    import multiprocessing

    names = list(names)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_read_in_child, daemon=True,
                            args=(send, str(path), str(workdir), names, memory_mb << 20, timeout_s))
    child.start()
    send.close()
    data = None
    try:
        if receive.poll(timeout_s):
            data = receive.recv_bytes()
    except (EOFError, OSError):
        data = None
    finally:
        receive.close()
        child.join(timeout=1)
        if child.is_alive():
            child.kill()
            child.join()
    if data is None:
        why = (f"reading it took longer than {timeout_s:g} s"
               if child.exitcode in (-signal.SIGKILL, -signal.SIGXCPU) else
               f"the process reading it stopped (exit status {child.exitcode})")
        raise SubmissionError(f"{TOO_LARGE}: {why}")
    reply = json.loads(data)
    if "error" in reply:
        raise SubmissionError(reply["error"])
    if "memory" in reply:
        raise SubmissionError(f"{TOO_LARGE}: reading it needed more than {memory_mb} MB of memory")
    found = reply["student"]
    return StudentCode(ExtractedCode(**found["code"]), found["where"], [Path(p) for p in found["notebooks"]],
                       found["skipped"])


def _read_in_child(send, path: str, workdir: str, names: list[str], memory_bytes: int, cpu_s: float) -> None:
    """:func:`read_submission`'s child: limit itself, read, send the result as JSON, exit."""
    keep = send.fileno()
    os.closerange(3, keep)  # the grader's other descriptors (sandboxes' pipes): not held open here
    os.closerange(keep + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (mapped + memory_bytes, mapped + memory_bytes))
    except (OSError, ValueError):
        pass  # no /proc: the wall-clock limit still applies
    seconds = max(1, int(cpu_s + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    try:
        skipped: list[str] = []
        notebooks = collect_notebooks(path, workdir, skipped)
        student = find_student_code(notebooks, names)
        reply: dict[str, object] = {"student": {"code": asdict(student.code), "where": student.where,
                             "notebooks": [str(p) for p in student.notebooks], "skipped": skipped}}
    except SubmissionError as error:
        reply = {"error": str(error)}
    except MemoryError:
        reply = {"memory": True}
    except Exception as error:  # noqa: BLE001 - a parser's failure on hostile input: say so, never crash the grader
        reply = {"error": f"{TOO_LARGE}: reading it failed ({type(error).__name__}: {str(error)[:200]})"}
    try:
        data = json.dumps(reply).encode()
    except MemoryError:
        data = b'{"memory": true}'
    send.send_bytes(data)
    send.close()
