"""Build the Gradescope autograder zip and the student release; run inside Gradescope.

* :func:`build_gradescope_zip` - the zip to upload to Gradescope as it is. Laid out as Gradescope's
  autograder specification says (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
  at its root ``setup.sh``, ``run_autograder`` and ``requirements.txt`` (from
  ``autograder/gradescope/``), this package with its rubric, the ``cs231n_style`` package, and
  ``reference_solutions.py`` (the solution functions' source, extracted from the solution
  notebooks, for expected values). Gradescope extracts it into ``/autograder/source``, runs
  ``setup.sh`` once (a virtual environment from ``requirements.txt``, with ``cs231n_style`` copied
  into it), and ``run_autograder`` for each submission. No weights: nothing runs a network.
  ``AUTOGRADER_ROOT``, ``AUTOGRADER_VENV`` and ``AUTOGRADER_SKIP_APT`` let a test run both
  scripts on a fake layout (tests/test_platform_gradescope.py).
* :func:`run_gradescope` - what ``run_autograder`` calls: grade ``ROOT/submission`` into
  ``ROOT/results/results.json``.
* :func:`build_release` - what students get: the student notebooks and their tests, the helper
  package, a student README (:data:`STUDENT_README`), ``environment.yml``, ``conftest.py``, and
  ``pyproject.toml`` and ``Makefile`` adapted (pytest runs ``notebooks/``; no authors' target);
  no solutions, no hidden tests, no autograder. :func:`solution_lines_in` proves the first.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from pathlib import Path

from autograder.authoring import BEGIN_SOLUTION, END_SOLUTION
from cs231n_style.notebook import read_notebook

from .reference import SOLUTIONS, load_reference, reference_source, require_reference
from .rubric import DEFAULT_RUBRIC, load_rubric

__all__ = [
    "STUDENT_README",
    "build_gradescope_zip",
    "build_release",
    "run_gradescope",
    "solution_lines",
    "solution_lines_in",
]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cs231n_style"
HERE = Path(__file__).resolve().parent

GRADESCOPE_FILES = HERE / "gradescope"  # setup.sh, run_autograder and requirements.txt, as shipped

STUDENT_README = """# cs231n-style: neural style transfer

You implement the four functions of neural style transfer (Gatys, Ecker & Bethge, CVPR 2016) -
the **content loss**, the **Gram matrix**, the **style loss** and the **total variation loss** -
and watch them turn a photo into a painting. Notebook 05 adds control over where a style goes
(Gatys et al., CVPR 2017): you write the **guided Gram matrix** and the **guided style loss**.

## Setup

With Python 3.10+ and `make`:

```bash
make course    # creates .venv, installs everything, starts JupyterLab on notebooks/
```

It prints JupyterLab's URL (it adds `--allow-root` as root and `--no-browser` without a display);
stop it with Ctrl-C, twice. Without an NVIDIA GPU it installs PyTorch's CPU build from PyTorch's CPU
index (`make course TORCH_INDEX=` lets pip choose).

With conda instead: `conda env create -f environment.yml && conda activate cs231n-style && jupyter lab notebooks/`.

## The course

Work through the notebooks in `notebooks/`, in order:

| notebook | you write | you see |
|---|---|---|
| `00_setup_and_features` | - | device, images, SqueezeNet's layers and feature maps |
| `01_content_loss` | `content_loss` | an image rebuilt from its layer-3 feature maps |
| `02_style_loss` | `gram_matrix`, `style_loss` | a texture synthesized from a style image |
| `03_tv_loss` | `tv_loss` | what the smoothness term does |
| `04_style_transfer` | - | three example runs, and a slider panel to explore |
| `05_controlling_style_transfer` | `guided_gram_matrix`, `guided_style_loss` | a style per region, and more |
| `06_photorealistic_style_transfer` | `photorealism_loss` | photo-to-photo transfer that stays a photo |

After each function, its check cell prints a verdict (`PASS`, or what is wrong). Later notebooks
load your functions from earlier ones (`cs.load_functions`), so you never copy code.

## Checking your work

```bash
make check     # or: .venv/bin/python -m pytest notebooks/
```

This runs your notebooks top to bottom (comparing each check cell with its expected `PASS` line)
and `notebooks/test_my_functions.py`; it passes exactly when your functions are right, and ends
with one line per function and its verdict. After a failed check, the notebook's later demo cells
print `skipped: fix <function> first` instead of failing one after another.

## Submitting

Submit the notebooks of `notebooks/` (the `.ipynb` files, or a `.zip` of the folder) the way your
course asks. The grader takes only your functions from them (the four, and notebook 05's two and
notebook 06's one where your course grades them), wherever they are defined, and
runs them on the notebook checks' inputs and on other ones (other shapes, batches, dtypes, scales),
so keep their names and arguments as given.

## Your own images

Anywhere a sample name (`"cat"`, `"swirls"`, ...) is accepted, a path works too:
`cs.style_transfer("my_photo.jpg", "my_painting.png", losses, model)`. Save results with
`cs.save_image(result.image, "outputs/mine.png")`, which never overwrites a file.

## Pretrained weights, offline

SqueezeNet 1.1's ImageNet weights (5 MB) are downloaded by torchvision on first use. Without
internet, put the file in a `weights/` folder here (next to `notebooks/`), or where torchvision
caches it (`~/.cache/torch/hub/checkpoints/squeezenet1_1-b8a52dc0.pth`), or set
`CS231N_STYLE_WEIGHTS=/path/to/file.pth`; if none is found, the error lists every place it looked.

## GPU

`cs.get_device()` picks CUDA, then Apple MPS, then the CPU; set `CS231N_STYLE_DEVICE=cpu` to choose
the CPU. A laptop CPU is enough.
"""

_AUTHORS_ONLY = re.compile(r"^notebooks:.*\n(?:\t.*\n)*\n?", re.MULTILINE)  # the Makefile's rule that runs tools/


def _student_pyproject(text: str) -> str:
    """The course's ``pyproject.toml`` with pytest's ``testpaths`` set to the student notebooks."""
    text, found = re.subn(r"^testpaths\s*=.*$", 'testpaths = ["notebooks"]', text, flags=re.MULTILINE)
    if found != 1:
        raise RuntimeError("pyproject.toml: no testpaths line to point at notebooks/")
    return text


def _student_makefile(text: str) -> str:
    """The course's ``Makefile`` without the authors' ``notebooks`` target (it runs ``tools/``)."""
    text = _AUTHORS_ONLY.sub("", text)
    text = re.sub(r"^(\.PHONY:.*?) notebooks\b", r"\1", text, flags=re.MULTILINE)
    text = re.sub(r", make notebooks \(authors\)", "", text).rstrip("\n") + "\n"
    text = re.sub(r"^#   make test .*$", "#   make test     the same as make check in this release", text,
                  flags=re.MULTILINE)
    text, found = re.subn(r"^test: \$\(VENV\)/\.installed$", "test: $(VENV)/.course", text, flags=re.MULTILINE)
    if found != 1:
        raise RuntimeError("Makefile: no test target to point at the students' installation")
    # the developers' installation (the dev extra: test tools, nbgrader) has no use in the release
    text = re.sub(r"^\$\(VENV\)/\.installed:.*\n(?:\t.*\n)*\n?", "", text, flags=re.MULTILINE)
    text = re.sub(r"^# Students get .*\n# and nbgrader\.\n",
                  "# What students need: the course, JupyterLab and their checks.\n", text, flags=re.MULTILINE)
    if ".installed" in text or "nbgrader" in text:
        raise RuntimeError("Makefile: the release would keep the developers' installation")
    if "tools/" in text or re.search(r"^notebooks:", text, flags=re.MULTILINE):
        raise RuntimeError("Makefile: the release would keep a target that needs tools/")
    return text


def _copy_package(source: Path, target: Path, data: tuple[str, ...]) -> None:
    """Copy a package's ``.py`` files and the named data files (no caches)."""
    for path in sorted(source.rglob("*.py")):
        if "__pycache__" not in path.parts:
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / path.relative_to(source))
    for pattern in data:
        for path in sorted(source.glob(pattern)):
            if path.is_file():
                (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / path.relative_to(source))


def _zip_write(zf: zipfile.ZipFile, name: str, text: str | bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, text)


def build_gradescope_zip(out: str | Path, rubric: str | Path | None = None, solutions: str | Path = SOLUTIONS) -> Path:
    """Write the Gradescope autograder zip, every file at the zip's root as Gradescope expects.

    Args:
        out: the ``.zip`` to write (its folder is created).
        rubric: a rubric file to ship instead of ``autograder/rubric.toml`` (not validated here:
            ``python -m autograder gradescope-zip`` loads it first).
        solutions: the folder of solution notebooks the reference functions come from.

    Returns:
        The zip's path.

    Raises:
        OSError: if ``out`` cannot be written or ``rubric`` read.
        LookupError: if a function is missing from the solution notebooks
            (:func:`autograder.reference.reference_source`); ``MissingReference`` (a LookupError)
            if the rubric grades one they lack (notebook 05's with its section on).

    Source: Gradescope's autograder specification,
    https://gradescope-autograders.readthedocs.io/en/latest/specs/ (``setup.sh`` and
    ``run_autograder`` at the root of the zip, extracted into ``/autograder/source``).
    """
    require_reference(load_rubric(rubric or DEFAULT_RUBRIC).functions, load_reference(solutions), solutions)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_suffix(".staging")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _copy_package(HERE, staging / "autograder", ("rubric.toml", "rubric.schema.json"))
        if rubric is not None:
            shutil.copyfile(rubric, staging / "autograder" / "rubric.toml")
        _copy_package(PACKAGE, staging / "cs231n_style", ("data/reference_values.npz",))
        (staging / "reference_solutions.py").write_text(
            '"""The reference functions (generated from the solution notebooks by autograder.packaging)."""\n\n'
            + reference_source(solutions))
        with zipfile.ZipFile(out, "w") as zf:
            for name in ("setup.sh", "run_autograder", "requirements.txt"):
                _zip_write(zf, name, (GRADESCOPE_FILES / name).read_bytes(), executable=name != "requirements.txt")
            for path in sorted(staging.rglob("*")):
                if path.is_file():
                    _zip_write(zf, path.relative_to(staging).as_posix(), path.read_bytes())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def run_gradescope(root: str | Path | None = None) -> Path:
    """Grade ``ROOT/submission`` into ``ROOT/results/results.json`` (and ``report.md``).

    What ``run_autograder`` runs (``python -m autograder gradescope``), in the layout of
    Gradescope's autograder specification: the zip's files in ``ROOT/source``, the student's files
    in ``ROOT/submission``. The student's process never sees ``ROOT/source``, ``ROOT/submission``
    or ``ROOT/results`` (``hide``, :func:`autograder.grader.grade_submission`).

    Args:
        root: the autograder folder; default ``$AUTOGRADER_ROOT``, else ``/autograder``.

    Returns:
        The path of ``results.json``. A missing or empty submission is graded 0 with feedback.

    Raises:
        OSError: if the results cannot be written; ``run_autograder`` then writes an
            "Autograder setup error" results.json itself.

    The reference comes from ``ROOT/source/reference_solutions.py`` when present.
    """
    from .grader import grade_submission
    from .report import write_results
    from .rubric import DEFAULT_RUBRIC, load_rubric

    root = Path(root or os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    reference = root / "source" / "reference_solutions.py"
    rubric = load_rubric(DEFAULT_RUBRIC)
    result = grade_submission(root / "submission", rubric,
                              reference_path=reference if reference.is_file() else None,
                              hide=[str(root / "source"), str(root / "submission"), str(root / "results")])
    return write_results(result, rubric, root / "results")


# --- the student release --------------------------------------------------------------------------

def build_release(out_dir: str | Path, repo: Path = ROOT) -> Path:
    """Write the student release into ``out_dir`` (which must not exist yet).

    ``README.md`` is :data:`STUDENT_README`; ``pyproject.toml`` has ``testpaths = ["notebooks"]``
    (so ``python -m pytest`` / ``make test`` run the student's notebooks and tests); the
    ``Makefile`` loses its authors' ``notebooks`` target.

    Raises:
        FileExistsError: if ``out_dir`` exists.
        RuntimeError: if a solution line would be released (see :func:`solution_lines_in`), or
            ``pyproject.toml`` / ``Makefile`` cannot be adapted.
    """
    out = Path(out_dir)
    out.mkdir(parents=True)
    (out / "notebooks").mkdir()
    for path in [*sorted((repo / "notebooks").glob("*.ipynb")), repo / "notebooks" / "test_my_functions.py"]:
        if path.is_file():
            shutil.copyfile(path, out / "notebooks" / path.name)
    _copy_package(repo / "cs231n_style", out / "cs231n_style", ("data/*", "data/images/*"))
    # conftest.py and the sanitizer make `pytest notebooks/` compare check outputs as in the course repo
    for name in ("environment.yml", "conftest.py", "tests/nbval_sanitize.cfg"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo / name, out / name)
    (out / "pyproject.toml").write_text(_student_pyproject((repo / "pyproject.toml").read_text()))
    (out / "Makefile").write_text(_student_makefile((repo / "Makefile").read_text()))
    (out / "README.md").write_text(STUDENT_README)
    leaks = solution_lines_in(out, repo / "solutions")
    if leaks:
        raise RuntimeError(f"solution code in the release: {leaks[:5]}")
    return out


_SHAPE_ONLY = re.compile(r"^[\w\s,]+=\s*\w+\.shape$")  # "n, c, h, w = features.shape" reveals nothing


def solution_lines(solutions: Path = SOLUTIONS) -> set[str]:
    """The code lines inside solution regions of the solution notebooks (stripped).

    Comments and lines that only unpack an input's shape (``n, c, h, w = features.shape``, which
    the checks also say) are left out.
    """
    lines: set[str] = set()
    for path in sorted(Path(solutions).glob("*.ipynb")):
        for cell in read_notebook(path).cells:
            inside = False
            for line in cell.get("source", "").splitlines():
                stripped = line.strip()
                if stripped == BEGIN_SOLUTION:
                    inside = True
                elif stripped == END_SOLUTION:
                    inside = False
                elif inside and stripped and not stripped.startswith("#") and not _SHAPE_ONLY.match(stripped):
                    lines.add(stripped)
    return lines


def solution_lines_in(folder: str | Path, solutions: Path = SOLUTIONS) -> list[tuple[str, str]]:
    """``(file, line)`` for every solution line found in any text file under ``folder``.

    A line counts where it stands between word boundaries (``return gram`` is not found in
    ``return grams[0]``), so that a short solution line does not flag unrelated code.
    """
    wanted = {line: re.compile(rf"(?<!\w){re.escape(line)}(?!\w)") for line in solution_lines(solutions)}
    hits = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        try:
            text = path.read_text()
            if path.suffix == ".ipynb":  # the cells' code as well as their JSON-escaped form
                text += "\n".join(cell.get("source", "") for cell in read_notebook(path).cells)
        except (UnicodeDecodeError, OSError, ValueError):
            continue
        for line, pattern in wanted.items():
            if line in text and pattern.search(text):
                hits.append((str(path.relative_to(folder)), line))
    return hits
