"""The output regularizer and the Adam lookahead (docs/paper.md, "The loss").

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

:class:`RegTargets` picks the cheaper of the two for each call.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from .validate import check_choice

Params = dict[str, torch.Tensor]
REG_TARGETS = ("stored", "snapshot")  # how W* is kept: a (T, P) tensor, or theta* alone


def output_regularizer(hnet: nn.Module, embs: torch.Tensor, targets: torch.Tensor,
                       params: Params | None = None) -> torch.Tensor:
    """Mean over tasks of the squared distance of generated weights to their targets.

    embs: ``(S, E)`` earlier task embeddings; targets: ``(S, P)`` W*; ``params``
    optionally replaces theta (e.g. theta + dtheta). Returns a scalar.
    """
    if embs.shape[0] != targets.shape[0]:
        raise ValueError(f"{embs.shape[0]} embeddings but {targets.shape[0]} targets")
    weights = hnet(embs) if params is None else functional_call(hnet, params, (embs,))  # (S, P)
    return (weights - targets).pow(2).sum(dim=1).mean()


def _output_layer(params: Params, hnet: nn.Module) -> torch.Tensor:
    """``[W | b]`` ``(C, H+1)`` of the hypernetwork's output layer from ``params``."""
    name = f"mlp.{len(hnet.mlp) - 1}"
    return torch.cat([params[f"{name}.weight"], params[f"{name}.bias"][:, None]], dim=1)


def _with_one(z: torch.Tensor, value: float) -> torch.Tensor:
    """``(..., H)`` -> ``(..., H+1)`` with ``value`` appended (1 for inputs, 0 for diffs)."""
    return torch.cat([z, z.new_full((*z.shape[:-1], 1), value)], dim=-1)


def gram_regularizer(hnet: nn.Module, embs: torch.Tensor, theta_star: Params,
                     params: Params | None = None,
                     star: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The output regularizer with targets ``W*_t = h(e_t, theta*)``, exactly, without
    forming any ``(S, P)`` tensor (see the module docstring).

    embs ``(S, E)``; ``theta_star`` the snapshot's named parameters; ``params`` optionally
    replaces theta; ``star`` the cached ``(x*, A*)`` = the snapshot's output-layer inputs
    ``(S, K, H+1)`` and ``[W* | b*]`` ``(C, H+1)``. Returns a scalar.
    """
    p = dict(hnet.named_parameters()) if params is None else params
    if star is None:
        star = snapshot_features(hnet, embs, theta_star)
    xs, a_star = star
    z = functional_call(hnet, p, (embs,), {"features": True})  # (S, K, H)
    d = _with_one(z - xs[..., :-1], 0.0)  # (S, K, H+1), last column 0
    a = _output_layer(p, hnet)  # (C, H+1)
    da = a - a_star
    K, C, P = hnet.n_chunks, hnet.chunk_size, hnet.num_outputs
    r = P - (K - 1) * C  # rows of the last chunk that are real weights

    def part(x_rows: torch.Tensor, d_rows: torch.Tensor, grams: tuple[torch.Tensor, ...]):
        g1, g2, g3 = grams  # dA'dA, dA'A, A'A over the rows these chunks use
        x_rows, d_rows = x_rows.reshape(-1, x_rows.shape[-1]), d_rows.reshape(-1, d_rows.shape[-1])
        return ((g1 * (x_rows.T @ x_rows)).sum() + 2 * (g2 * (x_rows.T @ d_rows)).sum()
                + (g3 * (d_rows.T @ d_rows)).sum())

    def grams(rows: slice) -> tuple[torch.Tensor, ...]:
        ar, dr = a[rows], da[rows]
        return dr.T @ dr, dr.T @ ar, ar.T @ ar

    last = grams(slice(0, r))
    total = part(xs[:, -1:], d[:, -1:], last)
    if K > 1:  # the full chunks use all C rows: the last chunk's r rows plus the rest
        full = last if r == C else tuple(g + h for g, h in zip(last, grams(slice(r, C))))
        total = total + part(xs[:, :-1], d[:, :-1], full)
    return total / embs.shape[0]


@torch.no_grad()
def snapshot_features(hnet: nn.Module, embs: torch.Tensor,
                      theta_star: Params) -> tuple[torch.Tensor, torch.Tensor]:
    """The snapshot's output-layer inputs ``[z*; 1]`` ``(S, K, H+1)`` and ``[W* | b*]``."""
    zs = functional_call(hnet, theta_star, (embs,), {"features": True})
    return _with_one(zs, 1.0), _output_layer(theta_star, hnet)


def _gram_is_cheaper(hnet: nn.Module, n_tasks: int) -> bool:
    """Multiply-adds of the output layer: direct N H C against Gram ~ 3 (N + C) (H+1)^2."""
    if not hasattr(hnet, "n_chunks") or not isinstance(getattr(hnet, "mlp", None), nn.Sequential):
        return False
    last = hnet.mlp[-1]
    if not isinstance(last, nn.Linear) or len(hnet.mlp) < 2:
        return False
    n, h, c = n_tasks * hnet.n_chunks, last.in_features, last.out_features
    return 3 * (n + c) * (h + 1) ** 2 < n * h * c


class RegTargets:
    """The W*_t = h(e_t, theta*) of earlier tasks, theta* the hypernetwork at the start of
    the task (or ``theta_star``): stored as one ``(T, P)`` tensor or recomputed on the fly
    from theta* (constant memory, more compute). :meth:`loss` evaluates the regularizer,
    by the Gram form where that is cheaper (then the ``(T, P)`` targets are not needed)."""

    def __init__(self, hnet: nn.Module, embs: torch.Tensor, mode: str = "stored",
                 theta_star: Params | None = None):
        check_choice("reg_targets", mode, REG_TARGETS)
        self.hnet, self.mode = hnet, mode
        self.embs = embs.detach().clone()  # (T, E)
        if theta_star is None:
            theta_star = dict(hnet.named_parameters())
        self.theta_star = {n: p.detach().clone() for n, p in theta_star.items()}
        self.gram = _gram_is_cheaper(hnet, len(self.embs))
        self._star = snapshot_features(hnet, self.embs, self.theta_star) if self.gram else None
        self.stored = None
        if mode == "stored" and not self.gram:
            with torch.no_grad():
                self.stored = functional_call(hnet, self.theta_star, (self.embs,))  # (T, P)

    def __len__(self) -> int:
        return self.embs.shape[0]

    def __call__(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """W* of tasks ``idx`` (default all): ``(S, P)``."""
        if self.stored is not None:
            return self.stored if idx is None else self.stored[idx]
        embs = self.embs if idx is None else self.embs[idx]
        with torch.no_grad():
            return functional_call(self.hnet, self.theta_star, (embs,))

    def loss(self, idx: torch.Tensor | None = None, params: Params | None = None) -> torch.Tensor:
        """The regularizer over tasks ``idx`` (default all) at theta or ``params``."""
        embs = self.embs if idx is None else self.embs[idx]
        if self.gram:
            star = self._star if idx is None else (self._star[0][idx], self._star[1])
            return gram_regularizer(self.hnet, embs, self.theta_star, params, star)
        return output_regularizer(self.hnet, embs, self(idx), params)


def adam_lookahead(optimizer: torch.optim.Optimizer) -> dict[nn.Parameter, torch.Tensor]:
    """The step ``dtheta`` that ``optimizer.step()`` would apply given the current ``.grad``,
    computed without changing the optimizer state (detached).

    Follows ``torch.optim.Adam`` (no amsgrad, no maximize), L2 ``weight_decay`` included.
    Parameters without a gradient get no entry.
    """
    if not isinstance(optimizer, torch.optim.Adam) or isinstance(optimizer, torch.optim.AdamW):
        raise TypeError(f"lookahead needs torch.optim.Adam, got {type(optimizer).__name__}")
    deltas: dict[nn.Parameter, torch.Tensor] = {}
    with torch.no_grad():
        for group in optimizer.param_groups:
            if group.get("amsgrad") or group.get("maximize"):
                raise ValueError("lookahead supports Adam without amsgrad/maximize")
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = optimizer.state.get(p, {})
                step = float(state["step"]) + 1 if state else 1.0
                m = state["exp_avg"].lerp(grad, 1 - beta1) if state else grad * (1 - beta1)
                v = (state["exp_avg_sq"] * beta2 if state else torch.zeros_like(grad)).addcmul(
                    grad, grad, value=1 - beta2)
                denom = (v.sqrt() / (1 - beta2 ** step) ** 0.5).add(group["eps"])
                deltas[p] = (m / denom) * -(group["lr"] / (1 - beta1 ** step))
    return deltas
