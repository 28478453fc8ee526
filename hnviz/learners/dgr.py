"""Deep generative replay with distillation (DGR+distill: Shin et al. 2017; van de Ven &
Tolias 2019), the paper's main comparison in cl2/cl3 (docs/paper.md, "Replay").

One plain VAE (no hypernetwork) learns to generate every task so far by replaying its
own earlier samples to itself; one classifier (the baselines' net, a shared head) learns
each task's data together with inputs replayed from that VAE, whose targets are the
previous classifier's softened outputs. Both copies are taken at the task's start:

    loss_t = 1/t' * loss(current data) + (1 - 1/t') * loss(replay),   t' = tasks so far

with the classifier's replay loss T^2 * KL(softmax(old / T) || softmax(new / T)) over the
classes in use (the old net's probabilities, none on the classes new in this task;
``distill_temperature`` T), and its data loss over the classes seen so far (cl3) or the
shared head (cl2).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .baselines import BaselineCL
from ..core.lookahead import adam
from .learner_state import StateError
from ..core.tasks import Task
from ..core.train import BatchSampler, run_steps, task_loss
from ..core.vae import (build_decoder, build_encoder, decoder_params, encoder_params, sample,
                        vae_loss)


def active_outputs(info: dict[str, Any], head_size: int) -> int:
    """Outputs of a shared head ``head_size`` in use once the task of record ``info`` (an
    entry of ``task_info_``, or the same keys of a task) trains: the classes seen so far
    in cl3, the whole head in cl2."""
    if info["scenario"] == "cl3":
        return info["class_offset"] + info["n_outputs"]
    return head_size


def distill_loss(target: Any, theta: torch.Tensor, theta_old: torch.Tensor,
                 fake: torch.Tensor, seen: int, active: int, T: float,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 * KL(softmax(old / T) || softmax(new / T)) of the classifier ``target`` at
    ``theta`` against its copy ``theta_old`` on replayed inputs ``fake`` ``(n, D)``, over
    the ``active`` outputs in use (the old net's ``seen`` ones; none on the newer). With
    ``mask`` ``(n, active)``: the old probabilities within the outputs it allows for each
    input (renormalised), e.g. the classes of the task an input was replayed from."""
    with torch.no_grad():
        old = target(fake, theta_old)
        if mask is None:
            soft = torch.softmax(old[:, :seen] / T, dim=-1)
            soft = F.pad(soft, (0, active - seen))  # no mass on the classes new in this task
        else:
            soft = torch.softmax((old[:, :active] / T).masked_fill(~mask, float("-inf")), -1)
    logp = torch.log_softmax(target(fake, theta)[:, :active] / T, dim=-1)
    return T * T * F.kl_div(logp, soft, reduction="batchmean")


class DGR(BaselineCL):
    """Generative replay with distillation; config: a :class:`hnviz.BaselineConfig` with
    ``method="dgr"``. Fitted attributes besides :class:`BaselineCL`'s: ``encoder_`` (the
    VAE's encoder), ``decoder_theta_`` ``(P_dec,)`` (its decoder's weights), ``decoder_``
    (the decoder template)."""

    kind = "dgr"
    batch_norm_per_task = False  # its replayed batches mix tasks

    def __init__(self, config: Any = "split_digits", random_state: int | None = 0,
                 progress: bool = True, callbacks: Any = (), threads: int | str | None = None,
                 device: Any = None):
        if isinstance(config, str):
            config = self.config_class.preset(config, method="dgr", multi_head=False)
        super().__init__(config, random_state, progress, callbacks, threads, device)
        if self.config.method != "dgr" or self.config.multi_head:
            raise ValueError(f"DGR needs method='dgr' and one shared head (multi_head=False, "
                             f"cl2/cl3), got method={self.config.method!r}, multi_head="
                             f"{self.config.multi_head}")

    def _build_model(self) -> None:
        super()._build_model()
        cfg, D = self.config, self.target_.in_features
        self.encoder_ = build_encoder(D, cfg.vae_hidden, cfg.vae_latent)
        self.decoder_ = build_decoder(cfg.vae_latent, cfg.vae_hidden, D)
        self.decoder_theta_ = torch.nn.Parameter(self.decoder_.flatten_module().clone())

    def _to_device(self) -> None:
        super()._to_device()
        self.encoder_.to(self.device_)
        self.decoder_.to(self.device_)
        self.decoder_theta_ = torch.nn.Parameter(self.decoder_theta_.detach().to(self.device_))

    @classmethod
    def described_params(cls, config: Any, layout: tuple[Any, ...], n_tasks: int) -> int:
        """The classifier (template, theta) and the VAE (encoder, decoder and template)."""
        D, c = layout[0], config
        vae = encoder_params(D, c.vae_hidden, c.vae_latent) + \
            2 * decoder_params(c.vae_latent, c.vae_hidden, D)
        return 2 * cls.target_params(config, layout) + vae

    @property
    def trainable_params_(self) -> int:
        """The classifier's and the VAE's weights."""
        return (self.target_.num_params + self.decoder_.num_params
                + sum(p.numel() for p in self.encoder_.parameters()))

    def _active(self, info: dict[str, Any]) -> int:
        return active_outputs(info, self.target_.out_features)

    def _partial_fit(self, task: Task) -> None:
        self._begin(task)
        cfg, t = self.config, len(self.task_info_)  # t earlier tasks
        if task.kind != "classification":
            raise ValueError(f"DGR needs classification tasks, got {task.kind} task {task.name!r}")
        x, y, _ = self._train_data(task)
        sampler = BatchSampler(len(x), cfg.batch_size, self.gen_)
        old = (self.theta_.detach().clone(), self.decoder_theta_.detach().clone(),
               self._active(self.task_info_[-1])) if t else None
        opt = adam([self.theta_], cfg.lr)
        vae_opt = adam([*self.encoder_.parameters(), self.decoder_theta_], cfg.lr)
        active = self._active({"scenario": task.scenario, "class_offset": task.class_offset,
                               "n_outputs": task.n_outputs})
        self._task_started(task)

        def step(_: int) -> dict[str, float]:
            idx = sampler.next()
            return self._step(opt, vae_opt, self.on_device(x[idx]), self.on_device(y[idx]), old,
                              active, t)

        history = run_steps(task, cfg.n_steps, step,
                            lambda i, logs: self._stepped(task.task_id, i, logs), self.progress)
        self._finish_task(task, history)

    def _step(self, opt: torch.optim.Optimizer, vae_opt: torch.optim.Optimizer,
              x: torch.Tensor, y: torch.Tensor, old: tuple[Any, ...] | None, active: int,
              t: int) -> dict[str, float]:
        """One step of the classifier and of the VAE on the batch ``x`` ``(B, D)``, ``y``
        ``(B,)`` and (after the first task) as many inputs replayed from the old VAE."""
        for o in (opt, vae_opt):
            o.zero_grad(set_to_none=True)
        cls_loss = task_loss("classification", self.target_(x, self.theta_)[:, :active], y)
        gen_loss = vae_loss(x, self.encoder_, self.decoder_, self.decoder_theta_, self.gen_)
        replay = x.new_zeros(())
        if old is not None:
            theta_old, dec_old, seen = old
            fake = sample(self.decoder_, dec_old, len(x), self.gen_)  # (B, D)
            replay = distill_loss(self.target_, self.theta_, theta_old, fake, seen, active,
                                  self.config.distill_temperature)
            w = 1.0 / (t + 1)
            cls_loss = w * cls_loss + (1 - w) * replay
            gen_loss = w * gen_loss + (1 - w) * vae_loss(fake, self.encoder_, self.decoder_,
                                                         self.decoder_theta_, self.gen_)
        (cls_loss + gen_loss).backward()
        opt.step()
        vae_opt.step()
        return {"task_loss": cls_loss.item(), "reg_loss": replay.item(),
                "vae_loss": gen_loss.item()}

    @torch.no_grad()
    def predict_agnostic(self, x: Any, scenario: str) -> torch.Tensor:
        """Labels ``(N,)`` from the shared head, over the classes seen so far (cl3)."""
        self.check_fitted()
        out = self.predict_output(x, 0)
        if scenario == "cl3":
            out = out[:, :active_outputs(self.task_info_[-1], self.target_.out_features)]
        return out.argmax(-1)

    # -------------------------------------------------------------------- state
    def _weights(self, clone: bool = True) -> dict[str, torch.Tensor]:
        out = super()._weights(clone)
        out.update({f"vae.encoder.{n}": p.detach().clone()
                    for n, p in self.encoder_.named_parameters()})
        out["vae.decoder"] = self.decoder_theta_.detach().clone()
        return out

    def _load_weights(self, weights: dict[str, torch.Tensor], copy: bool = True) -> None:
        super()._load_weights(weights, copy)
        enc = {k[len("vae.encoder."):]: v.clone() for k, v in weights.items()
               if k.startswith("vae.encoder.")}
        try:
            self.encoder_.load_state_dict(enc, strict=True)
        except RuntimeError as e:
            raise StateError(f"holds a VAE encoder that does not fit its config: {e}") from e
        dec = weights.get("vae.decoder")
        if dec is None or dec.shape != (self.decoder_.num_params,):
            got = "none" if dec is None else tuple(dec.shape)
            raise StateError(f"holds a VAE decoder of shape {got}, expected "
                             f"({self.decoder_.num_params},)")
        self.decoder_theta_ = torch.nn.Parameter(dec.to(self.device_, copy=True))
