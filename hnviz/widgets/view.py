"""What every widget shares: the widget base (its figure view from :mod:`.figure_view`,
messages, errors, display) and the small helpers of the views: resolving a
learner/run/directory, task labels, colour scales, ticks, saving a figure, and the checks
of the widgets' constructor arguments (``check_*``: one line naming the argument)."""
from __future__ import annotations

import base64
import functools
import io
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from traitlets import TraitError

from ..learners.base import ContinualLearner
from ..learners.hypercl import HyperCL
from ..learners.protocol import ExplorableModel, HypernetModel, explorable
from ..core.metrics import metric_label
from ..store.runs import Run, load_run
from ..io.safeio import atomic_write
from ..core.tasks import Task, task_list
from ..core.validate import check_choice, check_int, check_real, is_real
from .figure_view import (DISPLAY, DRAW_LOCK, FigureView, display_size, drawing, projector,
                          set_display, wrap_titles)

__all__ = ["AnalysisWidget", "DISPLAY", "DRAW_LOCK", "FigureView", "MAX_STEPS", "chance_lines",
           "check_betas", "check_interval", "check_methods", "check_mse_range", "check_n_samples",
           "check_save_dir", "check_seed", "check_steps", "check_task_arg", "check_task_range",
           "check_task_trait", "check_tasks", "display_size", "drawing", "guarded", "html_table",
           "hypercl_of", "integer_ticks", "learner_of", "metric_label", "metric_norm", "projector",
           "resolve", "save_figure", "set_display", "task_labels", "wrap_titles"]


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


def learner_of(source: Any) -> tuple[ContinualLearner | ExplorableModel, Run | None]:
    """The fitted learner of a learner, a :class:`Run` or a run directory (and the Run),
    or a model of the hypernetwork protocol (:mod:`hnviz.learners.protocol`)."""
    if isinstance(source, (str, Path)):
        source = load_run(source)
    if isinstance(source, Run):
        return source.learner, source
    if isinstance(source, ContinualLearner):
        source.check_fitted()
        return source, None
    if isinstance(source, HypernetModel):
        return explorable(source), None
    raise TypeError(f"expected a trained learner, a Run, a run directory or a hypernetwork "
                    f"model (hnviz.from_hypnettorch), got {type(source).__name__}")


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


def hypercl_of(source: Any, tasks: Sequence[Task] | None,
               widget: str) -> tuple[HyperCL | ExplorableModel, list[Task]]:
    """A hypernetwork (a :class:`HyperCL` or a protocol model) and its tasks."""
    learner, tasks = resolve(source, tasks)
    if not isinstance(learner, (HyperCL, ExplorableModel)):
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


# ------------------------------------------------ constructor arguments
# each bad value raises a one-line ValueError/TypeError naming the argument, before a
# widget builds anything (no comparison or traitlets error from inside shows)
MAX_STEPS = 100_000  # steps per task a lab trains (its steps box's maximum)


def check_task_arg(name: str, value: Any, allow: int | None = None) -> int:
    """A task number's type and lower bound (0, or ``allow`` = -1 where that means none),
    before the run is loaded; :func:`check_task_range` checks it against the run."""
    return check_int(name, value, 0 if allow is None else allow)


def check_task_range(name: str, value: int, n_tasks: int, allow: int | None = None) -> int:
    """``value`` as a task of a run with ``n_tasks`` tasks (or ``allow``)."""
    if value != allow and not 0 <= value < n_tasks:
        extra = f" (or {allow})" if allow is not None else ""
        raise ValueError(f"{name} = {value} is out of range: the run has tasks 0..{n_tasks - 1}"
                         f"{extra}; e.g. {name}=0")
    return value


def check_tasks(tasks: Any) -> list[Task] | None:
    """A task sequence as a list (None stays None: the widget's default)."""
    return None if tasks is None else task_list(tasks)


def check_steps(name: str, value: Any, lo: int = 1, optional: bool = False) -> int | None:
    """Steps: an integer ``lo..MAX_STEPS`` (None allowed if ``optional``: the default)."""
    return None if optional and value is None else check_int(name, value, lo, MAX_STEPS)


def check_n_samples(value: Any) -> int | None:
    """Test points per task: None (all) or an integer >= 1."""
    return None if value is None else check_int("n_samples", value, 1)


def check_seed(value: Any) -> int:
    return check_int("random_state", value, 0, 2**63 - 1)


def check_interval(name: str, value: Any) -> float:
    """Seconds between redraws: finite, 0 to an hour."""
    return check_real(name, value, allow_lo=True, hi=3600)


def check_mse_range(value: Any) -> tuple[float, float] | None:
    """None, or a pair ``(lo, hi)`` of finite numbers with 0 < lo < hi."""
    ok = value is None or (isinstance(value, (tuple, list)) and len(value) == 2
                           and all(is_real(v) and math.isfinite(v) for v in value)
                           and 0 < value[0] < value[1])
    if not ok:
        raise ValueError(f"mse_range must be (lo, hi) with 0 < lo < hi, finite, or None, "
                         f"got {value!r}; e.g. mse_range=(1e-4, 10.0)")
    return None if value is None else (float(value[0]), float(value[1]))


def check_betas(value: Any) -> list[float]:
    """The lab's slider stops: a non-empty list of finite numbers >= 0."""
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(f"betas must be a list of finite numbers >= 0, got {value!r}; "
                        "e.g. betas=(0, 0.01, 1)")
    for beta in value:
        if not (is_real(beta) and math.isfinite(beta) and beta >= 0):
            raise ValueError(f"betas must be finite numbers >= 0, got {beta!r}; "
                             "e.g. betas=(0, 0.01, 1)")
    return [float(b) for b in value]


def check_methods(value: Any, choices: Sequence[str]) -> list[str]:
    """A non-empty list of distinct method names out of ``choices``."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"methods must be a list of method names ({', '.join(choices)}), "
                        f"got {value!r}; e.g. methods=['finetune', 'hnet']")
    if not value:
        raise ValueError(f"methods is empty; pass one or more of {', '.join(choices)}")
    for m in value:
        check_choice("method", m, tuple(choices))
    twice = next((m for i, m in enumerate(value) if m in value[:i]), None)
    if twice is not None:
        raise ValueError(f"methods lists {twice!r} twice; name each method once")
    return list(value)


def check_save_dir(value: Any) -> Path:
    if not isinstance(value, (str, Path)):
        raise TypeError(f"save_dir must be a folder path (str or Path), got {value!r}; "
                        "e.g. save_dir='figures'")
    return Path(value)


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


