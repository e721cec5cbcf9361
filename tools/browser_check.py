#!/usr/bin/env python
"""The real-browser check: JupyterLab on localhost, headless Chromium driven by Playwright.

    python tools/browser_check.py                       # screenshot: artifacts/browser/03_multigrid_schedule.png
    python tools/browser_check.py --chromium /usr/bin/chromium --out artifacts/browser

Starts JupyterLab on 127.0.0.1 (a free port, empty token) serving a temporary copy of
``notebooks/03_multigrid_schedule.ipynb`` (so that JupyterLab's autosave never writes into the
repository), opens it in Debian's Chromium through the ``playwright`` Python package (the
system browser; ``playwright install`` is not needed), runs all cells from the Run menu,
drags the handle of the explorer's "iterations" slider with the mouse (ipywidgets' noUiSlider
does not take keyboard arrows here), and checks that the stage table changed and shows the new
iteration count.  Saves a screenshot and JupyterLab's log into ``--out``; shuts JupyterLab and
its kernel down.  Exit status 0 when the table followed the slider, 1 otherwise.

Needs: ``apt-get install -y chromium``; ``pip install playwright`` (and the notebooks extra).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "03_multigrid_schedule.ipynb"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TABLE = ".mgvsr-stage-table"  # mgvsr.tutorial.widgets.STAGE_TABLE_CLASS
SLIDER = "iterations"  # the description of the slider to drag


def log(message: str) -> None:
    print(f"[browser_check {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_jupyterlab(root: Path, port: int, logfile: Path, settings: Path) -> subprocess.Popen:
    """JupyterLab serving ``root`` on 127.0.0.1:``port`` without a token; user settings (news
    off, the notebook's kernel started without asking) and workspaces in ``settings``."""
    user_settings = {
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "notebook-extension/tracker": {"autoStartDefaultKernel": True},  # no "Select Kernel" dialog
    }
    for name, values in user_settings.items():
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(settings / "ws"),
               JUPYTER_RUNTIME_DIR=str(settings / "runtime"))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
               "--ServerApp.password=", f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
               "--allow-root"]  # CI containers run as root
    out = open(logfile, "w")
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_for_server(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {process.returncode} before serving")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to JupyterLab (it shuts its kernels down), SIGKILL to its process group if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def drag_slider(page, description: str, dx: float):
    """Drag the noUiSlider handle of the slider labelled ``description`` by ``dx`` pixels."""
    slider = page.locator(".widget-hslider").filter(has=page.locator("label", has_text=re.compile(f"^{description}$")))
    handle = slider.locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    if box is None:
        raise RuntimeError(f"the handle of the {description!r} slider is not visible")
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=12)
    page.mouse.up()
    return slider


def run_all_cells(page, attempts: int = 3, wait_s: float = 20) -> None:
    """Run > Run All Cells, until the first code cell shows that it ran or is running.

    Right after the kernel reports idle, JupyterLab may still be wiring the notebook to it, and
    a click then does nothing: the menu is used again if no prompt changes within ``wait_s``.
    """
    started = ".jp-InputPrompt:text-matches('\\[(\\d+|\\*)\\]')"
    for attempt in range(1, attempts + 1):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
        try:
            page.wait_for_selector(started, state="attached", timeout=wait_s * 1000)
            return
        except Exception:
            log(f"no cell started after Run All Cells (attempt {attempt} of {attempts})")
    raise RuntimeError(f"Run All Cells did not start the notebook in {attempts} attempts")


def slider_value(slider) -> int:
    return int(slider.locator(".widget-readout").inner_text().replace(",", "").strip())


def check(chromium: str, out_dir: Path, timeout_s: float) -> bool:
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mgvsr-browser-"))
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_jupyterlab(work, port, out_dir / "jupyterlab.log", work / ".settings")
    try:
        wait_for_server(url, server)
        log(f"JupyterLab at {url} serving a copy of {NOTEBOOK.name}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            try:
                page.set_default_timeout(timeout_s * 1000)
                page.goto(f"{url}/lab/tree/{NOTEBOOK.name}")
                page.wait_for_selector(".jp-Notebook .jp-Cell")
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
                page.wait_for_selector(".jp-StatusBar-TextItem:has-text('Idle')")
                log("notebook open, kernel idle; Run > Run All Cells")
                run_all_cells(page)
                page.wait_for_selector(f"{TABLE} table", state="attached")
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
                before = page.inner_text(TABLE)
                slider = page.locator(".widget-hslider").filter(
                    has=page.locator("label", has_text=re.compile(f"^{SLIDER}$")))
                old = slider_value(slider)
                log(f"explorer shown; {SLIDER} = {old:,}; dragging its handle")
                drag_slider(page, SLIDER, dx=60)
                new = slider_value(slider)
                deadline = time.monotonic() + timeout_s
                after = page.inner_text(TABLE)
                while after == before and time.monotonic() < deadline:
                    page.wait_for_timeout(250)
                    after = page.inner_text(TABLE)
                # the callback sets the table, then draws the figure: wait for the kernel to finish
                page.wait_for_selector(".jp-StatusBar-TextItem:has-text('Idle')")
                explorer = page.locator(".widget-vbox").filter(has=page.locator(TABLE)).first
                explorer.evaluate("box => box.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(500)  # let the new figure paint
                shot = out_dir / f"{NOTEBOOK.stem}.png"
                page.screenshot(path=str(shot))
                log(f"screenshot {shot}")
            except Exception:
                page.screenshot(path=str(out_dir / "failure.png"))
                log(f"failed; the page as it was: {out_dir / 'failure.png'}")
                raise
            finally:
                browser.close()
    finally:
        stop(server)
        shutil.rmtree(work, ignore_errors=True)
    changed = after != before
    shows_new = f"{new:,}" in after
    log(f"{SLIDER}: {old:,} -> {new:,}; table changed: {changed}; table shows {new:,}: {shows_new}")
    return new != old and changed and shows_new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "browser",
                        help="screenshot and JupyterLab log (default: artifacts/browser)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for any one step")
    args = parser.parse_args(argv)
    if not Path(args.chromium).is_file():
        print(f"browser_check: error: no Chromium at {args.chromium} (apt-get install -y chromium)", file=sys.stderr)
        return 2
    start = time.monotonic()
    ok = check(args.chromium, args.out, args.timeout)
    log(f"{'passed' if ok else 'FAILED'} in {time.monotonic() - start:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
