"""Hypernetworks: shapes, chunk layout against a manual loop, init, compression ratio."""
import pytest
import torch

from hnviz.hnets import ChunkedHyperNet, FullHyperNet, build_hnet


def test_full_hnet_shape_and_init():
    h = FullHyperNet(3, 50, (10, 10), "sigmoid")
    assert h(torch.randn(4, 3)).shape == (4, 50)
    for m in h.modules():
        if isinstance(m, torch.nn.Linear):
            assert torch.count_nonzero(m.bias) == 0
    assert h.num_params == 3 * 10 + 10 + 10 * 10 + 10 + 10 * 50 + 50
    assert h.compression_ratio(5) == pytest.approx((h.num_params + 15) / 50)


def test_chunked_hnet_equals_per_chunk_loop():
    h = ChunkedHyperNet(emb_dim=3, num_outputs=23, chunk_size=5, chunk_emb_dim=2, hidden=(8,))
    assert h.n_chunks == 5
    emb = torch.randn(2, 3)
    out = h(emb)  # (B, P)
    assert out.shape == (2, 23)
    for b in range(2):
        chunks = [h.mlp(torch.cat([emb[b], h.chunk_embs[k]])) for k in range(5)]
        torch.testing.assert_close(out[b], torch.cat(chunks)[:23])


def test_compressive_regime():
    h = ChunkedHyperNet(8, 100_000, 500, 8, (20, 20))
    assert h.compression_ratio(10) < 1


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown hnet kind 'tiny'"):
        build_hnet("tiny", 2, 10, (5,), "relu")
