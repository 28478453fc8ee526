"""Continual evaluation: every task's metric *while* later tasks train, and the stability gap.

The matrix R scores the tasks only at the end of each task. Continual-evaluation studies
(De Lange et al., ICLR 2023, "the stability gap") found that methods such as EWC lose old
tasks sharply in the first steps of a new task and partly recover by its end: a drop
that R never shows. With ``eval_every = k`` in a config, a learner scores the tasks
learned so far and the one in progress on the first ``eval_samples`` test points of each,
before a task's first step and after every k-th step (and the last), each task through
its own net and head (the task identity given, as in cl1), and keeps the records in its
history: ``ce_step`` ``(n,)`` steps done in the task, ``ce_metric`` ``(n, t + 1)``.

:func:`stability_gap` summarises the records: for every earlier task j while task t
trains, the largest drop from its value at t's start and how much of it came back by
t's end, in the metric's units with "worse" counted positive for MSE and accuracy alike.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .tasks import Task, dense
from .targets import TargetNet


class ContinualEval:
    """Records the metrics of ``tasks`` (0..t, the last one training) during one task.

    ``n_samples``: test points per task (the first ones: a fixed subsample); ``device``:
    where the learner's nets are. ``steps``/``rows``: what was recorded so far (a
    checkpoint restores them with :meth:`load`).
    """

    def __init__(self, tasks: Sequence[Task], n_samples: int, device: Any):
        self.tasks = list(tasks)
        self.x = [dense(t.x_test[:n_samples]).to(device) for t in self.tasks]  # (n_j, D)
        sizes = {tuple(x.shape) for x in self.x}
        self.stacked = torch.stack(self.x) if len(sizes) == 1 else None  # (T, n, D)
        self.steps: list[int] = []
        self.rows: list[list[float]] = []
        self.drifts: list[list[float]] = []  # per record: each earlier task's drift

    @staticmethod
    def due(done: int, every: int, n_steps: int) -> bool:
        """Whether to record after ``done`` steps of a task of ``n_steps``."""
        return done % every == 0 or done == n_steps

    @torch.no_grad()
    def record(self, done: int, target: TargetNet, weights: torch.Tensor,
               heads: Sequence[int], drift: Sequence[float] | None = None) -> list[float]:
        """Score every task with its net: ``weights`` ``(T, P)`` (row j: task j's net now;
        one net expanded to T rows is run once), ``heads`` each task's output head;
        append the row under ``done`` steps. ``drift``: the earlier tasks' weight drift
        ``(t,)`` (see :func:`weight_drift`; None: no regularizer targets)."""
        outs = self._outputs(target, weights, heads)
        row = [task.test_metric(out) for task, out in zip(self.tasks, outs)]
        self.steps.append(int(done))
        self.rows.append(row)
        if drift is not None:
            self.drifts.append([float(d) for d in drift])
        return row

    def _outputs(self, target: TargetNet, weights: torch.Tensor,
                 heads: Sequence[int]) -> list[torch.Tensor]:
        """Each task's outputs ``(n_j, out)`` on the CPU: one pass over all tasks' inputs
        (all heads, then each task's own) where they stack, else task by task."""
        if self.stacked is None:
            return [target(x, w, h).cpu() for x, w, h in zip(self.x, weights, heads)]
        T, n, D = self.stacked.shape
        if weights.stride(0) == 0:  # the same net for every task (a baseline)
            out = target(self.stacked.reshape(T * n, D), weights[0], None).reshape(T, n, -1)
        else:
            out = target(self.stacked, weights, None)  # (T, n, heads * out)
        if target.n_heads > 1:
            o = target.out_features
            out = torch.stack([out[j, :, h * o:(h + 1) * o] for j, h in enumerate(heads)])
        return list(out.cpu())

    def arrays(self) -> dict[str, np.ndarray]:
        """``ce_step`` ``(n,)``, ``ce_metric`` ``(n, T)`` and, where every record had one
        (a hypernetwork from its second task), ``ce_drift`` ``(n, T - 1)``: the earlier
        tasks' weight drift. The history's records."""
        T = len(self.tasks)
        n = min(len(self.steps), len(self.rows))  # a record being appended by another thread
        out = {"ce_step": np.asarray(self.steps[:n], dtype=np.int64),
               "ce_metric": np.asarray(self.rows[:n], dtype=np.float64).reshape(-1, T)}
        if self.drifts and len(self.drifts) >= n:
            out["ce_drift"] = np.asarray(self.drifts[:n], dtype=np.float64).reshape(-1, T - 1)
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        """The records as checkpoint tensors ``task.ce_step``, ``task.ce_metric``,
        ``task.ce_drift``."""
        return {f"task.{k}": torch.as_tensor(v) for k, v in self.arrays().items()}

    def load(self, tensor: Any, done: int, every: int) -> None:
        """Take the records of a checkpoint (``tensor(name)``) made after ``done`` steps
        recording every ``every``; a ``ValueError`` says what does not fit."""
        steps, rows = tensor("task.ce_step"), tensor("task.ce_metric")
        want = [s for s in range(done + 1) if s % every == 0]
        if steps.tolist() != want or tuple(rows.shape) != (len(want), len(self.tasks)):
            raise ValueError(f"continual-evaluation records of shape {tuple(rows.shape)} at "
                             f"steps {steps.tolist()[:4]}... do not fit {done} steps "
                             f"recorded every {every} over {len(self.tasks)} tasks")
        self.steps, self.rows = want, rows.double().tolist()
        try:  # a baseline's, a first task's or an older checkpoint have none
            self.drifts = tensor("task.ce_drift").double().tolist()
        except (KeyError, ValueError):  # the learner's StateError is a ValueError
            self.drifts = []


@torch.no_grad()
def weight_drift(weights: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How far each earlier task's generated weights moved from the regularizer's
    targets: ``||h(e_t, theta) - W*_t||`` per row ``(t,)`` of ``weights`` and ``targets``
    ``(t, P)`` (W*_t = the weights generated for task t when the current task began)."""
    return torch.linalg.vector_norm(weights.double() - targets.double(), dim=1)


def drift_curves(history: Sequence[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`curves` for the weight drift: ``x`` ``(n,)`` and ``y`` ``(n, T)``,
    NaN where a task had no targets (while it trains, or in a baseline's run)."""
    x, metric = curves(history)
    if not len(x):
        return x, metric
    T, ys = metric.shape[1], []
    for h in history:
        n = len(h["ce_step"])
        d = np.asarray(h["ce_drift"], dtype=float).reshape(n, -1) if "ce_drift" in h \
            else np.zeros((n, 0))
        ys.append(np.pad(d, ((0, 0), (0, T - d.shape[1])), constant_values=np.nan))
    return x, np.concatenate(ys)


def records(history: Sequence[dict[str, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each task's ``(ce_step (n,), ce_metric (n, t + 1))`` from a learner's
    ``history_``; empty where the run was trained without ``eval_every``."""
    if not history or any("ce_metric" not in h for h in history):
        return []
    return [(np.asarray(h["ce_step"]), np.asarray(h["ce_metric"], dtype=float)) for h in history]


def curves(history: Sequence[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """All records on one axis: ``x`` ``(n,)`` steps since the first task's start (each
    task's records offset by the steps of the tasks before) and ``y`` ``(n, T)`` each
    task's metric (NaN before the task starts)."""
    recs = records(history)
    if not recs:
        return np.zeros(0), np.zeros((0, 0))
    T = len(recs)
    xs, ys, offset = [], [], 0
    for t, (steps, rows) in enumerate(recs):
        xs.append(steps + offset)
        ys.append(np.pad(rows, ((0, 0), (0, T - rows.shape[1])), constant_values=np.nan))
        offset += int(steps[-1]) if len(steps) else 0
    return np.concatenate(xs), np.concatenate(ys)


def earlier_mean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For :func:`curves`' ``x`` ``(n,)``, ``y`` ``(n, T)``: the mean ``(n,)`` over the tasks
    learned before the one training at each record (NaN during the first task): what is
    being forgotten, without the task that is being learned."""
    new_task = np.diff(x, prepend=-1) == 0  # a task's first record repeats the last x
    task_of = np.cumsum(new_task)  # the task training at each record
    old = np.arange(y.shape[1])[None] < task_of[:, None]
    total, count = np.where(old, y, 0.0).sum(axis=1), old.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def task_starts(x: np.ndarray) -> np.ndarray:
    """The steps of :func:`curves`' ``x`` where a task after the first starts."""
    return x[np.diff(x, prepend=-1) == 0]


def stability_gap(history: Sequence[dict[str, np.ndarray]],
                  higher_is_better: bool = True) -> dict[str, Any] | None:
    """The stability gap of a learner's continual-evaluation records (None without any,
    or with a single task).

    For each task t >= 1 and earlier task j: ``drop`` = the worst value of j during t
    minus its value at t's start, ``recovery`` = the worst value minus the value at t's
    end, both signed so that positive means worse (accuracy points lost; MSE gained).
    Returns ``stability_gap`` (mean drop over all pairs), ``gap_recovery`` (mean
    recovery), ``worst_drop`` (largest drop) and ``gap_per_task`` ``(T,)`` (mean drop of
    the earlier tasks while task t trained; None for the first).
    """
    recs = records(history)
    if len(recs) < 2:
        return None
    sign = 1.0 if higher_is_better else -1.0
    drops, recs_back, per_task = [], [], [None]
    for steps, rows in recs[1:]:
        old = sign * rows[:, :-1]  # (n, t): larger is better
        worst = old.min(axis=0)
        drop, back = old[0] - worst, old[-1] - worst
        drops.extend(drop.tolist())
        recs_back.extend(back.tolist())
        per_task.append(float(drop.mean()))
    return {"stability_gap": float(np.mean(drops)), "gap_recovery": float(np.mean(recs_back)),
            "worst_drop": float(np.max(drops)), "gap_per_task": per_task}
