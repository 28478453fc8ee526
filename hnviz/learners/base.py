"""Shared scikit-learn-style machinery of continual learners (hypernetwork and baselines)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core import metrics
from ..core.stability import ContinualEval, stability_gap
from .learner_state import Stateful, check_size, grown
from ..core.batchnorm import check_norms_use
from ..core.targets import TargetNet, build_target, count_params as count_target_params
from ..core.tasks import Task, dense, task_list
from ..core.devices import check_device, resolve_device
from ..core.threads import check_threads, training_threads
from ..core.train import NonFiniteLossError, check_callbacks
from ..core.validate import as_float_tensor, check_bool, check_int, check_task_index

class ContinualLearner(Stateful):
    """Base of :class:`hnviz.HyperCL` and the baselines.

    Subclasses set ``kind`` and ``config_class`` and implement ``_reset``, ``n_tasks_``,
    ``_build_model``, ``_partial_fit(task)``, ``predict_output(x, task_id)`` and the weight
    half of the state (``_weights``/``_load_weights``); ``fit``, ``predict``, ``score``,
    ``summary`` and ``state_dict``/``load_state_dict`` follow."""

    kind: str  # names the learner in state dicts and run files
    target_: TargetNet | None
    config_class: type  # the config dataclass (with presets) of the subclass
    resumable = False  # its state_dict holds a task in progress (checkpoints, resume)
    batch_norm_per_task = False  # keeps batch-norm statistics per task (core.batchnorm)

    def __init__(self, config: Any = None, random_state: int | None = 0, progress: bool = True,
                 callbacks: Sequence[Any] = (), threads: int | str | None = None,
                 device: Any = None):
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
        self.threads = None if threads is None else check_threads(threads)  # N, auto, None
        # where it trains and predicts: "cpu", "cuda[:N]", "mps", "auto" or None
        # ($HNVIZ_DEVICE, else the CPU; hnviz.core.devices); resolved when the model is built
        self.device = None if device is None else check_device(device)
        self.device_ = torch.device("cpu")
        self._reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tasks={self.n_tasks_}, config={self.config!r})"

    def _reset(self) -> None:
        """Forget everything learned (the attributes every learner has)."""
        self.target_, self.history_ = None, []  # history_: a dict of arrays per task
        self.matrix_ = np.zeros((0, 0))
        self.task_info_: list[dict[str, Any]] = []
        self.tasks_: list[Task] = []  # test data for the matrix (never trained on)
        # (T,) each task's metric before it was trained, and an untrained net's
        self.before_, self.fresh_ = np.zeros(0), np.zeros(0)
        self._fresh: ContinualLearner | None = None  # the untrained net, built on demand
        self.continual_: ContinualEval | None = None  # eval_every's records of this task

    @property
    def n_tasks_(self) -> int:
        raise NotImplementedError

    @staticmethod
    def target_params(config: Any, layout: tuple[Any, ...]) -> int:
        """Weights of the target net ``config`` builds for target ``layout`` (in_features,
        n_outputs, n_heads, in_shape), by arithmetic alone."""
        in_features, n_outputs, n_heads, in_shape = layout
        return count_target_params(config.target, in_features, n_outputs,
                                   config.target_hidden, n_heads, in_shape)

    # ----------------------------------------------------------------- building
    def build(self, in_features: int, n_outputs: int, n_heads: int = 1,
              in_shape: tuple[int, ...] | None = None) -> None:
        """Create ``target_`` and the trained model (``_build_model``) under
        ``random_state``, then seed the generator for embeddings, batches and subsets.
        ``partial_fit`` calls it at the first task; call it yourself to use a learner
        without training (e.g. to time steps). The model is made on the CPU (the same
        initial weights on every device), then moved to the learner's device."""
        cfg, seed = self.config, self.random_state
        self.device_ = resolve_device(self.device)
        in_shape = (in_features,) if in_shape is None else tuple(in_shape)
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            self.target_ = build_target(cfg.target, in_features, n_outputs, cfg.target_hidden,
                                        cfg.target_activation, n_heads, in_shape)
            self._build_model()
        self._to_device()
        self.in_shape_ = in_shape
        self.gen_ = torch.Generator()
        self.gen_.manual_seed(seed if seed is not None else int(torch.seed() % 2**63))

    def _outputs_for(self, task: Task) -> int:
        """The size of one output head for ``task`` (all classes in cl3 for one shared
        head: the baselines override)."""
        return task.n_outputs

    def layout_for(self, task: Task) -> tuple[int, int, int, tuple[int, ...]]:
        """The target layout built for first task ``task``: in_features, outputs per head,
        heads (one per task if ``config.multi_head``), input shape."""
        return (task.in_features, self._outputs_for(task),
                task.n_tasks if self.config.multi_head else 1, tuple(task.in_shape))

    def check_buildable(self, task: Task) -> int:
        """The numbers this learner holds for first task ``task``, by arithmetic; over
        ``$HNVIZ_MAX_PARAMS`` a ``ValueError``, before anything is allocated."""
        n = self.described_params(self.config, self.layout_for(task), task.n_tasks)
        check_size(n, f"this {type(self).__name__} config, for {task.name!r},")
        return n

    def _build_for(self, task: Task) -> None:
        """Build at the first task: one head per task if ``config.multi_head``."""
        if self.target_ is None:
            self.check_buildable(task)
            self.build(*self.layout_for(task))

    def _build_model(self) -> None:
        """Create what is trained besides the ``target_`` template (subclasses)."""
        raise NotImplementedError

    def _to_device(self) -> None:
        """Move the built model to ``device_`` (subclasses move what they add)."""
        self.target_.to(self.device_)

    def on_device(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the learner's device (the same tensor where it is already there)."""
        return x.to(self.device_)

    # ----------------------------------------------------------------- training
    def partial_fit(self, task: Task, callbacks: Sequence[Any] = ()) -> "ContinualLearner":
        """Learn ``task`` (the next one in the sequence) and update ``matrix_``;
        ``callbacks`` (e.g. :class:`hnviz.widgets.LiveTraining`) are called for this task
        besides the learner's own."""
        with self.extra_callbacks(callbacks):
            self._learn(task)
        return self

    def fit(self, tasks: Iterable[Task], callbacks: Sequence[Any] = ()) -> "ContinualLearner":
        """Reset, then learn every task of ``tasks`` in order (``callbacks``: as in
        :meth:`partial_fit`)."""
        tasks = task_list(tasks)
        for task in tasks:  # all, before any training and the reset
            task.check_labels()
        self._reset()
        with self.extra_callbacks(callbacks):
            for task in tqdm(tasks, desc="tasks", disable=not self.progress):
                self._learn(task, checked=True)
        return self

    def _learn(self, task: Task, checked: bool = False) -> None:
        """``_partial_fit(task)``; if training diverges (:class:`NonFiniteLossError`) the
        learner goes back to what it was before the task (weights and records), so
        earlier tasks are not lost, and the error propagates. Unless ``checked``, the
        task's data is checked first (:meth:`Task.check_labels`)."""
        if not checked and isinstance(task, Task):
            task.check_labels()
        saved = self._rollback_point() if self.target_ is not None else None
        try:
            with training_threads(self.threads):
                self._partial_fit(task)
        except NonFiniteLossError:
            if saved is None:
                self._reset()
            else:
                self._roll_back(saved)
            raise

    RECORDS = ("matrix_", "before_", "fresh_")  # replaced (never changed in place) per task

    def _rollback_point(self) -> tuple[Any, ...]:
        """What :meth:`_roll_back` needs: the weights (copies of what training changes in
        place), the number of tasks and the record arrays."""
        return (self._weights(clone=False), len(self.task_info_),
                {name: getattr(self, name) for name in self.RECORDS})

    def _roll_back(self, point: tuple[Any, ...]) -> None:
        weights, n, records = point
        self.continual_ = None
        del self.history_[n:], self.task_info_[n:], self.tasks_[n:]
        for name, value in records.items():
            setattr(self, name, value)
        self._load_weights(weights, copy=False)

    def _partial_fit(self, task: Task) -> None:
        raise NotImplementedError

    @contextmanager
    def extra_callbacks(self, callbacks: Sequence[Any]) -> Iterator[None]:
        """``callbacks`` called after the learner's own within the ``with`` block."""
        callbacks = check_callbacks(callbacks)
        n = len(self.callbacks)
        self.callbacks.extend(callbacks)
        try:
            yield
        finally:
            del self.callbacks[n:]

    def _task_started(self, task: Task, resumed: bool = False) -> None:
        """Training of ``task`` begins (or, ``resumed``, continues): with ``eval_every``
        a new :class:`ContinualEval` records all tasks now (a resumed task keeps its
        own); then the callbacks' ``on_task_start``."""
        cfg = self.config
        if cfg.eval_every and not (resumed and self.continual_ is not None):
            self.continual_ = ContinualEval([*self.tasks_, task], cfg.eval_samples, self.device_)
            self._record(0)
        self._notify("on_task_start", task)

    def _record(self, done: int) -> None:
        weights = self.current_weights()
        self.continual_.record(done, self.target_, weights,
                               [self.head_of(t.task_id) for t in self.continual_.tasks],
                               self.weight_drift(weights))

    def weight_drift(self, weights: torch.Tensor) -> torch.Tensor | None:
        """How far the earlier tasks' weights ``weights[:t]`` moved from the targets of
        the task in training's regularizer ``(t,)``; None where there are none (here)."""
        return None

    def _stepped(self, task_id: int, step: int, logs: dict[str, float]) -> None:
        """After step ``step`` (0-based): record if due, then the callbacks' ``on_step``."""
        cfg = self.config
        if self.continual_ is not None and ContinualEval.due(step + 1, cfg.eval_every, cfg.n_steps):
            self._record(step + 1)
        self._notify("on_step", task_id, step, logs)

    def current_weights(self) -> torch.Tensor:
        """The weights ``(t + 1, P)`` each task learned so far and the one in training
        would use now (on the learner's device; subclasses)."""
        raise NotImplementedError

    def _notify(self, hook: str, *args: Any) -> None:
        """Call ``hook`` of every callback with this learner first."""
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _check_task(self, task: Task) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"expected a hnviz Task, got {type(task).__name__}")
        check_norms_use(getattr(self.config, "target", "mlp"), self.batch_norm_per_task,
                        task.scenario, type(self).__name__)
        if task.task_id != self.n_tasks_:
            raise ValueError(f"task id {task.task_id} given, but the learner has {self.n_tasks_} "
                             f"task(s) and expects task {self.n_tasks_} next; pass tasks in order")
        if self.target_ is not None:
            self.check_x(task.x_train[:1])
            if (n := self._outputs_for(task)) != self.target_.out_features:
                raise ValueError(f"task {task.task_id} ({task.name!r}) needs {n} outputs, the "
                                 f"learner's net has {self.target_.out_features} (from its "
                                 "first task); pass tasks of one sequence")
            if self.target_.n_heads > 1 and task.task_id >= self.target_.n_heads:
                raise ValueError(f"task id {task.task_id} has no output head: the target net has "
                                 f"{self.target_.n_heads} heads; build a longer sequence")

    def fresh_model(self) -> "ContinualLearner":
        """This learner as it was before any training: same config, seed and layout,
        rebuilt (and kept) on first use; the reference of forward transfer."""
        if self._fresh is None:
            t = self.target_
            self._fresh = type(self)(self.config, self.random_state, progress=False,
                                     device=self.device_)
            self._fresh.build(t.in_features, t.out_features, t.n_heads, self.in_shape_)
        return self._fresh

    def _record_transfer(self, task: Task, now: torch.Tensor, fresh: torch.Tensor) -> None:
        """Append task ``task``'s metric before training it: ``now`` and ``fresh`` are the
        outputs ``(N_test, width)`` of the net it would use now and of the untrained net."""
        self.before_ = np.append(self.before_, task.test_metric(now))
        self.fresh_ = np.append(self.fresh_, task.test_metric(fresh))

    def _finish_task(self, task: Task, history: dict[str, np.ndarray]) -> None:
        """Record a learned task: history (with continual evaluation's records), task
        info, a new row of ``matrix_``, callbacks."""
        if self.continual_ is not None:
            history.update(self.continual_.arrays())
            self.continual_ = None
        self.history_.append(history)
        self.tasks_.append(task)
        self.task_info_.append({"name": task.name, "kind": task.kind, "metric": task.metric,
                                "n_outputs": task.n_outputs, "in_shape": list(task.in_shape),
                                "scenario": task.scenario, "class_offset": task.class_offset})
        self._update_matrix()
        self._notify("on_task_end", task.task_id, {"row": self.matrix_[-1].copy()})

    def _update_matrix(self) -> None:
        self.matrix_ = grown(self.matrix_, [self.score(t) for t in self.tasks_])

    # ----------------------------------------------------------------- checks
    def check_fitted(self) -> None:
        """Raise a ``ValueError`` unless at least one task was learned."""
        if self.target_ is None or self.n_tasks_ == 0:
            raise ValueError("this learner has not learned any task yet; call partial_fit(task) "
                             "or fit(tasks) first")

    def check_task_id(self, task_id: Any) -> int:
        """``task_id`` as an int of a learned task, else a ``ValueError``."""
        self.check_fitted()
        return check_task_index(task_id, self.n_tasks_)

    def check_x(self, x: Any) -> torch.Tensor:
        """Inputs as a float tensor ``(N, D)`` of the target net's input size (a task's
        :class:`~hnviz.core.tasks.PermutedRows` materialised)."""
        want = self.target_.in_features
        x = dense(x)
        x = as_float_tensor(x, "x", f"(N, {want})")
        if x.dim() < 2 or int(np.prod(x.shape[1:])) != want:
            raise ValueError(f"input of shape {tuple(x.shape)} has the wrong feature size: the "
                             f"target network expects (N, {want}); reshape x to (N, {want})")
        return x.reshape(x.shape[0], want)

    def head_of(self, task_id: int) -> int:
        """The output head task ``task_id`` uses (0 with one shared head)."""
        return task_id if self.target_.n_heads > 1 else 0

    # ---------------------------------------------------------------- inference
    def predict_output(self, x: Any, task_id: int) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, x: Any, task_id: int) -> torch.Tensor:
        """Predicted values ``(N, 1)`` (regression) or class labels ``(N,)`` for task ``task_id``."""
        out = self.predict_output(x, task_id)
        return out if self.task_info_[task_id]["kind"] == "regression" else out.argmax(-1)

    def predict_agnostic(self, x: Any, scenario: str) -> torch.Tensor:
        """Class labels ``(N,)`` without a task id (cl2: local, cl3: global classes).

        A single shared head answers directly; subclasses may infer the task instead.
        """
        self.check_fitted()
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
        self.check_fitted()
        return self.task_info_[0]["metric"]

    def summary(self, scratch: Any = None) -> dict[str, Any]:
        """:func:`hnviz.core.metrics.summary` of ``matrix_`` with forward transfer (``before_``,
        ``fresh_``; left out for runs saved without them) and, given ``scratch`` ``(T,)``
        (:func:`hnviz.learners.transfer.scratch_scores`), transfer vs training from scratch."""
        T = self.n_tasks_
        known = np.isfinite(self.before_[:T]).any()  # runs saved before hnviz 0.4: unknown
        out = metrics.summary(self.matrix_, self.metric_, *(
            (self.before_[:T], self.fresh_[:T]) if known else (None, None)), scratch=scratch)
        gap = stability_gap(self.history_, self.metric_ == "accuracy")
        return out if gap is None else {**out, **gap}

    @property
    def trainable_params_(self) -> int:
        """How many numbers training adjusts (subclasses)."""
        raise NotImplementedError

    def save(self, directory: Any, **extra: Any) -> None:
        """Moved in hnviz 0.2: use :func:`hnviz.save_run` (``save_run(learner, directory)``)."""
        raise TypeError("learner.save(directory) moved to hnviz.save_run(learner, directory) "
                        "in hnviz 0.2 (docs/changelog.md)")

    # -------------------------------------------------------------------- state
    def _weights(self, clone: bool = True) -> dict[str, torch.Tensor]:
        """The trained tensors (the ``weights`` of the state) as copies; with ``clone=False``
        only those that training changes in place are copied."""
        raise NotImplementedError

    def _load_weights(self, weights: dict[str, torch.Tensor], copy: bool = True) -> None:
        """Put ``weights`` (checked against the built model) in place, or StateError;
        ``copy=False`` takes the tensors themselves."""
        raise NotImplementedError
