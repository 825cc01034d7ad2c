"""Generate ``notebooks/`` (student copies) from ``solutions/`` (the one source of truth).

Each solution notebook goes through ``autograder.authoring.STUDENT_STEPS``: cells tagged
"solution-only" are dropped, code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
a stub that raises ``NotImplementedError`` (by nbgrader's ``ClearSolutions``, as ``nbgrader
generate_assignment`` does; the ``# HINT:`` lines above a region stay), and outputs are cleared
except the expected output of check cells, which nbval compares. It needs nbgrader (the
``instructor`` extra, part of ``dev``).

Usage::

    python tools/make_student_notebooks.py                 # regenerate notebooks/
    python tools/make_student_notebooks.py --execute       # first re-run the solutions (stores outputs)
    python tools/make_student_notebooks.py --execute --only 04 05   # re-run only these solutions
    python tools/make_student_notebooks.py --check         # exit 1 if notebooks/ is out of date

It never overwrites a student's work: a notebook in ``notebooks/`` whose stubs were filled in or
whose cells were run is left alone (with a message) unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.authoring import make_student_notebook  # noqa: E402
from cs231n_style.notebook import is_check_cell, is_solution_cell, read_notebook  # noqa: E402

SOLUTIONS = ROOT / "solutions"
STUDENT = ROOT / "notebooks"


def student_notebooks(solutions: Path = SOLUTIONS) -> dict[str, str]:
    """File name -> JSON text of each student notebook generated from ``solutions``."""
    out = {}
    for path in sorted(solutions.glob("*.ipynb")):
        nb = make_student_notebook(read_notebook(path), f"solutions/{path.name}")
        out[path.name] = nbformat.writes(nb) + "\n"
    return out


def student_work_in(path: Path) -> list[str]:
    """What in an existing notebook looks like a student's own work, as short descriptions: a
    solution cell whose ``NotImplementedError`` stub is gone, or a cell that was run (outputs or
    an execution count, check cells aside, which ship with theirs). Empty if none."""
    work = []
    for number, cell in enumerate(read_notebook(path).cells, start=1):
        if cell.cell_type != "code":
            continue
        if is_solution_cell(cell) and "NotImplementedError" not in cell.source:
            names = re.findall(r"^def (\w+)", cell.source, flags=re.MULTILINE)
            work.append(f"your code for {', '.join(names) or 'a function'} (cell {number})")
        elif not is_check_cell(cell) and (cell.outputs or cell.execution_count is not None):
            work.append(f"the outputs of cell {number}")
    return work


def write_student_notebooks(wanted: dict[str, str], folder: Path = STUDENT, force: bool = False) -> list[str]:
    """Write each generated notebook into ``folder``, except over one holding student work (see
    :func:`student_work_in`) unless ``force``. Returns the names left alone."""
    folder.mkdir(exist_ok=True)
    kept = []
    for name, text in wanted.items():
        target = folder / name
        if target.is_file() and target.read_text() == text:
            print(f"unchanged {target}")
            continue
        if target.is_file() and not force:
            work = student_work_in(target)
            if work:
                print(f"left {target} alone: it holds your work ({'; '.join(work[:3])}). Move it away, "
                      "or pass --force to replace it with the blank student version.")
                kept.append(name)
                continue
        target.write_text(text)
        print(f"wrote {target}")
    return kept


def selected(paths: list[Path], only: list[str] | None) -> list[Path]:
    """The notebooks among ``paths`` whose file name starts with one of ``only`` ("04", "05_contr",
    a whole name); all of them if ``only`` is empty or ``None``. SystemExit if one matches none."""
    if not only:
        return paths
    unknown = [prefix for prefix in only if not any(path.name.startswith(prefix) for path in paths)]
    if unknown:
        raise SystemExit(f"--only {' '.join(unknown)}: no such notebook in solutions/ "
                         f"({', '.join(path.name for path in paths)})")
    return [path for path in paths if any(path.name.startswith(prefix) for prefix in only)]


def execute_solutions(solutions: Path = SOLUTIONS, timeout: int = 600, only: list[str] | None = None) -> None:
    """Run the solution notebooks (all, or those :func:`selected` by ``only``) top to bottom in place
    (CPU, seeded), storing their outputs, and print each one's time."""
    import time

    from nbclient import NotebookClient

    for path in selected(sorted(solutions.glob("*.ipynb")), only):
        nb = read_notebook(path)
        for cell in nb.cells:  # no per-cell timestamps: re-running must not change unchanged notebooks
            cell.metadata.pop("execution", None)
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(solutions)}},
                       record_timing=False).execute(env={**os.environ, "CS231N_STYLE_DEVICE": "cpu", "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
        nbformat.write(nb, path)
        print(f"executed {path.relative_to(ROOT)} in {time.perf_counter() - start:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare notebooks/ with what would be generated")
    parser.add_argument("--execute", action="store_true", help="execute the solution notebooks first")
    parser.add_argument("--only", nargs="+", metavar="PREFIX",
                        help="with --execute: re-run only the solutions whose names start so (e.g. 04 05); "
                        "notebooks/ is still regenerated from all of them")
    parser.add_argument("--timeout", type=int, default=600, metavar="SECONDS",
                        help="with --execute: the longest a cell may run (default 600; more on a busy machine)")
    parser.add_argument("--force", action="store_true",
                        help="also replace notebooks that hold a student's work (filled-in stubs, run cells)")
    args = parser.parse_args()
    if args.only and not args.execute:
        parser.error("--only needs --execute")
    if args.execute:
        execute_solutions(timeout=args.timeout, only=args.only)
    wanted = student_notebooks()
    if args.check:
        stale = [name for name, text in wanted.items()
                 if not (STUDENT / name).is_file() or (STUDENT / name).read_text() != text]
        extra = [p.name for p in STUDENT.glob("*.ipynb") if p.name not in wanted]
        if stale or extra:
            print(f"notebooks/ is out of date: {stale + extra}; run python tools/make_student_notebooks.py "
                  "(course authors: it rewrites notebooks/ from solutions/)")
            return 1
        print("notebooks/ is up to date")
        return 0
    return 1 if write_student_notebooks(wanted, STUDENT, force=args.force) else 0


if __name__ == "__main__":
    sys.exit(main())
