"""Transfer to data-poor tasks (docs/results.md, "Transfer"): each task's score right
after it was learned in the sequence against the same learner trained on that task
alone, from the run directories of ``compare(..., scratch=True)``, as numbers over seeds
and as figures."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

from ..store.runs import load_run
from .tables import stats


def transfer_points(runs: Mapping[str, Sequence[str | Path]], first: int = 1) -> dict[str, Any]:
    """Per label (e.g. a method): ``during`` and ``scratch`` ``(S, T)`` over its ``S``
    seeds' run directories (each task's score right after it was learned, in the
    sequence and alone), ``gain`` ``(S,)`` the mean of ``during - scratch`` over tasks
    ``first..T-1`` (the later tasks; task 0 learns alone either way) and its
    :func:`~hnviz.results.tables.stats`. A run trained without ``scratch=True`` raises a
    ``ValueError`` naming it."""
    out = {}
    for label, dirs in runs.items():
        during, scratch = [], []
        for directory in dirs:
            m = load_run(directory).metrics
            if m.get("scratch") is None:
                raise ValueError(f"{directory} was trained without scratch=True (compare "
                                 "--scratch): it has no from-scratch scores")
            during.append(m["during"])
            scratch.append(m["scratch"])
        d, s = np.asarray(during, dtype=float), np.asarray(scratch, dtype=float)
        gain = (d[:, first:] - s[:, first:]).mean(axis=1)
        out[label] = {"during": d, "scratch": s, "gain": gain,
                      "gain_stats": stats(gain.tolist()), "first": first}
    return out


def plot_transfer(points: Mapping[str, Any], ax: Axes | None = None,
                  names: Sequence[str] | None = None) -> Axes:
    """Bars: each later task's score in the sequence (solid) and alone (hatched) per label,
    mean over seeds with the standard deviation; ``names`` label the tasks."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    labels = list(points)
    first = next(iter(points.values()))["first"]
    n_tasks = next(iter(points.values()))["during"].shape[1]
    x = np.arange(first, n_tasks)
    width = 0.8 / (2 * len(labels))
    for i, label in enumerate(labels):
        p = points[label]
        for j, (key, hatch, alpha) in enumerate((("during", None, 0.9), ("scratch", "//", 0.45))):
            values = p[key][:, first:]
            pos = x - 0.4 + width * (2 * i + j + 0.5)
            ax.bar(pos, values.mean(0), width, yerr=values.std(0), color=f"C{i}", alpha=alpha,
                   hatch=hatch, edgecolor=f"C{i}", capsize=2,
                   label=f"{label}: {'in the sequence' if key == 'during' else 'alone'}")
    ax.set_xticks(x, [names[t] if names else f"task {t + 1}" for t in x], fontsize=8)
    ax.set_ylabel("accuracy right after learning (%)")
    low = min(p[k][:, first:].min() for p in points.values() for k in ("during", "scratch"))
    ax.set_ylim(max(0.0, low - 10), 100)
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    return ax


def plot_gain_by_size(by_size: Mapping[int, Mapping[str, Any]], ax: Axes | None = None,
                      xlabel: str = "training images per class of a later task") -> Axes:
    """Lines: each label's mean gain over the later tasks (in the sequence minus alone)
    against the amount of data per later task (``by_size`` maps it to
    :func:`transfer_points`), mean ± std over seeds; 0 is no transfer."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.6))
    sizes = sorted(by_size)
    labels = list(by_size[sizes[0]])
    for i, label in enumerate(labels):
        mean = [by_size[n][label]["gain"].mean() for n in sizes]
        std = [by_size[n][label]["gain"].std() for n in sizes]
        ax.errorbar(sizes, mean, yerr=std, marker="o", color=f"C{i}", capsize=3, label=label)
    ax.axhline(0, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("in the sequence − alone (points)")
    ax.legend(fontsize=8)
    return ax
