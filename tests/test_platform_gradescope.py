"""Gradescope, run the way its autograder specification says
(https://gradescope-autograders.readthedocs.io/en/latest/specs/), and the grader's imports.

The slow tests build the zip with ``python -m autograder gradescope-zip``, extract it into a fake
``<tmp>/autograder/source``, run its ``setup.sh`` (a **fresh** virtual environment made only from the
zip's own ``requirements.txt``: no matplotlib, no ipywidgets, nothing of the developers' ``.venv``),
copy ``run_autograder`` to ``<tmp>/autograder/run_autograder`` and run it, from ``<tmp>/autograder``,
on submissions put in ``<tmp>/autograder/submission``. Every ``results.json`` is validated against
``gradescope_results.schema.json`` (the specification's output format). The environment is built
once for the module (about 2 minutes: torch comes from this machine's disk; pip also asks the
PyTorch CPU index named in the requirements, which is unreachable here, so ``PIP_RETRIES=0``
makes it give up at once).

What this cannot do as Gradescope does: apt-get (``AUTOGRADER_SKIP_APT=1``; this machine has
python3-venv, bubblewrap and unshare already) and write ``/autograder`` and ``/opt``
(``AUTOGRADER_ROOT`` and ``AUTOGRADER_VENV`` point both scripts at the fake layout). The fake root
lies in a folder others may traverse, as ``/autograder`` and ``/opt`` are, so that when the tests
run as root the sandbox's unprivileged user can reach the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from test_autograder import notebook_with, points_by_function, solution_sources

from autograder.packaging import GRADESCOPE_FILES
from autograder.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
HEAVY = ("ipywidgets", "matplotlib", "cs231n_style.widgets", "cs231n_style.plots")


def validated(path: Path) -> dict:
    """``results.json`` at ``path``, checked against Gradescope's output format."""
    results = json.loads(path.read_text())
    jsonschema.validate(results, SCHEMA)
    return results


def extract_as_gradescope(archive: Path, source: Path) -> None:
    """Extract ``archive`` into ``source`` keeping the Unix modes stored in it (as ``unzip`` does)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, source))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                os.chmod(target, stat.S_IMODE(mode))


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without the developers' virtual environment, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    dev_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != dev_bin)
    return {**env, **extra}


# --- fast: the zip's layout, the fallback without an environment, the grader's imports ------------

def test_the_zip_has_gradescopes_files_at_its_root(tmp_path):
    archive = tmp_path / "autograder.zip"
    done = subprocess.run([sys.executable, "-m", "autograder", "gradescope-zip", str(archive)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(archive) as zf:
        infos = {info.filename: info for info in zf.infolist()}
        for name in ("setup.sh", "run_autograder", "requirements.txt"):
            assert zf.read(name) == (GRADESCOPE_FILES / name).read_bytes(), name
    assert {"autograder/__main__.py", "autograder/rubric.toml", "autograder/rubric.schema.json", "autograder/runner.py",
            "reference_solutions.py",
            "cs231n_style/__init__.py", "cs231n_style/checks.py",
            "cs231n_style/data/reference_values.npz"} <= set(infos)
    assert not any(name.startswith(("source/", "solutions/")) or name.endswith(".pth") for name in infos)
    with zipfile.ZipFile(archive) as zf:  # the reference of every graded function, notebook 05's included
        reference = zf.read("reference_solutions.py").decode()
    assert all(f"def {name}(" in reference for name in load_rubric().functions)
    for name in ("setup.sh", "run_autograder"):
        assert infos[name].external_attr >> 16 & 0o111 == 0o111, f"{name} is not executable"
    requirements = (GRADESCOPE_FILES / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in requirements and "torch==2.14.1" in requirements
    assert "matplotlib" not in requirements and "ipywidgets" not in requirements


def test_without_an_environment_run_autograder_still_writes_valid_results(tmp_path):
    """setup.sh never ran (or failed): a 0 that says so, exit status 0."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    done = subprocess.run(["bash", str(GRADESCOPE_FILES / "run_autograder")], cwd=root, capture_output=True,
                          text=True, timeout=60,
                          env=clean_environ(AUTOGRADER_ROOT=str(root), AUTOGRADER_VENV=str(tmp_path / "no-venv")))
    assert done.returncode == 0, done.stderr
    results = validated(root / "results" / "results.json")
    assert results["score"] == 0 and results["tests"][0]["name"] == "Autograder setup error"
    assert str(tmp_path / "no-venv") in results["tests"][0]["output"] and "setup.sh" in results["output"]


def test_grading_imports_neither_widgets_nor_matplotlib(tmp_path):
    """In a fresh process: grade a solution notebook with the CLI's own code, then list what was
    imported; then touch ``cs.style_transfer_panel`` to show that the check sees a widget import."""
    script = f"""
import json, sys
from autograder.__main__ import main
status = main(["grade", {str(ROOT / "solutions" / "01_content_loss.ipynb")!r}, "--out", {str(tmp_path / "out")!r}])
during = [m for m in {HEAVY!r} if m in sys.modules]
import cs231n_style as cs
cs.style_transfer_panel
after = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps({{"status": status, "during": during, "after": after}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == 0 and seen["during"] == []
    assert {"ipywidgets", "cs231n_style.widgets"} <= set(seen["after"])  # the check would catch an import


# --- slow: the zip as Gradescope runs it, with a fresh environment ---------------------------------

@dataclass
class FakeGradescope:
    root: Path  # <tmp>/autograder
    venv: Path
    env: dict
    setup_s: float

    def grade(self, files: dict[str, Path], **env: str) -> tuple[dict, subprocess.CompletedProcess]:
        """Put ``files`` (name -> file) in ``submission/`` as Gradescope does, run
        ``/autograder/run_autograder`` from ``/autograder``, return the validated results and the run."""
        shutil.rmtree(self.root / "submission", ignore_errors=True)
        shutil.rmtree(self.root / "results", ignore_errors=True)
        (self.root / "submission").mkdir()
        (self.root / "results").mkdir()
        for name, path in files.items():
            shutil.copyfile(path, self.root / "submission" / name)
        done = subprocess.run([str(self.root / "run_autograder")], cwd=self.root, capture_output=True, text=True,
                              env={**self.env, **env}, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return validated(self.root / "results" / "results.json"), done


@pytest.fixture(scope="module")
def gradescope(tmp_path_factory):
    archive = tmp_path_factory.mktemp("zip") / "autograder.zip"
    subprocess.run([sys.executable, "-m", "autograder", "gradescope-zip", str(archive)], cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    base = Path(tempfile.mkdtemp(prefix="cs231n-gradescope-"))
    os.chmod(base, 0o755)  # like / and /opt: the sandbox's user may traverse it to reach the environment
    try:
        root, venv = base / "autograder", base / "opt" / "cs231n-style-venv"
        extract_as_gradescope(archive, root / "source")
        env = clean_environ(AUTOGRADER_ROOT=str(root), AUTOGRADER_VENV=str(venv), AUTOGRADER_SKIP_APT="1",
                            PIP_RETRIES="0")
        start = time.monotonic()
        done = subprocess.run(["./setup.sh"], cwd=root / "source", env=env, capture_output=True, text=True,
                              timeout=1200)
        setup_s = time.monotonic() - start
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
        print(f"\nsetup.sh built the fresh environment in {setup_s:.0f} s")
        yield FakeGradescope(root, venv, env, setup_s)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def venv_python(gradescope: FakeGradescope, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(gradescope.venv / "bin" / "python"), "-I", "-c", code], capture_output=True, text=True,
                          timeout=120, env=gradescope.env)


@pytest.mark.slow
def test_the_environment_is_made_from_the_zips_requirements_only(gradescope):
    done = venv_python(gradescope, "import importlib.util as u, json; print(json.dumps("
                                   "{m: u.find_spec(m) is not None for m in ('torch', 'nbformat', 'cs231n_style', "
                                   "'matplotlib', 'ipywidgets', 'pytest', 'autograder')}))")
    found = json.loads(done.stdout)
    assert found == {"torch": True, "nbformat": True, "cs231n_style": True,
                     "matplotlib": False, "ipywidgets": False, "pytest": False, "autograder": False}
    version = venv_python(gradescope, "import torch; print(torch.__version__)").stdout.strip()
    assert version.split("+")[0] == "2.14.1"
    # readable by the sandbox's unprivileged user (setup.sh: chmod -R a+rX)
    package = Path(venv_python(gradescope, "import cs231n_style; print(cs231n_style.__file__)").stdout.strip())
    assert package.stat().st_mode & 0o004 and gradescope.venv.stat().st_mode & 0o005 == 0o005


@pytest.mark.slow
def test_the_solutions_score_full_marks(gradescope):
    results, _ = gradescope.grade({p.name: p for p in sorted((ROOT / "solutions").glob("*.ipynb"))})
    rubric = load_rubric()
    assert results["score"] == pytest.approx(sum(spec.points for spec in rubric.tests)) == pytest.approx(145)
    assert all(test["status"] == "passed" for test in results["tests"])
    if os.geteuid() == 0:
        assert not any("NOT dropped" in m or "NOT isolated" in m for m in results["extra_data"]["sandbox"])


@pytest.mark.slow
def test_the_untouched_student_notebooks_score_zero_not_implemented(gradescope):
    results, _ = gradescope.grade({p.name: p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))})
    assert results["score"] == 0 and results["tests"]
    assert all(test["score"] == 0 and "not implemented" in test["output"].lower() for test in results["tests"])


@pytest.mark.slow
def test_a_hostile_submission_is_contained_and_graded(gradescope, tmp_path):
    """content_loss is right only if it could neither read the reference solutions nor write into
    the grader's folders; style_loss ends its process; tv_loss never returns."""
    source, results_dir = gradescope.root / "source", gradescope.root / "results"
    spy = f'''def _spy(content_weight, content_current, content_original):
    for secret in ({str(source / "reference_solutions.py")!r}, {str(source / "autograder" / "rubric.toml")!r}):
        try:
            open(secret).read(10)
            raise RuntimeError("READ " + secret)
        except OSError:
            pass
    for target in ({str(results_dir / "results.json")!r}, {str(source / "planted.py")!r}):
        try:
            open(target, "w").write("{{}}")
            raise RuntimeError("WROTE " + target)
        except OSError:
            pass
    return content_weight * torch.sum((content_current - content_original) ** 2)


def content_loss(content_weight, content_current, content_original):  # loop-free: the spying is a helper's
    return _spy(content_weight, content_current, content_original)
'''
    hostile = {**solution_sources(), "content_loss": spy,
               "style_loss": "def style_loss(feats, style_layers, style_targets, style_weights):\n"
                             "    import os\n    os._exit(0)\n",
               "tv_loss": "def tv_loss(img, tv_weight):\n    while True:\n        pass\n"}
    notebook = notebook_with(hostile, tmp_path / "hostile.ipynb")
    results, _ = gradescope.grade({"hostile.ipynb": notebook})
    if os.geteuid() != 0:
        pytest.skip("not root: the sandbox cannot drop to another user, so the reads are not blocked")
    rubric = load_rubric()
    function_of = {spec.id: spec.function for spec in rubric.tests}
    scores = dict.fromkeys(function_of.values(), 0.0)
    for test_id, test in zip(results["extra_data"]["test_ids"], results["tests"], strict=True):
        scores[function_of[test_id]] += test["score"]
    points = points_by_function(rubric)
    assert scores == pytest.approx({**points, "style_loss": 0, "tv_loss": 0})
    assert results["score"] == pytest.approx(points["content_loss"] + points["gram_matrix"]
                                             + points["guided_gram_matrix"] + points["guided_style_loss"]
                                             + points["photorealism_loss"])
    assert not (source / "planted.py").exists()


@pytest.mark.slow
def test_a_broken_setup_still_gives_valid_results_naming_the_reason(gradescope):
    """A package of requirements.txt missing from the environment (its folder moved away for the
    test), then a grading over the time limit: each a 0 with an "Autograder setup error"."""
    solutions = {p.name: p for p in sorted((ROOT / "solutions").glob("*.ipynb"))}
    site = Path(venv_python(gradescope, "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    package = site / "nbformat"
    package.rename(site / "nbformat.away")
    try:
        results, done = gradescope.grade(solutions)
    finally:
        (site / "nbformat.away").rename(package)
    error = results["tests"][0]
    assert results["score"] == 0 and len(results["tests"]) == 1 and error["name"] == "Autograder setup error"
    assert "No module named 'nbformat'" in error["output"] and "tell your instructor" in results["output"]
    assert "Traceback" in done.stderr  # the whole story is in the instructor's log

    results, _ = gradescope.grade(solutions, AUTOGRADER_TIME_LIMIT_S="1")
    assert results["score"] == 0 and "longer than 1 s" in results["tests"][0]["output"]
