"""The batched output regularizer and the Adam lookahead against plain references."""
import copy

import pytest
import torch

from hnviz.core.hnets import ChunkedHyperNet, FullHyperNet
from hnviz.core.lookahead import AdamLookahead, adam
from hnviz.core.regularizer import RegTargets, gram_regularizer, output_regularizer


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
    idx = torch.tensor([7, 2, 4])
    for form in ("gram", "direct"):
        torch.testing.assert_close(reg.loss(idx, params, form),
                                   naive_regularizer(hnet, embs[idx], targets[idx], params),
                                   rtol=1e-5, atol=0)
        # all tasks twice: the second Gram call uses the cached X*'X*
        for _ in range(2):
            fast = reg.loss(None, params, form)
            torch.testing.assert_close(fast, slow, rtol=1e-5, atol=0)
            for a, b in zip(torch.autograd.grad(fast, list(hnet.parameters())), g_slow):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-10)
    torch.testing.assert_close(reg(idx), targets[idx])  # targets from the cached x* A*'


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
    assert reg.form_for(30) == "gram"  # 30 tasks x 45 chunks: the cheaper one
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


def _plain_adam_delta(opt, p):
    """Adam's step for one parameter by its textbook formula (Kingma & Ba, with torch's
    eps placement and L2 weight decay)."""
    group = next(g for g in opt.param_groups if any(q is p for q in g["params"]))
    beta1, beta2 = group["betas"]
    grad = p.grad + group["weight_decay"] * p.detach()
    state = opt.state.get(p, {})
    t = float(state["step"]) + 1 if state else 1.0
    m = (state["exp_avg"] if state else torch.zeros_like(p)) * beta1 + (1 - beta1) * grad
    v = (state["exp_avg_sq"] if state else torch.zeros_like(p)) * beta2 + (1 - beta2) * grad ** 2
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return -group["lr"] * m_hat / (v_hat.sqrt() + group["eps"])


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("form", ["fused", "foreach", "loop"])
def test_lookahead_is_the_step_adam_takes(weight_decay, warm, form):
    """float64: the lookahead equals the optimizer's next step (its own arithmetic) and the
    textbook Adam formula to rounding; optimizer state and parameters stay untouched."""
    hnet = ChunkedHyperNet(4, 61, 10, 3, (16,), "relu").double()
    params = list(hnet.parameters())
    kwargs = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}
    opt = torch.optim.Adam(params, lr=1e-2, weight_decay=weight_decay, **kwargs[form])
    if warm:
        _train_a_little(opt, params)
    lookahead = AdamLookahead(opt)
    for _ in range(2):  # twice: the shadow buffers are reused
        opt.zero_grad()
        (hnet(torch.randn(3, 4, dtype=torch.float64)) ** 3).mean().backward()
        state_before = copy.deepcopy(opt.state_dict())
        before = [p.detach().clone() for p in params]
        delta = lookahead()
        assert not any(q.requires_grad for q in lookahead.ahead().values())
        assert str(opt.state_dict()) == str(state_before)
        assert all(torch.equal(p, b) for p, b in zip(params, before))
        plain = {p: _plain_adam_delta(opt, p) for p in params}
        opt.step()
        for p, b in zip(params, before):
            # the same arithmetic as the step: equal up to the rounding of b + (p - b)
            torch.testing.assert_close(b + delta[p], p.detach(), rtol=1e-15, atol=1e-18)
            torch.testing.assert_close(delta[p], plain[p], rtol=1e-9, atol=1e-15)


def test_adam_is_fused_where_it_can_be():
    p = torch.nn.Parameter(torch.ones(3))
    assert adam([p], 0.1).defaults["fused"] is True


def test_lookahead_needs_adam():
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(TypeError, match="Adam"):
        AdamLookahead(torch.optim.SGD([p], lr=0.1))


@pytest.mark.parametrize("subset", [None, 2])
def test_lookahead_step_equals_the_reference_step(subset):
    """float64: train_step's lookahead (gradient taken at the lookahead's own tensors)
    gives the parameters of the plain recipe: task-loss backward, dtheta = Adam's step
    for it, beta * reg(theta + dtheta) backward through theta + dtheta, Adam step."""
    from hnviz.core.targets import build_target
    from hnviz.core.tasks import Task
    from hnviz.core.train import StepRule, StepState, _reg_indices, task_loss, train_step

    torch.manual_seed(0)
    target = build_target("mlp", 5, 3, (7,), "relu")
    hnet = ChunkedHyperNet(4, target.num_params, 20, 3, (16,), "relu").double()
    x, y = torch.randn(8, 5, dtype=torch.float64), torch.randint(3, (8,))
    task = Task(3, "t", "classification", x, y, x, y, 3, 4, (5,))
    embs = torch.randn(3, 4, dtype=torch.float64)
    ref = copy.deepcopy(hnet)
    star = {n: p.detach() + 0.05 * torch.randn_like(p) for n, p in hnet.named_parameters()}
    runs = []
    for net in (hnet, ref):
        emb = torch.nn.Parameter(torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
        runs.append(StepState(task, emb, adam(net.parameters(), 0.01), adam([emb], 0.01),
                              RegTargets(net, embs, theta_star=star), torch.Generator().manual_seed(2)))
    idx = torch.arange(8)
    for _ in range(3):
        train_step(hnet, target, runs[0], idx, StepRule(0.5, True, subset))
        s = runs[1]  # the plain recipe, by hand
        for opt in (s.theta_opt, s.emb_opt):
            opt.zero_grad(set_to_none=True)
        task_loss("classification", target(x, ref(s.emb[None])[0]), y).backward()
        delta = AdamLookahead(s.theta_opt)()
        params = {n: p + delta[p] for n, p in ref.named_parameters()}
        (0.5 * s.reg.loss(_reg_indices(3, subset, s.gen), params)).backward()
        for opt in (s.theta_opt, s.emb_opt):
            opt.step()
    for a, b in zip(hnet.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
