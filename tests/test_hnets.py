"""Hypernetworks: shapes, chunk layout against a manual loop, init, compression ratio."""
import pytest
import torch

import hnviz
from hnviz.core.hnets import ChunkedHyperNet, FullHyperNet, build_hnet


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


def test_pytorch_init_matches_nn_linear_default():
    torch.manual_seed(5)
    h = FullHyperNet(2, 30, (10,), "sigmoid", init="pytorch")
    torch.manual_seed(5)
    ref = [torch.nn.Linear(2, 10), torch.nn.Linear(10, 30)]
    torch.testing.assert_close(h.mlp[0].weight, ref[0].weight)
    torch.testing.assert_close(h.mlp[2].bias, ref[1].bias)
    with pytest.raises(ValueError, match="unknown hnet_init 'he'"):
        FullHyperNet(2, 30, init="he")


def test_fashion_100_preset_is_what_results_md_describes():
    """docs/results.md, "Long sequences on real images": the target in 12 chunks of 8000,
    1,078,688 numbers with 100 task embeddings, ratio 12.0 (12 % of 100 separate nets)."""
    learner = hnviz.HyperCL(hnviz.HyperCLConfig.preset("permuted_fashion_mnist_100"),
                            progress=False)
    learner.build(784, 10)
    hnet, target = learner.hnet_, learner.target_
    assert (hnet.n_chunks, hnet.chunk_size, target.num_params) == (12, 8000, 89_610)
    assert hnet.num_params + 100 * 32 == 1_078_688
    assert round(hnet.compression_ratio(100), 1) == 12.0
    assert round(100 * (hnet.num_params + 3200) / (100 * target.num_params)) == 12
