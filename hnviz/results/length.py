"""Memory against sequence length: final accuracy, forgetting and the compression ratio
of hypernetwork runs on one benchmark at several lengths (docs/results.md, "Compression
over longer sequences"), as points with mean ± std over seeds and as a figure."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

from ..learners.hypercl import HyperCL
from ..store.runs import load_run
from .tables import format_stat, markdown_table, stats

KEYS = ("average_final", "during", "forgetting", "compression_ratio", "wall_seconds")


def length_points(runs: Mapping[str, Sequence[str | Path]]) -> list[dict[str, Any]]:
    """One point per (label, sequence length) from finished hypernetwork run directories:
    ``runs`` maps a label (e.g. "compressive") to its run directories, any lengths and
    seeds. Each point holds ``label``, ``n_tasks``, ``seeds`` and :func:`stats` of
    ``average_final``, ``during`` (the mean over tasks of each task's score right after
    it was learned), ``forgetting``, ``compression_ratio`` (hypernetwork weights and that
    length's task embeddings over target weights) and ``wall_seconds``; sorted by label
    then length. ``std`` is over seeds (numpy's default, ddof 0). A run that is not a
    hypernetwork's, runs of one label with another benchmark or config than the label's
    first run, and a seed twice at one length raise a ``ValueError`` naming the run."""
    rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for label, dirs in runs.items():
        first: tuple[Any, dict] | None = None
        for directory in dirs:
            run = load_run(directory)
            if not isinstance(run.learner, HyperCL):
                raise ValueError(f"{directory} is a {type(run.learner).__name__} run; "
                                 "length_points compares hypernetwork runs")
            what = ((run.spec or {}).get("name"), run.learner.config.to_dict())
            if first is None:
                first = what
            elif what != first:
                raise ValueError(f"{directory} is not the same benchmark and config as the "
                                 f"first run of {label!r}; give each hypernetwork a label")
            n = run.learner.n_tasks_
            if any(r["seed"] == run.learner.random_state for r in rows.get((label, n), [])):
                raise ValueError(f"{directory}: {label!r} has seed {run.learner.random_state} "
                                 f"at {n} tasks twice; pass each run once")
            m = run.metrics
            rows.setdefault((label, n), []).append({
                "seed": run.learner.random_state, "average_final": m["average_final"],
                "during": float(np.mean(m["during"])), "forgetting": m["forgetting"],
                "compression_ratio": run.learner.hnet_.compression_ratio(n),
                "wall_seconds": m.get("wall_seconds")})
    points = []
    for (label, n), group in sorted(rows.items()):
        point = {"label": label, "n_tasks": n, "seeds": [r["seed"] for r in group]}
        point.update({k: stats([r[k] for r in group]) for k in KEYS})
        points.append(point)
    return points


def length_table(points: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of :func:`length_points`: one row per label and length."""
    headers = ["hypernetwork", "tasks", "seeds", "compression ratio", "final avg acc (%)",
               "during (%)", "forgetting", "wall (s)"]
    rows = [[p["label"], str(p["n_tasks"]), ", ".join(map(str, p["seeds"])),
             format_stat(p["compression_ratio"], 3), format_stat(p["average_final"]),
             format_stat(p["during"]), format_stat(p["forgetting"]),
             format_stat(p["wall_seconds"], 0)] for p in points]
    return markdown_table(headers, rows)


def plot_length_curve(points: Sequence[dict[str, Any]], ax: Axes | None = None,
                      forgetting_ax: Axes | None = None) -> Axes:
    """Final accuracy (solid) and "during" accuracy (dashed), mean ± std over seeds,
    against the number of tasks, one colour per label of :func:`length_points`; the
    legend gives each label's compression ratio range. With ``forgetting_ax``,
    forgetting against the number of tasks is drawn there."""
    import matplotlib.pyplot as plt

    if not points:
        raise ValueError("no points to plot; pass length_points(...) of finished runs")
    ax = ax if ax is not None else plt.gca()
    labels = list(dict.fromkeys(p["label"] for p in points))
    for i, label in enumerate(labels):
        mine = [p for p in points if p["label"] == label]
        x = [p["n_tasks"] for p in mine]
        lo, hi = (f"{f(p['compression_ratio']['mean'] for p in mine):.2g}" for f in (min, max))
        name = f"{label} (ratio {lo})" if lo == hi else f"{label} (ratio {lo}–{hi})"
        for key, style, what in (("average_final", "-", "final"), ("during", "--", "during")):
            ax.errorbar(x, [p[key]["mean"] for p in mine], yerr=[p[key]["std"] for p in mine],
                        marker="o", capsize=3, color=f"C{i}", ls=style, label=f"{name} {what}")
        if forgetting_ax is not None:
            forgetting_ax.errorbar(x, [p["forgetting"]["mean"] for p in mine],
                                   yerr=[p["forgetting"]["std"] for p in mine], marker="o",
                                   capsize=3, color=f"C{i}", label=name)
    ticks = sorted({p["n_tasks"] for p in points})
    for a, ylabel in ((ax, "average accuracy (%)"), (forgetting_ax, "forgetting (points)")):
        if a is None:
            continue
        a.set_xticks(ticks)
        a.set_xlabel("tasks in the sequence")
        a.set_ylabel(ylabel)
        a.legend(fontsize=8)
    n = max(len(p["seeds"]) for p in points)
    ax.set_title(f"accuracy vs sequence length ({n} seed{'s' if n > 1 else ''} per point)")
    if forgetting_ax is not None:
        forgetting_ax.axhline(0.0, color="0.8", lw=0.8)
        forgetting_ax.set_title("forgetting vs sequence length")
    return ax
