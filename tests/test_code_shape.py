"""The helper package reads as a model (issue 10): no function over 60 lines and no class over 250
lines in ``cs231n_style/``, docstrings not counted (they are the documentation the project asks of
every public function: arguments, shapes, errors, sources)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cs231n_style"
LIMITS = {ast.FunctionDef: 60, ast.AsyncFunctionDef: 60, ast.ClassDef: 250}


def _length_without_docstrings(node: ast.AST) -> int:
    """Lines from ``def``/``class`` to the end of the body, less the lines of every docstring in it."""
    lines = node.end_lineno - node.lineno + 1
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            lines -= body[0].end_lineno - body[0].lineno + 1
    return lines


def _too_long(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        limit = LIMITS.get(type(node))
        if limit is not None and _length_without_docstrings(node) > limit:
            found.append(f"{path.name}: {node.name} has {_length_without_docstrings(node)} lines (limit {limit})")
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_functions_and_classes_are_short(path):
    assert _too_long(path) == []


def test_the_measure_counts_code_not_docstrings():
    source = 'def f():\n    """One\n    two\n    three."""\n' + "    x = 1\n" * 61
    node = ast.parse(source).body[0]
    assert _length_without_docstrings(node) == 62
