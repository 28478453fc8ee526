"""Quadratic weight penalties of the regularization baselines (EWC, online EWC, SI):
importances (Fisher diagonal, SI's path integral) and the penalty itself, per task or
merged into one quadratic. Pure torch; :class:`hnviz.learners.baselines.BaselineCL` uses them."""
from __future__ import annotations

import torch
from torch.func import jacrev, vmap

from .targets import MLP, TargetNet


def quadratic_penalty(theta: torch.Tensor, importance: torch.Tensor, anchors: torch.Tensor,
                      strength: float) -> torch.Tensor:
    """``strength * sum_k sum_i importance[k, i] (theta_i - anchors[k, i])^2``.

    theta ``(P,)``; importance, anchors ``(K, P)``. Returns a scalar.
    """
    return strength * (importance * (theta[None] - anchors) ** 2).sum()


class MergedQuadratic:
    """``sum_k sum_i F[k, i] (theta_i - A[k, i])^2`` rewritten exactly as one quadratic,
    ``sum_i S_i (theta_i - m_i)^2 + c``, with ``S = sum_k F[k]`` ``(P,)``, the precision-
    weighted centre ``m = sum_k F[k] A[k] / S`` ``(P,)`` (``A[-1]`` where ``S = 0``) and the
    constant ``c = sum_k sum_i F[k, i] (A[k, i] - m_i)^2`` (the penalty's minimum).

    Built in float64 from F, A ``(K, P)``; ``c`` is a sum of squares (no cancellation).
    """

    def __init__(self, importance: torch.Tensor, anchors: torch.Tensor):
        if importance.shape != anchors.shape or importance.dim() != 2:
            raise ValueError(f"importance {tuple(importance.shape)} and anchors "
                             f"{tuple(anchors.shape)} must both be (K, P)")
        f, a = importance.double(), anchors.double()
        self.precision = f.sum(0)  # (P,)
        if len(f) == 1:  # one anchor (online EWC, SI): already in this form
            self.centre, self.constant = a[0], 0.0
        else:
            weighted = (f * a).sum(0) / self.precision
            self.centre = torch.where(self.precision > 0, weighted, a[-1])  # (P,)
            self.constant = float((f * (a - self.centre) ** 2).sum())
        self._cast: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, theta: torch.Tensor, strength: float) -> torch.Tensor:
        """``strength * (sum_i S_i (theta_i - m_i)^2 + c)``; theta ``(P,)``, a scalar."""
        if theta.dtype not in self._cast:
            self._cast[theta.dtype] = (self.precision.to(theta.dtype), self.centre.to(theta.dtype))
        s, m = self._cast[theta.dtype]
        return strength * ((s * (theta - m) ** 2).sum() + self.constant)


def fisher_diagonal(target: TargetNet, theta: torch.Tensor, x: torch.Tensor, head: int = 0,
                    kind: str = "classification", chunk: int = 64) -> torch.Tensor:
    """Diagonal Fisher ``(P,)`` of the model's likelihood, averaged over inputs x ``(N, D)``.

    Classification: the expected (true) Fisher ``mean_x sum_c p(c|x) (d log p(c|x)/d theta)^2``
    under the model's own prediction. Regression: the Fisher of a unit-variance Gaussian
    likelihood, ``mean_x sum_o (d f_o(x)/d theta)^2``. MLP targets use the exact layer-wise
    form of :func:`mlp_fisher_diagonal` (no per-sample gradients); other targets
    :func:`fisher_diagonal_loop` (per-sample Jacobians by vmap(jacrev), ``chunk`` at a time).
    """
    if isinstance(target.module, MLP):
        return mlp_fisher_diagonal(target, theta, x, head, kind, chunk=max(chunk, 256))
    return fisher_diagonal_loop(target, theta, x, head, kind, chunk)


def fisher_diagonal_loop(target: TargetNet, theta: torch.Tensor, x: torch.Tensor, head: int = 0,
                         kind: str = "classification", chunk: int = 64) -> torch.Tensor:
    """:func:`fisher_diagonal` from per-sample Jacobians ``(n, C, P_h)`` (vmap(jacrev));
    any target, and the reference the fast MLP form is tested against."""
    theta = theta.detach()
    idx = target.head_indices(head).to(theta.device)  # other heads': zero Fisher, skipped

    def outputs(w: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:  # (P_h,), (D,) -> (C,)
        out = target(xi[None], theta.index_put((idx,), w), head)[0]
        return out if kind == "regression" else torch.log_softmax(out, -1)

    per_sample = vmap(jacrev(outputs), in_dims=(None, 0))
    total = torch.zeros(len(idx), dtype=theta.dtype, device=theta.device)
    for xb in x.split(chunk):
        jac = per_sample(theta[idx], xb)  # (n, C, P_h)
        if kind == "regression":
            weight = torch.ones(jac.shape[:2], dtype=jac.dtype, device=jac.device)
        else:
            weight = torch.softmax(target(xb, theta, head), -1)  # (n, C)
        total += torch.einsum("nc,ncp->p", weight, jac ** 2)
    return torch.zeros_like(theta).index_put((idx,), total / len(x))


def _activation_and_slope(act: torch.nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``act(z)`` and its elementwise derivative at z (same shape as z)."""
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        a = act(zz)
        (slope,) = torch.autograd.grad(a.sum(), zz)
    return a.detach(), slope


def mlp_fisher_diagonal(target: TargetNet, theta: torch.Tensor, x: torch.Tensor, head: int = 0,
                        kind: str = "classification", chunk: int = 256) -> torch.Tensor:
    """:func:`fisher_diagonal` of an :class:`~hnviz.core.targets.MLP` target, exactly, layer
    by layer.

    The gradient of output c of sample n by a linear layer's weight is the outer product
    ``delta[n, c] a[n]^T`` of the back-propagated error ``delta[n, c]`` ``(d_out,)`` and the
    layer's input ``a[n]`` ``(d_in,)``, so its weighted square summed over c and n is
    ``s^T (a * a)`` with ``s[n] = sum_c w[n, c] delta[n, c]^2`` ``(N, d_out)``: the errors of
    all C outputs are propagated as one ``(n, C, d)`` tensor, and no ``(n, C, P)`` per-sample
    gradient is ever built. w: the predicted probabilities (classification) or ones.
    """
    theta = theta.detach()
    params = target.unflatten(theta)
    names = target.names
    layers = [m for m in target.module.net if isinstance(m, torch.nn.Linear)]
    acts = [m for m in target.module.net if not isinstance(m, torch.nn.Linear)]
    weights = [params[n] for n in names[0::2]]  # (d_out, d_in) per layer
    biases = [params[n] for n in names[1::2]]
    if len(weights) != len(layers):
        raise ValueError("mlp_fisher_diagonal expects Linear layers with bias")
    o = target.out_features
    lo, hi = (head * o, (head + 1) * o) if target.n_heads > 1 else (0, weights[-1].shape[0])
    sq_w = [torch.zeros_like(w) for w in weights]
    sq_b = [torch.zeros_like(b) for b in biases]
    for xb in x.flatten(1).split(chunk):
        inputs, slopes, a = [], [], xb.to(theta.dtype)
        for i, (w, b) in enumerate(zip(weights, biases)):
            inputs.append(a)
            z = a @ w.T + b
            if i < len(acts):
                a, slope = _activation_and_slope(acts[i], z)
                slopes.append(slope)
        out = z[:, lo:hi]  # (n, C)
        n, C = out.shape
        if kind == "regression":
            wc = torch.ones(n, C, dtype=theta.dtype, device=theta.device)
            delta_out = torch.eye(C, dtype=theta.dtype, device=theta.device).expand(n, C, C)
        else:
            p = torch.softmax(out, -1)  # d log p_c / d out = e_c - p
            wc = p
            eye = torch.eye(C, dtype=theta.dtype, device=theta.device)
            delta_out = eye[None] - p[:, None, :]  # (n, C, C)
        delta = torch.zeros(n, C, z.shape[1], dtype=theta.dtype, device=theta.device)
        delta[:, :, lo:hi] = delta_out
        for i in range(len(weights) - 1, -1, -1):
            s = torch.einsum("nc,ncd->nd", wc, delta ** 2)  # (n, d_out)
            sq_w[i] += s.T @ inputs[i] ** 2
            sq_b[i] += s.sum(0)
            if i:
                delta = (delta @ weights[i]) * slopes[i - 1][:, None, :]  # (n, C, d_in)
    parts = [t for pair in zip(sq_w, sq_b) for t in pair]
    return torch.cat([t.reshape(-1) for t in parts]) / len(x)


class PathIntegral:
    """SI's running importance of one task (Zenke et al. 2017).

    ``update`` adds ``omega += -g * delta`` per step (g: task-loss gradient, delta: the step's
    actual parameter change); ``importance`` is ``omega / ((theta_end - theta_start)^2 + xi)``.
    """

    def __init__(self, theta: torch.Tensor):
        self.start = theta.detach().clone()  # (P,)
        self.omega = torch.zeros_like(self.start)  # (P,)

    def update(self, grad: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> None:
        self.omega -= grad * (after - before)

    def importance(self, theta_end: torch.Tensor, xi: float) -> torch.Tensor:
        return self.omega / ((theta_end.detach() - self.start) ** 2 + xi)
