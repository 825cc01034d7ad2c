"""The Makefile's choices for a newcomer's machine, read from ``make -n`` (what it would run, nothing run).

``make course`` installs PyTorch's CPU build where there is no NVIDIA GPU (no ``nvidia-smi``; a fake one
stands for a GPU machine here), starts JupyterLab with ``--allow-root`` as root and ``--no-browser``
without a display, and copies the offline weights into ``weights/`` from ``$(SHARED_WEIGHTS)``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
#: The Makefile's own variables (an environment variable of the same name would override its ?= default).
MAKEFILE_VARIABLES = ("PYTHON", "VENV", "TORCH", "CPU_INDEX", "CPU_INDEX_URL", "CPU_INDEX_UP", "HAS_GPU",
                      "TORCH_INDEX", "TORCH_NOTE", "BIN", "JUPYTER_FLAGS", "SHARED_WEIGHTS")
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(tmp_path, *targets, gpu: bool, display: str | None = None, **variables) -> list[str]:
    """The commands ``make -n -B`` prints for ``targets``, with a fake nvidia-smi first on the PATH or none."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "nvidia-smi"
    if gpu:
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
    elif fake.exists():
        fake.unlink()
    # a PATH without any real nvidia-smi: make, the shell and python only
    tools = {Path(shutil.which(name)).parent for name in ("make", "sh", "python3", "id", "uname")}
    # No display, and none of an enclosing make's variables: under `make test` (as in .ci/run, which
    # sets TORCH_INDEX=), make exports them to the tests' environment and passes them on in MAKEFLAGS.
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", *MAKEFILE_VARIABLES)}
    env["PATH"] = os.pathsep.join([str(bin_dir), *map(str, sorted(tools))])
    if display:
        env["DISPLAY"] = display
    args = [f"{key}={value}" for key, value in {"VENV": str(tmp_path / "venv"), **variables}.items()]
    done = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), *args, *targets], env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def pip_lines(lines):
    return [line for line in lines if "pip install" in line]


def test_without_a_gpu_torch_comes_from_the_cpu_index(tmp_path):
    lines = dry_run(tmp_path, "course", gpu=False, CPU_INDEX_UP="yes")  # the index answers
    torch_line = pip_lines(lines)[0]
    assert CPU_INDEX in torch_line and torch_line.endswith("torch torchvision")
    assert not any("cannot be reached" in line for line in lines)


def test_an_unreachable_cpu_index_is_left_out_with_one_line_saying_so(tmp_path):
    """Offline but for pip's registry, pip retried the CPU index for ~4 minutes (a newcomer timed it)."""
    lines = dry_run(tmp_path, "course", gpu=False, CPU_INDEX_UP="")
    torch_line = pip_lines(lines)[0]
    assert "download.pytorch.org" not in torch_line and torch_line.endswith("torch torchvision")
    note = next(line for line in lines if "cannot be reached" in line)
    assert "https://download.pytorch.org/whl/cpu" in note and "CUDA build" in note
    assert lines.index(note) < lines.index(torch_line)
    # asked of the network itself here (this machine's answer, whichever it is, gives one of the two)
    lines = dry_run(tmp_path, "course", gpu=False)
    assert (CPU_INDEX in pip_lines(lines)[0]) != any("cannot be reached" in line for line in lines)
    # no note with a GPU, nor when the index was chosen by hand
    assert not any("cannot be reached" in line for line in dry_run(tmp_path, "course", gpu=True, CPU_INDEX_UP=""))
    assert not any("cannot be reached" in line
                   for line in dry_run(tmp_path, "course", gpu=False, CPU_INDEX_UP="", TORCH_INDEX=""))


def test_with_a_gpu_pip_chooses(tmp_path):
    torch_line = pip_lines(dry_run(tmp_path, "course", gpu=True))[0]
    assert "--extra-index-url" not in torch_line and "--index-url" not in torch_line


def test_the_index_can_be_chosen_by_hand_as_ci_does(tmp_path):
    lines = pip_lines(dry_run(tmp_path, "test", gpu=False, TORCH="torch==2.14.1 torchvision==0.29.1",
                             TORCH_INDEX=""))
    assert "download.pytorch.org" not in lines[0] and "torch==2.14.1 torchvision==0.29.1" in lines[0]
    assert (ROOT / ".ci" / "run").read_text().count("TORCH_INDEX=") >= 1


def test_jupyterlab_starts_as_root_and_headless(tmp_path):
    lab = next(line for line in dry_run(tmp_path, "course", gpu=False) if "jupyter lab" in line)
    assert ("--allow-root" in lab) == (os.geteuid() == 0)
    assert "--no-browser" in lab
    lab = next(line for line in dry_run(tmp_path, "course", gpu=False, display=":0") if "jupyter lab" in line)
    assert "--no-browser" not in lab


def test_course_check_and_stylize_copy_the_shared_weights(tmp_path):
    shared = tmp_path / "shared.pth"
    for target in ("course", "check", "stylize"):
        lines = dry_run(tmp_path, target, gpu=False, SHARED_WEIGHTS=str(shared))
        assert any(f"cp {shared} weights/" in line for line in lines), target


def test_make_alone_lists_the_targets():
    """A newcomer's bare ``make`` said only "'.venv/bin/python' is up to date"."""
    done = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory"], capture_output=True, text=True,
                          check=True, env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS")})
    for target in ("make course", "make check", "make test", "make stylize"):
        assert target in done.stdout, done.stdout
