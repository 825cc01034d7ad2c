"""What the panel shows of its runs: the Run and Stop buttons, the progress bar, the status line,
the preview and the loss plot (:class:`_RunDisplay`), and the gallery of finished runs
(:class:`_Gallery`, one :class:`PanelRun` per card). Part of :mod:`cs231n_style.widgets` (read its
docstring first, for the threading rules these classes follow). The small helpers the two share
(:func:`_esc`, :func:`_png`, :func:`_named`) are here.
"""

from __future__ import annotations

import html
import io
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
from PIL import Image, ImageDraw

from .background import RunProgress
from .images import deprocess, save_image
from .plots import plot_loss_history
from .settings import TransferSettings
from .transfer import TransferResult

_WIDE = {"description_width": "150px"}  # room for the longest label, "style weight, layer 7"
_PLOT_INTERVAL = 1.0  # seconds between loss plot redraws during a run: matplotlib takes ~0.1 s each


def _esc(text: str) -> str:
    """Escape ``text`` for an HTML widget (quotes stay readable: they are not markup in text)."""
    return html.escape(text, quote=False)


def _named(widget: widgets.DOMWidget, name: str) -> widgets.DOMWidget:
    """Give ``widget`` the CSS class ``cs231n-style-NAME`` (for styling and for browser tests) and return it."""
    widget.add_class("cs231n-style-" + name.replace("_", "-"))
    return widget


def _png(image: Image.Image, height: int | None = None) -> bytes:
    """Encode ``image`` as PNG bytes, scaled to ``height`` pixels high if given."""
    if height is not None and image.height != height:
        image = image.resize((max(1, round(image.width * height / image.height)), height), Image.Resampling.LANCZOS)
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
        self.cards.children = (self._card(run), *tuple(self.cards.children))

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
