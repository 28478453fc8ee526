"""What every widget shares: the figure view (an ipympl canvas or a PNG image), the
widget base (messages, errors, display), and the small helpers of the views: resolving
a learner/run/directory, task labels, colour scales, ticks, saving a figure."""
from __future__ import annotations

import base64
import functools
import io
import textwrap
from pathlib import Path
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from traitlets import TraitError

from ..base import ContinualLearner
from ..learner import HyperCL
from ..metrics import metric_label
from ..runs import Run, load_run
from ..safeio import atomic_write
from ..tasks import Task

__all__ = ["AnalysisWidget", "DISPLAY", "FigureView", "check_task_trait", "display_size",
           "guarded", "html_table", "hypercl_of", "integer_ticks", "learner_of", "metric_label", "metric_norm",
           "resolve", "save_figure", "set_display", "task_labels", "wrap_titles"]


DISPLAY = {"width": 790, "font_scale": 1.0}  # set_display(); read when a widget is made
BASE_DPI = 90


def set_display(width: int | None = None, font_scale: float | None = None) -> dict[str, float]:
    """How widgets made from now on are sized: ``width`` the widest figure in CSS pixels
    (default 790: a 960 px notebook column, or a 1280 px projector at 130 % zoom with
    the file browser hidden, less JupyterLab's margins); ``font_scale`` enlarges every
    text and line of a figure by that factor at the same pixel size (e.g. 1.4 for a
    projector). Returns the settings."""
    if width is not None:
        if not 300 <= width <= 4000:
            raise ValueError(f"width = {width} px is outside 300..4000; use e.g. 790")
        DISPLAY["width"] = int(width)
    if font_scale is not None:
        if not 0.5 <= font_scale <= 3:
            raise ValueError(f"font_scale = {font_scale} is outside 0.5..3; use e.g. 1.4")
        DISPLAY["font_scale"] = float(font_scale)
    return dict(DISPLAY)


def display_size(figsize: tuple[float, float]) -> tuple[tuple[float, float], float]:
    """The figure size (inches) and dpi of a widget figure designed as ``figsize`` at 90
    dpi, under :func:`set_display`: fonts scaled by ``font_scale`` (fewer inches, more
    dpi: the same pixels), then shrunk to at most ``width`` pixels, aspect kept."""
    scale = DISPLAY["font_scale"]
    dpi = BASE_DPI * scale
    w, h = figsize[0] / scale, figsize[1] / scale
    fit = min(1.0, DISPLAY["width"] / (w * dpi))
    return (w * fit, h * fit), dpi


def wrap_titles(figure: Figure, wrapped: dict[int, tuple[str, str]] | None = None
                ) -> tuple[int, ...]:
    """Break every axes title that would be wider than its axes into lines (estimated from
    the font size: no drawing needed), so a long title is never cut at the figure's edge.
    ``wrapped`` remembers each title's text before wrapping (id -> (text, wrapped text)):
    a title wrapped before is wrapped again from its own text when its axes change size.
    Returns each title's number of line breaks (a change calls for a new layout)."""
    wrapped = {} if wrapped is None else wrapped
    for ax in figure.axes:
        title = ax.title
        text = title.get_text()
        before = wrapped.get(id(title))
        if before is not None and text == before[1]:
            text = before[0]  # our own wrapping of it: start from the widget's text
        char_px = title.get_fontsize() * figure.dpi / 72 * 0.55
        chars = max(12, int(ax.bbox.width * 1.05 / char_px))
        lines = "\n".join(textwrap.fill(line, chars) if len(line) > chars else line
                          for line in text.split("\n"))
        if lines != title.get_text():
            title.set_text(lines)
        wrapped[id(title)] = (text, lines)
    return tuple(ax.title.get_text().count("\n") for ax in figure.axes)


def _ipympl_active() -> bool:
    backend = matplotlib.get_backend().lower()
    return "ipympl" in backend or backend == "widget"


class FigureView:
    """A figure shown as a widget: the ipympl canvas when ``%matplotlib widget`` is on
    (``interactive``), otherwise an ``ipywidgets.Image`` re-rendered as PNG by :meth:`draw`.
    ``live=True`` always uses the image: it updates while the kernel is busy training."""

    def __init__(self, figsize: tuple[float, float], live: bool = False,
                 dpi: float | None = None):
        if dpi is None:
            figsize, dpi = display_size(figsize)
        self.interactive, self.live = _ipympl_active() and not live, live
        self._title_lines: tuple[int, ...] | None = None
        self._wrapped: dict[int, tuple[str, str]] = {}  # wrap_titles' memory
        if self.interactive:
            with plt.ioff():
                self.figure = plt.figure(figsize=figsize, dpi=dpi)
            canvas = self.figure.canvas
            canvas.header_visible = False
            # Give the front end the canvas size in the widget's first state. Otherwise
            # it learns the size only from the kernel's reply to its "initialized"
            # message, and a view created in the wrong moment of that exchange stays
            # 0 x 0 px for good (seen in JupyterLab 4.6 + ipympl 0.10 when the figure is
            # a child of a box). ipympl's own _repr_mimebundle_ sets the same trait.
            canvas._size = tuple(float(v) for v in self.figure.bbox.size
                                 / canvas.device_pixel_ratio)
            self.widget = canvas
        else:
            self.figure = Figure(figsize=figsize, dpi=dpi)
            FigureCanvasAgg(self.figure)
            # never wider than its column: a narrower one scales the picture down
            self.widget = widgets.Image(format="png", layout=widgets.Layout(max_width="100%",
                                                                            height="auto"))
        self._background: Any = None  # the pixels under the blitted artists (see draw)
        self._blit_key: tuple[int, ...] = ()
        self._drawing = False
        self.figure.canvas.mpl_connect("draw_event", self._forget_background)

    def draw(self, changed: Sequence[Any] = ()) -> None:
        """Show the figure's current state. ``changed``: the only artists that changed
        since the last draw with the same ``changed`` (e.g. a slider's marker and line):
        those are drawn over a saved background (blitting) instead of the whole figure.
        A live figure (data, limits and titles change between draws, at most every half
        second) is laid out again each time; an interactive one when a title's line count
        changes (not on every slider step)."""
        lines = wrap_titles(self.figure, self._wrapped)
        if self.live or lines != self._title_lines:
            self.figure.tight_layout()
            self._title_lines, self._background = lines, None
        key = tuple(id(a) for a in changed)
        canvas = self.figure.canvas
        if not changed:
            if self.interactive:
                canvas.draw_idle()
                return
            canvas.draw()
        elif self._background is not None and key == self._blit_key:
            canvas.restore_region(self._background)
            for artist in changed:
                self.figure.draw_artist(artist)
        else:  # a new background: everything but the changed artists
            for artist in changed:
                artist.set_animated(True)
            try:
                self._drawing = True
                canvas.draw()
            finally:
                self._drawing = False
                for artist in changed:
                    artist.set_animated(False)
            self._background, self._blit_key = canvas.copy_from_bbox(self.figure.bbox), key
            for artist in changed:
                self.figure.draw_artist(artist)
        self._show()

    def _show(self) -> None:
        """Send the canvas's pixels to the page: ipympl's blit (only the changed pixels
        travel), or a PNG for the image widget (encoded from the pixels, not redrawn)."""
        canvas = self.figure.canvas
        if self.interactive:
            canvas.blit(self.figure.bbox)
            return
        image = PIL.Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(),
                                     "raw", "RGBA", 0, 1)
        buf = io.BytesIO()
        image.save(buf, format="png", compress_level=1)
        self.widget.value = buf.getvalue()

    def _forget_background(self, _: Any) -> None:
        if not self._drawing:  # someone else drew the figure (a zoom, a resize, savefig)
            self._background = None

    def close(self) -> None:
        if self.interactive:
            plt.close(self.figure)


def guarded(method: Callable) -> Callable:
    """Run a callback; show an exception in the widget's output instead of losing it."""
    @functools.wraps(method)
    def wrapper(self: "AnalysisWidget", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - shown to the user, never swallowed
            self.report(e)
    return wrapper


class AnalysisWidget:
    """Shared parts: ``output`` (messages), ``errors``, ``figure``, ``view`` (the VBox)."""

    def __init__(self) -> None:
        self.output = widgets.Output()
        self.errors: list[str] = []
        self.figure: Figure | None = None
        self.fig_view: FigureView | None = None
        self.view = widgets.VBox([self.output])

    def report(self, error: BaseException | str, context: str = "") -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        text = f"{context}{text}"
        self.errors.append(text)
        self.output.append_stderr(text + "\n")

    def new_figure(self, figsize: tuple[float, float], live: bool = False) -> Figure:
        self.fig_view = FigureView(figsize, live)
        self.figure = self.fig_view.figure
        return self.figure

    def layout(self, *controls: widgets.Widget, below: Sequence[widgets.Widget] = ()) -> None:
        self.view.children = [*controls, self.fig_view.widget, *below, self.output]

    def redraw(self, changed: Sequence[Any] = ()) -> None:
        """Render the figure now (the image view) or schedule a redraw (ipympl);
        ``changed``: only these artists changed (see :meth:`FigureView.draw`)."""
        if self.fig_view is not None:
            self.fig_view.draw(changed)

    def close(self) -> None:
        """Close the figure and the widgets."""
        if self.fig_view is not None:
            self.fig_view.close()
        self.view.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget, and the figure as it is now as a PNG: JupyterLab shows the
        widget; a static page (nbconvert, the docs site, GitHub) shows the picture."""
        bundle = self.view._repr_mimebundle_(**kwargs)
        if self.figure is not None and isinstance(bundle, dict):
            buf = io.BytesIO()
            self.figure.savefig(buf, format="png", dpi=self.figure.dpi)
            bundle["image/png"] = base64.b64encode(buf.getvalue()).decode("ascii")
        return bundle


def learner_of(source: Any) -> tuple[ContinualLearner, Run | None]:
    """The fitted learner of a learner, a :class:`Run` or a run directory (and the Run)."""
    if isinstance(source, (str, Path)):
        source = load_run(source)
    if isinstance(source, Run):
        return source.learner, source
    if isinstance(source, ContinualLearner):
        source.check_fitted()
        return source, None
    raise TypeError(f"expected a trained learner, a Run or a run directory, got "
                    f"{type(source).__name__}")


def resolve(source: Any, tasks: Sequence[Task] | None) -> tuple[ContinualLearner, list[Task]]:
    """A learner and its tasks (``tasks``, else the learner's own or the run's benchmark)."""
    learner, run = learner_of(source)
    if tasks is None:
        tasks = run.tasks() if run is not None else learner.tasks_
    tasks = list(tasks)
    if not tasks:
        raise ValueError("this learner has no test data attached (it was loaded from disk); "
                         "pass tasks=... or the Run from hnviz.load_run")
    if len(tasks) < learner.n_tasks_:
        raise ValueError(f"{len(tasks)} task(s) given for a learner that learned "
                         f"{learner.n_tasks_}; pass the whole task sequence")
    return learner, tasks[:learner.n_tasks_]


def hypercl_of(source: Any, tasks: Sequence[Task] | None, widget: str) -> tuple[HyperCL, list[Task]]:
    learner, tasks = resolve(source, tasks)
    if not isinstance(learner, HyperCL):
        raise ValueError(f"{widget} needs a hypernetwork run, but this is a "
                         f"{getattr(learner.config, 'method', type(learner).__name__)} baseline "
                         "(no task embeddings); use ForgettingDashboard to compare it")
    return learner, tasks


def task_labels(learner: ContinualLearner) -> list[str]:
    return [f"{t + 1}: {info['name']}" for t, info in enumerate(learner.task_info_)]


def check_task_trait(value: int, n_tasks: int, name: str, allow: int | None = None) -> int:
    if value == allow:
        return value
    if not 0 <= value < n_tasks:
        extra = f" (or {allow})" if allow is not None else ""
        raise TraitError(f"{name} = {value} is out of range: the run has tasks 0..{n_tasks - 1}"
                         f"{extra}")
    return value


def integer_ticks(*axes: Any) -> None:
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "linear":
                axis.set_major_locator(MaxNLocator(integer=True))


def metric_norm(metric: str, values: Any) -> Normalize:
    """Colour scale of a metric: 0-100 % for accuracy, logarithmic over ``values`` for MSE."""
    if metric == "accuracy":
        return Normalize(0, 100)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (1e-3, 1.0)
    return LogNorm(lo / 1.5, max(hi * 1.5, lo * 10))


def save_figure(figure: Figure, path: Path, dpi: int) -> Path:
    """Write ``figure`` to ``path`` (format from the suffix) atomically."""
    buf = io.BytesIO()
    figure.savefig(buf, format=path.suffix[1:].lower(), dpi=dpi)
    atomic_write(path, buf.getvalue())
    return path


def html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) >= 0.01 else f"{v:.2e}"
        return "–" if v is None else str(v)

    head = "".join(f"<th style='padding:0 8px'>{k}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td style='padding:0 8px;text-align:right'>{cell(v)}</td>"
                                    for v in r.values()) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


