"""The panel's controls: the sliders, buttons and dropdowns of a :class:`cs231n_style.TransferSettings`
(:class:`_SettingsControls`) and the image pickers (:class:`_ImagePickers`, each image an
:class:`_ImageChoice`). Part of :mod:`cs231n_style.widgets` (read its docstring first); the widgets
here only hold values, which the panel reads once when Run is pressed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping

import ipywidgets as widgets
from PIL import Image

from ._panel_display import _WIDE, _esc, _named, _png
from .backbones import BACKBONE_NAMES, find_backbone_weights, get_backbone
from .images import SAMPLE_IMAGES, image_from_bytes, load_image
from .settings import EXAMPLE_SETTINGS, TransferSettings
from .transfer import LossFunctions

_UPLOAD_PREFIX = "upload: "
#: Where the photorealism weight slider starts: notebook 06's weight, and the field's help's "about
#: 3000 with CS231n's weights at 128-192 px".
_PHOTOREALISM_WEIGHT = 3e3
_LOG_SLIDER_WIDTH = "620px"  # a weight slider's whole width: label 150 px, track ~400 px, the typed value's box


def _field(name: str) -> dataclasses.Field:
    """The :class:`cs231n_style.TransferSettings` field called ``name``."""
    return next(f for f in dataclasses.fields(TransferSettings) if f.name == name)


def _help(name: str) -> str:
    """The help text of a TransferSettings field (STYLE.md point 12: one source for all docs)."""
    return _field(name).metadata["help"]


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


def _leave_out(slider: widgets.FloatLogSlider) -> None:
    """Grey out the slider of a loss term whose function was not passed in, saying why."""
    slider.disabled = True
    slider.tooltip = slider.tooltip.rstrip(".") + " (its loss function was not passed in, so the term is left out)"


class _SettingsControls:
    """The widgets that set a :class:`cs231n_style.TransferSettings`: the weights, the image size,
    the number of steps, the starting image, the speed and the colour preservation; and above them
    a picker of the course's examples (and of the backbone, where another one's weights are on this
    machine), below them a box to tick for a re-run whenever a setting changes. With notebook 06's
    ``photorealism_loss`` passed in, a box and a slider for the photorealism regularization.

    Args:
        losses: the panel's loss functions: the sliders of a term whose function is ``None`` are
            greyed out (the photorealism controls are not shown), and :meth:`read` leaves that
            term out.
        on_change: ``on_change(change)``, called whenever one of the widgets' values changes
            (ipywidgets' ``observe`` callback); not for the backbone, whose change the panel handles.
        model_backbone: the name of the panel's model's backbone (:data:`cs231n_style.backbones.BACKBONE_NAMES`).
    """

    def __init__(self, losses: LossFunctions, on_change: Callable[[dict], None],
                 model_backbone: str = "squeezenet1_1"):
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
        # Notebook 06 (Luan et al., 2017): shown only when photorealism_loss is passed in.
        self.photorealism = _named(widgets.Checkbox(
            value=False, description="photorealism regularization (notebook 06)", tooltip=_help("photorealism_weight"),
            indent=False), "photorealism")
        self.photorealism_weight = _named(_slider("photorealism_weight", _PHOTOREALISM_WEIGHT), "photorealism_weight")
        for control in (self.photorealism, self.photorealism_weight):
            control.observe(on_change, names="value")
        photorealism = [self.photorealism, self.photorealism_weight] if self._has("photorealism_loss") else []
        # Issue #20: a backbone is offered where its weights are on this machine (or it is the model's own).
        self.backbone = _named(widgets.Dropdown(
            options=[(get_backbone(name).title, name) for name in BACKBONE_NAMES
                     if name == model_backbone or find_backbone_weights(name) is not None],
            value=model_backbone, description="backbone", tooltip=_help("backbone"), style=_WIDE,
            layout=widgets.Layout(width="440px")), "backbone")
        backbone = [self.backbone] if len(self.backbone.options) > 1 else []
        self.auto_run = _named(widgets.Checkbox(value=False, description="re-run when a setting changes",
                                                tooltip="Stop the current run and start again whenever you "
                                                        "release a slider or pick an image.", indent=False),
                               "auto_run")
        self.box = widgets.VBox([self.example, *backbone, self.content_weight, self.style_box, self.tv_weight,
                                 *photorealism, self.image_size, self.num_steps, self.init, self.speed,
                                 self.preserve_colors, self.auto_run])

    def show(self, settings: TransferSettings) -> None:
        """Set the widgets to ``settings``, with one style weight slider per style layer."""
        _set_slider(self.content_weight, settings.content_weight)
        _set_slider(self.tv_weight, settings.tv_weight)
        if settings.style_layers != self.style_layers:
            self.style_weights = [self._style_slider(layer, weight)
                                  for layer, weight in zip(settings.style_layers, settings.style_weights, strict=True)]
            self.style_box.children = tuple(self.style_weights)
            self.style_layers = settings.style_layers
        for slider, weight in zip(self.style_weights, settings.style_weights, strict=True):
            _set_slider(slider, weight)
        _set_slider(self.image_size, settings.image_size)
        _set_slider(self.num_steps, settings.num_steps)
        self.init.value = settings.init
        self.speed.value = settings.speed
        self.preserve_colors.value = settings.preserve_colors
        self.photorealism.value = settings.photorealism_weight > 0
        if settings.photorealism_weight > 0:
            _set_slider(self.photorealism_weight, settings.photorealism_weight)
        if settings.backbone in dict(self.backbone.options).values():
            self.backbone.value = settings.backbone

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
            photorealism_weight=float(self.photorealism_weight.value)
            if self.photorealism.value and self._has("photorealism_loss") else 0.0,
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
                picker.options = [*list(picker.options), label]
            self.set_status(f"Loaded {_esc(name)} ({image.width}x{image.height}) as the {choice.role} image.", "ok")
            choice.picker.value = label
        finally:
            choice.upload.value = ()  # lets the same file be picked again
