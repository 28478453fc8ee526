"""EmbeddingExplorer: the task-embedding plane, its landscape and the net at any point."""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backend_bases import MouseButton
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator
from traitlets import Float, HasTraits, Int, TraitError, Tuple, validate

from ..results.analysis import (embedding_landscape, evaluate_embeddings, landscape_grid,
                                project_embeddings)
from ..results.plots import task_cmap
from ..core.tasks import Task
from ..core.validate import check_int, check_real
from .net_panel import NetPanel
from .view import (AnalysisWidget, check_n_samples, check_task_arg, check_task_range,
                   check_task_trait, check_tasks, drawing, guarded, hypercl_of, metric_label,
                   metric_norm, task_labels)


# ------------------------------------------------------------ EmbeddingExplorer
class EmbeddingState(HasTraits):
    """``color_by``: task whose metric colours the landscape (-1: which task wins);
    ``point``: a point of the 2-D embedding plane (PCA plane above E = 2)."""

    color_by = Int(-1)
    point = Tuple(Float(0.0), Float(0.0))
    n_tasks = Int(0)

    @validate("color_by")
    def _valid_color(self, proposal: Any) -> int:
        return check_task_trait(proposal["value"], self.n_tasks, "color_by", allow=-1)

    @validate("point")
    def _valid_point(self, proposal: Any) -> tuple[float, float]:
        if not np.all(np.isfinite(proposal["value"])):
            raise TraitError(f"point {proposal['value']} must be finite")
        return proposal["value"]


class EmbeddingExplorer(AnalysisWidget):
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
        resolution = check_int("resolution", resolution, 2, 500)
        n_samples, tasks = check_n_samples(n_samples), check_tasks(tasks)
        margin = check_real("margin", margin, allow_lo=True, hi=100)
        if color_by is not None:
            color_by = check_task_arg("color_by", color_by, allow=-1)
        super().__init__()
        self.state = EmbeddingState()
        try:
            self.learner, self.tasks = hypercl_of(run, tasks, "EmbeddingExplorer")
        except Exception as e:  # noqa: BLE001
            self.report(e, "could not open the run: ")
            return
        T = len(self.tasks)
        color_by = (-1 if T <= 20 else 0) if color_by is None else \
            check_task_range("color_by", color_by, T, allow=-1)
        self.resolution, self.n_samples, self.margin = resolution, n_samples, margin
        self._landscapes: dict[int, dict[str, Any]] = {}
        self._own: dict[int, np.ndarray] = {}
        self.state.n_tasks = T
        self.state.color_by = color_by
        try:
            self._build()
        except Exception as e:  # noqa: BLE001 - a model's own code may fail here: said
            self.report(e, "could not show the model: ")

    def _build(self) -> None:
        learner, T = self.learner, len(self.tasks)
        embeddings = learner.embeddings_.numpy()
        self.emb_dim = embeddings.shape[1]  # E, read once (a slider step needs it)
        self.points, self.projection = project_embeddings(embeddings)
        self.xs, self.ys = landscape_grid(self.points, self.resolution, self.margin)
        fig = self.new_figure((11, 4.6))
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
        self.net = NetPanel(self.ax_net, learner, self.tasks)
        self.state.point = tuple(float(v) for v in self.points[0])

        opts = [("which task wins", -1)] + [(s, t) for t, s in enumerate(task_labels(learner))]
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
        self._dragged = -math.inf  # when a drag last moved the point
        self.state.observe(self._on_color, "color_by")
        self.state.observe(self._on_point, "point")
        if self.fig_view.interactive:  # a click picks a point, a drag follows the mouse
            for event in ("button_press_event", "motion_notify_event", "button_release_event"):
                fig.canvas.mpl_connect(event, self._on_click)
        self.layout(widgets.HBox([self.color_box, self.goto]),
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
        xy = np.asarray(point, float)[None]  # the plane is padded to 2-D for E = 1
        return self.projection.inverse_transform(xy)[0][:self.emb_dim]

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
            norm = metric_norm(metric, np.concatenate([data.ravel(), marks]))
            label = metric_label(metric)
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
    @guarded
    def _on_color(self, _: Any) -> None:
        self._update_landscape()
        self.redraw()

    @drawing
    @guarded
    def _on_point(self, _: Any) -> None:
        self._syncing = True
        try:
            self.x_slider.value, self.y_slider.value = self.state.point
        finally:
            self._syncing = False
        self._update_point()  # the cursor and the net panel change: blit them
        self.redraw(changed=self.changing_artists() if self.blit else ())

    blit = True  # a new point draws only what it changes (False: the whole figure)
    DRAG_INTERVAL = 0.04  # seconds: a drag's points closer in time are skipped (not its last)

    def changing_artists(self) -> list[Any]:
        """What a new point changes, in drawing order: the cursor and the net panel's
        artists; empty when the net panel's limits may change."""
        net = self.net.changing_artists()
        return [] if net is None else [self.cursor, *net]

    @guarded
    def _on_slider(self, _: Any) -> None:
        if not self._syncing:
            self.state.point = (self.x_slider.value, self.y_slider.value)

    @guarded
    def _on_goto(self, change: Any) -> None:
        if change["new"] >= 0:
            self.state.point = tuple(float(v) for v in self.points[change["new"]])

    @guarded
    def _on_click(self, event: Any) -> None:
        """A press or release in the plane picks its point; a move with the left button
        held (a drag) too, at most one every ``DRAG_INTERVAL`` seconds."""
        if event.inaxes is not self.ax_land or event.xdata is None:
            return
        if event.name == "motion_notify_event":  # event.buttons: matplotlib >= 3.10;
            now = time.perf_counter()              # before it a drag is not seen
            if MouseButton.LEFT not in getattr(event, "buttons", ()) or \
                    now - self._dragged < self.DRAG_INTERVAL:
                return
            self._dragged = now
        self.state.point = (float(event.xdata), float(event.ydata))


