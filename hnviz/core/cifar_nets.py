"""The target networks of the paper's CIFAR experiments (templates only; their weights
come from a hypernetwork or a baseline's flat vector, see :class:`hnviz.core.targets.TargetNet`).

- :class:`ZenkeNet`: the small conv net of the synaptic-intelligence paper's split
  CIFAR-10/100: two blocks of two 3x3 convolutions (32 then 64 channels; the first of
  each block padded, the second not) with a 2x2 max pool after each block, a dense layer
  of 512 and the heads. 1,276,508 weights with six 10-way heads on 32x32x3 images.
  Dropout (used in the original) is left out: every forward of a hnviz target is
  deterministic.
- :class:`ResNet32`: the CIFAR ResNet-32 with batch norm, whose running statistics are
  kept per task (:class:`BatchNormState`, owned by the target net).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .layers import MLP, make_activation

ZENKE_CHANNELS = (32, 64)
RESNET_CHANNELS = (16, 32, 64)
BN_MOMENTUM, BN_EPS = 0.1, 1e-5  # torch's and the authors' library's defaults


@dataclass
class BatchNormState:
    """What a net's batch-norm layers use: ``stats`` each layer's running mean and
    variance ``(C,)`` (updated in place while ``training``), and whether the batch's own
    statistics are used and folded into them (``training``) or the stored ones."""

    stats: list[tuple[torch.Tensor, torch.Tensor]]
    training: bool


class ZenkeNet(nn.Module):
    """ZenkeNet for ``(C, H, W)`` images of at least 10x10 (32x32x3 for CIFAR):
    ``(N, C*H*W) -> (N, out)``; ``hidden`` the dense layers before the heads ((512,))."""

    def __init__(self, in_shape: tuple[int, int, int], out_features: int,
                 hidden: tuple[int, ...] = (512,), activation: str = "relu"):
        super().__init__()
        self.in_shape = tuple(in_shape)
        c1, c2 = ZENKE_CHANNELS
        act = make_activation
        self.features = nn.Sequential(
            nn.Conv2d(in_shape[0], c1, 3, padding=1), act(activation),
            nn.Conv2d(c1, c1, 3), act(activation), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), act(activation),
            nn.Conv2d(c2, c2, 3), act(activation), nn.MaxPool2d(2),
        )
        self.head = MLP(c2 * zenke_side(in_shape[1]) * zenke_side(in_shape[2]), hidden,
                        out_features, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C*H*W) -> (N, out)
        z = self.features(x.reshape(x.shape[0], *self.in_shape))
        return self.head(z.flatten(1))


def zenke_side(side: int) -> int:
    """The side of ZenkeNet's last feature maps for an input side (32 -> 6)."""
    return ((side - 2) // 2 - 2) // 2


def zenke_params(in_shape: tuple[int, int, int], hidden: tuple[int, ...],
                 total_out: int) -> int:
    """ZenkeNet's number of weights, by arithmetic alone."""
    c1, c2 = ZENKE_CHANNELS
    convs = (in_shape[0] * c1 * 9 + c1) + (c1 * c1 * 9 + c1) + (c1 * c2 * 9 + c2) + \
        (c2 * c2 * 9 + c2)
    sizes = [c2 * zenke_side(in_shape[1]) * zenke_side(in_shape[2]), *hidden, total_out]
    return convs + sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions (with biases), each followed by batch norm; the input is
    added before the second ReLU. A block that changes the width takes every second
    pixel of its input (stride 2) and pads the new channels with zeros, half on each side
    (He et al.'s CIFAR option A: no weights in the shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, ((c_out - c_in) // 2, c_out - c_in - (c_out - c_in) // 2)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad)) if any(self.pad) else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # the reference: the module's own
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet32(nn.Module):
    """The CIFAR ResNet of depth 6n + 2 (n = 5: ResNet-32) for ``(C, H, W)`` images:
    a 3x3 convolution to 16 channels, three stages of n :class:`ResidualBlock` of 16, 32
    and 64 channels (the last two start with stride 2), global average pooling and the
    heads. Every convolution has a bias and is followed by batch norm (as in the authors'
    library: 468,540 weights with six 10-way heads, the paper's "about 468,500").

    :meth:`forward` is the plain module (its own weights and batch-norm buffers);
    :meth:`forward_flat` the same computation with external weights and the batch-norm
    statistics a :class:`~hnviz.core.targets.TargetNet` keeps per task.
    """

    def __init__(self, in_shape: tuple[int, int, int], out_features: int, n: int = 5):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.stem = nn.Conv2d(in_shape[0], RESNET_CHANNELS[0], 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(RESNET_CHANNELS[0])
        blocks, c_in = [], RESNET_CHANNELS[0]
        for stage, c in enumerate(RESNET_CHANNELS):
            for j in range(n):
                blocks.append(ResidualBlock(c_in, c, 2 if stage > 0 and j == 0 else 1))
                c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(c_in, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C*H*W) -> (N, out)
        h = torch.relu(self.stem_bn(self.stem(x.reshape(x.shape[0], *self.in_shape))))
        for block in self.blocks:
            h = block(h)
        return self.fc(h.mean((2, 3)))

    def forward_flat(self, x: torch.Tensor, parts: list[torch.Tensor],
                     bn: BatchNormState | None = None) -> torch.Tensor:
        """:meth:`forward` with ``parts`` (the weights in ``named_parameters`` order) and
        ``bn`` (each batch-norm layer's running mean and variance, and whether they are
        being trained); without ``bn`` every batch norm uses the batch's own statistics."""
        stats = iter(bn.stats) if bn is not None else None
        training = bn.training if bn is not None else True
        k = 0

        def layer(h: torch.Tensor, stride: int) -> torch.Tensor:
            nonlocal k
            h = F.conv2d(h, parts[k], parts[k + 1], stride, padding=1)
            mean, var = next(stats) if stats is not None else (None, None)
            h = F.batch_norm(h, mean, var, parts[k + 2], parts[k + 3], training,
                             BN_MOMENTUM, BN_EPS)
            k += 4
            return h

        h = torch.relu(layer(x.reshape(x.shape[0], *self.in_shape), 1))
        for block in self.blocks:
            inner = torch.relu(layer(h, block.stride))
            h = torch.relu(layer(inner, 1) + block.shortcut(h))
        return F.linear(h.mean((2, 3)), parts[k], parts[k + 1])


def resnet_params(in_shape: tuple[int, int, int], total_out: int, n: int = 5) -> int:
    """ResNet-32's number of weights (convolutions with biases, batch-norm scales and
    shifts, the heads), by arithmetic alone."""
    c0, c1, c2 = RESNET_CHANNELS
    convs = (in_shape[0] * c0 * 9 + c0) + sum(
        (a * b * 9 + b) + (b * b * 9 + b) + (n - 1) * 2 * (b * b * 9 + b)
        for a, b in ((c0, c0), (c0, c1), (c1, c2)))
    norms = 2 * (c0 + 2 * n * (c0 + c1 + c2))
    return convs + norms + c2 * total_out + total_out
