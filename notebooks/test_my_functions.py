"""Unit tests for your four functions, loaded from your notebooks in this folder.

Run them, with the notebooks themselves, from the course's top folder:

    pytest notebooks/

Each test loads one function from its notebook (only the ``import`` lines and ``def`` blocks run)
and calls the same check as the notebook's check cell; a failure shows the check's diagnosis.
"""

from pathlib import Path

import pytest

import cs231n_style as cs

HERE = Path(__file__).resolve().parent
CHECKS = {
    "content_loss": cs.check_content_loss,
    "gram_matrix": cs.check_gram_matrix,
    "style_loss": cs.check_style_loss,
    "tv_loss": cs.check_tv_loss,
}


@pytest.mark.parametrize("name", list(cs.NOTEBOOK_OF))
def test_my_function(name):
    try:
        function = getattr(cs.load_functions(HERE / cs.NOTEBOOK_OF[name], [name]), name)
    except LookupError as error:
        pytest.fail(str(error), pytrace=False)
    result = CHECKS[name](function)
    if not result:
        pytest.fail(result.message, pytrace=False)
