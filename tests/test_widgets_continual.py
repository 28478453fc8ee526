"""Continual-evaluation curves in the widgets (Agg): LiveTraining while it trains and the
ForgettingDashboard's lower panel hold exactly the learner's records."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import hnviz  # noqa: E402
from hnviz.results.plots import plot_continual, visible_drift  # noqa: E402
from hnviz.core.stability import curves, drift_curves, earlier_mean  # noqa: E402
from hnviz.core.train import Callback  # noqa: E402
from hnviz.widgets import ForgettingDashboard, LiveTraining  # noqa: E402


@pytest.fixture(scope="module")
def runs():
    tasks = hnviz.permuted_digits(3, seed=2)
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=40, eval_every=5)
    live = LiveTraining(min_interval=60)  # renders at task ends and when Peek asks

    class Peek(Callback):  # what the live panel shows in the middle of task 2
        def on_step(self, learner, task_id, step, logs):
            if (task_id, step) == (1, 19):
                live._render()
                self.seen = [line.get_ydata().copy() for line in live.ce_lines]

    peek = Peek()
    hnet = hnviz.HyperCL(cfg, progress=False).fit(tasks, callbacks=[live, peek])
    bcfg = hnviz.BaselineConfig.preset("permuted_digits", method="finetune", n_steps=40)
    plain = hnviz.BaselineCL(bcfg, progress=False).fit(tasks)
    return hnet, plain, live, peek


def test_live_training_draws_every_task_while_it_trains(runs):
    hnet, _, live, peek = runs
    x, y = curves(hnet.history_)
    assert len(live.ce_lines) == 3 and not live.ce_hint.get_visible()
    for j, line in enumerate(live.ce_lines):
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_array_equal(line.get_ydata(), y[:, j])
    dx, dy = drift_curves(hnet.history_)  # the drift view: each earlier task's distance
    assert not live.drift_hint.get_visible() and live.ax_drift.get_yscale() == "log"
    for j, line in enumerate(live.drift_lines):
        np.testing.assert_array_equal(line.get_xdata(), dx)
        np.testing.assert_array_equal(line.get_ydata(), visible_drift(dy)[:, j])
    live.reset("next")
    assert live.ce_lines == [] and live.ce_hint.get_visible() and live.task_loss == []
    assert live.drift_lines == [] and live.drift_hint.get_visible()
    # mid task 2: task 1's 9 records, then task 2's first 5 (steps 0..20), for tasks 1, 2
    assert len(peek.seen) == 2 and len(peek.seen[0]) == 9 + 5
    np.testing.assert_array_equal(peek.seen[0][9:], hnet.history_[1]["ce_metric"][:5, 0])


def test_dashboard_lower_panel_holds_the_records(runs):
    hnet, plain, _, _ = runs
    d = ForgettingDashboard({"hnet": hnet, "finetune": plain})
    assert d.ax_ce is not None and "ce_mean" in d.artists["hnet"]
    assert "ce_mean" not in d.artists["finetune"]  # trained without eval_every
    x, y = curves(hnet.history_)
    np.testing.assert_allclose(d.artists["hnet"]["ce_mean"].get_ydata(), earlier_mean(x, y))
    d.state.selected, d.state.task = ("hnet",), 1
    art = d.artists["hnet"]
    assert art["ce_tasks"].get_visible() and art["ce_highlight"].get_visible()
    np.testing.assert_array_equal(art["ce_highlight"].get_ydata(), y[:, 1])
    d.state.selected = ("finetune",)
    assert not art["ce_mean"].get_visible() and not art["ce_tasks"].get_visible()
    assert ForgettingDashboard(plain).ax_ce is None  # no records: no lower panel


def test_plot_continual_needs_records(runs):
    hnet, plain, _, _ = runs
    art = plot_continual(hnet.history_)
    assert len(art["lines"]) == 3 and len(art["bounds"]) == 2
    with pytest.raises(ValueError, match="--eval-every"):
        plot_continual(plain.history_)


def test_dashboard_marks_chance_on_fixed_accuracy_axes(runs):
    hnet, plain, _, _ = runs
    from hnviz.widgets.dashboard import accuracy_floor, run_chance

    assert run_chance(hnet.task_info_) == pytest.approx(10.0)  # 10 digits, one head
    cl3 = [{"metric": "accuracy", "scenario": "cl3", "n_outputs": 2, "class_offset": 2 * t}
           for t in range(5)]
    assert run_chance(cl3) == pytest.approx(10.0)  # 10 classes on one shared head
    assert run_chance([{**cl3[0], "scenario": "cl1"}]) == pytest.approx(50.0)
    assert run_chance([{"metric": "mse"}]) is None
    d = ForgettingDashboard({"hnet": hnet, "finetune": plain})
    _, y = curves(hnet.history_)
    for ax, values in ((d.ax_curves, np.concatenate([hnet.matrix_, plain.matrix_])),
                       (d.ax_ce, y)):
        assert ax.get_ylim() == (accuracy_floor(values), 101)
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"
                  and list(line.get_ydata()) == [10.0, 10.0]]
        shown = ax.get_ylim()[0] <= 10
        assert len(dashed) == int(shown)
        assert ("chance: 10 %, below the axis" in ax.get_ylabel()) != shown
    d.state.selected = ("hnet",)  # changing the selection keeps the accuracy axis
    assert d.ax_ce.get_ylim() == (accuracy_floor(y), 101)
