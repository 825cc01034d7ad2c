"""environment.yml (conda) installs what pyproject.toml (pip) does: same packages, floors, exclusions.

What environment.yml must hold: pyproject's dependencies, its ``notebook`` extra (JupyterLab and the
kernel) and, from the ``dev`` extra, the tools students check their work with (``make check``:
pytest and nbval); then the course package itself (``pip: -e .``). conda-forge names these
packages as PyPI does; ``CONDA_TO_PYPI`` is where a different name would be mapped.
"""

import sys
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI: dict[str, str] = {}  # e.g. {"pytorch": "torch"} if torch came from conda-forge
STUDENT_CHECK_TOOLS = {"pytest", "nbval"}


def _by_name(requirements) -> dict[str, SpecifierSet]:
    """name -> specifier set; fails on a package listed twice."""
    found: dict[str, SpecifierSet] = {}
    for text in requirements:
        requirement = Requirement(text)
        name = canonicalize_name(CONDA_TO_PYPI.get(requirement.name, requirement.name))
        assert name not in found, f"{name} is listed twice"
        found[name] = requirement.specifier
    return found


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _environment() -> tuple[str, dict[str, SpecifierSet], list[str]]:
    """(python's version, the other packages, pip's lines that are not packages)."""
    dependencies = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    python = [d for d in dependencies if isinstance(d, str) and d.split("=")[0] == "python"]
    conda = [d for d in dependencies if isinstance(d, str) and d.split("=")[0] not in ("python", "pip")]
    pip = [line for d in dependencies if isinstance(d, dict) for line in d["pip"]]
    assert len(python) == 1, "environment.yml pins python once (python=3.X)"
    packages = [line for line in pip if not line.startswith("-")]
    options = [line for line in pip if line.startswith("-")]
    return python[0].split("=", 1)[1], _by_name(conda + packages), options


def test_environment_yml_has_pyprojects_packages_floors_and_exclusions():
    project = _pyproject()
    extras = project["optional-dependencies"]
    dev = _by_name(extras["dev"])
    wanted = {**_by_name(project["dependencies"]), **_by_name(extras["notebook"]),
              **_by_name(extras["check"])}
    assert set(_by_name(extras["check"])) == STUDENT_CHECK_TOOLS
    assert all(dev[name] == spec for name, spec in _by_name(extras["check"]).items())  # dev has them too
    _, listed, _ = _environment()
    assert sorted(listed) == sorted(wanted), "environment.yml and pyproject.toml list different packages"
    for name, specifier in wanted.items():
        assert listed[name] == specifier, (f"{name}: environment.yml says {listed[name] or 'any'!s}, "
                                           f"pyproject.toml {specifier}")
    assert "!=7.0.0" in str(listed["ipykernel"])  # the panel's exclusion survives (ipywidgets #4001)


def test_environment_yml_installs_the_course_package_and_a_supported_python():
    python, _, options = _environment()
    assert "-e ." in options, "environment.yml must install the course package (pip: -e .)"
    assert Version(python) in SpecifierSet(_pyproject()["requires-python"])


def test_the_notebook_extra_and_dev_agree():
    extras = _pyproject()["optional-dependencies"]
    notebook, dev = _by_name(extras["notebook"]), _by_name(extras["dev"])
    assert {"jupyterlab", "ipykernel"} <= set(notebook)  # the kernel: without it, NoSuchKernel python3
    for name, specifier in notebook.items():
        assert dev.get(name) == specifier, f"{name}: the notebook and dev extras disagree"
