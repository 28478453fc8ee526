"""What every widget shares: the widget base (its figure view from :mod:`.figure_view`,
messages, errors, display) and the small helpers of the views: resolving a
learner/run/directory, task labels, colour scales, ticks, saving a figure."""
from __future__ import annotations

import base64
import functools
import io
from pathlib import Path
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from traitlets import TraitError

from ..base import ContinualLearner
from ..learner import HyperCL
from ..metrics import metric_label
from ..runs import Run, load_run
from ..safeio import atomic_write
from ..tasks import Task
from .figure_view import (DISPLAY, DRAW_LOCK, FigureView, display_size, drawing,
                          projector, set_display, wrap_titles)

__all__ = ["AnalysisWidget", "DISPLAY", "DRAW_LOCK", "FigureView", "chance_lines",
           "check_task_trait", "display_size", "drawing", "guarded", "html_table", "hypercl_of",
           "integer_ticks", "learner_of", "metric_label", "metric_norm", "projector", "resolve",
           "save_figure", "set_display", "task_labels", "wrap_titles"]


def guarded(method: Callable) -> Callable:
    """Run a callback; show an exception in the widget's output instead of losing it."""
    @functools.wraps(method)
    def wrapper(self: "AnalysisWidget", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - shown to the user, never swallowed
            self.report(e)
    return wrapper


class AnalysisWidget:
    """Shared parts: ``output`` (messages), ``errors``, ``figure``, ``view`` (the VBox)."""

    def __init__(self) -> None:
        self.output = widgets.Output()
        self.errors: list[str] = []
        self.figure: Figure | None = None
        self.fig_view: FigureView | None = None
        self.view = widgets.VBox([self.output])

    def report(self, error: BaseException | str, context: str = "") -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        text = f"{context}{text}"
        self.errors.append(text)
        self.output.append_stderr(text + "\n")

    def new_figure(self, figsize: tuple[float, float], live: bool = False) -> Figure:
        self.fig_view = FigureView(figsize, live)
        self.figure = self.fig_view.figure
        return self.figure

    def layout(self, *controls: widgets.Widget, below: Sequence[widgets.Widget] = ()) -> None:
        self.view.children = [*controls, self.fig_view.widget, *below, self.output]

    def redraw(self, changed: Sequence[Any] = ()) -> None:
        """Render the figure now (the image view) or schedule a redraw (ipympl);
        ``changed``: only these artists changed (see :meth:`FigureView.draw`)."""
        if self.fig_view is not None:
            self.fig_view.draw(changed)

    def close(self) -> None:
        """Close the figure and the widgets."""
        if self.fig_view is not None:
            self.fig_view.close()
        self.view.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget, and the figure as it is now as a PNG: JupyterLab shows the
        widget; a static page (nbconvert, the docs site, GitHub) shows the picture."""
        bundle = self.view._repr_mimebundle_(**kwargs)
        if self.figure is not None and isinstance(bundle, dict):
            buf = io.BytesIO()
            with DRAW_LOCK:
                self.figure.savefig(buf, format="png", dpi=self.figure.dpi)
            bundle["image/png"] = base64.b64encode(buf.getvalue()).decode("ascii")
        return bundle


def learner_of(source: Any) -> tuple[ContinualLearner, Run | None]:
    """The fitted learner of a learner, a :class:`Run` or a run directory (and the Run)."""
    if isinstance(source, (str, Path)):
        source = load_run(source)
    if isinstance(source, Run):
        return source.learner, source
    if isinstance(source, ContinualLearner):
        source.check_fitted()
        return source, None
    raise TypeError(f"expected a trained learner, a Run or a run directory, got "
                    f"{type(source).__name__}")


def resolve(source: Any, tasks: Sequence[Task] | None) -> tuple[ContinualLearner, list[Task]]:
    """A learner and its tasks (``tasks``, else the learner's own or the run's benchmark)."""
    learner, run = learner_of(source)
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


def hypercl_of(source: Any, tasks: Sequence[Task] | None, widget: str) -> tuple[HyperCL, list[Task]]:
    learner, tasks = resolve(source, tasks)
    if not isinstance(learner, HyperCL):
        raise ValueError(f"{widget} needs a hypernetwork run, but this is a "
                         f"{getattr(learner.config, 'method', type(learner).__name__)} baseline "
                         "(no task embeddings); use ForgettingDashboard to compare it")
    return learner, tasks


def task_labels(learner: ContinualLearner) -> list[str]:
    return [f"{t + 1}: {info['name']}" for t, info in enumerate(learner.task_info_)]


def check_task_trait(value: int, n_tasks: int, name: str, allow: int | None = None) -> int:
    if value == allow:
        return value
    if not 0 <= value < n_tasks:
        extra = f" (or {allow})" if allow is not None else ""
        raise TraitError(f"{name} = {value} is out of range: the run has tasks 0..{n_tasks - 1}"
                         f"{extra}")
    return value


def chance_lines(ax: Any, chances: Any) -> None:
    """A dashed line at each accuracy of guessing among ``chances`` (the runs' values:
    runs of different scenarios guess among different numbers of classes), labelled
    with its value; those below the axis are named in its y-label instead."""
    low, high = ax.get_ylim()
    below = []
    for chance in sorted(set(chances)):
        if low <= chance <= high:
            ax.axhline(chance, color="0.5", ls="--", lw=1)
            ax.text(0.99, chance, f"chance {chance:.3g} % ", transform=ax.get_yaxis_transform(),
                    ha="right", va="bottom", fontsize=8, color="0.4")
        else:
            below.append(f"{chance:.3g} %")
    if below:
        ax.set_ylabel(f"{ax.get_ylabel()}\n(chance: {', '.join(below)}, below the axis)")


def integer_ticks(*axes: Any) -> None:
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "linear":
                axis.set_major_locator(MaxNLocator(integer=True))


def metric_norm(metric: str, values: Any) -> Normalize:
    """Colour scale of a metric: 0-100 % for accuracy, logarithmic over ``values`` for MSE."""
    if metric == "accuracy":
        return Normalize(0, 100)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (1e-3, 1.0)
    return LogNorm(lo / 1.5, max(hi * 1.5, lo * 10))


def save_figure(figure: Figure, path: Path, dpi: int) -> Path:
    """Write ``figure`` to ``path`` (format from the suffix) atomically."""
    buf = io.BytesIO()
    with DRAW_LOCK:
        figure.savefig(buf, format=path.suffix[1:].lower(), dpi=dpi)
    atomic_write(path, buf.getvalue())
    return path


def html_table(rows: list[dict[str, Any]]) -> str:
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


