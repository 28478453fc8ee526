"""Shared scikit-learn-style machinery of continual learners (hypernetwork and baselines)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import metrics
from .benchmarks import Task
from .targets import TargetNet, build_target
from .train import NonFiniteLossError
from .validate import as_float_tensor, check_bool, check_int

CALLBACK_HOOKS = ("on_task_start", "on_step", "on_task_end")


def check_callbacks(callbacks: Any) -> list[Any]:
    """``callbacks`` as a list of objects with the :class:`hnviz.train.Callback` hooks."""
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of hnviz.train.Callback objects, got "
                        f"{type(callbacks).__name__}")
    for cb in callbacks:
        missing = [h for h in CALLBACK_HOOKS if not callable(getattr(cb, h, None))]
        if missing:
            raise TypeError(f"callback {cb!r:.80} lacks {', '.join(missing)}; subclass "
                            "hnviz.train.Callback")
    return list(callbacks)


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


class ContinualLearner:
    """Base of :class:`hnviz.HyperCL` and the baselines.

    Subclasses set ``target_`` (a :class:`TargetNet`), ``task_info_``, ``tasks_`` and
    ``matrix_``, and implement ``_reset``, ``n_tasks_``, ``_partial_fit(task)`` and
    ``predict_output(x, task_id)``. ``fit``, ``predict``, ``score`` and ``summary`` follow.
    """

    target_: TargetNet | None
    config_class: type  # the config dataclass (with presets) of the subclass

    def __init__(self, config: Any = None, random_state: int | None = 0, progress: bool = True,
                 callbacks: Sequence[Any] = ()):
        cls = self.config_class
        if isinstance(config, str):
            config = cls.preset(config)
        if config is not None and not isinstance(config, cls):
            raise TypeError(f"config must be a {cls.__name__} or a preset name, "
                            f"got {type(config).__name__}")
        self.config = config or cls()
        if random_state is not None:
            random_state = check_int("random_state", random_state, 0, 2**63 - 1)
        self.random_state, self.progress = random_state, check_bool("progress", progress)
        self.callbacks = check_callbacks(callbacks)
        self._reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tasks={self.n_tasks_}, config={self.config!r})"

    def _build(self, in_features: int, n_outputs: int, n_heads: int,
               in_shape: tuple[int, ...]) -> None:
        """Create ``target_`` and the subclass's model (:meth:`_build_model`) under
        ``random_state``, then seed the generator for embeddings, batches and subsets."""
        cfg, seed = self.config, self.random_state
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            self.target_ = build_target(cfg.target, in_features, n_outputs, cfg.target_hidden,
                                        cfg.target_activation, n_heads, in_shape)
            self._build_model()
        self.in_shape_ = tuple(in_shape)
        self.gen_ = torch.Generator()
        self.gen_.manual_seed(seed if seed is not None else int(torch.seed() % 2**63))

    def _build_model(self) -> None:
        """Create what is trained besides the ``target_`` template (subclasses)."""
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    @property
    def n_tasks_(self) -> int:
        raise NotImplementedError

    def partial_fit(self, task: Task, callbacks: Sequence[Any] = ()) -> "ContinualLearner":
        """Learn ``task`` (the next one in the sequence) and update ``matrix_``;
        ``callbacks`` (e.g. :class:`hnviz.widgets.LiveTraining`) are called for this task
        besides the learner's own."""
        with self._extra_callbacks(callbacks):
            self._learn(task)
        return self

    def _learn(self, task: Task, state: Any = None) -> None:
        """``_partial_fit(task)`` (or continue ``state``, a task in progress restored from
        a checkpoint); if training diverges (:class:`NonFiniteLossError`) the trained
        weights go back to what they were before (the task, or the checkpoint), so earlier
        tasks are not lost, and the error propagates."""
        saved = self._trainable_state() if self.target_ is not None else None
        try:
            if state is None:
                self._partial_fit(task)
            else:
                self._partial_fit(task, state)
        except NonFiniteLossError:
            if saved is None:
                self._reset()
            else:
                self._load_trainable_state(saved)
            raise

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        """Copies of the tensors training changes (subclasses)."""
        raise NotImplementedError

    def _load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def _partial_fit(self, task: Task) -> None:
        raise NotImplementedError

    @contextmanager
    def _extra_callbacks(self, callbacks: Sequence[Any]) -> Iterator[None]:
        callbacks = check_callbacks(callbacks)
        n = len(self.callbacks)
        self.callbacks.extend(callbacks)
        try:
            yield
        finally:
            del self.callbacks[n:]

    def predict_output(self, x: Any, task_id: int) -> torch.Tensor:
        raise NotImplementedError

    def _head(self, task_id: int) -> int:
        return task_id if self.target_.n_heads > 1 else 0

    def _check_task(self, task: Task) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"expected a hnviz Task, got {type(task).__name__}")
        if task.task_id != self.n_tasks_:
            raise ValueError(f"task id {task.task_id} given, but the learner has {self.n_tasks_} "
                             f"task(s) and expects task {self.n_tasks_} next; pass tasks in order")
        if self.target_ is not None:
            self._check_x(task.x_train)
            if self.target_.n_heads > 1 and task.task_id >= self.target_.n_heads:
                raise ValueError(f"task id {task.task_id} has no output head: the target net has "
                                 f"{self.target_.n_heads} heads; build a longer sequence")

    def fit(self, tasks: Iterable[Task], callbacks: Sequence[Any] = ()) -> "ContinualLearner":
        """Reset, then learn every task of ``tasks`` in order (``callbacks``: as in
        :meth:`partial_fit`)."""
        tasks = task_list(tasks)
        self._reset()
        with self._extra_callbacks(callbacks):
            for task in tqdm(tasks, desc="tasks", disable=not self.progress):
                self._learn(task)
        return self

    def _finish_task(self, task: Task, history: dict[str, np.ndarray]) -> None:
        """Record a learned task: history, task info, a new row of ``matrix_``, callbacks."""
        self.history_.append(history)
        self.tasks_.append(task)
        self.task_info_.append({"name": task.name, "kind": task.kind, "metric": task.metric,
                                "n_outputs": task.n_outputs, "in_shape": list(task.in_shape),
                                "scenario": task.scenario, "class_offset": task.class_offset})
        self._update_matrix()
        for cb in self.callbacks:
            cb.on_task_end(self, task.task_id, {"row": self.matrix_[-1].copy()})

    @staticmethod
    def _grown(R: np.ndarray, row: list[float]) -> np.ndarray:
        """``R`` ``(T-1, T-1)`` grown to ``(T, T)`` with ``row`` last (NaN above the diagonal)."""
        T = len(row)
        out = np.full((T, T), np.nan)
        out[:T - 1, :T - 1] = R
        out[T - 1] = row
        return out

    def _update_matrix(self) -> None:
        self.matrix_ = self._grown(self.matrix_, [self.score(t) for t in self.tasks_])

    def _check_fitted(self) -> None:
        if self.target_ is None or self.n_tasks_ == 0:
            raise ValueError("this learner has not learned any task yet; call partial_fit(task) "
                             "or fit(tasks) first")

    def _check_task_id(self, task_id: Any) -> int:
        self._check_fitted()
        if not isinstance(task_id, (int, np.integer)) or isinstance(task_id, bool) \
                or not 0 <= task_id < self.n_tasks_:
            raise ValueError(f"task id {task_id!r} out of range: this learner knows tasks "
                             f"0..{self.n_tasks_ - 1}")
        return int(task_id)

    def _check_x(self, x: Any) -> torch.Tensor:
        want = self.target_.in_features
        x = as_float_tensor(x, "x", f"(N, {want})")
        if x.dim() < 1 or x.dim() == 1 or int(np.prod(x.shape[1:])) != want:
            raise ValueError(f"input of shape {tuple(x.shape)} has the wrong feature size: the "
                             f"target network expects (N, {want}); reshape x to (N, {want})")
        return x.reshape(x.shape[0], want)

    def predict(self, x: Any, task_id: int) -> torch.Tensor:
        """Predicted values ``(N, 1)`` (regression) or class labels ``(N,)`` for task ``task_id``."""
        out = self.predict_output(x, task_id)
        return out if self.task_info_[task_id]["kind"] == "regression" else out.argmax(-1)

    def predict_agnostic(self, x: Any, scenario: str) -> torch.Tensor:
        """Class labels ``(N,)`` without a task id (cl2: local, cl3: global classes).

        A single shared head answers directly; subclasses may infer the task instead.
        """
        self._check_fitted()
        if self.target_.n_heads > 1:
            raise ValueError(f"a multi-head model needs the task id; scenario {scenario!r} "
                             "requires multi_head=False (one shared head)")
        return self.predict_output(x, 0).argmax(-1)

    def score(self, task: Task) -> float:
        """Test MSE (regression) or accuracy in percent (classification) on ``task``,
        under the task's scenario (cl1: task id given; cl2/cl3: not given)."""
        if not isinstance(task, Task):
            raise TypeError(f"expected a hnviz Task, got {type(task).__name__}")
        if task.kind == "regression":
            pred = self.predict(task.x_test, task.task_id)
            return float(torch.mean((pred - task.y_test) ** 2))
        if task.scenario == "cl1":
            pred = self.predict(task.x_test, task.task_id)
        else:
            pred = self.predict_agnostic(task.x_test, task.scenario)
        return float((pred == task.scenario_labels(task.y_test)).float().mean() * 100)

    # ------------------------------------------------------------------ results
    @property
    def metric_(self) -> str:
        self._check_fitted()
        return self.task_info_[0]["metric"]

    def summary(self) -> dict[str, Any]:
        """:func:`hnviz.metrics.summary` of ``matrix_``."""
        return metrics.summary(self.matrix_, self.metric_)
