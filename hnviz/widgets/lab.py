"""ForgettingLab: catastrophic forgetting for a classroom (pick beta, train, compare).

:class:`LabSession` owns the runs (one learner per beta, same tasks and seed; a stop
flag checked every step); the :class:`ForgettingLab` view only draws and forwards the
buttons: "train" starts one run in a background thread (presses while it runs are
ignored), "stop" ends it within a step, "reset" forgets every run."""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import numpy as np
from traitlets import Float, HasTraits, TraitError, validate

from ..data.benchmarks import toy_regression
from ..learners.config import HyperCLConfig
from ..learners.hypercl import HyperCL
from ..core.tasks import Task, task_list
from ..core.validate import check_int, check_real
from .lab_view import LabFigure
from .live import LiveTraining
from .run_control import RunControl
from .training_widget import TrainingWidget
from .view import DISPLAY, check_betas, check_seed, check_steps, check_tasks, drawing, guarded

BETAS = (0.0, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0)  # the slider's stops: a colour each
FIGSIZE = (12.6, 5.4)  # inches at 90 dpi: 1134 x 486 px before set_display/projector
FIGSIZE_NARROW = (9.4, 9.0)  # a column under 1000 px: the results below the live panels
WIDE_PX = 1000


class LabState(HasTraits):
    """``beta``: the output regularizer's strength for the next run (its steps per task
    are the ``steps`` box's value, owned by :class:`TrainingWidget`)."""

    beta = Float(0.1)

    @validate("beta")
    def _valid_beta(self, proposal: Any) -> float:
        if not (np.isfinite(proposal["value"]) and proposal["value"] >= 0):
            raise TraitError(f"beta = {proposal['value']} must be finite and >= 0")
        return proposal["value"]


class LabSession(RunControl):
    """The lab's runs: ``tasks`` learned with ``config`` and ``random_state``.

    ``records``: continual-evaluation records per task (``eval_every`` = steps //
    records; 0 keeps the config's). ``runs``: one dict per run started (see
    :meth:`RunControl.tracked`; here with ``beta`` and ``n_steps``); ``results`` maps beta
    to each task's final metric ``(T,)`` of its last finished run, ``result_steps`` beta to
    that run's steps per task, ``learners`` beta to that learner, ``latest`` the learner
    finished last. ``running`` while a run trains;
    :meth:`request_stop` ends it at its next step.
    """

    def __init__(self, tasks: Sequence[Task], config: HyperCLConfig, random_state: int = 0,
                 records: int = 100):
        if not isinstance(config, HyperCLConfig):
            raise TypeError(f"config must be a HyperCLConfig, got {type(config).__name__}; "
                            "e.g. HyperCLConfig.preset('toy_regression_quick')")
        tasks, random_state = task_list(tasks), check_seed(random_state)
        records = check_int("records", records, 0)
        super().__init__()
        self.tasks, self.config, self.random_state = tasks, config, random_state
        self.records = records  # continual-evaluation records per task (0: none)
        self.reset()

    def reset(self) -> None:
        """Forget every run (not allowed while one trains)."""
        if self.running:
            raise RuntimeError("a run is training; stop it before a reset")
        self.runs.clear()
        self.results: dict[float, np.ndarray] = {}
        self.result_steps: dict[float, int] = {}
        self.learners: dict[float, HyperCL] = {}
        self.latest: HyperCL | None = None

    def train(self, beta: float, n_steps: int | None = None,
              callbacks: Sequence[Any] = (), claimed: bool = False) -> HyperCL | None:
        """Learn the tasks with regularizer strength ``beta`` (``n_steps`` per task;
        ``callbacks``: e.g. a :class:`LiveTraining`); returns the learner, or None when
        the run was stopped (it is then recorded, its learner dropped). ``claimed``: the
        caller has :meth:`claim`-ed the run already; otherwise a running run raises."""
        if not claimed and not self.claim():
            raise RuntimeError("a run is training already; wait for it or stop it")
        n_steps = n_steps or self.config.n_steps
        with self.tracked(beta=beta, n_steps=n_steps) as run:
            every = max(1, n_steps // self.records) if self.records else self.config.eval_every
            learner = HyperCL(self.config.replace(beta=beta, n_steps=n_steps, eval_every=every),
                              random_state=self.random_state, progress=False)
            learner.fit(self.tasks, callbacks=[self.stopper(), *callbacks])
        if run["status"] != "done":
            return None
        self.learners[beta], self.latest = learner, learner
        self.results[beta] = learner.matrix_[-1].copy()
        self.result_steps[beta] = n_steps
        return learner


class ForgettingLab(TrainingWidget):
    """Catastrophic forgetting for a classroom: pick beta on a slider (0 to 10) and the
    steps per task, press "train" and watch :class:`LiveTraining` (losses, the matrix on
    a fixed colour scale, every task during training, the old tasks' weight drift); the
    figure then shows the nets after the last task (toy: the fitted functions) and each
    task's final metric for every beta tried (one colour per beta, kept across runs).
    "stop" ends a run within a step, "reset" forgets all runs; presses of "train" while a
    run trains are ignored. :meth:`follow` makes explorers that follow the learner
    trained last.

    ``tasks``: a task sequence (default: the toy regression); ``preset``: the config
    preset; ``n_steps``: steps per task (default: the preset's); ``records``: continual-
    evaluation records per task (0: none).
    """

    def __init__(self, tasks: Sequence[Task] | None = None, preset: str = "toy_regression_quick",
                 betas: Sequence[float] = BETAS, beta: float = 0.1, n_steps: int | None = None,
                 random_state: int = 0, records: int = 100):
        tasks = check_tasks(tasks) or list(toy_regression())
        beta, betas = check_real("beta", beta, allow_lo=True), check_betas(betas)
        n_steps = check_steps("n_steps", n_steps, optional=True)
        config = HyperCLConfig.preset(preset, **({} if n_steps is None else {"n_steps": n_steps}))
        super().__init__(LabSession(tasks, config, random_state, records), len(tasks),
                         config.n_steps)
        self.state = LabState(beta=beta)
        self.tasks, self.metric = tasks, tasks[0].metric
        self.betas = sorted({*betas, beta})
        self.followers: list[dict[str, Any]] = []  # follow(): box, make, widget shown
        # one figure: the live panels (2 x 2) and the lab's results, side by side where
        # the display is wide (projector(): one screen), else the results below
        wide = DISPLAY["width"] >= WIDE_PX
        fig = self.new_figure(FIGSIZE if wide else FIGSIZE_NARROW, live=True)
        fig.set_layout_engine("constrained")  # tight_layout cannot lay out nested grids
        grid = fig.add_gridspec(1, 2, width_ratios=[2.5, 1.3]) if wide else \
            fig.add_gridspec(2, 1, height_ratios=[2, 1])
        self.live = LiveTraining(mse_range=(1e-4, 10.0), host=(self.fig_view, grid[0]),
                                 hints=False)  # the lab always records
        results = grid[1].subgridspec(2, 1) if wide else grid[1].subgridspec(1, 2)
        self.plot = LabFigure(fig, tasks, self.betas,
                              axes=(fig.add_subplot(results[0]), fig.add_subplot(results[1])))
        self.slider = widgets.SelectionSlider(options=[(f"{b:g}", b) for b in self.betas],
                                              value=float(self.state.beta), description="β",
                                              continuous_update=False)
        widgets.link((self.slider, "value"), (self.state, "beta"))
        self.layout(self.controls(self.slider), self.status, self.live.view)
        self._show_status()
        self.redraw()

    @property
    def results(self) -> dict[float, np.ndarray]:
        """Each task's final metric ``(T,)`` per beta trained."""
        return self.session.results

    @property
    def learner(self) -> HyperCL | None:
        """The learner trained last."""
        return self.session.latest

    def _run_label(self, run: dict[str, Any]) -> str:
        return f"β = {run['beta']:g} ({run['n_steps']} steps)"

    def _train_run(self) -> HyperCL | None:
        beta = float(self.state.beta)
        self.live.reset(f"β = {beta:g}")
        learner = self.session.train(beta, self.steps.value, [self.live], claimed=True)
        if learner is not None:
            self._show_result(learner)
        return learner

    @drawing
    @guarded
    def _show_result(self, learner: HyperCL) -> None:
        """The result figure and the followers for ``learner``."""
        self.plot.update(self.session)
        self.redraw()
        for follower in self.followers:
            self._show_follower(follower, learner)

    def _clear(self) -> None:
        self.live.reset()
        self.plot.clear()

    def follow(self, make: Callable[..., Any], **kwargs: Any) -> widgets.Box:
        """A box showing ``make(learner, **kwargs)`` (e.g. ``follow(InterpolationExplorer,
        a=0, b=2)``) for the learner trained last, remade after every finished run."""
        follower = {"box": widgets.VBox(), "make": functools.partial(make, **kwargs),
                    "widget": None}
        self.followers.append(follower)
        if self.learner is not None:
            self._show_follower(follower, self.learner)
        else:
            follower["box"].children = [widgets.HTML("train the lab first; this view "
                                                     "follows its runs")]
        return follower["box"]

    @property
    def followed(self) -> list[Any]:
        """The widgets the :meth:`follow` boxes show now."""
        return [f["widget"] for f in self.followers if f["widget"] is not None]

    def _show_follower(self, follower: dict[str, Any], learner: HyperCL) -> None:
        old, follower["widget"] = follower["widget"], follower["make"](learner)
        follower["box"].children = [getattr(follower["widget"], "view", follower["widget"])]
        if old is not None and hasattr(old, "close"):
            old.close()
