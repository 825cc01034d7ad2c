"""cs231n-style: the helpers of a neural style transfer course (Gatys et al., CVPR 2016).

Everything students need that is not the lesson: device setup, images, pretrained SqueezeNet 1.1
feature maps, the optimization loop, checks and plots. The losses themselves are the students'.
``import cs231n_style as cs`` gives the students' names and only those (``__all__``, which
``dir(cs)`` lists too): ``cs.load_image(...)``, ``cs.check_gram_matrix(...)``, ... are all a
notebook needs. One module per concept:

* :mod:`.device`, :mod:`.images`, :mod:`.features`, :mod:`.transfer` (and its :mod:`.settings`):
  everything they export;
* :mod:`.color` and :mod:`.masks` (notebook 05: colour control and the masks of spatial control,
  Gatys et al., CVPR 2017, Sec. 5 and 4): everything they export;
* :mod:`.checks`: the checks of the four functions and of notebook 05's two (``check_guided_...``),
  ``check_all`` and ``CheckResult``;
* :mod:`.notebook`: loading functions from earlier notebooks (``load_functions``,
  ``load_course_functions``) and where those notebooks are (``set_course_folder``, ...);
* :mod:`.plots` and :mod:`.widgets` (the panel): loaded on first use (PEP 562's module
  ``__getattr__``), so ``cs.style_transfer_panel`` works as any other name, but ``import
  cs231n_style`` alone, as the autograder does, imports neither matplotlib nor ipywidgets, which
  an autograder's environment need not have.

The rest is imported by its module's name where it is needed, never through ``cs``:
:mod:`.diagnosis` (what a wrong result says about the code: the checks' and the autograder's),
:mod:`.background` (a style transfer run in a worker thread: the panel's), the notebook module's
extraction and cell roles (the autograder's), and the private :mod:`._pooling` (the loop's fast
pooling) and :mod:`._tracebacks` (the student's line in a traceback). Making student notebooks from
the solution notebooks is the course authors' (``autograder.authoring``): not in the students' wheel.
"""

from importlib import import_module as _import_module

from . import checks, color, device, features, images, masks, transfer
from .checks import *  # noqa: F403
from .color import *  # noqa: F403
from .device import *  # noqa: F403
from .features import *  # noqa: F403
from .images import *  # noqa: F403
from .masks import *  # noqa: F403
from .notebook import (
    COURSE_FOLDER_ENV,
    NOTEBOOK_OF,
    STUDENT_FUNCTIONS,
    find_course_notebook,
    load_course_functions,
    load_functions,
    set_course_folder,
)
from .transfer import *  # noqa: F403

__version__ = "0.1.0"

# name -> the module that defines it, imported when the name is first asked for. Kept equal to those
# modules' __all__ by tests/test_package.py. The modules themselves (cs.widgets) load too.
_LAZY_MODULES = ("plots", "widgets")
_LAZY = {
    "show_feature_maps": "plots",
    "plot_loss_history": "plots",
    "PanelRun": "widgets",
    "StyleTransferPanel": "widgets",
    "style_transfer_panel": "widgets",
    "check_photorealism_loss": "photorealism",  # notebook 06's check (its module builds Matting Laplacians)
}

__all__ = [*device.__all__, *images.__all__, *features.__all__, *transfer.__all__, *color.__all__, *masks.__all__,
           *checks.__all__,
           "STUDENT_FUNCTIONS", "NOTEBOOK_OF", "COURSE_FOLDER_ENV", "set_course_folder", "find_course_notebook",
           "load_functions", "load_course_functions", *_LAZY]


def __getattr__(name: str):
    """A lazily loaded name: import its module (:data:`_LAZY`) and return the name from it.

    Args:
        name: the attribute asked for (``cs.style_transfer_panel``, or a lazy module: ``cs.widgets``).

    Returns:
        The object, now also cached in this module's namespace.

    Raises:
        AttributeError: if ``name`` is not one of this package's names.
        ImportError: if its module's own imports fail (e.g. ipywidgets is not installed).

    Source: PEP 562 (module ``__getattr__`` and ``__dir__``).
    """
    if name in _LAZY_MODULES:
        return _import_module(f".{name}", __name__)  # importing a submodule binds it here
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The students' names, :data:`__all__`, the lazily loaded ones included (PEP 562): what tab
    completion offers after ``cs.``."""
    return sorted(__all__)
