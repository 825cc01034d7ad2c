"""Run :func:`cs231n_style.style_transfer` in a background thread: stop it, follow it, get its result.

A notebook that calls ``style_transfer`` directly is busy until the run ends: no button can stop
it. :class:`BackgroundRun` runs it in a worker thread instead, so the kernel stays free to handle
clicks. It asks the loop to stop at its next step when :meth:`BackgroundRun.stop` is called,
reports progress (the step, the image so far, the loss terms) to a callback at most every so many
steps and seconds, and hands over the result - or the error, most often raised by a student's loss
function - when the run ends. The widget panel (:mod:`cs231n_style.widgets`) is built on it; this
module itself uses no widgets, so a script or a test can use it just as well.

Both callbacks run *in the worker thread*: they should be quick (the next step waits for them) and
must only hand data over (set a widget value, append to a list), never print (output from a
thread lands in whichever notebook cell is running at the time).

Example::

    run = BackgroundRun("astronaut", "dots", losses, model, TransferSettings(num_steps=100),
                        on_progress=lambda progress: print(progress.step, progress.losses["total"]))
    run.start()
    run.stop()        # the run ends at its next step
    run.wait()        # True once it has ended
    run.result        # a TransferResult (stopped_early=True), or None if it failed: see run.error
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .transfer import LossFunctions, TransferResult, TransferSettings, style_transfer

__all__ = ["BackgroundRun", "RunProgress"]

#: The loss terms :func:`cs231n_style.style_transfer` reports at each step, in its order.
LOSS_TERMS = ("content", "style", "tv", "total")


@dataclass(frozen=True)
class RunProgress:
    """Where a :class:`BackgroundRun` stands, as passed to its ``on_progress`` callback.

    Attributes:
        step: steps done so far, 1 to ``num_steps``.
        num_steps: the number of steps the run is set to take, all stages together
            (``settings.total_steps``: twice ``settings.num_steps`` with a ``coarse_size``).
        image: the image after ``step`` steps: a normalized float32 CPU tensor (1, 3, H, W),
            detached, the callback's own copy (:func:`cs231n_style.deprocess` makes it a picture).
        losses: the loss terms at ``step``: ``"content"``, ``"style"``, ``"tv"``, ``"total"``
            -> ``float``.
        steps: every step the run has reported so far (every ``preview_every``-th step), in order.
        history: for each loss term, its values at ``steps`` (a ``list[float]`` as long as
            ``steps``): what :func:`cs231n_style.plot_loss_history` plots with ``steps=steps``.
        seconds: wall-clock time since the run started, in seconds.

    Source: what :func:`cs231n_style.style_transfer` passes its ``callback``, gathered.
    """

    step: int
    num_steps: int
    image: torch.Tensor
    losses: dict[str, float]
    steps: list[int]
    history: dict[str, list[float]]
    seconds: float


class BackgroundRun:
    """One run of :func:`cs231n_style.style_transfer` in a worker thread.

    Create it, :meth:`start` it, then :meth:`stop` or :meth:`wait` for it; afterwards
    :attr:`result` holds the :class:`cs231n_style.TransferResult`, or :attr:`error` the exception
    that ended the run. A run is started once; start a new ``BackgroundRun`` for the next one.

    Args:
        content_image: anything :func:`cs231n_style.style_transfer` accepts as the content image
            (a path, a sample name, a ``PIL.Image``, an array).
        style_image: the same kinds, or ``None`` for no style term.
        losses: the loss functions (:class:`cs231n_style.LossFunctions`).
        model: the frozen SqueezeNet ``features`` from :func:`cs231n_style.load_squeezenet`; the
            run happens on its device.
        settings: the :class:`cs231n_style.TransferSettings` of the run.
        preview_every: look at the run every this many steps (and after the last one): record the
            loss terms and maybe report. Each look copies the image to the CPU, which on a GPU
            waits for the GPU, so use a few steps there and 1 on a CPU.
        interval: report at most once per this many seconds (the last step is always reported),
            so that a fast run does not flood a browser; 0 reports every look.
        on_progress: ``on_progress(progress)``, called in the worker thread with a
            :class:`RunProgress`; ``None`` for no reports. An exception it raises ends the run
            (and becomes :attr:`error`).
        on_finish: ``on_finish(run)``, called in the worker thread with this object once the run
            has ended and :attr:`result` or :attr:`error` is set; :meth:`wait` returns after it.

    Raises:
        ValueError: if ``preview_every`` is not a whole number >= 1 or ``interval`` is below 0.

    Source: this course's own; the thread, ``threading.Event`` and ``join`` are Python's
    :mod:`threading`.
    """

    def __init__(self, content_image, style_image, losses: LossFunctions, model: nn.Sequential,
                 settings: TransferSettings, *, preview_every: int = 1, interval: float = 0.25,
                 on_progress: Callable[[RunProgress], None] | None = None,
                 on_finish: Callable[[BackgroundRun], None] | None = None):
        if isinstance(preview_every, bool) or not isinstance(preview_every, int) or preview_every < 1:
            raise ValueError(f"preview_every must be a whole number of steps >= 1, not {preview_every!r}.")
        if not interval >= 0:  # NaN too
            raise ValueError(f"interval must be >= 0 seconds, not {interval!r}.")
        self.content_image, self.style_image = content_image, style_image
        self.losses, self.model, self.settings = losses, model, settings
        self.preview_every, self.interval = preview_every, float(interval)
        self.on_progress, self.on_finish = on_progress, on_finish
        #: The run's :class:`cs231n_style.TransferResult` once it has ended without an error.
        self.result: TransferResult | None = None
        #: The exception that ended the run, if one did (``None`` otherwise).
        self.error: Exception | None = None
        self._stop_requested = threading.Event()
        self._thread = threading.Thread(target=self._work, name="style-transfer-run", daemon=True)
        self._steps: list[int] = []
        self._history: dict[str, list[float]] = {term: [] for term in LOSS_TERMS}
        self._started_at = 0.0
        self._reported_at = -math.inf

    def start(self) -> BackgroundRun:
        """Start the run in its worker thread and return at once.

        Returns:
            This ``BackgroundRun``, so that ``run = BackgroundRun(...).start()`` reads well.

        Raises:
            RuntimeError: if the run was started before.
        """
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the run to end after its current step (it polls every step); no-op once it has ended."""
        self._stop_requested.set()

    @property
    def stop_requested(self) -> bool:
        """``True`` once :meth:`stop` has been called."""
        return self._stop_requested.is_set()

    @property
    def running(self) -> bool:
        """``True`` from :meth:`start` until the run has ended and ``on_finish`` has returned."""
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended (call it from code, not from inside a callback).

        Args:
            timeout: seconds to wait at most, or ``None`` for no limit.

        Returns:
            ``True`` if the run has ended (read :attr:`result` or :attr:`error`), ``False`` if it
            was still going after ``timeout`` seconds.

        Raises:
            RuntimeError: if the run was never started.
        """
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self) -> None:
        """The worker thread: run the loop, keep its result or error, call ``on_finish``."""
        self._started_at = time.perf_counter()
        try:
            self.result = style_transfer(
                self.content_image, self.style_image, self.losses, self.model, self.settings,
                progress=False, preview_every=self.preview_every, callback=self._look,
                should_stop=self._stop_requested.is_set)
        except Exception as error:  # kept for the caller: an exception must not vanish with the thread
            self.error = error
        if self.on_finish is not None:
            self.on_finish(self)

    def _look(self, step: int, image: torch.Tensor, losses: dict[str, float]) -> None:
        """``style_transfer``'s callback: record the loss terms, report if the last report is old enough."""
        self._steps.append(step)
        for term in LOSS_TERMS:
            self._history[term].append(losses[term])
        now = time.perf_counter()
        last_step = step == self.settings.total_steps
        if self.on_progress is None or (now - self._reported_at < self.interval and not last_step):
            return
        self._reported_at = now
        self.on_progress(RunProgress(
            step=step, num_steps=self.settings.total_steps,
            image=image.clone(),  # style_transfer's tensor may be the image itself, changed by the next step
            losses={term: losses[term] for term in LOSS_TERMS}, steps=list(self._steps),
            history={term: list(values) for term, values in self._history.items()},
            seconds=now - self._started_at))
