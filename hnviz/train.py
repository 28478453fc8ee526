"""One task of hypernetwork training: task loss + beta * output regularizer (PAPER.md)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .benchmarks import Task
from .regularizer import RegTargets, adam_lookahead

if TYPE_CHECKING:
    from .learner import HyperCL

EMB_RECORD_EVERY = 10  # steps between recorded points of the embedding trajectory


class Callback:
    """Hooks called by :meth:`HyperCL.partial_fit`; override what you need."""

    def on_task_start(self, learner: "HyperCL", task: Task) -> None: ...

    def on_step(self, learner: "HyperCL", task_id: int, step: int, logs: dict[str, float]) -> None: ...

    def on_task_end(self, learner: "HyperCL", task_id: int, logs: dict[str, Any]) -> None: ...


class BatchSampler:
    """Endless mini-batches of indices ``(batch,)``: reshuffled epochs from ``generator``."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.gen = n, min(batch_size, n), generator
        self.perm, self.pos = torch.randperm(n, generator=generator), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx


def task_loss(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MSE for regression (``out`` ``(N, 1)``), cross-entropy on logits ``(N, C)`` otherwise."""
    return F.mse_loss(out, y) if kind == "regression" else F.cross_entropy(out, y)


@dataclass
class StepState:
    """What a training step needs besides the learner: optimizers, targets, RNG."""

    task: Task
    emb: torch.nn.Parameter  # (E,)
    theta_opt: torch.optim.Adam
    emb_opt: torch.optim.Adam
    reg: RegTargets | None
    gen: torch.Generator


def _reg_indices(n_prev: int, k: int | None, gen: torch.Generator) -> torch.Tensor | None:
    if k is None or k >= n_prev:
        return None  # all earlier tasks
    return torch.randperm(n_prev, generator=gen)[:k]


def train_step(learner: "HyperCL", s: StepState, idx: torch.Tensor) -> dict[str, float]:
    """One optimisation step on the batch ``idx`` of ``s.task``; returns the losses."""
    cfg, hnet = learner.config, learner.hnet_
    x, y = s.task.x_train[idx], s.task.y_train[idx]
    s.theta_opt.zero_grad(set_to_none=True)
    s.emb_opt.zero_grad(set_to_none=True)
    weights = hnet(s.emb[None])[0]  # (P,)
    loss = task_loss(s.task.kind, learner.target_(x, weights, learner._head(s.task.task_id)), y)
    reg_value = 0.0
    if s.reg is not None:
        sel = _reg_indices(len(s.reg), cfg.reg_subset, s.gen)
        params = None
        if cfg.lookahead:
            loss.backward()  # task-loss gradient first: dtheta is Adam's step for it alone
            delta = adam_lookahead(s.theta_opt)
            params = {n: p + delta[p] if p in delta else p for n, p in hnet.named_parameters()}
        reg = s.reg.loss(sel, params)
        total = cfg.beta * reg if cfg.lookahead else loss + cfg.beta * reg
        total.backward()
        reg_value = reg.item()
    else:
        loss.backward()
    s.theta_opt.step()
    s.emb_opt.step()
    return {"task_loss": loss.item(), "reg_loss": reg_value}


class NonFiniteLossError(FloatingPointError):
    """Training diverged: a loss became NaN or infinite (the learner is left as it was
    before the task; see :meth:`hnviz.base.ContinualLearner.partial_fit`)."""


def run_steps(learner: Any, task: Task, n_steps: int,
              step_fn: Callable[[int], dict[str, float]]) -> dict[str, np.ndarray]:
    """Call ``step_fn(step)`` ``n_steps`` times under a tqdm bar, pass each step's logs to
    the learner's callbacks, and return the logs as arrays ``(n_steps,)`` per key."""
    history: dict[str, list[float]] = defaultdict(list)
    bar = tqdm(range(n_steps), desc=f"task {task.task_id + 1}/{task.n_tasks}", leave=False,
               disable=not learner.progress, mininterval=0.5)
    for step in bar:
        logs = step_fn(step)
        if not all(np.isfinite(v) for v in logs.values()):
            bar.close()
            values = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
            raise NonFiniteLossError(
                f"non-finite loss in task {task.task_id + 1} ({task.name!r}) at step "
                f"{step + 1} of {n_steps}: {values}; the learner keeps its state from before "
                f"this task. Lower config.lr or beta, or check the task's data for NaN/inf")
        for key, value in logs.items():
            history[key].append(value)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{logs['task_loss']:.4f}", reg=f"{logs['reg_loss']:.2e}")
        for cb in learner.callbacks:
            cb.on_step(learner, task.task_id, step, logs)
    bar.close()
    return {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}


def fit_task(learner: "HyperCL", s: StepState) -> dict[str, np.ndarray]:
    """Run ``config.n_steps`` hypernetwork steps on one task; returns its history arrays
    (``task_loss``, ``reg_loss`` and the embedding's ``emb_trajectory`` ``(n, E)``)."""
    sampler = BatchSampler(len(s.task.x_train), learner.config.batch_size, s.gen)
    trajectory = [s.emb.detach().clone()]

    def step(i: int) -> dict[str, float]:
        logs = train_step(learner, s, sampler.next())
        if (i + 1) % EMB_RECORD_EVERY == 0:
            trajectory.append(s.emb.detach().clone())
        return logs

    out = run_steps(learner, s.task, learner.config.n_steps, step)
    out["emb_trajectory"] = torch.stack(trajectory).numpy()  # (n_records, E)
    return out
