"""An ipywidgets panel to explore style transfer interactively, with the student's own losses.

Sliders set the content, per-layer style and total variation weights (on log scales, since
useful values span many powers of ten), the image size and the number of steps; a dropdown keeps
the photo's colours (Gatys et al., 2017, Sec. 5); pickers choose the content and style images
(bundled samples or an upload), and a second style image with a slider for its weight in the
blend (neural-style's style blending); Run starts the optimization of
:func:`cs231n_style.style_transfer` with the loss functions passed in, Stop ends it. A live
preview, a plot of the loss terms and a progress bar follow the run, and a gallery keeps every
finished run with its settings, side by side, each with a button to save it as a PNG file.

The panel is made of parts, each a small class in this module:

* :class:`_SettingsControls`: the sliders, buttons and dropdown of a
  :class:`cs231n_style.TransferSettings` (each slider's label, range and scale, each tooltip and
  each list of choices from the metadata of the field it sets) and the example picker;
* :class:`_ImagePickers`: the content and the style image, each an :class:`_ImageChoice` (a
  picker, an Upload button, a thumbnail), and the second style image with its blend slider;
* :class:`_RunDisplay`: Run, Stop, the progress bar, the status line, the preview and the loss
  plot (:func:`cs231n_style.plot_loss_history`, drawn to PNG);
* :class:`_Gallery`: the finished runs and their Save buttons;
* :class:`StyleTransferPanel`: lays the parts out and runs the optimization as a
  :class:`cs231n_style.background.BackgroundRun`, which knows nothing of widgets.

Threading: the optimization runs in a worker thread so the notebook stays responsive (the kernel
keeps handling button clicks, so Stop works). The widget values are read once, on the kernel's
thread when Run is pressed, into an immutable :class:`cs231n_style.TransferSettings`; the worker
never reads a widget, so moving a slider during a run cannot change or crash it. The worker only
*sets* the values of the output widgets (preview, loss plot, progress, status line, gallery, the
Run and Stop buttons; ipywidgets and ipykernel support this from other threads: IOPub, the channel
that carries them, is thread-safe), under one lock that the kernel's thread takes too when it sets
them, throttled to a few updates per second, and never prints nor uses an ``Output`` widget's
context manager (output from a thread lands in whichever cell is running at the time; ipywidgets'
docs advise against it).

Example::

    panel = style_transfer_panel(losses, model)   # losses: a LossFunctions, model: load_squeezenet()
    panel                                         # last line of a cell: shows the panel
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import io
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
from PIL import Image, ImageDraw
from torch import nn

from .background import BackgroundRun, RunProgress
from .images import SAMPLE_IMAGES, deprocess, image_from_bytes, load_image, save_image
from .plots import plot_loss_history
from .settings import EXAMPLE_SETTINGS, WEIGHTS_SIZE, TransferSettings
from .transfer import LossFunctions, TransferResult

__all__ = ["PanelRun", "StyleTransferPanel", "style_transfer_panel"]

_UPLOAD_PREFIX = "upload: "
_WIDE = {"description_width": "150px"}  # room for the longest label, "style weight, layer 7"
_LOG_SLIDER_WIDTH = "620px"  # a weight slider's whole width: label 150 px, track ~400 px, the typed value's box
_PLOT_INTERVAL = 1.0  # seconds between loss plot redraws during a run: matplotlib takes ~0.1 s each


def _esc(text: str) -> str:
    """Escape ``text`` for an HTML widget (quotes stay readable: they are not markup in text)."""
    return html.escape(text, quote=False)


def _field(name: str) -> dataclasses.Field:
    """The :class:`cs231n_style.TransferSettings` field called ``name``."""
    return next(f for f in dataclasses.fields(TransferSettings) if f.name == name)


def _help(name: str) -> str:
    """The help text of a TransferSettings field (STYLE.md point 12: one source for all docs)."""
    return _field(name).metadata["help"]


def _png(image: Image.Image, height: int | None = None) -> bytes:
    """Encode ``image`` as PNG bytes, scaled to ``height`` pixels high if given."""
    if height is not None and image.height != height:
        image = image.resize((max(1, round(image.width * height / image.height)), height), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _loss_plot_png(history: Mapping[str, Sequence[float]], steps: Sequence[int] | None = None,
                   num_steps: int | None = None) -> bytes:
    """Draw :func:`cs231n_style.plot_loss_history` as PNG bytes (360 x 216 pixels) for the panel.

    The figure is made without pyplot (matplotlib's Agg renderer draws it), so it belongs to the
    caller alone: the worker thread can draw it while the notebook draws its own figures. The
    arguments are ``plot_loss_history``'s; an empty history gives empty axes saying what will
    appear there.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3), dpi=72)
    ax = plot_loss_history(history, ax=figure.subplots(), steps=steps, num_steps=num_steps)
    if not ax.get_lines():
        ax.text(0.5, 0.5, "the loss terms appear here during a run", transform=ax.transAxes,
                ha="center", va="center", color="gray")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _placeholder_png(text: str, size: tuple[int, int] = (288, 192)) -> bytes:
    """A light grey PNG (``size`` = width, height) with ``text`` in its middle: what an image widget
    shows before there is an image (an empty one shows the browser's broken-image icon)."""
    picture = Image.new("RGB", size, (238, 238, 238))
    draw = ImageDraw.Draw(picture)
    left, top, right, bottom = draw.textbbox((0, 0), text)
    draw.text(((size[0] - right + left) / 2, (size[1] - bottom + top) / 2), text, fill=(120, 120, 120))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _slider(name: str, value: float | None = None, **label_fields) -> widgets.FloatLogSlider | widgets.IntSlider:
    """The slider of the TransferSettings field ``name``: its label, range and scale from the
    field's ``metadata["slider"]`` (a :class:`cs231n_style.transfer.Slider`), its tooltip the
    field's help; ``label_fields`` fill the label (``layer=4``).

    A log slider starts at ``value`` (default 1) and reaches ``decades`` powers of ten either side
    of it (of 0.001 if ``value`` is 0); a linear one goes from ``low`` to ``high`` (raised to
    ``value`` if needed) and starts at ``value`` (default ``low``).
    """
    spec = _field(name).metadata["slider"]
    look = {"description": spec.label.format(**label_fields), "tooltip": _help(name), "continuous_update": False,
            "style": _WIDE, "layout": widgets.Layout(width="440px")}
    if spec.scale == "log":  # a long track: a drag moves the weight by about 3x per 40 px, not 20x
        look["layout"] = widgets.Layout(width=_LOG_SLIDER_WIDTH)
        value = 1.0 if value is None else value
        center = math.log10(value) if value > 0 else -3.0
        return widgets.FloatLogSlider(
            value=value if value > 0 else 10 ** (center - spec.decades), base=10, step=spec.step,
            min=math.floor(center) - spec.decades, max=math.ceil(center) + spec.decades, readout_format=".3g", **look)
    value = spec.low if value is None else value
    return widgets.IntSlider(value=value, min=spec.low, max=max(spec.high, value), step=spec.step, **look)


def _set_slider(slider: widgets.FloatLogSlider | widgets.IntSlider, value: float) -> None:
    """Set a slider made by :func:`_slider` to ``value``, widening its range first if ``value``
    lies outside it (a log slider at 0 goes to its lowest end)."""
    if isinstance(slider, widgets.IntSlider):
        slider.max = max(slider.max, value)
    elif value > 0:
        exponent = math.log10(value)
        if exponent < slider.min:
            slider.min = math.floor(exponent) - 1
        if exponent > slider.max:
            slider.max = math.ceil(exponent) + 1
    else:
        value = slider.base ** slider.min
    slider.value = value


def _named(widget: widgets.DOMWidget, name: str) -> widgets.DOMWidget:
    """Give ``widget`` the CSS class ``cs231n-style-NAME`` (for styling and for browser tests) and return it."""
    widget.add_class("cs231n-style-" + name.replace("_", "-"))
    return widget


def _leave_out(slider: widgets.FloatLogSlider) -> None:
    """Grey out the slider of a loss term whose function was not passed in, saying why."""
    slider.disabled = True
    slider.tooltip = slider.tooltip.rstrip(".") + " (its loss function was not passed in, so the term is left out)"


@dataclass(frozen=True)
class PanelRun:
    """One finished (or stopped) run of a :class:`StyleTransferPanel`, as kept in its gallery.

    Attributes:
        number: 1 for the panel's first run, 2 for the next, ...
        content_name: the content image's label in the picker (a sample name or ``"upload: NAME"``).
        style_name: the style image's label in the picker; for a blend, with the second style image
            and its weight: ``"the_scream + dots (30%)"``.
        settings: the exact :class:`cs231n_style.TransferSettings` the run used.
        result: the :class:`cs231n_style.TransferResult` (image, loss history, time, stopped_early).
    """

    number: int
    content_name: str
    style_name: str
    settings: TransferSettings
    result: TransferResult


def _describe(run: PanelRun) -> str:
    """A short HTML summary of a run's settings and outcome, for its gallery card."""
    s, r = run.settings, run.result
    steps = len(r.history["total"])
    outcome = f"stopped at step {steps}/{s.total_steps}" if r.stopped_early else f"{steps} steps"
    final = r.history["total"][-1] if steps else float("nan")
    lines = [
        f"<b>#{run.number}</b> {_esc(run.content_name)} + {_esc(run.style_name)}",
        f"content weight {s.content_weight:.3g}",
        "style weights " + ", ".join(f"{w:.3g}" for w in s.style_weights),
        f"TV weight {s.tv_weight:.3g}",
        f"size {s.image_size}px" + (f" (weights for {s.weights_size}px)" if s.weights_size else "")
        + f", init {s.init}, speed {s.speed}, colours {s.preserve_colors}",
        f"{outcome} in {r.seconds:.1f} s, loss {final:.4g}",
    ]
    return "<div style='font-size:11px;line-height:1.3'>" + "<br>".join(lines) + "</div>"


class _SettingsControls:
    """The widgets that set a :class:`cs231n_style.TransferSettings`: the weights, the image size,
    the number of steps, the starting image, the speed and the colour preservation; and above them
    a picker of the course's examples, below them a box to tick for a re-run whenever a setting
    changes.

    Args:
        losses: the panel's loss functions: the sliders of a term whose function is ``None`` are
            greyed out, and :meth:`read` leaves that term out.
        on_change: ``on_change(change)``, called whenever one of the widgets' values changes
            (ipywidgets' ``observe`` callback).
    """

    def __init__(self, losses: LossFunctions, on_change: Callable[[dict], None]):
        self.losses = losses
        self.on_change = on_change
        self.style_layers: tuple[int, ...] = ()  # the layers of the sliders in style_weights
        self.example = widgets.Dropdown(options=list(EXAMPLE_SETTINGS), value=None, description="example",
                                        tooltip="Load the images and weights of one of CS231n's example runs.",
                                        style=_WIDE, layout=widgets.Layout(width="440px"))
        self.content_weight = _named(_slider("content_weight"), "content_weight")
        self.style_weights: list[widgets.FloatLogSlider] = []  # one per style layer; see show()
        self.style_box = widgets.VBox()
        self.tv_weight = _named(_slider("tv_weight"), "tv_weight")
        self.image_size = _named(_slider("image_size"), "image_size")
        self.num_steps = _named(_slider("num_steps"), "num_steps")
        self.init = _named(widgets.ToggleButtons(options=list(_field("init").metadata["choices"]),
                                                 description="start from", tooltip=_help("init"),
                                                 style={**_WIDE, "button_width": "90px"}), "init")
        self.speed = _named(widgets.Dropdown(options=list(_field("speed").metadata["choices"]), description="speed",
                                             tooltip=_help("speed"), style=_WIDE, layout=widgets.Layout(width="440px")),
                            "speed")
        self.preserve_colors = _named(widgets.Dropdown(
            options=list(_field("preserve_colors").metadata["choices"]), description="keep colours",
            tooltip=_help("preserve_colors"), style=_WIDE, layout=widgets.Layout(width="440px")), "preserve_colors")
        for control in (self.content_weight, self.tv_weight, self.image_size, self.num_steps, self.init, self.speed,
                        self.preserve_colors):
            control.observe(on_change, names="value")
        for slider, functions in ((self.content_weight, ("content_loss",)), (self.tv_weight, ("tv_loss",))):
            if not self._has(*functions):
                _leave_out(slider)
        self.auto_run = _named(widgets.Checkbox(value=False, description="re-run when a setting changes",
                                                tooltip="Stop the current run and start again whenever you "
                                                        "release a slider or pick an image.", indent=False),
                               "auto_run")
        self.box = widgets.VBox([self.example, self.content_weight, self.style_box, self.tv_weight,
                                 self.image_size, self.num_steps, self.init, self.speed, self.preserve_colors,
                                 self.auto_run])

    def show(self, settings: TransferSettings) -> None:
        """Set the widgets to ``settings``, with one style weight slider per style layer."""
        _set_slider(self.content_weight, settings.content_weight)
        _set_slider(self.tv_weight, settings.tv_weight)
        if settings.style_layers != self.style_layers:
            self.style_weights = [self._style_slider(layer, weight)
                                  for layer, weight in zip(settings.style_layers, settings.style_weights)]
            self.style_box.children = tuple(self.style_weights)
            self.style_layers = settings.style_layers
        for slider, weight in zip(self.style_weights, settings.style_weights):
            _set_slider(slider, weight)
        _set_slider(self.image_size, settings.image_size)
        _set_slider(self.num_steps, settings.num_steps)
        self.init.value = settings.init
        self.speed.value = settings.speed
        self.preserve_colors.value = settings.preserve_colors

    def read(self, base: TransferSettings) -> TransferSettings:
        """``base`` with the widgets' values; a term whose loss function is missing is left out
        (weight 0 for content and TV, no style layers for style).

        Raises:
            ValueError: if the combination is invalid (``TransferSettings`` says why).
        """
        use_style = self._has("gram_matrix", "style_loss")
        return base.replace(
            content_weight=float(self.content_weight.value) if self._has("content_loss") else 0.0,
            style_layers=self.style_layers if use_style else (),
            style_weights=tuple(float(s.value) for s in self.style_weights) if use_style else (),
            tv_weight=float(self.tv_weight.value) if self._has("tv_loss") else 0.0,
            image_size=int(self.image_size.value),
            num_steps=int(self.num_steps.value),
            init=str(self.init.value),
            speed=str(self.speed.value),
            preserve_colors=str(self.preserve_colors.value),
        )

    def _style_slider(self, layer: int, weight: float) -> widgets.FloatLogSlider:
        slider = _named(_slider("style_weights", weight, layer=layer), "style_weight")
        slider.observe(self.on_change, names="value")
        if not self._has("gram_matrix", "style_loss"):
            _leave_out(slider)
        return slider

    def _has(self, *names: str) -> bool:
        """Whether ``losses`` holds all the named functions (a ``LossFunctions`` may leave some out)."""
        return all(getattr(self.losses, name, None) is not None for name in names)


def _picked_image(name: str, uploads: Mapping[str, Image.Image]) -> Image.Image:
    """The image a picker's ``name`` stands for: an upload, or a sample (loaded as RGB)."""
    return uploads[name] if name in uploads else load_image(SAMPLE_IMAGES[name])


#: The second-style picker's choice for "no second style image".
_NO_SECOND_STYLE = "none"


class _ImageChoice:
    """One image of a run, content or style: a picker of samples and uploads, an Upload button
    and a thumbnail.

    Args:
        role: ``"content"`` or ``"style"``, for the labels.
        name: the sample picked first, a key of :data:`cs231n_style.SAMPLE_IMAGES`.
        uploads: the uploaded images by their label in the pickers; one dict shared by the content
            and the style choice, so that an upload can be either image.
    """

    def __init__(self, role: str, name: str, uploads: dict[str, Image.Image]):
        self.role = role
        self.uploads = uploads
        self.picker = _named(widgets.Dropdown(options=list(SAMPLE_IMAGES), value=name, description=f"{role} image",
                                              tooltip="A bundled sample, or your own picture after Upload.",
                                              style=_WIDE), f"{role}_picker")
        self.upload = _named(widgets.FileUpload(accept="image/*", multiple=False, description="Upload",
                                                tooltip=f"Use your own {role} image (PNG, JPEG, ...)."),
                             f"{role}_upload")
        self.thumbnail = widgets.Image(format="png", layout=widgets.Layout(
            height="96px", width="auto", object_fit="contain", align_self="flex-start"))
        self.box = widgets.VBox([widgets.HBox([self.picker, self.upload]), self.thumbnail])

    def image(self) -> Image.Image:
        """The picked image as an RGB ``PIL.Image`` (raises what :func:`cs231n_style.load_image` raises)."""
        return _picked_image(self.picker.value, self.uploads)

    def keep_upload(self, name: str, image: Image.Image) -> str:
        """Keep an uploaded image among the uploads; return its new label, ``"upload: NAME"``
        (``"upload: NAME (2)"``, ... if that is taken: a second upload of a name keeps the first)."""
        label, number = _UPLOAD_PREFIX + name, 1
        while label in self.uploads:
            number += 1
            label = f"{_UPLOAD_PREFIX}{name} ({number})"
        self.uploads[label] = image
        return label

    def refresh_thumbnail(self) -> None:
        """Show the picked image in the thumbnail (raises what :meth:`image` raises)."""
        self.thumbnail.value = _png(self.image(), 96)


class _ImagePickers:
    """The content and the style image of a run, each an :class:`_ImageChoice`, and a second style
    image (``"none"``, a sample or an upload) blended with the first: a slider sets its weight in
    the blend, 0 to 1, the first style taking the rest (the weighted sum of their Gram matrices,
    as neural-style's ``-style_blend_weights``). Picking an image shows its thumbnail; an upload is
    decoded (:func:`cs231n_style.image_from_bytes`) and joins every picker, so that it can be any
    of the images.

    Args:
        content_name: the content sample picked first, a key of :data:`cs231n_style.SAMPLE_IMAGES`.
        style_name: the style sample picked first.
        set_status: ``set_status(message, kind)``, to say in the panel's status line what an
            upload gave (``kind``: ``"ok"`` or ``"error"``).
        on_change: ``on_change(None)``, called after an image is picked or uploaded.
    """

    def __init__(self, content_name: str, style_name: str, set_status: Callable[[str, str], None],
                 on_change: Callable[[None], None]):
        self.set_status, self.on_change = set_status, on_change
        uploads: dict[str, Image.Image] = {}
        self.content = _ImageChoice("content", content_name, uploads)
        self.style = _ImageChoice("style", style_name, uploads)
        for choice in (self.content, self.style):
            choice.picker.observe(functools.partial(self._on_pick, choice), names="value")
            choice.upload.observe(functools.partial(self._on_upload, choice), names="value")
            self.refresh_thumbnail(choice)
        self.second_style = _named(widgets.Dropdown(
            options=[_NO_SECOND_STYLE, *SAMPLE_IMAGES], value=_NO_SECOND_STYLE, description="second style",
            tooltip="A second style image blended with the first, or none.", style=_WIDE), "second_style")
        self.blend = _named(widgets.FloatSlider(
            value=0.5, min=0.0, max=1.0, step=0.05, description="its weight", disabled=True, continuous_update=False,
            tooltip="The second style image's weight in the blend (the first gets the rest): "
                    + _help("style_blend_weights"), style=_WIDE, layout=widgets.Layout(width="440px")), "blend")
        self.second_style.observe(self._on_second_style, names="value")
        self.blend.observe(on_change, names="value")
        self.box = widgets.VBox([widgets.HBox([self.content.box, self.style.box]),
                                 widgets.HBox([self.second_style, self.blend])])

    def styles(self) -> Image.Image | list[Image.Image]:
        """The style image of a run: the picked one, or ``[it, the second]`` to blend (raises what
        :func:`cs231n_style.load_image` raises)."""
        first = self.style.image()
        if self.second_style.value == _NO_SECOND_STYLE:
            return first
        return [first, _picked_image(self.second_style.value, self.style.uploads)]

    def blend_weights(self) -> tuple[float, ...]:
        """``TransferSettings.style_blend_weights`` of a run: ``()`` for one style image, else
        ``(1 - w, w)`` with ``w`` the slider's weight of the second."""
        if self.second_style.value == _NO_SECOND_STYLE:
            return ()
        return (1.0 - float(self.blend.value), float(self.blend.value))

    def style_label(self) -> str:
        """The style image(s) as the gallery names them: ``"the_scream"``, ``"the_scream + dots (30%)"``."""
        if self.second_style.value == _NO_SECOND_STYLE:
            return str(self.style.picker.value)
        return f"{self.style.picker.value} + {self.second_style.value} ({self.blend.value:.0%})"

    def _on_second_style(self, change: dict) -> None:
        self.blend.disabled = change["new"] == _NO_SECOND_STYLE
        self.on_change(None)

    def refresh_thumbnail(self, choice: _ImageChoice) -> None:
        """Show ``choice``'s image in its thumbnail, or say in the status line why it cannot be read."""
        try:
            choice.refresh_thumbnail()
        except (OSError, ValueError) as error:
            self.set_status(f"Cannot read the {choice.role} image: {_esc(str(error))}", "error")

    def _on_pick(self, choice: _ImageChoice, change: dict) -> None:
        self.refresh_thumbnail(choice)
        self.on_change(None)

    def _on_upload(self, choice: _ImageChoice, change: dict) -> None:
        files = change["new"]
        if not files:  # the reset below, or an empty selection
            return
        name = str(files[0].get("name", "upload"))
        try:
            image = image_from_bytes(bytes(files[0]["content"]), name)
        except ValueError as error:
            self.set_status(_esc(str(error)), "error")
        else:
            label = choice.keep_upload(name, image)
            for picker in (self.content.picker, self.style.picker, self.second_style):
                picker.options = list(picker.options) + [label]
            self.set_status(f"Loaded {_esc(name)} ({image.width}x{image.height}) as the {choice.role} image.", "ok")
            choice.picker.value = label
        finally:
            choice.upload.value = ()  # lets the same file be picked again


class _Gallery:
    """The finished runs, newest first, each a card with its image, its settings and a Save button.

    Args:
        save_dir: the folder that relative "save as" names are taken in.
        set_status: ``set_status(message, kind)``, to say in the panel's status line what a Save
            button did (``kind``: ``"ok"`` or ``"error"``).
    """

    def __init__(self, save_dir: Path, set_status: Callable[[str, str], None]):
        self.save_dir = save_dir
        self.set_status = set_status
        self.runs: list[PanelRun] = []
        self.save_path = _named(widgets.Text(value="style_transfer.png", description="save as",
                                             tooltip="File name for the Save buttons in the gallery; relative "
                                                     f"names go to {str(save_dir)!r}. An existing file is "
                                                     "never overwritten: -1, -2, ... is added to the name.",
                                             style={"description_width": "60px"}), "save_path")
        self.cards = _named(widgets.HBox(layout=widgets.Layout(flex_flow="row wrap")), "gallery")
        self.box = widgets.VBox([widgets.HTML("<b>gallery</b> (earlier runs, newest first)"), self.save_path,
                                 self.cards])

    def add(self, run: PanelRun) -> None:
        """Keep ``run`` and show its card first."""
        self.runs.append(run)
        self.cards.children = (self._card(run),) + tuple(self.cards.children)

    def save(self, run: PanelRun | int = -1, path: str | Path | None = None) -> Path:
        """Save a run's result as a PNG file: see :meth:`StyleTransferPanel.save`."""
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
            self.set_status(f"Not saved: {_esc(str(error))}", "error")
        else:
            self.set_status(f"Saved run #{run.number} as {_esc(str(path))}.", "ok")


class _RunDisplay:
    """What a run shows: the Run and Stop buttons, the progress bar, the status line, the preview
    and the loss plot.

    The kernel's thread and the worker thread both call its methods; each sets its widgets under
    :attr:`lock`, so that one update is not interleaved with another.

    Args:
        num_steps: the x axis of the first, empty loss plot spans 0 to this.
    """

    def __init__(self, num_steps: int):
        self.lock = threading.RLock()
        self.run_button = _named(widgets.Button(description="Run", button_style="success", icon="play",
                                                tooltip="Start style transfer with these settings."), "run_button")
        self.stop_button = _named(widgets.Button(description="Stop", button_style="danger", icon="stop",
                                                 tooltip="End the run now; the image so far goes to the gallery.",
                                                 disabled=True), "stop_button")
        self.progress = _named(widgets.IntProgress(value=0, min=0, max=1, description="progress", style=_WIDE,
                                                   layout=widgets.Layout(width="440px")), "progress")
        self.status = _named(widgets.HTML(value="Ready: press Run."), "status")
        self.preview = _named(widgets.Image(value=_placeholder_png("the result appears here during a run"),
                                            format="png", layout=widgets.Layout(max_width="420px")), "preview")
        self.loss_plot = _named(widgets.Image(value=_loss_plot_png({}, num_steps=num_steps), format="png",
                                              layout=widgets.Layout(width="360px")), "loss_plot")
        self.controls = widgets.VBox([widgets.HBox([self.run_button, self.stop_button]), self.progress,
                                      self.status])
        self.outputs = widgets.VBox([widgets.HTML("<b>preview</b>"), self.preview,
                                     widgets.HTML("<b>loss terms</b>"), self.loss_plot])
        self._plotted_at = -math.inf  # when the current run's loss plot was last drawn, in its seconds

    def set_status(self, message: str, kind: str = "info") -> None:
        """Show ``message`` (HTML) in the status line; ``kind``: ``"info"``, ``"ok"`` or ``"error"``."""
        color = {"info": "inherit", "ok": "#2e7d32", "error": "#c62828"}[kind]
        with self.lock:
            self.status.value = f"<span style='color:{color}'>{message}</span>"

    def show_start(self, number: int, settings: TransferSettings) -> None:
        """Reset the progress bar and the buttons for run ``number``."""
        self._plotted_at = -math.inf
        with self.lock:
            self.progress.max = max(1, settings.total_steps)
            self.progress.value = 0
            self.progress.bar_style = ""
            self.run_button.disabled = True
            self.stop_button.disabled = False
        self.set_status(f"Run #{number} started: {settings.total_steps} steps at {settings.image_size}px.")

    def show_progress(self, number: int, progress: RunProgress) -> None:
        """Show a running run's image, loss terms (the plot at most once a second) and step."""
        picture = _png(deprocess(progress.image))
        plot = None
        if progress.seconds - self._plotted_at >= _PLOT_INTERVAL:
            self._plotted_at = progress.seconds
            plot = _loss_plot_png(progress.history, progress.steps, progress.num_steps)
        losses = progress.losses
        with self.lock:
            self.preview.value = picture
            if plot is not None:
                self.loss_plot.value = plot
            self.progress.value = progress.step
            self.status.value = (f"Run #{number}: step {progress.step}/{progress.num_steps}, "
                                 f"{progress.seconds:.1f} s; content {losses['content']:.3g}, "
                                 f"style {losses['style']:.3g}, TV {losses['tv']:.3g}")

    def show_failure(self, number: int, error: BaseException) -> None:
        """Say why run ``number`` failed, and make Run available again."""
        self.set_status(f"Run #{number} failed: {type(error).__name__}: {_esc(str(error))}", "error")
        with self.lock:
            self.progress.bar_style = "danger"
            self.run_button.disabled = False
            self.stop_button.disabled = True

    def show_result(self, run: PanelRun) -> None:
        """Show a finished (or stopped) run's image and loss plot, and make Run available again."""
        result = run.result
        picture = _png(result.to_pil())
        plot = _loss_plot_png(result.history, num_steps=result.settings.total_steps)
        steps = len(result.history["total"])
        with self.lock:
            self.preview.value = picture
            self.loss_plot.value = plot
            self.progress.value = steps
            self.progress.bar_style = "warning" if result.stopped_early else "success"
            self.run_button.disabled = False
            self.stop_button.disabled = True
        word = f"stopped at step {steps}" if result.stopped_early else "done"
        self.set_status(f"Run #{run.number} {word} in {result.seconds:.1f} s.", "ok")


class StyleTransferPanel:
    """Sliders, image pickers, Run/Stop, live preview, loss plot, progress and a gallery of runs.

    Show it by making it the last expression of a cell, or with ``display(panel)`` /
    ``display(panel.widget)``. The widgets are attributes (``content_weight``, ``style_weights``,
    ``tv_weight``, ``image_size``, ``num_steps``, ``init``, ``speed``, ``preserve_colors``,
    ``example``, ``auto_run``, ``content_picker``, ``style_picker``, ``second_style``, ``blend``,
    ``content_upload``, ``style_upload``, ``run_button``,
    ``stop_button``, ``preview``, ``loss_plot``, ``progress``, ``status``, ``gallery``,
    ``save_path``), so a notebook or a test can drive it from Python: set values, then
    ``panel.run_button.click()`` and ``panel.wait()``.

    Args:
        losses: the four loss functions to optimize with (:class:`cs231n_style.LossFunctions`).
        model: the frozen SqueezeNet ``features`` from :func:`cs231n_style.load_squeezenet`; the
            run happens on its device.
        example: a key of :data:`cs231n_style.EXAMPLE_SETTINGS` whose content image, style image
            and settings the panel starts with (default: the first, ``"astronaut_composition_vii"``),
            with size-aware weights (``weights_size=192``: the image size slider changes the size,
            not how stylized the result looks).
        settings: if given, the starting settings instead of the example's, as they are
            (``weights_size`` included); fields without a widget (style size, layers, optimizer,
            learning rates, seed, ``weights_size``, ...) are always taken from here (or from the
            example chosen in the panel's example picker, which keeps the current ``weights_size``).
        save_dir: folder that relative "save as" paths are resolved in (default: ``"outputs"``).
        preview_every: call back every this many steps; ``None`` picks 1 on the CPU (the
            callback is cheap there) and 5 on a GPU (each callback waits for the GPU).
        preview_interval: at most one preview image per this many seconds (so a fast GPU does
            not flood the browser); the loss plot is redrawn at most once a second.

    Raises:
        TypeError: if ``losses`` is not a :class:`cs231n_style.LossFunctions` or ``model`` is not
            an ``nn.Module``.
        KeyError: if ``example`` is not a key of ``EXAMPLE_SETTINGS``.
        ValueError: if ``preview_every`` < 1 or ``preview_interval`` < 0.

    Source: ipywidgets 8; runs: :class:`.background.BackgroundRun`; plot: :func:`.plot_loss_history`.
    """

    def __init__(self, losses: LossFunctions, model: nn.Module, *, example: str = "astronaut_composition_vii",
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
        self.losses, self.model, self.save_dir = losses, model, Path(save_dir)
        self.preview_every = preview_every or (1 if next(model.parameters()).device.type == "cpu" else 5)
        self.preview_interval = float(preview_interval)
        content_name, style_name, example_settings = EXAMPLE_SETTINGS[example]
        self.base_settings: TransferSettings = (settings if settings is not None
                                                else example_settings.replace(weights_size=WEIGHTS_SIZE))
        self.error: BaseException | None = None  # what ended the latest run, if it failed

        self._quiet_depth = 0  # > 0 while the panel itself sets widgets: no auto re-run
        self._run: BackgroundRun | None = None
        self._run_count = 0
        self._superseded: set[int] = set()  # numbers of runs stopped by a restart: no gallery card
        self._display = _RunDisplay(self.base_settings.num_steps)
        self._images = _ImagePickers(content_name, style_name, self._display.set_status, self._on_setting_change)
        self._controls = _SettingsControls(losses, self._on_setting_change)
        self._gallery = _Gallery(self.save_dir, self._display.set_status)
        self.runs: list[PanelRun] = self._gallery.runs  # every finished run, oldest first
        self._name_widgets()
        # The images on top; the settings and Run | the preview and the loss plot; the gallery below.
        settings = widgets.VBox([self._controls.box, self._display.controls])
        self.widget = widgets.VBox([self._images.box, widgets.HBox([settings, self._display.outputs]),
                                    self._gallery.box])
        self.widget.add_class("cs231n-style-panel")  # each part names its widgets: "cs231n-style-preview", ...
        self.example.observe(self._on_example, names="value")
        self.run_button.on_click(lambda button: self.run(restart=bool(self.auto_run.value)))
        self.stop_button.on_click(lambda button: self.stop())
        with self._quiet():
            self._controls.show(self.base_settings)

    # ------------------------------------------------------------------ widgets
    def _name_widgets(self) -> None:
        """Name the parts' widgets as the panel's attributes, for code that drives the panel."""
        controls, display = self._controls, self._display
        self.example, self.auto_run = controls.example, controls.auto_run
        self.content_weight, self.tv_weight = controls.content_weight, controls.tv_weight
        self.image_size, self.num_steps, self.init = controls.image_size, controls.num_steps, controls.init
        self.speed, self.preserve_colors = controls.speed, controls.preserve_colors
        self.second_style, self.blend = self._images.second_style, self._images.blend
        content, style = self._images.content, self._images.style
        self.content_picker, self.content_upload = content.picker, content.upload
        self.style_picker, self.style_upload = style.picker, style.upload
        self.content_thumbnail, self.style_thumbnail = content.thumbnail, style.thumbnail
        self.run_button, self.stop_button = display.run_button, display.stop_button
        self.progress, self.status = display.progress, display.status
        self.preview, self.loss_plot = display.preview, display.loss_plot
        self.gallery, self.save_path = self._gallery.cards, self._gallery.save_path

    @property
    def style_weights(self) -> list[widgets.FloatLogSlider]:
        """The style weight sliders, one per style layer (new ones when the layers change)."""
        return self._controls.style_weights

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # -------------------------------------------------------- settings <-> widgets
    def current_settings(self) -> TransferSettings:
        """Read the widgets into a new, immutable :class:`cs231n_style.TransferSettings`.

        Fields without a widget come from the base settings (the constructor's, or the example
        last picked in the panel); ``style_blend_weights`` from the second style and its slider.
        A term whose loss function is ``None`` in ``losses`` (not written yet) is left out: weight
        0 for content and TV, no style layers for style.

        Returns:
            A ``TransferSettings``.

        Raises:
            ValueError: if the combination is invalid (``TransferSettings`` says why).
        """
        settings = self._controls.read(self.base_settings)
        return settings.replace(style_blend_weights=self._images.blend_weights() if settings.style_layers else ())

    @contextlib.contextmanager
    def _quiet(self):
        """While inside, setting changes made by the panel itself do not trigger an auto re-run."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    # -------------------------------------------------------------- event handlers
    def _on_example(self, change) -> None:
        if change["new"] is None:
            return
        content_name, style_name, settings = EXAMPLE_SETTINGS[change["new"]]
        unknown = [name for name in (content_name, style_name) if name not in self.content_picker.options]
        if unknown:
            self._display.set_status(f"Example {_esc(change['new'])} needs the images {_esc(', '.join(unknown))}, "
                                     "which are not among the samples.", "error")
            return
        self.base_settings = settings.replace(weights_size=self.base_settings.weights_size)
        with self._quiet():
            self._controls.show(settings)
            self.content_picker.value = content_name
            self.style_picker.value = style_name
            self.second_style.value = _NO_SECOND_STYLE
        self._on_setting_change(None)

    def _on_setting_change(self, change) -> None:
        if self._quiet_depth or not self.auto_run.value:
            return
        self.run(restart=True)

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        """``True`` while a run's worker thread is alive."""
        return self._run is not None and self._run.running

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
        if self.running and not self._end_run_for_restart(restart):
            return False
        try:
            settings = self.current_settings()
            content, style = self._images.content.image(), self._images.styles()
        except (ValueError, OSError) as error:
            self._display.set_status(_esc(str(error)), "error")
            return False
        self._run_count += 1
        number, names = self._run_count, (str(self.content_picker.value), self._images.style_label())
        self.error = None
        self._display.show_start(number, settings)
        self._run = BackgroundRun(
            content, style if settings.style_layers else None, self.losses, self.model, settings,
            preview_every=self.preview_every, interval=self.preview_interval,
            on_progress=lambda progress: self._display.show_progress(number, progress),
            on_finish=lambda run: self._finish(number, names, run)).start()
        return True

    def _end_run_for_restart(self, restart: bool) -> bool:
        """Stop the current run if ``restart`` (it leaves no gallery card); ``True`` once it has ended."""
        if not restart:
            self._display.set_status("A run is going on: press Stop first.", "error")
            return False
        self._superseded.add(self._run_count)
        self._run.stop()
        if not self._run.wait(timeout=5.0):
            self._display.set_status("The previous run did not stop in time; press Run again.", "error")
            return False
        return True

    def _finish(self, number: int, names: tuple[str, str], run: BackgroundRun) -> None:
        """In the worker thread, as a run ends: show its error, or its result and gallery card."""
        if run.error is not None:  # most often the student's loss function: show it, keep the panel alive
            self.error = run.error
            self._display.show_failure(number, run.error)
        elif not (number in self._superseded and run.result.stopped_early):  # else replaced by a newer run
            finished = PanelRun(number, names[0], names[1], run.settings, run.result)
            with self._display.lock:
                self._gallery.add(finished)
            self._display.show_result(finished)

    def stop(self) -> None:
        """End the current run at its next step (within one step's time); no-op when idle."""
        if self._run is not None:
            self._run.stop()

    def wait(self, timeout: float | None = None) -> PanelRun | None:
        """Block until the current run ends (call from code, not from a widget callback).

        Args:
            timeout: seconds to wait at most, or ``None`` for no limit.

        Returns:
            The newest :class:`PanelRun`, or ``None`` if there is none.

        Raises:
            TimeoutError: if the run is still going after ``timeout`` seconds.
        """
        if self._run is not None and not self._run.wait(timeout):
            raise TimeoutError(f"The run was still going after {timeout} s.")
        return self.runs[-1] if self.runs else None

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
        return self._gallery.save(run, path)


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

    Source: as :class:`StyleTransferPanel`.
    """
    return StyleTransferPanel(losses, model, **options)
