"""LiveTraining: a callback widget that plots losses and the matrix R while training."""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.gridspec import SubplotSpec
from traitlets import Float, HasTraits, Int

from ..results.plots import DRIFT_LABEL, DRIFT_TITLE, task_colors, visible_drift
from ..core.stability import curves, drift_curves, records
from ..core.tasks import Task
from ..core.train import Callback
from ..core.validate import check_bool
from .figure_view import FigureView, Throttle
from .view import (AnalysisWidget, check_interval, check_mse_range, drawing, guarded,
                   integer_ticks, metric_label, metric_norm)


LOSS_TITLE = "losses"
LOSS_LABEL = "task loss (blue),\nregularizer (red)"  # no legend: it would cover a curve


# ------------------------------------------------------------------ LiveTraining
class LiveState(HasTraits):
    """Where training is: ``task`` (0-based), ``step`` within it and the last losses."""

    task = Int(-1)
    step = Int(0)
    task_loss = Float(float("nan"))
    reg_loss = Float(0.0)


class LiveTraining(AnalysisWidget, Callback):
    """A callback widget: pass it to ``fit``/``partial_fit`` (``callbacks=[live]``) and
    it plots the task and regularizer losses and the metric matrix while the model trains,
    and, for a learner with ``eval_every`` (continual evaluation), every task's metric at
    every recorded step: the moment an old task is forgotten.

    It redraws at most every ``min_interval`` seconds and at every task's end; its figure
    is a PNG image, which updates even while the kernel is busy. ``mse_range`` (lo, hi)
    fixes the matrix's colour scale for MSE (default: from each run's values; accuracy is
    always 0-100 %), so that runs compare by colour. :meth:`reset` clears it for a new run.
    ``host`` (a :class:`FigureView` and a ``SubplotSpec`` of its figure): draw the four
    panels there, inside another widget's figure (the ForgettingLab's one figure); this
    widget's view then holds only its status line. ``hints``: say in the empty panels how
    to fill them (``eval_every``; False where the owner always records).
    """

    def __init__(self, min_interval: float = 0.5, mse_range: tuple[float, float] | None = None,
                 host: tuple[FigureView, SubplotSpec] | None = None, hints: bool = True):
        min_interval = check_interval("min_interval", min_interval)
        mse_range, hints = check_mse_range(mse_range), check_bool("hints", hints)
        AnalysisWidget.__init__(self)
        self.state = LiveState()
        self.throttle, self.mse_range, self.hints = Throttle(min_interval), mse_range, hints
        self.task_loss: list[float] = []
        self.reg_loss: list[float] = []
        self.boundaries: list[int] = []
        self.marks: list[Any] = []  # the task-start lines
        self.learner: Any = None
        if host is None:
            fig = self.new_figure((9.4, 6.4), live=True)
            grid = fig.add_gridspec(2, 2, width_ratios=[1.5, 1])
        else:
            self.fig_view, spec = host
            fig = self.figure = self.fig_view.figure
            grid = spec.subgridspec(2, 2, width_ratios=[1.5, 1])
        self.ax_loss, self.ax_R = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        self.ax_ce, self.ax_drift = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
        self.ce_lines: list[Any] = []
        self.drift_lines: list[Any] = []
        self.ce_hint = self.ax_ce.text(0.5, 0.5, "train with eval_every=k\n(e.g. 10) to see "
                                       "every\ntask during training",
                                       ha="center", va="center", transform=self.ax_ce.transAxes,
                                       color="0.4")
        self.drift_hint = self.ax_drift.text(0.5, 0.5, "a hypernetwork with\neval_every: "
                                             "how far\nold tasks' weights\nmove", ha="center",
                                             va="center", transform=self.ax_drift.transAxes,
                                             color="0.4")
        self.ce_hint.set_visible(hints)
        self.drift_hint.set_visible(hints)
        self.ax_ce.set(xlabel="training step (dotted: a task starts)", ylabel="metric",
                       title="every task, while later ones train")
        self.ax_drift.set(xlabel="training step (all tasks)", ylabel=DRIFT_LABEL,
                          title=DRIFT_TITLE)
        self.loss_line, = self.ax_loss.plot([], [], color="C0", lw=1, label="task loss")
        self.reg_line, = self.ax_loss.plot([], [], color="C3", lw=1, label="regularizer")
        self.ax_loss.set(xlabel="training step (all tasks)", ylabel=LOSS_LABEL, yscale="log",
                         title=LOSS_TITLE)
        self.image = self.ax_R.imshow(np.full((1, 1), np.nan), interpolation="nearest",
                                      extent=(0.5, 1.5, 1.5, 0.5))
        self.colorbar = fig.colorbar(self.image, ax=self.ax_R)
        self.ax_R.set(xlabel="evaluated task", ylabel="after training task", title="matrix R")
        integer_ticks(self.ax_R)
        self.status = widgets.HTML("waiting for training to start")
        if host is None:
            fig.tight_layout()
            self.view.children = [self.status, self.fig_view.widget, self.output]
        else:
            self.view.children = [self.status, self.output]
        self.redraw()

    @drawing
    def reset(self, title: str = "") -> None:
        """Forget the run shown (losses, task starts, curves, matrix); ``title`` names the
        next one in the panels' titles (e.g. "β = 0.01")."""
        self.task_loss.clear()
        self.reg_loss.clear()
        self.boundaries.clear()
        for mark in self.marks:
            mark.remove()
        for line in (*self.ce_lines, *self.drift_lines):
            line.remove()
        self.marks.clear()
        self.ce_lines.clear()
        self.drift_lines.clear()
        self.drift_hint.set_visible(self.hints)
        self.learner, self.state.task, self.state.step = None, -1, 0
        self.loss_line.set_data([], [])
        self.reg_line.set_data([], [])
        self.image.set_data(np.full((1, 1), np.nan))
        self.ce_hint.set_visible(self.hints)  # until a run with records draws
        suffix = f" ({title})" if title else ""
        self.ax_loss.set_title(LOSS_TITLE + suffix)
        self.ax_R.set_title("matrix R" + suffix, fontsize=10)
        self.status.value = "waiting for training to start"
        self.redraw()

    def on_task_start(self, learner: Any, task: Task) -> None:
        self.boundaries.append(len(self.task_loss))
        self.learner = learner
        self.n_steps = learner.config.n_steps
        self.n_tasks = task.n_tasks
        self.state.task, self.state.step = task.task_id, 0
        if len(self.boundaries) > 1:
            self._mark_start(self.boundaries[-1])

    @drawing
    def _mark_start(self, step: int) -> None:
        for ax in (self.ax_loss, self.ax_ce, self.ax_drift):
            self.marks.append(ax.axvline(step, color="0.75", lw=0.8, ls=":"))

    def on_step(self, learner: Any, task_id: int, step: int, logs: dict[str, float]) -> None:
        self.task_loss.append(logs["task_loss"])
        self.reg_loss.append(logs.get("reg_loss", 0.0))
        self.state.step, self.state.task_loss = step + 1, logs["task_loss"]
        self.state.reg_loss = logs.get("reg_loss", 0.0)
        if self.throttle.ready():
            self._render()

    def on_task_end(self, learner: Any, task_id: int, logs: dict[str, Any]) -> None:
        self._show_matrix(np.array(learner.matrix_, dtype=float), learner.metric_)

    @drawing
    @guarded
    def _show_matrix(self, R: np.ndarray, metric: str) -> None:
        T = len(R)
        fixed = self.mse_range and metric != "accuracy"
        self.image.set_norm(LogNorm(*self.mse_range) if fixed else metric_norm(metric, R))
        if metric != "accuracy":
            self.image.set_cmap("viridis_r")
        self.image.set_data(np.ma.masked_invalid(R))
        self.image.set_extent((0.5, T + 0.5, T + 0.5, 0.5))
        self.ax_R.set(xlim=(0.5, T + 0.5), ylim=(T + 0.5, 0.5))
        self.colorbar.update_normal(self.image)
        self.colorbar.set_label(metric_label(metric))
        avg = float(np.mean(R[-1]))
        better = "higher" if metric == "accuracy" else "lower"  # the colour bar names it
        self.ax_R.set_title(f"matrix R, average {avg:.2g}\n({better} is better)", fontsize=10)
        if T == 1:  # the colour bar got its label: lay out once more
            self.fig_view.lay_out()
        self._render()

    @drawing
    @guarded
    def _render(self) -> None:
        try:
            loss, reg = list(self.task_loss), list(self.reg_loss)  # the trainer appends to them
            n = min(len(loss), len(reg))
            x = np.arange(n)
            self.loss_line.set_data(x, loss[:n])
            reg = np.asarray(reg[:n], dtype=float)
            self.reg_line.set_data(x, np.where(reg > 0, reg, np.nan))
            self.ax_loss.relim()
            self.ax_loss.autoscale_view()
            self._render_continual()
            st = self.state
            self.status.value = (f"task {st.task + 1}/{getattr(self, 'n_tasks', '?')} · step "
                                 f"{st.step}/{getattr(self, 'n_steps', '?')} · task loss "
                                 f"{st.task_loss:.4g} · regularizer {st.reg_loss:.3g}")
            self.redraw()
        finally:
            self.throttle.done()

    def _render_continual(self) -> None:
        """Every task's continual-evaluation curve so far (finished tasks and the one in
        training), one line per task in the task's colour."""
        learner = self.learner
        current = getattr(learner, "continual_", None)  # read once: training moves on
        history = list(getattr(learner, "history_", []))
        if current is None and not (learner is not None and records(history)):
            return
        history = history if current is None else [*history, current.arrays()]
        self._render_drift(history)
        x, y = curves(history)
        T = y.shape[1]
        colors = task_colors(max(T, getattr(self, "n_tasks", T)))
        while len(self.ce_lines) < T:
            self.ce_lines.append(self.ax_ce.plot([], [], lw=1.2,
                                                 color=colors[len(self.ce_lines)])[0])
        for j, line in enumerate(self.ce_lines):
            line.set_data(x, y[:, j])
        self.ce_hint.set_visible(False)
        metric = learner.tasks_[0].metric if learner.tasks_ else current.tasks[0].metric
        better = "higher" if metric == "accuracy" else "lower"
        self.ax_ce.set_ylabel(f"{metric_label(metric)}\n{better} is better")
        if metric != "accuracy":
            self.ax_ce.set_yscale("log")
        self.ax_ce.relim()
        self.ax_ce.autoscale_view()
        if metric == "accuracy":  # fixed scales: runs compare by eye
            self.ax_ce.set_ylim(0, 102)
        elif self.mse_range:
            self.ax_ce.set_ylim(*self.mse_range)

    def _render_drift(self, history: list[dict[str, Any]]) -> None:
        """Each earlier task's weight drift so far (a hypernetwork from its second task)."""
        x, y = drift_curves(history)
        if not len(x) or np.isnan(y).all():
            return
        colors = task_colors(max(y.shape[1], getattr(self, "n_tasks", y.shape[1])))
        while len(self.drift_lines) < y.shape[1]:
            self.drift_lines.append(self.ax_drift.plot([], [], lw=1.2,
                                                       color=colors[len(self.drift_lines)])[0])
        y = visible_drift(y)
        for j, line in enumerate(self.drift_lines):
            line.set_data(x, y[:, j])
        self.drift_hint.set_visible(False)
        self.ax_drift.set_yscale("log")
        self.ax_drift.relim()
        self.ax_drift.autoscale_view()
