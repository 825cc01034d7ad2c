"""BackgroundRun: style transfer in a worker thread, without widgets.

The runs use a two-convolution model and 32-pixel images, so each takes milliseconds; the
widget panel's own tests (tests/test_widgets.py) run it with SqueezeNet.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from cs231n_style.background import BackgroundRun, RunProgress
from cs231n_style.transfer import LossFunctions, TransferSettings, style_transfer
from tools.plain_loop import content_loss, gram_matrix, style_loss, tv_loss

PACKAGE = Path(__file__).resolve().parents[1] / "cs231n_style"
SETTINGS = TransferSettings(image_size=32, style_size=32, content_layer=1, style_layers=(0, 2),
                            style_weights=(1.0, 1.0), tv_weight=0.01, num_steps=10)


def tiny_model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    return model.requires_grad_(False)


def tiny_losses(**changes) -> LossFunctions:
    """Plain loss functions with CS231n's signatures; ``changes`` replaces some of them."""
    functions = {
        "content_loss": content_loss, "gram_matrix": gram_matrix, "style_loss": style_loss, "tv_loss": tv_loss,
    }
    return LossFunctions(**{**functions, **changes})


def start(settings=SETTINGS, losses=None, **options) -> BackgroundRun:
    return BackgroundRun("cat", "swirls", losses or tiny_losses(), tiny_model(), settings, **options).start()


def test_a_coarse_to_fine_run_reports_both_stages_and_its_last_step():
    reports: list[RunProgress] = []
    run = start(SETTINGS.replace(image_size=64, coarse_size=32, num_steps=4), preview_every=3, interval=0.0,
                on_progress=reports.append)
    assert run.wait(timeout=60) and run.error is None
    assert [report.step for report in reports] == [3, 6, 8]  # 4 coarse steps, then 4 at full size
    assert all(report.num_steps == 8 for report in reports)
    assert reports[-1].image.shape[-2:] == run.result.image.shape[-2:]


def test_reports_every_few_steps_and_the_last_and_hands_over_the_result():
    reports: list[RunProgress] = []
    finished: list[BackgroundRun] = []
    run = start(preview_every=3, interval=0.0, on_progress=reports.append, on_finish=finished.append)
    assert run.wait(timeout=60) and not run.running
    assert finished == [run] and run.error is None
    assert [report.step for report in reports] == [3, 6, 9, 10]
    last = reports[-1]
    assert last.steps == [3, 6, 9, 10] and last.num_steps == 10
    assert all(len(values) == 4 for values in last.history.values())
    assert last.losses == {term: values[-1] for term, values in last.history.items()}
    assert last.history["total"] == [run.result.history["total"][step - 1] for step in last.steps]
    assert last.image.shape == run.result.image.shape and torch.equal(last.image, run.result.image)

    direct = style_transfer("cat", "swirls", tiny_losses(), tiny_model(), SETTINGS, progress=False)
    assert run.result.history == direct.history and not run.result.stopped_early
    torch.testing.assert_close(run.result.image, direct.image, rtol=0, atol=0)


def test_each_report_has_its_own_copy_of_the_image():
    """The loop changes its image in place; a report's image must not change with it."""
    reports: list[RunProgress] = []
    run = start(interval=0.0, on_progress=reports.append)
    assert run.wait(timeout=60)
    assert len(reports) == 10
    assert not torch.equal(reports[0].image, reports[-1].image)
    assert torch.equal(reports[-1].image, run.result.image)


def slow_tv_loss(img, weight):
    time.sleep(0.01)
    return tiny_losses().tv_loss(img, weight)


def test_reports_at_most_once_per_interval_but_records_every_step():
    reports: list[RunProgress] = []
    interval = 0.05
    started = time.perf_counter()
    run = start(SETTINGS.replace(num_steps=30), tiny_losses(tv_loss=slow_tv_loss), interval=interval,
                on_progress=reports.append)
    assert run.wait(timeout=60)
    elapsed = time.perf_counter() - started
    gaps = [later.seconds - earlier.seconds for earlier, later in itertools.pairwise(reports)]
    assert all(gap >= interval for gap in gaps[:-1]), gaps  # the last step is always reported, however soon
    assert len(reports) < 30 and len(reports) <= elapsed / interval + 2
    assert reports[-1].step == 30 and reports[-1].steps == list(range(1, 31))


def test_stop_ends_the_run_after_the_current_step():
    def stop_at_step_4(progress: RunProgress) -> None:
        if progress.step == 4:
            run.stop()

    run = BackgroundRun("cat", "swirls", tiny_losses(), tiny_model(), SETTINGS, interval=0.0,
                        on_progress=stop_at_step_4)
    run.start()
    assert run.wait(timeout=60) and run.stop_requested
    assert run.result.stopped_early and len(run.result.history["total"]) == 4


def test_stop_from_another_thread_and_wait_with_a_timeout():
    gate = threading.Event()  # holds the run at its first step

    def gated_tv_loss(img, weight):
        gate.wait(timeout=30)
        return tiny_losses().tv_loss(img, weight)

    run = start(SETTINGS.replace(num_steps=10_000), tiny_losses(tv_loss=gated_tv_loss))
    assert not run.wait(timeout=0.05) and run.running and run.result is None
    run.stop()
    gate.set()
    assert run.wait(timeout=60) and not run.running
    assert run.result.stopped_early and len(run.result.history["total"]) == 1


def broken_tv_loss(img, weight):
    raise RuntimeError("tv_loss is not finished")


def test_an_error_in_a_loss_function_is_handed_over():
    finished: list[BackgroundRun] = []
    run = start(losses=tiny_losses(tv_loss=broken_tv_loss), on_finish=finished.append)
    assert run.wait(timeout=60)
    assert isinstance(run.error, RuntimeError) and str(run.error) == "tv_loss is not finished"
    assert run.result is None and finished == [run]


def test_an_error_in_the_progress_callback_is_handed_over():
    def broken_callback(progress):
        raise KeyError("preview")

    run = start(on_progress=broken_callback)
    assert run.wait(timeout=60)
    assert isinstance(run.error, KeyError) and run.result is None


@pytest.mark.parametrize("options", [{"preview_every": 0}, {"preview_every": 1.5}, {"preview_every": True},
                                     {"interval": -1.0}, {"interval": math.nan}])
def test_arguments_are_checked(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        BackgroundRun("cat", "swirls", tiny_losses(), tiny_model(), SETTINGS, **options)


def test_a_run_starts_once():
    run = start()
    with pytest.raises(RuntimeError):
        run.start()
    assert run.wait(timeout=60)


def test_importing_it_loads_neither_ipywidgets_nor_matplotlib():
    """Checked in a fresh process, with the package's ``__init__`` left out (it imports every module
    of the package): what the module itself and its own imports load."""
    code = (
        "import sys, types\n"
        "package = types.ModuleType('cs231n_style')\n"
        f"package.__path__ = [{str(PACKAGE)!r}]\n"
        "sys.modules['cs231n_style'] = package\n"
        "import cs231n_style.background\n"
        "heavy = ('ipywidgets', 'matplotlib', 'cs231n_style.widgets')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
