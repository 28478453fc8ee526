"""The one description of a fitted learner: :class:`LearnerState`, what run files and
checkpoints write and read (``state_dict``/``load_state_dict`` of the learners)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import metrics


class StateError(ValueError):
    """A :class:`LearnerState` that does not describe a learner; ``part`` says where the
    problem is: "meta" (the description), "matrix" (a metric matrix), "weights" or
    "training" (those tensors)."""

    def __init__(self, message: str, part: str = "weights"):
        super().__init__(message)
        self.part = part


@dataclass
class LearnerState:
    """Everything a fitted learner is, as JSON-ready ``meta`` plus tensors.

    meta: ``learner`` (kind), ``config``, ``random_state``, ``target`` (layout:
    in_features, n_outputs, n_heads, in_shape), ``task_info`` (one record per learned
    task), ``matrix`` (R, None for unseen), ``step`` and ``sampler_pos`` (the task in
    progress: steps done, 0 for none; position in the epoch's data order), and what a
    subclass adds. ``weights``: the trained model (run files: weights.safetensors);
    ``history``: ``task<t>.<key>`` step logs (history.safetensors); ``training``: what
    continuing exactly needs besides (the learner's RNG, the task in progress: optimizer
    moments, theta*, data order) — checkpoints only.
    """

    meta: dict[str, Any]
    weights: dict[str, torch.Tensor]
    history: dict[str, torch.Tensor] = field(default_factory=dict)
    training: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def tasks_done(self) -> int:
        return len(self.meta["task_info"])

    def tensor(self, name: str) -> torch.Tensor:
        """``training`` or ``weights`` tensor ``name``, or a :class:`StateError`."""
        for group in (self.training, self.weights):
            if name in group:
                return group[name]
        raise StateError(f"lacks tensor {name!r}", "training")


def grown(R: np.ndarray, row: list[float]) -> np.ndarray:
    """``R`` ``(T-1, T-1)`` grown to ``(T, T)`` with ``row`` last (NaN above the diagonal)."""
    T = len(row)
    out = np.full((T, T), np.nan)
    out[:T - 1, :T - 1] = R
    out[T - 1] = row
    return out


def saved_matrix(rows: Any, done: int, key: str) -> np.ndarray:
    """A saved ``(done, done)`` metric matrix (None for unseen) as floats with NaN."""
    try:
        m = metrics.from_json(rows)
    except ValueError as e:
        raise StateError(f"has a {key!r} that is not a matrix of numbers ({e})", "matrix") from e
    if m.shape != (done, done) and not (done == 0 and m.size == 0):
        raise StateError(f"has a {key!r} of shape {m.shape}, expected ({done}, {done}) for "
                         f"its {done} tasks", "matrix")
    return m.reshape(done, done)
