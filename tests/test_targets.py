"""Target networks: vmapped functional evaluation against a loop and an nn.Module."""
import copy

import pytest
import torch
from torch.nn.utils import vector_to_parameters

from hnviz.targets import build_target


def module_with(net, w):
    m = copy.deepcopy(net.module)
    vector_to_parameters(w, m.parameters())
    return m


@pytest.mark.parametrize("kind,in_features,act", [("mlp", 5, "relu"), ("mlp", 5, "sigmoid"),
                                                  ("mlp", 5, "elu"), ("mlp", 5, "tanh"),
                                                  ("lenet", 784, "relu")])
def test_vmapped_forward_equals_loop_and_module(kind, in_features, act):
    net = build_target(kind, in_features, 3, (7, 6) if kind == "mlp" else (20,), act)
    net.module.double()  # float64: the comparison checks the layout, not rounding
    W = torch.randn(4, net.num_params, dtype=torch.float64) * 0.3  # (B, P)
    x = torch.randn(6, in_features, dtype=torch.float64)  # (N, D)
    batched = net(x, W)  # (B, N, out)
    assert batched.shape == (4, 6, 3)
    for b in range(4):
        torch.testing.assert_close(batched[b], net(x, W[b]), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(batched[b], module_with(net, W[b])(x), rtol=1e-10, atol=1e-12)


def test_per_weight_set_inputs():
    net = build_target("mlp", 4, 2, (8,), "tanh")
    W, x = torch.randn(3, net.num_params), torch.randn(3, 5, 4)  # (B, P), (B, N, D)
    out = net(x, W)
    for b in range(3):
        torch.testing.assert_close(out[b], net(x[b], W[b]))


def test_multi_head_selects_its_slice():
    net = build_target("mlp", 4, 2, (8,), "relu", n_heads=3)
    w, x = torch.randn(net.num_params), torch.randn(5, 4)
    full = module_with(net, w)(x)  # (N, heads * out)
    assert full.shape == (5, 6)
    for h in range(3):
        torch.testing.assert_close(net(x, w, head=h), full[:, 2 * h:2 * h + 2])


def test_flat_layout_round_trip():
    net = build_target("mlp", 3, 2, (4,), "relu")
    assert net.num_params == 3 * 4 + 4 + 4 * 2 + 2
    w = net.flatten_module()
    parts = net.unflatten(w)
    for (name, p) in net.module.named_parameters():
        torch.testing.assert_close(parts[name], p)


@pytest.mark.parametrize("bad", [{"kind": "resnet"}, {"activation": "gelu"}])
def test_unknown_names(bad):
    kw = {"kind": "mlp", "in_features": 3, "out_features": 2, "hidden": (4,), "activation": "relu"}
    kw.update(bad)
    with pytest.raises(ValueError, match="choose"):
        build_target(**kw)


def test_lenet_needs_square_images():
    with pytest.raises(ValueError, match="square"):
        build_target("lenet", 50, 10, (20,), "relu")
