"""ForgettingLab: catastrophic forgetting for a classroom (pick beta, train, compare).

:class:`LabSession` owns the runs (one learner per beta, same tasks and seed; a stop
flag checked every step); the :class:`ForgettingLab` view only draws and forwards the
buttons: "train" starts one run in a background thread (presses while it runs are
ignored), "stop" ends it within a step, "reset" forgets every run."""
from __future__ import annotations

import functools
import threading
import time
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import numpy as np
from traitlets import Float, HasTraits, Int, TraitError, validate

from ..benchmarks import toy_regression
from ..config import HyperCLConfig
from ..learner import HyperCL
from ..tasks import Task
from ..train import Callback
from .lab_view import LabFigure
from .live import LiveTraining
from .view import AnalysisWidget, guarded

BETAS = (0.0, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0)  # the slider's stops: a colour each


class LabState(HasTraits):
    """``beta``: the output regularizer's strength for the next run; ``n_steps``: its
    training steps per task."""

    beta = Float(0.01)
    n_steps = Int(1000)

    @validate("beta")
    def _valid_beta(self, proposal: Any) -> float:
        if not (np.isfinite(proposal["value"]) and proposal["value"] >= 0):
            raise TraitError(f"beta = {proposal['value']} must be finite and >= 0")
        return proposal["value"]

    @validate("n_steps")
    def _valid_steps(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"n_steps = {proposal['value']} must be >= 1")
        return proposal["value"]


class TrainingStopped(Exception):
    """A lab run ended by its stop flag."""


class _StopFlag(Callback):
    def __init__(self, session: "LabSession"):
        self.session = session

    def on_task_start(self, learner: Any, task: Task) -> None:
        self.session.position = (task.task_id, 0)
        if self.session.stop_requested:
            raise TrainingStopped

    def on_step(self, learner: Any, task_id: int, step: int, logs: dict[str, float]) -> None:
        self.session.position = (task_id, step + 1)
        if self.session.stop_requested:
            raise TrainingStopped


class LabSession:
    """The lab's runs: ``tasks`` learned with ``config`` and ``random_state``.

    ``records``: continual-evaluation records per task (``eval_every`` = steps //
    records; 0 keeps the config's). ``runs``: one dict per run started (``beta``,
    ``n_steps``, ``status`` "running" / "done" / "stopped" / "failed", ``stopped_at``
    (task, step) and ``seconds``); ``results`` maps beta
    to each task's final metric ``(T,)`` of its last finished run, ``learners`` beta to
    that learner, ``latest`` the learner finished last. ``running`` while a run trains;
    :meth:`request_stop` ends it at its next step.
    """

    def __init__(self, tasks: Sequence[Task], config: HyperCLConfig, random_state: int = 0,
                 records: int = 100):
        self.tasks, self.config, self.random_state = list(tasks), config, random_state
        self.records = records  # continual-evaluation records per task (0: none)
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every run (not allowed while one trains)."""
        if getattr(self, "running", False):
            raise RuntimeError("a run is training; stop it before a reset")
        self.runs: list[dict[str, Any]] = []
        self.results: dict[float, np.ndarray] = {}
        self.learners: dict[float, HyperCL] = {}
        self.latest: HyperCL | None = None
        self.running = self.stop_requested = False
        self.position = (0, 0)  # (task, steps done) of the run training

    def claim(self) -> bool:
        """Mark a run as starting; False (nothing changes) if one is running already."""
        with self.lock:
            if self.running:
                return False
            self.running, self.stop_requested = True, False
            return True

    def release(self) -> None:
        """Mark the run as ended (``train`` does; for a claimed run that never started)."""
        with self.lock:
            self.running = False

    def request_stop(self) -> None:
        self.stop_requested = True

    def seconds_per_step(self) -> float | None:
        """Seconds per training step of the last finished run (None before one)."""
        done = [r for r in self.runs if r["status"] == "done"]
        if not done:
            return None
        return done[-1]["seconds"] / (done[-1]["n_steps"] * len(self.tasks))

    def train(self, beta: float, n_steps: int | None = None,
              callbacks: Sequence[Any] = (), claimed: bool = False) -> HyperCL | None:
        """Learn the tasks with regularizer strength ``beta`` (``n_steps`` per task;
        ``callbacks``: e.g. a :class:`LiveTraining`); returns the learner, or None when
        the run was stopped (it is then recorded, its learner dropped). ``claimed``: the
        caller has :meth:`claim`-ed the run already; otherwise a running run raises."""
        if not claimed and not self.claim():
            raise RuntimeError("a run is training already; wait for it or stop it")
        n_steps = n_steps or self.config.n_steps
        run = {"beta": beta, "n_steps": n_steps, "status": "running", "stopped_at": None,
               "seconds": 0.0}
        self.runs.append(run)
        start = time.perf_counter()
        try:
            every = max(1, n_steps // self.records) if self.records else self.config.eval_every
            learner = HyperCL(self.config.replace(beta=beta, n_steps=n_steps, eval_every=every),
                              random_state=self.random_state, progress=False)
            learner.fit(self.tasks, callbacks=[_StopFlag(self), *callbacks])
            run["status"] = "done"
        except TrainingStopped:
            run.update(status="stopped", stopped_at=self.position)
            return None
        except BaseException:
            run["status"] = "failed"
            raise
        finally:
            run["seconds"] = time.perf_counter() - start
            self.running = False
        self.learners[beta], self.latest = learner, learner
        self.results[beta] = learner.matrix_[-1].copy()
        return learner


class ForgettingLab(AnalysisWidget):
    """Catastrophic forgetting for a classroom: pick beta on a slider (0 to 10) and the
    steps per task, press "train" and watch :class:`LiveTraining` (losses, the matrix on
    a fixed colour scale, every task during training); the figure then shows the nets
    after the last task (toy: the fitted functions) and each task's final metric for every
    beta tried (one colour per beta, kept across runs). "stop" ends a run within a step,
    "reset" forgets all runs; presses of "train" while a run trains are ignored.
    :meth:`follow` makes explorers that follow the learner trained last.

    ``tasks``: a task sequence (default: the toy regression); ``preset``: the config
    preset; ``n_steps``: steps per task (default: the preset's); ``records``: continual-
    evaluation records per task (0: none).
    """

    def __init__(self, tasks: Sequence[Task] | None = None, preset: str = "toy_regression",
                 betas: Sequence[float] = BETAS, beta: float = 0.01, n_steps: int | None = None,
                 random_state: int = 0, records: int = 100):
        super().__init__()
        tasks = list(tasks) if tasks is not None else list(toy_regression())
        config = HyperCLConfig.preset(preset, **({"n_steps": n_steps} if n_steps else {}))
        self.session = LabSession(tasks, config, random_state, records)
        self.state = LabState(beta=beta, n_steps=config.n_steps)
        self.tasks, self.metric = tasks, tasks[0].metric
        self.betas = sorted({float(b) for b in (*betas, beta)})
        self.live = LiveTraining(mse_range=(1e-4, 10.0))
        self.thread: threading.Thread | None = None
        self.ignored_presses = 0
        self.followers: list[dict[str, Any]] = []  # follow(): box, make, widget shown
        self.plot = LabFigure(self.new_figure((9.4, 3.8), live=True), tasks, self.betas)
        self._controls()
        self.redraw()

    @property
    def results(self) -> dict[float, np.ndarray]:
        """Each task's final metric ``(T,)`` per beta trained."""
        return self.session.results

    @property
    def learner(self) -> HyperCL | None:
        """The learner trained last."""
        return self.session.latest

    def _controls(self) -> None:
        self.slider = widgets.SelectionSlider(options=[(f"{b:g}", b) for b in self.betas],
                                              value=float(self.state.beta), description="β",
                                              continuous_update=False)
        widgets.link((self.slider, "value"), (self.state, "beta"))
        self.steps = widgets.BoundedIntText(self.state.n_steps, min=1, max=100_000, step=100,
                                            description="steps/task",
                                            layout=widgets.Layout(width="180px"))
        widgets.link((self.steps, "value"), (self.state, "n_steps"))
        self.button = widgets.Button(description="train", icon="play", button_style="primary")
        self.stop_button = widgets.Button(description="stop", icon="stop", disabled=True)
        self.reset_button = widgets.Button(description="reset", icon="undo")
        self.button.on_click(lambda _: self._train_clicked())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self._reset_clicked())
        self.status = widgets.HTML()
        self.state.observe(lambda _: self._show_status(), ["n_steps"])
        self.layout(widgets.HBox([self.slider, self.steps]),
                    widgets.HBox([self.button, self.stop_button, self.reset_button]),
                    self.status, self.live.view)
        self._show_status()

    def _show_status(self) -> None:
        per = self.session.seconds_per_step()
        T, n = len(self.tasks), self.state.n_steps
        eta = f"≈ {per * n * T:.0f} s per run" if per else "the first run measures the speed"
        runs = ", ".join(f"β = {r['beta']:g} " + (
            f"stopped (task {r['stopped_at'][0] + 1}, step {r['stopped_at'][1]})"
            if r["status"] == "stopped" else r["status"]) for r in self.session.runs)
        self.status.value = (f"{T} tasks × {n} steps: {eta}. Runs: {runs or 'none yet'}")

    def train(self) -> HyperCL | None:
        """Train with the current beta and steps (live plot), then update the figure and
        the followers; None if the run was stopped. Blocks (the button runs it in a
        thread instead)."""
        return self._run(claimed=False)

    def _run(self, claimed: bool) -> HyperCL | None:
        if not claimed and not self.session.claim():
            raise RuntimeError("a run is training already; wait for it (lab.wait()) or stop it")
        beta = float(self.state.beta)
        self.button.disabled, self.stop_button.disabled = True, False
        try:
            self.live.reset(f"β = {beta:g}")
            learner = self.session.train(beta, self.state.n_steps, [self.live], claimed=True)
        finally:
            self.session.release()  # also when the run failed before it began
            self.button.disabled, self.stop_button.disabled = False, True
            self._show_status()
        if learner is not None:
            self.plot.update(self.session)
            self.redraw()
            for follower in self.followers:
                self._show_follower(follower, learner)
        return learner

    @guarded
    def _train_clicked(self) -> None:
        if not self.session.claim():  # a run is training: this press is ignored
            self.ignored_presses += 1
            return
        self.thread = threading.Thread(target=self._run_claimed, daemon=True)
        self.thread.start()

    @guarded
    def _run_claimed(self) -> None:
        self._run(claimed=True)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a run started by the button to end."""
        if self.thread is not None:
            self.thread.join(timeout)

    def stop(self) -> None:
        """End the run that trains (at its next step)."""
        self.session.request_stop()

    def reset(self) -> None:
        """Stop a run that trains, then forget every run and clear the figures."""
        if self.session.running:
            self.stop()
            self.wait(30)
        self.session.reset()
        self.live.reset()
        self.plot.clear()
        self._show_status()
        self.redraw()

    @guarded
    def _reset_clicked(self) -> None:
        self.reset()

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
