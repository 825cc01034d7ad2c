"""The course as it runs outside this repository: the built wheel, installed non-editable with the
``notebook`` extra in a fresh virtual environment, notebooks in a folder of their own, another
working directory (as on JupyterHub or a student's laptop after ``pip install cs231n-style[notebook]``).

One fresh venv per module: torch pinned to the build the developers' environment has (so pip never
picks another, and it comes from this machine's disk), then the wheel built from this checkout.
The eight student notebooks, with the solutions filled in, are copied to a temporary folder and
executed by nbclient with the ``python3`` kernel of that venv, from a *different* working directory.
As Jupyter Server does, each kernel gets ``$JPY_SESSION_NAME`` = its notebook's path, so
``cs.load_functions("01_content_loss.ipynb")`` in a later notebook must find the earlier notebook
next to itself (not in the working directory). One notebook also runs as on Colab: no session
name, the folder given by ``$CS231N_STYLE_COURSE_DIR``. The console command ``cs231n-style`` is run
from the venv too. Times are printed (``pytest -s``).
"""

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from importlib.metadata import version
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell
from PIL import Image

import cs231n_style as cs
from autograder.authoring import fill_in_solutions
from cs231n_style.notebook import is_check_cell, read_notebook

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "squeezenet1_1_features.pth"  # as conftest.py
# The developers' torch (CI installs it pinned to the build this machine serves from disk).
TORCH = [f"torch=={version('torch')}", f"torchvision=={version('torchvision')}"]
FUNCTIONS = ("content_loss", "gram_matrix", "style_loss", "tv_loss")
PROVENANCE = "import sys, cs231n_style\nprint('PROVENANCE', sys.executable, cs231n_style.__file__)"
TIMES: dict[str, float] = {}

# Runs with the fresh venv's Python: executes each job's notebook with nbclient (kernel "python3",
# the venv's own), the kernel started in the job's working directory with the job's environment.
DRIVER = r'''
import json, os, sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

jobs = json.load(open(sys.argv[1]))
base = dict(os.environ)
for job in jobs:
    nb = nbformat.read(job["notebook"], as_version=4)
    os.environ.clear()
    os.environ.update({**base, **job["env"]})  # the kernel inherits this process's environment
    for name in job.get("unset", []):
        os.environ.pop(name, None)
    start, error = time.perf_counter(), None
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": job["cwd"]}}).execute()
    except CellExecutionError as exc:
        error = str(exc)[-4000:]
    job["seconds"], job["error"] = round(time.perf_counter() - start, 1), error
    nbformat.write(nb, job["out"])
json.dump(jobs, open(sys.argv[1], "w"), indent=1)
'''


def _run(command, *, cwd, env, timeout=900):
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done, time.perf_counter() - start


def _build_wheel(tmp: Path) -> Path:
    """The wheel of this checkout, built from a copy of what the build reads (the repo stays clean)."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "cs231n_style", source / "cs231n_style",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _, TIMES["build the wheel"] = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir",
                                        str(tmp / "dist"), str(source)], cwd=tmp, env=os.environ)
    (wheel,) = (tmp / "dist").glob("cs231n_style-*.whl")
    return wheel


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A fresh venv with the wheel and its notebook extra; the folders and environment to use it."""
    tmp = tmp_path_factory.mktemp("platform")
    wheel = _build_wheel(tmp)
    venv = tmp / "venv"
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "JPY_SESSION_NAME", cs.COURSE_FOLDER_ENV, "MPLBACKEND")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               CS231N_STYLE_DEVICE="cpu", PYTHONDONTWRITEBYTECODE="1")
    weights = SHARED_WEIGHTS if SHARED_WEIGHTS.is_file() else os.environ.get("CS231N_STYLE_WEIGHTS")
    if weights:
        env["CS231N_STYLE_WEIGHTS"] = str(weights)
    python = str(venv / "bin" / "python")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _, TIMES["install torch"] = _run([python, "-m", "pip", "install", "-q", *TORCH], cwd=tmp, env=env)
    _, TIMES["install the wheel[notebook]"] = _run([python, "-m", "pip", "install", "-q", f"{wheel}[notebook]"],
                                                   cwd=tmp, env=env)
    TIMES["fresh venv in all"] = time.perf_counter() - start
    other = tmp / "elsewhere"  # the working directory: neither the repository nor the notebooks' folder
    other.mkdir()
    yield {"tmp": tmp, "wheel": wheel, "venv": venv, "python": python, "env": env, "cwd": other}
    shutil.rmtree(venv, ignore_errors=True)  # ~6 GB; pytest keeps its last temporary folders
    print("\nplatform test times (s): " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in TIMES.items()))


def test_the_wheel_holds_the_package_its_data_and_the_command(platform):
    names = set(zipfile.ZipFile(platform["wheel"]).namelist())
    package = ROOT / "cs231n_style"
    wanted = {path.relative_to(ROOT).as_posix() for path in package.rglob("*")
              if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}
    assert {"cs231n_style/data/reference_values.npz", "cs231n_style/data/images/cat.jpg"} <= wanted
    assert wanted <= names, f"not in the wheel (see [tool.setuptools.package-data]): {sorted(wanted - names)}"
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(platform["wheel"]).read(entry_points).decode()
    assert "cs231n-style = cs231n_style.__main__:main" in text


def test_the_install_is_the_wheel_with_a_kernel(platform):
    done, _ = _run([platform["python"], "-c", "import cs231n_style, jupyter_client.kernelspec as k; "
                    "print(cs231n_style.__file__); "
                    "print(k.KernelSpecManager().get_kernel_spec('python3').resource_dir)"],
                   cwd=platform["cwd"], env=platform["env"])
    module, kernel = done.stdout.split()
    assert Path(module).is_relative_to(platform["venv"]) and not Path(module).is_relative_to(ROOT)  # not editable
    assert Path(kernel).is_relative_to(platform["venv"])  # the venv's own python3 kernel: no NoSuchKernel
    _run([platform["python"], "-m", "pip", "check"], cwd=platform["cwd"], env=platform["env"])


def test_the_command_runs_from_any_folder(platform):
    bin_ = platform["venv"] / "bin"
    done, _ = _run([str(bin_ / "cs231n-style"), "--help"], cwd=platform["cwd"], env=platform["env"])
    assert done.stdout.startswith("usage: cs231n-style") and "--functions" in done.stdout
    done, _ = _run([platform["python"], "-m", "cs231n_style", "--help"], cwd=platform["cwd"], env=platform["env"])
    assert done.stdout.startswith("usage: python -m cs231n_style")
    course = platform["tmp"] / "cli_course"
    course.mkdir()
    for name in cs.NOTEBOOK_OF.values():
        shutil.copy(ROOT / "solutions" / name, course)
    env = {**platform["env"], cs.COURSE_FOLDER_ENV: str(course)}
    done, TIMES["cs231n-style, 3 steps"] = _run(
        [str(bin_ / "cs231n-style"), "--image-size", "48", "--style-size", "48", "--num-steps", "3",
         "--output", "out/result.png"], cwd=platform["cwd"], env=env)
    assert "wrote" in done.stdout
    with Image.open(platform["cwd"] / "out" / "result.png") as image:
        assert min(image.size) == 48


def _filled_in_course(folder: Path) -> list[Path]:
    """The student notebooks with the solutions filled in, plus a last cell saying where the code ran."""
    folder.mkdir()
    paths = []
    for student in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = fill_in_solutions(read_notebook(student), read_notebook(ROOT / "solutions" / student.name))
        nb.cells.append(new_code_cell(PROVENANCE))
        nbformat.write(nb, folder / student.name)
        paths.append(folder / student.name)
    return paths


def _text(cell) -> str:
    return "".join(output.get("text", "") + "".join(output.get("data", {}).get("text/plain", ""))
                   for output in cell.get("outputs", []))


def test_the_course_notebooks_run_from_the_installed_wheel_elsewhere(platform):
    tmp = platform["tmp"]
    notebooks = _filled_in_course(tmp / "course")
    assert [path.stem[:2] for path in notebooks] == ["00", "01", "02", "03", "04", "05", "06", "07"]
    (tmp / "executed").mkdir()
    jobs = [{"notebook": str(path), "cwd": str(platform["cwd"]), "out": str(tmp / "executed" / path.name),
             "env": {"JPY_SESSION_NAME": str(path)}}  # what Jupyter Server gives each notebook's kernel
            for path in notebooks]
    colab = next(path for path in notebooks if path.name == "03_tv_loss.ipynb")  # loads 01 and 02's functions
    jobs.append({"notebook": str(colab), "cwd": str(platform["cwd"]), "out": str(tmp / "executed" / "colab_03.ipynb"),
                 "env": {cs.COURSE_FOLDER_ENV: str(tmp / "course")}, "unset": ["JPY_SESSION_NAME"]})
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    (tmp / "driver.py").write_text(DRIVER)
    _run([platform["python"], str(tmp / "driver.py"), str(tmp / "jobs.json")], cwd=platform["cwd"],
         env=platform["env"], timeout=1800)
    results = json.loads((tmp / "jobs.json").read_text())
    for job in results:
        TIMES[Path(job["out"]).stem] = job["seconds"]
    TIMES["the eight notebooks"] = sum(job["seconds"] for job in results[:len(notebooks)])
    failed = {Path(job["out"]).name: job["error"] for job in results if job["error"]}
    assert not failed, "\n\n".join(f"{name}:\n{error}" for name, error in failed.items())

    verdicts = []
    for job in results:
        nb = nbformat.read(job["out"], as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert all(cell.execution_count for cell in code), f"{job['out']}: a cell did not run"
        assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
        checks = [_text(cell) for cell in code if is_check_cell(cell)]
        assert all("PASS" in text and "FAIL" not in text for text in checks), checks
        verdicts += checks
        provenance = _text(code[-1]).split()
        assert provenance[0] == "PROVENANCE"
        assert Path(provenance[1]).parent == platform["venv"] / "bin"  # the venv's kernel
        assert Path(provenance[2]).is_relative_to(platform["venv"])  # the installed wheel, not this checkout
    for name in FUNCTIONS:
        assert any(f"{name}: PASS" in text for text in verdicts), name
    assert not list(platform["cwd"].glob("*.ipynb"))  # nothing was found in the working directory by accident
