"""A lecturer's script for notebook 05 in JupyterLab + Chromium, after Run All: the
ForgettingLab pressed like in a class (two more β, one of them a double-click, a stop in
the middle of a run, a reset), the MethodsLab trained and reset, the widget state checked in
the kernel itself, the lab on one screen at 1280 x 720 (its box, text sizes, native
width, no toolbar), screenshots at 1280 x 720 with nothing cut and at 130 % zoom (what is
wider than the column there is printed), and the times from an α-slider key press and from
a press of "train" to new pixels on the page. Not a test module itself:
tests/test_notebooks.py runs it."""
import json
import statistics
import time
from pathlib import Path

import jupyterlab as jl

BUTTON = "button.jupyter-button:has-text('{}')"  # train / stop / reset: ForgettingLab first
STATUS = ".widget-html:has-text('tasks ×')"  # the labs' status lines: ForgettingLab first
LIVE = ".widget-html:has-text('· step')"      # LiveTraining's status line


def wait_for(condition, timeout: float, what: str) -> float:
    """Poll ``condition`` until true; the seconds it took (an AssertionError after timeout)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if condition():
            return time.perf_counter() - start
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def kernel(url: str, token: str, work: Path):
    """A client of the notebook's kernel (its connection file in the lab's runtime dir)."""
    from jupyter_client import BlockingKernelClient

    (session,) = jl.api(url, token, "/api/sessions")
    client = BlockingKernelClient()
    client.load_connection_file(str(work.parent / "rt" / f"kernel-{session['kernel']['id']}.json"))
    client.start_channels()
    client.wait_for_ready(60)
    return client


def kernel_json(client, code: str):
    """Run ``code`` (which prints one JSON line) in the kernel; the parsed line."""
    out: list[str] = []
    reply = client.execute_interactive(code, timeout=120, output_hook=_collect(out))
    assert reply["content"]["status"] == "ok", reply["content"]
    return json.loads("".join(out).strip().splitlines()[-1])


def _collect(out):
    def hook(msg):
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"])[-3000:])
    return hook


CHECK = """
import json
from matplotlib.colors import to_hex
from hnviz.widgets.lab_view import beta_colors
from hnviz.widgets.view import AnalysisWidget

def _inside(fig):
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    w, h = fig.get_size_inches()
    return box.x0 >= -0.01 and box.y0 >= -0.01 and box.x1 <= w + 0.01 and box.y1 <= h + 0.01

_widgets = {n: v for n, v in dict(globals()).items() if isinstance(v, AnalysisWidget)}
_widgets.update({"lab.live": lab.live, **{f"followed{i}": f for i, f in enumerate(lab.followed)}})
_colours = beta_colors(lab.betas)
print(json.dumps({
    "runs": [[r["beta"], r["status"]] for r in lab.session.runs],
    "ignored": lab.ignored_presses,
    "lines": sorted(lab.plot.final_lines),
    "colours_fixed": all(to_hex(l.get_color()) == to_hex(_colours[b])
                         for b, l in lab.plot.final_lines.items()),
    "widths": {n: round(w.figure.get_size_inches()[0] * w.figure.dpi) for n, w in _widgets.items()},
    "clipped": [n for n, w in _widgets.items() if not _inside(w.figure)],
    "followed_is_latest": lab.followed[0].learner is lab.learner,
    "errors": lab.errors + methods.errors,
}))
"""


def status(page, i: int = 0) -> str:
    return page.locator(STATUS).nth(i).inner_text()


def press_train(page, beta_steps: int, double: bool = False) -> None:
    """Move the β slider ``beta_steps`` stops right, then press train (twice, fast)."""
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.focus()
    for _ in range(beta_steps):
        handle.press("ArrowRight")
    train = page.locator(BUTTON.format("train")).first
    train.dblclick() if double else train.click()


def forgetting_lab(page, client, artifacts: Path) -> dict:
    """After Run All (β = 0, then 0.1): two presses (the second a double-click), a stop
    mid-run, a reset."""
    runs0 = status(page).count(" done")
    press_train(page, 1)  # 0.1 -> 1
    wait_for(lambda: "β = 1 (1500 steps) done" in status(page), 180, "the β = 1 run")
    press_train(page, 1, double=True)  # -> 10, double-clicked: one run
    wait_for(lambda: "β = 10 (1500 steps) done" in status(page), 180, "the β = 10 run")
    assert status(page).count(" done") == runs0 + 2, status(page)
    steps = page.locator(".widget-text input").first  # the lab's steps per task
    steps.fill("100000")
    steps.press("Enter")
    press_train(page, 0)  # β = 10 again, a long run, stopped in the middle
    live = page.locator(LIVE).first
    wait_for(lambda: "step" in live.inner_text() and int(
        live.inner_text().split("step ")[1].split("/")[0]) >= 20, 120, "training to start")
    page.locator(BUTTON.format("stop")).first.click()
    stopped_in = wait_for(lambda: "β = 10 (100000 steps) stopped" in status(page), 10, "the stop")
    page.screenshot(path=str(artifacts / "05_lecturer_stopped.png"))
    state = kernel_json(client, CHECK)
    page.locator(BUTTON.format("reset")).first.click()
    wait_for(lambda: "Runs: none yet" in status(page), 30, "the reset")
    after = kernel_json(client, "import json; print(json.dumps({'runs': lab.session.runs, "
                                "'lines': len(lab.plot.final_lines)}))")
    return {"state": state, "stopped_in": stopped_in, "after_reset": after}


def methods_lab(page) -> dict:
    """Reset, train, reset: all three panels change, the reset returns to the start."""
    train = page.locator(BUTTON.format("train")).nth(1)
    box = train.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
    figure = box.locator(".widget-image").first
    figure.scroll_into_view_if_needed()
    page.locator(BUTTON.format("reset")).nth(1).click()
    wait_for(lambda: "Runs: none yet" in status(page, 1), 30, "the methods lab's reset")
    time.sleep(1)
    start = jl.pixels(figure)
    train.click()
    wait_for(lambda: " done" in status(page, 1), 300, "the methods lab's run")
    time.sleep(1)
    trained = jl.pixels(figure)
    thirds = [float((abs(trained[:, k:k + trained.shape[1] // 3] - start[:, k:k + start.shape[1]
                                                                            // 3]).sum(-1) > 30).mean())
              for k in (0, trained.shape[1] // 3, 2 * trained.shape[1] // 3)]
    page.locator(BUTTON.format("reset")).nth(1).click()
    wait_for(lambda: "Runs: none yet" in status(page, 1), 30, "the second reset")
    time.sleep(1)
    again = jl.pixels(figure)
    same = float((abs(again - start).sum(-1) <= 30).mean()) if again.shape == start.shape else 0.0
    return {"changed_per_panel": thirds, "reset_same": same}


SLIDER_JS = """() => {
  const figures = document.querySelectorAll('.jupyter-matplotlib-figure');
  const canvases = [...figures[figures.length - 1].querySelectorAll('canvas')];
  const hash = () => { let h = 0;
    for (const c of canvases) {
      if (!c.width || !c.height) continue;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 61) h = (h * 31 + d[i]) | 0;
    }
    return h; };
  const before = hash();
  const t0 = performance.now();
  window.__hnvizLatency = null;
  const tick = () => {
    if (hash() !== before) window.__hnvizLatency = performance.now() - t0;
    else if (performance.now() - t0 > 5000) window.__hnvizLatency = -canvases.length;
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def slider_latency(page, steps: int = 9) -> list[float]:
    """Milliseconds from an α key press to changed pixels of the last figure, per step
    (the clock starts in the page just before the press is sent: an upper bound); a
    negative value: no change within 5 s (minus the number of canvases looked at)."""
    # the explorer's α slider: the last slider beside an ipympl figure (the lab shown
    # again at the end is a PNG image with a β slider)
    handle = page.locator(".widget-vbox:has(.jupyter-matplotlib-figure) .widget-slider "
                          ".noUi-handle").last
    handle.scroll_into_view_if_needed()
    handle.focus()
    times = []
    for _ in range(steps):
        page.evaluate(SLIDER_JS)  # starts watching, returns at once
        handle.press("ArrowRight")
        page.wait_for_function("window.__hnvizLatency !== null", timeout=10_000)
        times.append(float(page.evaluate("window.__hnvizLatency")))
        time.sleep(0.3)
    return times


PROJECTOR_JS = """() => {
  const train = [...document.querySelectorAll('button.jupyter-button')]
      .find(b => b.textContent.includes('train'));
  const lab = train.closest('.jp-OutputArea-output');
  lab.scrollIntoView({block: 'start'});
  const img = lab.querySelector('.widget-image');
  const r = lab.getBoundingClientRect(), i = img.getBoundingClientRect();
  const shown = lab.closest('.jp-WindowedPanel-outer, .jp-Notebook').getBoundingClientRect();
  const bars = [...document.querySelectorAll('.jupyter-matplotlib-toolbar')]
      .filter(t => t.offsetParent !== null && getComputedStyle(t).visibility !== 'hidden');
  return {lab_top: r.top, lab_bottom: r.bottom, shown_top: shown.top,
          shown_bottom: Math.min(shown.bottom, window.innerHeight),
          lab_height: r.height, image_css_width: i.width,
          image_natural_width: img.naturalWidth, visible_toolbars: bars.length,
          viewport_height: window.innerHeight};
}"""

TRAIN_JS = """() => new Promise(resolve => {
  const train = [...document.querySelectorAll('button.jupyter-button')]
      .find(b => b.textContent.includes('train'));
  const img = train.closest('.jp-OutputArea-output').querySelector('.widget-image');
  const times = [];
  let last = img.src;
  const t0 = performance.now();
  const obs = new MutationObserver(() => {
    if (img.src === last) return;
    last = img.src;
    times.push(performance.now() - t0);
    if (times.length === 2) { obs.disconnect(); resolve(times); }
  });
  obs.observe(img, {attributes: true, attributeFilter: ['src']});
  setTimeout(() => { obs.disconnect(); resolve(times); }, 10000);
  train.click();
})"""

FONTS = """
import json, matplotlib.text as mt
def _min_px(fig):
    return round(min(t.get_fontsize() for t in fig.findobj(mt.Text)
                     if t.get_visible() and t.get_text().strip()) * fig.dpi / 72, 1)
print(json.dumps({"lab": _min_px(lab.figure), "methods": _min_px(methods.figure)}))
"""


def one_screen(page, client, artifacts: Path) -> dict:
    """The ForgettingLab as a class sees it (1280 x 720, the file browser hidden, after
    notebook 05's ``projector()``): the height of the lab's whole output (controls, status,
    figure), its picture at its own pixel width, the smallest text of the labs' figures in
    pixels (kernel side: font size x dpi), visible ipympl toolbars; then the times from a
    press of "train" to the lab's first two new pictures (the cleared panels of the new
    run, then its first step's curves)."""
    page.set_viewport_size({"width": 1280, "height": 720})
    if page.locator("#jp-left-stack").is_visible():
        page.keyboard.press("Control+b")
    time.sleep(1)
    out = page.evaluate(PROJECTOR_JS)
    page.screenshot(path=str(artifacts / "05_lecturer_one_screen.png"))
    out["font_px"] = kernel_json(client, FONTS)
    out["train_to_pictures_ms"] = page.evaluate(TRAIN_JS)
    page.locator(BUTTON.format("stop")).first.click()
    wait_for(lambda: "stopped" in status(page) or status(page).count(" done") >= 1, 30,
             "the stop after the train-latency press")
    return out


def screenshots(page, browser, url: str, token: str, name: str, artifacts: Path) -> dict:
    """The page at 1280 x 720 and a second view at 130 % zoom (985 x 554 CSS pixels at a
    device scale of 1.3): every figure lies within its output area."""
    out = {}
    page.set_viewport_size({"width": 1280, "height": 720})
    time.sleep(1)
    out["1280x720"] = _overflowing(page)
    page.locator(".widget-image").first.scroll_into_view_if_needed()  # the lab
    page.screenshot(path=str(artifacts / "05_lecturer_1280x720.png"), full_page=True)
    context = browser.new_context(viewport={"width": 985, "height": 554}, device_scale_factor=1.3)
    zoomed = context.new_page()
    try:
        zoomed.goto(f"{url}/lab/workspaces/zoom/tree/{jl.lab_path(name)}?reset&token={token}")
        zoomed.locator(".jp-NotebookPanel").first.wait_for(timeout=90_000)
        jl.wait_connected(zoomed)
        zoomed.locator(".jp-NotebookPanel").first.click()
        zoomed.keyboard.press("Escape")
        zoomed.keyboard.press("Control+b")  # a lecturer hides the file browser
        zoomed.locator(".widget-image, .jupyter-matplotlib-figure").last.wait_for(timeout=90_000)
        time.sleep(3)
        out["130%"] = _overflowing(zoomed)
        zoomed.locator(".widget-image").first.scroll_into_view_if_needed()  # the lab
        zoomed.screenshot(path=str(artifacts / "05_lecturer_130pct.png"), full_page=True)
    finally:
        context.close()
    return out


def _overflowing(page) -> list[str]:
    """Figures wider than their output area (cut by the column), as 'width > room'."""
    return page.evaluate("""() => {
      const bad = [];
      for (const f of document.querySelectorAll('.widget-image, .jupyter-matplotlib-figure')) {
        const area = f.closest('.jp-OutputArea-output');
        if (!area) continue;
        const r = f.getBoundingClientRect(), a = area.getBoundingClientRect();
        if (r.width > 0 && r.right > a.right + 1) bad.push(`${r.width} > ${a.width}`);
      }
      return bad;
    }""")


def run(page, browser, lab, name: str, artifacts: Path) -> dict:
    """The whole script; what it measured (asserted by the caller)."""
    url, token, _, work = lab
    client = kernel(url, token, work)
    try:
        result = forgetting_lab(page, client, artifacts)
        result["methods"] = methods_lab(page)
        result["slider_ms"] = slider_latency(page)
        result["projector"] = one_screen(page, client, artifacts)
        result["screens"] = screenshots(page, browser, url, token, name, artifacts)
    finally:
        client.stop_channels()
    result["slider_median_ms"] = statistics.median(result["slider_ms"])
    print("lecturer's script:", json.dumps(result))
    return result
