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

__all__ = ["DEFAULT_RUBRIC", "KINDS", "TestSpec", "Rubric", "RubricError", "load_rubric"]

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


def _test(entry: dict, index: int) -> TestSpec:
    where = f"[[tests]] entry {index + 1} ({entry.get('id', 'no id')})"
    unknown = set(entry) - {f.name for f in dataclasses.fields(TestSpec)}
    if unknown:
        raise RubricError(f"{where}: unknown field(s) {sorted(unknown)}")
    for required in ("id", "function", "kind", "points"):
        if required not in entry:
            raise RubricError(f"{where}: missing {required!r}")
    if entry["function"] not in STUDENT_FUNCTIONS:
        raise RubricError(f"{where}: function must be one of {STUDENT_FUNCTIONS}")
    if entry["kind"] not in KINDS:
        raise RubricError(f"{where}: kind must be one of {KINDS}")
    if entry["kind"] == "batch" and entry["function"] != "gram_matrix":
        raise RubricError(f"{where}: kind 'batch' is for gram_matrix (the losses take one image)")
    if not isinstance(entry["points"], (int, float)) or entry["points"] < 0:
        raise RubricError(f"{where}: points must be a number >= 0")
    values = dict(entry)
    if "scales" in values:
        values["scales"] = tuple(float(s) for s in values["scales"])
    values.setdefault("title", f"{entry['function']}: {entry['kind']}")
    return TestSpec(**values)


def load_rubric(path: str | Path = DEFAULT_RUBRIC) -> Rubric:
    """Read and validate a rubric file.

    Raises:
        FileNotFoundError: if there is no such file.
        RubricError: on unknown functions, kinds or fields, duplicate ids, bad points, limits or seed.
    """
    path = Path(path)
    with open(path, "rb") as file:
        try:
            data = tomllib.load(file)
        except tomllib.TOMLDecodeError as error:
            raise RubricError(f"{path}: {error}") from None
    tests = tuple(_test(entry, i) for i, entry in enumerate(data.get("tests", [])))
    ids = [test.id for test in tests]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RubricError(f"{path}: duplicate test ids {duplicates}")
    sandbox = data.get("sandbox", {})
    unknown = set(sandbox) - {f.name for f in dataclasses.fields(Limits)}
    if unknown:
        raise RubricError(f"{path}: unknown [sandbox] field(s) {sorted(unknown)}")
    grading = data.get("grading", {})
    unknown = set(grading) - {"hidden_visibility", "public_visibility", "seed"}
    if unknown:
        raise RubricError(f"{path}: unknown [grading] field(s) {sorted(unknown)}")
    seed = grading.get("seed", 2016)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise RubricError(f"{path}: [grading] seed must be an integer >= 0")
    rubric = Rubric(tests, Limits(**sandbox), grading.get("hidden_visibility", "after_due_date"),
                    grading.get("public_visibility", "visible"), seed)
    for visibility in (rubric.hidden_visibility, rubric.public_visibility):
        if visibility not in _VISIBILITIES:
            raise RubricError(f"{path}: visibility {visibility!r} is not one of {sorted(_VISIBILITIES)}")
    return rubric
