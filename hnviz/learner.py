"""``HyperCL``: a hypernetwork continual learner with scikit-learn conventions."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import metrics
from .base import ContinualLearner, task_list
from .benchmarks import Task, from_spec
from .checkpoint import (Checkpointer, checkpoint_dir, clean_temporaries, latest_checkpoint,
                         list_checkpoints, read_json, remove_checkpoints, restore)
from .config import HyperCLConfig
from .hnets import HyperNet, build_hnet
from .regularizer import RegTargets
from .targets import TargetNet
from .lock import run_lock
from .train import StepState, fit_task
from .validate import as_float_tensor


class HyperCL(ContinualLearner):
    """Continual learning with a task-conditioned hypernetwork (von Oswald et al. 2020).

    ``partial_fit(task)`` learns the next task; ``fit(tasks)`` learns a whole sequence
    from scratch. Fitted attributes: ``target_`` (:class:`TargetNet`), ``hnet_``,
    ``embeddings_`` ``(T, E)``, ``history_`` (per task: ``task_loss``/``reg_loss`` per step
    and ``emb_trajectory``), ``matrix_`` R ``(T, T)`` with NaN for unseen, ``task_info_``.
    """

    config_class = HyperCLConfig
    _checkpointer: Checkpointer | None = None  # set while fit/resume write checkpoints

    def _reset(self) -> None:
        self.target_: TargetNet | None = None
        self.hnet_: HyperNet | None = None
        self.embeddings_ = torch.zeros(0, self.config.emb_dim)
        self.history_: list[dict[str, np.ndarray]] = []
        self.matrix_ = np.zeros((0, 0))
        self.inference_matrix_ = np.zeros((0, 0))  # task-inference accuracy (cl2/cl3)
        self.task_info_: list[dict[str, Any]] = []
        self.tasks_: list[Task] = []  # test data for the accuracy matrix (never trained on)
        self._init_embedding: torch.Tensor | None = None

    @property
    def n_tasks_(self) -> int:
        return int(self.embeddings_.shape[0])

    # ----------------------------------------------------------------- building
    def _build_model(self) -> None:
        cfg = self.config
        self.hnet_ = build_hnet(cfg.hnet, cfg.emb_dim, self.target_.num_params, cfg.hnet_hidden,
                                cfg.hnet_activation, cfg.chunk_size, cfg.chunk_emb_dim,
                                cfg.hnet_init)

    # ----------------------------------------------------------------- training
    def partial_fit(self, task: Task, callbacks: Sequence[Any] = (),
                    init_embedding: Any = None) -> "HyperCL":
        """Learn ``task`` (the next one in the sequence) and update ``matrix_``.

        ``callbacks``: called for this task besides the learner's own.
        ``init_embedding`` ``(E,)``: start the new task's embedding there instead of
        ``config.emb_init`` — e.g. at a similar old task's embedding (transfer).
        """
        self._init_embedding = None if init_embedding is None else self._check_emb(init_embedding)
        if self._init_embedding is not None and self._init_embedding.dim() != 1:
            raise ValueError(f"init_embedding must have shape (E,), got "
                             f"{tuple(self._init_embedding.shape)}")
        try:
            return super().partial_fit(task, callbacks)
        finally:
            self._init_embedding = None

    def _partial_fit(self, task: Task, state: StepState | None = None) -> None:
        """Learn ``task`` from its start, or continue the task in progress ``state``."""
        if state is None:
            self._check_task(task)
            state = self._start_task(task)
        for cb in self.callbacks:
            cb.on_task_start(self, task)
        history = fit_task(self, state, after_step=self._after_step)
        self.embeddings_ = torch.cat([self.embeddings_, state.emb.detach()[None]])
        self._finish_task(task, history)
        if self._checkpointer is not None:
            self._checkpointer.save(self, None)

    def _start_task(self, task: Task) -> StepState:
        """Build the model at the first task; draw the task's embedding; make the
        optimizers and the regularizer's targets (theta* = the hnet now)."""
        if self.target_ is None:
            self._build(task.in_features, task.n_outputs,
                        task.n_tasks if self.config.multi_head else 1, task.in_shape)
        cfg = self.config
        if self._init_embedding is not None:
            init = self._init_embedding.clone()
        elif cfg.emb_init == "copy_previous" and self.n_tasks_ > 0:
            init = self.embeddings_[-1].clone()
        else:
            init = torch.randn(cfg.emb_dim, generator=self.gen_)
        emb = torch.nn.Parameter(init)
        reg = None
        if self.n_tasks_ > 0 and cfg.beta > 0:
            reg = RegTargets(self.hnet_, self.embeddings_, cfg.reg_targets)
        return StepState(task, emb, torch.optim.Adam(self.hnet_.parameters(), lr=cfg.lr),
                         torch.optim.Adam([emb], lr=cfg.emb_lr or cfg.lr), reg, self.gen_)

    def _after_step(self, state: StepState) -> None:
        if self._checkpointer is not None:
            self._checkpointer.after_step(self, state)

    # -------------------------------------------------------------- checkpoints
    def fit(self, tasks: Iterable[Task], callbacks: Sequence[Any] = (),
            checkpoint_dir: str | Path | None = None, checkpoint_every: int | None = None,
            keep: int = 2) -> "HyperCL":
        """Reset, then learn every task of ``tasks`` in order.

        ``callbacks``: as in :meth:`partial_fit`. With ``checkpoint_dir`` (a run
        directory, locked meanwhile), a checkpoint is written to
        ``checkpoint_dir/checkpoints/`` after every task and every ``checkpoint_every``
        steps within a task, keeping the ``keep`` newest (:mod:`hnviz.checkpoint`);
        :meth:`resume` continues from them after a crash. A directory with checkpoints of
        an unfinished run is refused (resume it, or delete its ``checkpoints/``)."""
        if checkpoint_dir is None:
            if checkpoint_every is not None:
                raise ValueError("checkpoint_every needs checkpoint_dir: pass the run directory "
                                 "to write checkpoints to")
            return super().fit(tasks, callbacks)
        spec = getattr(tasks, "spec", None)
        tasks = task_list(tasks)
        with run_lock(checkpoint_dir):
            checkpointer = Checkpointer(checkpoint_dir, tasks, checkpoint_every, keep, spec)
            existing = list_checkpoints(checkpoint_dir)
            if existing:
                info = read_json(existing[-1].path, "checkpoint")
                if (info.get("tasks_done"), info.get("step")) != (info.get("n_tasks"), 0):
                    raise ValueError(
                        f"{checkpoint_dir} holds checkpoints of an unfinished run (newest: "
                        f"{existing[-1].describe()} of {info.get('n_tasks')}); continue it with "
                        f"HyperCL.resume({str(checkpoint_dir)!r}) or `python -m hnviz train "
                        f"--out {checkpoint_dir} --resume`, or delete its checkpoints/ folder "
                        "to start over")
                remove_checkpoints(checkpoint_dir)  # a finished run's: replaced by this one
            self._reset()
            self._fit_from(tasks, 0, None, checkpointer, callbacks)
        return self

    def _fit_from(self, tasks: list[Task], start: int, state: StepState | None,
                  checkpointer: Checkpointer | None, callbacks: Sequence[Any] = ()) -> None:
        """Learn ``tasks[start:]`` (continuing ``state``, the task in progress, if given)."""
        self._checkpointer = checkpointer
        try:
            with self._extra_callbacks(callbacks):
                bar = tqdm(total=len(tasks), initial=start, desc="tasks", disable=not self.progress)
                for task in tasks[start:]:
                    self._learn(task, state)
                    state = None
                    bar.update(1)
                bar.close()
        finally:
            self._checkpointer = None
        if checkpointer is not None:
            self.fit_seconds_ = checkpointer.elapsed_seconds()
            self.checkpoint_stats_ = {"written": checkpointer.written,
                                      "write_seconds": checkpointer.write_seconds}

    @classmethod
    def resume(cls, directory: str | Path, tasks: Iterable[Task] | None = None,
               callbacks: Sequence[Any] = (), progress: bool = True) -> "HyperCL":
        """Continue the run checkpointed in ``directory`` (by ``fit(checkpoint_dir=...)``
        or ``python -m hnviz train``) from its newest complete checkpoint to the end of its
        task sequence, writing further checkpoints as before; returns the fitted learner.

        ``tasks``: the run's whole task sequence; by default rebuilt from the benchmark
        spec saved in the checkpoint. On CPU the result is bit for bit that of an
        uninterrupted run. ``resumed_from_`` says where it continued, ``fit_seconds_``
        the training seconds of all sessions together."""
        with run_lock(directory):
            clean_temporaries(directory)
            ck = latest_checkpoint(directory)
            if ck is None:
                raise ValueError(f"{directory} has no checkpoint to resume from (no complete "
                                 f"file in {checkpoint_dir(directory)}); start the run with "
                                 "fit(tasks, checkpoint_dir=...) or without --resume")
            spec = ck.info.get("benchmark")
            if tasks is None:
                if spec is None:
                    raise ValueError(f"{ck.where.path} has no benchmark spec (the run was "
                                     "trained on custom tasks); pass tasks=... to resume it")
                tasks = from_spec(spec)
            spec = getattr(tasks, "spec", spec)
            tasks = task_list(tasks)
            learner, state = restore(cls, ck, tasks, progress, callbacks)
            learner.resumed_from_ = {"tasks_done": ck.where.tasks_done, "step": ck.where.step,
                                     "checkpoint": str(ck.where.path)}
            checkpointer = Checkpointer(directory, tasks, ck.info["checkpoint_every"],
                                        ck.info["keep"], spec, ck.info["elapsed_seconds"])
            learner._fit_from(tasks, ck.where.tasks_done, state, checkpointer)
        return learner

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.hnet_.named_parameters()}

    @torch.no_grad()
    def _load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        for n, p in self.hnet_.named_parameters():
            p.copy_(state[n])

    # ---------------------------------------------------------------- inference
    def _check_emb(self, emb: Any) -> torch.Tensor:
        E = self.config.emb_dim
        emb = as_float_tensor(emb, "embedding", f"(E,) or (B, E) with E = emb_dim = {E}")
        if emb.dim() not in (1, 2) or emb.shape[-1] != E:
            raise ValueError(f"embedding of shape {tuple(emb.shape)} does not fit: pass (E,) or "
                             f"(B, E) with E = emb_dim = {E}")
        return emb

    @torch.no_grad()
    def generate_weights(self, emb: Any) -> torch.Tensor:
        """Target weights for embeddings: ``(E,)`` -> ``(P,)``, ``(B, E)`` -> ``(B, P)``."""
        self._check_fitted()
        emb = self._check_emb(emb)
        return self.hnet_(emb[None])[0] if emb.dim() == 1 else self.hnet_(emb)

    @torch.no_grad()
    def predict_with_embedding(self, x: Any, emb: Any, head: int | None = None) -> torch.Tensor:
        """Raw outputs of the net generated from ``emb``.

        x ``(N, D)``; emb ``(E,)`` -> ``(N, out)``, or ``(B, E)`` -> ``(B, N, out)`` in one
        vmapped pass. ``head`` picks the output head of a multi-head net (default 0).
        """
        weights = self.generate_weights(emb)
        x = self._check_x(x)
        if head is not None:
            head = self._check_task_id(head)
        return self.target_(x, weights, self._head(head or 0))

    @torch.no_grad()
    def predict_output(self, x: Any, task_id: int) -> torch.Tensor:
        """Raw outputs ``(N, out)`` (regression values or logits) of task ``task_id``'s net."""
        task_id = self._check_task_id(task_id)
        return self.target_(self._check_x(x), self.generate_weights(self.embeddings_[task_id]),
                            self._head(task_id))

    # ------------------------------------------------- task inference (HNET+ENT)
    @torch.no_grad()
    def task_outputs(self, x: Any, chunk: int = 4096) -> torch.Tensor:
        """Outputs of every learned task's net on ``x``: ``(T, N, out)``, one vmapped pass
        per chunk of ``chunk`` inputs; task t's own head in a multi-head net."""
        self._check_fitted()
        x = self._check_x(x)
        weights = self.generate_weights(self.embeddings_)  # (T, P)
        outs = torch.cat([self.target_(xc, weights, None) for xc in x.split(chunk)], dim=1)
        T, heads = self.n_tasks_, self.target_.n_heads
        if heads > 1:  # (T, N, heads, out) -> task t's head
            outs = outs.reshape(T, len(x), heads, -1)[torch.arange(T), :, torch.arange(T)]
        return outs

    def _entropy_inference(self, x: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inferred task ids ``(N,)``, entropies ``(T, N)`` and the outputs ``(T, N, out)``."""
        outs = self.task_outputs(x)
        logp = torch.log_softmax(outs / self.config.ent_temperature, dim=-1)
        entropy = -(logp.exp() * logp).sum(-1)  # (T, N)
        return entropy.argmin(0), entropy, outs

    def infer_task(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Task inference by predictive entropy: the task whose net is most certain.

        Returns the inferred task ids ``(N,)`` and the entropies ``(T, N)`` of the
        softmax at temperature ``config.ent_temperature``.
        """
        t_hat, entropy, _ = self._entropy_inference(x)
        return t_hat, entropy

    @torch.no_grad()
    def predict_agnostic(self, x: Any, scenario: str) -> torch.Tensor:
        """Labels ``(N,)`` without a task id: infer the task (entropy), then use its net;
        cl3 adds the inferred task's class offset (global classes)."""
        t_hat, _, outs = self._entropy_inference(x)
        local = outs[t_hat, torch.arange(outs.shape[1])].argmax(-1)
        if scenario != "cl3":
            return local
        offsets = torch.tensor([info.get("class_offset", 0) for info in self.task_info_])
        return local + offsets[t_hat]

    def task_inference_accuracy(self, task: Task) -> float:
        """Percent of ``task``'s test inputs whose task is inferred correctly."""
        return float((self.infer_task(task.x_test)[0] == task.task_id).float().mean() * 100)

    def _update_matrix(self) -> None:
        super()._update_matrix()
        if self.tasks_[0].kind == "classification" and self.tasks_[0].scenario != "cl1":
            self.inference_matrix_ = self._grown(
                self.inference_matrix_, [self.task_inference_accuracy(t) for t in self.tasks_])

    def summary(self) -> dict[str, Any]:
        """Metrics of ``matrix_`` (and of ``inference_matrix_`` in cl2/cl3)."""
        out = super().summary()
        if self.inference_matrix_.size:
            out["task_inference"] = metrics.summary(self.inference_matrix_, "accuracy")
        return out

    def save(self, directory: str | Path, **extra: Any) -> Path:
        """Write a run directory (safetensors + JSON); see :func:`hnviz.runs.save_run`."""
        from .runs import save_run

        return save_run(self, directory, **extra)
