"""Unit tests for your functions, loaded from your notebooks in this folder.

Run them, with the notebooks themselves, from the course's top folder:

    pytest notebooks/

Each test loads one function from its notebook (only the ``import`` lines and ``def`` blocks run)
and calls the same check as the notebook's check cell; a failure shows the check's diagnosis.
"""

from pathlib import Path

import pytest

import cs231n_style as cs
from cs231n_style.notebook import GUIDED_FUNCTIONS

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("name", list(cs.NOTEBOOK_OF))
def test_my_function(name):
    if name in GUIDED_FUNCTIONS and not (HERE / cs.NOTEBOOK_OF[name]).is_file():
        pytest.skip(f"{cs.NOTEBOOK_OF[name]} is not part of this course")  # notebook 05 is optional
    try:
        function = getattr(cs.load_functions(HERE / cs.NOTEBOOK_OF[name], [name]), name)
    except LookupError as error:
        pytest.fail(str(error), pytrace=False)
    result = getattr(cs, f"check_{name}")(function)  # cs.check_gram_matrix, ..., cs.check_guided_style_loss
    if not result:
        pytest.fail(result.message, pytrace=False)
