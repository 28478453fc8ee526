"""Static figures (``ax=`` in, artists out): toy fits, metric matrix, embedding scatter."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from .benchmarks import Task
from .learner import HyperCL


def _ax(ax: Axes | None, figsize: tuple[float, float] = (6, 4)) -> Axes:
    return ax if ax is not None else plt.figure(figsize=figsize).add_subplot()


def task_colors(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA colours, one per task (viridis for long sequences)."""
    return plt.get_cmap("tab10" if n <= 10 else "viridis")(np.linspace(0, 1, n) if n > 10
                                                             else np.arange(n))


def plot_toy_fits(learner: HyperCL, tasks: Sequence[Task], ax: Axes | None = None,
                  n_points: int = 200) -> list[Any]:
    """Each 1-D regression task's data and the function its generated net computes."""
    ax = _ax(ax)
    colors = task_colors(len(tasks))
    artists = []
    for task, color in zip(tasks, colors):
        lo, hi = task.meta.get("x_range", (float(task.x_test.min()), float(task.x_test.max())))
        x = torch.linspace(lo, hi, n_points)[:, None]
        y = learner.predict(x, task.task_id)
        artists.append(ax.scatter(task.x_train[:, 0], task.y_train[:, 0], s=8, alpha=0.4,
                                  color=color))
        artists += ax.plot(x[:, 0], y[:, 0], color=color, lw=2, label=task.name)
    ax.set(xlabel="x", ylabel="y", title="hypernetwork fits after the last task")
    ax.legend(fontsize=8)
    return artists


def plot_metric_matrix(R: np.ndarray, metric: str = "accuracy", ax: Axes | None = None,
                       annotate: bool | None = None) -> Any:
    """Heatmap of R[i, j] (rows: after training task i; columns: task j); unseen blank."""
    import seaborn as sns

    R = np.asarray(R, dtype=float)
    ax = _ax(ax, (5, 4))
    annotate = len(R) <= 12 if annotate is None else annotate
    fmt = ".1f" if metric == "accuracy" else ".3f"
    labels = np.arange(1, len(R) + 1) if len(R) <= 20 else "auto"  # tasks numbered from 1
    sns.heatmap(R, mask=np.isnan(R), annot=annotate, fmt=fmt, cmap="viridis" if metric ==
                "accuracy" else "viridis_r", ax=ax, square=True, xticklabels=labels,
                yticklabels=labels,
                cbar_kws={"label": "accuracy (%)" if metric == "accuracy" else "MSE"})
    ax.set(xlabel="evaluated task", ylabel="after training task", title=f"{metric} matrix R")
    return ax.collections[0]


def project_2d(points: np.ndarray) -> tuple[np.ndarray, Any]:
    """Identity for 2-D points, PCA to 2-D above (``(N, E)`` -> ``(N, 2)``, fitted PCA)."""
    points = np.asarray(points, dtype=float)
    if points.shape[1] <= 2:
        return np.pad(points, ((0, 0), (0, 2 - points.shape[1]))), None
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2).fit(points)
    return pca.transform(points), pca


def plot_embeddings(learner: HyperCL, ax: Axes | None = None, trajectories: bool = True) -> list[Any]:
    """Scatter of the task embeddings (PCA above 2-D) with labels and training paths."""
    ax = _ax(ax, (5, 5))
    embs = learner.embeddings_.numpy()
    paths = [h["emb_trajectory"] for h in learner.history_ if "emb_trajectory" in h]
    _, pca = project_2d(np.concatenate([embs, *paths]) if trajectories and paths else embs)

    def proj(a: np.ndarray) -> np.ndarray:
        return pca.transform(a) if pca is not None else np.pad(a, ((0, 0), (0, 2 - a.shape[1])))

    colors = task_colors(len(embs))
    artists = []
    if trajectories:
        for path, color in zip(paths, colors):
            artists += ax.plot(*proj(path).T, color=color, lw=1, alpha=0.6)
    xy = proj(embs)
    artists.append(ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=60, edgecolor="k", zorder=3))
    for t, (x, y) in enumerate(xy):
        artists.append(ax.annotate(str(t + 1), (x, y), xytext=(4, 4), textcoords="offset points"))
    label = "PC" if pca is not None else "e"
    ax.set(xlabel=f"{label} 1", ylabel=f"{label} 2", title="task embeddings (path: training)")
    return artists
