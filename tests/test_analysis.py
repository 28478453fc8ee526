"""Analysis of the embedding space against the learner's own per-task answers."""
import numpy as np
import pytest
import torch

from hnviz.results.analysis import (embedding_landscape, evaluate_embeddings, forgetting_curves,
                            interpolate, project_embeddings)


def test_evaluate_embeddings_equals_score(digits, tiny_toy_learner, toy):
    learner, tasks = digits
    m = evaluate_embeddings(learner, tasks, learner.embeddings_, chunk=2)  # (T, T)
    np.testing.assert_allclose(np.diag(m), learner.matrix_[-1], rtol=1e-5)
    mt = evaluate_embeddings(tiny_toy_learner, toy, tiny_toy_learner.embeddings_)
    np.testing.assert_allclose(np.diag(mt), tiny_toy_learner.matrix_[-1], rtol=1e-4)


def test_interpolation_ends_are_the_tasks_own_nets(digits):
    learner, tasks = digits
    res = interpolate(learner, tasks, 0, 2, n_steps=9, extrapolate=0.5)
    alphas, path, metrics = res["alphas"], res["path"], res["metrics"]
    assert alphas[0] == -0.5 and alphas[-1] == 1.5 and metrics.shape == (len(alphas), 3)
    i0, i1 = np.flatnonzero(alphas == 0.0)[0], np.flatnonzero(alphas == 1.0)[0]
    np.testing.assert_allclose(path[i0], learner.embeddings_[0].numpy(), rtol=1e-6)
    assert metrics[i0, 0] == pytest.approx(learner.score(tasks[0]), rel=1e-5)
    assert metrics[i1, 2] == pytest.approx(learner.score(tasks[2]), rel=1e-5)
    with pytest.raises(ValueError, match="task id 7 out of range"):
        interpolate(learner, tasks, 0, 7)


def test_projection_choices():
    e2 = np.random.RandomState(0).randn(5, 2)
    xy, proj = project_embeddings(e2)
    np.testing.assert_allclose(xy, e2)
    assert proj.method == "identity"
    e8 = np.random.RandomState(0).randn(6, 8)
    xy, proj = project_embeddings(e8)
    assert proj.method == "pca" and xy.shape == (6, 2)
    np.testing.assert_allclose(proj.transform(proj.inverse_transform(xy)), xy, atol=1e-9)
    xy, proj = project_embeddings(e8, "tsne")
    assert xy.shape == (6, 2)
    with pytest.raises(ValueError, match="t-SNE has no transform"):
        proj.transform(e8)
    with pytest.raises(ValueError, match="unknown projection 'umap'"):
        project_embeddings(e8, "umap")


def test_landscape_on_the_pca_plane(digits):
    learner, tasks = digits
    land = embedding_landscape(learner, tasks, task=1, resolution=6, n_samples=None)
    assert land["values"].shape == (6, 6) and land["points"].shape == (3, 2)
    # the grid lies on the PCA plane, which holds all 3 embeddings (rank <= 2): a grid point
    # placed at task 1's projected embedding reproduces task 1's own score
    proj = land["projection"]
    e1 = proj.inverse_transform(land["points"][1:2]).astype(np.float32)
    assert np.allclose(e1, learner.embeddings_[1:2].numpy(), atol=1e-4)
    at_own = evaluate_embeddings(learner, [tasks[1]], e1)[0, 0]
    assert at_own == pytest.approx(learner.score(tasks[1]), abs=0.25)
    win = embedding_landscape(learner, tasks, "winner", resolution=5)
    assert win["winner"].shape == (5, 5) and set(np.unique(win["winner"])) <= {0, 1, 2}


def test_forgetting_curves():
    R = np.array([[90, np.nan, np.nan], [80, 95, np.nan], [70, 97, 85.0]])
    fc = forgetting_curves(R)
    np.testing.assert_array_equal(fc["curves"][0], [90, 80, 70])
    assert np.isnan(fc["curves"][2, 0])
    np.testing.assert_allclose(fc["mean"], [90, 87.5, 84])


@pytest.mark.parametrize("which, n_samples", [("digits", None), ("digits", 40), ("toy", None)])
def test_fused_evaluation_equals_the_per_task_loop(digits, tiny_toy_learner, toy, which,
                                                   n_samples):
    from hnviz.results.analysis import _task_metric

    learner, tasks = digits if which == "digits" else (tiny_toy_learner, toy)
    embs = torch.randn(5, learner.config.emb_dim)
    fused = evaluate_embeddings(learner, tasks, embs, n_samples=n_samples, chunk=2)
    weights = learner.generate_weights(embs)
    loop = torch.stack([_task_metric(learner, t, weights, n_samples) for t in tasks], 1)
    np.testing.assert_allclose(fused, loop.numpy(), rtol=1e-5)
