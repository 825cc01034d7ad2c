"""The style transfer panel in a real browser: JupyterLab on localhost, driven by headless Chromium.

Starts JupyterLab (random free port, random token, temporary notebook, config and data folders),
opens a notebook that builds the panel, runs all cells, drags the content weight slider, presses
Run and waits for the live preview to change while the run is going, then saves screenshots to
``$CS231N_STYLE_ARTIFACTS`` (default ``tests/artifacts/``).

Needs Debian's Chromium (``apt-get install -y chromium``) and the ``playwright`` Python package
(``pip install playwright``; its bundled driver is used, no browser is downloaded). Skips, saying
what is missing, without them. Marked ``browser``: ``pytest -m "not browser"`` leaves it out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "04_style_transfer.ipynb"
CHROMIUM = os.environ.get("CS231N_STYLE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 90_000

pytestmark = pytest.mark.browser

# The notebook the browser opens when the solution notebook has no panel: it builds the panel the
# way a course notebook does, with the solution notebooks' loss functions.
PANEL_NOTEBOOK_CELLS = [
    "import cs231n_style as cs\n"
    "from cs231n_style.widgets import style_transfer_panel\n"
    "device = cs.get_device('cpu')",
    f"solutions = {str(ROOT / 'solutions')!r}\n"
    "content_loss = cs.load_functions(f'{solutions}/01_content_loss.ipynb', ['content_loss']).content_loss\n"
    "style_code = cs.load_functions(f'{solutions}/02_style_loss.ipynb', ['gram_matrix', 'style_loss'])\n"
    "tv_loss = cs.load_functions(f'{solutions}/03_tv_loss.ipynb', ['tv_loss']).tv_loss\n"
    "losses = cs.LossFunctions(content_loss, style_code.gram_matrix, style_code.style_loss, tv_loss)",
    "model = cs.load_squeezenet(device=device)",
    "panel = style_transfer_panel(losses, model, settings=cs.TransferSettings(num_steps=150, style_size=192))\n"
    "panel",
]


def _requirements() -> str | None:
    """Why this test cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    if not Path(CHROMIUM).is_file():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not installed (pip install jupyterlab)"
    weights = os.environ.get("CS231N_STYLE_WEIGHTS")
    if not weights or not Path(weights).is_file():
        return "the SqueezeNet weights are not available: set $CS231N_STYLE_WEIGHTS to the .pth file"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _artifacts() -> Path:
    folder = Path(os.environ.get("CS231N_STYLE_ARTIFACTS") or ROOT / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_notebook(folder: Path) -> str:
    """Put the notebook to open into ``folder`` and return its name."""
    if SOLUTION.is_file() and "style_transfer_panel(" in SOLUTION.read_text():
        shutil.copytree(SOLUTION.parent, folder, dirs_exist_ok=True)  # outputs land in the temp copy
        return SOLUTION.name
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in PANEL_NOTEBOOK_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "panel.ipynb")
    return "panel.ipynb"


@pytest.fixture
def jupyterlab_server(tmp_path):
    """Start JupyterLab on 127.0.0.1 in temporary folders; yield (url of the notebook, log path)."""
    reason = _requirements()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    notebooks, home = tmp_path / "notebooks", tmp_path / "home"
    notebooks.mkdir()
    name = _write_notebook(notebooks)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
               CS231N_STYLE_DEVICE="cpu", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                                  os.environ.get("PYTHONPATH")])))
    labconfig = home / "config" / "labconfig"
    labconfig.mkdir(parents=True)  # no "get Jupyter news?" toast over the panel in the screenshots
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    log = tmp_path / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={notebooks}", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly", "--ServerApp.allow_root=True"]
    with open(log, "wb") as log_file:
        server = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=notebooks)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/lab/tree/{name}?token={token}", log
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _preview_src(page) -> str:
    return page.locator(".cs231n-style-preview").first.get_attribute("src") or ""


def test_panel_runs_live_in_jupyterlab(jupyterlab_server):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, expect, sync_playwright

    url, log = jupyterlab_server
    artifacts = _artifacts()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.set_default_timeout(TIMEOUT_MS)
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.locator(".jp-Notebook").first.wait_for()
            # JupyterLab may ask which kernel to start; the notebook's own (Python 3) is preselected.
            select = page.locator(".jp-Dialog button", has_text="Select")
            try:
                select.wait_for(timeout=5_000)
                select.click()
            except PlaywrightTimeout:
                pass

            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            panel = page.locator(".cs231n-style-panel")
            try:
                # Run All first does notebook 4's three 200-step example runs: ~30 s on an idle
                # 2-core CPU, several minutes on a loaded one.
                panel.wait_for(timeout=600_000)
            except PlaywrightTimeout as timeout:
                page.screenshot(path=artifacts / "style_transfer_panel_failure.png")
                raise AssertionError(
                    "the panel did not appear; JupyterLab log:\n" + log.read_text()[-3000:]) from timeout
            expect(panel.locator(".cs231n-style-status")).to_contain_text("Ready")

            # Drag the content weight slider's handle to the right, as a person would.
            slider = panel.locator(".cs231n-style-content-weight")
            readout = slider.locator(".widget-readout")
            before = readout.text_content()
            handle = slider.locator(".noUi-handle")
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            expect(readout).not_to_have_text(before)
            moved = float(readout.text_content())
            assert moved > float(before)

            first_preview = _preview_src(page)
            loss_plot = panel.locator(".cs231n-style-loss-plot")
            empty_plot = loss_plot.get_attribute("src")  # the empty axes drawn before any run
            panel.locator(".cs231n-style-run-button").click()
            expect(panel.locator(".cs231n-style-stop-button")).to_be_enabled()
            # The preview changes while the run is still going: the notebook is not frozen.
            seen = {first_preview}
            deadline = time.monotonic() + TIMEOUT_MS / 1000
            while len(seen) < 3 and time.monotonic() < deadline:
                seen.add(_preview_src(page))
                page.wait_for_timeout(100)
            assert len(seen) >= 3, "the preview image did not change during the run"
            progress_during = panel.locator(".cs231n-style-progress progress, .cs231n-style-progress .progress-bar")
            assert progress_during.count() >= 1
            page.wait_for_timeout(1500)  # let a few more previews and loss-plot points arrive
            page.screenshot(path=artifacts / "style_transfer_panel_running.png")

            panel.locator(".cs231n-style-stop-button").click()
            card = panel.locator(".cs231n-style-gallery .widget-html").first
            expect(card).to_contain_text("stopped at step", timeout=10_000)
            expect(card).to_contain_text(f"content weight {moved:.3g}")
            expect(panel.locator(".cs231n-style-run-button")).to_be_enabled()
            expect(loss_plot).not_to_have_attribute("src", empty_plot)  # redrawn with the run's loss terms
            assert loss_plot.evaluate("image => image.complete && image.naturalWidth") > 0
            panel.scroll_into_view_if_needed()
            page.screenshot(path=artifacts / "style_transfer_panel.png")
            panel.screenshot(path=artifacts / "style_transfer_panel_widget.png")
            assert not errors, errors
        finally:
            browser.close()
    (artifacts / "style_transfer_panel.json").write_text(json.dumps(
        {"url": url.split("?")[0], "content_weight": moved, "previews_seen": len(seen)}, indent=2))
