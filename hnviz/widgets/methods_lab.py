"""MethodsLab: fine-tuning, EWC and the hypernetwork learn the same tasks side by side.

:class:`MethodsSession` trains the three learners in lockstep (each learns task 1, then
each learns task 2, ...) with continual evaluation; the :class:`MethodsLab` view draws one
panel per method on shared axes while they learn: every task's metric at every record,
so the moment a method forgets is visible next to the methods that do not."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..learners.base import ContinualLearner
from ..data.benchmarks import toy_regression
from ..learners.config import HyperCLConfig
from ..learners.methods import REGISTRY, SHOWCASE, get_method
from ..results.plots import task_colors
from ..core.stability import curves, task_starts
from ..core.tasks import Task, task_list
from ..core.train import Callback
from ..core.validate import check_int
from .figure_view import Throttle
from .lab_view import MSE_RANGE
from .run_control import RunControl
from .training_widget import TrainingWidget
from .view import (chance_lines, check_interval, check_methods, check_seed, check_steps,
                   check_tasks, drawing, guarded, metric_label)

METHODS = SHOWCASE
# what the lab can train: the methods of cl1 (it gives no scenario) on any task kind
CHOICES = tuple(m.name for m in REGISTRY.values() if "cl1" in m.scenarios)
NAMES = {m.name: m.plain for m in REGISTRY.values()}


class MethodsSession(RunControl):
    """Runs of ``methods`` on ``tasks`` with the ``preset``'s target net and optimizer
    (the baselines: :class:`BaselineConfig`, the hypernetwork: :class:`HyperCLConfig`),
    ``records`` continual-evaluation records per task. ``learners`` maps each method to
    its learner of the current or last run (kept when a run is stopped: what it reached)."""

    def __init__(self, tasks: Sequence[Task], preset: str, methods: Sequence[str] = METHODS,
                 random_state: int = 0, records: int = 50):
        HyperCLConfig.preset(preset)  # an unknown preset raises, naming the presets
        tasks, methods = task_list(tasks), check_methods(methods, CHOICES)
        random_state, records = check_seed(random_state), check_int("records", records, 1)
        super().__init__()
        self.tasks, self.preset, self.methods = tasks, preset, methods
        self.random_state, self.records = random_state, records
        self.learners: dict[str, ContinualLearner] = {}

    def reset(self) -> None:
        """Forget every run (not allowed while one trains)."""
        if self.running:
            raise RuntimeError("a run is training; stop it before a reset")
        self.runs.clear()
        self.learners = {}

    def make(self, method: str, n_steps: int) -> ContinualLearner:
        """A fresh learner of ``method`` with ``n_steps`` per task."""
        every = max(1, n_steps // self.records)
        m = get_method(method)
        cfg = m.preset_config(self.preset, n_steps=n_steps, eval_every=every)
        return m.learner(cfg, random_state=self.random_state, progress=False)

    def train(self, n_steps: int, callbacks: Callable[[str], Sequence[Any]] = lambda m: (),
              claimed: bool = False) -> dict[str, ContinualLearner] | None:
        """Every method learns the tasks, in lockstep task by task (``callbacks(method)``:
        that learner's extra callbacks); the learners, or None if the run was stopped."""
        if not claimed and not self.claim():
            raise RuntimeError("a run is training already; wait for it or stop it")
        with self.tracked(n_steps=n_steps) as run:
            self.learners = {m: self.make(m, n_steps) for m in self.methods}
            stop = self.stopper()
            for task in self.tasks:
                for method, learner in self.learners.items():
                    learner.partial_fit(task, callbacks=[stop, *callbacks(method)])
        return self.learners if run["status"] == "done" else None


class _Feed(Callback):
    """Tells the view that a learner moved on (it redraws at most every half second)."""

    def __init__(self, view: "MethodsLab"):
        self.view = view

    def on_step(self, learner: Any, task_id: int, step: int, logs: dict[str, float]) -> None:
        self.view.maybe_render()

    def on_task_end(self, learner: Any, task_id: int, logs: dict[str, Any]) -> None:
        self.view.maybe_render(force=True)


class MethodsLab(TrainingWidget):
    """Fine-tuning, EWC and the hypernetwork learning the same tasks, side by side and
    live: press "train" (or call :meth:`train`) and each panel shows every task's metric
    while the later tasks train (shared axes, fixed scale; dotted lines: a task starts);
    after a run each panel's title gives the final average and the forgetting. "stop"
    ends a run within a step, "reset" clears it; presses while a run trains are ignored.

    ``tasks``: a task sequence (default: the toy regression); ``preset``: the config
    preset of all three (target net, optimizer, steps); ``n_steps``: steps per task;
    ``methods``: which (default fine-tuning, EWC, hypernetwork); ``records``: continual-
    evaluation records per task; ``min_interval``: seconds between live redraws.
    """

    def __init__(self, tasks: Sequence[Task] | None = None, preset: str = "toy_regression_quick",
                 n_steps: int | None = None, methods: Sequence[str] = METHODS,
                 random_state: int = 0, records: int = 50, min_interval: float = 0.5):
        tasks = check_tasks(tasks) or list(toy_regression())
        n_steps = check_steps("n_steps", n_steps, optional=True)
        n_steps = HyperCLConfig.preset(preset).n_steps if n_steps is None else n_steps
        methods = check_methods(methods, CHOICES)
        min_interval = check_interval("min_interval", min_interval)
        super().__init__(MethodsSession(tasks, preset, methods, random_state, records),
                         len(tasks), n_steps)
        self.learners_per_step = len(methods)
        self.tasks, self.methods, self.metric = tasks, list(methods), tasks[0].metric
        self.throttle = Throttle(min_interval)
        fig = self.new_figure((9.4, 3.6), live=True)
        axes = fig.subplots(1, len(self.methods), sharex=True, sharey=True, squeeze=False)[0]
        self.axes = dict(zip(self.methods, axes))
        self.lines: dict[str, list[Any]] = {m: [] for m in self.methods}
        self.marks: list[Any] = []
        self._make_axes()
        fig.tight_layout()
        self.layout(self.controls(), self.status)
        self._show_status()
        self.redraw()

    def _make_axes(self) -> None:
        colors = task_colors(len(self.tasks))
        for i, (method, ax) in enumerate(self.axes.items()):
            ax.set_title(NAMES.get(method, method), fontsize=11)
            ax.set_xlabel("training step (all tasks)")
            self.lines[method] = [ax.plot([], [], color=c, lw=1.2,
                                          label=f"task {t + 1}")[0] for t, c in enumerate(colors)]
        first = self.axes[self.methods[0]]
        better = "higher" if self.metric == "accuracy" else "lower"
        first.set_ylabel(f"{metric_label(self.metric)}, {better} is better")
        if self.metric == "accuracy":
            first.set_ylim(0, 102)
            for ax in self.axes.values():
                chance_lines(ax, [self.tasks[0].chance])
        else:
            first.set_yscale("log")
            first.set_ylim(*MSE_RANGE)
        first.set_xlim(0, self.steps.value * len(self.tasks))
        if len(self.tasks) <= 5:  # beside the last panel: never over a curve
            last = self.axes[self.methods[-1]]
            last.legend(handles=self.lines[self.methods[0]], fontsize=9, loc="upper left",
                        bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)

    @property
    def learners(self) -> dict[str, ContinualLearner]:
        """Each method's learner of the current or last run."""
        return self.session.learners

    def _run_label(self, run: dict[str, Any]) -> str:
        return f"{run['n_steps']} steps"

    def _train_run(self) -> dict[str, ContinualLearner] | None:
        self._clear()
        feed = _Feed(self)
        out = self.session.train(self.steps.value, lambda m: [feed], claimed=True)
        self.render()
        return out

    @drawing
    def _clear(self) -> None:
        self.axes[self.methods[0]].set_xlim(0, self.steps.value * len(self.tasks))
        for lines in self.lines.values():
            for line in lines:
                line.set_data([], [])
        for mark in self.marks:
            mark.remove()
        self.marks.clear()
        for method, ax in self.axes.items():
            ax.set_title(NAMES.get(method, method), fontsize=11)

    def maybe_render(self, force: bool = False) -> None:
        """Redraw if ``min_interval`` passed since the last redraw (or ``force``), unless
        a redraw is still waiting for the main thread."""
        if force or self.throttle.ready():
            self.render()

    @drawing
    @guarded
    def render(self) -> None:
        """Every panel from its learner's records so far, then the figure."""
        try:
            for method, learner in list(self.learners.items()):
                current = learner.continual_  # read once: training moves on
                history = list(learner.history_)
                history = history if current is None else [*history, current.arrays()]
                x, y = curves(history)
                for j, line in enumerate(self.lines[method]):
                    line.set_data(*((x, y[:, j]) if j < y.shape[1] else ([], [])))
                if method == self.methods[0]:
                    self._mark_starts(x)
                self.axes[method].set_title(self._title(method, learner), fontsize=11)
            self.redraw()
        finally:
            self.throttle.done()

    def _mark_starts(self, x: np.ndarray) -> None:
        starts = task_starts(x)
        while len(self.marks) < len(starts) * len(self.axes):
            k = len(self.marks) // len(self.axes)
            self.marks += [ax.axvline(starts[k], color="0.7", lw=0.8, ls=":")
                           for ax in self.axes.values()]

    def _title(self, method: str, learner: ContinualLearner) -> str:
        name = NAMES.get(method, method)
        if learner.n_tasks_ < len(self.tasks) or learner.continual_ is not None:
            return name
        s = learner.summary()
        fmt = "{:.1f}" if self.metric == "accuracy" else "{:.3g}"
        return (f"{name}\naverage final {fmt.format(s['average_final'])}, forgetting "
                f"{fmt.format(s['forgetting'])}")
