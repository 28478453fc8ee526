"""The batched output regularizer and the Adam lookahead against plain references."""
import copy

import pytest
import torch

from hnviz.hnets import ChunkedHyperNet, FullHyperNet
from hnviz.regularizer import (RegTargets, adam_lookahead, gram_regularizer, output_regularizer,
                               snapshot_features)


def naive_regularizer(hnet, embs, targets, params=None):
    """Plain per-task loop: 1/S sum_t ||h(e_t) - W*_t||^2, one forward per task."""
    total = 0.0
    for e, w_star in zip(embs, targets):
        w = hnet(e[None])[0] if params is None else torch.func.functional_call(hnet, params, (e[None],))[0]
        total = total + ((w - w_star) ** 2).sum()
    return total / len(embs)


HNETS = [lambda: FullHyperNet(4, 60, (16, 16), "relu"),
         lambda: ChunkedHyperNet(4, 61, 10, 3, (16,), "elu")]


@pytest.mark.parametrize("make", HNETS)
@pytest.mark.parametrize("shifted", [False, True])
def test_batched_equals_loop_value_and_gradient(make, shifted):
    hnet = make().double()
    embs, targets = torch.randn(7, 4).double(), torch.randn(7, hnet.num_outputs).double()
    params = None
    if shifted:  # theta + dtheta, as with the lookahead
        params = {n: p + 0.01 * torch.randn_like(p) for n, p in hnet.named_parameters()}
    fast = output_regularizer(hnet, embs, targets, params)
    g_fast = torch.autograd.grad(fast, list(hnet.parameters()))
    slow = naive_regularizer(hnet, embs, targets, params)
    g_slow = torch.autograd.grad(slow, list(hnet.parameters()))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=0)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-10)


def test_batched_equals_loop_float32():
    hnet = ChunkedHyperNet(8, 2000, 300, 8, (32, 32), "relu")
    embs, targets = torch.randn(20, 8), torch.randn(20, 2000) * 0.1
    fast, slow = output_regularizer(hnet, embs, targets), naive_regularizer(hnet, embs, targets)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-7)


GRAM_HNETS = [lambda: FullHyperNet(4, 60, (16, 12), "relu"),
              lambda: ChunkedHyperNet(4, 61, 10, 3, (16,), "elu"),  # last chunk: 1 of 10 rows
              lambda: ChunkedHyperNet(4, 60, 10, 3, (16, 8), "relu")]  # chunks fill P exactly


def _snapshot(hnet, scale=0.05):
    g = torch.Generator().manual_seed(1)
    return {n: p.detach() + scale * torch.randn(p.shape, generator=g, dtype=p.dtype)
            for n, p in hnet.named_parameters()}


@pytest.mark.parametrize("make", GRAM_HNETS)
@pytest.mark.parametrize("shifted", [False, True])
def test_gram_form_equals_loop_value_and_gradient(make, shifted):
    """Targets from a snapshot theta*: the Gram form equals the per-task loop in float64."""
    hnet = make().double()
    embs = torch.randn(9, 4, dtype=torch.float64)
    theta_star = _snapshot(hnet)
    with torch.no_grad():
        targets = torch.func.functional_call(hnet, theta_star, (embs,))
    params = None
    if shifted:  # theta + dtheta, as with the lookahead
        params = {n: p + 0.01 * torch.randn_like(p) for n, p in hnet.named_parameters()}
    fast = gram_regularizer(hnet, embs, theta_star, params)
    slow = naive_regularizer(hnet, embs, targets, params)
    g_fast = torch.autograd.grad(fast, list(hnet.parameters()))
    g_slow = torch.autograd.grad(slow, list(hnet.parameters()))
    assert slow.item() > 0.01
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=0)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-10)
    # a subset of tasks with the cached snapshot features, through RegTargets
    reg = RegTargets(hnet, embs, theta_star=theta_star)
    reg.gram, reg._star = True, snapshot_features(hnet, embs, theta_star)
    idx = torch.tensor([7, 2, 4])
    torch.testing.assert_close(reg.loss(idx, params),
                               naive_regularizer(hnet, embs[idx], targets[idx], params),
                               rtol=1e-5, atol=0)


@pytest.mark.parametrize("scale", [1e-2, 1e-4])
def test_gram_form_float32_is_as_accurate_as_the_direct_form(scale):
    """Realistic size (pmnist-small, 30 tasks), theta near theta* as in training: against
    the float64 loop, the float32 Gram form errs no more than the float32 direct form
    (measured: both ~1e-7 to 2e-6 in value, 1e-6 to 1e-4 in gradient norm)."""
    torch.manual_seed(0)
    hnet = ChunkedHyperNet(32, 89_610, 2000, 32, (100, 100), "relu")
    embs = torch.randn(30, 32)
    theta_star = _snapshot(hnet, scale)
    reg = RegTargets(hnet, embs, theta_star=theta_star)
    assert reg.gram  # 30 tasks x 45 chunks: the Gram form is the cheaper one
    with torch.no_grad():
        targets = torch.func.functional_call(hnet, theta_star, (embs,))
    ref_net = copy.deepcopy(hnet).double()
    with torch.no_grad():
        targets64 = torch.func.functional_call(
            ref_net, {n: p.double() for n, p in theta_star.items()}, (embs.double(),))
    ref = naive_regularizer(ref_net, embs.double(), targets64)
    ref_grads = torch.autograd.grad(ref, list(ref_net.parameters()))

    def errors(value):
        grads = torch.autograd.grad(value, list(hnet.parameters()))
        g = max(((a.double() - b).norm() / b.norm()).item() for a, b in zip(grads, ref_grads))
        return abs(value.item() - ref.item()) / ref.item(), g

    gram, direct = errors(reg.loss()), errors(output_regularizer(hnet, embs, targets))
    assert gram[0] < 1e-5 and gram[0] <= 3 * direct[0] + 1e-7
    assert gram[1] <= 3 * direct[1] + 1e-6


def test_stored_and_snapshot_targets_agree_and_ignore_later_updates():
    hnet = FullHyperNet(3, 40, (8,), "tanh")
    embs = torch.randn(5, 3)
    stored, snap = RegTargets(hnet, embs, "stored"), RegTargets(hnet, embs, "snapshot")
    expected = hnet(embs).detach()
    with torch.no_grad():
        for p in hnet.parameters():
            p.add_(1.0)  # training moves theta; W* must stay what it was
    torch.testing.assert_close(stored(), expected)
    torch.testing.assert_close(snap(), expected)
    idx = torch.tensor([3, 0])
    torch.testing.assert_close(snap(idx), expected[idx])
    torch.testing.assert_close(stored(idx), expected[idx])


def _train_a_little(opt, params, n=3):
    for _ in range(n):
        opt.zero_grad()
        sum((p ** 2).sum() for p in params).backward()
        opt.step()


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("warm", [False, True])
def test_lookahead_equals_the_step_adam_takes(weight_decay, warm):
    hnet = ChunkedHyperNet(4, 61, 10, 3, (16,), "relu")
    params = list(hnet.parameters())
    opt = torch.optim.Adam(params, lr=1e-2, weight_decay=weight_decay)
    if warm:
        _train_a_little(opt, params)
    opt.zero_grad()
    (hnet(torch.randn(3, 4)) ** 3).mean().backward()
    state_before = copy.deepcopy(opt.state_dict())
    delta = adam_lookahead(opt)
    # the optimizer state is untouched by the lookahead
    assert str(opt.state_dict()) == str(state_before)
    before = [p.detach().clone() for p in params]
    opt.step()
    for p, b in zip(params, before):
        torch.testing.assert_close(delta[p], p.detach() - b, rtol=1e-5, atol=1e-8)


def test_lookahead_needs_adam():
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(TypeError, match="Adam"):
        adam_lookahead(torch.optim.SGD([p], lr=0.1))
