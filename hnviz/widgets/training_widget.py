"""The controls both labs share: "train" (one run at a time in a background thread;
presses while it trains are ignored), "stop" (within a step), "reset", the steps per task
with the expected seconds, and a status line of the runs so far."""
from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from .run_control import RunControl
from .view import AnalysisWidget, MAX_STEPS, guarded


class TrainingWidget(AnalysisWidget):
    """A widget whose ``session`` (a :class:`RunControl`) trains: subclasses give
    :meth:`_train_run` (train once, blocking; returns what :meth:`train` returns), and
    :meth:`_clear` (forget the runs' pictures), :meth:`_run_label` (a run's name) and
    ``learners_per_step`` (for the expected seconds)."""

    learners_per_step = 1

    def __init__(self, session: RunControl, n_tasks: int, n_steps: int):
        super().__init__()
        self.session, self.n_tasks = session, n_tasks
        self.ignored_presses = 0
        self.steps = widgets.BoundedIntText(n_steps, min=1, max=MAX_STEPS, step=100,
                                            description="steps/task",
                                            layout=widgets.Layout(width="180px"))
        self.button = widgets.Button(description="train", icon="play", button_style="primary")
        self.stop_button = widgets.Button(description="stop", icon="stop", disabled=True)
        self.reset_button = widgets.Button(description="reset", icon="undo")
        self.button.on_click(lambda _: self._train_clicked())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self._reset_clicked())
        # the runs' list scrolls within two lines: a press never moves the figure below
        self.status = widgets.HTML(layout=widgets.Layout(height="48px", overflow="auto"))
        self.steps.observe(lambda _: self._show_status(), "value")

    def controls(self, *first: widgets.Widget) -> widgets.HBox:
        """One row (wrapping in a narrow column): ``first``, the steps box and the train,
        stop and reset buttons."""
        return widgets.HBox([*first, self.steps, self.button, self.stop_button,
                             self.reset_button], layout=widgets.Layout(flex_flow="row wrap"))

    @property
    def thread(self) -> threading.Thread | None:
        """The thread of the run the button started last."""
        return self.session.thread

    def train(self) -> Any:
        """Train once with the current settings, blocking (the button runs it in a
        thread instead); None if the run was stopped."""
        return self._run(claimed=False)

    def _run(self, claimed: bool) -> Any:
        if not claimed and not self.session.claim():
            raise RuntimeError("a run is training already; wait for it (.wait()) or stop it")
        self.button.disabled, self.stop_button.disabled = True, False
        try:
            return self._train_run()
        finally:
            self.session.release()  # also when the run failed before it began
            self.button.disabled, self.stop_button.disabled = False, True
            self._show_status()

    @guarded
    def _train_clicked(self) -> None:
        if not self.session.start(self._run_claimed):  # a run trains: the press is ignored
            self.ignored_presses += 1

    @guarded
    def _run_claimed(self) -> None:
        self._run(claimed=True)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a run started by the button to end."""
        self.session.wait(timeout)

    def stop(self) -> None:
        """End the run that trains (at its next step)."""
        self.session.request_stop()

    def reset(self) -> None:
        """Stop a run that trains, then forget every run and clear the figures."""
        if self.session.running:
            self.stop()
            self.wait(30)
        self.session.reset()
        self._clear()
        self._show_status()
        self.redraw()

    @guarded
    def _reset_clicked(self) -> None:
        self.reset()

    def _show_status(self) -> None:
        per = self.session.seconds_per_step(self.n_tasks, self.learners_per_step)
        T, n = self.n_tasks, self.steps.value
        eta = (f"≈ {per * n * T * self.learners_per_step:.0f} s per run" if per
               else "the first run measures the speed")
        runs = self.session.describe_runs(self._run_label)
        self.status.value = f"{T} tasks × {n} steps: {eta}. Runs: {runs}"

    def _train_run(self) -> Any:
        raise NotImplementedError

    def _clear(self) -> None:
        raise NotImplementedError

    def _run_label(self, run: dict[str, Any]) -> str:
        raise NotImplementedError
