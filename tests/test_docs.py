"""The commands and links of README.md and docs/instructors.md name things that exist (checked offline).

Every fenced ``bash`` block is split into simple commands (``shlex``; split at ``&&``, ``||``, ``;``
and ``|``; comments dropped; leading ``VAR=value`` assignments skipped), and each command is checked
without running it:

* ``make TARGET ...``: each target is a rule of the Makefile and ``make -n`` accepts the command
  (where ``make`` is installed);
* ``python -m MODULE`` (any ``python``, ``.venv/bin/python`` included): MODULE is a runnable module
  of this repository (``autograder``, ``cs231n_style``) or importable here (``pytest``, ``pip``, ...);
  ``pytest`` and ``autograder`` must be run with ``.venv/bin/python``, where they are installed;
* every argument that looks like a relative path (it has a ``/`` or a file extension) exists in
  the repository, a glob matches something, unless it is one of the placeholders and outputs of
  :data:`ALLOWED`; after a ``cd`` out of the repository the rest of the block is not checked;
* a command run from ``.venv/bin/`` exists there, when this checkout has a ``.venv``.

Markdown links ``[text](target)`` to relative targets must exist, and a ``#anchor`` into a Markdown
file must be one of its headings (GitHub's heading ids).
"""

from __future__ import annotations

import importlib.machinery
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "instructors.md"]

#: Arguments that look like paths but are not the repository's: placeholders the reader replaces and
#: what the commands themselves write. An entry ending in "/" also covers the paths under it.
ALLOWED = {
    "submission.zip": "a student's submission (placeholder)",
    "results/alice": "the report folder the instructor picks (placeholder)",
    "submissions/": "the instructor's folder of submissions (placeholder)",
    "gradebook.csv": "written by `autograder batch`",
    "autograder.zip": "written by `autograder gradescope-zip`",
    "student-release/": "written by `autograder release`",
    "dist/": "written by `pip wheel -w dist .` on the line before",
    "course/": "the instructor's nbgrader course folder, made by `mkdir -p` on the line before",
}

SEPARATORS = {"&&", "||", ";", "|", "&"}
FENCE = re.compile(r"^[ \t]*```(\w*)[ \t]*\n(.*?)^[ \t]*```", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
EXTENSION = re.compile(r"\.(py|md|ipynb|toml|ya?ml|txt|cfg|json|zip|whl|pth|png|jpe?g|csv|sh)$")
#: Modules that run only inside the course's environment, never a bare system `python`.
VENV_ONLY_MODULES = {"pytest", "autograder"}


def bash_blocks(text: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == "bash"]


def commands(block: str) -> list[list[str]]:
    """The block's simple commands, each a list of words (quotes removed, comments dropped)."""
    found: list[list[str]] = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for word in lexer:
            if word in SEPARATORS:
                found.append(current)
                current = []
            else:
                current.append(word)
        found.append(current)
    return [words for words in found if words]


def makefile_rules() -> set[str]:
    rules = set()
    for match in re.finditer(r"^([A-Za-z0-9_.\-/ ]+?)[ \t]*::?(?!=)", (ROOT / "Makefile").read_text(), re.M):
        rules.update(match.group(1).split())
    return rules


def allowed(word: str) -> bool:
    return any(word == entry or (entry.endswith("/") and word.startswith(entry)) for entry in ALLOWED)


def looks_like_path(word: str) -> bool:
    return not word.startswith("-") and "://" not in word and "=" not in word and (
        "/" in word or EXTENSION.search(word) is not None)


def path_exists(word: str, cwd: Path) -> bool:
    if any(char in word for char in "*?["):
        return any(cwd.glob(word))
    return (cwd / word).exists()


def module_runnable(name: str) -> bool:
    """``python -m name`` can start: a module or package with ``__main__`` here, or an importable one."""
    local = ROOT.joinpath(*name.split("."))
    if local.is_dir() or local.with_suffix(".py").is_file() or (ROOT / name.split(".")[0]).is_dir():
        return local.with_suffix(".py").is_file() or (local / "__main__.py").is_file()
    if "." in name:  # find_spec would import the parent packages; the docs run top-level modules only
        return False
    # sys.path only: the meta-path finders may act on a lookup (setuptools' distutils hack does, for "pip")
    spec = importlib.machinery.PathFinder.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        return spec is not None
    return any((Path(folder) / "__main__.py").is_file() for folder in spec.submodule_search_locations)


@dataclass
class Checker:
    """Checks one block's commands in order; ``cwd`` is None once a ``cd`` left the repository."""

    make: str | None = shutil.which("make")
    cwd: Path | None = ROOT

    def check(self, words: list[str]) -> list[str]:
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):  # VAR=value command
            words = words[1:]
        if not words:
            return []
        command, args = words[0], words[1:]
        shown = " ".join(words)
        problems: list[str] = []
        if command == "cd":
            target = self.cwd / args[0] if self.cwd is not None and args else None
            self.cwd = target if target is not None and target.is_dir() else None
            return []
        if command == "make":
            problems += self.check_make(args, shown)
            args = []
        name = Path(command).name
        if ".venv/bin/" in command:
            if (ROOT / ".venv" / "bin").is_dir() and not (ROOT / ".venv" / "bin" / name).exists():
                problems.append(f"{shown}: .venv/bin/{name} does not exist")
        elif "/" in command and self.cwd is not None and not path_exists(command, self.cwd):
            problems.append(f"{shown}: no file {command}")
        if re.fullmatch(r"python3?(\.\d+)?", name) and "-m" in args and args.index("-m") + 1 < len(args):
            at = args.index("-m") + 1
            module = args[at]
            if not module_runnable(module):
                problems.append(f"{shown}: module {module} cannot be run (python -m)")
            if module in VENV_ONLY_MODULES and ".venv/bin/" not in command:
                problems.append(f"{shown}: run it with .venv/bin/python, where {module} is installed")
            args = args[:at - 1] + args[at + 1:]
        if name == "pytest":
            problems.append(f"{shown}: run pytest as .venv/bin/python -m pytest")
        for word in args:
            word = re.sub(r"\[[^\]]*\]$", "", word)  # a requirement's [extras]
            if self.cwd is None or not looks_like_path(word) or allowed(word):
                continue
            if word.startswith(("/", "~")) or not path_exists(word, self.cwd):
                problems.append(f"{shown}: no file or folder {word} in the repository (or add it to ALLOWED)")
        return problems

    def check_make(self, args: list[str], shown: str) -> list[str]:
        targets = [arg for arg in args if "=" not in arg and not arg.startswith("-")]
        missing = [target for target in targets if target not in makefile_rules()]
        if missing:
            return [f"{shown}: no rule for {', '.join(missing)} in the Makefile"]
        if self.make is None:
            return []
        done = subprocess.run([self.make, "-n", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60)
        return [] if done.returncode == 0 else [f"{shown}: make -n failed: {done.stderr.strip()[-500:]}"]


def command_problems(text: str) -> list[str]:
    problems = []
    for block in bash_blocks(text):
        checker = Checker()
        for words in commands(block):
            problems += checker.check(words)
    return problems


def slug(heading: str) -> str:
    """GitHub's id of a heading: lower case, punctuation dropped (not - or _), spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(text: str) -> set[str]:
    text = FENCE.sub("", text)
    return {slug(match) for match in re.findall(r"^#{1,6} +(.+?)#*$", text, re.M)}


def link_problems(text: str, folder: Path) -> list[str]:
    problems = []
    for target in LINK.findall(FENCE.sub("", text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (folder / path).resolve() if path else None
        if file is not None and not file.exists():
            problems.append(f"link to {target}: {path} does not exist")
        elif anchor and (file is None or file.suffix == ".md"):
            heading_ids = headings(file.read_text() if file is not None else text)
            if anchor not in heading_ids:
                problems.append(f"link to {target}: no heading #{anchor}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_names_what_exists(doc):
    assert command_problems(doc.read_text()) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_to_the_repository_exists(doc):
    assert link_problems(doc.read_text(), doc.parent) == []


def test_the_commands_are_found_and_every_allowed_word_is_used():
    texts = [doc.read_text() for doc in DOCS]
    found = [words for text in texts for block in bash_blocks(text) for words in commands(block)]
    firsts = {" ".join(words[:2]) for words in found}
    assert {"make course", "make check", "make stylize", "make test"} <= firsts
    assert any(words[:3] == [".venv/bin/python", "-m", "pytest"] for words in found)
    used = {entry for words in found for word in words for entry in ALLOWED
            if word == entry or (entry.endswith("/") and re.sub(r"\[[^\]]*\]$", "", word).startswith(entry))}
    assert used == set(ALLOWED), f"unused entries of ALLOWED: {set(ALLOWED) - used}"


def test_the_wheel_named_in_the_docs_is_the_version_built():
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    for doc in DOCS:
        for wheel in re.findall(r"cs231n_style-([^-\s\"]+)-py3-none-any\.whl", doc.read_text()):
            assert wheel == version, f"{doc.name} names the wheel of version {wheel}, pyproject.toml {version}"


def test_the_checker_fails_on_what_is_missing():
    """The checks are not blind: a missing target, module, file, link or anchor is each reported."""
    text = """
```bash
make course no-such-target
python -m no_such_module_here
.venv/bin/python tools/no_such_tool.py
.venv/bin/python -m pytest tests/no_such_test.py
pytest tests/
python -m autograder grade submission.zip
cp notebooks/*.nope course/x
```
[fine](docs/instructors.md#tests) [gone](docs/no_such_page.md) [bad anchor](README.md#no-such-heading)
"""
    problems = command_problems(text)
    for expected in ("no rule for no-such-target", "no_such_module_here cannot be run", "tools/no_such_tool.py",
                     "tests/no_such_test.py", "run pytest as", "run it with .venv/bin/python",
                     "notebooks/*.nope"):
        assert any(expected in problem for problem in problems), (expected, problems)
    assert len(problems) == 7, problems
    links = link_problems(text, ROOT)
    assert len(links) == 2 and "no_such_page.md" in links[0] and "#no-such-heading" in links[1], links


# --- facts stated in the docs come from one place -------------------------------------------------

SPEEDUP = re.compile(r"\b\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?x\b")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_speedup_the_docs_state_is_one_docs_benchmark_md_measured(doc):
    # docs/benchmark.md holds the measurements (tools/benchmark.py prints them); README.md and
    # docs/instructors.md may only quote them, so a new measurement cannot leave an old number behind.
    measured = (ROOT / "docs" / "benchmark.md").read_text()
    stated = set(SPEEDUP.findall(doc.read_text()))
    assert stated, f"{doc.name} states no speedup: is this test still needed?"
    assert sorted(number for number in stated if not re.search(rf"(?<![\d.-]){re.escape(number)}", measured)) == []


def test_the_module_table_lists_the_packages_modules():
    # docs/instructors.md's table of cs231n_style's modules names each module of the package once.
    text = (ROOT / "docs" / "instructors.md").read_text()
    table = text[text.index("## The package `cs231n_style`"):]
    table = table[:table.index("\n## ")]
    listed = {name for row in table.splitlines() if row.startswith("| `")
              for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    modules = {path.stem for path in (ROOT / "cs231n_style").glob("*.py") if path.stem != "__init__"}
    assert listed == modules
