"""The panel of the net generated from one embedding (shared by the explorers)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.collections import PolyCollection

from ..results.analysis import evaluate_embeddings
from ..learners.hypercl import HyperCL
from ..learners.protocol import ExplorableModel
from ..results.plots import task_colors
from ..core.tasks import Task
from .view import metric_label


def bar_verts(heights: np.ndarray) -> np.ndarray:
    """Rectangles ``(T, 4, 2)`` for bars at x = 1..T: one collection draws fast."""
    x = np.arange(1, len(heights) + 1, dtype=float)
    lo, hi, zero = x - 0.4, x + 0.4, np.zeros_like(x)
    return np.stack([np.column_stack(p) for p in ((lo, zero), (lo, heights),
                                                  (hi, heights), (hi, zero))], axis=1)


def below(ax: Any, ncol: int) -> Any:
    """``ax``'s legend under the axes, below the x-axis label: data fill an explorer's
    panels anywhere, so a legend inside would cover some."""
    return ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol,
                     frameon=False)


class NetPanel:
    """The net generated from one embedding: its function with every task's data (1-D
    regression) or its metric on every task as bars, with each task's own final score."""

    def __init__(self, ax: Any, learner: HyperCL | ExplorableModel, tasks: list[Task]):
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
                           label=f"task {t.task_id + 1}" if T <= 10 else None)
            ys = torch.cat([t.y_train[:, 0] for t in tasks])
            pad = 0.15 * float(ys.max() - ys.min())
            ax.set_ylim(float(ys.min()) - pad, float(ys.max()) + pad)
            # drawn last (zorder 6): a blitted step redraws it over the saved background
            self.line, = ax.plot(self.x[:, 0], np.zeros(len(self.x)), color="k", lw=2.5,
                                 label="generated net", zorder=6)
            ax.set(xlabel="x", ylabel="y")
            below(ax, ncol=2)
        else:
            self.bars = ax.add_collection(PolyCollection(bar_verts(np.zeros(T)),
                                                         facecolors=colors, edgecolors="none"))
            own = learner.final_scores() if isinstance(learner, ExplorableModel) \
                else learner.matrix_[-1]
            self.own = ax.scatter(np.arange(1, T + 1), own, marker="_", color="k",
                                  s=120 if T <= 20 else 20, zorder=3, label="task's own net")
            ax.set(xlabel="task", ylabel=metric_label(self.metric), xlim=(0.3, T + 0.7))
            if self.metric == "accuracy":
                ax.set_ylim(0, 102)
            if T <= 20:
                ax.set_xticks(range(1, T + 1))
            below(ax, ncol=1)
        self.values = np.zeros(T)

    def update(self, emb: np.ndarray) -> np.ndarray:
        """Show the net generated from ``emb`` ``(E,)``; returns its metric per task ``(T,)``."""
        emb = np.asarray(emb, dtype=np.float32)
        self.values = evaluate_embeddings(self.learner, self.tasks, emb[None])[0]
        if self.regression:
            self.line.set_ydata(self.learner.predict_with_embedding(self.x, emb)[:, 0].numpy())
        else:
            self.bars.set_verts(bar_verts(self.values))
            if self.metric != "accuracy":
                self.ax.set_ylim(0, 1.1 * max(float(np.nanmax(self.values)), 1e-6))
        return self.values

    def changing_artists(self) -> list[Any] | None:
        """What :meth:`update` changes, for blitting, in drawing order: the function's line
        (drawn above the legend, which stays in the background) and the title; or the bars
        and what a full draw puts above them (the bottom spine, each task's own mark, the
        title, the legend); None when an update can also change the axis limits (MSE
        bars)."""
        if self.regression:
            return [self.line, self.ax.title]
        if self.metric != "accuracy":
            return None
        legend = self.ax.get_legend()
        return [self.bars, self.ax.spines["bottom"], self.own, self.ax.title,
                *([legend] if legend is not None else [])]

    def bar_heights(self) -> np.ndarray:
        """The drawn bar heights ``(T,)`` (classification)."""
        return np.array([path.vertices[1, 1] for path in self.bars.get_paths()])

    def describe(self) -> str:
        """The generated net's metric on each task, labelled: "MSE on task 1: 0.269,
        2: 0.508, 3: 0.163" (more than four tasks: their mean)."""
        name = "MSE" if self.metric != "accuracy" else "accuracy (%)"
        if len(self.values) <= 4:
            fmt = "{:.1f}" if self.metric == "accuracy" else "{:.3g}"
            return f"{name} on task " + ", ".join(f"{t + 1}: " + fmt.format(v)
                                                 for t, v in enumerate(self.values))
        return f"mean {name} over {len(self.values)} tasks: {np.mean(self.values):.3g}"


