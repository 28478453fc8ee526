"""The output regularizer and the Adam lookahead (PAPER.md, "The loss").

    reg = 1/|S| sum_{t in S} || h(e_t, theta + dtheta) - W*_t ||^2

computed for all t in S with one batched hypernetwork forward.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

Params = dict[str, torch.Tensor]


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


class RegTargets:
    """The W*_t of earlier tasks: stored as one ``(T, P)`` tensor or recomputed on the fly
    from a frozen snapshot theta* (constant memory, more compute)."""

    def __init__(self, hnet: nn.Module, embs: torch.Tensor, mode: str = "stored"):
        if mode not in ("stored", "snapshot"):
            raise ValueError(f"unknown reg_targets {mode!r}; choose 'stored' or 'snapshot'")
        self.hnet, self.mode = hnet, mode
        self.embs = embs.detach().clone()  # (T, E)
        with torch.no_grad():
            if mode == "stored":
                self.stored = hnet(self.embs)  # (T, P)
            else:
                self.theta_star = {n: p.detach().clone() for n, p in hnet.named_parameters()}

    def __len__(self) -> int:
        return self.embs.shape[0]

    def __call__(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """W* of tasks ``idx`` (default all): ``(S, P)``."""
        if self.mode == "stored":
            return self.stored if idx is None else self.stored[idx]
        embs = self.embs if idx is None else self.embs[idx]
        with torch.no_grad():
            return functional_call(self.hnet, self.theta_star, (embs,))


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
