"""Outlier exposure from a task's own images (HNET+ENT): the block shuffle and the loss."""
import pytest
import torch
import torch.nn.functional as F

import hnviz
from hnviz.experiments.compare import make_learner
from hnviz.core.outliers import shuffled_blocks, uniform_cross_entropy
from hnviz.data.scenarios import apply_scenario


def test_shuffled_blocks_move_whole_blocks_never_in_place():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(3 * 2 * 8 * 8, dtype=torch.float32).reshape(3, 2 * 64)  # (N, C*H*W)
    seen = set()
    for _ in range(60):
        y = shuffled_blocks(x, (2, 8, 8), g)
        assert y.shape == x.shape and not torch.equal(y, x)
        im, out = x.reshape(3, 2, 8, 8), y.reshape(3, 2, 8, 8)
        blocks = [im[..., i:i + 4, j:j + 4] for i in (0, 4) for j in (0, 4)]
        moved = [out[..., i:i + 4, j:j + 4] for i in (0, 4) for j in (0, 4)]
        order = tuple(next(k for k, b in enumerate(blocks) if torch.equal(b, m)) for m in moved)
        assert sorted(order) == [0, 1, 2, 3] and order != (0, 1, 2, 3)
        seen.add(order)
    assert len(seen) > 12  # many of the 23 permutations, drawn from the generator


def test_odd_sizes_keep_their_last_row_and_column():
    x = torch.rand(2, 7 * 9)
    y = shuffled_blocks(x, (1, 7, 9), torch.Generator().manual_seed(1))
    im, out = x.reshape(2, 7, 9), y.reshape(2, 7, 9)
    assert torch.equal(im[:, 6], out[:, 6]) and torch.equal(im[:, :, 8], out[:, :, 8])
    assert torch.equal(x.flatten().sort().values, y.flatten().sort().values)  # moved, not made
    with pytest.raises(ValueError, match="images"):
        shuffled_blocks(torch.rand(2, 5), (5,), torch.Generator())


def test_uniform_cross_entropy_is_the_cross_entropy_against_uniform():
    logits = torch.randn(6, 4, dtype=torch.float64)
    by_hand = -(torch.full((6, 4), 0.25, dtype=torch.float64)
                * F.log_softmax(logits, -1)).sum(-1).mean()  # CE(uniform, softmax)
    torch.testing.assert_close(uniform_cross_entropy(logits), by_hand)
    # smallest (log C, the uniform distribution's entropy) for equal logits
    assert uniform_cross_entropy(torch.ones(3, 5)).item() == pytest.approx(1.6094379, abs=1e-6)
    assert uniform_cross_entropy(torch.tensor([[2.0, 0, 0, 0, 0]])).item() > 1.7


def test_outlier_exposure_changes_only_cl2_cl3_entropy_training():
    """cl1 and HNET+TIR train with the plain loss; cl3 by entropy with the extra term."""
    tasks1 = hnviz.split_digits()
    tasks3 = apply_scenario(tasks1, "cl3")
    cfg = dict(n_steps=5, outliers="blocks")
    plain = make_learner("hnet", "split_digits", "cl1", 0, False, n_steps=5, outliers="none")
    oe1 = make_learner("hnet", "split_digits", "cl1", 0, False, **cfg)
    a, b = plain.partial_fit(tasks1[0]), oe1.partial_fit(tasks1[0])
    assert all(torch.equal(p, q) for p, q in zip(a.hnet_.parameters(), b.hnet_.parameters()))
    oe3 = make_learner("hnet", "split_digits", "cl3", 0, False, **cfg).partial_fit(tasks3[0])
    no3 = make_learner("hnet", "split_digits", "cl3", 0, False, n_steps=5,
                       outliers="none").partial_fit(tasks3[0])
    assert not torch.equal(oe3.embeddings_, no3.embeddings_)
    # the logged task loss is the loss trained: cross-entropy plus the outlier term
    assert oe3.history_[0]["task_loss"][0] > no3.history_[0]["task_loss"][0] + 0.1


def test_outliers_refuse_tasks_that_are_not_images():
    learner = hnviz.HyperCL(hnviz.HyperCLConfig.preset("toy_regression", outliers="blocks"),
                            progress=False)
    with pytest.raises(ValueError, match="outliers='blocks' needs classification"):
        learner.partial_fit(hnviz.toy_regression()[0])
