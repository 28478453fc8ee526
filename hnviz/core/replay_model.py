"""HNET+TIR's replay side (docs/paper.md, "Replay"): task inference learned from replay.

- A VAE whose *decoder* weights come from a second task-conditioned hypernetwork, the
  replay hypernetwork, regularized exactly like the main one (the same
  :class:`hnviz.core.regularizer.RegTargets` and :func:`hnviz.core.train.train_step`): it keeps
  generating every earlier task's images without storing any. The encoder is a plain
  MLP, used only while a task trains.
- A task-inference classifier: an MLP body and one output unit per task *and class*
  (C rows per task, grown at each task); the task is the group of units with the most
  probability. It learns from the current task's data (unit t*C + label; as they are,
  or with ``tir_current="reconstructed"`` as the VAE reconstructs them), samples of the
  current decoder, and samples decoded from every earlier task's embedding (the earlier
  decoders taken from theta* of the replay hypernetwork, fixed during the task). A
  generated image of task k is labelled "task k" for sure and, within the task, with the
  class probabilities that task k's own net (from the main hypernetwork, protected by its
  regularizer) gives it. On 28x28 images, real images of the current task next to
  blurred replays let "looks real" stand for "the newest task"; reconstructions take
  that cue away (docs/results.md, "Class-incremental learning").

Both train in lockstep with the main hypernetwork, on its batches: one step of each per
main step. At test time the classifier names the task and the main hypernetwork's net
for that task answers (:meth:`hnviz.HyperCL.predict_agnostic`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .hnets import build_hnet, count_params as count_hnet_params
from .lookahead import adam
from .regularizer import RegTargets
from .targets import build_target, count_params as count_target_params
from .tasks import Task
from .train import StepRule, StepState, load_step_state, step_state_tensors, train_step
from .vae import build_decoder, build_encoder, decoder_params, encoder_params, sample, vae_loss

REPLAY_LOGS = ("rp_loss", "rp_reg", "tir_loss")  # step logs the replay side adds
# class probabilities (n, C) of inputs (n, D) under the main nets of task ids (n,)
ClassProbs = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ReplayProgress:
    """The replay side of a task in progress: the replay hypernetwork's step state (its
    loss is the VAE's), the classifier's optimizer (None for the first task, which has
    nothing to tell apart) and the earlier tasks' decoder weights ``(t, P_dec)``."""

    state: StepState
    tir_opt: torch.optim.Adam | None
    old: torch.Tensor


class ReplayModel:
    """The replay hypernetwork with its decoder template, the encoder, the replay task
    embeddings ``embeddings`` ``(T, E_r)`` and the task-inference classifier
    (``tir_body`` ``(P_body,)`` flat weights of an MLP ``D -> tir_hidden``, ``tir_heads``
    ``(T * C, H + 1)`` one output row per task and class). ``config``: a
    :class:`hnviz.HyperCLConfig`; ``n_classes``: C, the classes of one task.
    ``classifier=False``: the replay hypernetwork alone (HNET+R replays to its own
    classifier): no task-inference classifier, and the config needs no ``tir_*`` fields."""

    def __init__(self, config: Any, in_features: int, n_classes: int, classifier: bool = True):
        c = config
        self.config, self.C, self.classifier = c, n_classes, classifier
        self.encoder = build_encoder(in_features, c.vae_hidden, c.vae_latent)
        self.decoder = build_decoder(c.vae_latent, c.vae_hidden, in_features)
        self.hnet = build_hnet("chunked", c.rp_emb_dim, self.decoder.num_params,
                               c.rp_hnet_hidden, "relu", c.rp_chunk_size, c.rp_emb_dim)
        self.embeddings = torch.zeros(0, c.rp_emb_dim)
        self.tir, self.tir_body, self.tir_heads = None, None, torch.zeros(0, 1)
        if classifier:
            body = c.tir_hidden
            self.tir = build_target("mlp", in_features, body[-1], body[:-1], "relu")
            self.tir_body = nn.Parameter(self.tir.flatten_module().clone())
            self.tir_heads = torch.zeros(0, body[-1] + 1)
        self.device = torch.device("cpu")  # of the networks; embeddings stay on the CPU

    def to(self, device: torch.device) -> "ReplayModel":
        """Move the networks and the classifier to ``device``."""
        self.device = torch.device(device)
        for module in (self.encoder, self.decoder, self.hnet, self.tir):
            if module is not None:
                module.to(self.device)
        if self.classifier:
            self.tir_body = nn.Parameter(self.tir_body.detach().to(self.device))
        self.tir_heads = self.tir_heads.to(self.device)
        return self

    @staticmethod
    def count_params(config: Any, in_features: int, n_classes: int, n_tasks: int,
                     templates: bool = False, classifier: bool = True) -> int:
        """Trained numbers of the replay side after ``n_tasks`` tasks (encoder, replay
        hypernetwork, replay embeddings, classifier unless not ``classifier``), by
        arithmetic alone; with ``templates`` also the templates' own weights."""
        c, tir, heads = config, 0, 0
        dec = decoder_params(c.vae_latent, c.vae_hidden, in_features)
        if classifier:
            body = c.tir_hidden
            tir = count_target_params("mlp", in_features, body[-1], body[:-1])
            heads = n_classes * (body[-1] + 1)
        return (encoder_params(in_features, c.vae_hidden, c.vae_latent)
                + count_hnet_params("chunked", c.rp_emb_dim, dec, c.rp_hnet_hidden,
                                    c.rp_chunk_size, c.rp_emb_dim)
                + n_tasks * (c.rp_emb_dim + heads) + tir
                + (dec + tir if templates else 0))

    # ----------------------------------------------------------------- training
    def rule(self) -> StepRule:
        return StepRule(self.config.rp_beta, self.config.lookahead, self.config.reg_subset)

    def start(self, task: Task, gen: torch.Generator,
              saved: tuple[torch.Tensor, dict[str, torch.Tensor] | None] | None = None
              ) -> ReplayProgress:
        """The replay side of ``task`` at its start: a new replay embedding drawn from
        ``gen`` (or the ``saved`` embedding and theta* of a task in progress), the
        optimizers, theta* and the earlier decoders, a new classifier row."""
        c, t = self.config, task.task_id
        dev = self.device
        if saved is None:
            emb, theta_star = torch.randn(c.rp_emb_dim, generator=gen), None
        else:
            emb, theta_star = saved[0].clone(), saved[1]
            if theta_star is not None:
                theta_star = {n: v.to(dev) for n, v in theta_star.items()}
        emb = nn.Parameter(emb.to(dev))
        reg = None
        embs = self.embeddings.to(dev)
        if t > 0 and c.rp_beta > 0:
            reg = RegTargets(self.hnet, embs, c.reg_targets, theta_star)
        with torch.no_grad():
            old = reg() if reg is not None else self.hnet(embs)  # (t, P_dec)

        def loss(weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            # per pixel: on the scale of a classifier's loss, so that rp_beta weighs the
            # regularizer as beta does for the main hypernetwork
            return vae_loss(x, self.encoder, self.decoder, weights, gen) / x.shape[1]

        state = StepState(task, emb, adam(self.hnet.parameters(), c.rp_lr),
                          adam([emb], c.rp_lr), reg, gen, loss=loss,
                          extra_opts=(adam(self.encoder.parameters(), c.rp_lr),))
        tir_opt = None
        if self.classifier:
            rows = self.tir_heads.detach()[:t * self.C]
            self.tir_heads = nn.Parameter(torch.cat([rows, rows.new_zeros(self.C, rows.shape[1])]))
            if t > 0:
                tir_opt = adam([self.tir_body, self.tir_heads], c.tir_lr)
        return ReplayProgress(state, tir_opt, old)

    def step(self, p: ReplayProgress, idx: torch.Tensor, class_probs: ClassProbs
             ) -> dict[str, float]:
        """One step of the VAE (through the replay hypernetwork) and of the classifier
        on the main step's batch ``idx`` ``(B,)``; ``class_probs`` labels generated
        images within their task. Returns the losses."""
        logs = train_step(self.hnet, self.decoder, p.state, idx, self.rule())
        out = {"rp_loss": logs["task_loss"], "rp_reg": logs["reg_loss"], "tir_loss": 0.0}
        if p.tir_opt is not None:
            task = p.state.task
            out["tir_loss"] = self._tir_step(p, task.x_train[idx].to(self.device),
                                             task.y_train[idx].to(self.device), class_probs)
        return out

    def _tir_step(self, p: ReplayProgress, x: torch.Tensor, y: torch.Tensor,
                  class_probs: ClassProbs) -> float:
        """Classifier step on the batch ``x`` ``(B, D)``, ``y`` ``(B,)`` of task t (or its
        reconstructions, ``tir_current``), B samples of the current decoder and ceil(B / t)
        replayed images of each earlier task; the current and replayed parts weigh by the
        tasks they stand for."""
        t, gen, C = len(p.old), p.state.gen, self.C
        m = math.ceil(len(x) / t)
        fake = sample(self.decoder, p.old, m, gen).reshape(t * m, -1)  # (t*m, D)
        fake_task = torch.arange(t, device=x.device).repeat_interleave(m)
        with torch.no_grad():
            w = self.current_decoder(p)
            now = sample(self.decoder, w, len(x), gen)  # (B, D)
            if self.config.tir_current == "reconstructed":
                x = self.reconstruct(x, w)
            now_task = torch.full((len(x),), t, device=x.device)
            targets = [self._unit_targets(class_probs(z, k), k, t + 1)
                       for z, k in ((now, now_task), (fake, fake_task))]
        p.tir_opt.zero_grad(set_to_none=True)
        current = (F.cross_entropy(self.tir_logits(x), t * C + y)
                   + F.cross_entropy(self.tir_logits(now), targets[0])) / 2
        replayed = F.cross_entropy(self.tir_logits(fake), targets[1])  # soft targets
        loss = (current + t * replayed) / (t + 1)
        loss.backward()
        p.tir_opt.step()
        return loss.item()

    @torch.no_grad()
    def current_decoder(self, p: ReplayProgress) -> torch.Tensor:
        """The decoder weights ``(P_dec,)`` of the task in progress ``p``, as the replay
        hypernetwork generates them now."""
        return self.hnet(p.state.emb[None])[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Inputs ``x`` ``(B, D)`` as the VAE with decoder weights ``w`` ``(P_dec,)``
        reconstructs them: the encoder's mean, decoded."""
        return torch.sigmoid(self.decoder(self.encoder(x).chunk(2, dim=-1)[0], w))

    def _unit_targets(self, probs: torch.Tensor, tasks: torch.Tensor, n_tasks: int
                      ) -> torch.Tensor:
        """Targets ``(n, n_tasks * C)``: each row's class probabilities ``(n, C)`` in the
        units of its task ``tasks`` ``(n,)``, zero elsewhere."""
        out = probs.new_zeros(len(probs), n_tasks, self.C)
        out[torch.arange(len(probs), device=probs.device), tasks] = probs
        return out.reshape(len(probs), -1)

    def finish(self, p: ReplayProgress) -> None:
        """Keep the task's replay embedding; the classifier's rows stay as trained."""
        self.embeddings = torch.cat([self.embeddings, p.state.emb.detach().cpu()[None]])
        self.tir_heads = self.tir_heads.detach()

    # ---------------------------------------------------------------- inference
    def tir_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, T * C)`` of inputs ``(N, D)``, one per task and class (the tasks
        learned and the one in progress)."""
        h = F.relu(self.tir(x, self.tir_body))  # (N, H)
        return h @ self.tir_heads[:, :-1].T + self.tir_heads[:, -1]

    @torch.no_grad()
    def task_probs(self, x: torch.Tensor, n_tasks: int) -> torch.Tensor:
        """The classifier's probability of each of the first ``n_tasks`` tasks ``(N, n_tasks)``
        (its units' softmax summed over each task's classes)."""
        p = torch.softmax(self.tir_logits(x.to(self.device))[:, :n_tasks * self.C], dim=-1)
        return p.reshape(len(x), n_tasks, self.C).sum(-1).cpu()

    def infer(self, x: torch.Tensor, n_tasks: int) -> torch.Tensor:
        """The task the classifier names for each input ``(N, D)``: ``(N,)`` in
        0..n_tasks-1 (on the CPU)."""
        return self.task_probs(x, n_tasks).argmax(-1)

    @torch.no_grad()
    def generate(self, emb: torch.Tensor, n: int, gen: torch.Generator,
                 latent: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(B, n, D)`` decoded from replay embeddings ``(B, E_r)`` (all B from one
        latent batch ``(n, L)``, drawn from ``gen`` unless given); on the CPU."""
        latent = None if latent is None else latent.to(self.device)
        return sample(self.decoder, self.hnet(emb.to(self.device)), n, gen, latent).cpu()

    # -------------------------------------------------------------------- state
    def weights(self) -> dict[str, torch.Tensor]:
        """Copies of the replay side's trained tensors, by name."""
        out = {f"rp.hnet.{n}": p.detach().clone() for n, p in self.hnet.named_parameters()}
        out.update({f"rp.encoder.{n}": p.detach().clone()
                    for n, p in self.encoder.named_parameters()})
        out["rp.embeddings"] = self.embeddings.clone()
        if self.classifier:
            out["tir.body"] = self.tir_body.detach().clone()
            out["tir.heads"] = self.tir_heads.detach()[:len(self.embeddings) * self.C].clone()
        return out

    def load_weights(self, weights: dict[str, torch.Tensor], n_tasks: int) -> None:
        """Put saved tensors in place (copies); a ValueError says what does not fit."""
        for prefix, module in (("rp.hnet.", self.hnet), ("rp.encoder.", self.encoder)):
            own = {k[len(prefix):]: v.clone() for k, v in weights.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(own, strict=True)
            except RuntimeError as e:
                raise ValueError(f"holds replay tensors that do not fit ({e})") from e
        want = {"rp.embeddings": (n_tasks, self.config.rp_emb_dim)}
        if self.classifier:
            want.update({"tir.body": tuple(self.tir_body.shape),
                         "tir.heads": (n_tasks * self.C, self.tir_heads.shape[1])})
        for name, shape in want.items():
            if name not in weights or tuple(weights[name].shape) != shape:
                got = tuple(weights[name].shape) if name in weights else "nothing"
                raise ValueError(f"holds {name} of shape {got}, expected {shape}")
        self.embeddings = weights["rp.embeddings"].cpu().clone()
        if self.classifier:
            self.tir_body = nn.Parameter(weights["tir.body"].to(self.device, copy=True))
            self.tir_heads = weights["tir.heads"].to(self.device, copy=True)

    def progress_tensors(self, p: ReplayProgress) -> dict[str, torch.Tensor]:
        """What continuing ``p`` needs besides the weights: ``rp.``-named step state
        (embedding, Adam moments, theta*) and the classifier's Adam (``tir.opt.*``)."""
        out = step_state_tensors(p.state, "rp.")
        out["tir.heads.current"] = self.tir_heads.detach().clone()
        if p.tir_opt is not None:
            for i, param in enumerate((self.tir_body, self.tir_heads)):
                for key, value in p.tir_opt.state.get(param, {}).items():
                    out[f"tir.opt.{i}.{key}"] = torch.as_tensor(value).detach().clone()
        return out

    def restore(self, task: Task, gen: torch.Generator, tensor: Any, step: int,
                batch_size: int) -> ReplayProgress:
        """The replay side of ``task`` after ``step`` steps, from the tensors of
        :meth:`progress_tensors` (``tensor(name)`` returns one)."""
        star = None
        if task.task_id > 0 and self.config.rp_beta > 0:
            star = {n: tensor(f"rp.theta_star.{n}") for n, _ in self.hnet.named_parameters()}
        emb = tensor("rp.task.emb")
        if emb.shape != (self.config.rp_emb_dim,):
            raise ValueError(f"rp.task.emb has shape {tuple(emb.shape)}, expected "
                             f"({self.config.rp_emb_dim},)")
        p = self.start(task, gen, (emb, star))
        load_step_state(p.state, tensor, step, None, batch_size, log_keys=(), prefix="rp.")
        heads = tensor("tir.heads.current")
        if heads.shape != self.tir_heads.shape:
            raise ValueError(f"tir.heads.current has shape {tuple(heads.shape)}, expected "
                             f"{tuple(self.tir_heads.shape)}")
        with torch.no_grad():
            self.tir_heads.copy_(heads)
        if p.tir_opt is not None:
            state = {i: {k: tensor(f"tir.opt.{i}.{k}").clone()
                         for k in ("step", "exp_avg", "exp_avg_sq")} for i in (0, 1)}
            groups = p.tir_opt.state_dict()["param_groups"]
            p.tir_opt.load_state_dict({"state": state, "param_groups": groups})
        return p
