"""The instructor's rubric file (TOML): tests with points and visibility, and the sandbox's limits.

The default rubric is ``autograder/rubric.toml``; its comments explain every field. Its sections,
fields, types and ranges are checked against the JSON Schema ``autograder/rubric.schema.json``
(with :mod:`jsonschema`), and each violation is worded for the instructor who edits the file.

Tests may belong to a *section* that the instructor switches on or off with one line of the
``[sections]`` table (``spatial_control = false``: notebook 05 is not part of the course;
``photorealism = false``: notebook 06). The
tests of a section switched off are left out of the :class:`Rubric`: they do not run, their
functions (and notebooks) are not looked for, and they count nothing in the maximum score.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from .sandbox import Limits

__all__ = [
    "DEFAULT_RUBRIC",
    "KINDS",
    "SCHEMA_FILE",
    "SECTIONS",
    "Rubric",
    "RubricError",
    "TestSpec",
    "load_rubric",
    "switched_off",
]

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
        section: the rubric section it belongs to (a key of ``[sections]``), or ``""`` (always on).
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
    section: str = ""


@dataclass(frozen=True)
class Rubric:
    """A parsed rubric: the tests in order, the sandbox limits, the visibilities and the seed.

    ``seed`` (``[grading] seed``) seeds the hidden inputs of every submission of a grading run, so
    the same code always gets the same grade; students never see the rubric, so never the inputs.
    ``tests`` holds only the tests of sections switched on; ``sections`` is the ``[sections]``
    table (section -> on), so :func:`switched_off` says which were left out.
    """

    tests: tuple[TestSpec, ...]
    limits: Limits = field(default_factory=Limits)
    hidden_visibility: str = "after_due_date"
    public_visibility: str = "visible"
    seed: int = 2016
    sections: dict = field(default_factory=dict)

    @property
    def max_score(self) -> float:
        return sum(test.points for test in self.tests)

    @property
    def functions(self) -> tuple[str, ...]:
        """The functions the rubric grades (those of its tests), in the course's order."""
        from cs231n_style.notebook import ALL_STUDENT_FUNCTIONS

        graded = {test.function for test in self.tests}
        return tuple(name for name in ALL_STUDENT_FUNCTIONS if name in graded)

    def with_limits(self, **changes) -> Rubric:
        """A copy with some sandbox limits changed (e.g. ``timeout_s=2`` in tests)."""
        return dataclasses.replace(self, limits=dataclasses.replace(self.limits, **changes))


#: The rubric's JSON Schema: its sections, fields, types and ranges, in one place.
SCHEMA_FILE = Path(__file__).resolve().parent / "rubric.schema.json"

#: The rubric's top-level tables: ``[grading]``, ``[sandbox]``, ``[sections]`` and the ``[[tests]]`` entries.
SECTIONS = ("grading", "sandbox", "sections", "tests")

_NO_TESTS = "no tests: add at least one [[tests]] entry (see autograder/rubric.toml)"

#: JSON Schema type -> (how to say it, how to write one), for error messages.
_TYPE_WORDS = {
    "boolean": ("a boolean", "true or false, without quotes"),
    "integer": ("an integer", "a whole number without quotes, e.g. 2"),
    "number": ("a number", "a number without quotes, e.g. 5 or 2.5"),
    "string": ("a string", 'text in quotes, e.g. "content_loss"'),
    "array": ("an array of numbers", "e.g. [1e-3, 1e3]"),
}


@functools.lru_cache(maxsize=1)
def schema_validator() -> jsonschema.Draft202012Validator:
    """The validator of :data:`SCHEMA_FILE` (the schema itself checked once)."""
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _toml_type(value) -> str:
    """How TOML names the type of a parsed value, for error messages."""
    for name, python in (("boolean", bool), ("integer", int), ("number", float), ("string", str),
                         ("array", list), ("table", dict)):
        if isinstance(value, python):
            return name
    return "date/time"


def _message(error: jsonschema.ValidationError, data: dict) -> str:
    """Where a schema violation is (the top level, a section, a [[tests]] entry) and what it is."""
    where = list(error.absolute_path)
    if not where:
        if error.validator == "additionalProperties":
            return (f"unknown top-level key(s) {sorted(set(data) - set(SECTIONS))}; a rubric has only [grading], "
                    "[sandbox], [sections] and [[tests]] entries (check the spelling)")
        return _NO_TESTS  # the one required key
    section = where[0]
    if section != "tests":
        if len(where) == 1 and error.validator == "type":
            return f"{section!r} must be a table, written [{section}] on a line of its own"
        return _field_message(error, where[1:], f"[{section}]", f"[{section}] ")
    if len(where) == 1:
        if error.validator == "minItems":
            return _NO_TESTS
        return "tests must be written [[tests]] (double brackets), one per test"
    entry = data["tests"][where[1]]
    if len(where) == 2 and error.validator == "type":
        return f"[[tests]] entry {where[1] + 1} must be a table (a [[tests]] header and its fields)"
    name = f"[[tests]] entry {where[1] + 1} ({entry.get('id', 'no id')})"
    return _field_message(error, where[2:], name, f"{name}: ")


def _field_message(error: jsonschema.ValidationError, field_path: list, where: str, range_where: str) -> str:
    """A violation in a section or an entry: unknown or missing fields, a wrong type, a value not
    allowed, or one out of range (worded by the schema's ``x-error`` annotation)."""
    if error.validator == "additionalProperties":
        known = sorted(error.schema["properties"])
        return f"{where}: unknown field(s) {sorted(set(error.instance) - set(known))}; the known fields are {known}"
    if error.validator == "required":
        return f"{where}: missing {error.message.split()[0]}"
    name, value = field_path[0], error.instance
    if error.validator == "type":
        word, example = _TYPE_WORDS["array" if name == "scales" else error.validator_value]
        return f"{where}: {name} must be {word} ({example}), not the {_toml_type(value)} {value!r}"
    if error.validator == "enum":
        if "x-error" in error.schema:
            return f"{where}: {error.schema['x-error']}"
        if name.endswith("visibility"):
            return f"visibility {value!r} is not one of {sorted(error.validator_value)}"
        return f"{where}: {name} must be one of {tuple(error.validator_value)}"
    if error.validator == "const":
        return f"{where}: {error.schema['x-error']}"
    properties = schema_validator().schema["properties"][error.absolute_path[0]]
    properties = properties["items"]["properties"] if "items" in properties else properties["properties"]
    return f"{range_where}{name} {properties[name]['x-error']}"  # the field's, also for scales' items


def _file_order(error: jsonschema.ValidationError) -> tuple:
    """Sort key of violations: unknown top-level keys, then [sandbox], [grading] and the tests (a
    missing [[tests]] among them); within an entry unknown fields, missing ones, types, ranges."""
    where = list(error.absolute_path)
    if not where and error.validator == "additionalProperties":
        return (-1,)
    section = ("sandbox", "grading", "sections", "tests").index(where[0] if where else "tests")
    entry = where[1] if section == 3 and len(where) > 1 else -1
    kind = {"additionalProperties": 0, "required": 1, "type": 2}.get(error.validator, 3)
    return (section, entry, kind, [str(p) for p in where])


def _validate(data: dict, path: Path) -> None:
    """Check the parsed rubric against :data:`SCHEMA_FILE`.

    Raises:
        RubricError: for the first violation in file order (an entry's unknown fields, then missing
            ones, then wrong types, then ranges), worded by :func:`_message`, after ``path``.
    """
    errors = sorted(schema_validator().iter_errors(data), key=_file_order)
    if errors:
        raise RubricError(f"{path}: {_message(errors[0], data)}")


def _test(entry: dict) -> TestSpec:
    """A valid [[tests]] entry as a :class:`TestSpec` (the title defaults to "function: kind")."""
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
            type (``hidden = "false"``, ``spatial_control = "no"``); unknown functions or kinds;
            duplicate ids; a test's section missing from ``[sections]``; a ``no_loops`` test of a
            function whose hint allows loops; bad points, limits, visibilities or seed. The message
            names the file, the entry and the field.
    """
    path = Path(path)
    with open(path, "rb") as file:
        try:
            data = tomllib.load(file)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise RubricError(f"{path}: not valid TOML: {error}") from None
    _validate(data, path)
    tests = tuple(_test(entry) for entry in data["tests"])
    ids = [test.id for test in tests]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RubricError(f"{path}: duplicate test ids {duplicates}")
    from cs231n_style.diagnosis import VECTORIZED

    sections = dict(data.get("sections", {}))
    for number, test in enumerate(tests, 1):
        if test.kind == "no_loops" and test.function not in VECTORIZED:
            raise RubricError(f"{path}: [[tests]] entry {number} ({test.id}): kind 'no_loops' is for "
                              f"{', '.join(VECTORIZED)}, the functions whose hint says \"no Python loops\" "
                              f"(cs231n_style.diagnosis.VECTORIZED); {test.function}'s hint allows loops")
        if test.section and test.section not in sections:
            raise RubricError(f"{path}: [[tests]] entry {number} ({test.id}): section {test.section!r} is not in "
                              f"[sections] ({sorted(sections) or 'none declared'}): add a line "
                              f"{test.section} = true to [sections], or fix the spelling")
    grading = data.get("grading", {})
    return Rubric(tuple(test for test in tests if sections.get(test.section, True)), Limits(**data.get("sandbox", {})),
                  grading.get("hidden_visibility", "after_due_date"), grading.get("public_visibility", "visible"),
                  grading.get("seed", 2016), sections)


def switched_off(rubric: Rubric) -> list[str]:
    """The rubric's sections switched off.

    Args:
        rubric: a loaded :class:`Rubric`.

    Returns:
        The names set to ``false`` in its ``[sections]`` table (e.g. ``["spatial_control"]``: notebook
        05 not graded), in file order; ``[]`` when every section is on or there is no such table.
    """
    return [name for name, on in rubric.sections.items() if not on]
