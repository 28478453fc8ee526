"""Tasks and task sequences: the data a continual learner sees, one common shape for
regression and classification (built by :mod:`hnviz.data.benchmarks`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
import torch

KINDS = ("regression", "classification")


class PermutedRows:
    """A permuted image set without its copy: the rows of one shared ``base`` ``(N, D)``
    with the fixed pixel permutation ``perm`` ``(D,)`` applied when rows are read.

    ``rows[idx]`` (an index tensor, a slice, an int array) returns a new tensor equal to
    ``base[:, perm][idx]``, so a training batch or an evaluation chunk costs only its own
    rows; ``rows[:]`` materialises the whole permuted set. Every permuted task of a
    sequence shares ``base``: memory does not grow with the number of tasks.

    A column-major ``base`` (``base.t()`` contiguous, as :func:`column_major` makes it)
    makes ``rows[:]`` a copy of whole columns, twenty times faster than gathering every
    row's pixels (what scoring a task on its whole test set reads); the result is then
    column-major too, with the same values.
    """

    def __init__(self, base: torch.Tensor, perm: torch.Tensor):
        if base.dim() != 2 or perm.shape != (base.shape[1],):
            raise ValueError(f"base {tuple(base.shape)} and permutation {tuple(perm.shape)} "
                             "do not fit: expected (N, D) and (D,)")
        self.base, self.perm = base, perm

    @property
    def shape(self) -> torch.Size:
        return self.base.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.base.dtype

    def dim(self) -> int:
        return 2

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, idx: Any) -> torch.Tensor:
        if isinstance(idx, tuple):  # rows, then columns of the permuted set
            return self[idx[0]][(slice(None),) + idx[1:]]
        if isinstance(idx, slice) and idx == slice(None) and self.base.t().is_contiguous():
            return self.base.t().index_select(0, self.perm).t()  # (N, D), column-major
        rows = self.base[idx]
        return rows[..., self.perm]

    def min(self) -> torch.Tensor:
        return self.base.min()  # a permutation moves values, it does not change them

    def max(self) -> torch.Tensor:
        return self.base.max()

    def numpy(self) -> np.ndarray:
        """The whole permuted set as an array ``(N, D)`` (a copy)."""
        return self[:].numpy()

    def __repr__(self) -> str:
        return f"PermutedRows({len(self)} x {self.shape[1]}, shared base)"


def column_major(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, D)`` stored column by column (equal values, strides ``(1, N)``): the
    layout of a :class:`PermutedRows` base read whole more often than by rows."""
    return x.t().contiguous().t()


def dense(x: torch.Tensor | PermutedRows) -> torch.Tensor:
    """``x`` as a tensor: a :class:`PermutedRows` materialised, a tensor as it is."""
    return x[:] if isinstance(x, PermutedRows) else x


@dataclass(frozen=True, repr=False)
class Task:
    """One task of a sequence.

    x_train ``(N, D)`` float32 (a tensor, or a :class:`PermutedRows` view that yields
    tensors when indexed), y_train ``(N, 1)`` float32 (regression) or ``(N,)`` int64
    class indices (classification); the same for the test split. ``n_outputs`` is the
    output size of one head; ``n_tasks`` the length of the sequence the task belongs to.
    """

    task_id: int
    name: str
    kind: str
    x_train: torch.Tensor | PermutedRows
    y_train: torch.Tensor
    x_test: torch.Tensor | PermutedRows
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
            if not ((torch.is_tensor(x) or isinstance(x, PermutedRows)) and torch.is_tensor(y)):
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

    def check_labels(self) -> None:
        """Raise a ``ValueError`` naming the task, split and value if the inputs became
        complex or integer, or a label (y_train, y_test) was changed in place after the
        task was built: a class index outside
        ``0..n_outputs - 1`` (classification) or a non-finite target (regression). One
        min/max (isfinite) pass over the labels; learners call it before each task."""
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            for name, t, want in ((f"x_{split}", x, torch.float32), (f"y_{split}", y, (
                    torch.float32 if self.kind == "regression" else torch.int64))):
                if torch.is_tensor(t) and t.dtype != want:  # a lazy view checks itself
                    raise ValueError(f"task {self.task_id} ({self.name!r}): {name} has dtype "
                                     f"{t.dtype}, not the task's {want}: it was replaced after "
                                     "the task was built; rebuild the sequence")
            if self.kind == "classification":
                lo, hi = int(y.min()), int(y.max())
                if lo >= 0 and hi < self.n_outputs:
                    continue
                problem = (f"holds label {lo if lo < 0 else hi}, outside 0..{self.n_outputs - 1} "
                           f"(n_outputs = {self.n_outputs})")
            else:
                finite = torch.isfinite(y)
                if bool(finite.all()):
                    continue
                problem = f"holds {float(y[~finite][0])}; regression targets must be finite"
            raise ValueError(f"task {self.task_id} ({self.name!r}): y_{split} {problem}: its "
                             f"labels were changed after the task was built; rebuild the "
                             f"sequence or restore y_{split}")

    @property
    def head_size(self) -> int:
        """Output size a single shared head needs: all classes of the sequence in cl3."""
        if self.scenario == "cl3" and self.n_classes_total is not None:
            return self.n_classes_total
        return self.n_outputs

    @property
    def chance(self) -> float:
        """Accuracy (%) of guessing among the :attr:`head_size` classes a prediction
        chooses from (a head's in cl1/cl2, the whole sequence's in cl3)."""
        return 100 / self.head_size

    def scenario_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Labels in the scenario's label space: global classes in cl3, local otherwise."""
        return y + self.class_offset if self.scenario == "cl3" else y

    def test_metric(self, out: torch.Tensor) -> float:
        """The task's test metric of raw outputs ``out`` ``(N_test, width)`` of a net: MSE
        for regression; accuracy in percent otherwise, against the local labels when
        ``width`` is the task's ``n_outputs`` and the scenario's labels when it is a
        shared head over all classes (cl3). ``out`` may cover the first test points only.
        """
        y = self.y_test[:len(out)]
        if self.kind == "regression":
            return float(torch.mean((out - y) ** 2))
        y = y if out.shape[-1] == self.n_outputs else self.scenario_labels(y)
        return float((out.argmax(-1) == y).float().mean() * 100)

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


def task_list(tasks: Any) -> list[Task]:
    """``tasks`` (a TaskSequence, list or other iterable of Task) as a non-empty list."""
    if isinstance(tasks, Task) or not isinstance(tasks, Iterable) or isinstance(tasks, (str, bytes)):
        raise TypeError(f"tasks must be a task sequence (e.g. hnviz.toy_regression()) or a "
                        f"list of Task, got {type(tasks).__name__}")
    tasks = list(tasks)
    if not tasks:
        raise ValueError("no tasks given; pass a task sequence with at least one task")
    bad = [type(t).__name__ for t in tasks if not isinstance(t, Task)]
    if bad:
        raise TypeError(f"tasks must all be hnviz Task objects, got {', '.join(sorted(set(bad)))}")
    return tasks
