"""ForgettingLab: catastrophic forgetting for a classroom (pick beta, train, compare).

:class:`LabSession` trains (one learner per beta, same tasks and seed); the
:class:`ForgettingLab` view only draws: its artists are made once and updated."""
from __future__ import annotations

from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.collections import PolyCollection
from traitlets import Float, HasTraits, TraitError, validate

from ..benchmarks import toy_regression
from ..config import HyperCLConfig
from ..learner import HyperCL
from ..plots import plot_toy_fits, task_colors, toy_fit_curves
from ..tasks import Task
from .live import LiveTraining
from .net_panel import bar_verts
from .view import AnalysisWidget, guarded, metric_label


class LabState(HasTraits):
    """``beta``: the output regularizer's strength for the next training run."""

    beta = Float(0.01)

    @validate("beta")
    def _valid_beta(self, proposal: Any) -> float:
        if not (np.isfinite(proposal["value"]) and proposal["value"] >= 0):
            raise TraitError(f"beta = {proposal['value']} must be finite and >= 0")
        return proposal["value"]


class LabSession:
    """The lab's training runs: ``tasks`` learned with ``config`` and ``random_state`` at
    each beta tried; ``results`` maps beta to each task's final metric ``(T,)``,
    ``learners`` beta to its learner, ``latest`` is the one trained last."""

    def __init__(self, tasks: Sequence[Task], config: HyperCLConfig, random_state: int = 0):
        self.tasks, self.config, self.random_state = list(tasks), config, random_state
        self.results: dict[float, np.ndarray] = {}
        self.learners: dict[float, HyperCL] = {}
        self.latest: HyperCL | None = None

    def train(self, beta: float, callbacks: Sequence[Any] = ()) -> HyperCL:
        """Learn the tasks with regularizer strength ``beta`` (``callbacks``: e.g. a
        :class:`LiveTraining`); returns the learner."""
        learner = HyperCL(self.config.replace(beta=beta), random_state=self.random_state,
                          progress=False).fit(self.tasks, callbacks=list(callbacks))
        self.learners[beta], self.latest = learner, learner
        self.results[beta] = learner.matrix_[-1].copy()
        return learner


class ForgettingLab(AnalysisWidget):
    """Catastrophic forgetting for a classroom: pick beta on a slider, press "train" (or
    call :meth:`train`) and watch :class:`LiveTraining`; the figure then shows the nets
    after the last task (toy: the fitted functions) and each task's final metric for
    every beta tried so far (one line per beta, its colour fixed by the slider).

    ``tasks``: a task sequence (default: the toy regression); ``preset``: the config
    preset; ``n_steps``: steps per task (default: the preset's).
    """

    def __init__(self, tasks: Sequence[Task] | None = None, preset: str = "toy_regression",
                 betas: Sequence[float] = (0.0, 1e-4, 1e-3, 0.005, 0.01, 0.05, 0.1),
                 beta: float = 0.01, n_steps: int | None = None, random_state: int = 0):
        super().__init__()
        self.state = LabState()
        tasks = list(tasks) if tasks is not None else list(toy_regression())
        config = HyperCLConfig.preset(preset, **({"n_steps": n_steps} if n_steps else {}))
        self.session = LabSession(tasks, config, random_state)
        self.tasks, self.metric = tasks, tasks[0].metric
        self.state.beta = beta
        self.live = LiveTraining()
        self.betas = sorted({float(b) for b in (*betas, beta)})
        self._build()

    @property
    def results(self) -> dict[float, np.ndarray]:
        """Each task's final metric ``(T,)`` per beta trained."""
        return self.session.results

    @property
    def learner(self) -> HyperCL | None:
        """The learner trained last."""
        return self.session.latest

    def _build(self) -> None:
        fig = self.new_figure((11, 4))
        self.ax_fit, self.ax_final = fig.subplots(1, 2)
        self.ax_final.set(xlabel="task", ylabel=f"final {metric_label(self.metric)}",
                          title="each task after the whole sequence, per β")
        T = len(self.tasks)
        if T <= 20:
            self.ax_final.set_xticks(range(1, T + 1))
        if self.metric != "accuracy":
            self.ax_final.set_yscale("log")
        self._make_fit_artists()
        self.ax_fit.set_title("press “train”", fontsize=10)
        self.ax_fit.set_axis_off()
        self.final_lines: dict[float, Any] = {}
        fig.tight_layout()
        self.slider = widgets.SelectionSlider(options=[(f"{b:g}", b) for b in self.betas],
                                              value=float(self.state.beta), description="β",
                                              continuous_update=False)
        widgets.link((self.slider, "value"), (self.state, "beta"))
        self.button = widgets.Button(description="train", icon="play", button_style="primary")
        self.button.on_click(lambda _: self._train_clicked())
        self.layout(widgets.HBox([self.slider, self.button]), self.live.view)
        self.redraw()

    def _make_fit_artists(self) -> None:
        """The left panel's artists, filled once a run exists: toy data and one line per
        task's generated net (1-D regression), or one bar per task."""
        ax, T = self.ax_fit, len(self.tasks)
        self.toy = self.tasks[0].kind == "regression" and self.tasks[0].in_features == 1
        if self.toy:
            self.fit_lines = plot_toy_fits(None, self.tasks, ax)[1::2]  # scatter, line, ...
        else:
            self.bars = ax.add_collection(PolyCollection(bar_verts(np.zeros(T)),
                                                         facecolors=task_colors(T),
                                                         edgecolors="none"))
            ax.set(xlabel="task", ylabel=metric_label(self.metric), xlim=(0.3, T + 0.7))

    def train(self) -> HyperCL:
        """Train on the tasks with the current beta (live plot), then update the figure."""
        learner = self.session.train(self.state.beta, [self.live])
        self._update()
        self.redraw()
        return learner

    @guarded
    def _train_clicked(self) -> None:
        self.button.disabled = True
        try:
            self.train()
        finally:
            self.button.disabled = False

    def _update(self) -> None:
        learner, T = self.session.latest, len(self.tasks)
        ax = self.ax_fit
        ax.set_axis_on()
        if self.toy:
            for line, (x, y) in zip(self.fit_lines, toy_fit_curves(learner, self.tasks)):
                line.set_data(x, y)
        else:
            self.bars.set_verts(bar_verts(learner.matrix_[-1]))
            if self.metric == "accuracy":
                ax.set_ylim(0, 102)
        ax.relim()
        ax.autoscale_view()
        ax.set_title(f"after the last task, β = {learner.config.beta:g}", fontsize=10)
        for beta, row in self.session.results.items():
            if beta not in self.final_lines:  # a colour per beta of the slider, kept
                color = f"C{self.betas.index(beta) % 10}" if beta in self.betas else "k"
                self.final_lines[beta], = self.ax_final.plot([], [], marker="o", color=color,
                                                             label=f"β = {beta:g}")
            self.final_lines[beta].set_data(np.arange(1, T + 1), row)
        self.ax_final.relim()
        self.ax_final.autoscale_view()
        self.ax_final.legend(handles=[self.final_lines[b] for b in sorted(self.final_lines)],
                             fontsize=8)
