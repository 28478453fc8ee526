"""HNET+R (von Oswald et al. 2020): one classifier learns from inputs that a replay
hypernetwork generates for every earlier task (docs/paper.md, "Replay").

The replay side is HNET+TIR's (:class:`hnviz.core.replay_model.ReplayModel` without its task
classifier): a VAE whose decoder weights come from a task-conditioned hypernetwork
protected by the output regularizer, so task k's decoder keeps generating task k's
inputs without storing any. Unlike DGR, the generator never replays to itself. The
classifier (the baselines' net, one shared head, trained directly) learns each task's
data together with ``ceil(B / t)`` inputs decoded from each earlier task's embedding
per batch of B (t earlier tasks, decoders fixed at the task's start), whose targets are
its own copy from the task's start (DGR's distillation, :func:`hnviz.learners.dgr.distill_loss`):

    loss_t = 1/(t+1) * CE(current data) + t/(t+1) * T^2 KL(old / T || new / T)

In cl3 a replayed input's task is known: ``replay_targets="task"`` keeps the old copy's
probabilities on that task's classes only (renormalised); "all" (the default) keeps
every class seen so far, as DGR must. ``current_inputs="reconstructed"`` shows the
classifier the current task as the current VAE reconstructs it, so that sharp against
blurred cannot stand for new against old classes (docs/results.md, "HNET+R", compares
these settings). The replay hypernetwork trains on the same batches, one step per
classifier step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .baselines import BASELINE_PRESETS, BaselineCL
from .config import PRESETS, ConfigMixin
from .dgr import DGR, active_outputs, distill_loss
from ..core.lookahead import adam
from ..core.regularizer import REG_TARGETS
from ..core.replay_model import ReplayModel, ReplayProgress
from .learner_state import StateError
from ..core.targets import ACTIVATIONS, TARGETS
from ..core.tasks import Task
from ..core.train import BatchSampler, run_steps, task_loss
from ..core.vae import sample

REPLAY_TARGETS = ("task", "all")
CURRENT_INPUTS = ("real", "reconstructed")  # what the classifier sees of the current task


@dataclass(frozen=True)
class HNetRConfig(ConfigMixin):
    """HNET+R: the classifier (``target*``, ``lr``, ``n_steps``, ``batch_size``, as a
    :class:`hnviz.BaselineConfig`), distillation at ``distill_temperature`` over
    ``replay_targets`` ("task": the replayed input's own task's classes in cl3; "all"),
    and the replay side as :class:`hnviz.HyperCLConfig` names it (``vae_*``, ``rp_*``,
    ``reg_targets``, ``reg_subset``, ``lookahead``)."""

    target: str = "mlp"
    target_hidden: tuple[int, ...] = (10, 10)
    target_activation: str = "sigmoid"
    multi_head: bool = False
    lr: float = 1e-3
    n_steps: int = 4001
    batch_size: int = 32
    distill_temperature: float = 2.0
    replay_targets: str = "all"
    current_inputs: str = "real"
    vae_latent: int = 20
    vae_hidden: tuple[int, ...] = (400, 400)
    rp_hnet_hidden: tuple[int, ...] = (64, 64)
    rp_chunk_size: int = 4000
    rp_emb_dim: int = 16
    rp_beta: float = 0.005
    rp_lr: float = 1e-3
    reg_targets: str = "stored"
    reg_subset: int | None = None
    lookahead: bool = True
    eval_every: int = 0
    eval_samples: int = 100

    @property
    def method(self) -> str:
        """What the learners' shared code reads to know the method."""
        return HNetR.kind

    def __post_init__(self) -> None:
        self.normalise(
            sizes=("target_hidden", "vae_hidden", "rp_hnet_hidden"),
            choices=(("target", "target network", TARGETS),
                     ("target_activation", "activation", ACTIVATIONS),
                     ("reg_targets", "reg_targets", REG_TARGETS),
                     ("replay_targets", "replay_targets", REPLAY_TARGETS),
                     ("current_inputs", "current_inputs", CURRENT_INPUTS)),
            bools=("multi_head", "lookahead"),
            ints=("batch_size", "vae_latent", "rp_chunk_size", "rp_emb_dim", "eval_samples",
                  "reg_subset"),
            weights=("rp_beta",), reals=("lr", "rp_lr", "distill_temperature"),
            optional=("reg_subset",))

    @classmethod
    def _presets(cls) -> dict[str, "HNetRConfig"]:
        return HNET_R_PRESETS


# Each benchmark's preset: the classifier of the baselines' preset (the same net, steps
# and batch as every other method) and the replay side of HNET+TIR's.
_CLASSIFIER = ("target", "target_hidden", "target_activation", "multi_head", "lr", "n_steps",
               "batch_size")
_REPLAY = ("vae_latent", "vae_hidden", "rp_hnet_hidden", "rp_chunk_size", "rp_emb_dim",
           "rp_beta", "rp_lr", "reg_targets", "reg_subset", "lookahead")
HNET_R_PRESETS: dict[str, HNetRConfig] = {
    name: HNetRConfig(**{k: getattr(BASELINE_PRESETS[name], k) for k in _CLASSIFIER},
                      **{k: getattr(PRESETS[name], k) for k in _REPLAY})
    for name in PRESETS
}
# 28x28 images (docs/results.md, "HNET+R"): a larger replay hypernetwork, and the current
# task shown to the classifier as reconstructed, so that sharp against blurred does not
# stand for new against old classes.
for _name in ("split_mnist_fast", "split_fashion_mnist_fast"):
    HNET_R_PRESETS[_name] = HNET_R_PRESETS[_name].replace(
        rp_hnet_hidden=(200, 200), rp_chunk_size=2000, current_inputs="reconstructed")


class HNetR(BaselineCL):
    """HNET+R; config: a :class:`HNetRConfig` (or one of its presets' names). Fitted
    attributes besides :class:`BaselineCL`'s: ``replay_`` (the replay hypernetwork,
    :class:`hnviz.core.replay_model.ReplayModel` without task classifier)."""

    kind = "hnet_r"
    batch_norm_per_task = False  # its replayed batches mix tasks
    config_class = HNetRConfig

    def __init__(self, config: Any = "split_digits", random_state: int | None = 0,
                 progress: bool = True, callbacks: Any = (), threads: int | str | None = None,
                 device: Any = None):
        if isinstance(config, str):  # a preset: one shared head (cl2/cl3)
            config = self.config_class.preset(config, multi_head=False)
        super().__init__(config, random_state, progress, callbacks, threads, device)
        if self.config.multi_head:
            raise ValueError("HNET+R trains one shared head (multi_head=False, cl2/cl3), got "
                             "multi_head=True")

    def _reset(self) -> None:
        super()._reset()
        self.replay_: ReplayModel | None = None

    def _build_model(self) -> None:
        super()._build_model()
        self.replay_ = ReplayModel(self.config, self.target_.in_features, 1, classifier=False)

    def _to_device(self) -> None:
        super()._to_device()
        self.replay_.to(self.device_)

    @classmethod
    def described_params(cls, config: Any, layout: tuple[Any, ...], n_tasks: int) -> int:
        """The classifier (template, theta) and the replay side with its templates."""
        return 2 * cls.target_params(config, layout) + ReplayModel.count_params(
            config, layout[0], 1, n_tasks, templates=True, classifier=False)

    @property
    def trainable_params_(self) -> int:
        """The classifier's weights and the replay side's (encoder, replay hypernetwork,
        one replay embedding per task)."""
        return self.target_.num_params + ReplayModel.count_params(
            self.config, self.target_.in_features, 1, self.n_tasks_, classifier=False)

    def _partial_fit(self, task: Task) -> None:
        self._begin(task)
        cfg, t = self.config, len(self.task_info_)  # t earlier tasks
        if task.kind != "classification":
            raise ValueError(f"HNET+R needs classification tasks, got {task.kind} task "
                             f"{task.name!r}")
        x, y, _ = self._train_data(task)
        sampler = BatchSampler(len(x), cfg.batch_size, self.gen_)
        head = self.target_.out_features
        active = active_outputs({"scenario": task.scenario, "class_offset": task.class_offset,
                                 "n_outputs": task.n_outputs}, head)
        old = None
        if t:  # the classifier's copy, the outputs it used, the masks of replay_targets
            seen = active_outputs(self.task_info_[-1], head)
            old = (self.theta_.detach().clone(), seen, self._replay_masks(active))
        opt = adam([self.theta_], cfg.lr)
        rp = self.replay_.start(task, self.gen_)
        self._task_started(task)

        def step(_: int) -> dict[str, float]:
            idx = sampler.next()
            logs = self.replay_.step(rp, idx, None)
            out = self._step(opt, self.on_device(x[idx]), self.on_device(y[idx]), rp, old, active)
            return {**out, "rp_loss": logs["rp_loss"], "rp_reg": logs["rp_reg"]}

        history = run_steps(task, cfg.n_steps, step,
                            lambda i, logs: self._stepped(task.task_id, i, logs), self.progress)
        self.replay_.finish(rp)
        self._finish_task(task, history)

    def _replay_masks(self, active: int) -> torch.Tensor | None:
        """Per earlier task, the outputs its replayed inputs may be given ``(t, active)``
        (its own classes in cl3 with ``replay_targets="task"``), or None: every class
        seen before this task."""
        if self.config.replay_targets != "task" or self.task_info_[-1]["scenario"] != "cl3":
            return None
        mask = torch.zeros(len(self.task_info_), active, dtype=torch.bool)
        for k, info in enumerate(self.task_info_):
            mask[k, info["class_offset"]:info["class_offset"] + info["n_outputs"]] = True
        return mask.to(self.device_)

    def _step(self, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
              rp: ReplayProgress, old: tuple[torch.Tensor, int, Any] | None,
              active: int) -> dict[str, float]:
        """One classifier step on the batch ``x`` ``(B, D)``, ``y`` ``(B,)`` and, after the
        first task, ``ceil(B / t)`` inputs decoded from each earlier task's embedding."""
        opt.zero_grad(set_to_none=True)
        if self.config.current_inputs == "reconstructed":
            x = self._reconstructed(x, rp)
        loss = task_loss("classification", self.target_(x, self.theta_)[:, :active], y)
        replay = x.new_zeros(())
        if old is not None:
            theta_old, seen, masks = old
            t = len(rp.old)
            m = math.ceil(len(x) / t)
            fake = sample(self.replay_.decoder, rp.old, m, self.gen_).reshape(t * m, -1)
            mask = None if masks is None else masks.repeat_interleave(m, 0)
            replay = distill_loss(self.target_, self.theta_, theta_old, fake, seen, active,
                                  self.config.distill_temperature, mask)
            w = 1.0 / (t + 1)
            loss = w * loss + (1 - w) * replay
        loss.backward()
        opt.step()
        return {"task_loss": loss.item(), "reg_loss": replay.item()}

    def _reconstructed(self, x: torch.Tensor, rp: ReplayProgress) -> torch.Tensor:
        """The batch ``x`` ``(B, D)`` as the current task's VAE reconstructs it."""
        return self.replay_.reconstruct(x, self.replay_.current_decoder(rp))

    def penalty(self, theta: torch.Tensor | None = None) -> None:
        """None: HNET+R protects the classifier by replay, not by a penalty on weights."""
        return None

    predict_agnostic = DGR.predict_agnostic  # the shared head over the classes seen so far

    # -------------------------------------------------------------------- state
    def _weights(self, clone: bool = True) -> dict[str, torch.Tensor]:
        return {**super()._weights(clone), **self.replay_.weights()}

    def _load_weights(self, weights: dict[str, torch.Tensor], copy: bool = True) -> None:
        super()._load_weights(weights, copy)
        try:
            self.replay_.load_weights(weights, len(self.task_info_))
        except ValueError as e:
            raise StateError(str(e)) from e
