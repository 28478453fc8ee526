"""Outlier exposure from a task's own images, for task inference by entropy (HNET+ENT).

Entropy inference picks the task whose net is most certain about an input, so it needs
each task's net to be *uncertain* on other tasks' inputs, which it never sees. Nets
trained on two classes alone are confident almost everywhere (docs/results.md,
"Class-incremental learning"). Outlier exposure (Hendrycks et al., ICLR 2019) trains a
net towards the uniform prediction on inputs that are not of its task; hnviz makes them
from the current batch itself, so no earlier data is kept: each image is cut into a
2x2 grid of blocks and the blocks change places. The strokes and pixel statistics stay,
the shape goes — what inputs of other classes look like to a net that learned shapes.

    loss = task loss + w * mean_x CE(uniform, softmax(f(shuffled x)))
"""
from __future__ import annotations

from itertools import permutations
from typing import Any, Callable

import torch

from .train import task_loss

OUTLIERS = ("none", "blocks")
_ORDERS = list(permutations(range(4)))  # _ORDERS[0] is the identity


def shuffled_blocks(x: torch.Tensor, in_shape: tuple[int, ...],
                    gen: torch.Generator) -> torch.Tensor:
    """``x`` ``(N, C*H*W)`` with each image's 2x2 grid of blocks (H//2 x W//2; an odd
    last row or column stays) moved by one random permutation other than the identity
    (the same for the batch), drawn from ``gen``; the same shape as ``x``."""
    if len(in_shape) != 3 or min(in_shape[1:]) < 2:
        raise ValueError(f"outlier exposure by shuffled blocks needs images (C, H, W) of at "
                         f"least 2x2, got in_shape {tuple(in_shape)}; use outliers='none'")
    c, h, w = in_shape
    im = x.reshape(len(x), c, h, w)
    bh, bw = h // 2, w // 2
    blocks = [im[:, :, i * bh:(i + 1) * bh, j * bw:(j + 1) * bw] for i in (0, 1) for j in (0, 1)]
    order = _ORDERS[1 + int(torch.randint(len(_ORDERS) - 1, (), generator=gen))]
    out = im.clone()
    for k, block in enumerate(blocks[o] for o in order):
        i, j = divmod(k, 2)
        out[:, :, i * bh:(i + 1) * bh, j * bw:(j + 1) * bw] = block
    return out.reshape(x.shape)


def uniform_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``softmax(logits)`` ``(N, C)`` against the uniform
    distribution: ``logsumexp(o) - mean(o)``, smallest (log C) for equal logits; a
    scalar."""
    return (torch.logsumexp(logits, dim=-1) - logits.mean(dim=-1)).mean()


def exposure_loss(task: Any, target: Any, head: int, gen: torch.Generator,
                  weight: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss of generated weights ``(P,)`` on a batch ``x`` ``(N, D)``, ``y`` of
    ``task``: its task loss plus ``weight`` times the uniform cross-entropy of the
    ``target`` net's outputs (head ``head``) on the batch's shuffled blocks (``gen``)."""
    def loss(weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = target(torch.cat([x, shuffled_blocks(x, task.in_shape, gen)]), weights, head)
        return task_loss(task.kind, out[:len(x)], y) + weight * uniform_cross_entropy(out[len(x):])
    return loss
