"""HyperCL: API conventions, callbacks, regularizer options, inference shapes."""
import numpy as np
import pytest
import torch

import hnviz
from hnviz.core.train import Callback


def test_fitted_attributes(tiny_toy_learner):
    l = tiny_toy_learner
    assert l.n_tasks_ == 3 and l.embeddings_.shape == (3, 2)
    assert l.matrix_.shape == (3, 3) and np.isnan(l.matrix_[0, 1]) and not np.isnan(l.matrix_[2, 0])
    assert len(l.history_) == 3 and l.history_[1]["task_loss"].shape == (60,)
    assert l.history_[0]["reg_loss"].max() == 0 and l.history_[1]["reg_loss"].max() > 0
    assert l.history_[0]["emb_trajectory"].shape == (7, 2)  # init + every 10 steps
    assert "HyperCL(tasks=3" in repr(l)


def test_generate_and_predict_shapes(tiny_toy_learner, toy):
    l = tiny_toy_learner
    P = l.target_.num_params
    assert l.generate_weights(l.embeddings_[0]).shape == (P,)
    assert l.generate_weights(l.embeddings_).shape == (3, P)
    x = toy[0].x_test
    out = l.predict_with_embedding(x, l.embeddings_)  # (B, N, 1)
    assert out.shape == (3, 50, 1)
    for t in range(3):  # the vmapped path equals the per-task path
        torch.testing.assert_close(out[t], l.predict(x, t), rtol=1e-6, atol=1e-6)
    assert l.score(toy[1]) == pytest.approx(l.matrix_[-1, 1])


def test_fit_resets_and_partial_fit_continues(toy):
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=5)
    l = hnviz.HyperCL(cfg, progress=False).partial_fit(toy[0])
    assert l.n_tasks_ == 1
    l.partial_fit(toy[1])
    assert l.n_tasks_ == 2
    l.fit(toy)
    assert l.n_tasks_ == 3


def test_seeded_runs_are_identical(toy):
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=20)
    a = hnviz.HyperCL(cfg, random_state=7, progress=False).fit(toy)
    b = hnviz.HyperCL(cfg, random_state=7, progress=False).fit(toy)
    assert torch.equal(a.embeddings_, b.embeddings_)
    np.testing.assert_array_equal(a.matrix_, b.matrix_)


def test_callbacks_see_every_step_and_task(toy):
    class Count(Callback):
        steps, ends = 0, []

        def on_step(self, learner, task_id, step, logs):
            Count.steps += 1
            assert set(logs) == {"task_loss", "reg_loss"}

        def on_task_end(self, learner, task_id, logs):
            Count.ends.append((task_id, len(logs["row"])))

    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=7)
    hnviz.HyperCL(cfg, progress=False, callbacks=[Count()]).fit(toy)
    assert Count.steps == 21 and Count.ends == [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize("changes", [{"reg_targets": "snapshot"}, {"reg_subset": 1},
                                     {"lookahead": False}, {"emb_init": "copy_previous"},
                                     {"hnet": "chunked", "chunk_size": 30}])
def test_options_train(toy, changes):
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=30, **changes)
    l = hnviz.HyperCL(cfg, progress=False).fit(toy)
    assert np.isfinite(l.matrix_[-1]).all()
    if changes.get("emb_init") == "copy_previous":
        torch.testing.assert_close(l.history_[1]["emb_trajectory"][0],
                                   l.embeddings_[0].numpy())


def test_snapshot_targets_train_like_stored_targets(toy):
    base = hnviz.HyperCLConfig.preset("toy_regression", n_steps=40)
    a = hnviz.HyperCL(base, random_state=3, progress=False).fit(toy)
    b = hnviz.HyperCL(base.replace(reg_targets="snapshot"), random_state=3, progress=False).fit(toy)
    np.testing.assert_allclose(a.history_[2]["reg_loss"], b.history_[2]["reg_loss"], rtol=1e-4)
    np.testing.assert_allclose(a.matrix_[-1], b.matrix_[-1], rtol=1e-3)


def test_multi_head_split_digits_uses_one_head_per_task():
    tasks = hnviz.split_digits()
    cfg = hnviz.HyperCLConfig.preset("split_digits", n_steps=10)
    l = hnviz.HyperCL(cfg, progress=False).partial_fit(tasks[0])
    assert l.target_.n_heads == 5 and l.predict_output(tasks[0].x_test, 0).shape[1] == 2
