"""Tasks and task sequences: the data a continual learner sees, one common shape for
regression and classification (built by :mod:`hnviz.benchmarks`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

KINDS = ("regression", "classification")


@dataclass(frozen=True, repr=False)
class Task:
    """One task of a sequence.

    x_train ``(N, D)`` float32, y_train ``(N, 1)`` float32 (regression) or ``(N,)`` int64
    class indices (classification); the same for the test split. ``n_outputs`` is the
    output size of one head; ``n_tasks`` the length of the sequence the task belongs to.
    """

    task_id: int
    name: str
    kind: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_outputs: int
    n_tasks: int
    in_shape: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    scenario: str = "cl1"
    class_offset: int = 0  # first class of this task among all classes of the sequence
    n_classes_total: int | None = None  # classes of the whole sequence (cl3)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"task {self.task_id} ({self.name!r}): {problem}")

    def _problem(self) -> str | None:
        """What is wrong with the task's data (shapes, dtypes, labels), or None."""
        if self.kind not in KINDS:
            return f"kind {self.kind!r} is not one of {', '.join(KINDS)}"
        D = int(np.prod(self.in_shape))
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not (torch.is_tensor(x) and torch.is_tensor(y)):
                return f"x_{split} and y_{split} must be torch tensors"
            if x.dim() != 2 or x.shape[1] != D or len(x) == 0:
                return (f"x_{split} has shape {tuple(x.shape)}; expected (N, {D}) with N >= 1 "
                        f"for in_shape {tuple(self.in_shape)}")
            if len(y) != len(x):
                return f"y_{split} has {len(y)} rows for {len(x)} inputs"
            if self.kind == "regression" and tuple(y.shape[1:]) != (self.n_outputs,):
                return (f"y_{split} has shape {tuple(y.shape)} but the task has n_outputs = "
                        f"{self.n_outputs}; expected ({len(x)}, {self.n_outputs})")
            if self.kind == "classification":
                if y.dim() != 1 or y.is_floating_point():
                    return (f"y_{split} must hold class indices of shape ({len(x)},) as "
                            f"integers, got {tuple(y.shape)} {y.dtype}")
                if int(y.min()) < 0 or int(y.max()) >= self.n_outputs:
                    return (f"y_{split} has labels {int(y.min())}..{int(y.max())}; with "
                            f"n_outputs = {self.n_outputs} they must be 0..{self.n_outputs - 1}")
        return None

    @property
    def head_size(self) -> int:
        """Output size a single shared head needs: all classes of the sequence in cl3."""
        if self.scenario == "cl3" and self.n_classes_total is not None:
            return self.n_classes_total
        return self.n_outputs

    def scenario_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Labels in the scenario's label space: global classes in cl3, local otherwise."""
        return y + self.class_offset if self.scenario == "cl3" else y

    @property
    def in_features(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def metric(self) -> str:
        """"mse" for regression (lower is better), "accuracy" in percent otherwise."""
        return "mse" if self.kind == "regression" else "accuracy"

    def __repr__(self) -> str:
        return (f"Task({self.task_id}, {self.name!r}, {self.kind}, {self.scenario}, "
                f"train={len(self.x_train)}, "
                f"test={len(self.x_test)}, in={self.in_shape}, out={self.n_outputs})")


class TaskSequence:
    """An ordered list of :class:`Task` plus the spec that rebuilds it (``spec``)."""

    def __init__(self, name: str, tasks: list[Task], spec: dict[str, Any]):
        self.name, self.tasks, self.spec = name, list(tasks), dict(spec)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __getitem__(self, i: int | slice) -> Task | list[Task]:
        """Task ``i``, or a list of tasks for a slice (e.g. the first two: ``seq[:2]``)."""
        if isinstance(i, slice):
            return self.tasks[i]
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool) \
                or not -len(self) <= i < len(self):
            raise IndexError(f"task id {i!r} out of range for {self.name} with {len(self)} tasks; "
                             f"use 0..{len(self) - 1}")
        return self.tasks[i]

    @property
    def metric(self) -> str:
        return self.tasks[0].metric

    def __repr__(self) -> str:
        return f"TaskSequence({self.name!r}, {len(self)} tasks, metric={self.metric})"
