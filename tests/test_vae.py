"""The VAE pieces of generative replay against hand-written references (float64)."""
import math

import torch

from hnviz.core.vae import (build_decoder, build_encoder, decoder_params, encoder_params, sample,
                       vae_loss)


def test_sizes_by_arithmetic_match_the_modules():
    enc, dec = build_encoder(64, (30, 20), 5), build_decoder(5, (30, 20), 64)
    assert sum(p.numel() for p in enc.parameters()) == encoder_params(64, (30, 20), 5)
    assert dec.num_params == decoder_params(5, (30, 20), 64)
    assert [m.out_features for m in dec.module.net if hasattr(m, "out_features")] == [20, 30, 64]


def test_vae_loss_equals_the_negative_elbo_by_hand():
    torch.manual_seed(0)
    enc, dec = build_encoder(6, (4,), 2).double(), build_decoder(2, (4,), 6)
    dec.module.double()
    w = torch.randn(dec.num_params, dtype=torch.float64) * 0.5
    x = torch.rand(3, 6, dtype=torch.float64)
    loss = vae_loss(x, enc, dec, w, torch.Generator().manual_seed(5))
    eps = torch.randn(3, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    total = 0.0
    for i in range(3):  # one input at a time, with explicit Bernoulli and Gaussian terms
        mu, logvar = enc(x[i:i + 1])[0].chunk(2)
        z = mu + torch.exp(0.5 * logvar) * eps[i]
        p = torch.sigmoid(dec(z[None], w)[0])
        nll = -(x[i] * torch.log(p) + (1 - x[i]) * torch.log(1 - p)).sum()
        kl = 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar).sum()
        total = total + nll + kl
    torch.testing.assert_close(loss, total / 3, rtol=1e-10, atol=1e-12)
    g1 = torch.autograd.grad(loss, list(enc.parameters()))
    g2 = torch.autograd.grad(total / 3, list(enc.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


def test_samples_are_pixel_means_shared_latents_across_decoders():
    dec = build_decoder(3, (8,), 10)
    W = torch.randn(4, dec.num_params)
    g = torch.Generator().manual_seed(0)
    out = sample(dec, W, 7, g)
    assert out.shape == (4, 7, 10) and out.min() >= 0 and out.max() <= 1
    z = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    for b in range(4):
        torch.testing.assert_close(out[b], torch.sigmoid(dec(z, W[b])))
    assert not math.isclose(out[0].sum().item(), out[1].sum().item())
