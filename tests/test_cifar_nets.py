"""The CIFAR targets against the authors' library (hypnettorch, the `bench` extra that
`make` installs): the same number of weights, and the same outputs and gradients for the
same weights (float64)."""
import pytest
import torch

from hnviz.core.targets import build_target, count_params

mnets = pytest.importorskip("hypnettorch.mnets")


def hwc(x: torch.Tensor) -> torch.Tensor:
    """hnviz's channel-first flat images ``(N, 3*32*32)`` in hypnettorch's layout
    (height, width, channel, flattened)."""
    return x.reshape(len(x), 3, 32, 32).permute(0, 2, 3, 1).reshape(len(x), -1)


@pytest.mark.parametrize("heads", [1, 6])
def test_zenkenet_equals_hypnettorch(heads):
    net = build_target("zenkenet", 3072, 10, (512,), "relu", n_heads=heads, in_shape=(3, 32, 32))
    net.module.double()
    theirs = mnets.ZenkeNet(in_shape=(32, 32, 3), num_classes=10 * heads, verbose=False,
                            no_weights=True, dropout_rate=-1).double()
    assert net.num_params == theirs.num_params == count_params(
        "zenkenet", 3072, 10, (512,), heads, (3, 32, 32))
    assert [tuple(s) for s in theirs.param_shapes] == net.shapes
    gen = torch.Generator().manual_seed(0)
    w = (torch.randn(net.num_params, generator=gen, dtype=torch.float64) * 0.05)
    x = torch.rand(5, 3072, generator=gen, dtype=torch.float64)
    w1, w2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    ours = net(x, w1, head=None)  # (N, heads * 10)
    ref = theirs.forward(hwc(x), weights=list(net.unflatten(w2).values()))
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    (ours.sin().sum()).backward()
    (ref.sin().sum()).backward()
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-10, atol=1e-12)
    if heads > 1:
        torch.testing.assert_close(net(x, w, head=4), ours[:, 40:50].detach())
