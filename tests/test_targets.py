"""Target networks: vmapped functional evaluation against a loop and an nn.Module."""
import copy

import pytest
import torch
from torch.nn.utils import vector_to_parameters

from hnviz.core.targets import build_target


def module_with(net, w):
    m = copy.deepcopy(net.module)
    vector_to_parameters(w, m.parameters())
    return m


@pytest.mark.parametrize("kind,in_features,act", [("mlp", 5, "relu"), ("mlp", 5, "sigmoid"),
                                                  ("mlp", 5, "elu"), ("mlp", 5, "tanh"),
                                                  ("lenet", 784, "relu"),
                                                  ("convnet", 64, "relu"),
                                                  ("convnet", 784, "elu")])
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


@pytest.mark.parametrize("act", ["relu", "sigmoid", "elu", "tanh"])
@pytest.mark.parametrize("heads", [1, 3])
def test_mlp_fast_path_equals_functional_call_value_and_gradient(act, heads):
    """The MLP's layer-by-layer forward (no parameter swapping) against torch's
    functional_call on the template, float64: outputs and gradients with respect to the
    weights and the inputs, one weight set and a vmapped batch of them."""
    net = build_target("mlp", 5, 2, (7, 6), act, n_heads=heads)
    net.module.double()
    gen = torch.Generator().manual_seed(0)
    W = (torch.randn(3, net.num_params, generator=gen, dtype=torch.float64) * 0.4)
    x = torch.randn(4, 5, generator=gen, dtype=torch.float64)

    def reference(xx, w, head):
        out = torch.func.functional_call(net.module, net.unflatten(w), (xx,))
        return out[:, 2 * head:2 * head + 2] if heads > 1 else out

    for head in range(heads):
        w1, x1 = W[1].clone().requires_grad_(), x.clone().requires_grad_()
        w2, x2 = W[1].clone().requires_grad_(), x.clone().requires_grad_()
        fast, ref = net(x1, w1, head), reference(x2, w2, head)
        assert torch.equal(fast, ref)
        (fast ** 2).sum().backward()
        (ref ** 2).sum().backward()
        torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-12, atol=1e-14)
        batched = net(x, W, head)  # (B, N, out) under vmap
        for b in range(3):
            torch.testing.assert_close(batched[b], reference(x, W[b], head),
                                       rtol=1e-12, atol=1e-14)


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


def test_convnet_takes_small_images_and_counts_its_weights():
    from hnviz.core.targets import count_params
    for in_features, shape in ((64, None), (784, None), (3 * 32 * 32, (3, 32, 32))):
        net = build_target("convnet", in_features, 10, (50,), "relu", n_heads=2, in_shape=shape)
        assert net.num_params == count_params("convnet", in_features, 10, (50,), 2, shape)
        assert net(torch.randn(5, in_features), torch.randn(net.num_params) * 0.1).shape == (5, 10)
    with pytest.raises(ValueError, match="at least 4x4"):
        build_target("convnet", 9, 10, (20,), "relu")


def test_parameter_counts_by_arithmetic_equal_the_built_nets():
    """The counts a run's description is checked with (before anything is allocated)
    equal the networks' real sizes."""
    import random

    from hnviz.core.hnets import build_hnet, count_params as count_hnet
    from hnviz.core.targets import count_params

    rng = random.Random(0)
    for _ in range(30):
        kind = rng.choice(["mlp", "lenet"])
        hidden = tuple(rng.randint(1, 30) for _ in range(rng.randint(0, 3)))
        shape = (rng.randint(1, 3), rng.randint(16, 40), rng.randint(16, 40)) \
            if kind == "lenet" else None
        d = shape[0] * shape[1] * shape[2] if shape else rng.randint(1, 100)
        out, heads = rng.randint(1, 12), rng.randint(1, 4)
        t = build_target(kind, d, out, hidden, "relu", heads, shape)
        assert t.num_params == count_params(kind, d, out, hidden, heads, shape)
        hk, E, C, Ce = rng.choice(["full", "chunked"]), rng.randint(1, 8), rng.randint(1, 200), \
            rng.randint(1, 8)
        hh = tuple(rng.randint(1, 20) for _ in range(rng.randint(0, 2)))
        h = build_hnet(hk, E, t.num_params, hh, "relu", C, Ce)
        assert h.num_params == count_hnet(hk, E, t.num_params, hh, C, Ce)
