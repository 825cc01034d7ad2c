"""Find students' functions in their notebooks, and load them as a module would be.

One mechanism finds student code everywhere: later notebooks reuse earlier ones' functions, the
unit tests load them, and the autograder extracts them - all through :func:`extract_functions`.
It reads only top-level ``import`` statements, ``def`` blocks and literal constants; it never runs a
notebook's other statements (no 200-step style transfer just to get a function). A notebook named
without a folder is found by :func:`find_course_notebook`: in the course folder given once
(:func:`set_course_folder`), else next to the running notebook, else in the working directory.

Cell roles live in one namespaced metadata block, ``cell.metadata["cs231n_style"]["role"]``
(:data:`METADATA_KEY`), read only through the ``is_...`` predicates below (nbgrader keeps its
roles the same way):

* ``"solution"``: a cell defining functions the student writes (reported as "tagged cell" in
  :attr:`ExtractedCode.origin`); its solution region becomes a stub in student notebooks;
* ``"check"``: a check cell; its expected output is kept in student notebooks, for nbval;
* ``"solution-only"``: dropped from student notebooks.

Making student notebooks from the solution notebooks is :mod:`autograder.authoring`'s (course
authors only).
"""

from __future__ import annotations

import ast
import linecache
import os
import re
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

__all__ = [
    "ALL_STUDENT_FUNCTIONS",
    "COURSE_FOLDER_ENV",
    "GUIDED_FUNCTIONS",
    # what the autograder and the authoring tools use
    "METADATA_KEY",
    "NOTEBOOK_OF",
    "OPTIONAL_FUNCTIONS",
    "PHOTOREALISM_FUNCTIONS",
    # what students use (``import cs231n_style as cs`` re-exports these)
    "STUDENT_FUNCTIONS",
    "ExtractedCode",
    "cell_role",
    "extract_functions",
    "find_course_notebook",
    "is_check_cell",
    "is_solution_cell",
    "is_solution_only_cell",
    "load_course_functions",
    "load_functions",
    "read_notebook",
    "set_course_folder",
]

#: The four functions every student writes (notebooks 01-03), in the order the course introduces them.
STUDENT_FUNCTIONS = ("content_loss", "gram_matrix", "style_loss", "tv_loss")

#: The functions of notebook 05's spatial control (Gatys et al., CVPR 2017, Sec. 4): optional. A
#: course may leave notebook 05 out; where it is absent, nothing that loads or grades the four asks
#: for these (:func:`load_course_functions` loads them only when their notebook is found).
GUIDED_FUNCTIONS = ("guided_gram_matrix", "guided_style_loss")

#: The function of notebook 06's photorealism regularization (Luan et al., CVPR 2017, Sec. 3.1):
#: optional like notebook 05's.
PHOTOREALISM_FUNCTIONS = ("photorealism_loss",)

#: The functions of the optional notebooks (05, 06): loaded and required only where their notebook is.
OPTIONAL_FUNCTIONS = GUIDED_FUNCTIONS + PHOTOREALISM_FUNCTIONS

#: Every function students may write: the four, then the optional ones.
ALL_STUDENT_FUNCTIONS = STUDENT_FUNCTIONS + OPTIONAL_FUNCTIONS

#: The course notebook in which each student function is written.
NOTEBOOK_OF = {
    "content_loss": "01_content_loss.ipynb",
    "gram_matrix": "02_style_loss.ipynb",
    "style_loss": "02_style_loss.ipynb",
    "tv_loss": "03_tv_loss.ipynb",
    "guided_gram_matrix": "05_controlling_style_transfer.ipynb",
    "guided_style_loss": "05_controlling_style_transfer.ipynb",
    "photorealism_loss": "06_photorealistic_style_transfer.ipynb",
}

#: The key of this course's block in a cell's (and a notebook's) metadata.
METADATA_KEY = "cs231n_style"


# --- cell roles -----------------------------------------------------------------------------

def cell_role(cell) -> str | None:
    """Return the role stored in ``cell.metadata["cs231n_style"]["role"]``, or ``None``."""
    return cell.get("metadata", {}).get(METADATA_KEY, {}).get("role")


def is_solution_cell(cell) -> bool:
    """True for a code cell defining functions the student writes."""
    return cell.get("cell_type") == "code" and cell_role(cell) == "solution"


def is_check_cell(cell) -> bool:
    """True for a code cell whose output (a check verdict) is kept in student notebooks."""
    return cell.get("cell_type") == "code" and cell_role(cell) == "check"


def is_solution_only_cell(cell) -> bool:
    """True for a cell that student notebooks leave out."""
    return cell_role(cell) == "solution-only"


def read_notebook(path: str | os.PathLike):
    """Read a notebook file (nbformat 4).

    Args:
        path: a ``.ipynb`` file.

    Returns:
        An ``nbformat.NotebookNode``.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is not a readable notebook.
    """
    import nbformat  # here, not at the top: ``import cs231n_style`` need not load Jupyter's packages

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {str(path)!r}.")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises JSON, validation and reader errors
        raise ValueError(f"{str(path)!r} is not a readable Jupyter notebook: {error}") from None


# --- extraction -----------------------------------------------------------------------------

_MAGIC = re.compile(r"^\s*[%!]")


def _python_lines(source: str) -> str:
    """Blank out IPython magics and shell escapes (``%matplotlib``, ``!pip``) so ``ast`` can parse."""
    return "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())


@dataclass
class ExtractedCode:
    """Source code found in a notebook: what :func:`extract_functions` returns.

    Attributes:
        imports: top-level ``import`` / ``from ... import`` statements of all code cells, in
            notebook order.
        functions: function name -> source of its top-level ``def`` block (the last definition
            wins, as when the notebook runs top to bottom).
        helpers: other top-level ``def`` blocks (helpers a student wrote) and assignments of
            literal constants (``EPS = 1e-8``), by name.
        problems: function name -> why it could not be found (missing, syntax error, ...).
        origin: name -> ``"tagged cell"`` if its winning definition is in a cell tagged "solution",
            else ``"found by name"``.
        first_line: name (function, helper or constant) -> line of its cell where it starts, so
            tracebacks can point at the student's own line numbers.
    """

    imports: list[str] = field(default_factory=list)
    functions: dict[str, str] = field(default_factory=dict)
    helpers: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)

    def module_source(self) -> str:
        """All imports, helpers and functions as one Python module's source."""
        parts = list(dict.fromkeys(self.imports)) + list(self.helpers.values()) + list(self.functions.values())
        return "\n\n".join(parts) + "\n"


def _is_constant(node: ast.stmt) -> TypeGuard[ast.Assign | ast.AnnAssign]:
    """``NAME = literal`` (numbers, strings, tuples of them...), e.g. ``EPS = 1e-8``."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return False
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return False
    return all(isinstance(target, ast.Name) for target in targets)


def _segment(lines: list[str], node: ast.stmt) -> str:
    """``ast.get_source_segment(source, node)`` for ``lines = source.split("\\n")``, split once per cell.

    ``get_source_segment`` splits the whole source again at each call: once per statement, that
    is quadratic in a cell's size (a cell of 20000 lines took minutes). Column offsets are in
    UTF-8 bytes, as ``ast`` gives them.
    """
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1  # ast.parse sets end_lineno
    if first == last:
        return lines[first].encode()[node.col_offset:node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset:].decode()
    tail = lines[last].encode()[:node.end_col_offset].decode()
    return "\n".join([head, *lines[first + 1:last], tail])


def extract_functions(notebook, names: Iterable[str] = STUDENT_FUNCTIONS) -> ExtractedCode:
    """Find the source of the named functions, and what they may need, in a notebook.

    Every code cell is read in order, as if the notebook ran top to bottom: the *last* top-level
    ``def`` of a name wins, wherever it is (a student may leave the stub and write the function in
    a new cell below; a deleted cell tag changes nothing). Besides the named functions, the
    result holds every top-level ``import``, every other top-level ``def`` (helpers) and every
    top-level assignment of a literal constant (``EPS = 1e-8``). Nothing else in the notebook -
    no other statement - is kept or run.

    Args:
        notebook: a path to a ``.ipynb`` file or an ``nbformat.NotebookNode``.
        names: the function names to find.

    Returns:
        An :class:`ExtractedCode`; ``problems`` names every function that was not found, or whose
        only definition sits in a cell that does not parse. ``origin`` says whether the winning
        definition is in a cell tagged "solution". Nothing is executed.

    Raises:
        FileNotFoundError, ValueError: as :func:`read_notebook`.
    """
    nb = read_notebook(notebook) if isinstance(notebook, (str, os.PathLike)) else notebook
    names = list(names)
    found = ExtractedCode()
    for cell in (cell for cell in nb.cells if cell.get("cell_type") == "code"):
        source = _python_lines(cell.source)
        try:
            tree = ast.parse(source)
        except SyntaxError as error:  # the cell would not run: earlier definitions stand
            for name in names:
                if name not in found.functions and re.search(rf"^\s*def\s+{re.escape(name)}\s*\(", source, re.M):
                    found.problems[name] = (f"the cell defining {name} has a syntax error "
                                            f"(line {error.lineno}: {error.msg})")
            continue
        lines = source.split("\n")  # once per cell: _python_lines leaves "\n" as the only line break
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.imports.append(ast.unparse(node))
            elif _is_constant(node):
                text = _segment(lines, node)
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):  # (every target is: _is_constant)
                        found.helpers[target.id] = text
                        found.first_line[target.id] = node.lineno
            elif isinstance(node, ast.FunctionDef):
                start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                text = "\n".join(lines[start - 1:node.end_lineno])  # decorators included
                found.first_line[node.name] = start
                if node.name in names:
                    found.functions[node.name] = text
                    found.origin[node.name] = "tagged cell" if is_solution_cell(cell) else "found by name"
                    found.problems.pop(node.name, None)
                else:
                    found.helpers[node.name] = text
    for name in names:
        if name not in found.functions and name not in found.problems:
            found.problems[name] = f"no function named {name!r} was found (was it renamed or deleted?)"
    return found


# --- finding course notebooks -----------------------------------------------------------------

#: Environment variable naming the course folder (the folder holding the student's notebooks);
#: :func:`set_course_folder` sets it for this process and the commands it starts.
COURSE_FOLDER_ENV = "CS231N_STYLE_COURSE_DIR"


def set_course_folder(folder: str | os.PathLike | None) -> Path | None:
    """Say once where the course notebooks are, for :func:`load_functions` and the command line.

    Needed where the running notebook's own folder is unknown - on Colab (``/content`` is the
    working directory, the notebooks are on Drive) - or when the notebooks are elsewhere::

        from google.colab import drive
        drive.mount("/content/drive")
        cs.set_course_folder("/content/drive/MyDrive/cs231n-style/notebooks")

    It sets ``$CS231N_STYLE_COURSE_DIR`` (:data:`COURSE_FOLDER_ENV`) in this process, so commands
    started from it (``!cs231n-style ...``) see the same folder; setting that variable before
    starting Jupyter does the same.

    Args:
        folder: an existing folder (``~`` is expanded; relative to the working directory), or
            ``None`` to forget the folder set before.

    Returns:
        The folder as an absolute ``Path``, or ``None`` when cleared.

    Raises:
        FileNotFoundError: if ``folder`` does not exist.
        NotADirectoryError: if ``folder`` is a file (give the folder that holds the notebooks).
    """
    if folder is None:
        os.environ.pop(COURSE_FOLDER_ENV, None)
        return None
    path = Path(folder).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"set_course_folder: there is no folder {str(path)!r}. On Colab, mount Drive "
                                "first (drive.mount('/content/drive')) and give the folder under "
                                "/content/drive/MyDrive.")
    if not path.is_dir():
        raise NotADirectoryError(f"set_course_folder: {str(path)!r} is a file; give the folder that holds the "
                                 "course notebooks (01_content_loss.ipynb, ...).")
    os.environ[COURSE_FOLDER_ENV] = str(path)
    return path


def _running_notebook() -> tuple[Path, str] | None:
    """The running notebook's path and who said so, or ``None`` outside a notebook (or on Colab).

    VS Code puts the path in the user namespace as ``__vsc_ipynb_file__``; Jupyter Server (JupyterLab,
    Notebook 7, JupyterHub) starts each kernel with ``$JPY_SESSION_NAME`` set to it. A relative
    ``JPY_SESSION_NAME`` (relative to the server's root, which the kernel does not know) is ignored.
    """
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)  # only if IPython is loaded
    shell = get_ipython() if get_ipython is not None else None
    vscode = getattr(shell, "user_ns", {}).get("__vsc_ipynb_file__") if shell is not None else None
    if isinstance(vscode, str) and os.path.isabs(vscode):
        return Path(vscode), "VS Code's __vsc_ipynb_file__"
    session = os.environ.get("JPY_SESSION_NAME", "")
    if os.path.isabs(session):
        return Path(session), "Jupyter's $JPY_SESSION_NAME"
    return None


def _search_folders() -> list[tuple[Path, str]]:
    """Where a relative notebook name is looked for, in order, each with why (see find_course_notebook)."""
    folders = []
    if os.environ.get(COURSE_FOLDER_ENV):
        folders.append((Path(os.environ[COURSE_FOLDER_ENV]).expanduser(),
                        f"the course folder (${COURSE_FOLDER_ENV} or cs.set_course_folder)"))
    running = _running_notebook()
    if running is not None:
        folders.append((running[0].parent, f"the running notebook's folder ({running[1]})"))
    folders.append((Path.cwd(), "the working directory"))
    return folders


def find_course_notebook(name: str | os.PathLike) -> Path:
    """Find a course notebook, e.g. ``"01_content_loss.ipynb"``, wherever the course runs.

    An absolute path is used as it is. A relative one is looked for, in this order, in

    1. the course folder, if one was given (:func:`set_course_folder` or ``$CS231N_STYLE_COURSE_DIR``);
    2. the folder of the running notebook (known in JupyterLab, Jupyter Notebook, JupyterHub and
       VS Code; not on Colab);
    3. the working directory (a notebook kernel starts in its notebook's folder, so this is that
       folder again unless something changed directory; nbval and nbconvert do the same).

    The first folder that holds it wins. So a later notebook finds the student's earlier ones next
    to itself, whatever the working directory.

    Args:
        name: a notebook file name or path.

    Returns:
        The notebook's path (absolute when it was found through a folder above).

    Raises:
        FileNotFoundError: if it is in none of those places; the message lists where it looked and
            how to point at the right folder.
    """
    path = Path(name).expanduser()
    if path.is_absolute():
        if not path.is_file():
            raise FileNotFoundError(f"No notebook at {str(path)!r}.")
        return path
    searched: dict[Path, list[str]] = {}  # folder -> why it was searched (a folder can be several)
    for folder, why in _search_folders():
        candidate = (folder / path).absolute()
        if candidate.is_file():
            return candidate
        searched.setdefault(folder.absolute(), []).append(why)
    where = "; ".join(f"{folder} ({' and '.join(whys)}{'' if folder.is_dir() else ', which does not exist'})"
                      for folder, whys in searched.items())
    raise FileNotFoundError(
        f"Could not find the notebook {str(path)!r}. Looked in: {where}. Point at the folder holding "
        f"your course notebooks once with cs.set_course_folder('/path/to/notebooks') (or set "
        f"${COURSE_FOLDER_ENV}); on Colab, mount Google Drive first (from google.colab import drive; "
        f"drive.mount('/content/drive')) and give the folder under /content/drive/MyDrive.")


def load_functions(notebook: str | os.PathLike, names: Iterable[str] | None = None) -> types.SimpleNamespace:
    """Import the named functions from a notebook, as if it were a module.

    Only the notebook's top-level imports, ``def`` blocks and literal constants run (see
    :func:`extract_functions`),
    in a fresh module, so a later notebook can reuse an earlier one's functions::

        content_loss = load_functions("01_content_loss.ipynb", ["content_loss"]).content_loss

    A relative name is found as :func:`find_course_notebook` says: in the course folder if one was
    set (:func:`set_course_folder`), else next to the running notebook, else in the working
    directory.

    Args:
        notebook: a ``.ipynb`` file name or path.
        names: function names to load; by default the course functions written in a notebook of
            that file name (:data:`NOTEBOOK_OF`: ``content_loss`` for ``01_content_loss.ipynb``, the
            two guided functions for ``05_controlling_style_transfer.ipynb``), or the four of
            :data:`STUDENT_FUNCTIONS` for another file name.

    Returns:
        A ``types.SimpleNamespace`` with one attribute per name.

    Raises:
        FileNotFoundError: if the notebook is not found; the message lists where it looked and how
            to point at the right folder.
        ValueError: if the file is not a readable notebook.
        LookupError: if a function is missing or its cell does not parse; the message says which
            and where.
        ImportError: if one of the notebook's imports fails.
    """
    path = find_course_notebook(notebook)
    if names is None:
        names = [name for name, file in NOTEBOOK_OF.items() if file == path.name] or STUDENT_FUNCTIONS
    names = list(names)
    code = extract_functions(path, names)
    if code.problems:
        details = "; ".join(f"{name}: {why}" for name, why in code.problems.items())
        raise LookupError(f"Could not load from {path.name}: {details}.")
    module = types.ModuleType("notebook_" + re.sub(r"\W", "_", path.stem))
    module.__file__ = f"<notebook {path.name}>"
    pieces = [("imports", "\n".join(dict.fromkeys(code.imports)))]
    pieces += list(code.helpers.items()) + list(code.functions.items())
    for name, text in pieces:
        # Each piece keeps its cell's line numbers, so tracebacks and the checks' "in your code,
        # line N" match what the student sees in the notebook.
        filename = f"<{path.name}: the cell of {name}>"
        source = "\n" * (code.first_line.get(name, 1) - 1) + text + "\n"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for inspect
        exec(compile(source, filename, "exec"), module.__dict__)
    return types.SimpleNamespace(**{name: module.__dict__[name] for name in names})


def load_course_functions(folder: str | os.PathLike | None = None) -> types.SimpleNamespace:
    """Load the student functions from the course notebooks (see ``NOTEBOOK_OF``).

    The four of :data:`STUDENT_FUNCTIONS` are always loaded. The optional ones of
    :data:`GUIDED_FUNCTIONS` (notebook 05, spatial control) are loaded when
    ``05_controlling_style_transfer.ipynb`` is found, and left out otherwise: a course without
    notebook 05 loads its four functions as before.

    Args:
        folder: ``solutions/``, a student's ``notebooks/``, or any folder holding
            ``01_content_loss.ipynb``, ``02_style_loss.ipynb`` and ``03_tv_loss.ipynb`` (and
            optionally ``05_controlling_style_transfer.ipynb``), relative to the working directory.
            ``None``: each notebook is found as :func:`find_course_notebook` says (course folder,
            running notebook's folder, working directory).

    Returns:
        A ``types.SimpleNamespace`` with ``content_loss``, ``gram_matrix``, ``style_loss`` and
        ``tv_loss``, plus ``guided_gram_matrix`` and ``guided_style_loss`` where notebook 05 is
        there (``cs.LossFunctions(**vars(...))`` makes the loop's argument of it).

    Raises:
        FileNotFoundError: if a notebook of the four is not found; the message lists where it looked.
        ValueError, LookupError, ImportError: as :func:`load_functions` (also for notebook 05's
            functions when that notebook is there).
    """
    base = None if folder is None else Path(folder).absolute()
    loaded = {}
    for name in ALL_STUDENT_FUNCTIONS:
        notebook = NOTEBOOK_OF[name] if base is None else base / NOTEBOOK_OF[name]
        if name in OPTIONAL_FUNCTIONS:
            try:
                notebook = find_course_notebook(notebook)
            except FileNotFoundError:
                continue  # notebook 05 is optional
        loaded[name] = getattr(load_functions(notebook, [name]), name)
    return types.SimpleNamespace(**loaded)
