"""Run style transfer headless and write a PNG: ``cs231n-style --help`` (= ``python -m cs231n_style --help``).

The loss functions come from the course notebooks, loaded with
:func:`cs231n_style.load_course_functions`: from the folder given with ``--functions``, else from
``$CS231N_STYLE_COURSE_DIR``, else from the first of the working directory, ``solutions/`` and
``notebooks/`` that holds ``01_content_loss.ipynb``. Every field of
:class:`cs231n_style.TransferSettings` is a command-line option made from the field's metadata,
with the same default, help and choices; ``TransferSettings`` checks the values, so a bad one gets
the same message as in Python, on one ``error:`` line.

The controls of Gatys et al. (CVPR 2017): several ``--style`` images are blended (weights:
``--style-blend-weights``); ``--masks`` gives each region its own style (Sec. 4): one
black-and-white image file makes two regions, white (the first ``--style``) and black (the
second), several files make one region each (its white part), in the order of the ``--style``
images; one ``--style`` with masks is the same style everywhere. Spatial control needs
``guided_style_loss`` from notebook 05. ``--preserve-colors`` (Sec. 5) and ``--coarse-size``
(Sec. 6) are settings like the others.

The weights are size-aware here (unlike ``TransferSettings()``, which keeps CS231n's exact
numbers): ``--weights-size`` defaults to 192, the size CS231n's weights are for, and the content
and TV weights are scaled by ``(192 / size) ** 2`` at any other image size, so a 384 or 768 px
result looks as stylized as a 192 px one; ``--weights-size 0`` uses the weights as given.

Examples::

    cs231n-style --example cat_starry_night --output outputs/cat_starry_night.png --functions notebooks
    cs231n-style --content astronaut --style composition_vii the_scream --style-blend-weights 1 1
    cs231n-style --content coffee --style the_scream starry_night --masks left_white.png
    cs231n-style --example cat_starry_night --preserve-colors luminance --image-size 512 --coarse-size 256
    cs231n-style --content cat --style great_wave --image-size 384 --weights-size 0   # CS231n's numbers as such
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from ._tracebacks import where_in_your_code
from .backbones import load_backbone
from .device import describe_device, get_device
from .images import SAMPLE_IMAGES, load_image, preprocess, save_image
from .masks import load_masks
from .notebook import COURSE_FOLDER_ENV, NOTEBOOK_OF, load_course_functions
from .settings import EXAMPLE_SETTINGS, WEIGHTS_SIZE, TransferSettings
from .transfer import LossFunctions, style_transfer

#: The settings whose command-line default is not the field's: the weights are size-aware here
#: (``--weights-size 0`` for CS231n's exact numbers at every size), so ``--image-size 384`` or 768
#: looks as stylized as 192 px. Also applied to ``--example``'s settings.
_COMMAND_LINE_DEFAULTS = {"weights_size": WEIGHTS_SIZE}

#: Where the functions are looked for without --functions or $CS231N_STYLE_COURSE_DIR, in order.
_FUNCTION_FOLDERS = (Path("."), Path("solutions"), Path("notebooks"))


def _default_functions_dir() -> Path | None:
    """The notebooks' folder to use without ``--functions``: ``$CS231N_STYLE_COURSE_DIR`` when set,
    else the first of ``_FUNCTION_FOLDERS`` (in the working directory) holding the first course
    notebook, else ``None``."""
    if os.environ.get(COURSE_FOLDER_ENV):
        return Path(os.environ[COURSE_FOLDER_ENV]).expanduser()
    for folder in _FUNCTION_FOLDERS:
        if (folder / NOTEBOOK_OF["content_loss"]).is_file():
            return folder
    return None


def _prog() -> str:
    """The command's name in usage lines: ``cs231n-style`` or ``python -m cs231n_style``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name.startswith("cs231n-style") else "python -m cs231n_style"


def build_parser() -> argparse.ArgumentParser:
    """The command line: images, output, device, functions folder, and every TransferSettings field."""
    parser = argparse.ArgumentParser(prog=_prog(), description="Run style transfer headless and write a PNG.")
    parser.add_argument("--content", default=None,
                        help=f"content image: a path or a sample {sorted(SAMPLE_IMAGES)} (default: cat)")
    parser.add_argument("--style", default=None, nargs="+", metavar="IMAGE",
                        help="style image: a path or a sample name (default: swirls); several are blended, or "
                             "with --masks one per region")
    parser.add_argument("--masks", default=None, nargs="+", metavar="FILE",
                        help="regions for one style each (Gatys et al. 2017, Sec. 4): one black-and-white image "
                             "file (any size) makes two regions, white for the first --style and black for the "
                             "second; several files make one region each (its white part), in the order of --style")
    parser.add_argument("--output", default="outputs/result.png",
                        help="PNG to write (never overwritten: a free name is used)")
    parser.add_argument("--example", choices=sorted(EXAMPLE_SETTINGS),
                        help="start from one of CS231n's example weightings (and its images, unless given)")
    parser.add_argument("--functions", type=Path, default=None,
                        help=f"folder of the notebooks holding the loss functions (default: ${COURSE_FOLDER_ENV} "
                             "if set, else the first of ., solutions/ and notebooks/ that holds them)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: the best available)")
    parser.add_argument("--weights", default=None, metavar="FILE",
                        help="the --backbone's weights file (.pth); default: looked for as cs231n_style.backbones "
                             "says (an environment variable, torchvision's cache, weights/, then a download)")
    parser.add_argument("--pooling", default="max", choices=("max", "avg"),
                        help="the backbone's pooling layers: max (as trained) or avg (Gatys et al. 2016, Sec. 2)")
    _add_settings(parser)
    return parser


def _option_name(field_name: str) -> str:
    """The command-line option of a TransferSettings field: ``style_layers`` -> ``--style-layers``."""
    return "--" + field_name.replace("_", "-")


def _layer(text: str) -> int | str:
    """A layer on the command line: an index (``3``) or a name (``relu4_2``)."""
    return int(text) if text.strip().lstrip("-").isdigit() else text


#: For each kind of TransferSettings field (its ``metadata["kind"]``): the argparse ``type`` of one
#: value, and its name in the help (``None``: argparse lists the choices).
_KINDS: dict[str, tuple[Callable[[str], object], str | None]] = {
    "whole number": (int, "N"), "layer index": (_layer, "LAYER"), "number": (float, "X"), "choice": (str, None)}


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """Add the group "style transfer settings" to ``parser``: one option per TransferSettings field,
    its type, choices and help from the field's metadata, one or more values for a sequence
    (``--style-layers 1 4 6 7``), its default the field's or :data:`_COMMAND_LINE_DEFAULTS`'.
    TransferSettings checks the values; an option not given is ``None``, and the field keeps the
    example's value."""
    group = parser.add_argument_group("style transfer settings")
    for option in dataclasses.fields(TransferSettings):
        meta = option.metadata
        value_type, metavar = _KINDS[meta["kind"]]
        default = _COMMAND_LINE_DEFAULTS.get(option.name, option.default)
        group.add_argument(_option_name(option.name), default=None, type=value_type, metavar=metavar,
                           choices=meta["choices"], nargs="+" if meta["item"] else None,
                           help=f"{meta['help']} (default: {default})".replace("%", "%%"))


def _given_settings(args: argparse.Namespace) -> dict[str, object]:
    """The TransferSettings fields given as options, by field name, with their values."""
    return {option.name: getattr(args, option.name) for option in dataclasses.fields(TransferSettings)
            if getattr(args, option.name) is not None}


def run_settings(args: argparse.Namespace) -> tuple[str, list[str], TransferSettings]:
    """What a parsed command line runs: the content image, the style images and the settings.

    The settings are ``TransferSettings()`` (``--backbone``'s defaults, ``for_backbone``), or ``--example``'s,
    with :data:`_COMMAND_LINE_DEFAULTS`
    (size-aware weights, ``weights_size=192``) and then every option given.

    Args:
        args: ``build_parser().parse_args(...)``.

    Returns:
        ``(content, styles, settings)``: a path or sample name, a list of them (one or more), and
        a valid :class:`cs231n_style.TransferSettings`.

    Raises:
        ValueError: if the options make invalid settings (the message of ``TransferSettings``,
            with the options' names for a lone ``--style-layers`` / ``--style-weights``).
    """
    base, content, styles = TransferSettings(), "cat", ["swirls"]
    if args.backbone:  # its own default layers and weights (cs231n_style.backbones)
        base = TransferSettings.for_backbone(args.backbone)
    if args.example:
        if args.backbone not in (None, "squeezenet1_1"):
            raise ValueError(f"--example's weightings are CS231n's, for SqueezeNet: drop --example to run "
                             f"--backbone {args.backbone} with its own defaults.")
        content, style, base = EXAMPLE_SETTINGS[args.example]
        styles = [style]
    base = base.replace(**_COMMAND_LINE_DEFAULTS)
    settings = base.with_changes(_given_settings(args), name_of=_option_name)
    return args.content or content, args.style or styles, settings


def _output_problem(output: str) -> str | None:
    """Why ``--output`` cannot be written (a message for the ``error:`` line), or ``None``.
    Checked before the run, so that a bad ``--output`` costs no time."""
    if Path(output).suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"):
        return f"--output must end in .png (or .jpg), not {output!r}."
    problem = _unwritable(Path(output).parent)
    return f"cannot write {output!r}: {problem}. Choose another --output." if problem else None


def _unwritable(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (created if missing), or ``None`` if it can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def _content_masks(files: list[str] | None, content: str, settings: TransferSettings, losses: LossFunctions,
                   functions: Path):
    """The ``--masks`` files as masks (1, R, H, W) at the content image's size (``None`` without
    ``--masks``): one file, two regions (white, black); several, one region each (:func:`load_masks`).

    Raises:
        ValueError: if the guided style loss was not loaded (notebook 05 missing), or a file is not
            valid masks; FileNotFoundError: if a file does not exist.
    """
    if not files:
        return None
    if losses.guided_style_loss is None:
        raise ValueError(f"--masks needs guided_style_loss from {NOTEBOOK_OF['guided_style_loss']}, which is not in "
                         f"{functions}: finish notebook 05 there (or pass --functions solutions).")
    height, width = preprocess(content, settings.image_size).shape[-2:]
    return load_masks(files[0] if len(files) == 1 else files, (height, width))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; ``argv`` defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 when the PNG was written, 1 when a loss function is not implemented yet,
        2 for any other clear error (bad image, masks, settings, output name, weights). Errors are
        printed as one line on stderr, never as a traceback.
    """
    args = build_parser().parse_args(argv)
    problem = _output_problem(args.output)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:  # checked before the notebooks, the device and the weights are looked for
        content, styles, settings = run_settings(args)
        for image in (content, *styles):  # a misspelled name is said at once, not after loading the model
            load_image(image)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    functions = args.functions or _default_functions_dir()
    if functions is None:
        looked = ", ".join(str(Path.cwd() / folder) for folder in _FUNCTION_FOLDERS)
        print(f"error: no course notebooks to take the loss functions from ({NOTEBOOK_OF['content_loss']}, ... "
              f"are in none of {looked}): pass --functions FOLDER (the folder of your notebooks), set "
              f"${COURSE_FOLDER_ENV}=FOLDER, or run the command in that folder.", file=sys.stderr)
        return 2
    try:
        device = get_device(args.device)
        losses = LossFunctions(**vars(load_course_functions(functions)))  # notebook 05's and 06's where there
        if settings.photorealism_weight and losses.photorealism_loss is None:  # Luan et al. (2017)
            print(f"error: --photorealism-weight needs photorealism_loss from {NOTEBOOK_OF['photorealism_loss']}, "
                  f"which is not in {functions}: finish notebook 06 there (or pass --functions solutions).",
                  file=sys.stderr)
            return 2
        masks = _content_masks(args.masks, content, settings, losses, functions)
        model = load_backbone(settings.backbone, weights_path=args.weights, device=device, pooling=args.pooling)
        regions = f" (regions from {', '.join(args.masks)})" if masks is not None else ""
        print(f"style transfer on {describe_device(device)}: {content} + {' + '.join(styles)}{regions}")
        result = style_transfer(content, styles[0] if len(styles) == 1 else styles, losses, model, settings,
                                content_masks=masks)
    except NotImplementedError as error:
        print(f"error: {error}: finish notebooks 1-3 (and 05 for --masks) first (or pass --functions solutions).",
              file=sys.stderr)
        return 1
    except (ValueError, RuntimeError, LookupError, FileNotFoundError, KeyError, TypeError, IndexError) as error:
        print(f"error: {_in_students_code(error) or error}", file=sys.stderr)
        return 2
    return _save(result, args.output)


def _from_a_notebook(filename: str) -> bool:
    """Whether code of file ``filename`` was loaded from a course notebook (their file names are
    ``<03_tv_loss.ipynb: the cell of tv_loss>``, :func:`cs231n_style.load_functions`)."""
    return filename.startswith("<") and ".ipynb: the cell of " in filename


def _in_students_code(error: BaseException) -> str | None:
    """What the checks would say of ``error`` if a student's function raised it: the function, its
    notebook and line, the diagnosis with the shapes of the function's tensor arguments
    (:func:`cs231n_style.diagnosis.diagnose_exception`), and where to test it; ``None`` if the error
    was not raised in a notebook's code (a bad image, ...)."""
    frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)
              if _from_a_notebook(frame.f_code.co_filename)]
    if not frames:
        return None
    from .diagnosis import diagnose_exception  # only on this path: the CLI's start stays light

    frame = frames[-1]
    name, notebook = frame.f_code.co_name, frame.f_code.co_filename[1:].split(":")[0]
    arguments = [frame.f_locals.get(arg) for arg in frame.f_code.co_varnames[:frame.f_code.co_argcount]]
    shapes = ", ".join(str(tuple(shape)) for arg in arguments if (shape := getattr(arg, "shape", None)) is not None)
    where = where_in_your_code(error, lambda summary: _from_a_notebook(summary.filename))
    _, message = diagnose_exception(name, type(error).__name__, str(error), shapes, where)
    return (f"{name} (in {notebook}) raised an error during style transfer.\n{message}\n"
            f"  Run {notebook}'s check cell (or `make check`) to test {name} alone.")


def _save(result, output: str) -> int:
    """Write the result to ``output`` (a free name if taken) and say so: the exit status, 0 or 2."""
    total = result.history["total"]
    try:
        path = save_image(result.image, output)
    except OSError as error:
        print(f"error: the run finished but {output!r} could not be written ({error}).", file=sys.stderr)
        return 2
    summary = f"total loss {total[0]:.4g} -> {total[-1]:.4g}" if total else "no steps run"
    if total and total[-1] > total[0]:  # a newcomer's --num-steps 5 read as "it broke"
        summary += (" (higher: with CS231n's learning rate Adam's first steps overshoot, and the loss falls back "
                    "below its start after a few dozen steps; run more --num-steps)")
    if result.final_loss is not None:  # speed="fast": its history starts at the coarse size
        summary = f"total loss of the result {result.final_loss['total']:.4g} ({len(total)} steps)"
    print(f"{summary} in {result.seconds:.1f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
