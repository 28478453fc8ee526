"""Results as tables: mean ± std over seeds, Markdown tables, one-line summaries
(used by :mod:`hnviz.experiments.compare`, :mod:`hnviz.experiments.sweeps` and the
command line)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def stats(values: Sequence[float | None]) -> dict[str, Any]:
    """``mean`` and ``std`` over the values that are numbers (None if there is none), and
    the ``values`` themselves (None for a missing one)."""
    vals = np.array([np.nan if v is None else v for v in values], dtype=float)
    some = bool(np.isfinite(vals).any())
    return {"mean": float(np.nanmean(vals)) if some else None,
            "std": float(np.nanstd(vals)) if some else None,
            "values": [None if np.isnan(v) else float(v) for v in vals]}


def format_stat(stat: dict[str, Any] | None, digits: int = 2, thousands: bool = False) -> str:
    """``mean ± std`` of a :func:`stats` dict (the mean alone for one value, "—" for none);
    ``thousands``: an integer count with separators (the mean only)."""
    if stat is None or stat["mean"] is None:
        return "—"
    if thousands:
        return f"{stat['mean']:,.0f}"
    if len(stat["values"]) > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (a header row, ``|---|`` and one line per row)."""
    lines = ["| " + " | ".join(headers) + " |", "|---" * len(headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def summary_line(summary: dict[str, Any]) -> str:
    """One line of a run's figures: metric, during, final, BWT, forgetting and, where the
    summary has them (a timed run), seconds."""
    unit = "%" if summary["metric"] == "accuracy" else ""
    fmt = "{:.2f}" if unit else "{:.4f}"
    d = sum(summary["during"]) / len(summary["during"])
    parts = [f"{summary['metric']:>8}", (fmt.format(d) + unit).rjust(9),
             (fmt.format(summary["average_final"]) + unit).rjust(9)]
    for key in ("bwt", "forgetting"):
        v = summary[key]
        parts.append(("n/a" if v is None else fmt.format(v)).rjust(10))
    if "wall_seconds" in summary:
        parts.append(f"{summary['wall_seconds']:7.1f}s")
    return " ".join(parts)
