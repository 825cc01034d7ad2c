"""Find a submission's notebooks (one notebook, a folder, or a .zip) and the student's functions in them.

Student code is found by one mechanism only, ``cs231n_style.notebook.extract_functions`` (tagged
cells first, then by name), run on every submitted notebook: a function may sit in any of them.
Nothing is executed here; the grader only parses.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cs231n_style.notebook import STUDENT_FUNCTIONS, ExtractedCode, extract_functions

__all__ = ["SubmissionError", "StudentCode", "collect_notebooks", "find_student_code", "code_pieces",
           "submission_problem", "list_submissions"]

MAX_NOTEBOOK_BYTES = 50 << 20
MAX_NOTEBOOKS = 50


class SubmissionError(Exception):
    """A submission with no notebook to grade (empty, unreadable or oversized archive, ...)."""


@dataclass
class StudentCode:
    """The student's functions, merged over all submitted notebooks.

    Attributes:
        code: imports, functions, helpers and problems, as ``extract_functions`` returns them.
        where: function name -> the notebook file it was taken from.
        notebooks: the notebooks searched.
    """

    code: ExtractedCode
    where: dict[str, str] = field(default_factory=dict)
    notebooks: list[Path] = field(default_factory=list)


def _unzip_notebooks(archive: Path, workdir: Path) -> list[Path]:
    """Extract only ``*.ipynb`` members, by base name (no paths from the archive are trusted)."""
    out = []
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if m.filename.endswith(".ipynb") and not m.is_dir()
                       and ".ipynb_checkpoints" not in m.filename
                       and not PurePosixPath(m.filename).name.startswith("._")]
            for member in members[:MAX_NOTEBOOKS]:
                if member.file_size > MAX_NOTEBOOK_BYTES:
                    raise SubmissionError(f"{member.filename} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
                target = workdir / PurePosixPath(member.filename).name
                with zf.open(member) as source:
                    data = source.read(MAX_NOTEBOOK_BYTES + 1)
                if len(data) > MAX_NOTEBOOK_BYTES:
                    raise SubmissionError(f"{member.filename} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
                target.write_bytes(data)
                out.append(target)
    except zipfile.BadZipFile as error:
        raise SubmissionError(f"{archive.name} is not a readable .zip file: {error}") from None
    return out


def collect_notebooks(path: str | Path, workdir: str | Path) -> list[Path]:
    """The notebooks of a submission, sorted by file name.

    Args:
        path: a ``.ipynb`` file, a folder (searched recursively, checkpoints skipped) or a ``.zip``.
        workdir: where a ``.zip`` is extracted.

    Returns:
        Paths of ``.ipynb`` files.

    Raises:
        SubmissionError: if there is none, or the path is not one of the above.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".ipynb":
        notebooks = [path]
    elif path.is_file() and path.suffix == ".zip":
        notebooks = _unzip_notebooks(path, Path(workdir))
    elif path.is_dir():
        notebooks = [p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file()]
    else:
        raise SubmissionError(f"{str(path)!r} is not a notebook, a folder or a .zip file")
    if not notebooks:
        raise SubmissionError(f"no .ipynb notebook found in {path.name!r}")
    return sorted(notebooks, key=lambda p: (p.name, str(p)))[:MAX_NOTEBOOKS]


def submission_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be a submission, or ``None`` when it can (a ``.ipynb``, a folder or a ``.zip``).

    Only the kind of path is checked, not its content: an empty folder or a notebook without the
    functions is a submission (graded 0, with feedback).

    Args:
        path: the candidate.

    Returns:
        ``None``, ``"no such file or folder"`` or ``"not a notebook, folder or .zip"``.
    """
    path = Path(path)
    if not path.exists():
        return "no such file or folder"
    if path.is_dir() or (path.is_file() and path.suffix in (".ipynb", ".zip")):
        return None
    return "not a notebook, folder or .zip"


def list_submissions(folder: str | Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The submissions of a batch folder: one entry per student, a folder, a ``.zip`` or a ``.ipynb``.

    Hidden entries (``.DS_Store``, ``.ipynb_checkpoints``) and macOS's ``__MACOSX`` are skipped, as
    is anything :func:`submission_problem` refuses (a PDF, ...).

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
    merged, where, rank = ExtractedCode(), {}, {}
    notebooks = list(notebooks)
    unreadable = []
    for notebook in notebooks:
        try:
            found = extract_functions(notebook, names)
        except (ValueError, FileNotFoundError) as error:
            unreadable.append(str(error))
            continue
        merged.imports += [line for line in found.imports if line not in merged.imports]
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
