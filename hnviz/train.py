"""One task of hypernetwork training: task loss + beta * output regularizer (PAPER.md)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
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
    """Endless mini-batches of indices ``(batch,)``: reshuffled epochs from ``generator``.

    ``perm`` ``(n,)`` and ``pos`` restore a sampler from a checkpoint (the epoch's order
    and how far into it); by default a new epoch is drawn.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator,
                 perm: torch.Tensor | None = None, pos: int = 0):
        self.n, self.batch_size, self.gen = n, min(batch_size, n), generator
        if perm is None:
            perm = torch.randperm(n, generator=generator)
        if perm.shape != (n,) or not 0 <= pos <= n:
            raise ValueError(f"sampler state does not fit {n} examples: perm of shape "
                             f"{tuple(perm.shape)}, position {pos}")
        self.perm, self.pos = perm, pos

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
    """What a training step needs besides the learner: optimizers, targets, RNG, and
    where the task is (steps done, data order, logs so far) — all a checkpoint holds."""

    task: Task
    emb: torch.nn.Parameter  # (E,)
    theta_opt: torch.optim.Adam
    emb_opt: torch.optim.Adam
    reg: RegTargets | None
    gen: torch.Generator
    sampler: BatchSampler | None = None  # made at the first step
    step: int = 0  # steps done in this task
    history: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    trajectory: list[torch.Tensor] = field(default_factory=list)  # (E,) every 10 steps


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
              step_fn: Callable[[int], dict[str, float]], start: int = 0,
              history: dict[str, list[float]] | None = None,
              after_step: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Call ``step_fn(step)`` for steps ``start..n_steps-1`` under a tqdm bar, pass each
    step's logs to the learner's callbacks, then call ``after_step(step)``; return the logs
    (appended to ``history``, the earlier steps' logs when resuming) as arrays
    ``(n_steps,)`` per key."""
    history = defaultdict(list) if history is None else history
    bar = tqdm(range(start, n_steps), desc=f"task {task.task_id + 1}/{task.n_tasks}",
               leave=False, disable=not learner.progress, mininterval=0.5, initial=start,
               total=n_steps)
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
        if after_step is not None:
            after_step(step)
    bar.close()
    return {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}


def fit_task(learner: "HyperCL", s: StepState,
             after_step: Callable[[StepState], None] | None = None) -> dict[str, np.ndarray]:
    """Run the steps ``s.step..config.n_steps-1`` of one task (all of them for a new
    state); ``after_step(s)`` follows each step (checkpoints). Returns the task's history
    arrays (``task_loss``, ``reg_loss`` and the embedding's ``emb_trajectory`` ``(n, E)``)."""
    if s.sampler is None:
        s.sampler = BatchSampler(len(s.task.x_train), learner.config.batch_size, s.gen)
    if not s.trajectory:
        s.trajectory.append(s.emb.detach().clone())

    def step(i: int) -> dict[str, float]:
        logs = train_step(learner, s, s.sampler.next())
        if (i + 1) % EMB_RECORD_EVERY == 0:
            s.trajectory.append(s.emb.detach().clone())
        return logs

    def done(i: int) -> None:
        s.step = i + 1
        if after_step is not None:
            after_step(s)

    out = run_steps(learner, s.task, learner.config.n_steps, step, s.step, s.history, done)
    out["emb_trajectory"] = torch.stack(s.trajectory).numpy()  # (n_records, E)
    return out
