"""The paper's baselines: one plain target network trained without a hypernetwork.

All weights live in ONE flat ``theta_`` ``(P,)`` evaluated with ``target_(x, theta_, head)``,
the same functional path as the weights a hypernetwork generates. Methods:

- ``finetune``: task loss only (the lower bound).
- ``ewc`` (Kirkpatrick et al. 2017): + (lambda/2) sum_t sum_i F_t,i (theta_i - theta*_t,i)^2.
- ``online_ewc`` (Schwarz et al. 2018): one running F~ = gamma F~ + F_t, one anchor theta*.
- ``si`` (Zenke et al. 2017): + c sum_i Omega_i (theta_i - theta*_i)^2, Omega a path integral.
- ``joint``: trains on the union of all tasks so far (keeps old data; the upper bound).
- ``dgr``: generative replay with distillation, in :mod:`hnviz.learners.dgr` (class ``DGR``).

Penalties are ``strength * sum(importance_ * (theta - anchors_)^2)`` with ``importance_``
``(K, P)`` the Fisher(s) or Omega and ``anchors_`` ``(K, P)`` the matching theta*. Training
evaluates the same sum in the merged form of :class:`MergedQuadratic` (O(P) per step instead
of O(K P): 100 EWC tasks cost what one does).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .base import ContinualLearner
from .learner_state import StateError
from .config import PRESETS, ConfigMixin
from ..core.lookahead import adam
from ..core.penalties import MergedQuadratic, PathIntegral, fisher_diagonal
from ..core.targets import ACTIVATIONS, TARGETS
from ..core.tasks import Task, dense
from ..core.train import BatchSampler, run_steps, task_loss
from ..core.validate import is_real

METHODS = ("finetune", "ewc", "online_ewc", "si", "joint", "dgr")


@dataclass(frozen=True)
class BaselineConfig(ConfigMixin):
    """A baseline learner: ``method`` plus the target net and optimiser of a HyperCL preset.

    Defaults of the regularisation strengths are the task-incremental PermutedMNIST values
    of van de Ven & Tolias ("Three scenarios for continual learning", 2019; their
    continual-learning repository, ``param_values.py``/``continual_learner.py``):
    ``ewc_lambda`` 100, ``online_gamma`` 1, ``si_c`` 10, ``si_xi`` 0.1 (Zenke et al. 2017 used
    xi = 1e-3). ``fisher_samples`` training inputs estimate each Fisher. DGR
    (:class:`hnviz.learners.dgr.DGR`): a VAE with ``vae_latent`` latents and encoder layers
    ``vae_hidden`` (as HNET+TIR's), soft targets at ``distill_temperature``.
    ``eval_every``/``eval_samples``: continual evaluation, as in :class:`HyperCLConfig`.
    """

    method: str = "finetune"
    target: str = "mlp"
    target_hidden: tuple[int, ...] = (10, 10)
    target_activation: str = "sigmoid"
    multi_head: bool = False
    lr: float = 1e-2
    n_steps: int = 4001
    batch_size: int = 32
    ewc_lambda: float = 100.0
    online_gamma: float = 1.0
    fisher_samples: int = 500
    si_c: float = 10.0
    si_xi: float = 0.1
    vae_latent: int = 20
    vae_hidden: tuple[int, ...] = (400, 400)
    distill_temperature: float = 2.0
    eval_every: int = 0
    eval_samples: int = 100

    def __post_init__(self) -> None:
        self.normalise(sizes=("target_hidden", "vae_hidden"),
                       choices=(("method", "method", METHODS),
                                ("target", "target network", TARGETS),
                                ("target_activation", "activation", ACTIVATIONS)),
                       bools=("multi_head",),
                       ints=("batch_size", "fisher_samples", "vae_latent", "eval_samples"),
                       weights=("ewc_lambda", "si_c"),
                       reals=("lr", "si_xi", "distill_temperature"))
        if not is_real(self.online_gamma) or not 0 <= self.online_gamma <= 1:
            raise ValueError(f"online_gamma must be in [0, 1], got {self.online_gamma!r}; 1 "
                             "keeps all old Fisher")
        object.__setattr__(self, "online_gamma", float(self.online_gamma))

    @classmethod
    def _presets(cls) -> dict[str, "BaselineConfig"]:
        return BASELINE_PRESETS


# Copied from the HyperCL presets so that baseline and hypernetwork train the same target.
SHARED_FIELDS = ("target", "target_hidden", "target_activation", "multi_head", "lr", "n_steps",
                 "batch_size", "vae_latent", "vae_hidden")
BASELINE_PRESETS: dict[str, BaselineConfig] = {
    name: BaselineConfig(**{k: getattr(PRESETS[name], k) for k in SHARED_FIELDS})
    for name in PRESETS
}
# The 100-task and split HNETs' learning rates are set for their hypernetworks (the output
# layer's scale; shared heads in cl3); a net trained directly keeps Adam's usual 1e-3.
for _name in ("permuted_fashion_mnist_100", "split_mnist_fast", "split_fashion_mnist_fast"):
    BASELINE_PRESETS[_name] = BASELINE_PRESETS[_name].replace(lr=1e-3)


class BaselineCL(ContinualLearner):
    """A target network trained directly on the task sequence (finetune/EWC/online EWC/SI/joint).

    Fitted attributes: ``target_`` (:class:`TargetNet`), ``theta_`` ``(P,)``, ``importance_`` and
    ``anchors_`` ``(K, P)`` (Fisher(s)/Omega and theta*), ``history_`` (per task: ``task_loss``
    and ``reg_loss``, the penalty as added to the loss, per step), ``matrix_``, ``task_info_``.
    """

    kind = "baseline"
    config_class = BaselineConfig

    @property
    def batch_norm_per_task(self) -> bool:  # joint mixes every task in one batch
        return self.config.method != "joint"
    WEIGHTS = ("theta", "importance", "anchors")  # theta_ (P,), importance_/anchors_ (K, P)

    def __init__(self, config: Any = None, random_state: int | None = 0, progress: bool = True,
                 callbacks: Any = (), threads: int | str | None = None, device: Any = None):
        super().__init__(config, random_state, progress, callbacks, threads, device)
        if self.config.method == "dgr" and type(self) is BaselineCL:
            raise ValueError("method 'dgr' is the learner hnviz.learners.dgr.DGR (a VAE besides "
                             "the net); use DGR(config) instead of BaselineCL")

    def _reset(self) -> None:
        super()._reset()  # tasks_: test data for the matrix, training data for "joint"
        self.theta_: torch.nn.Parameter | None = None
        self.importance_ = self.anchors_ = torch.zeros(0, 0)
        # the penalty's merged form and the (importance_, anchors_) it was built from
        self._merged: MergedQuadratic | None = None
        self._merged_from: tuple[Any, Any] = (None, None)

    @property
    def n_tasks_(self) -> int:
        return len(self.task_info_)

    @property
    def trainable_params_(self) -> int:
        """The target net's weights (all of them trained directly)."""
        return self.target_.num_params

    def _outputs_for(self, task: Task) -> int:
        return task.head_size  # one shared head over all classes in cl3

    @classmethod
    def described_params(cls, config: BaselineConfig, layout: tuple[Any, ...],
                         n_tasks: int) -> int:
        """Target template + theta + at most one importance and anchor per task."""
        return cls.target_params(config, layout) * (2 + 2 * n_tasks)

    def _build_model(self) -> None:
        self.theta_ = torch.nn.Parameter(self.target_.flatten_module().clone())  # (P,)
        self.importance_ = self.anchors_ = torch.zeros(0, self.target_.num_params)

    def _to_device(self) -> None:
        super()._to_device()
        self.theta_ = torch.nn.Parameter(self.theta_.detach().to(self.device_))
        self.importance_ = self.anchors_ = self.importance_.to(self.device_)

    def penalty(self, theta: torch.Tensor | None = None) -> torch.Tensor | None:
        """Penalty at ``theta`` (default ``theta_``) with strength lambda/2 (EWC) or c (SI);
        None before the first anchor (and always for finetune/joint)."""
        cfg = self.config
        strength = cfg.si_c if cfg.method == "si" else cfg.ewc_lambda / 2
        if len(self.importance_) == 0 or strength == 0:
            return None
        theta = self.theta_ if theta is None else theta
        src = self._merged_from
        if src[0] is not self.importance_ or src[1] is not self.anchors_:  # new anchors/loaded
            self._merged = MergedQuadratic(self.importance_, self.anchors_)
            self._merged_from = (self.importance_, self.anchors_)
        return self._merged(theta, strength)

    def _train_data(self, task: Task) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """x ``(N, D)``, y and heads ``(N,)``: ``task`` alone, or all tasks so far for joint.
        A task alone keeps its inputs as they are (a permuted set permutes only the rows
        a batch reads, never a copy of all of them)."""
        tasks = [*self.tasks_, task] if self.config.method == "joint" else [task]
        heads = [torch.full((len(t.x_train),), self.head_of(t.task_id)) for t in tasks]
        x = task.x_train if len(tasks) == 1 else torch.cat([dense(t.x_train) for t in tasks])
        return (x, torch.cat([t.scenario_labels(t.y_train) for t in tasks]), torch.cat(heads))

    def _task_loss(self, kind: str, x: torch.Tensor, y: torch.Tensor,
                   heads: torch.Tensor) -> torch.Tensor:
        """Mean loss over the batch, each sample through its own task's head."""
        present = heads.unique().tolist()
        if len(present) == 1:  # one head (every task but joint's): the same sum, no masks
            return task_loss(kind, self.target_(x, self.theta_, present[0]), y)
        loss = x.new_zeros(())
        for h in present:
            sel = heads == h
            out = self.target_(x[sel], self.theta_, h)
            loss = loss + task_loss(kind, out, y[sel]) * (sel.sum() / len(x))
        return loss

    def _step(self, opt: torch.optim.Optimizer, kind: str, batch: tuple[torch.Tensor, ...],
              path: PathIntegral | None) -> dict[str, float]:
        """One Adam step on task loss + penalty; SI sees the task-loss gradient only."""
        opt.zero_grad(set_to_none=True)
        loss = self._task_loss(kind, *batch)
        loss.backward()
        grad = self.theta_.grad.clone() if path is not None else None  # (P,)
        reg = self.penalty()
        if reg is not None:
            reg.backward()
        before = self.theta_.detach().clone() if path is not None else None
        opt.step()
        if path is not None:
            path.update(grad, before, self.theta_.detach())
        return {"task_loss": loss.item(), "reg_loss": 0.0 if reg is None else reg.item()}

    def _consolidate(self, task: Task, path: PathIntegral | None) -> None:
        """After a task: add its Fisher (EWC), fold it into F~ (online EWC) or Omega (SI)."""
        cfg, theta = self.config, self.theta_.detach().clone()
        if cfg.method in ("ewc", "online_ewc"):
            idx = torch.randperm(len(task.x_train), generator=self.gen_)[:cfg.fisher_samples]
            new = fisher_diagonal(self.target_, theta, self.on_device(task.x_train[idx]),
                                  self.head_of(task.task_id), task.kind)
        elif cfg.method == "si":
            new = path.importance(theta, cfg.si_xi)
        else:
            return
        if cfg.method == "ewc":
            self.importance_ = torch.cat([self.importance_, new[None]])
            self.anchors_ = torch.cat([self.anchors_, theta[None]])
            return
        old = self.importance_[0] if len(self.importance_) else torch.zeros_like(new)
        decay = cfg.online_gamma if cfg.method == "online_ewc" else 1.0
        self.importance_, self.anchors_ = (decay * old + new)[None], theta[None]

    def _begin(self, task: Task) -> None:
        """Check and build for ``task``; record its metric before training (transfer)."""
        self._check_task(task)
        self._build_for(task)
        with torch.no_grad():
            x, head = self.on_device(dense(task.x_test)), self.head_of(task.task_id)
            self._record_transfer(task, *(self.target_(x, theta.detach(), head).cpu()
                                          for theta in (self.theta_, self.fresh_model().theta_)))

    def _partial_fit(self, task: Task) -> None:
        self._begin(task)
        cfg = self.config
        data = self._train_data(task)
        sampler = BatchSampler(len(data[0]), cfg.batch_size, self.gen_)
        opt = adam([self.theta_], cfg.lr)
        path = PathIntegral(self.theta_) if cfg.method == "si" else None
        self._task_started(task)

        def step(_: int) -> dict[str, float]:
            idx = sampler.next()  # one batch of indices for x, y and heads
            with self.target_.task_norms(task.task_id, training=True):
                return self._step(opt, task.kind, tuple(self.on_device(d[idx]) for d in data),
                                  path)

        history = run_steps(task, cfg.n_steps, step,
                            lambda i, logs: self._stepped(task.task_id, i, logs), self.progress)
        with self.target_.task_norms(task.task_id, training=False):
            self._consolidate(task, path)
        self._finish_task(task, history)

    def _weights(self, clone: bool = True) -> dict[str, torch.Tensor]:
        # training changes theta_ in place; importance_/anchors_ are replaced after a task
        weights = {k: getattr(self, f"{k}_").detach().clone() if clone or k == "theta"
                   else getattr(self, f"{k}_") for k in self.WEIGHTS}
        return {**weights, **self.target_.norm_state()}  # batch-norm statistics per task

    def _load_weights(self, weights: dict[str, torch.Tensor], copy: bool = True) -> None:
        missing = [k for k in self.WEIGHTS if k not in weights]
        if missing:
            raise StateError(f"lacks tensor(s) {', '.join(missing)}")
        theta, importance, anchors = (weights[k] for k in self.WEIGHTS)
        P, T = self.target_.num_params, len(self.task_info_)
        if theta.shape != (P,) or importance.shape != anchors.shape or \
                importance.shape[1:] != (P,) or importance.shape[0] > T:
            raise StateError(f"holds baseline tensors of shapes {tuple(theta.shape)}, "
                             f"{tuple(importance.shape)}, {tuple(anchors.shape)}, which do not "
                             f"fit its target net (P = {P}) and {T} tasks")
        try:
            self.target_.load_norm_state(weights, len(self.task_info_))
        except ValueError as e:
            raise StateError(str(e)) from e
        dev = self.device_
        self.theta_ = torch.nn.Parameter(theta.to(dev, copy=copy))
        self.importance_, self.anchors_ = importance.to(dev, copy=copy), anchors.to(dev, copy=copy)

    # ---------------------------------------------------------------- inference
    def current_weights(self) -> torch.Tensor:
        """The one net every task uses, ``(t + 1, P)`` (a view of ``theta_``)."""
        n = len(self.continual_.tasks) if self.continual_ is not None else self.n_tasks_
        return self.theta_.detach()[None].expand(n, -1)

    @torch.no_grad()
    def predict_output(self, x: Any, task_id: int) -> torch.Tensor:
        """Raw outputs ``(N, out)`` (regression values or logits) for task ``task_id``
        (computed on the learner's device, returned on the CPU)."""
        task_id = self.check_task_id(task_id)
        with self.target_.task_norms(task_id, training=False):
            return self.target_(self.on_device(self.check_x(x)), self.theta_.detach(),
                                self.head_of(task_id)).cpu()
