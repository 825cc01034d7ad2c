"""The instructor's rubric file (TOML): tests with points and visibility, and the sandbox's limits.

The default rubric is ``autograder/rubric.toml``; its comments explain every field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from cs231n_style.notebook import STUDENT_FUNCTIONS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .sandbox import Limits

__all__ = ["DEFAULT_RUBRIC", "KINDS", "SECTIONS", "TestSpec", "Rubric", "RubricError", "load_rubric"]

DEFAULT_RUBRIC = Path(__file__).resolve().parent / "rubric.toml"

#: The test kinds :mod:`autograder.cases` knows.
KINDS = ("public", "shapes", "batch", "dtypes", "scale", "gradient", "unmodified", "tensor", "device", "no_loops")


class RubricError(ValueError):
    """A rubric file that cannot be used; the message names the entry and the field."""


@dataclass(frozen=True)
class TestSpec:
    """One test of the rubric.

    Attributes:
        id: unique, e.g. ``"gram_matrix.batch"``.
        function: the student function tested.
        kind: one of :data:`KINDS`.
        points: the test's maximum score.
        hidden: whether its inputs are hidden (drawn at grading time) - its Gradescope visibility
            is then the rubric's ``hidden_visibility``.
        title: what students read.
        draws: how many random inputs (kinds that draw several).
        scales: the input scale factors (kind ``"scale"``).
    """

    __test__ = False  # not a pytest test class

    id: str
    function: str
    kind: str
    points: float
    hidden: bool = True
    title: str = ""
    draws: int = 2
    scales: tuple[float, ...] = (1e-3, 1e3)


@dataclass(frozen=True)
class Rubric:
    """A parsed rubric: the tests in order, the sandbox limits, the visibilities and the seed.

    ``seed`` (``[grading] seed``) seeds the hidden inputs of every submission of a grading run, so
    the same code always gets the same grade; students never see the rubric, so never the inputs.
    """

    tests: tuple[TestSpec, ...]
    limits: Limits = field(default_factory=Limits)
    hidden_visibility: str = "after_due_date"
    public_visibility: str = "visible"
    seed: int = 2016

    @property
    def max_score(self) -> float:
        return sum(test.points for test in self.tests)

    def with_limits(self, **changes) -> Rubric:
        """A copy with some sandbox limits changed (e.g. ``timeout_s=2`` in tests)."""
        return dataclasses.replace(self, limits=dataclasses.replace(self.limits, **changes))


_VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}

#: The rubric's top-level tables: ``[grading]``, ``[sandbox]`` and the ``[[tests]]`` entries.
SECTIONS = ("grading", "sandbox", "tests")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: TOML type name -> (test of a parsed value, how to write one).
_TYPES = {
    "boolean": (lambda v: isinstance(v, bool), "true or false, without quotes"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number without quotes, e.g. 2"),
    "number": (_is_number, "a number without quotes, e.g. 5 or 2.5"),
    "string": (lambda v: isinstance(v, str), 'text in quotes, e.g. "content_loss"'),
    "array of numbers": (lambda v: isinstance(v, list) and all(map(_is_number, v)), "e.g. [1e-3, 1e3]"),
}

_TEST_FIELDS = {"id": "string", "function": "string", "kind": "string", "points": "number", "hidden": "boolean",
                "title": "string", "draws": "integer", "scales": "array of numbers"}
_GRADING_FIELDS = {"hidden_visibility": "string", "public_visibility": "string", "seed": "integer"}
_SANDBOX_FIELDS = {f.name: {"str": "string", "int": "integer"}.get(getattr(f.type, "__name__", f.type), "number")
                   for f in dataclasses.fields(Limits)}


def _toml_type(value) -> str:
    """How TOML names the type of a parsed value, for error messages."""
    for name, python in (("boolean", bool), ("integer", int), ("number", float), ("string", str),
                         ("array", list), ("table", dict)):
        if isinstance(value, python):
            return name
    return "date/time"


def _check_fields(table: dict, types: dict[str, str], where: str) -> None:
    """Refuse unknown fields and values of the wrong TOML type.

    Raises:
        RubricError: naming ``where``, the field, the type it needs and the value found.
    """
    unknown = sorted(set(table) - set(types))
    if unknown:
        raise RubricError(f"{where}: unknown field(s) {unknown}; the known fields are {sorted(types)}")
    for name, value in table.items():
        accepts, example = _TYPES[types[name]]
        if not accepts(value):
            article = "an" if types[name][0] in "aeiou" else "a"
            raise RubricError(f"{where}: {name} must be {article} {types[name]} ({example}), "
                              f"not the {_toml_type(value)} {value!r}")


def _table(data: dict, name: str, path: Path) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise RubricError(f"{path}: {name!r} must be a table, written [{name}] on a line of its own")
    return value


def _test(entry, index: int, path: Path) -> TestSpec:
    if not isinstance(entry, dict):
        raise RubricError(f"{path}: [[tests]] entry {index + 1} must be a table (a [[tests]] header and its fields)")
    where = f"{path}: [[tests]] entry {index + 1} ({entry.get('id', 'no id')})"
    _check_fields(entry, _TEST_FIELDS, where)
    for required in ("id", "function", "kind", "points"):
        if required not in entry:
            raise RubricError(f"{where}: missing {required!r}")
    if entry["function"] not in STUDENT_FUNCTIONS:
        raise RubricError(f"{where}: function must be one of {STUDENT_FUNCTIONS}")
    if entry["kind"] not in KINDS:
        raise RubricError(f"{where}: kind must be one of {KINDS}")
    if entry["kind"] == "batch" and entry["function"] != "gram_matrix":
        raise RubricError(f"{where}: kind 'batch' is for gram_matrix (the losses take one image)")
    if entry["points"] < 0:
        raise RubricError(f"{where}: points must be a number >= 0")
    if entry.get("draws", 1) < 1:
        raise RubricError(f"{where}: draws must be at least 1")
    if "scales" in entry and (not entry["scales"] or min(entry["scales"]) <= 0):
        raise RubricError(f"{where}: scales must be a non-empty array of numbers > 0")
    values = dict(entry)
    if "scales" in values:
        values["scales"] = tuple(float(s) for s in values["scales"])
    values.setdefault("title", f"{entry['function']}: {entry['kind']}")
    return TestSpec(**values)


def load_rubric(path: str | Path = DEFAULT_RUBRIC) -> Rubric:
    """Read and validate a rubric file.

    Args:
        path: the TOML file (default: ``autograder/rubric.toml``).

    Returns:
        The :class:`Rubric`.

    Raises:
        FileNotFoundError: if there is no such file.
        RubricError: on invalid TOML; top-level keys other than :data:`SECTIONS` (a misspelt
            ``[[test]]`` or ``[grdaing]``); no ``[[tests]]``; unknown fields or values of the wrong
            type (``hidden = "false"``); unknown functions or kinds; duplicate ids; bad points,
            limits, visibilities or seed. The message names the file, the entry and the field.
    """
    path = Path(path)
    with open(path, "rb") as file:
        try:
            data = tomllib.load(file)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise RubricError(f"{path}: not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise RubricError(f"{path}: unknown top-level key(s) {unknown}; a rubric has only [grading], "
                          "[sandbox] and [[tests]] entries (check the spelling)")
    sandbox = _table(data, "sandbox", path)
    _check_fields(sandbox, _SANDBOX_FIELDS, f"{path}: [sandbox]")
    for name, value in sandbox.items():
        if _SANDBOX_FIELDS[name] != "string" and value <= 0:
            raise RubricError(f"{path}: [sandbox] {name} must be > 0")
    grading = _table(data, "grading", path)
    _check_fields(grading, _GRADING_FIELDS, f"{path}: [grading]")
    seed = grading.get("seed", 2016)
    if seed < 0:
        raise RubricError(f"{path}: [grading] seed must be an integer >= 0")
    entries = data.get("tests", [])
    if not isinstance(entries, list):
        raise RubricError(f"{path}: tests must be written [[tests]] (double brackets), one per test")
    if not entries:
        raise RubricError(f"{path}: no tests: add at least one [[tests]] entry (see autograder/rubric.toml)")
    tests = tuple(_test(entry, i, path) for i, entry in enumerate(entries))
    ids = [test.id for test in tests]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RubricError(f"{path}: duplicate test ids {duplicates}")
    rubric = Rubric(tests, Limits(**sandbox), grading.get("hidden_visibility", "after_due_date"),
                    grading.get("public_visibility", "visible"), seed)
    for visibility in (rubric.hidden_visibility, rubric.public_visibility):
        if visibility not in _VISIBILITIES:
            raise RubricError(f"{path}: visibility {visibility!r} is not one of {sorted(_VISIBILITIES)}")
    return rubric
