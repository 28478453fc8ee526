"""What a widget's canvas shows in JupyterLab + Chromium equals what the kernel drew: after
fast α key presses and a slider drag (InterpolationExplorer) or clicks, a slider drag and
a drag in the plane (EmbeddingExplorer; both blit what a step changes), the page's canvas
pixels equal a full draw of the same figure in the kernel. ipympl's front end
shows only the last of two frames that arrive before the first has loaded; with
matplotlib's diff frames (only the changed pixels) the lost frame's changes stayed on the
page as debris: old α markers, a garbled title (see FigureView). Also the time from an α
key press to new pixels, with full frames and with diff frames, printed.

A small notebook written at test time into the lab's copy of the notebooks; screenshots
(1280 x 720) and the compared pictures go to ``test-artifacts/browser/``. Skipped with the
reason when Chromium or Playwright is missing, except under CI=true (then it fails)."""
import base64
import contextlib
import io
import os
import statistics
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

import jupyterlab as jl
import lecturer

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("HNVIZ_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
NAME = "blit_check.ipynb"
CELLS = [
    "%matplotlib widget",
    "import hnviz\nfrom hnviz.widgets import EmbeddingExplorer, InterpolationExplorer\n"
    "cfg = hnviz.HyperCLConfig.preset('toy_regression', n_steps=300)\n"
    "learner = hnviz.HyperCL(cfg, random_state=0, progress=False).fit(hnviz.toy_regression())",
    "interp = InterpolationExplorer(learner, a=0, b=2)\ninterp.view.add_class('blit-interp')\n"
    "interp",
    "emb = EmbeddingExplorer(learner)\nemb.view.add_class('blit-emb')\nemb",
]
INTERP, EMB = ".blit-interp", ".blit-emb"
# A pixel differs when a channel differs by more than 32 of 255; the page may differ from
# the kernel's full draw in at most 0.02 % of its pixels (48 of the 790 x 308). Fixed, the
# two are identical; one lost diff frame leaves e.g. an old α marker (about 200 px, 0.08 %)
# or a garbled title (several 100 px).
TOLERANCE, MAX_DIFFERING = 32, 0.0002
# While the widgets are driven, the page's main thread runs 4 x slower (Chrome's CPU
# throttling, as on a slow classroom laptop): frames then often come faster than the page
# loads them. Unthrottled, on this 2-core machine, diff frames left debris after 10 presses
# and a drag in 2 of 5 runs; throttled in each of 6 (0.5 % to 1.1 % of the pixels).
THROTTLE = 4

CANVAS_JS = """sel => {
  const c = document.querySelector(sel + ' .jupyter-matplotlib-figure canvas');
  return c && c.width ? c.toDataURL('image/png') : null; }"""
HASH_JS = """sel => {
  const c = document.querySelector(sel + ' .jupyter-matplotlib-figure canvas');
  if (!c || !c.width) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) | 0;
  return h; }"""
LATENCY_JS = """sel => {
  const c = document.querySelector(sel + ' .jupyter-matplotlib-figure canvas');
  const hash = () => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 0; for (let i = 0; i < d.length; i += 61) h = (h * 31 + d[i]) | 0; return h; };
  const before = hash(), t0 = performance.now();
  window.__blitLatency = null;
  const tick = () => {
    if (hash() !== before) window.__blitLatency = performance.now() - t0;
    else if (performance.now() - t0 > 5000) window.__blitLatency = -1;
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick); }"""
KERNEL_PNG = """
import base64, io, json
from hnviz.widgets.view import DRAW_LOCK
with DRAW_LOCK:  # a fresh full draw of the widget's figure, at its size and dpi
    _buf = io.BytesIO()
    {w}.figure.savefig(_buf, format='png', dpi={w}.figure.dpi)
print(json.dumps({{'png': base64.b64encode(_buf.getvalue()).decode(), 'alpha':
                   getattr(getattr({w}, 'state', None), 'alpha', None)}}))
"""
# counts the bytes of every frame the InterpolationExplorer's canvas sends
COUNT_FRAMES = """
import json
_frames = []
_canvas = interp.figure.canvas
_canvas.send_binary = lambda data, _send=_canvas.send_binary: (_frames.append(len(data)),
                                                               _send(data))
print(json.dumps(True))
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    missing = jl.requirements()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run under CI: {missing}")
        pytest.skip(f"no browser: {missing}")
    yield from jl.start_lab(tmp_path_factory.mktemp("lab"))


@pytest.fixture(scope="module")
def browser(lab):
    yield from jl.start_browser()


@pytest.fixture(scope="module")
def notebook(lab, browser):
    """The notebook run in a 1280 x 720 page: (page, kernel client) once both figures
    show their first picture."""
    url, token, log, work = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, work / NAME)
    jl.api(url, token, "/api/sessions", "POST",
           {"path": jl.lab_path(NAME), "name": NAME, "type": "notebook",
            "kernel": {"name": "python3"}})
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    client = None
    try:
        jl.open_and_run_all(page, url, token, NAME, "blit")
        for sel in (INTERP, EMB):
            figure = page.locator(f"{sel} .jupyter-matplotlib-figure")
            figure.scroll_into_view_if_needed()
            assert jl.wait_rendered(figure, 60), f"{sel}: the figure never rendered"
        client = lecturer.kernel(url, token, work)
        yield page, client
        assert not errors, f"JavaScript errors {errors}"
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "blit_FAILED.png"))
        print(f"the end of JupyterLab's log:\n{log.read_text()[-4000:]}")
        raise
    finally:
        if client is not None:
            client.stop_channels()
        page.close()
        jl.shutdown_kernels(url, token)


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=int)


def page_canvas(page, sel: str) -> np.ndarray:
    url = page.evaluate(CANVAS_JS, sel)
    assert url, f"{sel}: no canvas on the page"
    return decode(base64.b64decode(url.split(",", 1)[1]))


def kernel_canvas(client, widget: str) -> tuple[np.ndarray, float | None]:
    out = lecturer.kernel_json(client, KERNEL_PNG.format(w=widget))
    return decode(base64.b64decode(out["png"])), out["alpha"]


def settle(page, sel: str, quiet: float = 2.0, timeout: float = 90) -> None:
    """Until the kernel is idle and the canvas has not changed for ``quiet`` seconds."""
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    start, last, since = time.time(), None, time.time()
    while time.time() - start < timeout:
        h = page.evaluate(HASH_JS, sel)
        if h != last or not idle.count():
            last, since = h, time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.25)
    raise AssertionError(f"{sel}: the canvas kept changing for {timeout} s")


@contextlib.contextmanager
def slow_page(page, sel: str, rate: float = THROTTLE):
    """The page's main thread ``rate`` times slower until the canvas has settled."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    try:
        yield
        settle(page, sel)
    finally:
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
        cdp.detach()


def compare(page, client, sel: str, widget: str, stem: str) -> float:
    """The share of the page canvas's pixels that differ from a full draw in the kernel
    (1.0 when the sizes differ); saves both pictures, the differing pixels in red and a
    1280 x 720 screenshot of the page."""
    page.locator(f"{sel} .jupyter-matplotlib-figure").scroll_into_view_if_needed()
    settle(page, sel)
    shown = page_canvas(page, sel)
    page.screenshot(path=str(ARTIFACTS / f"{stem}_1280x720.png"))
    drawn, alpha = kernel_canvas(client, widget)
    Image.fromarray(shown.astype(np.uint8)).save(ARTIFACTS / f"{stem}_page_canvas.png")
    Image.fromarray(drawn.astype(np.uint8)).save(ARTIFACTS / f"{stem}_kernel_draw.png")
    if shown.shape != drawn.shape:
        print(f"{stem}: page canvas {shown.shape}, kernel draw {drawn.shape}")
        return 1.0
    bad = np.abs(shown - drawn).max(-1) > TOLERANCE
    marked = shown.astype(np.uint8).copy()
    marked[bad] = (255, 0, 0, 255)
    Image.fromarray(marked).save(ARTIFACTS / f"{stem}_differing.png")
    share = float(bad.mean())
    print(f"{stem}: {bad.sum()} of {bad.size} pixels ({share:.4%}) differ from the kernel's "
          f"full draw" + (f" at alpha = {alpha:.2f}" if alpha is not None else ""))
    return share


def drag(page, handle, dx: float, steps: int = 12) -> None:
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(x + dx * i / steps, y)
    page.mouse.up()


@pytest.mark.slow
def test_interpolation_explorer_after_fast_steps_equals_a_full_draw(notebook):
    page, client = notebook
    handle = page.locator(f"{INTERP} .widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    settle(page, INTERP)
    start = time.perf_counter()
    with slow_page(page, INTERP):
        handle.focus()
        for _ in range(10):  # as fast as the page takes them: no wait for the kernel
            handle.press("ArrowRight")
        drag(page, handle, 90)
    share = compare(page, client, INTERP, "interp", "blit_interp")
    print(f"presses, drag and comparison: {time.perf_counter() - start:.1f} s")
    assert share <= MAX_DIFFERING, \
        f"{share:.3%} of the page's pixels differ from a full draw (debris of lost frames)"


@pytest.mark.slow
def test_embedding_explorer_after_clicks_equals_a_full_draw(notebook):
    page, client = notebook
    at = plane(page, client)
    with slow_page(page, EMB):
        for fx, fy in ((0.2, 0.3), (0.7, 0.6), (0.4, 0.8), (0.85, 0.2), (0.5, 0.5)):
            page.mouse.click(*at(fx, fy))
        drag(page, page.locator(f"{EMB} .widget-slider .noUi-handle").first, -60)
        page.mouse.move(*at(0.3, 0.3))  # a drag in the plane: the point follows the mouse
        page.mouse.down()
        for k in range(1, 9):
            page.mouse.move(*at(0.3 + 0.05 * k, 0.3 + 0.04 * k))
        page.mouse.up()
    share = compare(page, client, EMB, "emb", "blit_embedding")
    fx, fy = lecturer.kernel_json(client, "import json; print(json.dumps(list("
                                          "emb.ax_land.transLimits.transform(emb.state.point))))")
    assert abs(fx - 0.7) < 0.03 and abs(fy - (1 - 0.62)) < 0.03, (fx, fy)  # the drag's end
    assert share <= MAX_DIFFERING, \
        f"{share:.3%} of the page's pixels differ from a full draw (debris of lost frames)"


def plane(page, client):
    """The EmbeddingExplorer scrolled into view and settled; a function from fractions of
    its landscape axes (x right, y down) to page coordinates (CSS pixels)."""
    figure = page.locator(f"{EMB} .jupyter-matplotlib-figure")
    figure.scroll_into_view_if_needed()
    settle(page, EMB)
    # the landscape's axes in CSS pixels from the canvas's top left corner
    x0, y0, x1, y1 = lecturer.kernel_json(client, (
        "import json\n_b = emb.ax_land.get_window_extent()\n"
        "_h, _r = emb.figure.bbox.height, emb.figure.canvas.device_pixel_ratio\n"
        "print(json.dumps([_b.x0 / _r, (_h - _b.y1) / _r, _b.x1 / _r, (_h - _b.y0) / _r]))"))
    box = page.locator(f"{EMB} .jupyter-matplotlib-figure canvas").first.bounding_box()
    return lambda fx, fy: (box["x"] + x0 + fx * (x1 - x0), box["y"] + y0 + fy * (y1 - y0))


@pytest.mark.slow
def test_click_in_the_plane_latency(notebook):
    """Milliseconds from a click in the EmbeddingExplorer's plane to changed pixels of its
    canvas (9 clicks), and that a drag ends at the mouse's last point; the median is
    printed, asserted only under 1.5 s (a timing assertion fails on a busy machine)."""
    page, client = notebook
    at = plane(page, client)
    times = []
    for fx, fy in ((0.3, 0.3), (0.6, 0.4), (0.45, 0.7), (0.7, 0.7), (0.25, 0.55),
                   (0.55, 0.25), (0.8, 0.5), (0.35, 0.45), (0.65, 0.6)):
        page.evaluate(LATENCY_JS, EMB)
        page.mouse.click(*at(fx, fy))
        page.wait_for_function("window.__blitLatency !== null", timeout=10_000)
        times.append(float(page.evaluate("window.__blitLatency")))
        time.sleep(0.3)
    print(f"click in the plane to new pixels: median {statistics.median(times):.0f} ms "
          f"{[round(t) for t in times]}")
    assert min(times) > 0 and statistics.median(times) < 1500, times


def step_latency(page, steps: int) -> list[float]:
    """Milliseconds from an α key press to changed pixels of the InterpolationExplorer's
    canvas, per step (the clock starts just before the press is sent: an upper bound)."""
    handle = page.locator(f"{INTERP} .widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    times = []
    for _ in range(steps):
        page.evaluate(LATENCY_JS, INTERP)
        handle.press("ArrowLeft")
        page.wait_for_function("window.__blitLatency !== null", timeout=10_000)
        times.append(float(page.evaluate("window.__blitLatency")))
        time.sleep(0.3)
    return times


@pytest.mark.slow
def test_alpha_step_latency_full_and_diff_frames(notebook):
    """Full frames (FigureView's) and matplotlib's diff frames in turn, on the same page:
    the median time to new pixels and the bytes per frame of each, printed. Asserted only
    that every step reached the page and took under 1.5 s (a timing assertion would fail
    on a busy machine)."""
    page, client = notebook
    lecturer.kernel_json(client, COUNT_FRAMES)
    ms: dict[bool, list[float]] = {True: [], False: []}
    sizes: dict[bool, list[int]] = {True: [], False: []}
    for full in (True, False, True, False):
        lecturer.kernel_json(client, f"import json; interp.fig_view.full_frames = {full}; "
                                     "_frames.clear(); print(json.dumps(True))")
        ms[full] += step_latency(page, 6)
        sizes[full] += lecturer.kernel_json(client, "import json; print(json.dumps(_frames))")
    lecturer.kernel_json(client, "import json; interp.fig_view.full_frames = True; "
                                 "interp.redraw(); print(json.dumps(True))")
    for full, name in ((True, "full"), (False, "diff")):
        print(f"alpha step to new pixels, {name} frames: median "
              f"{statistics.median(ms[full]):.0f} ms over {len(ms[full])} steps "
              f"{[round(t) for t in ms[full]]}; {len(sizes[full])} frames, median "
              f"{statistics.median(sizes[full] or [0]) / 1000:.1f} kB")
    for full in (True, False):
        assert min(ms[full]) > 0 and statistics.median(ms[full]) < 1500, ms


# ------------------------------------------- the same in the kernel alone (fast)
@pytest.fixture
def ipympl_explorer(tiny_toy_learner):
    """An InterpolationExplorer on an ipympl canvas with no page: the frames it would
    send (PNG bytes, image mode) are collected in ``frames``."""
    import matplotlib
    import matplotlib.pyplot as plt

    from hnviz.widgets import InterpolationExplorer

    old = matplotlib.get_backend()
    plt.switch_backend("module://ipympl.backend_nbagg")
    try:
        w = InterpolationExplorer(tiny_toy_learner, a=0, b=2)
        canvas = w.figure.canvas
        w.frames = []
        canvas.send_binary = lambda data: w.frames.append((data, canvas._current_image_mode))
        yield w
        w.close()
    finally:
        plt.switch_backend(old)


def full_draw(w) -> np.ndarray:
    buf = io.BytesIO()
    w.figure.savefig(buf, format="rgba", dpi=w.figure.dpi)
    width, height = w.figure.canvas.get_width_height(physical=True)
    return np.frombuffer(buf.getvalue(), np.uint8).reshape(height, width, 4)


def shown(canvas) -> np.ndarray:
    """The canvas's pixels (a copy: a draw overwrites the renderer's buffer)."""
    return np.asarray(canvas.buffer_rgba()).copy()


def test_every_frame_of_a_slider_step_is_a_full_one(ipympl_explorer):
    w = ipympl_explorer
    for i, alpha in enumerate((0.1, 0.2, 0.3)):
        w.state.alpha = alpha
        assert len(w.frames) == i + 1  # one frame a step (none without the changed artists)
        data, mode = w.frames[-1]
        shown = np.asarray(Image.open(io.BytesIO(data)))
        assert mode == "full" and shown.shape[-1] == 4 and shown[..., 3].min() == 255
        np.testing.assert_array_equal(shown, full_draw(w))


def test_a_new_pixel_ratio_or_size_saves_a_new_background(ipympl_explorer):
    """The page's messages change the canvas and ask for a draw; a step that comes before
    that draw blits over a background of the new size and dpi."""
    w = ipympl_explorer
    canvas = w.figure.canvas

    def title_lines():  # unchanged: the step is blitted (a new line count: a full draw)
        return [ax.title.get_text().count("\n") for ax in w.figure.axes]
    w.state.alpha = 0.1
    lines = title_lines()
    canvas.handle_set_device_pixel_ratio({"device_pixel_ratio": 2})
    w.state.alpha = 0.4
    assert title_lines() == lines
    np.testing.assert_array_equal(shown(canvas), full_draw(w))
    canvas.handle_resize({"width": 600, "height": 250})
    w.state.alpha = 0.5
    np.testing.assert_array_equal(shown(canvas), full_draw(w))
