"""``HyperCL``: a hypernetwork continual learner with scikit-learn conventions."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core import metrics
from .base import ContinualLearner
from .learner_state import LearnerState, StateError, grown, saved_matrix
from .config import HyperCLConfig
from ..core.devices import to_cpu
from ..core.lookahead import adam
from ..core.hnets import HyperNet, build_hnet, count_params as count_hnet_params
from ..core.outliers import exposure_loss
from ..core.regularizer import RegTargets
from ..core.stability import ContinualEval, weight_drift
from ..core.replay_model import ReplayModel
from ..core.tasks import Task, dense, task_list
from .task_inference import STRATEGIES, ByEntropy, TaskInference
from ..core.train import StepRule, StepState, fit_task, load_step_state, step_state_tensors
from ..core.threads import training_threads
from ..core.validate import as_float_tensor


class HyperCL(TaskInference, ContinualLearner):
    """Continual learning with a task-conditioned hypernetwork (von Oswald et al. 2020).

    ``partial_fit(task)`` learns the next task; ``fit(tasks)`` learns a whole sequence
    from scratch. Fitted attributes: ``target_`` (:class:`TargetNet`), ``hnet_``,
    ``embeddings_`` ``(T, E)``, ``history_`` (per task: ``task_loss``/``reg_loss`` per step
    and ``emb_trajectory``), ``matrix_`` R ``(T, T)`` with NaN for unseen, ``task_info_``;
    while a task trains, ``in_progress_`` (its :class:`hnviz.core.train.StepState`). With
    ``inference_`` (its task-inference strategy, :mod:`hnviz.learners.task_inference`; with
    ``task_inference="replay"``, HNET+TIR, ``replay_`` is its
    :class:`hnviz.core.replay_model.ReplayModel`) and, while a task trains,
    ``inference_progress_``.
    """

    kind, resumable = "hypercl", True
    config_class = HyperCLConfig
    batch_norm_per_task = True
    RECORDS = ContinualLearner.RECORDS + ("inference_matrix_",)

    def _reset(self) -> None:
        super()._reset()
        self.hnet_: HyperNet | None = None
        self.embeddings_ = torch.zeros(0, self.config.emb_dim)
        self.inference_matrix_ = np.zeros((0, 0))  # task-inference accuracy (cl2/cl3)
        self.in_progress_: StepState | None = None
        self.inference_: ByEntropy | None = None  # the task-inference strategy (cl2/cl3)
        self.inference_progress_: Any = None  # its side of the task in progress
        self._init_embedding: torch.Tensor | None = None

    @property
    def n_tasks_(self) -> int:
        return int(self.embeddings_.shape[0])

    @property
    def replay_(self) -> ReplayModel | None:
        """HNET+TIR's replay model (of its strategy); None for other task inference."""
        return None if self.inference_ is None else self.inference_.model

    @property
    def trainable_params_(self) -> int:
        """Hypernetwork weights (theta, chunk embeddings included) plus task embeddings
        (and the task-inference strategy's model: HNET+TIR's replay side)."""
        extra = self.inference_.count_params(self.config, self.target_.in_features,
                                             self.target_.out_features, self.n_tasks_)
        return self.hnet_.num_params + self.embeddings_.numel() + extra

    @classmethod
    def described_params(cls, config: HyperCLConfig, layout: tuple[Any, ...],
                         n_tasks: int) -> int:
        """Target template + hypernetwork + embeddings (+ the task-inference strategy's
        model, e.g. the replay side of HNET+TIR), by arithmetic alone."""
        P = cls.target_params(config, layout)
        extra = STRATEGIES[config.task_inference].count_params(config, layout[0], layout[1],
                                                               n_tasks, templates=True)
        return P + count_hnet_params(config.hnet, config.emb_dim, P, config.hnet_hidden,
                                     config.chunk_size, config.chunk_emb_dim) \
            + n_tasks * config.emb_dim + extra

    def _build_model(self) -> None:
        cfg = self.config
        self.hnet_ = build_hnet(cfg.hnet, cfg.emb_dim, self.target_.num_params, cfg.hnet_hidden,
                                cfg.hnet_activation, cfg.chunk_size, cfg.chunk_emb_dim,
                                cfg.hnet_init)
        self.inference_ = STRATEGIES[cfg.task_inference](cfg, self.target_.in_features,
                                                         self.target_.out_features)

    def _to_device(self) -> None:
        super()._to_device()
        self.hnet_.to(self.device_)
        self.inference_.to(self.device_)

    def optimizers(self, emb: torch.nn.Parameter) -> tuple[torch.optim.Adam, torch.optim.Adam]:
        """The two Adam optimizers of a task: theta (``config.lr``) and the task's
        embedding ``emb`` (``config.emb_lr``, default ``lr``)."""
        cfg = self.config
        return adam(self.hnet_.parameters(), cfg.lr), adam([emb], cfg.emb_lr or cfg.lr)

    # ----------------------------------------------------------------- training
    def partial_fit(self, task: Task, callbacks: Sequence[Any] = (),
                    init_embedding: Any = None) -> "HyperCL":
        """Learn ``task`` (the next one in the sequence) and update ``matrix_``.

        ``callbacks``: called for this task besides the learner's own.
        ``init_embedding`` ``(E,)``: start the new task's embedding there instead of
        ``config.emb_init`` — e.g. at a similar old task's embedding (transfer).
        """
        self._init_embedding = None if init_embedding is None else self.check_embedding(init_embedding)
        if self._init_embedding is not None and self._init_embedding.dim() != 1:
            raise ValueError(f"init_embedding must have shape (E,), got "
                             f"{tuple(self._init_embedding.shape)}")
        try:
            return super().partial_fit(task, callbacks)
        finally:
            self._init_embedding = None

    def continue_fit(self, tasks: Iterable[Task], callbacks: Sequence[Any] = ()) -> "HyperCL":
        """Learn the rest of ``tasks`` after :meth:`load_state_dict`: the task in progress
        (if the state held one) from where it stopped, then the tasks after it."""
        tasks = task_list(tasks)
        with self.extra_callbacks(callbacks):
            bar = tqdm(total=len(tasks), initial=self.n_tasks_, desc="tasks",
                       disable=not self.progress)
            for task in tasks[self.n_tasks_:]:
                self._learn(task)
                bar.update(1)
            bar.close()
        return self

    def _partial_fit(self, task: Task) -> None:
        """Learn ``task`` from its start, or continue it if it is in progress."""
        state = self.in_progress_
        if state is None or state.task.task_id != task.task_id:
            self._check_task(task)
            state = self._start_task(task)
        self.in_progress_ = state
        try:
            self._task_started(task, resumed=state.step > 0)
            rule = StepRule(self.config.beta, self.config.lookahead, self.config.reg_subset)
            rp = self.inference_progress_
            extra = None if rp is None else \
                (lambda idx: self.inference_.step(rp, idx, self._class_probs))
            history = fit_task(self.hnet_, self.target_, state, rule, self.config.n_steps,
                               self.config.batch_size, self._on_step, self.progress, extra)
        finally:
            self.in_progress_, self.inference_progress_ = None, None
        self.embeddings_ = torch.cat([self.embeddings_, state.emb.detach().cpu()[None]])
        if rp is not None:
            self.inference_.finish(rp)
        self._finish_task(task, history)

    @torch.no_grad()
    def _class_probs(self, x: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Softmax ``(n, C)`` of each input ``(n, D)`` under the net of its task
        ``task_ids`` ``(n,)`` (the task in progress included), for HNET+TIR's labels."""
        embs = torch.cat([self.on_device(self.embeddings_), self.in_progress_.emb.detach()[None]])
        out = x.new_empty(len(x), self.target_.out_features)
        for k in task_ids.unique().tolist():
            sel = task_ids == k
            out[sel] = torch.softmax(self.target_(x[sel], self.hnet_(embs[k][None])[0],
                                                  self.head_of(k)), dim=-1)
        return out

    def _on_step(self, step: int, logs: dict[str, float]) -> None:
        self._stepped(self.in_progress_.task.task_id, step, logs)

    def _start_task(self, task: Task) -> StepState:
        """Build the model at the first task; draw the task's embedding; make the
        optimizers and the regularizer's targets (theta* = the hnet now)."""
        self._build_for(task)
        cfg = self.config
        cfg.check_task(task)
        if self._init_embedding is not None:
            init = self._init_embedding.clone()
        elif cfg.emb_init == "copy_previous" and self.n_tasks_ > 0:
            init = self.embeddings_[-1].clone()
        else:
            init = torch.randn(cfg.emb_dim, generator=self.gen_)  # on the CPU: one stream
        init = self.on_device(init)
        self._record_transfer(task, *self._outputs_before(task, init))
        emb = torch.nn.Parameter(init)
        reg = None
        if self.n_tasks_ > 0 and cfg.beta > 0:
            reg = RegTargets(self.hnet_, self.on_device(self.embeddings_), cfg.reg_targets)
        self.inference_progress_ = self.inference_.start(task, self.gen_)
        return self._step_state(task, emb, reg)

    @torch.no_grad()
    def _outputs_before(self, task: Task, emb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Test outputs for a task not trained yet, from its starting embedding ``emb``
        ``(E,)``: through the hypernetwork now and through the untrained one (on the CPU)."""
        x, head = self.on_device(dense(task.x_test)), self.head_of(task.task_id)
        return tuple(self.target_(x, hnet(emb[None])[0], head).cpu()
                     for hnet in (self.hnet_, self.fresh_model().hnet_))

    def _step_state(self, task: Task, emb: torch.nn.Parameter, reg: RegTargets | None) -> StepState:
        """A new task state: the embedding, its two optimizers, the regularizer's targets."""
        return StepState(task, emb, *self.optimizers(emb), reg, self.gen_,
                         self.head_of(task.task_id), loss=self._outlier_loss(task))

    def _outlier_loss(self, task: Task) -> Any:
        """The task loss plus outlier exposure (:func:`hnviz.core.outliers.exposure_loss`) where
        the task will be inferred by entropy (cl2/cl3, ``outliers`` set); else None."""
        cfg = self.config
        if cfg.outliers == "none" or not self.inference_.outliers or task.scenario == "cl1":
            return None
        return exposure_loss(task, self.target_, self.head_of(task.task_id), self.gen_,
                             cfg.outlier_weight)

    # ---------------------------------------------------------------- inference
    def check_embedding(self, emb: Any) -> torch.Tensor:
        """Embeddings as a float tensor ``(E,)`` or ``(B, E)``, else a clear error."""
        E = self.config.emb_dim
        emb = as_float_tensor(emb, "embedding", f"(E,) or (B, E) with E = emb_dim = {E}")
        if emb.dim() not in (1, 2) or emb.shape[-1] != E:
            raise ValueError(f"embedding of shape {tuple(emb.shape)} does not fit: pass (E,) or "
                             f"(B, E) with E = emb_dim = {E}")
        return emb

    @torch.no_grad()
    def generate_weights(self, emb: Any) -> torch.Tensor:
        """Target weights for embeddings: ``(E,)`` -> ``(P,)``, ``(B, E)`` -> ``(B, P)``
        (on the CPU, whatever the learner's device)."""
        return self.device_weights(emb).cpu()

    @torch.no_grad()
    def device_weights(self, emb: Any) -> torch.Tensor:
        """:meth:`generate_weights` on the learner's device."""
        self.check_fitted()
        emb = self.on_device(self.check_embedding(emb))
        return self.hnet_(emb[None])[0] if emb.dim() == 1 else self.hnet_(emb)

    @torch.no_grad()
    def predict_with_embedding(self, x: Any, emb: Any, head: int | None = None) -> torch.Tensor:
        """Raw outputs of the net generated from ``emb``.

        x ``(N, D)``; emb ``(E,)`` -> ``(N, out)``, or ``(B, E)`` -> ``(B, N, out)`` in one
        vmapped pass. ``head`` picks the output head of a multi-head net (default 0).
        Computed on the learner's device, returned on the CPU.
        """
        weights = self.device_weights(emb)
        x = self.on_device(self.check_x(x))
        if head is not None:
            head = self.check_task_id(head)
        return self.target_(x, weights, self.head_of(head or 0)).cpu()

    def net_output(self, x: torch.Tensor, weights: torch.Tensor, task_id: int) -> torch.Tensor:
        """Outputs ``(B, N, out)`` of the target nets with ``weights`` ``(B, P)`` on ``x``
        ``(N, D)``, task ``task_id``'s head (the hypernetwork protocol,
        :mod:`hnviz.learners.protocol`)."""
        return self.target_(x, weights, self.head_of(task_id))

    @torch.no_grad()
    def current_weights(self) -> torch.Tensor:
        embs = self.on_device(self.embeddings_)
        s = self.in_progress_
        return self.hnet_(embs if s is None else torch.cat([embs, s.emb.detach()[None]]))

    def weight_drift(self, weights: torch.Tensor) -> torch.Tensor | None:
        """Each earlier task's ``||h(e_t, theta) - W*_t||`` ``(t,)`` (see stability)."""
        s = self.in_progress_
        return weight_drift(weights[:len(s.reg)], s.reg()) if s is not None and s.reg else None

    @torch.no_grad()
    def predict_output(self, x: Any, task_id: int) -> torch.Tensor:
        """Raw outputs ``(N, out)`` (regression values or logits) of task ``task_id``'s net
        (on the CPU)."""
        task_id = self.check_task_id(task_id)
        with self.target_.task_norms(task_id, training=False):
            return self.target_(self.on_device(self.check_x(x)),
                                self.device_weights(self.embeddings_[task_id]),
                                self.head_of(task_id)).cpu()

    def _update_matrix(self) -> None:
        super()._update_matrix()
        if self.tasks_[0].kind == "classification" and self.tasks_[0].scenario != "cl1":
            self.inference_matrix_ = grown(
                self.inference_matrix_, [self.task_inference_accuracy(t) for t in self.tasks_])

    def summary(self, scratch: Any = None) -> dict[str, Any]:
        """Metrics of ``matrix_`` (and of ``inference_matrix_`` in cl2/cl3; ``scratch``:
        see :meth:`ContinualLearner.summary`)."""
        out = super().summary(scratch)
        if self.inference_matrix_.size:
            out["task_inference"] = metrics.summary(self.inference_matrix_, "accuracy")
        return out

    # -------------------------------------------------------------------- state
    def _weights(self, clone: bool = True) -> dict[str, torch.Tensor]:
        weights = {f"hnet.{n}": p.detach().clone() for n, p in self.hnet_.named_parameters()}
        weights["embeddings"] = self.embeddings_.clone() if clone else self.embeddings_
        weights.update(self.inference_.weights())
        weights.update(self.target_.norm_state())  # batch-norm statistics per task
        return weights

    @staticmethod
    def is_weight(name: str) -> bool:
        """Whether a state tensor ``name`` belongs to the trained model (else to training)."""
        return name.startswith(("hnet.", "norms.")) or name == "embeddings" or \
            any(s.is_weight(name) for s in STRATEGIES.values())

    def _load_weights(self, weights: dict[str, torch.Tensor], copy: bool = True) -> None:
        theta = {k[len("hnet."):]: v.clone() for k, v in weights.items() if k.startswith("hnet.")}
        try:
            self.hnet_.load_state_dict(theta, strict=True)
        except RuntimeError as e:
            raise StateError(f"does not fit the hypernetwork its config describes: {e}") from e
        emb = weights.get("embeddings")
        want = (len(self.task_info_), self.config.emb_dim)
        if emb is None or emb.shape != want:
            got = "no embeddings" if emb is None else f"embeddings of shape {tuple(emb.shape)}"
            raise StateError(f"holds {got}, expected {want} (its tasks and emb_dim)")
        self.embeddings_ = emb.to("cpu", copy=copy)
        try:
            self.inference_.load_weights(weights, want[0])
            self.target_.load_norm_state(weights, len(self.task_info_))
        except ValueError as e:
            raise StateError(str(e)) from e

    def state_dict(self) -> LearnerState:
        """The learner (and the task in progress, during training) as a LearnerState."""
        state = super().state_dict()
        state.meta["inference_matrix"] = metrics.to_json(self.inference_matrix_)
        s = self.in_progress_
        if s is not None:
            state.meta["step"], state.meta["sampler_pos"] = s.step, s.sampler.pos
            rp = self.inference_progress_
            extra = {} if rp is None else self.inference_.progress_tensors(rp)
            if self.continual_ is not None:
                extra.update(self.continual_.tensors())
            state.training.update(to_cpu({**step_state_tensors(s), **extra}))
        return state

    def load_state_dict(self, state: LearnerState, tasks: Sequence[Task] | None = None) -> None:
        """See :meth:`ContinualLearner.load_state_dict`; a state saved in the middle of a
        task needs ``tasks`` (that task continues with :meth:`continue_fit`)."""
        super().load_state_dict(state, tasks)
        done, meta = state.tasks_done, state.meta
        if meta.get("inference_matrix"):
            self.inference_matrix_ = saved_matrix(meta["inference_matrix"], done,
                                                  "task-inference matrix")
        if meta.get("step", 0) > 0:
            if tasks is None or len(tasks) <= done:
                raise StateError(f"holds task {done + 1} in progress; pass the run's tasks to "
                                 "continue it", "meta")
            with training_threads(self.threads):  # theta*'s targets at training's threads
                self.in_progress_ = self._restore_progress(state, tasks[done])

    def _restore_progress(self, state: LearnerState, task: Task) -> StepState:
        """The task in progress of ``state``: its embedding, optimizers, theta* and data
        order, as they were (the regularizer's targets recomputed from theta*)."""
        cfg, step = self.config, state.meta["step"]
        if not 0 < step < cfg.n_steps:
            raise StateError(f"says step {step}, outside the task's {cfg.n_steps} steps", "meta")
        emb = state.tensor("task.emb")
        if emb.shape != (cfg.emb_dim,):
            raise StateError(f"holds task.emb of shape {tuple(emb.shape)}, expected "
                             f"({cfg.emb_dim},)", "training")
        emb = torch.nn.Parameter(self.on_device(emb.clone()))
        star = {k[len("theta_star."):]: self.on_device(v) for k, v in state.training.items()
                if k.startswith("theta_star.")}
        reg = None
        if star:
            own = dict(self.hnet_.named_parameters())
            if set(star) != set(own) or any(star[n].shape != own[n].shape for n in own):
                raise StateError("holds a theta_star that does not fit the hypernetwork",
                                 "training")
            reg = RegTargets(self.hnet_, self.on_device(self.embeddings_), cfg.reg_targets,
                             theta_star=star)
        s = self._step_state(task, emb, reg)
        logs = ("task_loss", "reg_loss") + self.inference_.logs
        try:
            load_step_state(s, state.tensor, step, state.meta["sampler_pos"], cfg.batch_size,
                            logs)
            self.inference_progress_ = self.inference_.restore(task, self.gen_, state.tensor,
                                                               step, cfg.batch_size)
            if cfg.eval_every:
                self.continual_ = ContinualEval([*self.tasks_, task], cfg.eval_samples,
                                                self.device_)
                self.continual_.load(state.tensor, step, cfg.eval_every)
        except StateError:
            raise
        except ValueError as e:
            raise StateError(str(e), "training") from e
        return s
