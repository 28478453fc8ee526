"""Task sequences with one common shape: toy regression and the 8x8 digit benchmarks."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

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

    def __getitem__(self, i: int) -> Task:
        if not isinstance(i, (int, np.integer)) or not -len(self) <= i < len(self):
            raise IndexError(f"task id {i!r} out of range for {self.name} with {len(self)} tasks; "
                             f"use 0..{len(self) - 1}")
        return self.tasks[i]

    @property
    def metric(self) -> str:
        return self.tasks[0].metric

    def __repr__(self) -> str:
        return f"TaskSequence({self.name!r}, {len(self)} tasks, metric={self.metric})"


TOY_FUNCTIONS: list[tuple[str, Callable[[np.ndarray], np.ndarray], tuple[float, float]]] = [
    ("x + 3", lambda x: x + 3.0, (-4.0, -2.0)),
    ("2x^2 - 1", lambda x: 2.0 * x ** 2 - 1.0, (-1.0, 1.0)),
    ("(x - 3)^3", lambda x: (x - 3.0) ** 3, (2.0, 4.0)),
]


def toy_regression(seed: int = 42, n_train: int = 100, n_test: int = 50,
                   noise: float = 0.05) -> TaskSequence:
    """The paper's 1-D toy (Fig. 2): three polynomials on disjoint input ranges.

    Training inputs are uniform in the range with Gaussian output noise (std ``noise``);
    test inputs are ``n_test`` equidistant noise-free points (as in the authors' code).
    """
    rng = np.random.RandomState(seed)
    tasks = []
    for i, (name, fn, (lo, hi)) in enumerate(TOY_FUNCTIONS):
        x_tr = rng.uniform(lo, hi, size=(n_train, 1))
        y_tr = fn(x_tr) + rng.normal(0.0, noise, size=(n_train, 1))
        x_te = np.linspace(lo, hi, n_test).reshape(n_test, 1)
        tasks.append(Task(i, f"f{i + 1}(x) = {name}", "regression",
                          *(_f32(a) for a in (x_tr, y_tr, x_te, fn(x_te))), n_outputs=1,
                          n_tasks=3, in_shape=(1,), meta={"x_range": (lo, hi)}))
    return TaskSequence("toy_regression", tasks,
                        {"name": "toy_regression", "seed": seed, "n_train": n_train,
                         "n_test": n_test, "noise": noise})


def _f32(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _digits_split(seed: int) -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits scaled to [0, 1], fixed stratified 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.25, random_state=seed, stratify=y)


def permuted_digits(n_tasks: int = 10, seed: int = 0) -> TaskSequence:
    """PermutedDigits: task t applies fixed pixel permutation t (t = 0: identity).

    10 classes per task; inputs ``(N, 64)``.
    """
    _check_n_tasks(n_tasks)
    x_tr, x_te, y_tr, y_te = _digits_split(seed)
    rng = np.random.RandomState(seed + 1)
    tasks = []
    for t in range(n_tasks):
        perm = np.arange(64) if t == 0 else rng.permutation(64)
        tasks.append(Task(t, f"permutation {t}", "classification", _f32(x_tr[:, perm]),
                          torch.as_tensor(y_tr), _f32(x_te[:, perm]), torch.as_tensor(y_te),
                          n_outputs=10, n_tasks=n_tasks, in_shape=(1, 8, 8),
                          meta={"permutation": perm.tolist()}, class_offset=10 * t,
                          n_classes_total=10 * n_tasks))
    return TaskSequence(f"permuted_digits_{n_tasks}", tasks,
                        {"name": "permuted_digits", "n_tasks": n_tasks, "seed": seed})


def split_digits(seed: int = 0) -> TaskSequence:
    """SplitDigits: 5 tasks of 2 classes, (0,1), (2,3), ..., (8,9); labels 0/1 per task."""
    x_tr, x_te, y_tr, y_te = _digits_split(seed)
    tasks = []
    for t in range(5):
        classes = (2 * t, 2 * t + 1)
        tr, te = np.isin(y_tr, classes), np.isin(y_te, classes)
        tasks.append(Task(t, f"digits {classes[0]}/{classes[1]}", "classification",
                          _f32(x_tr[tr]), torch.as_tensor(y_tr[tr] - classes[0]),
                          _f32(x_te[te]), torch.as_tensor(y_te[te] - classes[0]),
                          n_outputs=2, n_tasks=5, in_shape=(1, 8, 8),
                          meta={"classes": list(classes)}, class_offset=2 * t,
                          n_classes_total=10))
    return TaskSequence("split_digits", tasks, {"name": "split_digits", "seed": seed})


def _check_n_tasks(n_tasks: Any) -> None:
    if not isinstance(n_tasks, (int, np.integer)) or isinstance(n_tasks, bool) or n_tasks < 1:
        raise ValueError(f"n_tasks must be an integer >= 1, got {n_tasks!r}")


BENCHMARKS: dict[str, Callable[..., TaskSequence]] = {
    "toy_regression": toy_regression,
    "permuted_digits": permuted_digits,
    "split_digits": split_digits,
}


def get_benchmark(name: str, **kwargs: Any) -> TaskSequence:
    """Build a benchmark by name (one of ``BENCHMARKS``) with its keyword options."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name](**kwargs)


def from_spec(spec: dict[str, Any]) -> TaskSequence:
    """Rebuild a sequence from its ``TaskSequence.spec`` (as saved in a run directory)."""
    from .scenarios import apply_scenario

    spec = dict(spec)
    scenario = spec.pop("scenario", None)
    tasks = get_benchmark(spec.pop("name"), **spec)
    return tasks if scenario is None else apply_scenario(tasks, scenario)
