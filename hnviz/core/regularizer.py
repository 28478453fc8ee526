"""The output regularizer (docs/paper.md, "The loss"); the Adam lookahead is in
:mod:`hnviz.core.lookahead`.

    reg = 1/|S| sum_{t in S} || h(e_t, theta + dtheta) - W*_t ||^2

Two exact ways to compute it, both batched over all t in S:

- :func:`output_regularizer`: form the generated weights ``(S, P)`` and subtract.
- :func:`gram_regularizer`: when ``W*_t = h(e_t, theta*)`` for a snapshot theta* of the
  same hypernetwork (always so in hnviz: the targets are fixed at the start of a task), the
  output layer's part is expanded over Gram matrices of its inputs, so the P-sized outputs
  are never formed. With the output layer ``A = [W | b]`` ``(C, H+1)``, its inputs
  ``x = [z; 1]`` (z the last hidden layer, one row per task and chunk), ``dA = A - A*`` and
  ``d = x - x*``, each chunk's error is ``A x - A* x* = dA x* + A d``, so

      sum ||A x - A* x*||^2 = <dA'dA, X*'X*> + 2 <dA'A, X*'D> + <A'A, D'D>

  three (H+1)^2 contractions of small quantities (no difference of large numbers). Its
  cost is ~ N (H+1)^2 + C (H+1)^2 for N = |S| * chunks rows instead of N H C.

:class:`RegTargets` picks the cheaper of the two for each call, from the number of tasks
it regularizes then (all earlier ones, or a random subset of them per step). What is
constant within a task is computed once: the snapshot's output-layer inputs ``x*`` (the
targets are ``x* A*'``) and ``X*'X*``. The hidden layers' features of every regularized
task and chunk depend on theta and are recomputed each step, so the exact regularizer's
cost still grows with the number of tasks it covers; a subset of k tasks bounds it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .validate import check_choice

Params = dict[str, torch.Tensor]
REG_TARGETS = ("stored", "snapshot")  # how W* is kept: a (T, P) tensor, or theta* alone
GROUP_FLOATS = 2**21  # generated weights per group of tasks in the direct form (8 MiB)


def output_regularizer(hnet: nn.Module, embs: torch.Tensor, targets: torch.Tensor,
                       params: Params | None = None) -> torch.Tensor:
    """Mean over tasks of the squared distance of generated weights to their targets.

    embs: ``(S, E)`` earlier task embeddings; targets: ``(S, P)`` W*; ``params``
    optionally replaces theta (e.g. theta + dtheta). Returns a scalar. Tasks go through
    in groups of at most ``GROUP_FLOATS`` generated weights: temporaries of a size the
    allocator reuses (larger ones come fresh from the OS each step, page by page).
    """
    if embs.shape[0] != targets.shape[0]:
        raise ValueError(f"{embs.shape[0]} embeddings but {targets.shape[0]} targets")
    group = max(1, GROUP_FLOATS // max(1, targets.shape[1]))
    total = embs.new_zeros(())
    for e, t in zip(embs.split(group), targets.split(group)):
        w = hnet(e) if params is None else functional_call(hnet, params, (e,))  # (s, P)
        total = total + F.mse_loss(w, t, reduction="sum")
    return total / len(embs)


def _output_layer(params: Params, hnet: nn.Module) -> torch.Tensor:
    """``[W | b]`` ``(C, H+1)`` of the hypernetwork's output layer from ``params``."""
    name = f"mlp.{len(hnet.mlp) - 1}"
    return torch.cat([params[f"{name}.weight"], params[f"{name}.bias"][:, None]], dim=1)


def _with_one(z: torch.Tensor, value: float) -> torch.Tensor:
    """``(..., H)`` -> ``(..., H+1)`` with ``value`` appended (1 for inputs, 0 for diffs)."""
    return torch.cat([z, z.new_full((*z.shape[:-1], 1), value)], dim=-1)


def gram_regularizer(hnet: nn.Module, embs: torch.Tensor, theta_star: Params,
                     params: Params | None = None,
                     star: tuple[torch.Tensor, torch.Tensor] | None = None,
                     star_grams: tuple[torch.Tensor, torch.Tensor | None] | None = None
                     ) -> torch.Tensor:
    """The output regularizer with targets ``W*_t = h(e_t, theta*)``, exactly, without
    forming any ``(S, P)`` tensor (see the module docstring).

    embs ``(S, E)``; ``theta_star`` the snapshot's named parameters; ``params`` optionally
    replaces theta; ``star`` the cached ``(x*, A*)`` = the snapshot's output-layer inputs
    ``(S, K, H+1)`` and ``[W* | b*]`` ``(C, H+1)``; ``star_grams`` the cached
    :func:`star_grams_of` these ``x*`` (constant while theta* is). Returns a scalar.
    """
    p = dict(hnet.named_parameters()) if params is None else params
    if star is None:
        star = snapshot_features(hnet, embs, theta_star)
    xs, a_star = star
    xx_last, xx_full = star_grams_of(xs) if star_grams is None else star_grams
    z = functional_call(hnet, p, (embs,), {"features": True})  # (S, K, H)
    d = _with_one(z - xs[..., :-1], 0.0)  # (S, K, H+1), last column 0
    a = _output_layer(p, hnet)  # (C, H+1)
    da = a - a_star
    K, C, P = hnet.n_chunks, hnet.chunk_size, hnet.num_outputs
    r = P - (K - 1) * C  # rows of the last chunk that are real weights

    def part(x_rows: torch.Tensor, d_rows: torch.Tensor, xx: torch.Tensor,
             grams: tuple[torch.Tensor, ...]) -> torch.Tensor:
        g1, g2, g3 = grams  # dA'dA, dA'A, A'A over the rows these chunks use
        x_rows, d_rows = x_rows.reshape(-1, x_rows.shape[-1]), d_rows.reshape(-1, d_rows.shape[-1])
        return ((g1 * xx).sum() + 2 * (g2 * (x_rows.T @ d_rows)).sum()
                + (g3 * (d_rows.T @ d_rows)).sum())

    def grams(rows: slice) -> tuple[torch.Tensor, ...]:
        ar, dr = a[rows], da[rows]
        return dr.T @ dr, dr.T @ ar, ar.T @ ar

    last = grams(slice(0, r))
    total = part(xs[:, -1:], d[:, -1:], xx_last, last)
    if K > 1:  # the full chunks use all C rows: the last chunk's r rows plus the rest
        full = last if r == C else tuple(g + h for g, h in zip(last, grams(slice(r, C))))
        total = total + part(xs[:, :-1], d[:, :-1], xx_full, full)
    return total / embs.shape[0]


def star_grams_of(xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``X*'X*`` of snapshot features ``xs`` ``(S, K, H+1)`` over the last chunk's rows and
    over the other chunks' rows (``(H+1, H+1)`` each; None for the second when K = 1)."""
    last = xs[:, -1].reshape(-1, xs.shape[-1])
    full = xs[:, :-1].reshape(-1, xs.shape[-1]) if xs.shape[1] > 1 else None
    return last.T @ last, None if full is None else full.T @ full


@torch.no_grad()
def snapshot_features(hnet: nn.Module, embs: torch.Tensor,
                      theta_star: Params) -> tuple[torch.Tensor, torch.Tensor]:
    """The snapshot's output-layer inputs ``[z*; 1]`` ``(S, K, H+1)`` and ``[W* | b*]``."""
    zs = functional_call(hnet, theta_star, (embs,), {"features": True})
    return _with_one(zs, 1.0), _output_layer(theta_star, hnet)


def _gram_capable(hnet: nn.Module) -> bool:
    """A hypernetwork whose last layer is a Linear on features it can return."""
    mlp = getattr(hnet, "mlp", None)
    return (hasattr(hnet, "n_chunks") and isinstance(mlp, nn.Sequential) and len(mlp) >= 2
            and isinstance(mlp[-1], nn.Linear))


def _gram_is_cheaper(hnet: nn.Module, n_tasks: int) -> bool:
    """Multiply-adds of the output layer: direct N H C against Gram ~ 3 (N + C) (H+1)^2."""
    if not _gram_capable(hnet):
        return False
    last = hnet.mlp[-1]
    n, h, c = n_tasks * hnet.n_chunks, last.in_features, last.out_features
    return 3 * (n + c) * (h + 1) ** 2 < n * h * c


FORMS = ("auto", "gram", "direct")


class RegTargets:
    """The W*_t = h(e_t, theta*) of earlier tasks, theta* the hypernetwork at the start of
    the task (or ``theta_star``), and the regularizer over them.

    Kept as what is constant within a task: for a hypernetwork with a linear output
    layer, the snapshot's output-layer inputs ``x*`` ``(T, K, H+1)`` and ``A*`` (targets
    are ``x* A*'``) and, once used, their Gram matrices ``X*'X*``. ``mode`` "stored" also
    keeps the ``(T, P)`` targets once the direct form needs them (for a random subset of
    tasks), "snapshot" recomputes them from ``x*`` (or theta*) per call (less memory, more
    compute). The Gram form over all tasks needs no ``(T, P)`` tensor. :meth:`loss` picks
    the Gram or the direct form by the cost of the tasks it regularizes in that call (all,
    or a random subset)."""

    def __init__(self, hnet: nn.Module, embs: torch.Tensor, mode: str = "stored",
                 theta_star: Params | None = None):
        check_choice("reg_targets", mode, REG_TARGETS)
        self.hnet, self.mode = hnet, mode
        self.embs = embs.detach().clone()  # (T, E)
        if theta_star is None:
            theta_star = dict(hnet.named_parameters())
        self.theta_star = {n: p.detach().clone() for n, p in theta_star.items()}
        self._star = (snapshot_features(hnet, self.embs, self.theta_star)
                      if _gram_capable(hnet) else None)
        self._star_grams: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.stored: torch.Tensor | None = None  # (T, P) targets ("stored"), at the first call

    def __len__(self) -> int:
        return self.embs.shape[0]

    def __call__(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """W* of tasks ``idx`` (default all): ``(S, P)``."""
        if self.mode == "stored":
            if self.stored is None:
                self.stored = self._targets(None)
            return self.stored if idx is None else self.stored[idx]
        return self._targets(idx)

    @torch.no_grad()
    def _targets(self, idx: torch.Tensor | None) -> torch.Tensor:
        """W* of tasks ``idx`` computed anew: ``x* A*'`` from the snapshot's features, or
        the snapshot's forward pass where it has none."""
        if self._star is not None:
            xs = self._star[0] if idx is None else self._star[0][idx]  # (S, K, H+1)
            return (xs @ self._star[1].T).reshape(len(xs), -1)[:, :self.hnet.num_outputs]
        embs = self.embs if idx is None else self.embs[idx]
        return functional_call(self.hnet, self.theta_star, (embs,))

    def form_for(self, n_tasks: int) -> str:
        """The cheaper form ("gram" or "direct") for regularizing ``n_tasks`` tasks."""
        return "gram" if _gram_is_cheaper(self.hnet, n_tasks) else "direct"

    def loss(self, idx: torch.Tensor | None = None, params: Params | None = None,
             form: str = "auto") -> torch.Tensor:
        """The regularizer over tasks ``idx`` ``(S,)`` (default all) at theta or ``params``,
        in the Gram or direct ``form`` ("auto": the cheaper for S tasks)."""
        check_choice("form", form, FORMS)
        embs = self.embs if idx is None else self.embs[idx]
        gram = self.form_for(len(embs)) == "gram" if form == "auto" else form == "gram"
        if gram and self._star is None:
            raise ValueError(f"{type(self.hnet).__name__} has no Gram form; use form='direct'")
        if not gram:
            return output_regularizer(self.hnet, embs, self(idx), params)
        if idx is None:
            if self._star_grams is None:
                self._star_grams = star_grams_of(self._star[0])
            return gram_regularizer(self.hnet, embs, self.theta_star, params, self._star,
                                    self._star_grams)
        return gram_regularizer(self.hnet, embs, self.theta_star, params,
                                (self._star[0][idx], self._star[1]))
