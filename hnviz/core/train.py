"""One task of hypernetwork training: task loss + beta * output regularizer
(docs/paper.md, "The loss"), and the step loop every learner shares.

Nothing here knows a learner: :func:`train_step` takes the two networks and the
regularizer's settings, :func:`run_steps` a step function and a hook called after each
step (the learner passes its callbacks through it).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .hnets import HyperNet
from .lookahead import AdamLookahead
from .regularizer import RegTargets
from .targets import TargetNet
from .tasks import Task
from .threads import tick

EMB_RECORD_EVERY = 10  # steps between recorded points of the embedding trajectory


class Callback:
    """Hooks called by a learner's ``fit``/``partial_fit``; override what you need.

    ``on_step`` follows every optimisation step (``step`` counts from 0; ``logs`` holds
    ``task_loss`` and ``reg_loss``), ``on_task_end`` every learned task (``logs["row"]``:
    the new row of the metric matrix)."""

    def on_task_start(self, learner: Any, task: Task) -> None: ...

    def on_step(self, learner: Any, task_id: int, step: int, logs: dict[str, float]) -> None: ...

    def on_task_end(self, learner: Any, task_id: int, logs: dict[str, Any]) -> None: ...


CALLBACK_HOOKS = ("on_task_start", "on_step", "on_task_end")


def check_callbacks(callbacks: Any) -> list[Any]:
    """``callbacks`` as a list of objects with the :class:`hnviz.core.train.Callback` hooks."""
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of hnviz.core.train.Callback objects, got "
                        f"{type(callbacks).__name__}")
    for cb in callbacks:
        missing = [h for h in CALLBACK_HOOKS if not callable(getattr(cb, h, None))]
        if missing:
            raise TypeError(f"callback {cb!r:.80} lacks {', '.join(missing)}; subclass "
                            "hnviz.core.train.Callback")
    return list(callbacks)


class NonFiniteLossError(FloatingPointError):
    """Training diverged: a loss became NaN or infinite (the learner is left as it was
    before the task; see :meth:`hnviz.learners.base.ContinualLearner.partial_fit`)."""


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
    """A task in progress: its embedding, optimizers, regularizer targets, RNG, and where
    it is (steps done, data order, logs so far) — all a checkpoint holds of it.
    ``head`` is the output head the task trains (0 with one shared head)."""

    task: Task
    emb: torch.nn.Parameter  # (E,)
    theta_opt: torch.optim.Adam
    emb_opt: torch.optim.Adam
    reg: RegTargets | None
    gen: torch.Generator
    head: int = 0
    # the loss of the generated weights (P,) on a batch x, y (default: task_loss of the
    # target net's outputs) and optimizers of other parameters that loss trains (a VAE's
    # encoder): stepped with the others, never regularized
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    extra_opts: tuple[torch.optim.Optimizer, ...] = ()
    sampler: BatchSampler | None = None  # made at the first step
    step: int = 0  # steps done in this task
    history: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    trajectory: list[torch.Tensor] = field(default_factory=list)  # (E,) every 10 steps
    lookahead: AdamLookahead | None = None  # of theta_opt, made at the first lookahead


@dataclass(frozen=True)
class StepRule:
    """How a step combines the losses: ``beta`` times the regularizer over ``reg_subset``
    random earlier tasks (None: all), at theta + dtheta when ``lookahead``."""

    beta: float
    lookahead: bool = True
    reg_subset: int | None = None


def _reg_indices(n_prev: int, k: int | None, gen: torch.Generator) -> torch.Tensor | None:
    if k is None or k >= n_prev:
        return None  # all earlier tasks
    return torch.randperm(n_prev, generator=gen)[:k]


def _lookahead_regularizer(hnet: HyperNet, s: StepState, rule: StepRule) -> float:
    """Add ``beta * d reg(theta + dtheta) / d theta`` (dtheta: Adam's step for the task
    loss, held constant) to theta's gradients; return the regularizer. The gradient at
    theta + dtheta is taken with respect to those values themselves (the lookahead's
    reused tensors), which is the same number without an add per parameter."""
    if s.lookahead is None:
        s.lookahead = AdamLookahead(s.theta_opt)
    ahead = s.lookahead.ahead()
    at = {p: ahead[p].requires_grad_() if p in ahead else p for p in hnet.parameters()}
    params = {n: at[p] for n, p in hnet.named_parameters()}
    reg = s.reg.loss(_reg_indices(len(s.reg), rule.reg_subset, s.gen), params)
    grads = torch.autograd.grad(rule.beta * reg, list(at.values()), allow_unused=True)
    for p, g in zip(at, grads):  # theta without a task-loss gradient: at theta itself
        if g is not None:
            p.grad = g if p.grad is None else p.grad.add_(g)
    return reg.item()


def train_step(hnet: HyperNet, target: TargetNet, s: StepState, idx: torch.Tensor,
               rule: StepRule) -> dict[str, float]:
    """One optimisation step on the batch ``idx`` ``(B,)`` of ``s.task``; returns the losses."""
    dev = s.emb.device  # the batch goes where the learner computes
    x, y = s.task.x_train[idx].to(dev), s.task.y_train[idx].to(dev)
    optimizers = (s.theta_opt, s.emb_opt, *s.extra_opts)
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    weights = hnet(s.emb[None])[0]  # (P,)
    if s.loss is None:
        with target.task_norms(s.task.task_id, training=True):  # its batch-norm statistics
            loss = task_loss(s.task.kind, target(x, weights, s.head), y)
    else:
        loss = s.loss(weights, x, y)
    reg_value = 0.0
    if s.reg is None:
        loss.backward()
    elif not rule.lookahead:
        reg = s.reg.loss(_reg_indices(len(s.reg), rule.reg_subset, s.gen))
        (loss + rule.beta * reg).backward()
        reg_value = reg.item()
    else:
        loss.backward()  # task-loss gradient first: dtheta is Adam's step for it alone
        reg_value = _lookahead_regularizer(hnet, s, rule)
    for opt in optimizers:
        opt.step()
    return {"task_loss": loss.item(), "reg_loss": reg_value}


def _diverged(task: Task, step: int, n_steps: int, logs: dict[str, float]) -> NonFiniteLossError:
    values = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
    return NonFiniteLossError(
        f"non-finite loss in task {task.task_id + 1} ({task.name!r}) at step {step + 1} of "
        f"{n_steps}: {values}; the learner keeps its state from before this task. Lower "
        "config.lr or beta, or check the task's data for NaN/inf")


def run_steps(task: Task, n_steps: int, step_fn: Callable[[int], dict[str, float]],
              on_step: Callable[[int, dict[str, float]], None] | None = None,
              progress: bool = True, start: int = 0,
              history: dict[str, list[float]] | None = None) -> dict[str, np.ndarray]:
    """Call ``step_fn(step)`` for steps ``start..n_steps-1`` under a tqdm bar, record its
    logs, then call ``on_step(step, logs)`` (callbacks, checkpoints); return the logs
    (appended to ``history``, the earlier steps' logs when resuming) as arrays
    ``(n_steps,)`` per key. A NaN/inf loss raises :class:`NonFiniteLossError`."""
    history = defaultdict(list) if history is None else history
    bar = tqdm(range(start, n_steps), desc=f"task {task.task_id + 1}/{task.n_tasks}",
               leave=False, disable=not progress, mininterval=0.5, initial=start,
               total=n_steps)
    for step in bar:
        tick()  # the thread count for this step (hnviz.core.threads)
        logs = step_fn(step)
        if not all(np.isfinite(v) for v in logs.values()):
            bar.close()
            raise _diverged(task, step, n_steps, logs)
        for key, value in logs.items():
            history[key].append(value)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{logs['task_loss']:.4f}", reg=f"{logs['reg_loss']:.2e}")
        if on_step is not None:
            on_step(step, logs)
    bar.close()
    return {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}


def fit_task(hnet: HyperNet, target: TargetNet, s: StepState, rule: StepRule,
             n_steps: int, batch_size: int,
             on_step: Callable[[int, dict[str, float]], None] | None = None,
             progress: bool = True,
             extra: Callable[[torch.Tensor], dict[str, float]] | None = None
             ) -> dict[str, np.ndarray]:
    """Run the steps ``s.step..n_steps-1`` of one task (all of them for a new state);
    ``s.step`` counts the steps done when ``on_step`` is called. ``extra(idx)`` runs after
    each step on the same batch indices ``(B,)`` (a replay model trained in lockstep) and
    adds its logs. Returns the task's history arrays (``task_loss``, ``reg_loss``, the
    extra logs and the embedding's ``emb_trajectory`` ``(n, E)``)."""
    if s.sampler is None:
        s.sampler = BatchSampler(len(s.task.x_train), batch_size, s.gen)
    if not s.trajectory:
        s.trajectory.append(s.emb.detach().to("cpu", copy=True))

    def step(i: int) -> dict[str, float]:
        idx = s.sampler.next()
        logs = train_step(hnet, target, s, idx, rule)
        if extra is not None:
            logs.update(extra(idx))
        if (i + 1) % EMB_RECORD_EVERY == 0:
            s.trajectory.append(s.emb.detach().to("cpu", copy=True))
        s.step = i + 1
        return logs

    out = run_steps(s.task, n_steps, step, on_step, progress, s.step, s.history)
    out["emb_trajectory"] = torch.stack(s.trajectory).numpy()  # (n_records, E)
    return out


# ------------------------------------------------- a task in progress as tensors
def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        for key, value in opt.state.get(p, {}).items():
            out[f"{prefix}.{i}.{key}"] = torch.as_tensor(value).detach().clone().contiguous()
    return out


def step_state_tensors(s: StepState, prefix: str = "") -> dict[str, torch.Tensor]:
    """What continuing ``s`` exactly needs, as named tensors: ``task.emb`` ``(E,)``,
    ``task.perm`` ``(N,)`` (with a sampler), ``task.<log>`` ``(step,)``,
    ``task.trajectory`` ``(n, E)``, the Adam states (``opt.theta.<i>.<key>``,
    ``opt.emb.0.<key>``, ``opt.extra<k>.<i>.<key>``) and theta* (``theta_star.<name>``),
    each name after ``prefix``. The step count and sampler position are not tensors."""
    t = {"task.emb": s.emb.detach().clone()}
    if s.sampler is not None:
        t["task.perm"] = s.sampler.perm.contiguous()
    for k, v in s.history.items():
        t[f"task.{k}"] = torch.tensor(v, dtype=torch.float64)
    if s.trajectory:
        t["task.trajectory"] = torch.stack(s.trajectory)
    t.update(_optimizer_tensors("opt.theta", s.theta_opt))
    t.update(_optimizer_tensors("opt.emb", s.emb_opt))
    for k, opt in enumerate(s.extra_opts):
        t.update(_optimizer_tensors(f"opt.extra{k}", opt))
    if s.reg is not None:
        t.update({f"theta_star.{n}": v.contiguous() for n, v in s.reg.theta_star.items()})
    return {prefix + k: v for k, v in t.items()}


def _load_optimizer(tensor: Callable[[str], torch.Tensor], prefix: str,
                    opt: torch.optim.Optimizer) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    state = {}
    for i, p in enumerate(params):
        entry = {key: tensor(f"{prefix}.{i}.{key}").clone()
                 for key in ("step", "exp_avg", "exp_avg_sq")}
        if entry["exp_avg"].shape != p.shape or entry["exp_avg_sq"].shape != p.shape:
            raise ValueError(f"optimizer state {prefix}.{i} has shape "
                             f"{tuple(entry['exp_avg'].shape)}, the parameter {tuple(p.shape)}")
        state[i] = entry
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})


def load_step_state(s: StepState, tensor: Callable[[str], torch.Tensor], step: int,
                    sampler_pos: Any, batch_size: int,
                    log_keys: tuple[str, ...] = ("task_loss", "reg_loss"),
                    prefix: str = "") -> None:
    """Fill a fresh ``s`` (its embedding, optimizers and regularizer made) from the
    tensors of :func:`step_state_tensors` (``tensor(name)`` returns one; names after
    ``prefix``), ``step`` steps done, the sampler at ``sampler_pos`` and the logs
    ``log_keys`` so far. A state saved without sampler (``sampler_pos`` None: a replay
    model trained on the main state's batches) has no logs or trajectory either.
    Whatever does not fit raises a ValueError."""
    def get(name: str) -> torch.Tensor:
        return tensor(prefix + name)

    try:
        _load_optimizer(get, "opt.theta", s.theta_opt)
        _load_optimizer(get, "opt.emb", s.emb_opt)
        for k, opt in enumerate(s.extra_opts):
            _load_optimizer(get, f"opt.extra{k}", opt)
        if sampler_pos is not None:
            s.sampler = BatchSampler(len(s.task.x_train), batch_size, s.gen,
                                     perm=get("task.perm"), pos=sampler_pos)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"the task in progress does not load ({e})") from e
    s.step = step
    for key in log_keys:
        values = get(f"task.{key}")
        if values.shape != (step,):
            raise ValueError(f"task.{key} has {values.numel()} values for {step} steps done")
        s.history[key] = values.tolist()
    if sampler_pos is not None:
        s.trajectory = list(get("task.trajectory").clone())
