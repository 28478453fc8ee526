"""The target networks of the paper's CIFAR experiments (templates only; their weights
come from a hypernetwork or a baseline's flat vector, see :class:`hnviz.core.targets.TargetNet`).

- :class:`ZenkeNet`: the small conv net of the synaptic-intelligence paper's split
  CIFAR-10/100: two blocks of two 3x3 convolutions (32 then 64 channels; the first of
  each block padded, the second not) with a 2x2 max pool after each block, a dense layer
  of 512 and the heads. 1,276,508 weights with six 10-way heads on 32x32x3 images.
  Dropout (used in the original) is left out: every forward of a hnviz target is
  deterministic.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import MLP, make_activation

ZENKE_CHANNELS = (32, 64)


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
