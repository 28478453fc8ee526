"""The notebooks in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by
Playwright. Each notebook is opened, run with Run > Run All Cells (HNVIZ_FAST=1), its
widgets must render (a slider and a figure, no widget errors), and moving a slider must
change the figure's pixels. Screenshots go to ``test-artifacts/browser/``.

Under CI=true a missing Chromium or Playwright fails the test; elsewhere it skips, naming
what to install. A failed notebook leaves ``<name>_FAILED.png`` (the page at failure).
"""
import io
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

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("HNVIZ_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
WIDGET_ERRORS = ("Error displaying widget", "Failed to load model class")


def _requirements() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Python playwright is missing: pip install -e '.[dev]'"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: apt-get install chromium"
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free port with a random token, serving a copy of the
    notebooks; settings switch off the news pop-up and cell windowing."""
    missing = _requirements()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run under CI: {missing}")
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("lab")
    work = root / "notebooks"
    shutil.copytree(ROOT / "notebooks", work, ignore=shutil.ignore_patterns("runs", ".ipynb_*"))
    settings = root / "settings"
    for ext, name, value in (("apputils-extension", "notification", {"fetchNews": "false",
                                                                     "checkForUpdates": False}),
                             ("notebook-extension", "tracker", {"windowingMode": "none"})):
        path = settings / "@jupyterlab" / ext / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    env = {**os.environ, "HNVIZ_FAST": "1", "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"), "JUPYTER_RUNTIME_DIR": str(root / "rt")}
    env.pop("MPLBACKEND", None)
    log = open(root / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--ServerApp.port_retries=0", "--LabApp.news_url=None",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"jupyter lab did not start: {(root / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url, token, root / "lab.log"
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _api(url: str, token: str, path: str, method: str = "GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}{path}", data=data, method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        text = r.read()
    return json.loads(text) if text else None


def _start_kernel(url: str, token: str, name: str) -> None:
    """Start the notebook's kernel through the REST API before the page opens: JupyterLab
    then connects to this session instead of starting one itself. (Left to itself, a page
    on a loaded machine may find no kernel spec yet or fail to start one, ask for a kernel
    and, once Run All runs, ask again for every cell, each answer starting another kernel:
    the CI failure of notebook 01.)"""
    spec = json.loads((ROOT / "notebooks" / name).read_text())["metadata"]["kernelspec"]["name"]
    _api(url, token, "/api/sessions", "POST",
         {"path": name, "name": name, "type": "notebook", "kernel": {"name": spec}})


def _dismiss_kernel_dialog(page) -> bool:
    """Close a Select Kernel dialog without choosing: the kernel started by
    ``_start_kernel`` is the notebook's, and each choice would start another one (a Run
    All clicked before the page was connected asked once per cell, and answering every
    dialog ran each cell in a fresh kernel)."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if not dialog.count():
        return False
    print("a Select Kernel dialog: closed without choosing")
    dialog.locator("button.jp-mod-reject").first.click()
    return True


def _wait_connected(page, timeout: float = 120) -> None:
    """Until the status bar shows the notebook connected to an idle kernel."""
    status = page.locator(".jp-StatusBar-Widget .jp-StatusBar-TextItem", has_text="| Idle")
    deadline = time.time() + timeout
    while time.time() < deadline:
        _dismiss_kernel_dialog(page)
        if status.count():
            return
        time.sleep(0.5)
    raise AssertionError(f"the page did not connect to an idle kernel in {timeout}s")


def _run_all(page, tries: int = 3) -> None:
    """Run > Run All Cells, again if no cell has started after 30 s (a click that lands
    before the notebook is wired up to its kernel does nothing). Checked cells are saved
    with an execution count, so a cell has started when it is pending ([*]) or a cell
    saved without a count got one (a click before the kernel is wired up may only clear
    the saved ones)."""
    prompt = page.locator(".jp-CodeCell .jp-InputArea-prompt")
    before = prompt.all_inner_texts()

    def started() -> bool:
        now = prompt.all_inner_texts()
        return any(p.strip() == "[*]:" for p in now) or any(
            b.strip() == "[ ]:" and n.strip()[1:-2].isdigit() for b, n in zip(before, now))
    for _ in range(tries):
        _wait_connected(page)
        page.locator(".jp-NotebookPanel").first.click()
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()
        deadline = time.time() + 30
        while time.time() < deadline:
            if _dismiss_kernel_dialog(page):
                break
            if started():
                return
            time.sleep(1)
        print("Run All Cells started no cell in 30 s: trying again")
        page.keyboard.press("Escape")
    raise AssertionError(f"Run All Cells started no cell after {tries} tries")


def _wait_done(page, timeout: float) -> None:
    """Until every code cell shows an execution count (none pending, none empty)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert not _dismiss_kernel_dialog(page), "JupyterLab asked for a kernel during the run"
        prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        if prompts and all(p.strip().startswith("[") and p.strip()[1:-2].isdigit()
                           for p in prompts):
            return
        time.sleep(1)
    raise AssertionError(f"cells did not finish in {timeout}s: prompts {prompts}")


def _wait_rendered(figure, timeout: float) -> bool:
    """Until the figure element has its real size (the canvas got its first image)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (figure.bounding_box() or {}).get("width", 0) >= 200:
            return True
        time.sleep(0.5)
    return False


def _dismiss_popups(page) -> None:
    for label in ("No", "Dismiss", "Close"):
        button = page.locator(".jp-Notification-Toast button", has_text=label)
        if button.count():
            button.first.click()


def _pixels(locator):
    from PIL import Image
    import numpy as np

    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"), dtype=int)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_widgets_live_in_jupyterlab(lab, browser, name):
    url, token, log = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    _start_kernel(url, token, name)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        # a workspace of its own, reset: JupyterLab would reopen the earlier notebooks
        page.goto(f"{url}/lab/workspaces/{stem}/tree/{name}?reset&token={token}")
        page.locator(".jp-NotebookPanel").first.wait_for(timeout=90_000)
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
            timeout=90_000)
        _dismiss_popups(page)
        _run_all(page)
        _wait_done(page, timeout=300)
        time.sleep(2)  # the last widget views attach
        page.screenshot(path=str(ARTIFACTS / f"{stem}_page.png"), full_page=True)
        text = page.locator(".jp-Notebook").inner_text()
        for bad in WIDGET_ERRORS:
            assert bad not in text, f"{name}: {bad!r} on the page"
        assert "Traceback" not in text, f"{name}: a cell raised:\n{text[-3000:]}"
        sliders = page.locator(".widget-slider")
        figures = page.locator(".jupyter-matplotlib-figure, .widget-image")
        assert sliders.count() >= 1 and figures.count() >= 1, \
            f"{name}: {sliders.count()} sliders, {figures.count()} figures rendered"
        # the last slider that sits in a widget with a figure: move it, watch the pixels
        slider = page.locator(".widget-vbox:has(.jupyter-matplotlib-figure, .widget-image) "
                              ".widget-slider").last
        box = slider.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')]"
                             "[.//*[contains(@class, 'jupyter-matplotlib-figure') or "
                             "contains(@class, 'widget-image')]][1]")
        figure = box.locator(".jupyter-matplotlib-figure, .widget-image").first
        figure.scroll_into_view_if_needed()
        handle = slider.locator(".noUi-handle").first
        if not _wait_rendered(figure, 30):  # a canvas shown while the kernel was busy may
            print(f"{name}: the figure has no image after 30 s: nudging a redraw")
            handle.focus()                  # still wait for its first image: nudge a redraw
            handle.press("ArrowRight")
            handle.press("ArrowLeft")
            assert _wait_rendered(figure, 30), f"{name}: the figure never rendered"
        time.sleep(1)
        before = _pixels(figure)
        (ARTIFACTS / f"{stem}_figure_before.png").write_bytes(figure.screenshot())
        handle.focus()
        for _ in range(12):
            handle.press("ArrowRight")
        deadline = time.time() + 20
        changed = 0.0
        while time.time() < deadline and changed < 0.001:
            time.sleep(1)
            after = _pixels(figure)
            if after.shape == before.shape:
                changed = float((abs(after - before).sum(-1) > 30).mean())
        (ARTIFACTS / f"{stem}_figure_after.png").write_bytes(figure.screenshot())
        assert changed >= 0.001, f"{name}: moving the slider changed {changed:.4%} of the pixels"
        assert not errors, f"{name}: JavaScript errors {errors}"
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / f"{stem}_FAILED.png"), full_page=True)
        print(f"the end of JupyterLab's log:\n{log.read_text()[-4000:]}")
        raise
    finally:
        page.close()
        _shutdown_kernels(url, token)


def _shutdown_kernels(url: str, token: str) -> None:
    """End every session and kernel the notebook had (they would compete for the 2 cores)."""
    for s in _api(url, token, "/api/sessions"):
        _api(url, token, f"/api/sessions/{s['id']}", "DELETE")
    for k in _api(url, token, "/api/kernels"):
        _api(url, token, f"/api/kernels/{k['id']}", "DELETE")
