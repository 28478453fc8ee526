"""Variational autoencoders for generative replay (docs/paper.md, "Replay").

A replay model is an MLP *encoder* ``x -> (mu, log sigma^2)`` and a *decoder* template
``z -> x`` (logits of Bernoulli pixels) evaluated with external flat weights, like every
target net (:class:`hnviz.core.targets.TargetNet`): HNET+TIR's decoder weights come from a
hypernetwork, DGR's from one plain parameter vector. Inputs are images in [0, 1].

    loss(x) = E_q[-log p(x | z)] + KL(q(z | x) || N(0, I))     (one sample of z)

summed over pixels and latent dimensions, averaged over the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .targets import TargetNet, build_target


def build_encoder(in_features: int, hidden: tuple[int, ...], latent: int) -> nn.Sequential:
    """MLP ``(N, D) -> (N, 2 * latent)``: the mean and log-variance of q(z | x)."""
    sizes = [in_features, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 2 * latent))


def build_decoder(latent: int, hidden: tuple[int, ...], in_features: int) -> TargetNet:
    """Decoder template ``(N, latent) -> (N, D)`` pixel logits; ``hidden`` in the
    encoder's order (the decoder mirrors it)."""
    return build_target("mlp", latent, in_features, tuple(reversed(hidden)), "relu")


def encoder_params(in_features: int, hidden: tuple[int, ...], latent: int) -> int:
    """Weights of :func:`build_encoder`, by arithmetic alone."""
    sizes = [in_features, *hidden, 2 * latent]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def decoder_params(latent: int, hidden: tuple[int, ...], in_features: int) -> int:
    """Weights of :func:`build_decoder`, by arithmetic alone."""
    sizes = [latent, *reversed(hidden), in_features]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def vae_loss(x: torch.Tensor, encoder: nn.Module, decoder: TargetNet, weights: torch.Tensor,
             gen: torch.Generator) -> torch.Tensor:
    """Negative ELBO of ``x`` ``(N, D)`` in [0, 1] (mean over the batch, one z per input
    drawn with ``gen``) for the decoder with weights ``(P,)``; a scalar."""
    mu, logvar = encoder(x).chunk(2, dim=-1)  # (N, L) each
    eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype).to(mu.device)  # CPU stream
    z = mu + (0.5 * logvar).exp() * eps
    logits = decoder(z, weights)  # (N, D)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / len(x)
    return rec + kl


@torch.no_grad()
def sample(decoder: TargetNet, weights: torch.Tensor, n: int, gen: torch.Generator,
           latent: torch.Tensor | None = None) -> torch.Tensor:
    """Images decoded from ``n`` draws of N(0, I) (or the given ``latent`` ``(n, L)``):
    weights ``(P,)`` -> ``(n, D)``, ``(B, P)`` -> ``(B, n, D)`` (one latent batch shared
    by all B decoders); pixel means in [0, 1]."""
    if latent is None:
        latent = torch.randn(n, decoder.in_features, generator=gen).to(weights.device)
    return torch.sigmoid(decoder(latent, weights))
