"""Target networks: plain ``nn.Module`` templates evaluated with external flat weights.

Weights are data: a hypernetwork emits one flat ``(B, P)`` tensor and
:meth:`TargetNet.forward` evaluates all B weight sets on a batch with one vmapped
``torch.func.functional_call``.
"""
from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn
from torch.func import functional_call, vmap

from .batchnorm import TaskNorms
from .cifar_nets import ResNet32, ZenkeNet, resnet_params, zenke_params
from .layers import ACTIVATIONS, MLP, make_activation

TARGETS = ("mlp", "lenet", "convnet", "zenkenet", "resnet32")
CONV_CHANNELS = (16, 32)  # the convnet target's two 3x3 conv layers


class LeNet(nn.Module):
    """LeNet-like conv net for ``(C, H, W)`` images, e.g. 28x28 (template only)."""

    def __init__(self, in_shape: tuple[int, int, int], out_features: int,
                 hidden: tuple[int, ...] = (50,), activation: str = "relu"):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.features = nn.Sequential(
            nn.Conv2d(in_shape[0], 10, 5), make_activation(activation), nn.MaxPool2d(2),
            nn.Conv2d(10, 20, 5), make_activation(activation), nn.MaxPool2d(2),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *in_shape)).numel()
        self.head = MLP(flat, hidden, out_features, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C*H*W) -> (N, out)
        z = self.features(x.reshape(x.shape[0], *self.in_shape))
        return self.head(z.flatten(1))


class ConvNet(nn.Module):
    """A small conv net for ``(C, H, W)`` images of any size from 4x4 (8x8 digits too):
    two 3x3 convolutions (padding 1, ``CONV_CHANNELS``), each followed by the activation
    and a 2x2 max pool, then an MLP head with ``hidden`` sizes (template only)."""

    def __init__(self, in_shape: tuple[int, int, int], out_features: int,
                 hidden: tuple[int, ...] = (100,), activation: str = "relu"):
        super().__init__()
        self.in_shape = tuple(in_shape)
        c1, c2 = CONV_CHANNELS
        self.features = nn.Sequential(
            nn.Conv2d(in_shape[0], c1, 3, padding=1), make_activation(activation), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), make_activation(activation), nn.MaxPool2d(2),
        )
        self.head = MLP(c2 * (in_shape[1] // 4) * (in_shape[2] // 4), hidden, out_features,
                        activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C*H*W) -> (N, out)
        z = self.features(x.reshape(x.shape[0], *self.in_shape))
        return self.head(z.flatten(1))


def _image_shape(kind: str, in_features: int, in_shape: tuple[int, ...] | None,
                 min_side: int) -> tuple[int, int, int]:
    """``in_shape`` as ``(C, H, W)`` (square one-channel images when not given), or a
    ValueError naming the target and the smallest image it takes."""
    if in_shape is None or len(in_shape) != 3:
        side = math.isqrt(in_features)
        if side * side != in_features:
            raise ValueError(f"{kind} needs square images, got {in_features} input features;"
                             " use target='mlp' or give in_shape=(C, H, W)")
        in_shape = (1, side, side)
    if min(in_shape[1:]) < min_side:
        raise ValueError(f"{kind} needs images of at least {min_side}x{min_side}, got "
                         f"{tuple(in_shape)}; use target='mlp'")
    return tuple(in_shape)


class TargetNet:
    """A target-network template plus the flat weight layout of its parameters.

    ``n_heads`` output heads of ``out_features`` each share the last layer (CL1: one
    head per task); :meth:`forward` returns the selected head only.
    """

    def __init__(self, module: nn.Module, in_features: int, out_features: int, n_heads: int = 1):
        self.module = module.requires_grad_(False)
        self.in_features, self.out_features, self.n_heads = in_features, out_features, n_heads
        self.names = [n for n, _ in module.named_parameters()]
        self.shapes = [tuple(p.shape) for _, p in module.named_parameters()]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.num_params = sum(self.sizes)
        norms = [m.num_features for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
        # batch-norm running statistics per task (hnviz.core.batchnorm); None without
        self.norms = TaskNorms(norms) if norms else None

    def __repr__(self) -> str:
        return (f"TargetNet({type(self.module).__name__}, in={self.in_features}, "
                f"out={self.out_features}, heads={self.n_heads}, P={self.num_params})")

    def to(self, device: torch.device) -> "TargetNet":
        """Move the template (its own weights and buffers) and the per-task batch-norm
        statistics to ``device``."""
        self.module.to(device)
        if self.norms is not None:
            self.norms.to(device)
        return self

    def head_indices(self, head: int) -> torch.Tensor:
        """Flat indices ``(P_h,)`` of the weights that head ``head``'s outputs depend on:
        every layer but the last, plus the last layer's rows of that head (all of P with
        one head). The last two parameters are the output layer's weight and bias."""
        if self.n_heads == 1:
            return torch.arange(self.num_params)
        o, (_, cols) = self.out_features, self.shapes[-2]
        start_w = self.num_params - self.sizes[-1] - self.sizes[-2]
        body = torch.arange(start_w)
        weight = start_w + torch.arange(head * o * cols, (head + 1) * o * cols)
        bias = start_w + self.sizes[-2] + torch.arange(head * o, (head + 1) * o)
        return torch.cat([body, weight, bias])

    def unflatten(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split one flat weight vector ``(P,)`` into the module's named parameters."""
        parts = torch.split(w, self.sizes)
        return {n: p.reshape(s) for n, p, s in zip(self.names, parts, self.shapes)}

    def flatten_module(self, module: nn.Module | None = None) -> torch.Tensor:
        """The ``(P,)`` weight vector of ``module`` (default: the template)."""
        module = self.module if module is None else module
        return torch.cat([p.detach().reshape(-1) for p in module.parameters()])

    def _single(self, x: torch.Tensor, w: torch.Tensor, head: int | None) -> torch.Tensor:
        if isinstance(self.module, (MLP, ResNet32)):  # layer by layer, no parameter swap
            parts = list(self.unflatten(w).values())
            out = self.module.forward_flat(x, parts) if self.norms is None else \
                self.module.forward_flat(x, parts, self.norms.now())  # (N, heads*out)
        else:
            out = functional_call(self.module, self.unflatten(w), (x,))
        o = self.out_features
        return out[:, head * o:(head + 1) * o] if self.n_heads > 1 and head is not None else out

    def forward(self, x: torch.Tensor, weights: torch.Tensor, head: int | None = 0) -> torch.Tensor:
        """Evaluate the net with external weights.

        x: ``(N, in)`` shared by all weight sets, or ``(B, N, in)`` one batch per set.
        weights: ``(P,)`` -> returns ``(N, out)``; ``(B, P)`` -> returns ``(B, N, out)``.
        ``head=None`` returns all heads (``out = heads * out_features``).
        """
        if weights.dim() == 1:
            return self._single(x, weights, head)
        x_dim = 0 if x.dim() == 3 else None
        with self.norms.batch_only() if self.norms is not None else nullcontext():
            return vmap(lambda xx, w: self._single(xx, w, head), in_dims=(x_dim, 0))(x, weights)

    def task_norms(self, task: int, training: bool) -> AbstractContextManager:
        """Forwards inside use task ``task``'s batch-norm statistics, updated while
        ``training`` (:meth:`hnviz.core.batchnorm.TaskNorms.task`); nothing for a net
        without batch norm. Several weight sets at once (``(B, P)``) always use each
        batch's own statistics."""
        return self.norms.task(task, training) if self.norms is not None else nullcontext()

    def norm_state(self) -> dict[str, torch.Tensor]:
        """The per-task batch-norm statistics as named tensors (none without batch norm)."""
        return self.norms.state() if self.norms is not None else {}

    def load_norm_state(self, weights: dict[str, torch.Tensor], tasks: int) -> None:
        """Restore :meth:`norm_state`'s tensors (the ``norms.*`` of a learner's
        ``weights``) of ``tasks`` learned tasks (and one in progress); a ValueError if this
        net has no batch norm but they are given, or they are incomplete or do not fit."""
        tensors = {k: v for k, v in weights.items() if k.startswith("norms.")}
        if self.norms is None:
            if tensors:
                raise ValueError("holds batch-norm statistics but its target net has no "
                                 "batch norm")
            return
        self.norms.load(tensors, tasks)

    __call__ = forward


def build_target(kind: str, in_features: int, out_features: int, hidden: tuple[int, ...],
                 activation: str, n_heads: int = 1,
                 in_shape: tuple[int, ...] | None = None) -> TargetNet:
    """Build a :class:`TargetNet` (one of ``TARGETS``) with ``n_heads`` output heads."""
    total_out = out_features * n_heads
    if kind == "mlp":
        module: nn.Module = MLP(in_features, hidden, total_out, activation)
    elif kind == "lenet":
        module = LeNet(_image_shape(kind, in_features, in_shape, 16), total_out, hidden,
                       activation)
    elif kind == "convnet":
        module = ConvNet(_image_shape(kind, in_features, in_shape, 4), total_out, hidden,
                         activation)
    elif kind == "zenkenet":
        module = ZenkeNet(_image_shape(kind, in_features, in_shape, 10), total_out, hidden,
                          activation)
    elif kind == "resnet32":  # hidden and activation do not apply (ReLU, fixed widths)
        module = ResNet32(_image_shape(kind, in_features, in_shape, 4), total_out)
    else:
        raise ValueError(f"unknown target network {kind!r}; choose one of {', '.join(TARGETS)}")
    return TargetNet(module, in_features, out_features, n_heads)


def _mlp_params(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def count_params(kind: str, in_features: int, out_features: int, hidden: tuple[int, ...],
                 n_heads: int = 1, in_shape: tuple[int, ...] | None = None) -> int:
    """The number of weights :func:`build_target` would make, by arithmetic alone (for
    checking a description before anything is allocated)."""
    total_out = out_features * n_heads
    if kind == "mlp":
        return _mlp_params([in_features, *hidden, total_out])
    if in_shape is None or len(in_shape) != 3:
        side = math.isqrt(in_features)
        in_shape = (1, side, side)
    c, h, w = in_shape
    if kind == "zenkenet":
        return zenke_params(in_shape, hidden, total_out)
    if kind == "resnet32":
        return resnet_params(in_shape, total_out)
    if kind == "convnet":
        c1, c2 = CONV_CHANNELS
        convs = (c * c1 * 9 + c1) + (c1 * c2 * 9 + c2)
        return convs + _mlp_params([c2 * (h // 4) * (w // 4), *hidden, total_out])
    h, w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2  # two 5x5 convs, two 2x2 pools
    convs = (c * 10 * 25 + 10) + (10 * 20 * 25 + 20)
    return convs + _mlp_params([20 * max(h, 0) * max(w, 0), *hidden, total_out])
