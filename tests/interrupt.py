"""A callback that stops training at a given task and step (to leave an unfinished run's
checkpoints behind), for the tests."""
from hnviz.core.train import Callback


class Stop(Exception):
    """Raised by :class:`StopAt`."""


class StopAt(Callback):
    """Raise :class:`Stop` at step ``step`` of task ``task`` (0-based)."""

    def __init__(self, task: int, step: int):
        self.at = (task, step)

    def on_step(self, learner, task_id, step, logs):
        if (task_id, step) == self.at:
            raise Stop
