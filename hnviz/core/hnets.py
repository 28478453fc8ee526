"""Hypernetworks h(e, theta): task embeddings ``(B, E)`` -> flat target weights ``(B, P)``."""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import make_activation
from .validate import check_choice

HNETS = ("full", "chunked")
HNET_INITS = ("xavier", "pytorch")


def _mlp(sizes: list[int], activation: str, init: str = "xavier") -> nn.Sequential:
    """Linear layers with ``activation`` between them.

    init "xavier": Xavier-uniform weights, zero biases (hypnettorch); "pytorch": PyTorch's
    ``nn.Linear`` default (Kaiming-uniform, a=sqrt(5); uniform biases), which is what the
    authors' toy-regression code (hypercl ``init_params``) uses.
    """
    check_choice("hnet_init", init, HNET_INITS)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(make_activation(activation))
    for m in layers:
        if init == "xavier" and isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


class HyperNet(nn.Module):
    """Common interface: ``forward(emb)`` maps ``(B, E)`` to ``(B, P)``; P is made as
    ``n_chunks`` chunks of ``chunk_size`` rows of one output layer ``mlp[-1]`` (the last
    chunk cut at P), and ``forward(emb, features=True)`` returns that layer's input
    ``(B, n_chunks, H)`` (what :func:`hnviz.core.regularizer.gram_regularizer` works on)."""

    num_outputs: int
    emb_dim: int
    mlp: nn.Sequential

    @property
    def num_params(self) -> int:
        """Trainable hypernetwork weights (theta), chunk embeddings included."""
        return sum(p.numel() for p in self.parameters())

    def compression_ratio(self, n_tasks: int) -> float:
        """(#theta + n_tasks * emb_dim) / P; < 1 is the compressive regime."""
        return (self.num_params + n_tasks * self.emb_dim) / self.num_outputs


class FullHyperNet(HyperNet):
    """An MLP from the task embedding to all P target weights at once."""

    def __init__(self, emb_dim: int, num_outputs: int, hidden: tuple[int, ...] = (10, 10),
                 activation: str = "sigmoid", init: str = "xavier"):
        super().__init__()
        self.emb_dim, self.num_outputs = emb_dim, num_outputs
        self.mlp = _mlp([emb_dim, *hidden, num_outputs], activation, init)

    @property
    def n_chunks(self) -> int:
        return 1

    @property
    def chunk_size(self) -> int:
        return self.num_outputs

    def forward(self, emb: torch.Tensor, features: bool = False) -> torch.Tensor:
        """(B, E) -> (B, P); ``features=True``: the last hidden layer ``(B, 1, H)``."""
        return self.mlp[:-1](emb)[:, None] if features else self.mlp(emb)

    def __repr__(self) -> str:
        return f"FullHyperNet(E={self.emb_dim}, P={self.num_outputs}, theta={self.num_params})"


class ChunkedHyperNet(HyperNet):
    """One shared MLP makes chunk k of C weights from ``[e, c_k]`` (c_k learned)."""

    def __init__(self, emb_dim: int, num_outputs: int, chunk_size: int, chunk_emb_dim: int,
                 hidden: tuple[int, ...] = (10, 10), activation: str = "relu",
                 init: str = "xavier"):
        super().__init__()
        self.emb_dim, self.num_outputs, self.chunk_size = emb_dim, num_outputs, chunk_size
        self.n_chunks = math.ceil(num_outputs / chunk_size)
        self.chunk_embs = nn.Parameter(torch.randn(self.n_chunks, chunk_emb_dim))  # (K, Ce)
        self.mlp = _mlp([emb_dim + chunk_emb_dim, *hidden, chunk_size], activation, init)

    def forward(self, emb: torch.Tensor, features: bool = False) -> torch.Tensor:
        """(B, E) -> (B, P); ``features=True``: the last hidden layer ``(B, K, H)``."""
        b, k = emb.shape[0], self.n_chunks
        inp = torch.cat([emb[:, None, :].expand(b, k, -1),
                         self.chunk_embs[None].expand(b, -1, -1)], dim=2)  # (B, K, E+Ce)
        if features:
            return self.mlp[:-1](inp)
        return self.mlp(inp).reshape(b, k * self.chunk_size)[:, :self.num_outputs]

    def __repr__(self) -> str:
        return (f"ChunkedHyperNet(E={self.emb_dim}, P={self.num_outputs}, "
                f"chunks={self.n_chunks}x{self.chunk_size}, theta={self.num_params})")


def build_hnet(kind: str, emb_dim: int, num_outputs: int, hidden: tuple[int, ...],
               activation: str, chunk_size: int = 1000, chunk_emb_dim: int = 8,
               init: str = "xavier") -> HyperNet:
    """Build a "full" or "chunked" hypernetwork producing ``num_outputs`` weights."""
    if kind == "full":
        return FullHyperNet(emb_dim, num_outputs, hidden, activation, init)
    if kind == "chunked":
        return ChunkedHyperNet(emb_dim, num_outputs, chunk_size, chunk_emb_dim, hidden,
                               activation, init)
    raise ValueError(f"unknown hnet kind {kind!r}; choose 'full' or 'chunked'")


def count_params(kind: str, emb_dim: int, num_outputs: int, hidden: tuple[int, ...],
                 chunk_size: int = 1000, chunk_emb_dim: int = 8) -> int:
    """The number of weights (theta) :func:`build_hnet` would make, by arithmetic alone."""
    def mlp(sizes: list[int]) -> int:
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))

    if kind == "full":
        return mlp([emb_dim, *hidden, num_outputs])
    n_chunks = math.ceil(num_outputs / chunk_size)
    return n_chunks * chunk_emb_dim + mlp([emb_dim + chunk_emb_dim, *hidden, chunk_size])
