"""Permuted benchmarks hold the images once and permute the rows they read: the same
batches and numbers as permuted copies, bit for bit, and memory that does not grow
with the number of tasks."""
import dataclasses
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import hnviz
from hnviz.core.tasks import PermutedRows, TaskSequence, column_major, dense


def copied(seq: TaskSequence) -> TaskSequence:
    """The sequence as hnviz 0.3 built it: every task with its own permuted copy, row by
    row in memory."""
    return TaskSequence(seq.name, [dataclasses.replace(
        t, x_train=dense(t.x_train).contiguous(), x_test=dense(t.x_test).contiguous())
                                   for t in seq], seq.spec)


def test_rows_read_through_the_permutation():
    base = torch.arange(12.0).reshape(3, 4)
    perm = torch.tensor([2, 0, 3, 1])
    rows = PermutedRows(base, perm)
    want = base[:, perm]
    assert torch.equal(rows[:], want) and torch.equal(rows[torch.tensor([2, 0])], want[[2, 0]])
    assert torch.equal(rows[1], want[1]) and torch.equal(rows[1:, 0], want[1:, 0])
    assert rows.shape == (3, 4) and len(rows) == 3 and rows.dim() == 2
    assert float(rows.min()) == 0 and float(rows.max()) == 11
    np.testing.assert_array_equal(rows.numpy(), want.numpy())
    with pytest.raises(ValueError, match="do not fit"):
        PermutedRows(base, perm[:3])


def test_a_column_major_base_reads_whole_sets_by_columns():
    """The test sets' layout: rows[:] copies whole columns and equals the row-major read;
    rows, slices and single rows read as before."""
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(50, 9, generator=gen)
    perm = torch.randperm(9, generator=gen)
    cols = column_major(base)
    assert torch.equal(cols, base) and cols.t().is_contiguous() and not cols.is_contiguous()
    rows = PermutedRows(cols, perm)
    whole = rows[:]
    assert torch.equal(whole, base[:, perm]) and whole.t().is_contiguous()
    idx = torch.tensor([3, 0, 49])
    assert torch.equal(rows[idx], base[:, perm][idx]) and torch.equal(rows[7], base[7, perm])
    assert torch.equal(rows[2:5], base[:, perm][2:5])
    seq = hnviz.permuted_digits(3)
    assert seq[0].x_test.base.t().is_contiguous() and seq[0].x_train.base.is_contiguous()


def test_tasks_share_one_copy_of_the_images():
    seq = hnviz.permuted_digits(10)
    assert all(t.x_train.base is seq[0].x_train.base for t in seq)
    assert all(t.x_test.base is seq[0].x_test.base for t in seq)
    for t in (seq[0], seq[7]):  # task 7 reads the images through permutation 7
        perm = torch.tensor(t.meta["permutation"])
        assert torch.equal(t.x_train[:], t.x_train.base[:, perm])


@pytest.mark.parametrize("method", ["hnet", "ewc", "joint"])
def test_lazy_benchmark_trains_bit_for_bit_like_copies(method):
    """PermutedDigits-10: every batch, weight and metric equal to the copied sequence's."""
    lazy = hnviz.permuted_digits(10)
    copies = copied(lazy)
    for a, b in zip(lazy, copies):
        assert torch.equal(a.x_train[:], b.x_train) and torch.equal(a.x_test[:], b.x_test)
    runs = []
    for seq in (lazy, copies):
        if method == "hnet":
            cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=15)
            learner = hnviz.HyperCL(cfg, random_state=3, progress=False)
        else:
            cfg = hnviz.BaselineConfig.preset("permuted_digits", method=method, n_steps=15)
            learner = hnviz.BaselineCL(cfg, random_state=3, progress=False)
        runs.append(learner.fit(seq))
    a, b = (r.state_dict() for r in runs)
    assert a.weights.keys() == b.weights.keys()
    for k in a.weights:
        assert torch.equal(a.weights[k], b.weights[k]), k
    for k in a.history:
        assert torch.equal(a.history[k], b.history[k]), k
    np.testing.assert_array_equal(runs[0].matrix_, runs[1].matrix_)
    assert runs[0].summary() == runs[1].summary()


MEMORY = textwrap.dedent("""
    import resource, sys, numpy as np, torch
    from hnviz.data.benchmarks import permuted_mnist
    if sys.argv[1] != "--imports-only":
        seq = permuted_mnist(100, padding=True, data_dir=sys.argv[1])
        gen = torch.Generator().manual_seed(0)
        total = 0.0
        for t in seq:  # a batch of every task and a test chunk of every tenth
            x = t.x_train[torch.randint(len(t.x_train), (128,), generator=gen)]
            total += float(x.sum()) + (float(t.x_test[:1000].sum()) if t.task_id % 10 == 0
                                       else 0.0)
        print(len(seq), len(seq[99].x_train), seq[99].x_train.shape[1])
    # peak resident set size in bytes (Linux reports KiB)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
""")


def peak_rss(arg: str) -> list[int]:
    res = subprocess.run([sys.executable, "-c", MEMORY, arg], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    return [int(v) for v in res.stdout.split()]


def write_idx(path, array):
    """An uncompressed IDX file of uint8 ``array`` (1-D labels or 3-D images)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.mark.slow
def test_permuted_mnist_100_holds_the_images_once(tmp_path):
    """MNIST-sized IDX files (60,000 + 10,000 images, random pixels) as the paper's
    PermutedMNIST-100 (padded to 32x32): the data costs at most 1 GiB, where 100 copies
    would hold 28.7 GB."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 60000), ("t10k", 10000)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte",
                  rng.integers(0, 10, n, dtype=np.uint8))
    n_tasks, n_train, width, peak = peak_rss(str(tmp_path))
    assert (n_tasks, n_train, width) == (100, 60000, 1024)
    imports = peak_rss("--imports-only")[0]
    print(f"PermutedMNIST-100 (padded): peak RSS {peak / 2**20:.0f} MiB, of which "
          f"{(peak - imports) / 2**20:.0f} MiB above the imports' {imports / 2**20:.0f} MiB")
    assert peak - imports <= 2**30
