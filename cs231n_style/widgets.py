"""An ipywidgets panel to explore style transfer interactively, with the student's own losses.

Sliders set the content, per-layer style and total variation weights (on log scales, since
useful values span many powers of ten), the image size and the number of steps; a dropdown keeps
the photo's colours (Gatys et al., 2017, Sec. 5); pickers choose the content and style images
(bundled samples or an upload), and a second style image with a slider for its weight in the
blend (neural-style's style blending); Run starts the optimization of
:func:`cs231n_style.style_transfer` with the loss functions passed in, Stop ends it. A live
preview, a plot of the loss terms and a progress bar follow the run, and a gallery keeps every
finished run with its settings, side by side, each with a button to save it as a PNG file.

The panel is made of parts, each a small class (the controls in :mod:`cs231n_style._panel_controls`,
what a run shows in :mod:`cs231n_style._panel_display`):

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
from pathlib import Path

import ipywidgets as widgets
from torch import nn

from ._panel_controls import _NO_SECOND_STYLE, _ImagePickers, _SettingsControls
from ._panel_display import PanelRun, _esc, _Gallery, _RunDisplay
from .backbones import backbone_of, load_backbone
from .background import BackgroundRun
from .settings import EXAMPLE_SETTINGS, WEIGHTS_SIZE, TransferSettings
from .transfer import LossFunctions

__all__ = ["PanelRun", "StyleTransferPanel", "style_transfer_panel"]


class StyleTransferPanel:
    """Sliders, image pickers, Run/Stop, live preview, loss plot, progress and a gallery of runs.

    Show it by making it the last expression of a cell, or with ``display(panel)`` /
    ``display(panel.widget)``. The widgets are attributes (``content_weight``, ``style_weights``,
    ``tv_weight``, ``image_size``, ``num_steps``, ``init``, ``speed``, ``preserve_colors``,
    ``photorealism``, ``photorealism_weight``, ``backbone``, ``example``, ``auto_run``,
    ``content_picker``, ``style_picker``, ``second_style``, ``blend``, ``content_upload``,
    ``style_upload``, ``run_button``,
    ``stop_button``, ``preview``, ``loss_plot``, ``progress``, ``status``, ``gallery``,
    ``save_path``), so a notebook or a test can drive it from Python: set values, then
    ``panel.run_button.click()`` and ``panel.wait()``.

    Args:
        losses: the loss functions to optimize with (:class:`cs231n_style.LossFunctions`): the four
            of notebooks 01-03; with notebook 06's ``photorealism_loss`` the panel shows a box and a
            slider for the photorealism regularization (Luan et al., 2017), off until ticked.
        model: the frozen SqueezeNet ``features`` from :func:`cs231n_style.load_squeezenet` (or a
            backbone from :func:`cs231n_style.backbones.load_backbone`); the run happens on its device.
            A ``backbone`` dropdown appears where another backbone's weights are on this machine
            (:func:`cs231n_style.backbones.find_backbone_weights`, issue #20); picking one loads it
            once, on the model's device, and starts from its default layers and weights.
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

    def __init__(self, losses: LossFunctions, model: nn.Sequential, *, example: str = "astronaut_composition_vii",
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
        known = backbone_of(model)  # None for another network (a test's small one): the settings' backbone
        model_backbone = known.name if known is not None else self.base_settings.backbone
        self._models = {model_backbone: model}  # a model per backbone, others loaded on first use
        self._controls = _SettingsControls(losses, self._on_setting_change, model_backbone)
        self._gallery = _Gallery(self.save_dir, self._display.set_status)
        self.runs: list[PanelRun] = self._gallery.runs  # every finished run, oldest first
        self._name_widgets()
        # The images on top; the settings and Run | the preview and the loss plot; the gallery below.
        settings = widgets.VBox([self._controls.box, self._display.controls])
        self.widget = widgets.VBox([self._images.box, widgets.HBox([settings, self._display.outputs]),
                                    self._gallery.box])
        self.widget.add_class("cs231n-style-panel")  # each part names its widgets: "cs231n-style-preview", ...
        self.example.observe(self._on_example, names="value")
        self.backbone.observe(self._on_backbone, names="value")
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
        self.backbone = controls.backbone
        self.photorealism, self.photorealism_weight = controls.photorealism, controls.photorealism_weight
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

    def _on_backbone(self, change) -> None:
        """Another backbone: its default layers and weights (``TransferSettings.for_backbone``), the
        images, size, steps and the rest as they are."""
        if change["new"] == self.base_settings.backbone:
            return
        keep = ("image_size", "style_size", "num_steps", "init", "speed", "preserve_colors", "weights_size",
                "photorealism_weight", "seed")
        kept = {name: getattr(self.current_settings(), name) for name in keep}
        self.base_settings = TransferSettings.for_backbone(change["new"], **kept)
        with self._quiet():
            self._controls.show(self.base_settings)
        self._on_setting_change(None)

    def _model_for(self, backbone: str) -> nn.Sequential:
        """The panel's model for ``backbone``: the one passed in, or one loaded (once) from the weights
        the backbone dropdown found (:func:`cs231n_style.backbones.load_backbone`)."""
        if backbone not in self._models:
            self._display.set_status(f"Loading the {_esc(backbone)} weights ...")
            device = next(self.model.parameters()).device
            self._models[backbone] = load_backbone(backbone).to(device)
        return self._models[backbone]

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
            model = self._model_for(settings.backbone)
        except (ValueError, OSError, RuntimeError) as error:
            self._display.set_status(_esc(str(error)), "error")
            return False
        self._run_count += 1
        number, names = self._run_count, (str(self.content_picker.value), self._images.style_label())
        self.error = None
        self._display.show_start(number, settings)
        self._run = BackgroundRun(
            content, style if settings.style_layers else None, self.losses, model, settings,
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
        run = self._run
        if run is None:
            return True
        run.stop()
        if not run.wait(timeout=5.0):
            self._display.set_status("The previous run did not stop in time; press Run again.", "error")
            return False
        return True

    def _finish(self, number: int, names: tuple[str, str], run: BackgroundRun) -> None:
        """In the worker thread, as a run ends: show its error, or its result and gallery card."""
        if run.error is not None:  # most often the student's loss function: show it, keep the panel alive
            self.error = run.error
            self._display.show_failure(number, run.error)
        elif run.result is not None and not (number in self._superseded and run.result.stopped_early):
            # (a stopped run that a newer one replaced leaves no card)
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


def style_transfer_panel(losses: LossFunctions, model: nn.Sequential, **options) -> StyleTransferPanel:
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
