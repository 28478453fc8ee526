"""The ForgettingLab's result figure: the nets after the last task of the latest run, and
each task's final metric for every beta tried, on fixed scales so runs compare by eye."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from ..results.plots import plot_toy_fits, task_colors, toy_fit_curves
from ..core.tasks import Task
from .net_panel import bar_verts
from .view import chance_lines, metric_label

MSE_RANGE = (1e-4, 10.0)  # the final-metric panel's fixed range for MSE tasks
DATA_SHARE = 0.55  # of the final-metric panel's width: the data; the rest: the legend


def beta_colors(betas: Sequence[float]) -> dict[float, Any]:
    """One colour per beta of the slider (dark = small, yellow = large), fixed for good:
    the colour says the beta, whatever order the runs come in."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("plasma")
    n = max(len(betas) - 1, 1)
    return {float(b): cmap(0.85 * i / n) for i, b in enumerate(sorted(betas))}


class LabFigure:
    """Left: the latest run's nets after the last task (1-D regression: each task's data
    and fitted function; otherwise each task's final metric as bars). Right: each task's
    final metric per beta (a line per beta in its :func:`beta_colors` colour), on a fixed
    range (accuracy 0-100 %, MSE 1e-4 to 10 on a log scale) with chance (accuracy) marked.

    ``figure``: an empty matplotlib figure, or ``axes`` (two axes of a figure laid out by
    its owner); ``tasks``: the lab's tasks; ``betas``: the slider's values (their
    colours). No legend lies over data: the toy's tasks are named on the x-axis in their
    colours, the betas' legend stands right of its panel."""

    def __init__(self, figure: Figure, tasks: Sequence[Task], betas: Sequence[float],
                 axes: tuple[Any, Any] | None = None):
        self.figure, self.tasks = figure, list(tasks)
        self.metric = self.tasks[0].metric
        self.colors = beta_colors(betas)
        self.ax_fit, self.ax_final = axes if axes is not None else figure.subplots(1, 2)
        self.toy = self.tasks[0].kind == "regression" and self.tasks[0].in_features == 1
        self._make_fit_artists()
        self._make_final_axes()
        self.final_lines: dict[float, Any] = {}
        self.clear()
        if axes is None:
            figure.tight_layout()

    def _make_fit_artists(self) -> None:
        ax, T = self.ax_fit, len(self.tasks)
        if self.toy:
            self.fit_lines = plot_toy_fits(None, self.tasks, ax)[1::2]  # scatter, line, ...
            ys = np.concatenate([t.y_train[:, 0] for t in self.tasks])
            span = float(ys.max() - ys.min()) or 1.0
            self.data_ylim = (float(ys.min()) - 0.1 * span, float(ys.max()) + 0.1 * span)
            self.max_ylim = (self.data_ylim[0] - span, self.data_ylim[1] + span)
            ax.get_legend().remove()  # the tasks are named under their own stretch of x
            centres = [float(t.x_train.mean()) for t in self.tasks]
            ax.set_xticks(centres, [str(t + 1) for t in range(T)])
            for label, color in zip(ax.get_xticklabels(), task_colors(T)):
                label.set_color(color)
            ax.set(xlabel="task (each on its own stretch of x)", ylabel="y")
        else:
            self.bars = ax.add_collection(PolyCollection(bar_verts(np.zeros(T)),
                                                         facecolors=task_colors(T),
                                                         edgecolors="none"))
            ax.set(xlabel="task", xlim=(0.3, T + 0.7), xticks=range(1, T + 1) if T <= 20 else [])
            self._metric_axis(ax)

    def _metric_axis(self, ax: Any) -> None:
        if self.metric == "accuracy":
            ax.set(ylim=(0, 102), ylabel=f"{metric_label(self.metric)}, higher is better")
            chance_lines(ax, [self.tasks[0].chance])
        else:
            ax.set(yscale="log", ylim=MSE_RANGE,
                   ylabel=f"{metric_label(self.metric)}, lower is better")

    def _make_final_axes(self) -> None:
        ax, T = self.ax_final, len(self.tasks)
        # room right of the last task for the betas' legend: it never covers a line
        ax.set(xlabel="task", xlim=(0.7, 0.7 + (T - 0.4) / DATA_SHARE),
               title="each task at the end, per β")
        if T <= 20:
            ax.set_xticks(range(1, T + 1))
        self._metric_axis(ax)

    def clear(self) -> None:
        """Back to the start: no run shown."""
        for line in self.final_lines.values():
            line.remove()
        self.final_lines.clear()
        if self.ax_final.get_legend() is not None:
            self.ax_final.get_legend().remove()
        if self.toy:
            for line in self.fit_lines:
                line.set_data([], [])
            self.ax_fit.set_ylim(*self.data_ylim)
        else:
            self.bars.set_verts(bar_verts(np.zeros(len(self.tasks))))
        self.ax_fit.set_title("press “train”: the nets after the last task", fontsize=10)

    def update(self, session: Any) -> None:
        """Show ``session``'s latest learner and the final metrics of every beta run."""
        learner = session.latest
        if learner is None:
            self.clear()
            return
        beta = float(learner.config.beta)
        title = f"last finished run (β = {beta:g}): after the last task"
        if self.toy:
            ys = []
            for line, (x, y) in zip(self.fit_lines, toy_fit_curves(learner, self.tasks)):
                line.set_data(x, y)
                ys.append(y)
            lo, hi = float(np.min(np.concatenate(ys))), float(np.max(np.concatenate(ys)))
            ylim = (max(min(lo, self.data_ylim[0]), self.max_ylim[0]),
                    min(max(hi, self.data_ylim[1]), self.max_ylim[1]))
            self.ax_fit.set_ylim(*ylim)
            if lo < ylim[0] or hi > ylim[1]:
                title += " (some fits leave the plot)"
        else:
            self.bars.set_verts(bar_verts(learner.matrix_[-1]))
        self.ax_fit.set_title(title, fontsize=10)
        T = len(self.tasks)
        for b, row in sorted(session.results.items()):
            if b not in self.final_lines:
                self.final_lines[b], = self.ax_final.plot([], [], marker="o", lw=1.5,
                                                          color=self.colors.get(b, "k"))
            self.final_lines[b].set_data(np.arange(1, T + 1), np.asarray(row, dtype=float))
            steps = session.result_steps.get(b)
            self.final_lines[b].set_label(f"{b:g}" + (f" ({steps})" if steps else ""))
        self.ax_final.legend(handles=[self.final_lines[b] for b in sorted(self.final_lines)],
                             fontsize=9, loc="center right", title="β (steps)",
                             title_fontsize=9)  # in the room right of the data
