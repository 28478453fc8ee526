"""One training run at a time, stoppable from a button: what the ForgettingLab and the
MethodsLab share. A button's press claims the run (a press while one trains is ignored),
the training thread checks a stop flag at every step and task start."""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, Iterator

from ..core.tasks import Task
from ..core.train import Callback


class TrainingStopped(Exception):
    """A run ended by its stop flag."""


class RunControl:
    """``running`` while a run trains (:meth:`claim` / :meth:`release`, thread-safe);
    :meth:`request_stop` makes :meth:`stopper`'s callback end the run at its next step
    (``position``: the (task, steps done) it reached)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.stop_requested = False
        self.position = (0, 0)
        self.thread: threading.Thread | None = None
        self.runs: list[dict[str, Any]] = []  # one per run started: see tracked()

    @contextlib.contextmanager
    def tracked(self, **info: Any) -> Iterator[dict[str, Any]]:
        """Around a claimed run's training: appends its record to ``runs`` (``info``,
        ``status`` "running" / "done" / "stopped" / "failed", ``stopped_at`` (task, step),
        ``seconds``), ends a stopped run quietly, and releases the run."""
        run = {**info, "status": "running", "stopped_at": None, "seconds": 0.0}
        self.runs.append(run)
        start = time.perf_counter()
        try:
            yield run
            run["status"] = "done"
        except TrainingStopped:
            run.update(status="stopped", stopped_at=self.position)
        except BaseException:
            run["status"] = "failed"
            raise
        finally:
            run["seconds"] = time.perf_counter() - start
            self.release()

    def seconds_per_step(self, n_tasks: int, per_run: int = 1) -> float | None:
        """Seconds per training step (``per_run`` learners each) of the last finished
        run of ``n_tasks`` tasks (None before one)."""
        done = [r for r in self.runs if r["status"] == "done"]
        if not done:
            return None
        return done[-1]["seconds"] / (done[-1]["n_steps"] * n_tasks * per_run)

    def describe_runs(self, label: Callable[[dict[str, Any]], str]) -> str:
        """One line: each run's number, ``label`` and how it ended, the newest first."""
        return ", ".join(f"{i}. " + label(r) + " " + (
            f"stopped (task {r['stopped_at'][0] + 1}, step {r['stopped_at'][1]})"
            if r["status"] == "stopped" else r["status"])
            for i, r in reversed(list(enumerate(self.runs, 1)))) or "none yet"

    def claim(self) -> bool:
        """Mark a run as starting; False (nothing changes) if one is running already."""
        with self.lock:
            if self.running:
                return False
            self.running, self.stop_requested = True, False
            self.position = (0, 0)
            return True

    def release(self) -> None:
        """Mark the run as ended (also one that failed before it began)."""
        with self.lock:
            self.running = False

    def request_stop(self) -> None:
        self.stop_requested = True

    def stopper(self) -> Callback:
        """A training callback: records the position, raises :class:`TrainingStopped` at
        the next step or task start once a stop is requested."""
        return _StopFlag(self)

    def start(self, target: Callable[[], Any]) -> bool:
        """Run ``target`` in a background thread if no run trains (claimed here, released
        when it ends); False when a run trains already (the press is ignored)."""
        if not self.claim():
            return False

        def run() -> None:
            try:
                target()
            finally:
                self.release()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the run started by :meth:`start` to end."""
        if self.thread is not None:
            self.thread.join(timeout)


class _StopFlag(Callback):
    def __init__(self, control: RunControl):
        self.control = control

    def on_task_start(self, learner: Any, task: Task) -> None:
        self.control.position = (task.task_id, 0)
        if self.control.stop_requested:
            raise TrainingStopped

    def on_step(self, learner: Any, task_id: int, step: int, logs: dict[str, float]) -> None:
        self.control.position = (task_id, step + 1)
        if self.control.stop_requested:
            raise TrainingStopped
