"""cs231n-style: the helpers of a neural style transfer course (Gatys et al., CVPR 2016).

Everything students need that is not the lesson: device setup, images, pretrained SqueezeNet 1.1
feature maps, the optimization loop, checks and plots. The losses themselves are the students'.
One module per concept; everything public is re-exported here, so ``import cs231n_style as cs``
and ``cs.load_image(...)``, ``cs.check_gram_matrix(...)``, ... are all a notebook needs.

The figures (:mod:`.plots`, matplotlib) and the widget panel (:mod:`.widgets`, ipywidgets) load
on first use (PEP 562's module ``__getattr__``): ``cs.style_transfer_panel`` works as any other
name, but ``import cs231n_style`` alone, as the autograder does, imports neither matplotlib nor
ipywidgets, which an autograder's environment need not have.
"""

from importlib import import_module as _import_module

from . import checks, device, features, images, notebook, transfer
from .checks import *  # noqa: F401,F403
from .device import *  # noqa: F401,F403
from .features import *  # noqa: F401,F403
from .images import *  # noqa: F401,F403
from .notebook import *  # noqa: F401,F403
from .transfer import *  # noqa: F401,F403

__version__ = "0.1.0"

# name -> the module that defines it, imported when the name is first asked for. Kept equal to those
# modules' __all__ by tests/test_platform_gradescope.py. The modules themselves (cs.widgets) load too.
_LAZY_MODULES = ("plots", "widgets")
_LAZY = {
    "show_feature_maps": "plots",
    "plot_loss_history": "plots",
    "PanelRun": "widgets",
    "StyleTransferPanel": "widgets",
    "style_transfer_panel": "widgets",
}

__all__ = [*checks.__all__, *device.__all__, *features.__all__, *images.__all__, *notebook.__all__,
           *transfer.__all__, *_LAZY]


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
    """Every name of the package, the lazily loaded ones included (PEP 562)."""
    return sorted({*globals(), *_LAZY, *_LAZY_MODULES})
