"""The penalties of the regularization baselines against hand formulas and loops:
Fisher diagonals, SI's path integral, the merged quadratic."""
import numpy as np
import pytest
import torch

from hnviz.core.penalties import (MergedQuadratic, PathIntegral, fisher_diagonal,
                             fisher_diagonal_loop, mlp_fisher_diagonal)
from hnviz.core.targets import build_target


def test_fisher_linear_softmax_matches_analytic():
    target = build_target("mlp", 2, 2, (), "relu")  # logits = W x + b
    W, b = np.array([[0.5, -1.0], [1.5, 0.3]]), np.array([0.1, -0.2])
    x = np.array([[1.0, 2.0], [-0.5, 0.7], [0.3, -1.2]])
    theta = torch.tensor(np.concatenate([W.ravel(), b]), dtype=torch.float32)
    F = fisher_diagonal(target, theta, torch.tensor(x, dtype=torch.float32))
    ref = np.zeros(6)
    for xi in x:
        z = W @ xi + b
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        for c in range(2):
            d = np.eye(2)[c] - p  # d log p_c / d logits
            ref += p[c] * np.concatenate([np.outer(d, xi).ravel(), d]) ** 2
    np.testing.assert_allclose(F.numpy(), ref / len(x), rtol=1e-5)


def test_fisher_regression_is_squared_output_gradient():
    target = build_target("mlp", 2, 1, (), "relu")  # f = w . x + b: df/dtheta = (x, 1)
    x = torch.tensor([[1.0, 2.0], [-3.0, 0.5]])
    F = fisher_diagonal(target, torch.randn(3), x, kind="regression")
    np.testing.assert_allclose(F.numpy(), [(1 + 9) / 2, (4 + 0.25) / 2, 1.0], rtol=1e-6)


def test_fisher_vmap_matches_per_sample_loop():
    target = build_target("mlp", 4, 3, (5,), "tanh", n_heads=2)
    theta, x = torch.randn(target.num_params), torch.randn(7, 4)
    F = fisher_diagonal(target, theta, x, head=1, chunk=3)
    ref = torch.zeros_like(theta)
    for xi in x:
        w = theta.clone().requires_grad_(True)
        logp = torch.log_softmax(target(xi[None], w, 1)[0], -1)
        for c in range(3):
            (g,) = torch.autograd.grad(logp[c], w, retain_graph=True)
            ref += logp[c].exp().detach() * g ** 2
    torch.testing.assert_close(F, ref / len(x), rtol=1e-5, atol=1e-7)
    last_w, last_b = F[-36:-6].reshape(6, 5), F[-6:]  # last layer: 2 heads x 3 outputs
    assert last_w[:3].abs().sum() == 0 and last_b[:3].abs().sum() == 0  # head 0 untouched


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "elu"])
@pytest.mark.parametrize("kind,heads,head", [("classification", 1, 0), ("classification", 3, 2),
                                             ("regression", 1, 0), ("regression", 2, 1)])
def test_mlp_fisher_matches_per_sample_jacobians_float64(activation, kind, heads, head):
    torch.manual_seed(0)
    target = build_target("mlp", 6, 4, (7, 5), activation, n_heads=heads)
    theta = torch.randn(target.num_params, dtype=torch.float64)
    x = torch.randn(11, 6, dtype=torch.float64)
    fast = mlp_fisher_diagonal(target, theta, x, head, kind, chunk=4)  # 3 uneven chunks
    ref = fisher_diagonal_loop(target, theta, x, head, kind, chunk=5)
    assert fast.dtype == torch.float64 and fast.shape == theta.shape
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-12)
    assert fast.abs().sum() > 0
    torch.testing.assert_close(fisher_diagonal(target, theta, x, head, kind), ref,
                               rtol=1e-10, atol=1e-12)  # the dispatcher picks the fast form


def test_lenet_fisher_uses_the_jacobian_loop():
    target = build_target("lenet", 256, 3, (6,), "relu")
    theta, x = torch.randn(target.num_params) * 0.1, torch.randn(3, 256)
    torch.testing.assert_close(fisher_diagonal(target, theta, x),
                               fisher_diagonal_loop(target, theta, x))


def test_si_path_integral_quadratic_by_hand():
    a, m, xi = torch.tensor([2.0, 0.5]), torch.tensor([1.0, -1.0]), 0.1
    theta = torch.nn.Parameter(torch.tensor([3.0, 2.0]))
    eta, K = 0.1, 12
    opt, path = torch.optim.SGD([theta], lr=eta), PathIntegral(theta)
    for _ in range(K):  # L = 0.5 sum a (theta - m)^2, plain gradient steps
        opt.zero_grad()
        (0.5 * a * (theta - m) ** 2).sum().backward()
        before = theta.detach().clone()
        opt.step()
        path.update(theta.grad, before, theta.detach())
    # theta_k - m = r^k d0 with r = 1 - eta a; omega = sum_k eta g_k^2 = eta a^2 d0^2 sum r^2k
    d0, r = np.array([2.0, 3.0]), 1 - eta * a.numpy()
    omega = eta * a.numpy() ** 2 * d0 ** 2 * (1 - r ** (2 * K)) / (1 - r ** 2)
    np.testing.assert_allclose(path.omega.numpy(), omega, rtol=1e-5)
    total = d0 * (r ** K - 1)  # theta_K - theta_0
    np.testing.assert_allclose(path.importance(theta, xi).numpy(), omega / (total ** 2 + xi),
                               rtol=1e-5)


@pytest.mark.parametrize("K", [1, 2, 100])
def test_merged_penalty_equals_the_per_task_sum(K):
    """The O(P) merged form against the plain loop over anchors, value and gradient
    (float64 reference, rtol 1e-5), also evaluated in float32 right next to an anchor."""
    g = torch.Generator().manual_seed(K)
    P = 3000
    F = (torch.rand(K, P, generator=g) ** 4).double()  # small and large importances
    F[:, :50] = 0  # weights no task cares about
    A = (torch.randn(K, P, generator=g) + 5.0).double()  # float32 values, held in float64

    def loop(theta):
        return 1.5 * sum((F[k] * (theta - A[k]) ** 2).sum() for k in range(K))

    merged = MergedQuadratic(F.float(), A.float())
    for theta0 in (A.mean(0) + 0.3 * torch.randn(P, generator=g, dtype=torch.float64),
                   A[-1] + 1e-4 * torch.randn(P, generator=g, dtype=torch.float64)):
        ref_theta = theta0.float().double().requires_grad_()
        ref = loop(ref_theta)
        ref.backward()
        for dtype, rtol in ((torch.float64, 1e-5), (torch.float32, 1e-4)):
            theta = theta0.float().to(dtype).requires_grad_()
            value = merged(theta, 1.5)
            value.backward()
            assert value.item() == pytest.approx(ref.item(), rel=rtol)
            torch.testing.assert_close(theta.grad.double(), ref_theta.grad, rtol=rtol,
                                       atol=rtol * ref_theta.grad.abs().max().item())
    at_anchor = merged(A[0], 1.0).item()
    assert at_anchor == 0.0 if K == 1 else at_anchor == pytest.approx(loop(A[0]).item() / 1.5)
