"""After a failed check, a batch run (nbval, nbgrader) skips the notebook's later demo cells with one line.

Driven through a real IPython shell (the kernel's), cell by cell, as nbval and nbgrader send them.
"""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from cs231n_style import _skip_after_failure

STUB = "def content_loss(w, a, b):\n    raise NotImplementedError\n"
RIGHT = "def content_loss(w, a, b):\n    return w * ((a - b) ** 2).sum()\n"
CHECK = "cs.check_content_loss(content_loss)"
DEMO = "result = content_loss(1.0, torch.ones(2), torch.zeros(2))\nprint('demo ran', float(result))"


@pytest.fixture
def shell():
    _skip_after_failure._FAILED.clear()
    shell = InteractiveShell.instance()
    shell.run_cell("import torch\nimport cs231n_style as cs")
    yield shell
    if _skip_after_failure._skip_cell in shell.input_transformers_post:
        shell.input_transformers_post.remove(_skip_after_failure._skip_cell)
    _skip_after_failure._FAILED.clear()
    InteractiveShell.clear_instance()


def run(shell, source: str) -> tuple[str, bool]:
    """The cell's printed output and whether it succeeded."""
    with capture_output() as captured:
        result = shell.run_cell(source)
    return captured.stdout, result.success


@pytest.mark.parametrize("variable", ["CS231N_STYLE_SKIP_AFTER_FAILED_CHECK", "NBGRADER_EXECUTION"])
def test_a_batch_run_skips_demo_cells_after_a_failed_check_until_it_passes(shell, monkeypatch, variable):
    monkeypatch.delenv("CS231N_STYLE_SKIP_AFTER_FAILED_CHECK", raising=False)
    monkeypatch.setenv(variable, "1")
    run(shell, STUB)
    out, _ = run(shell, CHECK)
    assert "content_loss: NOT IMPLEMENTED YET" in out
    out, ok = run(shell, DEMO)
    assert ok and out.strip() == "skipped: fix content_loss first (its check above failed)"
    out, ok = run(shell, "import math")  # only imports: runs
    assert ok and "math" in shell.user_ns
    out, ok = run(shell, "import math\n" + DEMO)  # imports, then a demo: skipped
    assert ok and out.strip().startswith("skipped")
    out, ok = run(shell, "def helper():\n    return content_loss\nx = helper()")  # keeps its definitions only
    assert ok and out.strip().startswith("skipped") and "x" not in shell.user_ns and "helper" in shell.user_ns
    out, ok = run(shell, "LAYERS = (1, 4)\ndef helper2():\n    return LAYERS")  # definitions only: runs as is
    assert ok and out == "" and shell.user_ns["helper2"]() == (1, 4)
    run(shell, RIGHT)
    out, _ = run(shell, CHECK)
    assert "content_loss: PASS" in out
    out, ok = run(shell, DEMO)
    assert ok and out.strip() == "demo ran 2.0"


def test_an_interactive_session_is_never_changed(shell, monkeypatch):
    monkeypatch.delenv("CS231N_STYLE_SKIP_AFTER_FAILED_CHECK", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    run(shell, STUB)
    run(shell, CHECK)
    out, ok = run(shell, DEMO)  # the student's own debugging cell: runs, and fails as it should
    assert not ok and "skipped" not in out


def test_two_failed_checks_are_both_named():
    _skip_after_failure._FAILED.clear()
    _skip_after_failure.record("gram_matrix", False)
    _skip_after_failure.record("style_loss", False)
    _skip_after_failure.record("tv_loss", True)
    note = _skip_after_failure.skipped_note()
    assert note == "skipped: fix gram_matrix, style_loss first (their checks above failed)"
    _skip_after_failure._FAILED.clear()
