"""The building blocks of hnviz's networks: activations by name and the fully connected
net that targets, hypernetworks and heads are made of."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .validate import check_choice

ACTIVATIONS = ("relu", "sigmoid", "elu", "tanh")

_ACT = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "elu": nn.ELU, "tanh": nn.Tanh}


def make_activation(name: str) -> nn.Module:
    """The ``nn.Module`` for an activation name (one of ``ACTIVATIONS``)."""
    check_choice("activation", name, ACTIVATIONS)
    return _ACT[name]()


class MLP(nn.Module):
    """Fully connected net ``in_features -> hidden... -> out_features`` (template only)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], out_features: int,
                 activation: str = "relu"):
        super().__init__()
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), make_activation(activation)]
        layers.append(nn.Linear(sizes[-1], out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, in) -> (N, out)
        return self.net(x.flatten(1))

    def forward_flat(self, x: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor:
        """:meth:`forward` with the weights ``parts`` (each layer's weight and bias, in
        ``named_parameters`` order) instead of the module's own: ``torch.nn.functional
        .linear`` layer by layer, without ``functional_call``'s swapping of parameters
        (a quarter of a small net's training step). ``(N, in) -> (N, out)``."""
        h, k = x.flatten(1), 0
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                h, k = F.linear(h, parts[k], parts[k + 1]), k + 2
            else:
                h = layer(h)
        return h
