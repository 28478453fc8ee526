"""Static figures (``ax=`` in, artists out): toy fits, metric matrix, embedding scatter."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from .analysis import forgetting_curves, project_embeddings
from ..core.stability import curves as continual_curves, drift_curves, earlier_mean, task_starts
from ..core.tasks import Task
from ..learners.hypercl import HyperCL
from ..learners.methods import DEFAULT_METHOD, is_ours


def _ax(ax: Axes | None, figsize: tuple[float, float] = (6, 4)) -> Axes:
    """``ax``, or one on a new figure laid out to keep every label inside (constrained)."""
    return ax if ax is not None else plt.figure(figsize=figsize, layout="constrained").add_subplot()


def task_colors(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA colours, one per task (viridis for long sequences)."""
    return plt.get_cmap("tab10" if n <= 10 else "viridis")(np.linspace(0, 1, n) if n > 10
                                                             else np.arange(n))


def task_cmap(n: int) -> Any:
    """A colour map with one colour per task index 0..n-1, the colours of :func:`task_colors`
    (use with ``Normalize(-0.5, n - 0.5)``)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(task_colors(n))


def toy_fit_curves(learner: HyperCL, tasks: Sequence[Task],
                   n_points: int = 200) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each 1-D regression task, ``x`` ``(n_points,)`` over its input range and the
    function its generated net computes there, ``y`` ``(n_points,)``."""
    curves = []
    for task in tasks:
        lo, hi = task.meta.get("x_range", (float(task.x_test.min()), float(task.x_test.max())))
        x = torch.linspace(lo, hi, n_points)[:, None]
        curves.append((x[:, 0].numpy(), learner.predict(x, task.task_id)[:, 0].numpy()))
    return curves


def plot_toy_fits(learner: HyperCL | None, tasks: Sequence[Task], ax: Axes | None = None,
                  n_points: int = 200) -> list[Any]:
    """Each 1-D regression task's data and the function its generated net computes
    (``learner=None``: the data and empty lines, to be filled with :func:`toy_fit_curves`).
    Returns the artists: per task its scatter, then its line."""
    ax = _ax(ax)
    curves = toy_fit_curves(learner, tasks, n_points) if learner is not None \
        else [([], [])] * len(tasks)
    artists = []
    for task, color, (x, y) in zip(tasks, task_colors(len(tasks)), curves):
        artists.append(ax.scatter(task.x_train[:, 0], task.y_train[:, 0], s=8, alpha=0.4,
                                  color=color))
        artists += ax.plot(x, y, color=color, lw=2, label=task.name)
    ax.set(xlabel="x", ylabel="y", title="hypernetwork fits after the last task")
    # below the axes: the tasks' data fill the plot's whole height somewhere
    ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
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


def plot_embeddings(learner: HyperCL, ax: Axes | None = None, trajectories: bool = True) -> list[Any]:
    """Scatter of the task embeddings (PCA above 2-D) with labels and training paths."""
    ax = _ax(ax, (5, 5))
    embs = learner.embeddings_.numpy()
    paths = [h["emb_trajectory"] for h in learner.history_ if "emb_trajectory" in h]
    _, projection = project_embeddings(np.concatenate([embs, *paths]) if trajectories and paths
                                       else embs)
    proj = projection.transform

    colors = task_colors(len(embs))
    artists = []
    if trajectories:
        for path, color in zip(paths, colors):
            artists += ax.plot(*proj(path).T, color=color, lw=1, alpha=0.6)
    xy = proj(embs)
    artists.append(ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=60, edgecolor="k", zorder=3))
    for t, (x, y) in enumerate(xy):
        artists.append(ax.annotate(str(t + 1), (x, y), xytext=(4, 4), textcoords="offset points"))
    label = "PC" if projection.method == "pca" else "e"
    ax.set(xlabel=f"{label} 1", ylabel=f"{label} 2", title="task embeddings (path: training)")
    return artists


def _metric_label(metric: str) -> str:
    return "accuracy (%)" if metric == "accuracy" else "MSE"


def plot_forgetting_curves(R: np.ndarray, metric: str = "accuracy", ax: Axes | None = None,
                           highlight: int | None = None) -> dict[str, Any]:
    """Each task's metric vs number of tasks trained; readable for 100 tasks: lines
    coloured by task index (colour bar above 10 tasks), the mean and a 10-90 % band."""
    fc = forgetting_curves(R)
    T = len(fc["mean"])
    ax = _ax(ax, (7, 4))
    x = np.arange(1, T + 1)
    colors = task_colors(T)
    many = T > 10
    lines = [ax.plot(x, curve, color=c, lw=0.7 if many else 1.5, alpha=0.5 if many else 0.9,
                     label=None if many else f"task {j + 1}")[0]
             for j, (curve, c) in enumerate(zip(fc["curves"], colors))]
    band = ax.fill_between(x, fc["lo"], fc["hi"], color="0.5", alpha=0.2, label="10–90 %")
    mean, = ax.plot(x, fc["mean"], color="k", lw=2.5, label="mean over tasks seen")
    if highlight is not None:
        lines[highlight].set(lw=3, alpha=1.0, zorder=5)
    if many:
        sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(1, T))
        ax.figure.colorbar(sm, ax=ax, label="task")
    ax.set(xlabel="tasks trained", ylabel=_metric_label(metric), title="forgetting curves",
           xlim=(0.5, T + 0.5))
    ax.legend(fontsize=8, ncol=2 if not many else 1, loc="lower left")
    return {"lines": lines, "mean": mean, "band": band}


def plot_continual(history: Sequence[dict[str, np.ndarray]], metric: str = "accuracy",
                   ax: Axes | None = None, tasks: Sequence[int] | None = None,
                   mean: bool = True, color: Any = None, label: str | None = None) -> dict[str, Any]:
    """Continual evaluation (a learner's ``history_`` trained with ``eval_every``): each
    task's metric at every recorded step of the whole run (``tasks``: which, default all;
    colours as :func:`task_colors`), dotted task boundaries and, with ``mean``, the mean
    over the earlier tasks only (the task in training left out: what is being forgotten;
    ``color``/``label`` for it). Returns the artists (``lines``, ``mean``, ``bounds``)."""
    x, y = continual_curves(history)
    if not len(x):
        raise ValueError("this run has no continual-evaluation records; train it with "
                         "eval_every=k (e.g. python -m hnviz train ... --eval-every 10)")
    ax, T = _ax(ax, (8, 3.5)), y.shape[1]
    bounds = [ax.axvline(b, color="0.7", lw=0.8, ls=":") for b in task_starts(x)]
    colors = task_colors(T)
    lines = [ax.plot(x, y[:, j], color=colors[j], lw=1.0, alpha=0.8,
                     label=f"task {j + 1}" if T <= 10 and label is None else None)[0]
             for j in (range(T) if tasks is None else tasks)]
    out: dict[str, Any] = {"lines": lines, "bounds": bounds, "mean": None}
    if mean:
        out["mean"], = ax.plot(x, earlier_mean(x, y), color=color or "k", lw=2.2,
                               label=label or "mean of the earlier tasks")
    ax.set(xlabel="training step (all tasks)", ylabel=_metric_label(metric),
           title="every task while the later ones train (dotted: a new task starts)")
    if metric != "accuracy":
        ax.set_yscale("log")
    return out


DRIFT_TITLE = "old tasks' weight drift (lower: kept)"
DRIFT_LABEL = "‖h(e_t, θ) − W*_t‖"


def visible_drift(y: np.ndarray) -> np.ndarray:
    """Drift values for a log plot: a task's drift at its targets' own step is 0 up to
    rounding (1e-7), which would stretch the axis over decades; below 1e-5 of the largest
    drift is NaN (not drawn)."""
    top = np.nanmax(y) if np.isfinite(y).any() else 0.0
    return np.where(y > 1e-5 * top, y, np.nan)


def plot_drift(history: Sequence[dict[str, np.ndarray]], ax: Axes | None = None) -> dict[str, Any]:
    """The drift view of a hypernetwork run trained with ``eval_every``: for every earlier
    task t while a later one trains, ``||h(e_t, theta) - W*_t||`` (how far its generated
    weights moved from the regularizer's targets), log scale, task colours, task starts
    dotted. Returns the artists (``lines``, ``bounds``)."""
    x, y = drift_curves(history)
    if not len(x) or np.isnan(y).all():
        raise ValueError("this run has no weight-drift records: a hypernetwork run trained "
                         "with eval_every=k over at least two tasks has them")
    ax, T = _ax(ax, (8, 3.5)), y.shape[1]
    bounds = [ax.axvline(b, color="0.7", lw=0.8, ls=":") for b in task_starts(x)]
    colors = task_colors(T)
    y = visible_drift(y)
    lines = [ax.plot(x, y[:, j], color=colors[j], lw=1.0,
                     label=f"task {j + 1}" if T <= 10 else None)[0] for j in range(T)]
    ax.set(xlabel="training step (all tasks)", ylabel=DRIFT_LABEL, yscale="log",
           title=DRIFT_TITLE)
    return {"lines": lines, "bounds": bounds}


def plot_landscape(land: dict[str, Any], ax: Axes | None = None, metric: str = "accuracy",
                   names: Sequence[str] | None = None) -> dict[str, Any]:
    """An :func:`hnviz.results.analysis.embedding_landscape` as an image with the embeddings on top
    ("winner" landscapes colour each cell by the best task)."""
    ax = _ax(ax, (5.5, 5))
    xs, ys, pts = land["xs"], land["ys"], land["points"]
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    if "winner" in land:
        T = len(pts)
        cmap = task_cmap(T)
        image = ax.imshow(land["winner"], origin="lower", extent=extent, aspect="auto",
                          cmap=cmap, vmin=-0.5, vmax=T - 0.5, interpolation="nearest")
        bar = ax.figure.colorbar(image, ax=ax, label="best task")
        if T <= 20:  # tasks are numbered from 1 in figures
            bar.set_ticks(range(T), labels=[str(t + 1) for t in range(T)])
    else:
        image = ax.imshow(land["values"], origin="lower", extent=extent, aspect="auto",
                          cmap="viridis" if metric == "accuracy" else "viridis_r")
        ax.figure.colorbar(image, ax=ax, label=_metric_label(metric))
    scatter = ax.scatter(pts[:, 0], pts[:, 1], c="w", edgecolor="k", s=40, zorder=3)
    if len(pts) <= 20:
        for t, (x, y) in enumerate(pts):
            ax.annotate(names[t] if names else str(t + 1), (x, y), xytext=(4, 4),
                        textcoords="offset points", color="w", fontsize=8)
    label = "PC" if land["projection"].method == "pca" else "e"
    ax.set(xlabel=f"{label} 1", ylabel=f"{label} 2", title="embedding landscape")
    return {"image": image, "scatter": scatter}


def plot_interpolation(res: dict[str, np.ndarray], ax: Axes | None = None,
                       metric: str = "accuracy", names: Sequence[str] | None = None,
                       alpha: float | None = None) -> dict[str, Any]:
    """Each task's metric along an :func:`hnviz.results.analysis.interpolate` path, with the
    endpoints (alpha = 0, 1) marked and an optional marker at ``alpha``."""
    ax = _ax(ax, (7, 4))
    alphas, m = res["alphas"], res["metrics"]
    colors = task_colors(m.shape[1])
    lines = [ax.plot(alphas, m[:, t], color=c, label=names[t] if names else f"task {t + 1}")[0]
             for t, c in enumerate(colors)]
    for a in (0.0, 1.0):
        ax.axvline(a, color="0.6", ls="--", lw=1)
    marker = ax.axvline(alpha if alpha is not None else 0.0, color="k", lw=1.5,
                        visible=alpha is not None)
    ax.set(xlabel="α  (0: task a, 1: task b)", ylabel=_metric_label(metric),
           title="metrics along the interpolation path")
    if m.shape[1] <= 10:
        ax.legend(fontsize=8)
    return {"lines": lines, "marker": marker}


def plot_task_confusion(C: np.ndarray, ax: Axes | None = None,
                        names: Sequence[str] | None = None) -> Any:
    """Heatmap of :func:`hnviz.results.analysis.task_confusion` (rows: true task, columns:
    inferred task, percent of the row's inputs)."""
    import seaborn as sns

    ax = _ax(ax, (5, 4))
    # task numbers unless the names are short: long ones would be cut at the figure's edge
    short = names is not None and max(len(n) for n in names) <= 6
    labels = list(names) if short else [str(t + 1) for t in range(len(C))]
    sns.heatmap(C, annot=len(C) <= 12, fmt=".0f", cmap="magma", vmin=0, vmax=100, ax=ax,
                square=True, xticklabels=labels, yticklabels=labels,
                cbar_kws={"label": "% of the task's test inputs"})
    ax.set(xlabel="inferred task (column)", ylabel="true task (row)",
           title="task inference by entropy")
    return ax.collections[0]


def plot_loss_curves(curves: dict[str, np.ndarray], ax: Axes | None = None,
                     ylabel: str = "task loss", smooth: int = 10) -> list[Any]:
    """Loss per training step for named runs (log scale; ``smooth``-step running mean)."""
    ax = _ax(ax, (6, 4))
    lines = []
    for name, y in curves.items():
        y = np.asarray(y, dtype=float)
        k = max(1, min(smooth, len(y)))
        ys = np.convolve(y, np.ones(k) / k, mode="valid")
        lines += ax.plot(np.arange(k - 1, len(y)), ys, lw=1.8, label=name)
    ax.set(xlabel="training step", ylabel=ylabel, yscale="log")
    ax.legend(fontsize=8)
    return lines


def plot_final_metrics(matrices: dict[str, np.ndarray], metric: str = "accuracy",
                       ax: Axes | None = None, chance: float | None = None) -> list[Any]:
    """Each task's final metric (the last row of R) for several runs, one line per run;
    ``chance``: the accuracy of guessing (e.g. 10 for ten classes), drawn dashed."""
    ax = _ax(ax, (7, 3.5))
    lines = []
    for name, R in matrices.items():
        final = np.asarray(R, dtype=float)[-1]
        lines += ax.plot(np.arange(1, len(final) + 1), final, marker="o" if len(final) <= 20
                         else None, lw=1.5, label=f"{name} (mean {np.mean(final):.3g})")
    better = "higher" if metric == "accuracy" else "lower"
    ax.set(xlabel="task", ylabel=f"final {_metric_label(metric)}\n({better} is better)",
           title="each task after the whole sequence")
    if metric != "accuracy":
        ax.set_yscale("log")
    if chance is not None:
        ax.axhline(chance, color="0.5", ls="--", lw=1, label=f"chance ({chance:g} %)")
    ax.legend(fontsize=9)
    return lines


def plot_compression_sweep(groups: Sequence[dict[str, Any]], ax: Axes | None = None,
                           forgetting_ax: Axes | None = None) -> Axes:
    """Final average metric (mean ± std over seeds, solid) and the metric right after
    each task was learned ("during", dashed) against the hypernetwork's compression
    ratio, one point per HNET group of a sweep (:func:`hnviz.sweep`; the paper's Fig. 3b).
    Each baseline method of the sweep is a dotted line at its best group. A dashed
    vertical line marks ratio 1 (as many trainable weights as the target net). With
    ``forgetting_ax``, forgetting against the ratio is drawn there the same way."""
    hnet = sorted((g for g in groups
                   if g["method"] == DEFAULT_METHOD and "compression_ratio" in g),
                  key=lambda g: g["compression_ratio"]["mean"])
    if not hnet:
        raise ValueError("no HNET groups with a compression ratio in this sweep")
    ax = _ax(ax)
    x = np.array([g["compression_ratio"]["mean"] for g in hnet])
    label = _metric_label(hnet[0]["metric"])
    _ratio_panel(ax, x, hnet, [("average_final", "-", "HNET final"),
                               ("during", "--", "HNET during")], groups)
    ax.set_ylabel(label)
    n = len(hnet[0]["seeds"])
    ax.set_title(f"{label} vs compression ({n} seed{'s' if n > 1 else ''} per point)")
    if forgetting_ax is not None:
        _ratio_panel(forgetting_ax, x, hnet, [("forgetting", "-", "HNET")], groups)
        forgetting_ax.axhline(0.0, color="0.8", lw=0.8)
        forgetting_ax.set_ylabel("forgetting (points)" if hnet[0]["metric"] == "accuracy"
                                 else "forgetting")
        forgetting_ax.set_title("forgetting vs compression")
    return ax


def _ratio_panel(ax: Axes, x: np.ndarray, hnet: Sequence[dict[str, Any]],
                 keys: Sequence[tuple[str, str, str]], groups: Sequence[dict[str, Any]]) -> None:
    """HNET curves of ``keys`` (summary key, line style, label) against ratio ``x``, the
    baselines' best groups as dotted lines, a log ratio axis ticked at the swept ratios."""
    for key, style, name in keys:
        y, err = (np.array([g.get(key, {}).get(s, np.nan) for g in hnet]) for s in ("mean", "std"))
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color="C0", ls=style, label=name)
    key = keys[0][0]
    best: dict[str, dict[str, Any]] = {}
    for g in groups:  # each baseline at its best point (highest final accuracy / lowest MSE)
        if g["method"] != DEFAULT_METHOD and key in g:
            sign = 1 if g["metric"] == "accuracy" else -1
            cur = best.get(g["method"])
            if cur is None or sign * g["average_final"]["mean"] > sign * cur["average_final"]["mean"]:
                best[g["method"]] = g
    for i, (method, g) in enumerate(sorted(best.items())):
        ax.axhline(g[key]["mean"], color=f"C{i + 1}", ls=":", lw=1.5, label=f"{method} final"
                   if key == "average_final" else method)
    ax.axvline(1.0, color="0.6", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xticks(x, [f"{r:.2g}" for r in x])  # the swept ratios, not log-axis decades
    ax.minorticks_off()
    ax.set_xlabel("compression ratio (hnet + embeddings / target weights)")
    ax.legend(fontsize=8)


def plot_entropy_split(split: Sequence[tuple[np.ndarray, np.ndarray]], ax: Axes | None = None,
                       floor: float = 1e-6) -> dict[str, Any]:
    """Box plots of each task net's entropy on its own test inputs (coloured) and on the
    other tasks' (grey), log scale (entropies below ``floor`` drawn at it), from
    :func:`hnviz.results.analysis.entropy_split`. Returns the boxplot's artists."""
    ax = _ax(ax, (7, 3.5))
    T = len(split)
    data = [np.maximum(v, floor) for pair in split for v in pair]
    pos = [p for t in range(T) for p in (3 * t, 3 * t + 1)]
    boxes = ax.boxplot(data, positions=pos, widths=0.8, patch_artist=True, showfliers=False)
    for i, (box, color) in enumerate(zip(boxes["boxes"], np.repeat(task_colors(T), 2, axis=0))):
        box.set(facecolor=color if i % 2 == 0 else "0.8", edgecolor="0.2")
    ax.set_yscale("log")
    ax.set_xticks([3 * t + 0.5 for t in range(T)], [f"net {t + 1}" for t in range(T)])
    ax.set(ylabel="predictive entropy (nats)",
           title="each task's net on its own inputs (colour) and on the others' (grey)")
    return boxes


def plot_comparison(summary: dict[str, Any], ax: Axes | None = None,
                    key: str = "average_final") -> Any:
    """Bars of one figure of a ``compare`` summary (``OUT/summary.json`` or what
    :func:`hnviz.compare` returns): mean over seeds per method, the std as error bars, the
    value written above each bar. Returns the bar container."""
    ax = _ax(ax, (7, 3.5))
    methods = list(summary["methods"])
    stats = [summary["methods"][m].get(key) or {"mean": np.nan, "std": 0.0} for m in methods]
    mean = np.array([s["mean"] for s in stats], dtype=float)
    bars = ax.bar(range(len(methods)), mean, yerr=[s["std"] for s in stats], capsize=3,
                  color=["C0" if is_ours(m) else "0.6" for m in methods])
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in mean], padding=2, fontsize=8)
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
    n = len(summary["seeds"])
    ax.set(ylabel={"average_final": "final average"}.get(key, key.replace("_", " ")),
           title=f"{summary['benchmark']['name']}, {summary['scenario']}: "
                 f"{n} seed{'s' if n > 1 else ''}")
    return bars
