"""Earlier notebooks are found where the course runs, not only in the working directory.

``cs.load_functions("01_content_loss.ipynb")`` looks in the course folder given once
(``cs.set_course_folder`` / ``$CS231N_STYLE_COURSE_DIR``), then next to the running notebook (VS
Code's ``__vsc_ipynb_file__``, Jupyter Server's ``$JPY_SESSION_NAME``), then in the working
directory. The command line's default folder follows the same variable. Each branch is exercised
with notebooks that answer differently, so a wrong order fails.
"""

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from PIL import Image

import cs231n_style as cs
from cs231n_style.__main__ import build_parser, main
from cs231n_style.notebook import GUIDED_FUNCTIONS, STUDENT_FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]
NAME = "01_content_loss.ipynb"


def _notebook(folder: Path, answer: str, name: str = NAME) -> Path:
    """A course notebook whose content_loss returns ``answer`` (which folder it was loaded from)."""
    folder.mkdir(parents=True, exist_ok=True)
    code = f"def content_loss(*args):\n    return {answer!r}"
    nbformat.write(new_notebook(cells=[new_code_cell(code)]), folder / name)
    return folder / name


def _loaded_from(name=NAME) -> str:
    return cs.load_functions(name, ["content_loss"]).content_loss()


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    """No course folder, no Jupyter session, no IPython shell, and an empty working directory."""
    monkeypatch.delenv(cs.COURSE_FOLDER_ENV, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setitem(sys.modules, "IPython", None)  # as in a plain Python process
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


def _fake_vscode(monkeypatch, notebook: Path) -> None:
    """An IPython shell whose user namespace holds VS Code's ``__vsc_ipynb_file__``."""
    shell = types.SimpleNamespace(user_ns={"__vsc_ipynb_file__": str(notebook)})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_the_working_directory_when_nothing_else_is_known(tmp_path):
    _notebook(tmp_path / "cwd", "cwd")
    assert _loaded_from() == "cwd"


def test_next_to_the_running_notebook_beats_the_working_directory(tmp_path, monkeypatch):
    _notebook(tmp_path / "cwd", "cwd")
    _notebook(tmp_path / "course", "jupyter")
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "course" / "04_style_transfer.ipynb"))
    assert _loaded_from() == "jupyter"
    assert cs.find_course_notebook(NAME) == tmp_path / "course" / NAME


def test_a_relative_jupyter_session_name_is_ignored(tmp_path, monkeypatch):
    # relative to the server's root, which the kernel cannot know; the kernel's cwd is then the notebook's
    _notebook(tmp_path / "cwd", "cwd")
    _notebook(tmp_path / "cwd" / "course", "wrong")
    monkeypatch.setenv("JPY_SESSION_NAME", "course/04_style_transfer.ipynb")
    assert _loaded_from() == "cwd"


def test_vscode_notebook_path_beats_jupyter_and_the_working_directory(tmp_path, monkeypatch):
    _notebook(tmp_path / "cwd", "cwd")
    _notebook(tmp_path / "jupyter", "jupyter")
    _notebook(tmp_path / "vscode", "vscode")
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "jupyter" / "04.ipynb"))
    _fake_vscode(monkeypatch, tmp_path / "vscode" / "04.ipynb")
    assert _loaded_from() == "vscode"


def test_the_course_folder_beats_everything(tmp_path, monkeypatch):
    _notebook(tmp_path / "cwd", "cwd")
    _notebook(tmp_path / "jupyter", "jupyter")
    _notebook(tmp_path / "drive", "drive")
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "jupyter" / "04.ipynb"))
    assert cs.set_course_folder(tmp_path / "drive") == tmp_path / "drive"
    assert _loaded_from() == "drive"
    cs.set_course_folder(None)
    assert _loaded_from() == "jupyter"


def test_the_course_folder_from_the_environment_and_its_relative_paths(tmp_path, monkeypatch):
    _notebook(tmp_path / "cwd", "cwd")
    _notebook(tmp_path / "drive" / "sub", "drive/sub")
    monkeypatch.setenv(cs.COURSE_FOLDER_ENV, str(tmp_path / "drive"))
    assert _loaded_from(f"sub/{NAME}") == "drive/sub"  # a relative path, not only a name
    assert _loaded_from() == "cwd"  # not in the course folder: the next place is looked in


def test_set_course_folder_is_seen_by_commands_started_from_the_notebook(tmp_path):
    cs.set_course_folder(tmp_path)
    seen = subprocess.run([sys.executable, "-c", f"import os; print(os.environ[{cs.COURSE_FOLDER_ENV!r}])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert seen == str(tmp_path) == os.environ[cs.COURSE_FOLDER_ENV]


def test_set_course_folder_refuses_what_is_not_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"there is no folder .*mount Drive"):
        cs.set_course_folder(tmp_path / "missing")
    with pytest.raises(NotADirectoryError, match="is a file; give the folder"):
        cs.set_course_folder(_notebook(tmp_path, "x"))
    assert cs.COURSE_FOLDER_ENV not in os.environ


def test_not_found_says_where_it_looked_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv(cs.COURSE_FOLDER_ENV, str(tmp_path / "gone"))
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "cwd" / "04.ipynb"))
    with pytest.raises(FileNotFoundError) as error:
        cs.load_functions(NAME, ["content_loss"])
    message = str(error.value)
    assert f"{tmp_path / 'gone'} (the course folder" in message and "which does not exist" in message
    # the notebook's folder is the working directory: one entry, both reasons
    assert (f"{tmp_path / 'cwd'} (the running notebook's folder (Jupyter's $JPY_SESSION_NAME) "
            "and the working directory)") in message
    assert "cs.set_course_folder(" in message and "drive.mount('/content/drive')" in message


def test_an_absolute_path_is_used_as_it_is(tmp_path, monkeypatch):
    _notebook(tmp_path / "drive", "drive")
    path = _notebook(tmp_path / "elsewhere", "absolute")
    monkeypatch.setenv(cs.COURSE_FOLDER_ENV, str(tmp_path / "drive"))
    assert _loaded_from(path) == "absolute"
    with pytest.raises(FileNotFoundError, match="No notebook at"):
        cs.load_functions(tmp_path / "elsewhere" / "02_style_loss.ipynb", ["gram_matrix"])


def test_load_course_functions_without_a_folder_follows_the_same_rules(tmp_path, monkeypatch):
    for name in cs.NOTEBOOK_OF.values():
        shutil.copy(ROOT / "solutions" / name, tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "04_style_transfer.ipynb"))
    loaded = cs.load_course_functions()
    assert sorted(vars(loaded)) == sorted(cs.NOTEBOOK_OF)
    with pytest.raises(FileNotFoundError, match=f"No notebook at '{tmp_path / 'cwd' / 'not_here' / NAME}'"):
        cs.load_course_functions("not_here")  # an explicit folder is relative to the working directory


def test_notebook_05s_functions_are_optional(tmp_path, monkeypatch):
    """A course without notebook 05 loads its four functions as before; with it, the guided pair too."""
    core = {cs.NOTEBOOK_OF[name] for name in STUDENT_FUNCTIONS}
    for name in core:
        shutil.copy(ROOT / "solutions" / name, tmp_path)
    assert tuple(vars(cs.load_course_functions(tmp_path))) == STUDENT_FUNCTIONS
    monkeypatch.setenv(cs.COURSE_FOLDER_ENV, str(tmp_path))
    assert tuple(vars(cs.load_course_functions())) == STUDENT_FUNCTIONS
    shutil.copy(ROOT / "solutions" / cs.NOTEBOOK_OF["guided_gram_matrix"], tmp_path)
    loaded = cs.load_course_functions(tmp_path)
    assert tuple(vars(loaded)) == STUDENT_FUNCTIONS + GUIDED_FUNCTIONS  # notebook 06 is not in the folder
    assert set(GUIDED_FUNCTIONS) == {name for name, notebook in cs.NOTEBOOK_OF.items()
                                     if notebook == "05_controlling_style_transfer.ipynb"}
    assert tuple(vars(cs.load_functions("05_controlling_style_transfer.ipynb"))) == GUIDED_FUNCTIONS
    assert cs.check_guided_style_loss(loaded.guided_style_loss).passed


# --- the command line's default folder ------------------------------------------------------------

TINY = ["--image-size", "32", "--style-size", "32", "--num-steps", "2"]


def test_command_without_notebooks_says_how_to_point_at_them(tmp_path, capsys):
    assert main(["--output", str(tmp_path / "r.png"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "no course notebooks" in err and str(tmp_path / "cwd") in err
    assert "--functions FOLDER" in err and cs.COURSE_FOLDER_ENV in err
    assert not list(tmp_path.rglob("*.png"))


def test_command_takes_the_course_folder_then_the_working_directory(tmp_path, monkeypatch, capsys):
    for name in cs.NOTEBOOK_OF.values():
        shutil.copy(ROOT / "solutions" / name, tmp_path / "cwd")
    assert main(["--output", str(tmp_path / "a.png"), *TINY]) == 0  # the notebooks in the working directory
    monkeypatch.setenv(cs.COURSE_FOLDER_ENV, str(tmp_path / "cwd" / "empty"))
    assert main(["--output", str(tmp_path / "b.png"), *TINY]) == 2  # the course folder wins, and is empty
    assert f"No notebook at '{tmp_path / 'cwd' / 'empty' / NAME}'" in capsys.readouterr().err
    monkeypatch.setenv(cs.COURSE_FOLDER_ENV, str(ROOT / "notebooks"))  # the stubs
    assert main(["--output", str(tmp_path / "c.png"), *TINY]) == 1
    assert "not implemented yet" in capsys.readouterr().err
    assert Image.open(tmp_path / "a.png").size[0] > 0 and not (tmp_path / "b.png").exists()


def test_command_runs_without_notebook_05(tmp_path):
    for name in STUDENT_FUNCTIONS:
        shutil.copy(ROOT / "solutions" / cs.NOTEBOOK_OF[name], tmp_path / "cwd")
    assert main(["--output", str(tmp_path / "a.png"), *TINY]) == 0
    assert Image.open(tmp_path / "a.png").size[0] > 0


def test_usage_names_the_console_script(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/cs231n-style", "--help"])
    assert build_parser().format_usage().startswith("usage: cs231n-style ")
    monkeypatch.setattr(sys, "argv", ["/x/cs231n_style/__main__.py", "--help"])
    assert build_parser().format_usage().startswith("usage: python -m cs231n_style ")
