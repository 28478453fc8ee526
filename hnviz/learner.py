"""``HyperCL``: a hypernetwork continual learner with scikit-learn conventions."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .base import ContinualLearner
from .benchmarks import Task
from .config import HyperCLConfig
from .hnets import HyperNet, build_hnet
from .regularizer import RegTargets
from .targets import TargetNet, build_target
from .train import Callback, StepState, fit_task


class HyperCL(ContinualLearner):
    """Continual learning with a task-conditioned hypernetwork (von Oswald et al. 2020).

    ``partial_fit(task)`` learns the next task; ``fit(tasks)`` learns a whole sequence
    from scratch. Fitted attributes: ``target_`` (:class:`TargetNet`), ``hnet_``,
    ``embeddings_`` ``(T, E)``, ``history_`` (per task: ``task_loss``/``reg_loss`` per step
    and ``emb_trajectory``), ``matrix_`` R ``(T, T)`` with NaN for unseen, ``task_info_``.
    """

    def __init__(self, config: HyperCLConfig | str | None = None, random_state: int | None = 0,
                 progress: bool = True, callbacks: Sequence[Callback] = ()):
        if isinstance(config, str):
            config = HyperCLConfig.preset(config)
        if config is not None and not isinstance(config, HyperCLConfig):
            raise TypeError(f"config must be a HyperCLConfig or a preset name, got {type(config).__name__}")
        self.config = config or HyperCLConfig()
        self.random_state, self.progress, self.callbacks = random_state, progress, list(callbacks)
        self._reset()

    def _reset(self) -> None:
        self.target_: TargetNet | None = None
        self.hnet_: HyperNet | None = None
        self.embeddings_ = torch.zeros(0, self.config.emb_dim)
        self.history_: list[dict[str, np.ndarray]] = []
        self.matrix_ = np.zeros((0, 0))
        self.task_info_: list[dict[str, Any]] = []
        self.tasks_: list[Task] = []  # test data for the accuracy matrix (never trained on)

    def __repr__(self) -> str:
        return f"HyperCL(tasks={self.n_tasks_}, config={self.config!r})"

    @property
    def n_tasks_(self) -> int:
        return int(self.embeddings_.shape[0])

    # ----------------------------------------------------------------- building
    def _build(self, in_features: int, n_outputs: int, n_heads: int,
               in_shape: tuple[int, ...]) -> None:
        """Create ``target_`` and ``hnet_`` (seeded by ``random_state``) and the RNG."""
        cfg, seed = self.config, self.random_state
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            self.target_ = build_target(cfg.target, in_features, n_outputs, cfg.target_hidden,
                                        cfg.target_activation, n_heads, in_shape)
            self.hnet_ = build_hnet(cfg.hnet, cfg.emb_dim, self.target_.num_params, cfg.hnet_hidden,
                                    cfg.hnet_activation, cfg.chunk_size, cfg.chunk_emb_dim,
                                    cfg.hnet_init)
        self.in_shape_ = tuple(in_shape)
        self.gen_ = torch.Generator()
        self.gen_.manual_seed(seed if seed is not None else int(torch.seed() % 2**63))

    # ----------------------------------------------------------------- training
    def partial_fit(self, task: Task) -> "HyperCL":
        """Learn ``task`` (the next one in the sequence) and update ``matrix_``."""
        self._check_task(task)
        if self.target_ is None:
            self._build(task.in_features, task.n_outputs,
                        task.n_tasks if self.config.multi_head else 1, task.in_shape)
        cfg = self.config
        if cfg.emb_init == "copy_previous" and self.n_tasks_ > 0:
            init = self.embeddings_[-1].clone()
        else:
            init = torch.randn(cfg.emb_dim, generator=self.gen_)
        emb = torch.nn.Parameter(init)
        reg = None
        if self.n_tasks_ > 0 and cfg.beta > 0:
            reg = RegTargets(self.hnet_, self.embeddings_, cfg.reg_targets)
        state = StepState(task, emb, torch.optim.Adam(self.hnet_.parameters(), lr=cfg.lr),
                          torch.optim.Adam([emb], lr=cfg.emb_lr or cfg.lr), reg, self.gen_)
        for cb in self.callbacks:
            cb.on_task_start(self, task)
        history = fit_task(self, state, self.callbacks, self.progress)
        self.embeddings_ = torch.cat([self.embeddings_, emb.detach()[None]])
        self.history_.append(history)
        self.tasks_.append(task)
        self.task_info_.append({"name": task.name, "kind": task.kind, "metric": task.metric,
                                "n_outputs": task.n_outputs, "in_shape": list(task.in_shape)})
        self._update_matrix()
        for cb in self.callbacks:
            cb.on_task_end(self, task.task_id, {"row": self.matrix_[-1].copy()})
        return self

    # ---------------------------------------------------------------- inference
    def _check_emb(self, emb: Any) -> torch.Tensor:
        emb = torch.as_tensor(emb, dtype=torch.float32)
        E = self.config.emb_dim
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

    def save(self, directory: str | Path, **extra: Any) -> Path:
        """Write a run directory (safetensors + JSON); see :func:`hnviz.runs.save_run`."""
        from .runs import save_run

        return save_run(self, directory, **extra)
