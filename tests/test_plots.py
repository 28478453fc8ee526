"""The static figures draw the data they are given (Agg backend, artists' data)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hnviz.results.analysis import embedding_landscape, interpolate, task_confusion  # noqa: E402
from hnviz.results.plots import (plot_forgetting_curves, plot_interpolation,  # noqa: E402
                         plot_landscape, plot_task_confusion)


def test_static_plots_draw_the_data(digits):
    learner, tasks = digits
    fig, axes = plt.subplots(1, 3)
    fc = plot_forgetting_curves(learner.matrix_, ax=axes[0], highlight=1)
    np.testing.assert_array_equal(fc["lines"][0].get_ydata(), learner.matrix_[:, 0])
    np.testing.assert_allclose(fc["mean"].get_ydata(), np.nanmean(learner.matrix_, axis=1))
    land = embedding_landscape(learner, tasks, "winner", resolution=4)
    art = plot_landscape(land, ax=axes[1])
    np.testing.assert_array_equal(art["image"].get_array(), land["winner"])
    np.testing.assert_allclose(art["scatter"].get_offsets(), land["points"])
    res = interpolate(learner, tasks, 0, 1, n_steps=5)
    art = plot_interpolation(res, ax=axes[2], alpha=0.25)
    np.testing.assert_array_equal(art["lines"][2].get_ydata(), res["metrics"][:, 2])
    assert art["marker"].get_xdata()[0] == 0.25
    plt.close(fig)


def test_forgetting_plot_for_100_tasks():
    R = np.tril(np.random.RandomState(0).uniform(80, 100, (100, 100)))
    R[np.triu_indices(100, 1)] = np.nan
    fig, ax = plt.subplots()
    art = plot_forgetting_curves(R, ax=ax)
    assert len(art["lines"]) == 100 and ax.get_legend() is not None
    plt.close(fig)


def test_task_confusion(digits):
    learner, tasks = digits
    C = task_confusion(learner, tasks)
    np.testing.assert_allclose(C.sum(1), 100)
    for t in range(3):
        assert C[t, t] == pytest.approx(learner.task_inference_accuracy(tasks[t]))
    fig, ax = plt.subplots()
    mesh = plot_task_confusion(C, ax)
    np.testing.assert_allclose(mesh.get_array().reshape(3, 3), C)
    plt.close(fig)


def test_comparison_bars_show_mean_and_std():
    from hnviz.results.plots import plot_comparison

    summary = {"benchmark": {"name": "split_digits"}, "scenario": "cl3", "seeds": [0, 1],
               "methods": {"hnet": {"average_final": {"mean": 81.5, "std": 1.0}},
                           "ewc": {"average_final": {"mean": 19.8, "std": 0.1}},
                           "dgr": {"average_final": None}}}
    fig, ax = plt.subplots()
    bars = plot_comparison(summary, ax)
    np.testing.assert_allclose([b.get_height() for b in bars][:2], [81.5, 19.8])
    assert np.isnan(bars[2].get_height())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hnet", "ewc", "dgr"]
    assert [t.get_text() for t in ax.texts][:2] == ["81.5", "19.8"]
    assert ax.get_title() == "split_digits, cl3: 2 seeds"
    plt.close(fig)
