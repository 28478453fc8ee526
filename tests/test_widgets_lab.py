"""ForgettingLab: one run per press, a stop that stops, a reset that clears, a colour per
beta kept across runs, fixed scales, and explorers that follow the learner trained last."""
import threading
import time

import numpy as np
import pytest
from traitlets import TraitError

import hnviz
from hnviz.widgets import ForgettingLab, InterpolationExplorer
from hnviz.widgets.lab_view import MSE_RANGE, LabFigure, beta_colors


def _final_lines(lab):
    """The per-beta lines drawn in the final-metric panel, by their beta ("β = 0.01")."""
    return {f"β = {b:g}": line for b, line in lab.plot.final_lines.items()
            if line in lab.plot.ax_final.lines}


def test_trains_per_beta_and_shows_each_run(toy):
    lab = ForgettingLab(toy, n_steps=40, beta=0.0)
    lab.train()
    lab.slider.value = 0.01  # slider -> state
    assert lab.state.beta == 0.01
    learner = lab.train()
    assert learner.config.beta == 0.01 and learner.config.n_steps == 40 and lab.errors == []
    assert sorted(lab.results) == [0.0, 0.01] and lab.learner is learner
    lines = _final_lines(lab)
    np.testing.assert_array_equal(lines["β = 0.01"].get_ydata(), learner.matrix_[-1])
    fits = lab.plot.ax_fit.lines  # the generated nets' functions, one per task
    assert len(fits) == 3 and "β = 0.01" in lab.plot.ax_fit.get_title()
    np.testing.assert_allclose(lab.live.image.get_array().filled(np.nan), learner.matrix_)
    assert [r["status"] for r in lab.session.runs] == ["done", "done"]
    # every run numbered and labelled with its steps; a rerun at other steps relabels
    assert "2. β = 0.01 (40 steps) done, 1. β = 0 (40 steps) done" in lab.status.value
    assert lines["β = 0.01"].get_label() == "0.01 (40)"
    lab.steps.value = 20
    lab.train()
    assert _final_lines(lab)["β = 0.01"].get_label() == "0.01 (20)"
    assert "3. β = 0.01 (20 steps) done" in lab.status.value
    assert "β = 0.01" in lab.live.ax_loss.get_title()  # the live panels name their run
    with pytest.raises(TraitError, match="beta = -1.0 must be finite and >= 0"):
        lab.state.beta = -1.0
    lab.steps.value = 0  # the steps box owns the steps per task: at least 1
    assert lab.steps.value == 1


def test_colours_are_fixed_per_beta_and_scales_fixed(toy):
    lab = ForgettingLab(toy, n_steps=30, beta=0.0)
    assert lab.betas[-1] == 10.0 and [v for _, v in lab.slider.options][-1] == 10.0
    colors = beta_colors(lab.betas)
    for beta in (0.01, 0.0, 10.0, 0.01):  # a repeat keeps its line and colour
        lab.state.beta = beta
        lab.train()
        lines = _final_lines(lab)
        for b, line in lines.items():
            assert line.get_color() == colors[float(b.split("= ")[1])]
    assert sorted(_final_lines(lab)) == ["β = 0", "β = 0.01", "β = 10"]
    assert len(lab.session.runs) == 4
    assert lab.plot.ax_final.get_ylim() == MSE_RANGE  # fixed, whatever the runs gave
    assert lab.plot.ax_final.get_yscale() == "log"
    assert "lower is better" in lab.plot.ax_final.get_ylabel()
    norm = lab.live.image.norm
    assert (norm.vmin, norm.vmax) == pytest.approx(MSE_RANGE)  # the matrix's colours too


def test_accuracy_panels_have_a_fixed_range_and_a_chance_line():
    tasks = hnviz.permuted_digits(2)
    import matplotlib.figure

    plot = LabFigure(matplotlib.figure.Figure(), tasks, (0.0, 0.01))
    assert plot.ax_final.get_ylim() == (0, 102)
    chance = [line for line in plot.ax_final.lines if line.get_linestyle() == "--"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(10.0)


def test_presses_while_training_are_ignored_and_stop_stops(toy):
    lab = ForgettingLab(toy, n_steps=100_000, beta=0.0)  # long: it must be stopped
    lab._train_clicked()
    lab._train_clicked()  # a double-click: the second press is ignored
    deadline = time.time() + 60
    while lab.session.position[1] < 20 and time.time() < deadline:  # mid-run
        time.sleep(0.05)
    assert lab.ignored_presses == 1 and len(lab.session.runs) == 1
    assert lab.button.disabled and not lab.stop_button.disabled
    pressed = time.perf_counter()
    lab.stop_button.click()
    lab.wait(10)
    took = time.perf_counter() - pressed
    assert not lab.thread.is_alive() and took < 1.0, f"stopped after {took:.2f} s"
    run = lab.session.runs[0]
    assert run["status"] == "stopped" and run["stopped_at"][1] >= 20
    assert lab.results == {} and lab.learner is None and lab.errors == []
    assert not lab.button.disabled and lab.stop_button.disabled
    assert "stopped (task 1" in lab.status.value
    lab.steps.value = 20
    lab._train_clicked()  # the next press trains again
    lab.wait(60)
    assert [r["status"] for r in lab.session.runs] == ["stopped", "done"]
    assert "≈" in lab.status.value and "s per run" in lab.status.value


def test_reset_clears_every_run_and_figure(toy):
    lab = ForgettingLab(toy, n_steps=30, beta=0.0)
    lab.train()
    lab.reset_button.click()
    assert lab.session.runs == [] and lab.results == {} and lab.learner is None
    assert _final_lines(lab) == {} and lab.plot.ax_final.get_legend() is None
    assert all(len(line.get_xdata()) == 0 for line in lab.plot.ax_fit.lines)
    assert "press “train”" in lab.plot.ax_fit.get_title()
    assert len(lab.live.loss_line.get_xdata()) == 0 and lab.live.ce_lines == []
    assert "Runs: none yet" in lab.status.value and lab.errors == []


def test_reset_during_a_run_stops_it_first(toy):
    lab = ForgettingLab(toy, n_steps=100_000, beta=0.0)
    lab._train_clicked()
    time.sleep(0.3)
    lab.reset()
    assert not lab.thread.is_alive() and lab.session.runs == [] and not lab.session.running


def test_followers_show_the_learner_trained_last(toy):
    lab = ForgettingLab(toy, n_steps=30, beta=0.0)
    box = lab.follow(InterpolationExplorer, a=0, b=2)
    assert "train the lab first" in box.children[0].value
    first = lab.train()
    view1 = box.children[0]
    lab.state.beta = 0.01
    second = lab.train()
    assert box.children[0] is not view1 and first is not second
    made = [w for w in lab.followed if w.view is box.children[0]]
    assert len(made) == 1 and made[0].learner is second


def test_one_run_at_a_time_across_threads(toy):
    session = ForgettingLab(toy, n_steps=30).session
    claims = []
    threads = [threading.Thread(target=lambda: claims.append(session.claim())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert claims.count(True) == 1
    with pytest.raises(RuntimeError, match="a run is training already"):
        session.train(0.0)


def test_a_run_that_fails_releases_the_lab(toy, monkeypatch):
    import hnviz.widgets.lab as lab_module

    class Broken(hnviz.HyperCL):
        def fit(self, *args, **kwargs):
            raise ValueError("boom: a bad setting")

    lab = ForgettingLab(toy, n_steps=20)
    monkeypatch.setattr(lab_module, "HyperCL", Broken)
    lab._train_clicked()
    lab.wait(60)
    assert lab.errors == ["ValueError: boom: a bad setting"]  # shown, not lost in the thread
    assert not lab.session.running and not lab.button.disabled and lab.stop_button.disabled
    assert lab.session.runs[-1]["status"] == "failed"
    monkeypatch.setattr(lab.live, "reset", lambda title="": 1 / 0)  # fails before training
    lab._train_clicked()
    lab.wait(60)
    assert lab.errors[-1].startswith("ZeroDivisionError") and not lab.session.running
    monkeypatch.undo()
    assert lab.train() is not None and lab.session.runs[-1]["status"] == "done"
