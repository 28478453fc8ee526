"""Transfer between tasks, the paper's third claim, measured two ways.

- **Forward transfer** (FWT, Lopez-Paz & Ranzato 2017): every learner records, as it
  trains, each task's metric just before training it (``before_``: after the tasks
  before it) and an untrained network's (``fresh_``: the same config and seed, never
  trained); :func:`hnviz.core.metrics.fwt` averages the difference over tasks 2..T.
- **Transfer vs from scratch**: each task's metric right after it was learned in the
  sequence (``during``) against the same network trained on that task alone, from
  scratch, for the same steps (:func:`scratch_scores`); positive means the sequence
  helped. It costs one more training per task, so it is measured on request
  (``compare(..., scratch=True)``, ``hnviz compare --scratch``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from .base import ContinualLearner
from ..core.tasks import task_list


def scratch_scores(make_learner: Callable[[], ContinualLearner], tasks: Any,
                   progress: bool = True) -> np.ndarray:
    """Each task of ``tasks`` learned alone by a new ``make_learner()`` (same config and
    seed as the sequence's learner): its test metric right after, ``(T,)``.

    The task keeps its data, labels and scenario; only its position becomes the first
    (task id 0), so it trains exactly as the first task of a sequence would.
    """
    out = []
    for task in tqdm(task_list(tasks), desc="from scratch", disable=not progress):
        learner = make_learner()
        if not isinstance(learner, ContinualLearner):
            raise TypeError(f"make_learner must return a hnviz learner, got "
                            f"{type(learner).__name__}")
        learner.partial_fit(dataclasses.replace(task, task_id=0))
        out.append(float(learner.matrix_[0, 0]))
    return np.array(out)
