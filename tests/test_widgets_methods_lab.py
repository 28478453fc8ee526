"""MethodsLab: fine-tuning, EWC and the hypernetwork on the same tasks, side by side;
each panel holds exactly its learner's continual-evaluation records, the axes are shared
and fixed, one run at a time, stop and reset work."""
import time

import numpy as np
import pytest

import hnviz
from hnviz.core.stability import curves
from hnviz.widgets import MethodsLab
from hnviz.widgets.lab_view import MSE_RANGE


@pytest.fixture(scope="module")
def trained():
    lab = MethodsLab(n_steps=40, min_interval=60)  # renders at task ends (and the last)
    learners = lab.train()
    return lab, learners


def test_each_panel_holds_its_learners_records(trained):
    lab, learners = trained
    assert list(learners) == ["finetune", "ewc", "hnet"] and lab.errors == []
    assert isinstance(learners["hnet"], hnviz.HyperCL)
    assert learners["ewc"].config.method == "ewc" and learners["finetune"].config.method == "finetune"
    for method, learner in learners.items():
        assert learner.config.n_steps == 40 and learner.config.eval_every == 1  # 40 // 50 -> 1
        x, y = curves(learner.history_)
        assert y.shape == (len(x), 3)
        for j, line in enumerate(lab.lines[method]):
            np.testing.assert_array_equal(line.get_xdata(), x)
            np.testing.assert_array_equal(line.get_ydata(), y[:, j])
        s = learner.summary()
        title = lab.axes[method].get_title().replace("\n", " ")
        assert f"average final {s['average_final']:.3g}" in title
        assert f"forgetting {s['forgetting']:.3g}" in title
    # the same task data and target net for all three: the first record is the same
    # untrained-net score only for the baselines (same init); every learner saw 3 tasks
    assert all(learner.n_tasks_ == 3 for learner in learners.values())


def test_axes_are_shared_and_fixed(trained):
    lab, _ = trained
    axes = list(lab.axes.values())
    assert all(ax.get_ylim() == MSE_RANGE and ax.get_yscale() == "log" for ax in axes)
    assert all(ax.get_xlim() == (0, 120) for ax in axes)
    assert "lower is better" in axes[0].get_ylabel()
    assert len(lab.marks) == 2 * 3  # tasks 2 and 3 start, in each panel


def test_accuracy_tasks_get_a_fixed_range_and_a_chance_line():
    lab = MethodsLab(hnviz.permuted_digits(2), preset="permuted_digits", n_steps=10)
    for ax in lab.axes.values():
        assert ax.get_ylim() == (0, 102)
        assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [10]


def test_one_run_at_a_time_stop_and_reset():
    lab = MethodsLab(n_steps=100_000)
    lab._train_clicked()
    lab._train_clicked()  # ignored: a run trains
    deadline = time.time() + 60
    while lab.session.position[1] < 20 and time.time() < deadline:
        time.sleep(0.05)
    assert lab.ignored_presses == 1 and lab.button.disabled
    pressed = time.perf_counter()
    lab.stop_button.click()
    lab.wait(10)
    assert time.perf_counter() - pressed < 1.0 and not lab.thread.is_alive()
    assert lab.session.runs[-1]["status"] == "stopped" and not lab.button.disabled
    assert lab.learners["finetune"].continual_ is not None  # what it reached stays shown
    lab.reset_button.click()
    assert lab.session.runs == [] and lab.learners == {} and lab.marks == []
    assert all(len(line.get_xdata()) == 0 for lines in lab.lines.values() for line in lines)
    assert [ax.get_title() for ax in lab.axes.values()] == ["fine-tuning", "EWC", "hypernetwork"]
    assert lab.errors == []
