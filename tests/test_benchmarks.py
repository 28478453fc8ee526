"""28x28 benchmarks built from the real Fashion-MNIST files (Debian's package)."""
import numpy as np
import pytest
import torch
from test_data import require_fashion_dir

import hnviz
from hnviz.data import datasets as data
from hnviz.data.benchmarks import from_spec, permuted_fashion_mnist, split_fashion_mnist


@pytest.fixture(scope="module")
def fashion():
    require_fashion_dir(data.DEBIAN_FASHION_MNIST)
    return data.load_dataset("fashion_mnist")


def test_permuted_fashion_tasks(fashion):
    x_tr, y_tr, x_te, y_te = fashion
    seq = permuted_fashion_mnist(3, n_train=500, n_test=200, seed=4)
    assert len(seq) == 3 and seq.name == "permuted_fashion_mnist_3"
    t0, t2 = seq[0], seq[2]
    assert t0.x_train.shape == (500, 784) and t0.x_test.shape == (200, 784)
    assert t0.x_train.dtype == torch.float32 and 0 <= t0.x_train.min() and t0.x_train.max() <= 1
    # task 0 is the identity permutation of a seeded subset of the real images
    rows = (x_tr.reshape(60000, -1) / 255.0).astype(np.float32)
    first = t0.x_train[0].numpy()
    assert np.any(np.all(rows == first, axis=1))
    # task 2 holds the same images, permuted: same pixel multiset per image, same labels
    assert torch.equal(t2.y_train, t0.y_train)
    np.testing.assert_array_equal(np.sort(t2.x_train.numpy(), 1), np.sort(t0.x_train.numpy(), 1))
    assert not torch.equal(t2.x_train[:], t0.x_train[:])
    assert (t2.class_offset, t2.n_classes_total) == (20, 30)
    assert len(from_spec(seq.spec)) == 3


def test_padding_to_32(fashion):
    t = permuted_fashion_mnist(1, padding=True, n_train=50, n_test=20)[0]
    assert t.x_train.shape == (50, 1024) and t.in_shape == (1, 32, 32)
    img = t.x_train[0].reshape(32, 32)
    assert img[:2].abs().sum() == 0 and img[:, -2:].abs().sum() == 0


def test_split_fashion_tasks(fashion):
    seq = split_fashion_mnist()
    assert [len(t.x_train) for t in seq] == [12000] * 5 and [len(t.x_test) for t in seq] == [2000] * 5
    t = seq[3]
    assert set(t.y_train.unique().tolist()) == {0, 1} and t.meta["classes"] == [6, 7]
    assert t.class_offset == 6


def test_bad_subset_size(fashion):
    with pytest.raises(ValueError, match="subset size 0 out of range; use 1..60000"):
        permuted_fashion_mnist(2, n_train=0)


def test_fast_preset_trains_briefly(fashion):
    seq = permuted_fashion_mnist(2, n_train=1000, n_test=500)
    cfg = hnviz.HyperCLConfig.preset("permuted_fashion_mnist_fast", n_steps=150)
    learner = hnviz.HyperCL(cfg, progress=False).fit(seq)
    assert learner.matrix_[-1].min() > 60  # 10 classes: chance is 10 %
