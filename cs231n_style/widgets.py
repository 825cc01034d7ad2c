"""An ipywidgets panel to explore style transfer interactively, with the student's own losses.

Sliders set the content, per-layer style and total variation weights (on log scales, since
useful values span many powers of ten), the image size and the number of steps; pickers choose
the content and style images (bundled samples or an upload); Run starts the optimization of
:func:`cs231n_style.style_transfer` with the loss functions passed in, Stop ends it. A live
preview, a plot of the loss terms and a progress bar follow the run, and a gallery keeps every
finished run with its settings, side by side, each with a button to save it as a PNG file.

Threading: the optimization runs in a worker thread so the notebook stays responsive (the kernel
keeps handling button clicks, so Stop works). The widget values are read once, on the kernel's
thread when Run is pressed, into an immutable :class:`cs231n_style.TransferSettings`; the worker
never reads a widget, so moving a slider during a run cannot change or crash it. The worker only
*sets* widget values (which ipywidgets and ipykernel support from other threads: IOPub, the
channel that carries them, is thread-safe), under one lock, throttled to a few updates per
second, and never prints nor uses an ``Output`` widget's context manager (output from a thread
lands in whichever cell is running at the time; ipywidgets' docs advise against it).

Example::

    panel = style_transfer_panel(losses, model)   # losses: a LossFunctions, model: load_squeezenet()
    panel                                         # last line of a cell: shows the panel
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import io
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from .images import SAMPLE_IMAGES, deprocess, load_image, save_image
from .transfer import EXAMPLE_SETTINGS, LossFunctions, TransferResult, TransferSettings, style_transfer

__all__ = ["PanelRun", "StyleTransferPanel", "style_transfer_panel"]

_UPLOAD_PREFIX = "upload: "
_LOSS_COLORS = {"content": "#1f77b4", "style": "#ff7f0e", "tv": "#2ca02c"}


def _esc(text: str) -> str:
    """Escape ``text`` for an HTML widget (quotes stay readable: they are not markup in text)."""
    return html.escape(text, quote=False)


def _help(name: str) -> str:
    """The help text of a TransferSettings field (STYLE.md point 12: one source for all docs)."""
    return next(f.metadata["help"] for f in dataclasses.fields(TransferSettings) if f.name == name)


def _choices(name: str) -> tuple[str, ...]:
    return next(f.metadata["choices"] for f in dataclasses.fields(TransferSettings) if f.name == name)


def _png(image: Image.Image, height: int | None = None) -> bytes:
    """Encode ``image`` as PNG bytes, scaled to ``height`` pixels high if given."""
    if height is not None and image.height != height:
        image = image.resize((max(1, round(image.width * height / image.height)), height), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _loss_plot_svg(history: Mapping[str, list[tuple[int, float]]], num_steps: int = 0,
                   width: int = 360, height: int = 220) -> str:
    """Plot the loss terms against the step, log-scaled, as an inline SVG string.

    Drawn by hand rather than with matplotlib: it takes about a millisecond instead of a fifth of
    a second (the worker thread redraws it with every preview) and uses no global state.

    Args:
        history: for each of ``"content"``, ``"style"``, ``"tv"``, a list of (step, value) pairs;
            values <= 0 or not finite are left out (a log scale cannot show them).
        num_steps: the run's length, so the x axis does not rescale as the run goes on.
        width, height: size of the drawing in pixels.

    Returns:
        An ``<svg>`` element as a ``str``.
    """
    left, right, top, bottom = 46, 10, 10, 30
    series = {name: [(x, math.log10(y)) for x, y in history.get(name, []) if y > 0 and math.isfinite(y)]
              for name in ("content", "style", "tv")}
    points = [p for values in series.values() for p in values]
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"font-family='sans-serif' font-size='10'>",
             f"<rect x='{left}' y='{top}' width='{width - left - right}' height='{height - top - bottom}' "
             "fill='white' stroke='#999'/>",
             f"<text x='{(left + width - right) / 2}' y='{height - 4}' text-anchor='middle'>step</text>"]
    if not points:
        parts.append(f"<text x='{(left + width - right) / 2}' y='{height / 2}' text-anchor='middle' "
                     "fill='gray'>the loss terms appear here during a run</text></svg>")
        return "".join(parts)
    x_max = max(num_steps, max(x for x, _ in points), 1)
    y_min = math.floor(min(y for _, y in points))
    y_max = max(math.ceil(max(y for _, y in points)), y_min + 1)

    def sx(x: float) -> float:
        return left + (width - left - right) * x / x_max

    def sy(y: float) -> float:
        return top + (height - top - bottom) * (y_max - y) / (y_max - y_min)

    decades = range(y_min, y_max + 1, max(1, (y_max - y_min + 5) // 6))
    for decade in decades:
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{sy(decade):.1f}' y2='{sy(decade):.1f}' "
                     "stroke='#eee'/>"
                     f"<text x='{left - 4}' y='{sy(decade) + 3:.1f}' text-anchor='end'>1e{decade}</text>")
    for tick in (0, x_max // 2, x_max):
        parts.append(f"<text x='{sx(tick):.1f}' y='{height - bottom + 12}' text-anchor='middle'>{tick}</text>")
    for row, (name, values) in enumerate(series.items()):
        if len(values) > 400:  # enough for a 360-pixel plot
            values = values[:: math.ceil(len(values) / 400)] + [values[-1]]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        color = _LOSS_COLORS[name]
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='1.5' points='{path}'/>"
                     f"<line x1='{width - right - 70}' x2='{width - right - 52}' y1='{top + 12 + 13 * row}' "
                     f"y2='{top + 12 + 13 * row}' stroke='{color}' stroke-width='2'/>"
                     f"<text x='{width - right - 48}' y='{top + 15 + 13 * row}'>{name}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _log_slider(name: str, value: float, description: str) -> widgets.FloatLogSlider:
    """A base-10 log slider spanning about three powers of ten either side of ``value``."""
    center = math.log10(value) if value > 0 else -3.0
    return widgets.FloatLogSlider(
        value=value if value > 0 else 10 ** (center - 3), base=10,
        min=math.floor(center) - 3, max=math.ceil(center) + 3, step=0.05,
        description=description, tooltip=_help(name), readout_format=".3g", continuous_update=False,
        style={"description_width": "150px"}, layout=widgets.Layout(width="440px"),
    )


def _set_log_slider(slider: widgets.FloatLogSlider, value: float) -> None:
    """Set a log slider to ``value``, widening its range first if ``value`` lies outside it."""
    if value > 0:
        exponent = math.log10(value)
        if exponent < slider.min:
            slider.min = math.floor(exponent) - 1
        if exponent > slider.max:
            slider.max = math.ceil(exponent) + 1
        slider.value = value
    else:
        slider.value = slider.base ** slider.min


def _describe(run: PanelRun) -> str:
    """A short HTML summary of a run's settings and outcome, for its gallery card."""
    s, r = run.settings, run.result
    steps = len(r.history["total"])
    outcome = f"stopped at step {steps}/{s.num_steps}" if r.stopped_early else f"{steps} steps"
    final = r.history["total"][-1] if steps else float("nan")
    lines = [
        f"<b>#{run.number}</b> {_esc(run.content_name)} + {_esc(run.style_name)}",
        f"content weight {s.content_weight:.3g}",
        "style weights " + ", ".join(f"{w:.3g}" for w in s.style_weights),
        f"TV weight {s.tv_weight:.3g}",
        f"size {s.image_size}px, init {s.init}",
        f"{outcome} in {r.seconds:.1f} s, loss {final:.4g}",
    ]
    return "<div style='font-size:11px;line-height:1.3'>" + "<br>".join(lines) + "</div>"


@dataclass(frozen=True)
class PanelRun:
    """One finished (or stopped) run of a :class:`StyleTransferPanel`, as kept in its gallery.

    Attributes:
        number: 1 for the panel's first run, 2 for the next, ...
        content_name: the content image's label in the picker (a sample name or ``"upload: NAME"``).
        style_name: the style image's label in the picker.
        settings: the exact :class:`cs231n_style.TransferSettings` the run used.
        result: the :class:`cs231n_style.TransferResult` (image, loss history, time, stopped_early).
    """

    number: int
    content_name: str
    style_name: str
    settings: TransferSettings
    result: TransferResult


class StyleTransferPanel:
    """Sliders, image pickers, Run/Stop, live preview, loss plot, progress and a gallery of runs.

    Show it by making it the last expression of a cell, or with ``display(panel)`` /
    ``display(panel.widget)``. The widgets are attributes (``content_weight``, ``style_weights``,
    ``tv_weight``, ``image_size``, ``num_steps``, ``init``, ``content_picker``, ``style_picker``,
    ``content_upload``, ``style_upload``, ``run_button``, ``stop_button``, ``preview``,
    ``loss_plot``, ``progress``, ``status``, ``gallery``, ``save_path``), so a notebook or a test can
    drive it from Python: set values, then ``panel.run_button.click()`` and ``panel.wait()``.

    Args:
        losses: the four loss functions to optimize with (:class:`cs231n_style.LossFunctions`).
        model: the frozen SqueezeNet ``features`` from :func:`cs231n_style.load_squeezenet`; the
            run happens on its device.
        example: a key of :data:`cs231n_style.EXAMPLE_SETTINGS` whose content image, style image
            and settings the panel starts with (default: CS231n's first example, ``"astronaut_dots"``).
        settings: if given, the starting settings instead of the example's; fields without a
            widget (style size, layers, optimizer, learning rates, seed, ...) are always taken
            from here (or from the example chosen in the panel's example picker).
        save_dir: folder that relative "save as" paths are resolved in (default: ``"outputs"``).
        preview_every: call back every this many steps; ``None`` picks 1 on the CPU (the
            callback is cheap there) and 5 on a GPU (each callback waits for the GPU).
        preview_interval: at most one preview image per this many seconds (so a fast GPU does
            not flood the browser); the loss plot is redrawn with each preview.

    Raises:
        TypeError: if ``losses`` is not a :class:`cs231n_style.LossFunctions` or ``model`` is not
            an ``nn.Module``.
        KeyError: if ``example`` is not a key of ``EXAMPLE_SETTINGS``.
        ValueError: if ``preview_every`` < 1 or ``preview_interval`` < 0.
    """

    def __init__(self, losses: LossFunctions, model: nn.Module, *, example: str = "astronaut_dots",
                 settings: TransferSettings | None = None, save_dir: str | Path = "outputs",
                 preview_every: int | None = None, preview_interval: float = 0.25):
        if not isinstance(losses, LossFunctions):
            raise TypeError("losses must be a cs231n_style.LossFunctions(content_loss=..., gram_matrix=..., "
                            f"style_loss=..., tv_loss=...), not {type(losses).__name__}.")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be the nn.Sequential from load_squeezenet(), not {type(model).__name__}.")
        if example not in EXAMPLE_SETTINGS:
            raise KeyError(f"No example {example!r}; choose one of {sorted(EXAMPLE_SETTINGS)}.")
        if preview_every is not None and preview_every < 1:
            raise ValueError(f"preview_every must be >= 1 or None, not {preview_every!r}.")
        if preview_interval < 0:
            raise ValueError(f"preview_interval must be >= 0 seconds, not {preview_interval!r}.")
        self.losses = losses
        self.model = model
        self.save_dir = Path(save_dir)
        device = next(model.parameters()).device
        self.preview_every = preview_every or (1 if device.type == "cpu" else 5)
        self.preview_interval = float(preview_interval)
        content_name, style_name, example_settings = EXAMPLE_SETTINGS[example]
        self.base_settings: TransferSettings = settings if settings is not None else example_settings

        self.runs: list[PanelRun] = []
        self.error: BaseException | None = None
        self._uploads: dict[str, Image.Image] = {}
        self._lock = threading.RLock()  # every widget write, from either thread, happens under it
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._superseded: set[int] = set()  # numbers of runs stopped by a restart: no gallery card
        self._run_counter = 0

        self._build(content_name, style_name)
        self._apply_settings(self.base_settings)
        self._disable_missing_terms()
        self._refresh_thumbnail("content")
        self._refresh_thumbnail("style")

    # ------------------------------------------------------------------ layout
    def _build(self, content_name: str, style_name: str) -> None:
        wide = {"description_width": "150px"}
        self.example = widgets.Dropdown(options=list(EXAMPLE_SETTINGS), value=None, description="example",
                                        tooltip="Load the images and weights of one of CS231n's example runs.",
                                        style=wide, layout=widgets.Layout(width="440px"))
        self.content_picker = widgets.Dropdown(options=list(SAMPLE_IMAGES), value=content_name,
                                               description="content image", style=wide,
                                               tooltip="A bundled sample, or your own picture after Upload.")
        self.style_picker = widgets.Dropdown(options=list(SAMPLE_IMAGES), value=style_name,
                                             description="style image", style=wide,
                                             tooltip="A bundled sample, or your own picture after Upload.")
        self.content_upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload",
                                                 tooltip="Use your own content image (PNG, JPEG, ...).")
        self.style_upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload",
                                               tooltip="Use your own style image (PNG, JPEG, ...).")
        thumbnail = {"height": "96px", "width": "auto", "object_fit": "contain", "align_self": "flex-start"}
        self.content_thumbnail = widgets.Image(format="png", layout=widgets.Layout(**thumbnail))
        self.style_thumbnail = widgets.Image(format="png", layout=widgets.Layout(**thumbnail))

        self.content_weight = _log_slider("content_weight", 1.0, "content weight")
        self.style_weights: list[widgets.FloatLogSlider] = []
        self.style_box = widgets.VBox()
        self.tv_weight = _log_slider("tv_weight", 1.0, "TV weight")
        self.image_size = widgets.IntSlider(value=192, min=32, max=512, step=16, description="image size (px)",
                                            tooltip=_help("image_size"), continuous_update=False, style=wide,
                                            layout=widgets.Layout(width="440px"))
        self.num_steps = widgets.IntSlider(value=200, min=0, max=1000, step=10, description="steps",
                                           tooltip=_help("num_steps"), continuous_update=False, style=wide,
                                           layout=widgets.Layout(width="440px"))
        self.init = widgets.ToggleButtons(options=list(_choices("init")), description="start from",
                                          tooltip=_help("init"), style={**wide, "button_width": "90px"})
        self.auto_run = widgets.Checkbox(value=False, description="re-run when a setting changes",
                                         tooltip="Stop the current run and start again whenever you "
                                                 "release a slider or pick an image.", indent=False)

        self.run_button = widgets.Button(description="Run", button_style="success", icon="play",
                                         tooltip="Start style transfer with these settings.")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                          tooltip="End the run now; the image so far goes to the gallery.")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="progress", style=wide,
                                            layout=widgets.Layout(width="440px"))
        self.status = widgets.HTML(value="Ready: press Run.")
        self.preview = widgets.Image(format="png", layout=widgets.Layout(max_width="420px"))
        self.loss_plot = widgets.HTML(value=_loss_plot_svg({}))
        self.gallery = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.save_path = widgets.Text(value="style_transfer.png", description="save as",
                                      tooltip="File name for the Save buttons in the gallery; relative "
                                              f"names go to {str(self.save_dir)!r}. An existing file is "
                                              "never overwritten: -1, -2, ... is added to the name.",
                                      style={"description_width": "60px"})

        self.example.observe(self._on_example, names="value")
        self.content_picker.observe(lambda change: self._on_pick("content"), names="value")
        self.style_picker.observe(lambda change: self._on_pick("style"), names="value")
        self.content_upload.observe(lambda change: self._on_upload("content", change), names="value")
        self.style_upload.observe(lambda change: self._on_upload("style", change), names="value")
        for control in (self.content_weight, self.tv_weight, self.image_size, self.num_steps, self.init):
            control.observe(self._on_setting_change, names="value")
        self.run_button.on_click(self._on_run)
        self.stop_button.on_click(self._on_stop)

        pickers = widgets.HBox([
            widgets.VBox([widgets.HBox([self.content_picker, self.content_upload]), self.content_thumbnail]),
            widgets.VBox([widgets.HBox([self.style_picker, self.style_upload]), self.style_thumbnail]),
        ])
        controls = widgets.VBox([
            self.example, self.content_weight, self.style_box, self.tv_weight, self.image_size,
            self.num_steps, self.init, self.auto_run,
            widgets.HBox([self.run_button, self.stop_button]), self.progress, self.status,
        ])
        outputs = widgets.VBox([widgets.HTML("<b>preview</b>"), self.preview,
                                widgets.HTML("<b>loss terms</b>"), self.loss_plot])
        self.widget = widgets.VBox([
            pickers,
            widgets.HBox([controls, outputs]),
            widgets.HTML("<b>gallery</b> (earlier runs, newest first)"),
            self.save_path,
            self.gallery,
        ])
        # CSS classes name the parts for styling and for browser tests ("cs231n-style-preview", ...).
        self.widget.add_class("cs231n-style-panel")
        for name in ("content_picker", "style_picker", "content_upload", "style_upload", "content_weight",
                     "tv_weight", "image_size", "num_steps", "init", "auto_run", "run_button", "stop_button",
                     "progress", "status", "preview", "loss_plot", "gallery", "save_path"):
            getattr(self, name).add_class("cs231n-style-" + name.replace("_", "-"))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # -------------------------------------------------------- settings <-> widgets
    def _apply_settings(self, settings: TransferSettings) -> None:
        """Show ``settings`` in the widgets (rebuilding the style sliders if the layers differ)."""
        with self._lock, self._quiet():
            _set_log_slider(self.content_weight, settings.content_weight)
            _set_log_slider(self.tv_weight, settings.tv_weight)
            if len(self.style_weights) != len(settings.style_layers) or \
                    tuple(self._style_layers) != settings.style_layers:
                self.style_weights = [_log_slider("style_weights", w, f"style weight, layer {layer}")
                                      for layer, w in zip(settings.style_layers, settings.style_weights)]
                for slider in self.style_weights:
                    slider.observe(self._on_setting_change, names="value")
                    slider.add_class("cs231n-style-style-weight")
                self.style_box.children = tuple(self.style_weights)
            for slider, weight in zip(self.style_weights, settings.style_weights):
                _set_log_slider(slider, weight)
            self.image_size.max = max(self.image_size.max, settings.image_size)
            self.image_size.value = settings.image_size
            self.num_steps.max = max(self.num_steps.max, settings.num_steps)
            self.num_steps.value = settings.num_steps
            self.init.value = settings.init
            self._style_layers = settings.style_layers

    _style_layers: tuple[int, ...] = ()
    _quiet_depth = 0

    @contextlib.contextmanager
    def _quiet(self):
        """While inside, setting changes made by the panel itself do not trigger an auto re-run."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    def current_settings(self) -> TransferSettings:
        """Read the widgets into a new, immutable :class:`cs231n_style.TransferSettings`.

        Fields without a widget come from the base settings (the constructor's, or the example
        last picked in the panel). A term whose loss function is ``None`` in ``losses`` (not
        written yet) is left out: weight 0 for content and TV, no style layers for style.

        Returns:
            A ``TransferSettings``.

        Raises:
            ValueError: if the combination is invalid (``TransferSettings`` says why).
        """
        use_style = self._has("gram_matrix", "style_loss")
        return self.base_settings.replace(
            content_weight=float(self.content_weight.value) if self._has("content_loss") else 0.0,
            style_layers=self._style_layers if use_style else (),
            style_weights=tuple(float(s.value) for s in self.style_weights) if use_style else (),
            tv_weight=float(self.tv_weight.value) if self._has("tv_loss") else 0.0,
            image_size=int(self.image_size.value),
            num_steps=int(self.num_steps.value),
            init=str(self.init.value),
        )

    def _has(self, *names: str) -> bool:
        """Whether ``losses`` holds all the named functions (a ``LossFunctions`` may leave some out)."""
        return all(getattr(self.losses, name, None) is not None for name in names)

    def _disable_missing_terms(self) -> None:
        """Grey out the sliders of loss terms whose functions were not passed in."""
        missing = " (its loss function was not passed in, so the term is left out)"
        for names, sliders in ((("content_loss",), [self.content_weight]),
                               (("gram_matrix", "style_loss"), self.style_weights),
                               (("tv_loss",), [self.tv_weight])):
            if not self._has(*names):
                for slider in sliders:
                    slider.disabled = True
                    slider.tooltip = slider.tooltip.rstrip(".") + missing

    def _image(self, which: str) -> Image.Image:
        """The chosen content or style image as an RGB ``PIL.Image``."""
        name = (self.content_picker if which == "content" else self.style_picker).value
        return self._uploads[name] if name in self._uploads else load_image(SAMPLE_IMAGES[name])

    # -------------------------------------------------------------- event handlers
    def _set_status(self, message: str, kind: str = "info") -> None:
        color = {"info": "inherit", "ok": "#2e7d32", "error": "#c62828"}[kind]
        with self._lock:
            self.status.value = f"<span style='color:{color}'>{message}</span>"

    def _on_example(self, change) -> None:
        if change["new"] is None:
            return
        content_name, style_name, settings = EXAMPLE_SETTINGS[change["new"]]
        unknown = [name for name in (content_name, style_name) if name not in self.content_picker.options]
        if unknown:
            self._set_status(f"Example {_esc(change['new'])} needs the images {_esc(', '.join(unknown))}, "
                             "which are not among the samples.", "error")
            return
        self.base_settings = settings
        with self._quiet():
            self._apply_settings(settings)
            self._disable_missing_terms()
            self.content_picker.value = content_name
            self.style_picker.value = style_name
        self._refresh_thumbnail("content")
        self._refresh_thumbnail("style")
        self._on_setting_change(None)

    def _refresh_thumbnail(self, which: str) -> None:
        try:
            image = self._image(which)
        except (OSError, ValueError) as error:
            self._set_status(f"Cannot read the {which} image: {_esc(str(error))}", "error")
            return
        with self._lock:
            (self.content_thumbnail if which == "content" else self.style_thumbnail).value = _png(image, 96)

    def _on_pick(self, which: str) -> None:
        self._refresh_thumbnail(which)
        self._on_setting_change(None)

    def _on_upload(self, which: str, change) -> None:
        files = change["new"]
        if not files:  # the reset below, or an empty selection
            return
        upload = files[0]
        name = str(upload.get("name", "upload"))
        try:
            image = self.decode_upload(bytes(upload["content"]), name)
        except ValueError as error:
            self._set_status(_esc(str(error)), "error")
        else:
            label = _UPLOAD_PREFIX + name
            number = 1
            while label in self._uploads:  # a second upload of the same name keeps the first
                number += 1
                label = f"{_UPLOAD_PREFIX}{name} ({number})"
            self._uploads[label] = image
            for picker in (self.content_picker, self.style_picker):
                picker.options = list(picker.options) + [label]
            self._set_status(f"Loaded {_esc(name)} ({image.width}x{image.height}) as the {which} image.", "ok")
            (self.content_picker if which == "content" else self.style_picker).value = label
        finally:
            widget = self.content_upload if which == "content" else self.style_upload
            widget.value = ()  # lets the same file be picked again

    @staticmethod
    def decode_upload(data: bytes, name: str = "upload") -> Image.Image:
        """Decode an uploaded file into an RGB image with :func:`cs231n_style.load_image`.

        Args:
            data: the file's bytes.
            name: the file name, for the error message.

        Returns:
            A ``PIL.Image`` in mode ``"RGB"`` (EXIF orientation applied).

        Raises:
            ValueError: if the bytes are empty or not an image Pillow can read; the message names
                the file and the formats that work.
        """
        if not data:
            raise ValueError(f"{name!r} is empty: upload a PNG or JPEG image.")
        try:
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                return load_image(opened)
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise ValueError(f"{name!r} is not an image this panel can read: "
                             "upload a PNG, JPEG, GIF, BMP, TIFF or WebP file.") from None

    def _on_setting_change(self, change) -> None:
        if self._quiet_depth or not self.auto_run.value:
            return
        self.run(restart=True)

    def _on_run(self, button=None) -> None:
        self.run(restart=bool(self.auto_run.value))

    def _on_stop(self, button=None) -> None:
        self.stop()

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        """``True`` while a run's worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def run(self, restart: bool = False) -> bool:
        """Start a run with the current widget values, as the Run button does.

        Args:
            restart: if a run is going on, stop it (it leaves no gallery card) and start anew;
                if ``False``, a running panel ignores the call and says so in its status line.

        Returns:
            ``True`` if a run was started; ``False`` if one was already running (and
            ``restart`` was ``False``) or the settings or images were invalid (the status line
            says why).
        """
        if self.running:
            if not restart:
                self._set_status("A run is going on: press Stop first.", "error")
                return False
            self._superseded.add(self._run_counter)
            self._stop_event.set()
            self._thread.join(timeout=5.0)
            if self.running:
                self._set_status("The previous run did not stop in time; press Run again.", "error")
                return False
        try:
            settings = self.current_settings()
            content, style = self._image("content"), self._image("style")
        except (ValueError, OSError) as error:
            self._set_status(_esc(str(error)), "error")
            return False
        self._run_counter += 1
        number = self._run_counter
        names = (str(self.content_picker.value), str(self.style_picker.value))
        self._stop_event = threading.Event()
        self.error = None
        with self._lock:
            self.progress.max = max(1, settings.num_steps)
            self.progress.value = 0
            self.progress.bar_style = ""
            self.run_button.disabled = True
            self.stop_button.disabled = False
        self._set_status(f"Run #{number} started: {settings.num_steps} steps at {settings.image_size}px.")
        self._thread = threading.Thread(target=self._work, name=f"style-transfer-run-{number}", daemon=True,
                                        args=(number, names, content, style, settings, self._stop_event))
        self._thread.start()
        return True

    def stop(self) -> None:
        """End the current run at its next step (within one step's time); no-op when idle."""
        self._stop_event.set()

    def wait(self, timeout: float | None = None) -> PanelRun | None:
        """Block until the current run ends (call from code, not from a widget callback).

        Args:
            timeout: seconds to wait at most, or ``None`` for no limit.

        Returns:
            The newest :class:`PanelRun`, or ``None`` if there is none.

        Raises:
            TimeoutError: if the run is still going after ``timeout`` seconds.
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"The run was still going after {timeout} s.")
        return self.runs[-1] if self.runs else None

    def _work(self, number: int, names: tuple[str, str], content: Image.Image, style: Image.Image,
              settings: TransferSettings, stop_event: threading.Event) -> None:
        """The worker thread: run style transfer, publish previews, add the result to the gallery."""
        history: dict[str, list[tuple[int, float]]] = {"content": [], "style": [], "tv": []}
        last_preview = 0.0
        start = time.perf_counter()

        def callback(step: int, image: torch.Tensor, values: dict[str, float]) -> None:
            nonlocal last_preview
            for key in history:
                history[key].append((step, values[key]))
            now = time.perf_counter()
            final = step == settings.num_steps
            if not final and now - last_preview < self.preview_interval:
                return
            last_preview = now
            picture = _png(deprocess(image))  # converted here: `image` changes with the next step
            plot = _loss_plot_svg(history, settings.num_steps)
            with self._lock:
                self.preview.value = picture
                self.loss_plot.value = plot
                self.progress.value = step
                self.status.value = (f"Run #{number}: step {step}/{settings.num_steps}, "
                                     f"{now - start:.1f} s; content {values['content']:.3g}, "
                                     f"style {values['style']:.3g}, TV {values['tv']:.3g}")

        try:
            result = style_transfer(content, style if settings.style_layers else None, self.losses, self.model,
                                    settings, progress=False, preview_every=self.preview_every,
                                    callback=callback, should_stop=stop_event.is_set)
        except Exception as error:  # most often the student's loss function: show it, keep the panel alive
            self.error = error
            self._set_status(f"Run #{number} failed: {type(error).__name__}: {_esc(str(error))}", "error")
            with self._lock:
                self.progress.bar_style = "danger"
                self.run_button.disabled = False
                self.stop_button.disabled = True
            return
        if number in self._superseded and result.stopped_early:  # replaced by a newer run
            return
        run = PanelRun(number=number, content_name=names[0], style_name=names[1], settings=settings, result=result)
        self.runs.append(run)
        picture = _png(result.to_pil())
        plot = _loss_plot_svg({key: list(enumerate(values, 1)) for key, values in result.history.items()},
                              settings.num_steps)
        card = self._card(run)
        steps = len(result.history["total"])
        with self._lock:
            self.preview.value = picture
            self.loss_plot.value = plot
            self.progress.value = steps
            self.progress.bar_style = "warning" if result.stopped_early else "success"
            self.gallery.children = (card,) + tuple(self.gallery.children)
            self.run_button.disabled = False
            self.stop_button.disabled = True
        word = f"stopped at step {steps}" if result.stopped_early else "done"
        self._set_status(f"Run #{number} {word} in {result.seconds:.1f} s.", "ok")

    # ------------------------------------------------------------------ gallery
    def _card(self, run: PanelRun) -> widgets.VBox:
        image = widgets.Image(value=_png(run.result.to_pil(), 128), format="png",
                              layout=widgets.Layout(height="128px", width="auto", object_fit="contain",
                                                    align_self="flex-start"))
        save = widgets.Button(description="Save PNG", icon="save", tooltip="Save this result as a PNG file.",
                              layout=widgets.Layout(width="110px"))
        save.on_click(lambda button: self._on_save(run))
        return widgets.VBox([image, widgets.HTML(_describe(run)), save],
                            layout=widgets.Layout(margin="0 12px 12px 0", width="200px"))

    def _on_save(self, run: PanelRun) -> None:
        try:
            path = self.save(run)
        except (ValueError, OSError) as error:
            self._set_status(f"Not saved: {_esc(str(error))}", "error")
        else:
            self._set_status(f"Saved run #{run.number} as {_esc(str(path))}.", "ok")

    def save(self, run: PanelRun | int = -1, path: str | Path | None = None) -> Path:
        """Save a run's result as a PNG file, never overwriting an existing file.

        Args:
            run: a :class:`PanelRun` or an index into :attr:`runs` (default: the newest).
            path: where to save; ``None`` uses the "save as" box. Relative paths are taken inside
                ``save_dir``; a missing or other extension becomes ``.png``. If the file exists,
                ``-1``, ``-2``, ... is added to the name (:func:`cs231n_style.save_image`).

        Returns:
            The ``pathlib.Path`` written.

        Raises:
            ValueError: if there is no such run or the name is empty.
            OSError: if the file cannot be written.
        """
        if isinstance(run, int):
            if not self.runs:
                raise ValueError("Nothing to save yet: press Run first.")
            try:
                run = self.runs[run]
            except IndexError:
                raise ValueError(f"No run {run}: there are {len(self.runs)}.") from None
        name = str(self.save_path.value if path is None else path).strip()
        if not name:
            raise ValueError("Type a file name in 'save as' first.")
        target = Path(name).expanduser()
        if not target.is_absolute():
            target = self.save_dir / target
        if target.suffix.lower() != ".png":
            target = target.with_name(target.name + ".png") if target.suffix == "" else target.with_suffix(".png")
        return save_image(run.result.to_pil(), target, overwrite=False)


def style_transfer_panel(losses: LossFunctions, model: nn.Module, **options) -> StyleTransferPanel:
    """Return a :class:`StyleTransferPanel`; the last line of a cell shows it.

    Args:
        losses: the four loss functions (:class:`cs231n_style.LossFunctions`).
        model: the frozen SqueezeNet ``features`` from :func:`cs231n_style.load_squeezenet`.
        **options: passed to :class:`StyleTransferPanel` (``example``, ``settings``,
            ``save_dir``, ``preview_every``, ``preview_interval``).

    Returns:
        The panel.

    Raises:
        TypeError, KeyError, ValueError: as :class:`StyleTransferPanel`.
    """
    return StyleTransferPanel(losses, model, **options)
