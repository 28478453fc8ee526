"""The one description of a fitted learner: :class:`LearnerState`, what run files and
checkpoints write and read (``state_dict``/``load_state_dict`` of the learners)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..core import metrics
from ..core.validate import check_int
from .task_inference import STRATEGIES


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


def saved_vector(values: Any, n: int, key: str) -> np.ndarray:
    """A saved per-task vector of ``n`` numbers (None for unknown) as floats with NaN;
    absent (runs saved before it existed): ``n`` NaN."""
    if values is None:
        return np.full(n, np.nan)
    if not isinstance(values, list) or len(values) != n or not all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                          and abs(v) < 1e300) for v in values):  # big ints too
        raise StateError(f"has a {key!r} that is not a list of {n} numbers (null for unknown)",
                         "matrix")
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


# ------------------------------------------------------------- untrusted descriptions
MAX_PARAMS_ENV = "HNVIZ_MAX_PARAMS"
DEFAULT_MAX_PARAMS = 100_000_000  # numbers (400 MB as float32) a described learner may hold


def max_params() -> int:
    """The most numbers a learner read from files may hold: ``$HNVIZ_MAX_PARAMS``, else
    100 million (400 MB of float32); raise it to open larger runs you trust."""
    raw = os.environ.get(MAX_PARAMS_ENV, "")
    if not raw:
        return DEFAULT_MAX_PARAMS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{MAX_PARAMS_ENV}={raw!r} must be a whole number >= 1 (numbers a "
                         "loaded learner may hold)")
    return int(raw)


def target_layout(meta: dict[str, Any]) -> tuple[int, int, int, tuple[int, ...]]:
    """``in_features, n_outputs, n_heads, in_shape`` of a state's ``target`` entry,
    checked (positive integers, a shape of at most 3 positive sizes), else StateError."""
    t = meta.get("target")
    if not isinstance(t, dict):
        raise StateError("has a 'target' entry that is not an object", "meta")

    def size(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2**31

    keys = ("in_features", "n_outputs", "n_heads")
    shape = t.get("in_shape")
    if not all(size(t.get(k)) for k in keys) or not isinstance(shape, list) \
            or not 1 <= len(shape) <= 3 or not all(size(v) for v in shape):
        raise StateError(f"does not describe a learner hnviz can build: target layout "
                         f"{str(t)[:200]} needs integers >= 1", "meta")
    return t["in_features"], t["n_outputs"], t["n_heads"], tuple(shape)


def check_size(n_params: int, building: str | None = None) -> None:
    """Refuse a description of more than :func:`max_params` numbers (before anything is
    allocated for it): a :class:`StateError`, or, ``building`` (what), a ``ValueError``."""
    limit = max_params()
    if n_params <= limit:
        return
    if building:
        raise ValueError(f"{building} describes networks of {n_params:,} numbers, more than "
                         f"the {limit:,} hnviz builds; choose smaller sizes or set "
                         f"{MAX_PARAMS_ENV} higher")
    raise StateError(f"describes networks of {n_params:,} numbers, more than the {limit:,} "
                     f"hnviz opens ({MAX_PARAMS_ENV}); set {MAX_PARAMS_ENV} higher if you "
                     "trust this run", "meta")


def history_bytes(config: Any, n_tasks: int) -> int:
    """The most bytes a described learner's step logs take in a file: per task up to 4
    float64 logs per step (7 for a learner with ``task_inference="replay"``, whose
    replay side logs 3 more) and an embedding trajectory of at most ``n_steps + 2`` float32
    rows of ``emb_dim`` (learners without embeddings: none), with ``eval_every`` k the
    continual evaluation's records (``n_steps // k + 2`` steps of up to ``n_tasks`` metrics),
    plus 1 MiB of headers. Bounded by :func:`max_params` numbers; raises
    :class:`StateError` above it."""
    steps = getattr(config, "n_steps", 0)
    strategy = STRATEGIES.get(getattr(config, "task_inference", None))
    logs = 4 + (len(strategy.logs) if strategy is not None else 0)
    per_task = logs * steps + (steps + 2) * getattr(config, "emb_dim", 0)  # numbers, <= 8 bytes
    every = getattr(config, "eval_every", 0)
    if every:
        per_task += (steps // every + 2) * (n_tasks + 1)
    check_size(n_tasks * per_task)
    return 8 * n_tasks * per_task + 2**20


class Stateful:
    """``state_dict``/``load_state_dict``/``from_state_dict`` for the learners
    (:class:`hnviz.learners.base.ContinualLearner` mixes it in): the learner's side of a
    :class:`LearnerState`. The learner provides ``kind``, ``config_class``, ``build``,
    ``_reset``, ``_weights``/``_load_weights`` and ``described_params``."""

    def state_dict(self) -> LearnerState:
        """The learner as a :class:`LearnerState` (copies; no data sets)."""
        if self.target_ is None:
            raise ValueError("this learner has no state yet; call partial_fit(task) or "
                             "fit(tasks) first")
        tgt = self.target_
        meta = {"learner": self.kind, "config": self.config.to_dict(),
                "random_state": self.random_state,
                "target": {"in_features": tgt.in_features, "n_outputs": tgt.out_features,
                           "n_heads": tgt.n_heads, "in_shape": list(self.in_shape_)},
                "task_info": list(self.task_info_), "matrix": metrics.to_json(self.matrix_),
                "before": metrics.to_json(self.before_), "fresh": metrics.to_json(self.fresh_),
                "step": 0, "sampler_pos": None}
        history = {f"task{t}.{k}": torch.as_tensor(np.ascontiguousarray(v))
                   for t, h in enumerate(self.history_) for k, v in h.items()}
        weights = {k: v.detach().cpu().contiguous() for k, v in self._weights().items()}
        return LearnerState(meta, weights, history, {"rng.gen": self.gen_.get_state()})

    @classmethod
    def _check_kind(cls, meta: dict[str, Any]) -> None:
        kind = meta.get("learner", cls.kind)
        if kind != cls.kind:
            raise StateError(f"describes a {kind!r} learner, not {cls.kind!r}", "meta")

    @classmethod
    def config_of(cls, meta: dict[str, Any]) -> Any:
        """The config a state's ``meta`` describes (a :class:`StateError` if it does not
        build)."""
        try:
            return cls.config_class.from_dict(meta["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise StateError(f"does not describe a learner hnviz can build: {e}", "meta") from e

    @classmethod
    def check_described(cls, meta: dict[str, Any]) -> int:
        """Check a state's description before anything is allocated: its kind, config,
        target layout and size (at most :func:`max_params` numbers); returns the number of
        numbers it describes. Raises :class:`StateError`."""
        cls._check_kind(meta)
        config, layout = cls.config_of(meta), target_layout(meta)
        tasks = meta.get("task_info")
        if not isinstance(tasks, list):
            raise StateError("has a task list that is not a list", "meta")
        try:
            n = cls.described_params(config, layout, len(tasks))
        except ValueError as e:
            raise StateError(f"does not describe a learner hnviz can build: {e}", "meta") from e
        check_size(n)
        return n

    @classmethod
    def described_params(cls, config: Any, layout: tuple[Any, ...], n_tasks: int) -> int:
        """How many numbers a learner of ``config``, target ``layout`` and ``n_tasks``
        tasks holds, by arithmetic alone (subclasses)."""
        raise NotImplementedError

    def load_state_dict(self, state: LearnerState, tasks: Sequence[Any] | None = None) -> None:
        """Become the learner ``state`` describes (its config and seed included); checks
        every tensor against the model the config builds and raises a
        :class:`StateError` saying what does not fit. ``tasks``: the run's task sequence
        (its first tasks become ``tasks_``, the test data of the matrix)."""
        meta = state.meta
        self.check_described(meta)
        self.config = self.config_of(meta)
        try:
            self.random_state = None if meta.get("random_state") is None else \
                check_int("random_state", meta["random_state"], 0, 2**63 - 1)
        except ValueError as e:
            raise StateError(f"does not describe a learner hnviz can build: {e}", "meta") from e
        self._reset()
        done = state.tasks_done
        try:
            self.build(*target_layout(meta))
        except (TypeError, ValueError, RuntimeError) as e:
            raise StateError(f"does not describe a learner hnviz can build: {e}", "meta") from e
        self.task_info_ = list(meta["task_info"])
        self._load_weights(state.weights)
        if "rng.gen" in state.training:  # checkpoints hold it; run files do not
            try:
                self.gen_.set_state(state.training["rng.gen"])
            except (RuntimeError, TypeError, ValueError) as e:
                raise StateError(f"holds a learner RNG state that does not load ({e})",
                                 "training") from e
        self.history_ = [{k.split(".", 1)[1]: v.numpy() for k, v in state.history.items()
                          if k.startswith(f"task{i}.")} for i in range(done)]
        self.matrix_ = saved_matrix(meta["matrix"], done, "matrix")
        started = done + (1 if meta.get("step", 0) > 0 else 0)  # a task in progress has its own
        self.before_, self.fresh_ = (saved_vector(meta.get(k), started, k)
                                     for k in ("before", "fresh"))
        self.tasks_ = list(tasks[:done]) if tasks is not None else []

    @classmethod
    def from_state_dict(cls, state: LearnerState, tasks: Sequence[Any] | None = None,
                        progress: bool = True, callbacks: Sequence[Any] = (),
                        device: Any = None) -> Any:
        """A new learner in ``state`` (see :meth:`load_state_dict`) on ``device`` (any:
        states hold CPU tensors)."""
        cls.check_described(state.meta)
        config = cls.config_of(state.meta)
        try:
            learner = cls(config, state.meta.get("random_state"), progress=progress,
                          callbacks=callbacks, device=device)
        except (TypeError, ValueError) as e:
            raise StateError(f"does not describe a learner hnviz can build: {e}", "meta") from e
        learner.load_state_dict(state, tasks)
        return learner
