"""Interactive analysis widgets for Jupyter (ipywidgets + matplotlib).

Each widget is a small ``state`` (a traitlets ``HasTraits``: set its traits from code or
through the controls), pure compute from :mod:`hnviz.analysis`, and a view that creates
its matplotlib artists once and updates their data. ``figure`` is the matplotlib figure;
errors in callbacks (and runs that cannot be loaded) appear in ``output``, the widget's
message area, and in ``errors``. A widget displays itself when it ends a cell.

- :class:`EmbeddingExplorer` — landscape of the embedding plane and the net generated at
  any point of it.
- :class:`InterpolationExplorer` — walk from task a's embedding to task b's.
- :class:`ForgettingDashboard` — matrix, forgetting curves and metrics of one or more runs.
- :class:`LiveTraining` — a callback that plots loss and matrix while a learner trains.

Widgets take a trained learner, a :class:`hnviz.runs.Run` or a run directory. Under
``%matplotlib widget`` (ipympl) figures are interactive canvases (click the embedding
plane to pick a point); under any other backend they are PNG images redrawn on change.
"""
from __future__ import annotations

import functools
import io
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import ipywidgets as widgets
import PIL.Image
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
import traitlets
from traitlets import Float, HasTraits, Int, TraitError, Tuple, Unicode, validate

from . import metrics
from .analysis import (embedding_landscape, embedding_path, evaluate_embeddings,
                       forgetting_curves, interpolate, landscape_grid, project_embeddings)
from .base import ContinualLearner
from .benchmarks import Task, toy_regression
from .config import HyperCLConfig
from .learner import HyperCL
from .plots import plot_toy_fits, task_cmap, task_colors
from .runs import Run, atomic_write, load_run
from .train import Callback

__all__ = ["EmbeddingExplorer", "ForgettingDashboard", "ForgettingLab", "InterpolationExplorer",
           "LiveTraining", "save_figures"]


# ------------------------------------------------------------------ plumbing
def _ipympl_active() -> bool:
    backend = matplotlib.get_backend().lower()
    return "ipympl" in backend or backend == "widget"


class FigureView:
    """A figure shown as a widget: the ipympl canvas when ``%matplotlib widget`` is on
    (``interactive``), otherwise an ``ipywidgets.Image`` re-rendered as PNG by :meth:`draw`.
    ``live=True`` always uses the image: it updates while the kernel is busy training."""

    def __init__(self, figsize: tuple[float, float], live: bool = False, dpi: int = 90):
        self.interactive = _ipympl_active() and not live
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
            self.widget = widgets.Image(format="png")

    def draw(self) -> None:
        if self.interactive:
            self.figure.canvas.draw_idle()
            return
        canvas = self.figure.canvas
        canvas.draw()  # then encode the pixels: faster than savefig, which draws again
        image = PIL.Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(),
                                     "raw", "RGBA", 0, 1)
        buf = io.BytesIO()
        image.save(buf, format="png", compress_level=1)
        self.widget.value = buf.getvalue()

    def close(self) -> None:
        if self.interactive:
            plt.close(self.figure)


def _guarded(method: Callable) -> Callable:
    """Run a callback; show an exception in the widget's output instead of losing it."""
    @functools.wraps(method)
    def wrapper(self: "_AnalysisWidget", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - shown to the user, never swallowed
            self._report(e)
    return wrapper


class _AnalysisWidget:
    """Shared parts: ``output`` (messages), ``errors``, ``figure``, ``view`` (the VBox)."""

    def __init__(self) -> None:
        self.output = widgets.Output()
        self.errors: list[str] = []
        self.figure: Figure | None = None
        self._fig: FigureView | None = None
        self.view = widgets.VBox([self.output])

    def _report(self, error: BaseException | str, context: str = "") -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        text = f"{context}{text}"
        self.errors.append(text)
        self.output.append_stderr(text + "\n")

    def _new_figure(self, figsize: tuple[float, float], live: bool = False) -> Figure:
        self._fig = FigureView(figsize, live)
        self.figure = self._fig.figure
        return self.figure

    def _show(self, *controls: widgets.Widget, below: Sequence[widgets.Widget] = ()) -> None:
        self.view.children = [*controls, self._fig.widget, *below, self.output]

    def redraw(self) -> None:
        """Render the figure now (the image view) or schedule a redraw (ipympl)."""
        if self._fig is not None:
            self._fig.draw()

    def close(self) -> None:
        """Close the figure and the widgets."""
        if self._fig is not None:
            self._fig.close()
        self.view.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.view._repr_mimebundle_(**kwargs)


def _learner_of(source: Any) -> tuple[ContinualLearner, Run | None]:
    """The fitted learner of a learner, a :class:`Run` or a run directory (and the Run)."""
    if isinstance(source, (str, Path)):
        source = load_run(source)
    if isinstance(source, Run):
        return source.learner, source
    if isinstance(source, ContinualLearner):
        source._check_fitted()
        return source, None
    raise TypeError(f"expected a trained learner, a Run or a run directory, got "
                    f"{type(source).__name__}")


def _resolve(source: Any, tasks: Sequence[Task] | None) -> tuple[ContinualLearner, list[Task]]:
    """A learner and its tasks (``tasks``, else the learner's own or the run's benchmark)."""
    learner, run = _learner_of(source)
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


def _hypercl(source: Any, tasks: Sequence[Task] | None, widget: str) -> tuple[HyperCL, list[Task]]:
    learner, tasks = _resolve(source, tasks)
    if not isinstance(learner, HyperCL):
        raise ValueError(f"{widget} needs a hypernetwork run, but this is a "
                         f"{getattr(learner.config, 'method', type(learner).__name__)} baseline "
                         "(no task embeddings); use ForgettingDashboard to compare it")
    return learner, tasks


def _labels(learner: ContinualLearner) -> list[str]:
    return [f"{t + 1}: {info['name']}" for t, info in enumerate(learner.task_info_)]


def _metric_label(metric: str) -> str:
    return "accuracy (%)" if metric == "accuracy" else "MSE"


def _check_task_trait(value: int, n_tasks: int, name: str, allow: int | None = None) -> int:
    if value == allow:
        return value
    if not 0 <= value < n_tasks:
        extra = f" (or {allow})" if allow is not None else ""
        raise TraitError(f"{name} = {value} is out of range: the run has tasks 0..{n_tasks - 1}"
                         f"{extra}")
    return value


def _integer_ticks(*axes: Any) -> None:
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "linear":
                axis.set_major_locator(MaxNLocator(integer=True))


def _norm(metric: str, values: Any) -> Normalize:
    """Colour scale of a metric: 0-100 % for accuracy, logarithmic over ``values`` for MSE."""
    if metric == "accuracy":
        return Normalize(0, 100)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (1e-3, 1.0)
    return LogNorm(lo / 1.5, max(hi * 1.5, lo * 10))


class _NetPanel:
    """The net generated from one embedding: its function with every task's data (1-D
    regression) or its metric on every task as bars, with each task's own final score."""

    def __init__(self, ax: Any, learner: HyperCL, tasks: list[Task]):
        self.ax, self.learner, self.tasks = ax, learner, tasks
        self.metric = learner.metric_
        T = len(tasks)
        colors = task_colors(T)
        self.regression = tasks[0].kind == "regression" and tasks[0].in_features == 1
        if self.regression:
            lo = min(float(t.x_test.min()) for t in tasks)
            hi = max(float(t.x_test.max()) for t in tasks)
            self.x = torch.linspace(lo, hi, 300)[:, None]
            for t, c in zip(tasks, colors):
                ax.scatter(t.x_train[:, 0], t.y_train[:, 0], s=6, color=c, alpha=0.35,
                           label=t.name if T <= 10 else None)
            ys = torch.cat([t.y_train[:, 0] for t in tasks])
            pad = 0.15 * float(ys.max() - ys.min())
            ax.set_ylim(float(ys.min()) - pad, float(ys.max()) + pad)
            self.line, = ax.plot(self.x[:, 0], np.zeros(len(self.x)), color="k", lw=2.5,
                                 label="generated net")
            ax.set(xlabel="x", ylabel="y")
            ax.legend(fontsize=7, loc="upper left", ncol=2)
        else:
            self.bars = ax.add_collection(PolyCollection(self._bar_verts(np.zeros(T)),
                                                         facecolors=colors, edgecolors="none"))
            own = learner.matrix_[-1]
            ax.scatter(np.arange(1, T + 1), own, marker="_", color="k", s=120 if T <= 20 else 20,
                       zorder=3, label="task's own net")
            ax.set(xlabel="task", ylabel=_metric_label(self.metric), xlim=(0.3, T + 0.7))
            if self.metric == "accuracy":
                ax.set_ylim(0, 102)
            if T <= 20:
                ax.set_xticks(range(1, T + 1))
            ax.legend(fontsize=7, loc="lower right")
        self.values = np.zeros(T)

    def update(self, emb: np.ndarray) -> np.ndarray:
        """Show the net generated from ``emb`` ``(E,)``; returns its metric per task ``(T,)``."""
        emb = np.asarray(emb, dtype=np.float32)
        self.values = evaluate_embeddings(self.learner, self.tasks, emb[None])[0]
        if self.regression:
            self.line.set_ydata(self.learner.predict_with_embedding(self.x, emb)[:, 0].numpy())
        else:
            self.bars.set_verts(self._bar_verts(self.values))
            if self.metric != "accuracy":
                self.ax.set_ylim(0, 1.1 * max(float(np.nanmax(self.values)), 1e-6))
        return self.values

    @staticmethod
    def _bar_verts(heights: np.ndarray) -> np.ndarray:
        """Rectangles ``(T, 4, 2)`` for bars at x = 1..T: one collection draws fast."""
        x = np.arange(1, len(heights) + 1, dtype=float)
        lo, hi, zero = x - 0.4, x + 0.4, np.zeros_like(x)
        return np.stack([np.column_stack(p) for p in ((lo, zero), (lo, heights),
                                                      (hi, heights), (hi, zero))], axis=1)

    def bar_heights(self) -> np.ndarray:
        """The drawn bar heights ``(T,)`` (classification)."""
        return np.array([path.vertices[1, 1] for path in self.bars.get_paths()])

    def describe(self) -> str:
        if len(self.values) <= 4:
            fmt = "{:.1f}" if self.metric == "accuracy" else "{:.3g}"
            return ", ".join(fmt.format(v) for v in self.values)
        return f"mean {np.mean(self.values):.3g}"


# ------------------------------------------------------------ EmbeddingExplorer
class EmbeddingState(HasTraits):
    """``color_by``: task whose metric colours the landscape (-1: which task wins);
    ``point``: a point of the 2-D embedding plane (PCA plane above E = 2)."""

    color_by = Int(-1)
    point = Tuple(Float(0.0), Float(0.0))
    n_tasks = Int(0)

    @validate("color_by")
    def _valid_color(self, proposal: Any) -> int:
        return _check_task_trait(proposal["value"], self.n_tasks, "color_by", allow=-1)

    @validate("point")
    def _valid_point(self, proposal: Any) -> tuple[float, float]:
        if not np.all(np.isfinite(proposal["value"])):
            raise TraitError(f"point {proposal['value']} must be finite")
        return proposal["value"]


class EmbeddingExplorer(_AnalysisWidget):
    """The task-embedding plane: a landscape coloured by one task's metric (or by which
    task wins) with the learned embeddings on top, and the net generated at ``point``.

    ``run``: a trained :class:`HyperCL`, a :class:`Run` or a run directory; ``tasks``:
    the task sequence (default: the learner's own or the run's benchmark). Landscapes use
    ``resolution`` x ``resolution`` grid points and ``n_samples`` test points per task;
    the markers and the net panel use the full test sets. ``color_by`` starts the view
    (default: which task wins up to 20 tasks, else task 0: "which task wins" evaluates
    every task at every grid point, T times the work of one task's landscape).
    """

    def __init__(self, run: Any, tasks: Sequence[Task] | None = None, resolution: int = 40,
                 n_samples: int | None = 100, margin: float = 0.5, color_by: int | None = None):
        super().__init__()
        self.state = EmbeddingState()
        try:
            self.learner, self.tasks = _hypercl(run, tasks, "EmbeddingExplorer")
        except Exception as e:  # noqa: BLE001
            self._report(e, "could not open the run: ")
            return
        self.resolution, self.n_samples, self.margin = resolution, n_samples, margin
        self._landscapes: dict[int, dict[str, Any]] = {}
        self._own: dict[int, np.ndarray] = {}
        self.state.n_tasks = len(self.tasks)
        try:
            self.state.color_by = (-1 if len(self.tasks) <= 20 else 0) if color_by is None \
                else color_by
        except TraitError as e:
            self._report(e)
            return
        self._build()

    def _build(self) -> None:
        learner, T = self.learner, len(self.tasks)
        self.points, self.projection = project_embeddings(learner.embeddings_.numpy())
        self.xs, self.ys = landscape_grid(self.points, self.resolution, self.margin)
        fig = self._new_figure((11, 4.6))
        self.ax_land, self.ax_net = fig.subplots(1, 2, width_ratios=[1.05, 1])
        extent = (self.xs[0], self.xs[-1], self.ys[0], self.ys[-1])
        self.image = self.ax_land.imshow(np.zeros((2, 2)), origin="lower", extent=extent,
                                         aspect="auto", interpolation="nearest")
        self.colorbar = fig.colorbar(self.image, ax=self.ax_land)
        self.markers = self.ax_land.scatter(*self.points.T, c=np.zeros(T), s=45 if T <= 20 else 22,
                                            edgecolor="w", linewidth=1.2, zorder=3)
        self.labels = [self.ax_land.annotate(str(t + 1), p, xytext=(4, 4), color="w", fontsize=8,
                                             textcoords="offset points", fontweight="bold")
                       for t, p in enumerate(self.points)] if T <= 20 else []
        self.selected_label = self.ax_land.annotate("", (0, 0), xytext=(5, 5), color="w",
                                                    textcoords="offset points", fontsize=9,
                                                    fontweight="bold", visible=False)
        self.cursor, = self.ax_land.plot([], [], marker="X", color="red", ms=12, mec="w", zorder=4)
        axis = "PC" if self.projection.method == "pca" else "e"
        self.ax_land.set(xlabel=f"{axis} 1", ylabel=f"{axis} 2")
        self.net = _NetPanel(self.ax_net, learner, self.tasks)
        self.state.point = tuple(float(v) for v in self.points[0])

        opts = [("which task wins", -1)] + [(s, t) for t, s in enumerate(_labels(learner))]
        self.color_box = widgets.Dropdown(options=opts, value=self.state.color_by,
                                          description="colour by")
        widgets.link((self.color_box, "value"), (self.state, "color_by"))
        self.goto = widgets.Dropdown(options=[("—", -1)] + opts[1:], value=-1,
                                     description="go to task")
        self.goto.observe(self._on_goto, "value")
        step = (self.xs[-1] - self.xs[0]) / 200
        slider = dict(step=step, continuous_update=True, readout_format=".2f")
        self.x_slider = widgets.FloatSlider(self.state.point[0], min=self.xs[0], max=self.xs[-1],
                                            description=f"{axis} 1", **slider)
        self.y_slider = widgets.FloatSlider(self.state.point[1], min=self.ys[0], max=self.ys[-1],
                                            description=f"{axis} 2", **slider)
        for s in (self.x_slider, self.y_slider):
            s.observe(self._on_slider, "value")
        self._syncing = False
        self.state.observe(self._on_color, "color_by")
        self.state.observe(self._on_point, "point")
        if self._fig.interactive:
            fig.canvas.mpl_connect("button_press_event", self._on_click)
        self._show(widgets.HBox([self.color_box, self.goto]),
                   widgets.HBox([self.x_slider, self.y_slider]))
        self._update_landscape()
        self._update_point()
        fig.tight_layout(w_pad=2.5)  # room between the colour bar's label and the net panel
        self.redraw()

    # compute --------------------------------------------------------------
    def landscape(self, task: int) -> dict[str, Any]:
        """The (cached) landscape of ``task`` (-1: which task wins)."""
        if task not in self._landscapes:
            self._landscapes[task] = embedding_landscape(
                self.learner, self.tasks, "winner" if task < 0 else task, self.resolution,
                self.margin, self.n_samples)
        return self._landscapes[task]

    def own_metric(self, task: int) -> np.ndarray:
        """``task``'s metric ``(T,)`` of the nets at every learned embedding (full test set)."""
        if task not in self._own:
            self._own[task] = evaluate_embeddings(self.learner, [self.tasks[task]],
                                                  self.learner.embeddings_)[:, 0]
        return self._own[task]

    def embedding_at(self, point: Sequence[float]) -> np.ndarray:
        """The embedding ``(E,)`` at a point of the plane."""
        return self.projection.inverse_transform(np.asarray(point, float)[None])[0]

    # view -----------------------------------------------------------------
    def _update_landscape(self) -> None:
        t, T, metric = self.state.color_by, len(self.tasks), self.net.metric
        land = self.landscape(t)
        if t < 0:
            cmap, norm = task_cmap(T), Normalize(-0.5, T - 0.5)
            data, marks = land["winner"], np.arange(T)
            label, title = "best task", f"which task wins (best {metric})"
        else:
            cmap = plt.get_cmap("viridis" if metric == "accuracy" else "viridis_r")
            data, marks = land["values"], self.own_metric(t)
            norm = _norm(metric, np.concatenate([data.ravel(), marks]))
            label = _metric_label(metric)
            title = f"{metric} of task {t + 1} ({self.tasks[t].name})"
        for artist in (self.image, self.markers):
            artist.set_cmap(cmap)
            artist.set_norm(norm)
        self.image.set_data(data)
        self.markers.set_array(marks)
        self.colorbar.update_normal(self.image)
        self.colorbar.set_label(label)
        if t < 0:  # image values are 0-based task indices; figures number tasks from 1
            shown = [1] + [int(v) for v in MaxNLocator(6, integer=True).tick_values(1, T)
                           if 1 < v <= T] if T > 20 else range(1, T + 1)
            self.colorbar.set_ticks([v - 1 for v in shown], labels=[str(v) for v in shown])
        self.ax_land.set_title(title, fontsize=10)
        self.markers.set_sizes(np.where(np.arange(T) == t, 110, 45 if T <= 20 else 22))
        show = t >= 0 and not self.labels
        self.selected_label.set_visible(show)
        if show:
            self.selected_label.xy = tuple(self.points[t])
            self.selected_label.set_text(str(t + 1))

    def _update_point(self) -> None:
        px, py = self.state.point
        self.cursor.set_data([px], [py])
        self.net.update(self.embedding_at((px, py)))
        self.ax_net.set_title(f"net generated at ({px:.2f}, {py:.2f}): {self.net.describe()}",
                              fontsize=10)

    # callbacks ------------------------------------------------------------
    @_guarded
    def _on_color(self, _: Any) -> None:
        self._update_landscape()
        self.redraw()

    @_guarded
    def _on_point(self, _: Any) -> None:
        self._syncing = True
        try:
            self.x_slider.value, self.y_slider.value = self.state.point
        finally:
            self._syncing = False
        self._update_point()
        self.redraw()

    @_guarded
    def _on_slider(self, _: Any) -> None:
        if not self._syncing:
            self.state.point = (self.x_slider.value, self.y_slider.value)

    @_guarded
    def _on_goto(self, change: Any) -> None:
        if change["new"] >= 0:
            self.state.point = tuple(float(v) for v in self.points[change["new"]])

    @_guarded
    def _on_click(self, event: Any) -> None:
        if event.inaxes is self.ax_land and event.xdata is not None:
            self.state.point = (float(event.xdata), float(event.ydata))


# --------------------------------------------------------- InterpolationExplorer
class InterpolationState(HasTraits):
    """Tasks ``a``, ``b`` and ``alpha``: the net at e(alpha) = (1 - alpha) e_a + alpha e_b."""

    a = Int(0)
    b = Int(1)
    alpha = Float(0.0)
    n_tasks = Int(0)

    @validate("a", "b")
    def _valid_task(self, proposal: Any) -> int:
        return _check_task_trait(proposal["value"], self.n_tasks, proposal["trait"].name)

    @validate("alpha")
    def _valid_alpha(self, proposal: Any) -> float:
        if not np.isfinite(proposal["value"]):
            raise TraitError(f"alpha = {proposal['value']} must be finite")
        return proposal["value"]


class InterpolationExplorer(_AnalysisWidget):
    """Walk between two task embeddings: the net generated at e(alpha) (left) and every
    task's metric along the whole path ``[-extrapolate, 1 + extrapolate]`` with a marker
    at alpha (right). At alpha = 0 the net is task a's own, at alpha = 1 task b's."""

    def __init__(self, run: Any, a: int = 0, b: int = 1, tasks: Sequence[Task] | None = None,
                 n_steps: int = 41, extrapolate: float = 0.5):
        super().__init__()
        self.state = InterpolationState()
        try:
            self.learner, self.tasks = _hypercl(run, tasks, "InterpolationExplorer")
            if extrapolate < 0:
                raise ValueError(f"extrapolate must be >= 0, got {extrapolate}")
            T = len(self.tasks)
            _check_task_trait(a, T, "a")
            _check_task_trait(b, T, "b")
        except Exception as e:  # noqa: BLE001
            self._report(e, "could not open the run: ")
            return
        self.n_steps, self.extrapolate = n_steps, extrapolate
        self.state.n_tasks = T
        self.state.a, self.state.b = a, b
        self._build()

    def _build(self) -> None:
        T = len(self.tasks)
        fig = self._new_figure((11, 4.3))
        self.ax_net, self.ax_path = fig.subplots(1, 2)
        self.net = _NetPanel(self.ax_net, self.learner, self.tasks)
        ax = self.ax_path
        self.many = T > 10
        if self.many:  # every task faint, a and b bold
            self.others = ax.add_collection(LineCollection([], colors="0.7", linewidths=0.6,
                                                           label="other tasks"))
            self.lines = [ax.plot([], [], color=c, lw=2.2)[0] for c in ("C0", "C3")]
        else:
            self.lines = [ax.plot([], [], color=c, lw=1.8, label=f"task {t + 1}")[0]
                          for t, c in enumerate(task_colors(T))]
        for x in (0.0, 1.0):
            ax.axvline(x, color="0.6", ls="--", lw=1)
        self.marker = ax.axvline(self.state.alpha, color="k", lw=1.5)
        ax.set(xlabel="α   (0: task a's embedding, 1: task b's)",
               ylabel=_metric_label(self.net.metric),
               xlim=(-self.extrapolate - 0.02, 1 + self.extrapolate + 0.02))
        if self.net.metric == "accuracy":
            ax.set_ylim(0, 102)
        opts = [(s, t) for t, s in enumerate(_labels(self.learner))]
        self.a_box = widgets.Dropdown(options=opts, value=self.state.a, description="task a")
        self.b_box = widgets.Dropdown(options=opts, value=self.state.b, description="task b")
        self.slider = widgets.FloatSlider(self.state.alpha, min=-self.extrapolate,
                                          max=1 + self.extrapolate, step=0.01, description="α",
                                          continuous_update=True, readout_format=".2f")
        for box, name in ((self.a_box, "a"), (self.b_box, "b"), (self.slider, "alpha")):
            widgets.link((box, "value"), (self.state, name))
        self.state.observe(self._on_tasks, ["a", "b"])
        self.state.observe(self._on_alpha, "alpha")
        self._show(widgets.HBox([self.a_box, self.b_box]), self.slider)
        self._update_path()
        self._update_alpha()
        fig.tight_layout()
        self.redraw()

    def embedding(self, alpha: float) -> np.ndarray:
        """e(alpha) ``(E,)``, the point of :func:`hnviz.analysis.interpolate`'s path."""
        return embedding_path(self.learner, self.state.a, self.state.b, [alpha])[0]

    def _update_path(self) -> None:
        a, b = self.state.a, self.state.b
        self.path = interpolate(self.learner, self.tasks, a, b, self.n_steps, self.extrapolate)
        alphas, m = self.path["alphas"], self.path["metrics"]
        names = [f"task {t + 1}: {self.tasks[t].name}" for t in (a, b)]
        if self.many:
            self.others.set_segments([np.column_stack([alphas, m[:, t]])
                                      for t in range(m.shape[1]) if t not in (a, b)])
            for line, t, name in zip(self.lines, (a, b), names):
                line.set_data(alphas, m[:, t])
                line.set_label(f"{name} ({'a' if t == a else 'b'})")
        else:
            for t, line in enumerate(self.lines):
                line.set_data(alphas, m[:, t])
                line.set(lw=3 if t in (a, b) else 1.2, alpha=1 if t in (a, b) else 0.55)
        if self.net.metric != "accuracy":
            norm = _norm(self.net.metric, m)
            self.ax_path.set(yscale="log", ylim=(norm.vmin, norm.vmax))
        self.ax_path.legend(fontsize=7, loc="lower left" if self.net.metric == "accuracy"
                            else "upper left", ncol=1 if self.many else 2)
        self.ax_path.set_title(f"{self.net.metric} along the path from task {a + 1} to task {b + 1}",
                               fontsize=10)

    def _update_alpha(self) -> None:
        alpha = self.state.alpha
        self.marker.set_xdata([alpha, alpha])
        self.net.update(self.embedding(alpha))
        self.ax_net.set_title(f"net at α = {alpha:.2f}: {self.net.describe()}", fontsize=10)

    @_guarded
    def _on_tasks(self, _: Any) -> None:
        self._update_path()
        self._update_alpha()
        self.redraw()

    @_guarded
    def _on_alpha(self, _: Any) -> None:
        self._update_alpha()
        self.redraw()


# ------------------------------------------------------------ ForgettingDashboard
class DashboardState(HasTraits):
    """``run``: whose matrix is shown; ``selected``: runs drawn in the curves; ``task``:
    the highlighted task (-1: none)."""

    run = Unicode("")
    selected = Tuple()
    task = Int(-1)
    run_names = Tuple()
    n_tasks = Int(0)

    @validate("run")
    def _valid_run(self, proposal: Any) -> str:
        if proposal["value"] not in self.run_names:
            raise TraitError(f"unknown run {proposal['value']!r}; the dashboard has "
                             f"{', '.join(self.run_names)}")
        return proposal["value"]

    @validate("selected")
    def _valid_selected(self, proposal: Any) -> tuple:
        bad = [r for r in proposal["value"] if r not in self.run_names]
        if bad:
            raise TraitError(f"unknown run(s) {bad}; the dashboard has {', '.join(self.run_names)}")
        return tuple(proposal["value"])

    @validate("task")
    def _valid_task(self, proposal: Any) -> int:
        return _check_task_trait(proposal["value"], self.n_tasks, "task", allow=-1)


class ForgettingDashboard(_AnalysisWidget):
    """Compare runs: the metric matrix R of one run, forgetting curves (every task of one
    run; mean and 10–90 % band of each selected run), a summary table, a task highlight,
    and a button that saves the figure (PNG or SVG).

    ``runs``: one run (learner, :class:`Run` or directory) or a mapping name -> run.
    Runs that cannot be loaded are reported in ``output``; the others are shown.
    """

    def __init__(self, runs: Any, save_dir: str | Path = "."):
        super().__init__()
        self.state = DashboardState()
        self.save_dir = Path(save_dir)
        items = runs.items() if isinstance(runs, Mapping) else [(self._name(runs), runs)]
        self.matrices: dict[str, np.ndarray] = {}
        self.metric = ""
        for name, source in items:
            try:
                learner, _ = _learner_of(source)
                if self.metric and learner.metric_ != self.metric:
                    raise ValueError(f"its metric is {learner.metric_}, the other runs' is "
                                     f"{self.metric}; compare runs of one kind")
                self.metric = learner.metric_
                self.matrices[str(name)] = np.asarray(learner.matrix_, dtype=float)
            except Exception as e:  # noqa: BLE001
                self._report(e, f"could not open run {name!r}: ")
        if not self.matrices:
            self._report("no run to show")
            return
        names = tuple(self.matrices)
        self.state.run_names = names
        self.state.n_tasks = max(len(R) for R in self.matrices.values())
        self.state.run, self.state.selected = names[0], names
        self._build()

    @staticmethod
    def _name(source: Any) -> str:
        if isinstance(source, (str, Path)):
            return Path(source).name
        if isinstance(source, Run):
            return source.path.name
        return getattr(getattr(source, "config", None), "method", "hnet")

    def _build(self) -> None:
        fig = self._new_figure((12, 4.6))
        self.ax_R, self.ax_curves = fig.subplots(1, 2, width_ratios=[1, 1.35])
        cmap = "viridis" if self.metric == "accuracy" else "viridis_r"
        self.image = self.ax_R.imshow(np.zeros((2, 2)), cmap=cmap, interpolation="nearest",
                                      norm=_norm(self.metric, self._all_values()))
        fig.colorbar(self.image, ax=self.ax_R, label=_metric_label(self.metric))
        self.ax_R.set(xlabel="evaluated task", ylabel="after training task")
        self.R_mark = self.ax_R.axvline(0, color="r", lw=1.5, visible=False)
        ax = self.ax_curves
        self.artists: dict[str, dict[str, Any]] = {}
        for i, (name, R) in enumerate(self.matrices.items()):
            fc, T = forgetting_curves(R), len(R)
            x = np.arange(1, T + 1)
            color = f"C{i % 10}"
            tasks = LineCollection([np.column_stack([x, c]) for c in fc["curves"]],
                                   cmap="viridis", linewidths=0.8 if T > 10 else 1.5, alpha=0.55)
            tasks.set_array(np.arange(1, T + 1))
            self.artists[name] = {
                "tasks": ax.add_collection(tasks),
                "band": ax.fill_between(x, fc["lo"], fc["hi"], color=color, alpha=0.15),
                "mean": ax.plot(x, fc["mean"], color=color, lw=2.5)[0],
                "highlight": ax.plot([], [], color=color, lw=2, ls="--", marker="o", ms=3)[0],
            }
        ax.set(xlabel="tasks trained", ylabel=_metric_label(self.metric),
               xlim=(0.5, self.state.n_tasks + 0.5))
        if self.metric == "accuracy":  # from 10 points below the lowest value, in tens
            low = np.nanmin(self._all_values())
            ax.set_ylim(max(0.0, 10 * np.floor(low / 10) - 10), 101)
        else:
            ax.set_yscale("log")
            norm = _norm(self.metric, self._all_values())
            ax.set_ylim(norm.vmin, norm.vmax)
        _integer_ticks(self.ax_R)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        names = list(self.matrices)
        self.run_box = widgets.Dropdown(options=names, value=self.state.run, description="matrix of")
        self.select = widgets.SelectMultiple(options=names, value=self.state.selected,
                                             description="curves", rows=min(len(names), 4))
        self.task_slider = widgets.IntSlider(0, min=0, max=self.state.n_tasks,
                                             description="highlight task",
                                             style={"description_width": "initial"})
        for box, name in ((self.run_box, "run"), (self.select, "selected")):
            widgets.link((box, "value"), (self.state, name))
        # the slider counts tasks from 1 (0: none); the state is 0-based (-1: none)
        traitlets.link((self.task_slider, "value"), (self.state, "task"),
                       transform=(lambda v: v - 1, lambda t: t + 1))
        self.table = widgets.HTML()
        self.filename = widgets.Text("forgetting", description="file")
        self.fmt = widgets.ToggleButtons(options=["png", "svg"], value="png")
        self.fmt.style.button_width = "50px"
        self.save_button = widgets.Button(description="save figure", icon="save")
        self.save_button.on_click(self._on_save)
        self.state.observe(self._on_change, ["run", "selected", "task"])
        self._show(widgets.HBox([self.run_box, self.select, self.task_slider]),
                   below=[self.table, widgets.HBox([self.filename, self.fmt, self.save_button])])
        self._update()
        fig.tight_layout()
        self.redraw()

    def _all_values(self) -> np.ndarray:
        return np.concatenate([R.ravel() for R in self.matrices.values()])

    def summary(self) -> list[dict[str, Any]]:
        """One row per run: name, tasks, final average, forgetting, BWT (and the
        highlighted task's final metric)."""
        rows = []
        for name, R in self.matrices.items():
            s = metrics.summary(R, self.metric)
            row = {"run": name, "tasks": len(R), "final average": s["average_final"],
                   "forgetting": s["forgetting"], "BWT": s["bwt"]}
            if self.state.task >= 0:
                t = self.state.task
                row[f"task {t + 1} final"] = float(R[-1, t]) if t < len(R) else None
            rows.append(row)
        return rows

    def _update(self) -> None:
        st = self.state
        R = self.matrices[st.run]
        T = len(R)
        self.image.set_data(np.ma.masked_invalid(R))
        self.image.set_extent((0.5, T + 0.5, T + 0.5, 0.5))
        self.ax_R.set(xlim=(0.5, T + 0.5), ylim=(T + 0.5, 0.5), title=f"{self.metric} matrix R: {st.run}")
        self.R_mark.set_visible(0 <= st.task < T)
        self.R_mark.set_xdata([st.task + 1] * 2)
        single = len(st.selected) == 1
        handles = []
        for name, art in self.artists.items():
            shown = name in st.selected
            art["tasks"].set_visible(shown and single)
            art["band"].set_visible(shown)
            art["mean"].set_visible(shown)
            art["mean"].set_label(f"{name}: mean" if single else name)
            art["band"].set_label(f"{name}: 10–90 %")
            Rn = self.matrices[name]
            has_task = 0 <= st.task < len(Rn)
            art["highlight"].set_visible(shown and has_task)
            if has_task:
                x = np.arange(1, len(Rn) + 1)
                art["highlight"].set_data(x, Rn[:, st.task])
                art["highlight"].set_label(f"{name}: task {st.task + 1}")
            if shown:
                handles += [art["mean"]] + ([art["band"]] if single else []) \
                    + ([art["highlight"]] if has_task else [])
        self.ax_curves.legend(handles=handles, fontsize=7, loc="lower left", framealpha=0.8,
                              ncol=1 if single or len(handles) <= 4 else 2)
        what = ("every task (colour: task 1 dark … last yellow)" if single
                else "mean over tasks seen, band 10–90 %")
        self.ax_curves.set_title(f"forgetting curves: {what}", fontsize=10)
        self.table.value = _html_table(self.summary())

    @_guarded
    def _on_change(self, _: Any) -> None:
        self._update()
        self.redraw()

    def save(self, path: str | Path) -> Path:
        """Save the current figure (format from the suffix: .png or .svg), atomically."""
        path = Path(path)
        if path.suffix.lower() not in (".png", ".svg"):
            raise ValueError(f"cannot save {path.name!r}: use a .png or .svg file name")
        _save_figure(self.figure, path, dpi=150)
        return path

    @_guarded
    def _on_save(self, _: Any) -> None:
        name = self.filename.value.strip() or "forgetting"
        path = self.save(self.save_dir / f"{Path(name).stem}.{self.fmt.value}")
        self.output.append_stdout(f"saved {path.resolve()}\n")


def _save_figure(figure: Figure, path: Path, dpi: int) -> Path:
    """Write ``figure`` to ``path`` (format from the suffix) atomically."""
    buf = io.BytesIO()
    figure.savefig(buf, format=path.suffix[1:].lower(), dpi=dpi)
    atomic_write(path, buf.getvalue())
    return path


def _html_table(rows: list[dict[str, Any]]) -> str:
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


# ------------------------------------------------------------------ LiveTraining
class LiveState(HasTraits):
    """Where training is: ``task`` (0-based), ``step`` within it and the last losses."""

    task = Int(-1)
    step = Int(0)
    task_loss = Float(float("nan"))
    reg_loss = Float(0.0)


class LiveTraining(_AnalysisWidget, Callback):
    """A callback widget: pass it to ``fit``/``partial_fit`` (``callbacks=[live]``) and
    it plots the task and regularizer losses and the metric matrix while the model trains.

    It redraws at most every ``min_interval`` seconds and at every task's end; its figure
    is a PNG image, which updates even while the kernel is busy.
    """

    def __init__(self, min_interval: float = 0.5):
        _AnalysisWidget.__init__(self)
        self.state = LiveState()
        self.min_interval = min_interval
        self.task_loss: list[float] = []
        self.reg_loss: list[float] = []
        self.boundaries: list[int] = []
        self._last = 0.0
        fig = self._new_figure((11, 3.8), live=True)
        self.ax_loss, self.ax_R = fig.subplots(1, 2, width_ratios=[1.5, 1])
        self.loss_line, = self.ax_loss.plot([], [], color="C0", lw=1, label="task loss")
        self.reg_line, = self.ax_loss.plot([], [], color="C3", lw=1, label="regularizer")
        self.ax_loss.set(xlabel="training step (all tasks)", ylabel="loss", yscale="log",
                         title="losses")
        self.ax_loss.legend(fontsize=8, loc="upper right")
        self.image = self.ax_R.imshow(np.full((1, 1), np.nan), interpolation="nearest",
                                      extent=(0.5, 1.5, 1.5, 0.5))
        self.colorbar = fig.colorbar(self.image, ax=self.ax_R)
        self.ax_R.set(xlabel="evaluated task", ylabel="after training task", title="matrix R")
        _integer_ticks(self.ax_R)
        fig.tight_layout()
        self.status = widgets.HTML("waiting for training to start")
        self.view.children = [self.status, self._fig.widget, self.output]
        self.redraw()

    def on_task_start(self, learner: Any, task: Task) -> None:
        self.boundaries.append(len(self.task_loss))
        self.n_steps = learner.config.n_steps
        self.n_tasks = task.n_tasks
        self.state.task, self.state.step = task.task_id, 0
        if len(self.boundaries) > 1:
            self.ax_loss.axvline(self.boundaries[-1], color="0.75", lw=0.8, ls=":")

    def on_step(self, learner: Any, task_id: int, step: int, logs: dict[str, float]) -> None:
        self.task_loss.append(logs["task_loss"])
        self.reg_loss.append(logs.get("reg_loss", 0.0))
        self.state.step, self.state.task_loss = step + 1, logs["task_loss"]
        self.state.reg_loss = logs.get("reg_loss", 0.0)
        if time.perf_counter() - self._last >= self.min_interval:
            self._render()

    def on_task_end(self, learner: Any, task_id: int, logs: dict[str, Any]) -> None:
        R = learner.matrix_
        T = len(R)
        metric = learner.metric_
        self.image.set_norm(_norm(metric, R))
        if metric != "accuracy":
            self.image.set_cmap("viridis_r")
        self.image.set_data(np.ma.masked_invalid(R))
        self.image.set_extent((0.5, T + 0.5, T + 0.5, 0.5))
        self.ax_R.set(xlim=(0.5, T + 0.5), ylim=(T + 0.5, 0.5))
        self.colorbar.update_normal(self.image)
        self.colorbar.set_label(_metric_label(metric))
        avg = float(np.mean(R[-1]))
        self.ax_R.set_title(f"matrix R (average now {avg:.3g})", fontsize=10)
        if T == 1:  # the colour bar got its label: lay out once more
            self.figure.tight_layout()
        self._render()

    @_guarded
    def _render(self) -> None:
        x = np.arange(len(self.task_loss))
        self.loss_line.set_data(x, self.task_loss)
        reg = np.asarray(self.reg_loss, dtype=float)
        self.reg_line.set_data(x, np.where(reg > 0, reg, np.nan))
        self.ax_loss.relim()
        self.ax_loss.autoscale_view()
        st = self.state
        self.status.value = (f"task {st.task + 1}/{getattr(self, 'n_tasks', '?')} · step "
                             f"{st.step}/{getattr(self, 'n_steps', '?')} · task loss "
                             f"{st.task_loss:.4g} · regularizer {st.reg_loss:.3g}")
        self.redraw()
        self._last = time.perf_counter()



class LabState(HasTraits):
    """``beta``: the output regularizer's strength for the next training run."""

    beta = Float(0.01)

    @validate("beta")
    def _valid_beta(self, proposal: Any) -> float:
        if not (np.isfinite(proposal["value"]) and proposal["value"] >= 0):
            raise TraitError(f"beta = {proposal['value']} must be finite and >= 0")
        return proposal["value"]


class ForgettingLab(_AnalysisWidget):
    """Catastrophic forgetting for a classroom: pick beta on a slider, press "train" (or
    call :meth:`train`) and watch :class:`LiveTraining`; the figure then shows the nets
    after the last task (toy: the fitted functions) and each task's final metric for
    every beta tried so far.

    ``tasks``: a task sequence (default: the toy regression); ``preset``: the config
    preset; ``n_steps``: steps per task (default: the preset's).
    """

    def __init__(self, tasks: Sequence[Task] | None = None, preset: str = "toy_regression",
                 betas: Sequence[float] = (0.0, 1e-4, 1e-3, 0.005, 0.01, 0.05, 0.1),
                 beta: float = 0.01, n_steps: int | None = None, random_state: int = 0):
        super().__init__()
        self.state = LabState()
        self.tasks = list(tasks) if tasks is not None else list(toy_regression())
        self.config = HyperCLConfig.preset(preset, **({"n_steps": n_steps} if n_steps else {}))
        self.random_state = random_state
        self.results: dict[float, np.ndarray] = {}
        self.learner: HyperCL | None = None
        self.state.beta = beta
        self.live = LiveTraining()
        fig = self._new_figure((11, 4))
        self.ax_fit, self.ax_final = fig.subplots(1, 2)
        self.metric = self.tasks[0].metric
        self.ax_final.set(xlabel="task", ylabel=f"final {_metric_label(self.metric)}",
                          title="each task after the whole sequence, per β")
        self.ax_fit.set_title("press “train”", fontsize=10)
        self.ax_fit.set_axis_off()
        fig.tight_layout()
        options = sorted({float(b) for b in (*betas, beta)})
        self.slider = widgets.SelectionSlider(options=[(f"{b:g}", b) for b in options],
                                              value=float(beta), description="β",
                                              continuous_update=False)
        widgets.link((self.slider, "value"), (self.state, "beta"))
        self.button = widgets.Button(description="train", icon="play", button_style="primary")
        self.button.on_click(lambda _: self._train_clicked())
        self._show(widgets.HBox([self.slider, self.button]), self.live.view)
        self.redraw()

    def train(self) -> HyperCL:
        """Train on the tasks with the current beta (live plot), then update the figure."""
        beta = self.state.beta
        self.learner = HyperCL(self.config.replace(beta=beta), random_state=self.random_state,
                               progress=False).fit(self.tasks, callbacks=[self.live])
        self.results[beta] = self.learner.matrix_[-1].copy()
        self._update()
        self.redraw()
        return self.learner

    @_guarded
    def _train_clicked(self) -> None:
        self.button.disabled = True
        try:
            self.train()
        finally:
            self.button.disabled = False

    def _update(self) -> None:
        ax = self.ax_fit
        ax.clear()
        ax.set_axis_on()
        T = len(self.tasks)
        if self.tasks[0].kind == "regression" and self.tasks[0].in_features == 1:
            plot_toy_fits(self.learner, self.tasks, ax)
        else:
            ax.bar(np.arange(1, T + 1), self.learner.matrix_[-1], color=task_colors(T))
            ax.set(xlabel="task", ylabel=_metric_label(self.metric))
        ax.set_title(f"after the last task, β = {self.state.beta:g}", fontsize=10)
        ax = self.ax_final
        for line in list(ax.lines):
            line.remove()
        for beta, row in sorted(self.results.items()):
            ax.plot(np.arange(1, T + 1), row, marker="o", label=f"β = {beta:g}")
        if T <= 20:
            ax.set_xticks(range(1, T + 1))
        if self.metric != "accuracy":
            ax.set_yscale("log")
        ax.relim()
        ax.autoscale_view()
        ax.legend(fontsize=8)


def save_figures(runs: Sequence[str | Path], out: str | Path, a: int = 0, b: int = 1,
                 alpha: float = 0.5, task: int = -1, dpi: int = 110) -> list[Path]:
    """Write each widget's figure as PNG for run directories (``python -m hnviz figures``):
    ``forgetting.png`` (the dashboard over all runs) and, per hypernetwork run,
    ``<run>_embedding.png`` and ``<run>_interpolation.png`` (tasks ``a`` -> ``b`` at
    ``alpha``). Raises ``ValueError`` with the widgets' messages if a run cannot be shown."""
    out = Path(out)
    paths = [Path(r) for r in runs]
    if not paths:
        raise ValueError("no run directory given; pass one or more --out directories of runs")
    names = [p.name for p in paths] if len({p.name for p in paths}) == len(paths) \
        else [str(p) for p in paths]
    shown: list[_AnalysisWidget] = []

    def check(w: _AnalysisWidget) -> _AnalysisWidget:
        if w.errors:
            raise ValueError("; ".join(w.errors))
        shown.append(w)
        return w
    loaded: dict[str, Run] = {}
    for name, path in zip(names, paths):  # each run read once, for every widget
        try:
            loaded[name] = load_run(path)
        except ValueError as e:
            raise ValueError(f"could not open run {name!r}: {e}") from e
    out.mkdir(parents=True, exist_ok=True)
    dash = check(ForgettingDashboard(loaded))
    if task >= 0:
        dash.state.task = task
    written = [dash.save(out / "forgetting.png")]
    for name, run in loaded.items():
        if not isinstance(run.learner, HyperCL):
            continue
        stem = Path(name).name
        tasks = run.tasks()  # rebuilt once for both explorers
        explorer = check(EmbeddingExplorer(run, tasks, color_by=task if task >= 0 else None))
        interp = check(InterpolationExplorer(run, a=a, b=b, tasks=tasks))
        interp.state.alpha = alpha
        for suffix, w in (("embedding", explorer), ("interpolation", interp)):
            written.append(_save_figure(w.figure, out / f"{stem}_{suffix}.png", dpi))
    for w in shown:
        w.close()
    return written
