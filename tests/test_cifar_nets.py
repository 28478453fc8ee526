"""The CIFAR targets against the authors' library (hypnettorch, the `bench` extra that
`make` installs): the same number of weights, and the same outputs and gradients for the
same weights (float64)."""
import pytest
import torch

from hnviz.core.targets import build_target, count_params



def authors() -> object:
    """hypnettorch's main networks (skipped where the `bench` extra is not installed)."""
    return pytest.importorskip("hypnettorch.mnets")


def hwc(x: torch.Tensor) -> torch.Tensor:
    """hnviz's channel-first flat images ``(N, 3*32*32)`` in hypnettorch's layout
    (height, width, channel, flattened)."""
    return x.reshape(len(x), 3, 32, 32).permute(0, 2, 3, 1).reshape(len(x), -1)


@pytest.mark.parametrize("heads", [1, 6])
def test_zenkenet_equals_hypnettorch(heads):
    net = build_target("zenkenet", 3072, 10, (512,), "relu", n_heads=heads, in_shape=(3, 32, 32))
    net.module.double()
    theirs = authors().ZenkeNet(in_shape=(32, 32, 3), num_classes=10 * heads, verbose=False,
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


def resnet(heads: int = 6):
    net = build_target("resnet32", 3072, 10, (), "relu", n_heads=heads, in_shape=(3, 32, 32))
    net.module.double()
    net.norms.dtype = torch.float64
    return net


def module_with(net, w, stats):
    """The plain nn.Module ResNet-32 holding weights ``w`` and batch-norm buffers ``stats``."""
    import copy
    from torch.nn.utils import vector_to_parameters
    m = copy.deepcopy(net.module).requires_grad_(True)
    vector_to_parameters(w, m.parameters())
    bns = [b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    for b, (mean, var) in zip(bns, stats, strict=True):
        b.running_mean.copy_(mean)
        b.running_var.copy_(var)
    return m, bns


def test_resnet32_counts_the_papers_weights():
    """468,540 with six 10-way heads: the authors' library's ResNet-32 (the paper says
    about 468,500), by arithmetic and built."""
    theirs = authors().ResNet(in_shape=(32, 32, 3), num_classes=60, n=5, verbose=False,
                              no_weights=True)
    net = resnet()
    assert net.num_params == theirs.num_params == 468_540 == count_params(
        "resnet32", 3072, 10, (), 6, (3, 32, 32))
    assert len(net.norms.sizes) == 31 and sum(net.norms.sizes) == 1136


@pytest.mark.parametrize("training", [False, True])
def test_resnet32_flat_forward_equals_the_module(training):
    """External weights and per-task statistics against the nn.Module with the same
    weights and buffers (float64): outputs, gradients, and in training the running
    statistics both update."""
    net = resnet()
    gen = torch.Generator().manual_seed(1)
    w = net.flatten_module().double() + 0.01 * torch.randn(net.num_params, generator=gen,
                                                           dtype=torch.float64)
    x = torch.rand(6, 3072, generator=gen, dtype=torch.float64)
    stats = net.norms.of(2)
    for mean, var in stats:
        mean.copy_(0.1 * torch.randn(mean.shape, generator=gen, dtype=torch.float64))
        var.copy_(0.5 + torch.rand(var.shape, generator=gen, dtype=torch.float64))
    m, bns = module_with(net, w, stats)
    m.train(training)
    w1 = w.clone().requires_grad_()
    with net.norms.task(2, training=training):
        ours = net(x, w1, head=None)
    ref = m(x)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    ours.sin().sum().backward()
    ref.sin().sum().backward()
    torch.testing.assert_close(w1.grad, torch.cat([p.grad.reshape(-1) for p in m.parameters()]),
                               rtol=1e-9, atol=1e-11)
    for (mean, var), b in zip(net.norms.of(2), bns):
        torch.testing.assert_close(mean, b.running_mean, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(var, b.running_var, rtol=1e-12, atol=1e-14)
    assert 0 not in net.norms.stats and 5 not in net.norms.stats  # only task 2's were used


def test_resnet32_equals_hypnettorch_on_batch_statistics():
    """The authors' ResNet-32 (use_bias, batch norm) in training mode on the same weights
    (theirs: every batch-norm scale and shift first, then each layer's weight and bias)."""
    net = resnet(heads=1)
    theirs = authors().ResNet(in_shape=(32, 32, 3), num_classes=10, n=5, verbose=False,
                              no_weights=True, bn_track_stats=False).double()
    gen = torch.Generator().manual_seed(2)
    w = net.flatten_module().double() + 0.02 * torch.randn(net.num_params, generator=gen,
                                                           dtype=torch.float64)
    parts = net.unflatten(w)
    norm = [v for k, v in parts.items() if "bn" in k]
    layers = [v for k, v in parts.items() if "bn" not in k]
    assert [tuple(s) for s in theirs.param_shapes] == [tuple(v.shape) for v in norm + layers]
    x = torch.rand(5, 3072, generator=gen, dtype=torch.float64)
    theirs.train()
    ref = theirs.forward(hwc(x), weights=norm + layers)
    torch.testing.assert_close(net(x, w), ref, rtol=1e-10, atol=1e-12)


def test_resnet32_from_a_chunked_hypernetwork():
    """The paper's generator: no hidden layers, task and chunk embeddings of 32, chunks of
    7,000 weights: 67 chunks, ratio 0.976 with six task embeddings."""
    from hnviz.core.hnets import build_hnet
    net = build_target("resnet32", 3072, 10, (), "relu", n_heads=6, in_shape=(3, 32, 32))
    hnet = build_hnet("chunked", 32, net.num_params, (), "relu", chunk_size=7000,
                      chunk_emb_dim=32)
    assert hnet.num_params == 65 * 7000 + 67 * 32
    assert round(hnet.compression_ratio(6), 3) == round((455_000 + 2144 + 192) / 468_540, 3)
    w = hnet(torch.randn(1, 32))[0]
    assert w.shape == (468_540,)
    with net.norms.task(0, training=False):
        assert net(torch.rand(4, 3072), w, head=3).shape == (4, 10)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["hnet", "finetune"])
def test_resnet32_keeps_batch_norm_statistics_per_task(tmp_path, kind):
    """Two tasks of split CIFAR-10/100 (generated files, a few steps): each task trains
    its own running statistics, scoring a task uses its own, and they survive a state
    round trip and a run directory (the same predictions after loading)."""
    import hnviz
    from hnviz.data.sequences import split_cifar10_100
    from test_cifar import small_cifar
    seq = split_cifar10_100(data_dir=small_cifar(tmp_path / "data"), n_train=40, n_test=20)
    if kind == "hnet":
        cfg = hnviz.HyperCLConfig.preset("split_cifar10_100_resnet_fast", n_steps=3,
                                         batch_size=8)
        learner = hnviz.HyperCL(cfg, random_state=0, progress=False)
    else:
        cfg = hnviz.BaselineConfig.preset("split_cifar10_100_resnet_fast", method="finetune",
                                          n_steps=3, batch_size=8)
        learner = hnviz.BaselineCL(cfg, random_state=0, progress=False)
    learner.fit(seq[:2])
    norms = learner.target_.norms
    assert sorted(norms.stats) == [0, 1]
    first = [m.clone() for m, _ in norms.stats[0]]
    assert not torch.equal(first[0], torch.zeros_like(first[0]))  # trained, not the start
    assert not torch.equal(first[0], norms.stats[1][0][0])  # each task its own
    x = seq[1].x_test[:]
    before = [learner.predict_output(x, t) for t in (0, 1)]
    norms.stats[0][0][0].add_(1.0)  # task 0's statistics move task 0's outputs only
    assert not torch.allclose(learner.predict_output(x, 0), before[0])
    torch.testing.assert_close(learner.predict_output(x, 1), before[1], rtol=0, atol=0)
    norms.stats[0][0][0].copy_(first[0])
    again = type(learner).from_state_dict(learner.state_dict(), seq[:2], progress=False)
    for t in (0, 1):
        torch.testing.assert_close(again.predict_output(x, t), before[t], rtol=0, atol=0)


@pytest.mark.slow
def test_resnet32_statistics_move_only_with_their_tasks_training(tmp_path):
    """Continual evaluation during training (every 2 steps), scoring and a state round
    trip change no task's statistics; a state without them, or with a task missing,
    is refused in one line; batch-norm targets need cl1 and a learner that keeps them."""
    import dataclasses

    import hnviz
    from hnviz.data.sequences import split_cifar10_100
    from hnviz.learners.learner_state import StateError
    from test_cifar import small_cifar
    seq = split_cifar10_100(data_dir=small_cifar(tmp_path / "data"), n_train=40, n_test=20)
    runs = []
    for every in (0, 2):
        cfg = hnviz.HyperCLConfig.preset("split_cifar10_100_resnet_fast", n_steps=4,
                                         batch_size=8, eval_every=every)
        runs.append(hnviz.HyperCL(cfg, random_state=0, progress=False).fit(seq[:2]))
    for t in (0, 1):
        for (m1, v1), (m2, v2) in zip(runs[0].target_.norms.stats[t],
                                      runs[1].target_.norms.stats[t]):
            assert torch.equal(m1, m2) and torch.equal(v1, v2)
    state = runs[0].state_dict()
    without = dataclasses.replace(state, weights={k: v for k, v in state.weights.items()
                                                  if k != "norms.1.var"})
    with pytest.raises(StateError, match="lacks norms.1.var") as err:
        hnviz.HyperCL.from_state_dict(without, seq[:2], progress=False)
    assert "\n" not in str(err.value)
    bad = dataclasses.replace(state, weights={**state.weights, "norms.7.mean": torch.zeros(3)})
    with pytest.raises(StateError, match="'norms.7.mean', which is not"):
        hnviz.HyperCL.from_state_dict(bad, seq[:2], progress=False)
    joint = hnviz.BaselineCL(hnviz.BaselineConfig.preset(
        "split_cifar10_100_resnet_fast", method="joint", n_steps=1), progress=False)
    with pytest.raises(ValueError, match="target 'resnet32' has batch norm"):
        joint.partial_fit(seq[0])
    cl2 = hnviz.apply_scenario(seq, "cl2")
    with pytest.raises(ValueError, match="needs the task id \\(scenario cl1\\)"):
        hnviz.HyperCL(runs[0].config, progress=False).partial_fit(cl2[0])
