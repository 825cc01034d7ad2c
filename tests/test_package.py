"""What ``import cs231n_style as cs`` gives students, and what it loads.

``cs`` is the student API and nothing else: the grader's diagnosis (``cs231n_style.diagnosis``),
notebook authoring (``autograder.authoring``) and the extraction the autograder uses are imported
by their modules' names. The names are listed here one by one, so that a new export is a
deliberate choice. Importing the package loads its light modules only: the plots and the widget
panel (matplotlib, ipywidgets) load on first use; nbgrader and Jupyter's client and converters (nbclient,
nbconvert, jupyter_client) never load, and nbformat loads when a notebook is first read.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import cs231n_style

#: Every name of ``cs``, by the module that defines it.
STUDENT_API = {
    "device": ["DEVICE_ENV_VAR", "get_device", "describe_device", "seed_everything"],
    "images": ["IMAGENET_MEAN", "IMAGENET_STD", "SAMPLE_IMAGES", "MAX_SIDE", "MAX_PIXELS", "sample_image",
               "load_image", "image_from_bytes", "save_image", "preprocess", "deprocess", "show_images"],
    "features": ["WEIGHTS_ENV_VAR", "load_squeezenet", "extract_features", "describe_layers"],
    "transfer": ["TransferSettings", "TransferResult", "LossFunctions", "EXAMPLE_SETTINGS", "style_transfer"],
    "color": ["RGB_TO_YIQ", "rgb_to_yiq", "yiq_to_rgb", "luminance_image", "match_luminance", "match_color_histogram",
              "combine_luminance"],
    "masks": ["split_masks", "threshold_masks", "load_masks", "resize_masks", "check_masks"],
    "checks": ["CheckResult", "check_content_loss", "check_gram_matrix", "check_style_loss", "check_tv_loss",
               "check_all", "check_guided_gram_matrix", "check_guided_style_loss"],
    "notebook": ["STUDENT_FUNCTIONS", "NOTEBOOK_OF", "COURSE_FOLDER_ENV", "set_course_folder",
                 "find_course_notebook", "load_functions", "load_course_functions"],
    "photorealism": ["check_photorealism_loss"],
    "plots": ["show_feature_maps", "plot_loss_history"],
    "widgets": ["PanelRun", "StyleTransferPanel", "style_transfer_panel"],
}

#: What ``import cs231n_style`` loads of the package: the student modules that are not lazy, and what
#: they import (the diagnosis the checks give, the student's line in a traceback, the fast pooling, the
#: skipping of demo cells after a failed check).
LOADED = {"cs231n_style", "cs231n_style._parts", "cs231n_style._pooling", "cs231n_style._skip_after_failure",
          "cs231n_style.backbones", "cs231n_style._compare", "cs231n_style._locate", "cs231n_style._fields",
          "cs231n_style._checking",
          "cs231n_style._tracebacks", "cs231n_style.settings",
          "cs231n_style.checks", "cs231n_style.color", "cs231n_style.device", "cs231n_style.diagnosis",
          "cs231n_style.features", "cs231n_style.images", "cs231n_style.masks", "cs231n_style.notebook",
          "cs231n_style.transfer"}

#: Packages that ``import cs231n_style`` must not load: the figures' and the panel's, Jupyter's and
#: nbgrader's (an autograder's environment need not have them), and torchvision (seconds and about
#: 160 MB: loaded by the first image or network, never by the autograder, which grades in 768 MB).
NOT_LOADED = ("ipywidgets", "matplotlib", "nbgrader", "nbclient", "nbconvert", "jupyter_client", "torchvision",
              "nbformat", "traitlets")


def _loaded_after(code: str) -> list[str]:
    """The names in ``sys.modules`` of a fresh interpreter after ``import cs231n_style`` and ``code``."""
    script = f"import json, sys\nimport cs231n_style as cs\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def _top_level(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted({module.split(".")[0] for module in modules} & set(names))


def test_importing_the_package_loads_its_light_modules_only():
    modules = _loaded_after("")
    assert {m for m in modules if m.split(".")[0] == "cs231n_style"} == LOADED
    assert _top_level(modules, NOT_LOADED) == []


def test_the_loaded_modules_check_sees_a_lazy_module_load():
    """The check above is not blind: the first use of the panel loads ipywidgets and the widgets module."""
    modules = _loaded_after("cs.style_transfer_panel")
    assert "ipywidgets" in _top_level(modules, NOT_LOADED) and "cs231n_style.widgets" in modules
    assert "torchvision" in _top_level(_loaded_after("cs.preprocess('cat', 32)"), NOT_LOADED)


def test_the_namespace_is_the_student_api():
    expected = sorted(name for names in STUDENT_API.values() for name in names)
    assert sorted(cs231n_style.__all__) == expected
    assert len(cs231n_style.__all__) == len(expected)  # no name twice
    assert dir(cs231n_style) == expected
    for module, names in STUDENT_API.items():
        for name in names:
            assert getattr(cs231n_style, name) is getattr(importlib.import_module(f"cs231n_style.{module}"), name)


@pytest.mark.parametrize("name", ["MISTAKES", "relative_error", "reference_values", "diagnose_values",
                                  "uses_python_loops", "make_student_notebook", "fill_in_solutions",
                                  "BEGIN_SOLUTION", "is_solution_cell", "read_notebook", "extract_functions",
                                  "BackgroundRun"])
def test_the_graders_and_the_authors_names_are_not_the_students(name):
    """Importable from their own modules (``cs231n_style.diagnosis``, ``.authoring``, ``.notebook``,
    ``.background``), not through ``cs``."""
    assert not hasattr(cs231n_style, name)
    with pytest.raises(AttributeError, match=f"no attribute '{name}'"):
        getattr(cs231n_style, name)


def test_the_panel_and_plots_load_on_first_use_under_their_names():
    from cs231n_style import plots, widgets

    assert cs231n_style._LAZY == {**dict.fromkeys(plots.__all__, "plots"), **dict.fromkeys(widgets.__all__, "widgets"),
                                  "check_photorealism_loss": "photorealism"}
    for name, module in cs231n_style._LAZY.items():
        assert getattr(cs231n_style, name) is getattr(sys.modules[f"cs231n_style.{module}"], name)
        assert name in dir(cs231n_style) and name in cs231n_style.__all__
    assert {"show_images", "load_image", "check_gram_matrix", "style_transfer", "extract_features",
            "get_device", "load_functions"} <= set(cs231n_style.__all__) <= set(dir(cs231n_style))
    assert cs231n_style.widgets is widgets
    with pytest.raises(AttributeError, match="no attribute 'style_transfer_pane'"):
        cs231n_style.style_transfer_pane  # noqa: B018
