"""The hypernetwork protocol: what hnviz's explorers read from a model, so that they open
hypernetworks trained anywhere (hnviz's :class:`HyperCL` implements it; a hypnettorch
model gets it from :func:`hnviz.from_hypnettorch`).

A model is four things::

    embeddings_                         # tensor (T, E): one learned embedding per task
    tasks_                              # the T hnviz Tasks: test data; kind -> metric
    generate_weights(emb)               # (B, E) -> (B, P): the weights it generates
    net_output(x, weights, task_id)     # x (N, D), weights (B, P) -> (B, N, out):
                                        #   the B nets' outputs for task task_id (its head)

and optionally ``matrix_`` ``(T, T)``: R[i, j], task j's metric after task i was learned
(NaN above the diagonal), which the ForgettingDashboard shows. :class:`ExplorableModel`
wraps any such model with what the widgets derive from those four (metric, task labels,
checks, scores, the matrix recorded while it trains).
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from ..core import metrics
from ..core.tasks import Task, task_list
from ..core.validate import as_float_tensor, check_task_index
from .learner_state import grown


@runtime_checkable
class HypernetModel(Protocol):
    """A task-conditioned hypernetwork as hnviz's explorers see it (module docstring)."""

    embeddings_: torch.Tensor
    tasks_: Sequence[Task]

    def generate_weights(self, emb: torch.Tensor) -> torch.Tensor:
        """Weights ``(B, P)`` for embeddings ``(B, E)``."""

    def net_output(self, x: torch.Tensor, weights: torch.Tensor, task_id: int) -> torch.Tensor:
        """Outputs ``(B, N, out)`` of the nets with ``weights`` ``(B, P)`` on ``x`` ``(N, D)``
        for task ``task_id``."""


class ExplorableModel:
    """A :class:`HypernetModel` with what the widgets derive from it; pass it (or the bare
    model) to EmbeddingExplorer, InterpolationExplorer and ForgettingDashboard.

    ``matrix``: R ``(T', T')`` (T' <= T tasks learned; NaN above the diagonal), if known
    (default: the model's ``matrix_``); else call :meth:`record_scores` after each task
    while training. Everything runs without gradients; weights stay on the model's device,
    outputs and embeddings come back on the CPU.
    """

    def __init__(self, model: HypernetModel, matrix: Any = None):
        if not isinstance(model, HypernetModel):
            raise TypeError(f"{type(model).__name__} is not a hypernetwork model: it needs "
                            "embeddings_, tasks_, generate_weights and net_output "
                            "(hnviz.learners.protocol)")
        self.model = model
        self._tasks = task_list(model.tasks_)  # all of them: embeddings may be added later
        wrong = next((i for i, t in enumerate(self._tasks) if t.task_id != i), None)
        if wrong is not None:
            raise ValueError(f"tasks_[{wrong}] is task id {self._tasks[wrong].task_id}; pass "
                             "the whole task sequence in order (task i at position i)")
        emb = self.embeddings_
        if len(self._tasks) < len(emb):
            raise ValueError(f"{len(self._tasks)} task(s) for {len(emb)} embeddings; pass "
                             "the whole task sequence")
        check_model(model, self.to_model(emb), self._tasks[:len(emb)])
        if matrix is None:
            matrix = getattr(model, "matrix_", None)  # a model may keep its own R
        self.matrix_ = None if matrix is None else metrics.metric_matrix(matrix)
        if self.matrix_ is not None and len(self.matrix_) > len(emb):
            raise ValueError(f"matrix is {len(self.matrix_)} x {len(self.matrix_)} for a model "
                             f"with {len(emb)} task embeddings")
        self.history_: list[dict[str, np.ndarray]] = []  # no continual evaluation recorded

    def __repr__(self) -> str:
        return f"ExplorableModel({type(self.model).__name__}, {self.n_tasks_} tasks)"

    @property
    def embeddings_(self) -> torch.Tensor:
        """The model's embeddings now ``(T, E)`` (a copy on the CPU)."""
        return as_embeddings(self.model.embeddings_, "the model's embeddings_")

    def to_model(self, emb: torch.Tensor) -> torch.Tensor:
        """``emb`` in the dtype and on the device of the model's own embeddings (what its
        generate_weights is given)."""
        ref = self.model.embeddings_
        ref = ref[0] if isinstance(ref, (list, tuple)) and ref else ref
        if torch.is_tensor(ref) and ref.is_floating_point():
            return emb.to(ref.device, ref.dtype)
        double = isinstance(ref, np.ndarray) and ref.dtype == np.float64
        return emb.double() if double else emb.float()

    @property
    def n_tasks_(self) -> int:
        return len(self.embeddings_)

    @property
    def tasks_(self) -> list[Task]:
        """The tasks that have an embedding."""
        return self._tasks[:self.n_tasks_]

    @property
    def metric_(self) -> str:
        return self.tasks_[0].metric

    @property
    def task_info_(self) -> list[dict[str, Any]]:
        return [{"name": t.name, "kind": t.kind, "metric": t.metric, "n_outputs": t.n_outputs,
                 "in_shape": list(t.in_shape), "scenario": t.scenario,
                 "class_offset": t.class_offset} for t in self.tasks_]

    # checks ---------------------------------------------------------------
    def check_fitted(self) -> None:
        """A ``ValueError`` unless the model has embeddings ``(T, E)``, T, E >= 1."""
        as_embeddings(self.model.embeddings_, "the model's embeddings_")

    def check_task_id(self, task_id: Any) -> int:
        return check_task_index(task_id, self.n_tasks_, "the model has")

    def check_embedding(self, emb: Any) -> torch.Tensor:
        """Embeddings as a float tensor ``(E,)`` or ``(B, E)`` (float32; a float64 tensor
        stays float64), else a clear error."""
        E = self.embeddings_.shape[1]
        out = as_float_tensor(emb, "embedding", f"(E,) or (B, E) with E = {E}")
        if out.dim() not in (1, 2) or out.shape[-1] != E:
            raise ValueError(f"embedding of shape {tuple(out.shape)} does not fit: pass (E,) "
                             f"or (B, E) with E = {E}")
        double = torch.is_tensor(emb) and emb.dtype == torch.float64  # a float64 model's
        return emb.detach() if double else out

    # the model ------------------------------------------------------------
    @torch.no_grad()
    def generate_weights(self, emb: Any) -> torch.Tensor:
        """``(E,)`` -> ``(P,)``, ``(B, E)`` -> ``(B, P)``, in the model's dtype and on its
        device (given to :meth:`net_output` as they are)."""
        emb = self.to_model(self.check_embedding(emb))
        weights = self.model.generate_weights(emb[None] if emb.dim() == 1 else emb)
        return weights[0] if emb.dim() == 1 else weights

    @torch.no_grad()
    def net_output(self, x: torch.Tensor, weights: torch.Tensor, task_id: int) -> torch.Tensor:
        """The model's outputs ``(B, N, out)`` on the CPU (x moved to the weights)."""
        return self.model.net_output(beside(x, weights), weights, task_id).cpu()

    @torch.no_grad()
    def predict_with_embedding(self, x: Any, emb: Any, head: int = 0) -> torch.Tensor:
        """Outputs ``(N, out)`` of the net generated from ``emb`` ``(E,)`` (task ``head``'s
        outputs)."""
        weights = self.generate_weights(self.check_embedding(emb).reshape(1, -1))
        return self.net_output(as_float_tensor(x, "x", "(N, D)"), weights, head)[0]

    # scores ---------------------------------------------------------------
    def scores(self, upto: int | None = None) -> np.ndarray:
        """Each task's test metric with its own embedding now ``(T,)`` (the first
        ``upto`` tasks)."""
        tasks = self.tasks_[:upto]
        weights = self.generate_weights(self.embeddings_[:len(tasks)])
        return np.array([t.test_metric(self.net_output(t.x_test[:], weights[i:i + 1],
                                                       t.task_id)[0]) for i, t in enumerate(tasks)])

    def record_scores(self) -> np.ndarray:
        """After learning task i (the i-th call): add row i of ``matrix_`` (tasks 0..i
        scored now, NaN after). Returns the row."""
        done = 0 if self.matrix_ is None else len(self.matrix_)
        if done >= self.n_tasks_:
            raise ValueError(f"the matrix already has a row for each of the {done} tasks")
        row = self.scores(done + 1)
        if not np.isfinite(row).all():
            bad = int(np.flatnonzero(~np.isfinite(row))[0])
            raise ValueError(f"task {bad + 1}'s score is {row[bad]}: the model's outputs for "
                             "it are not finite (did training diverge?)")
        self.matrix_ = grown(np.zeros((0, 0)) if self.matrix_ is None else self.matrix_,
                             list(row))
        return row

    def final_scores(self) -> np.ndarray:
        """Each learned task's metric at the end ``(T,)``: the matrix's last row where it
        covers every task, else computed now."""
        R = self.matrix_
        return R[-1] if R is not None and len(R) == self.n_tasks_ else self.scores()

    def summary(self, scratch: Any = None) -> dict[str, Any]:
        """:func:`hnviz.core.metrics.summary` of ``matrix_`` (a ValueError without one)."""
        return metrics.summary(self.checked_matrix(), self.metric_, scratch=scratch)

    def checked_matrix(self) -> np.ndarray:
        if self.matrix_ is None:
            raise ValueError("this model has no matrix R: pass matrix=R (T x T, NaN above "
                             "the diagonal) or call record_scores() after learning each task")
        return self.matrix_


def as_embeddings(value: Any, name: str) -> torch.Tensor:
    """Embeddings ``(T, E)`` (a tensor, an array, or T tensors ``(E,)``: a hypernetwork's
    parameters) as a detached CPU tensor, T, E >= 1; else a ``ValueError`` naming them."""
    try:
        if torch.is_tensor(value):
            emb = value.detach().cpu().clone()
        elif isinstance(value, (list, tuple)) and value and all(map(torch.is_tensor, value)):
            emb = torch.stack([v.detach().cpu() for v in value])
        else:
            emb = torch.as_tensor(np.array(value, dtype=np.float32))
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{name} must be (T, E) numbers or T tensors (E,): {e}") from None
    if emb.dim() != 2 or emb.shape[0] == 0 or emb.shape[1] == 0:
        raise ValueError(f"{name} must be (T, E) with T, E >= 1, got shape {tuple(emb.shape)}")
    return emb


def beside(x: Any, weights: torch.Tensor) -> torch.Tensor:
    """Inputs ``x`` (a tensor, or a task's lazily permuted inputs) on the weights' device,
    floating-point inputs in their dtype: what a model's net_output is given."""
    x = x if torch.is_tensor(x) else x[:]
    return x.to(weights.device, weights.dtype if x.is_floating_point() else x.dtype)


def _shape(value: Any) -> str:
    return f"shape {tuple(value.shape)}" if torch.is_tensor(value) else type(value).__name__


@torch.no_grad()
def check_model(model: HypernetModel, emb: torch.Tensor, tasks: list[Task]) -> None:
    """One pass over the tasks before anything is shown: finite embeddings, weights
    ``(1, P)`` for one embedding, and for each task outputs ``(1, N, k)`` with the task's
    k outputs, finite; else a ``ValueError`` naming the member, the task and the fix."""
    for t, task in enumerate(tasks):
        what = f"task {t + 1} ({task.name})"
        if not bool(torch.isfinite(emb[t]).all()):
            raise ValueError(f"the model's embedding of {what}, embeddings_[{t}], holds NaN "
                             "or inf")
        try:
            w = model.generate_weights(emb[t:t + 1])
        except Exception as e:  # noqa: BLE001 - the user's code: said in one line
            raise ValueError(f"generate_weights(embeddings_[{t}:{t + 1}]) failed: "
                             f"{type(e).__name__}: {e}") from None
        if not torch.is_tensor(w) or w.dim() != 2 or len(w) != 1:
            raise ValueError(f"generate_weights of one embedding (1, E) must return a tensor "
                             f"(1, P), got {_shape(w)}")
        x = beside(task.x_test[:2], w)
        try:
            out = model.net_output(x, w, t)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"net_output on {what}'s inputs {tuple(x.shape)} failed: "
                             f"{type(e).__name__}: {e}") from None
        want = (1, len(x), task.head_size)
        if not torch.is_tensor(out) or tuple(out.shape) != want:
            raise ValueError(f"net_output for {what} returned {_shape(out)}; expected (B, N, "
                             f"out) = {want}: the task has {task.head_size} outputs (a "
                             "multi-head net gives each task its own; from_hypnettorch: "
                             "head_size=...)")
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"net_output for {what} holds NaN or inf")


def explorable(model: Any, matrix: Any = None) -> ExplorableModel:
    """``model`` as an :class:`ExplorableModel` (itself if it is one)."""
    if isinstance(model, ExplorableModel) and matrix is None:
        return model
    return ExplorableModel(model, matrix)
