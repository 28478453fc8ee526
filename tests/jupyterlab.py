"""JupyterLab + Chromium for the notebook tests: a JupyterLab server on 127.0.0.1 with a
random port and token (serving a copy of the notebooks), Debian's Chromium through
Playwright, and the page actions the tests need (start the kernel, Run All, wait, save).
Not a test module itself."""
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

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def requirements() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Python playwright is missing: pip install -e '.[dev]'"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: apt-get install chromium"
    return None


def start_lab(root: Path):
    """A JupyterLab server on a free port with a random token, serving ``root`` laid out
    as a checkout: a copy of the notebooks in ``root/notebooks`` (:func:`lab_path`) and
    of ``docs/images`` that their text cells show; settings switch off the news pop-up and
    cell windowing. Yields the URL, the token, the log file and the notebooks' folder."""
    work = root / "notebooks"
    shutil.copytree(ROOT / "notebooks", work, ignore=shutil.ignore_patterns("runs", ".ipynb_*"))
    # served from root, as `make lab` serves the checkout: the notebooks' ../docs/images
    shutil.copytree(ROOT / "docs" / "images", root / "docs" / "images")
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
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
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
                raise RuntimeError(f"jupyter lab did not start: {(root / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url, token, root / "lab.log", work
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def lab_path(name: str) -> str:
    """Where notebook ``name`` is on the lab's server (which serves the checkout's root)."""
    return f"notebooks/{name}"


def start_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def api(url: str, token: str, path: str, method: str = "GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}{path}", data=data, method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        text = r.read()
    return json.loads(text) if text else None


def start_kernel(url: str, token: str, name: str) -> None:
    """Start the notebook's kernel through the REST API before the page opens: JupyterLab
    then connects to this session instead of starting one itself. (Left to itself, a page
    on a loaded machine may find no kernel spec yet or fail to start one, ask for a kernel
    and, once Run All runs, ask again for every cell, each answer starting another kernel:
    the CI failure of notebook 01.)"""
    spec = json.loads((ROOT / "notebooks" / name).read_text())["metadata"]["kernelspec"]["name"]
    api(url, token, "/api/sessions", "POST",
         {"path": lab_path(name), "name": name, "type": "notebook", "kernel": {"name": spec}})


def open_and_run_all(page, url: str, token: str, name: str, workspace: str,
                     timeout: float = 300) -> None:
    """Open notebook ``name`` in a workspace of its own, reset (JupyterLab would reopen
    the notebooks of earlier tests), wait for its kernel, Run All and wait until done."""
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{lab_path(name)}?reset&token={token}")
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=90_000)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        timeout=90_000)
    dismiss_popups(page)
    run_all(page)
    wait_done(page, timeout=timeout)


def dismiss_kernel_dialog(page) -> bool:
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


def wait_connected(page, timeout: float = 120) -> None:
    """Until the status bar shows the notebook connected to an idle kernel."""
    status = page.locator(".jp-StatusBar-Widget .jp-StatusBar-TextItem", has_text="| Idle")
    deadline = time.time() + timeout
    while time.time() < deadline:
        dismiss_kernel_dialog(page)
        if status.count():
            return
        time.sleep(0.5)
    raise AssertionError(f"the page did not connect to an idle kernel in {timeout}s")


def run_all(page, tries: int = 3) -> None:
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
        wait_connected(page)
        page.locator(".jp-NotebookPanel").first.click()
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()
        deadline = time.time() + 30
        while time.time() < deadline:
            if dismiss_kernel_dialog(page):
                break
            if started():
                return
            time.sleep(1)
        print("Run All Cells started no cell in 30 s: trying again")
        page.keyboard.press("Escape")
    raise AssertionError(f"Run All Cells started no cell after {tries} tries")


def wait_done(page, timeout: float) -> None:
    """Until every code cell shows an execution count (none pending, none empty); fails
    at once when the run stopped (a cell raised: nothing pending, cells left unrun)."""
    deadline, stalled = time.time() + timeout, None
    while time.time() < deadline:
        assert not dismiss_kernel_dialog(page), "JupyterLab asked for a kernel during the run"
        prompts = [p.strip() for p in
                   page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()]
        if prompts and all(p.startswith("[") and p[1:-2].isdigit() for p in prompts):
            return
        if "[*]:" not in prompts:
            stalled = stalled or time.time()
            if time.time() - stalled > 10:
                text = page.locator(".jp-Notebook").inner_text()
                raise AssertionError(f"the run stopped with cells left unrun: {prompts}\n"
                                     f"{text[-3000:]}")
        else:
            stalled = None
        time.sleep(1)
    raise AssertionError(f"cells did not finish in {timeout}s: prompts {prompts}")


def save(page, path: Path, n_code_cells: int, timeout: float = 60) -> None:
    """Save the notebook from the page (File > Save Notebook) and wait until the file on
    disk holds every code cell executed."""
    import nbformat

    page.locator(".lm-MenuBar-item", has_text="File").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Save Notebook").first.click()
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            nb = nbformat.read(path, as_version=4)
            counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
            if len(counts) == n_code_cells and all(c is not None for c in counts):
                return
        except (OSError, ValueError):
            pass  # being written
        time.sleep(0.5)
    raise AssertionError(f"{path.name} was not saved with its outputs in {timeout}s")


def wait_rendered(figure, timeout: float) -> bool:
    """Until the figure element has its real size (the canvas got its first image)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (figure.bounding_box() or {}).get("width", 0) >= 200:
            return True
        time.sleep(0.5)
    return False


def dismiss_popups(page) -> None:
    for label in ("No", "Dismiss", "Close"):
        button = page.locator(".jp-Notification-Toast button", has_text=label)
        if button.count():
            button.first.click()


def pixels(locator):
    from PIL import Image
    import numpy as np

    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"), dtype=int)


def shutdown_kernels(url: str, token: str) -> None:
    """End every session and kernel the notebook had (they would compete for the 2 cores)."""
    for s in api(url, token, "/api/sessions"):
        api(url, token, f"/api/sessions/{s['id']}", "DELETE")
    for k in api(url, token, "/api/kernels"):
        api(url, token, f"/api/kernels/{k['id']}", "DELETE")
