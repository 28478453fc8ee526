"""InterpolationExplorer: walk from task a's embedding to task b's."""
from __future__ import annotations

from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.collections import LineCollection
from traitlets import Float, HasTraits, Int, TraitError, validate

from ..results.analysis import embedding_path, interpolate
from ..results.plots import task_colors
from ..core.tasks import Task
from ..core.validate import check_real
from .net_panel import NetPanel, below
from .view import (AnalysisWidget, check_steps, check_task_arg, check_task_range, check_task_trait,
                   check_tasks, drawing, guarded, hypercl_of, metric_label, metric_norm,
                   task_labels)


# --------------------------------------------------------- InterpolationExplorer
class InterpolationState(HasTraits):
    """Tasks ``a``, ``b`` and ``alpha``: the net at e(alpha) = (1 - alpha) e_a + alpha e_b."""

    a = Int(0)
    b = Int(1)
    alpha = Float(0.0)
    n_tasks = Int(0)

    @validate("a", "b")
    def _valid_task(self, proposal: Any) -> int:
        return check_task_trait(proposal["value"], self.n_tasks, proposal["trait"].name)

    @validate("alpha")
    def _valid_alpha(self, proposal: Any) -> float:
        if not np.isfinite(proposal["value"]):
            raise TraitError(f"alpha = {proposal['value']} must be finite")
        return proposal["value"]


class InterpolationExplorer(AnalysisWidget):
    """Walk between two task embeddings: the net generated at e(alpha) (left) and every
    task's metric along the whole path ``[-extrapolate, 1 + extrapolate]`` with a marker
    at alpha (right). At alpha = 0 the net is task a's own, at alpha = 1 task b's."""

    def __init__(self, run: Any, a: int = 0, b: int = 1, tasks: Sequence[Task] | None = None,
                 n_steps: int = 41, extrapolate: float = 0.5):
        a, b = check_task_arg("a", a), check_task_arg("b", b)
        n_steps, tasks = check_steps("n_steps", n_steps, lo=2), check_tasks(tasks)
        extrapolate = check_real("extrapolate", extrapolate, allow_lo=True, hi=100)
        super().__init__()
        self.state = InterpolationState()
        try:
            self.learner, self.tasks = hypercl_of(run, tasks, "InterpolationExplorer")
        except Exception as e:  # noqa: BLE001
            self.report(e, "could not open the run: ")
            return
        T = len(self.tasks)
        check_task_range("a", a, T)
        check_task_range("b", b, T)
        self.n_steps, self.extrapolate = n_steps, extrapolate
        self.state.n_tasks = T
        self.state.a, self.state.b = a, b
        try:
            self._build()
        except Exception as e:  # noqa: BLE001 - a model's own code may fail here: said
            self.report(e, "could not show the model: ")

    blit = True  # a step of alpha draws only what it changes (False: the whole figure)

    def _build(self) -> None:
        T = len(self.tasks)
        fig = self.new_figure((11, 4.3))
        self.ax_net, self.ax_path = fig.subplots(1, 2)
        self.net = NetPanel(self.ax_net, self.learner, self.tasks)
        ax = self.ax_path
        self.many = T > 10
        if self.many:  # every task faint, a and b bold
            self.others = ax.add_collection(LineCollection([], colors="0.7", linewidths=0.6,
                                                           label="other tasks"))
            self.lines = [ax.plot([], [], color=c, lw=2.2)[0] for c in ("C0", "C3")]
        else:
            self.lines = [ax.plot([], [], color=c, lw=1.8, label=f"task {t + 1}")[0]
                          for t, c in enumerate(task_colors(T))]
        for x in (0.0, 1.0):
            ax.axvline(x, color="0.6", ls="--", lw=1)
        # drawn last (zorder 6): a blitted step redraws it over the saved background
        self.marker = ax.axvline(self.state.alpha, color="k", lw=1.5, zorder=6)
        ax.set(xlabel="α  (0: task a, 1: task b)",
               ylabel=metric_label(self.net.metric),
               xlim=(-self.extrapolate - 0.02, 1 + self.extrapolate + 0.02))
        if self.net.metric == "accuracy":
            ax.set_ylim(0, 102)
        opts = [(s, t) for t, s in enumerate(task_labels(self.learner))]
        self.a_box = widgets.Dropdown(options=opts, value=self.state.a, description="task a")
        self.b_box = widgets.Dropdown(options=opts, value=self.state.b, description="task b")
        self.slider = widgets.FloatSlider(self.state.alpha, min=-self.extrapolate,
                                          max=1 + self.extrapolate, description="α",
                                          step=(1 + 2 * self.extrapolate) / (self.n_steps - 1),
                                          continuous_update=True, readout_format=".2f")
        for box, name in ((self.a_box, "a"), (self.b_box, "b"), (self.slider, "alpha")):
            widgets.link((box, "value"), (self.state, name))
        self.state.observe(self._on_tasks, ["a", "b"])
        self.state.observe(self._on_alpha, "alpha")
        self.layout(widgets.HBox([self.a_box, self.b_box]), self.slider)
        self._update_path()
        self._update_alpha()
        fig.tight_layout()
        self.redraw()

    def embedding(self, alpha: float) -> np.ndarray:
        """e(alpha) ``(E,)``, the point of :func:`hnviz.results.analysis.interpolate`'s path."""
        return embedding_path(self.learner, self.state.a, self.state.b, [alpha])[0]

    def _update_path(self) -> None:
        a, b = self.state.a, self.state.b
        self.path = interpolate(self.learner, self.tasks, a, b, self.n_steps, self.extrapolate)
        alphas, m = self.path["alphas"], self.path["metrics"]
        names = [f"task {t + 1}: {self.tasks[t].name}" for t in (a, b)]
        if self.many:
            self.others.set_segments([np.column_stack([alphas, m[:, t]])
                                      for t in range(m.shape[1]) if t not in (a, b)])
            for line, t, name in zip(self.lines, (a, b), names):
                line.set_data(alphas, m[:, t])
                line.set_label(f"{name} ({'a' if t == a else 'b'})")
        else:
            for t, line in enumerate(self.lines):
                line.set_data(alphas, m[:, t])
                line.set(lw=3 if t in (a, b) else 1.2, alpha=1 if t in (a, b) else 0.55)
        if self.net.metric != "accuracy":
            norm = metric_norm(self.net.metric, m)
            self.ax_path.set(yscale="log", ylim=(norm.vmin, norm.vmax))
        below(self.ax_path, ncol=3 if self.many else min(len(self.lines), 3))
        self.ax_path.set_title(f"{self.net.metric} along the path from task {a + 1} to task {b + 1}",
                               fontsize=10)

    def _update_alpha(self) -> None:
        alpha = self.state.alpha
        self.marker.set_xdata([alpha, alpha])
        self.net.update(self.embedding(alpha))
        self.ax_net.set_title(f"net at α = {alpha:.2f}: {self.net.describe()}", fontsize=10)

    @guarded
    def _on_tasks(self, _: Any) -> None:
        self._update_path()
        self._update_alpha()
        self.redraw()

    @drawing
    @guarded
    def _on_alpha(self, _: Any) -> None:
        self._update_alpha()  # only the marker and the net's panel change: blit them
        self.redraw(changed=self.changing_artists() if self.blit else ())

    def changing_artists(self) -> list[Any]:
        """What a step of alpha changes, in drawing order: the marker (above the path's
        legend, which stays in the background) and the net panel's artists; empty when the
        net panel's limits may change."""
        net = self.net.changing_artists()
        return [] if net is None else [self.marker, *net]


