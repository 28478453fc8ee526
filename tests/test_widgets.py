"""The analysis widgets driven headless (Agg): set ``state``, assert on the artists' data."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from traitlets import TraitError  # noqa: E402

import hnviz  # noqa: E402
from hnviz import metrics  # noqa: E402
from hnviz.results.analysis import embedding_landscape, evaluate_embeddings, interpolate  # noqa: E402
from hnviz.widgets import (EmbeddingExplorer, ForgettingDashboard,  # noqa: E402
                           InterpolationExplorer, LiveTraining)


@pytest.fixture(scope="module")
def finetune(digits):
    cfg = hnviz.BaselineConfig.preset("permuted_digits", method="finetune", n_steps=60)
    return hnviz.BaselineCL(cfg, random_state=0, progress=False).fit(digits[1])


@pytest.fixture(scope="module")
def saved(digits, finetune, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    learner, tasks = digits
    return {"hnet": hnviz.save_run(learner, root / "hnet", benchmark=tasks.spec),
            "finetune": hnviz.save_run(finetune, root / "finetune", benchmark=tasks.spec)}


def bar_heights(panel):
    return panel.bar_heights()


# ---------------------------------------------------------------- EmbeddingExplorer
def test_explorer_toy_net_at_each_embedding_is_the_tasks_own(tiny_toy_learner, toy):
    learner = tiny_toy_learner
    w = EmbeddingExplorer(learner, resolution=8)
    assert w.errors == [] and w.projection.method == "identity"
    for t in range(3):
        w.state.point = tuple(w.points[t])
        np.testing.assert_array_equal(w.net.line.get_ydata(),
                                      learner.predict(w.net.x, t)[:, 0].numpy())
        assert w.net.values[t] == pytest.approx(learner.score(toy[t]), rel=1e-5)
        assert tuple(w.cursor.get_xydata()[0]) == pytest.approx(tuple(w.points[t]))
    assert (w.x_slider.value, w.y_slider.value) == pytest.approx(w.state.point)


def test_explorer_landscape_and_markers(digits):
    learner, tasks = digits
    w = EmbeddingExplorer(learner, resolution=7, n_samples=50)
    assert w.projection.method == "pca"
    win = embedding_landscape(learner, tasks, "winner", 7, n_samples=50)
    np.testing.assert_array_equal(w.image.get_array(), win["winner"])
    np.testing.assert_array_equal(w.markers.get_array(), np.arange(3))
    w.state.color_by = 2
    land = embedding_landscape(learner, tasks, 2, 7, n_samples=50)
    np.testing.assert_allclose(w.image.get_array(), land["values"])
    # the landscape function at each task's own embedding (marker colours): task 2's
    # metric there, which at task 2's own embedding is exactly its score
    marks = np.asarray(w.markers.get_array())
    assert marks[2] == pytest.approx(learner.score(tasks[2]), rel=1e-6)
    np.testing.assert_allclose(marks, evaluate_embeddings(learner, [tasks[2]],
                                                          learner.embeddings_)[:, 0])
    assert "task 3" in w.ax_land.get_title() and w.colorbar.ax.get_ylabel() == "accuracy (%)"
    # a point placed on a task's projected embedding reproduces that task's accuracy
    # (the PCA plane holds all three embeddings)
    w.state.point = tuple(w.points[1])
    assert bar_heights(w.net)[1] == pytest.approx(learner.score(tasks[1]), abs=0.3)
    np.testing.assert_allclose(bar_heights(w.net), w.net.values)
    w.goto.value = 0
    assert w.state.point == pytest.approx(tuple(w.points[0]))
    w.x_slider.value = w.x_slider.min
    assert w.state.point[0] == pytest.approx(w.x_slider.min)


def test_explorer_bad_state_and_callback_errors(digits, monkeypatch):
    w = EmbeddingExplorer(digits[0], resolution=4, n_samples=20)
    with pytest.raises(TraitError, match="color_by = 5 is out of range.*0..2"):
        w.state.color_by = 5
    with pytest.raises(TraitError, match="must be finite"):
        w.state.point = (float("nan"), 0.0)

    def broken(emb):
        raise RuntimeError("net panel exploded")
    monkeypatch.setattr(w.net, "update", broken)
    w.state.point = (0.1, 0.2)  # the error goes to the output area, not lost
    assert w.errors == ["RuntimeError: net panel exploded"]
    assert w.output.outputs[-1]["name"] == "stderr"
    assert "net panel exploded" in w.output.outputs[-1]["text"]


def test_explorer_needs_a_hypernetwork(finetune):
    w = EmbeddingExplorer(finetune)
    assert w.figure is None
    assert "needs a hypernetwork run" in w.errors[0] and "finetune" in w.errors[0]


# ------------------------------------------------------------ InterpolationExplorer
def test_interpolation_toy_ends_are_the_tasks_nets(tiny_toy_learner, toy):
    learner = tiny_toy_learner
    w = InterpolationExplorer(learner, a=0, b=2, extrapolate=0.5)
    assert w.errors == [] and w.slider.min == -0.5 and w.slider.max == 1.5
    for alpha, t in ((0.0, 0), (1.0, 2)):
        w.state.alpha = alpha
        np.testing.assert_array_equal(w.net.line.get_ydata(),
                                      learner.predict(w.net.x, t)[:, 0].numpy())
        assert w.net.values[t] == pytest.approx(learner.score(toy[t]), rel=1e-5)
        assert w.marker.get_xdata()[0] == alpha
    ref = interpolate(learner, toy, 0, 2, 41, 0.5)
    for t, line in enumerate(w.lines):
        np.testing.assert_array_equal(line.get_xdata(), ref["alphas"])
        np.testing.assert_allclose(line.get_ydata(), ref["metrics"][:, t])
    w.slider.value = 1.3  # extrapolation, through the control
    assert w.state.alpha == 1.3 and w.marker.get_xdata()[0] == 1.3


def test_interpolation_digits_bars_and_task_change(digits):
    learner, tasks = digits
    w = InterpolationExplorer(learner, a=0, b=1)
    w.state.alpha = 0.0
    assert bar_heights(w.net)[0] == pytest.approx(learner.matrix_[-1, 0], rel=1e-6)
    w.b_box.value = 2  # dropdown -> state -> new path
    assert w.state.b == 2
    np.testing.assert_allclose(w.lines[2].get_ydata(),
                               interpolate(learner, tasks, 0, 2, 41, 0.5)["metrics"][:, 2])
    w.state.alpha = 1.0
    np.testing.assert_allclose(bar_heights(w.net),
                               evaluate_embeddings(learner, tasks, learner.embeddings_[2:3])[0])
    assert bar_heights(w.net)[2] == pytest.approx(learner.score(tasks[2]), rel=1e-6)
    with pytest.raises(TraitError, match="a = 3 is out of range"):
        w.state.a = 3
    with pytest.raises(ValueError, match=r"b = 9 is out of range: the run has tasks 0..2"):
        InterpolationExplorer(learner, a=0, b=9)  # an argument: raised, not a run to report


# -------------------------------------------------------------- ForgettingDashboard
def test_dashboard_compares_runs(digits, finetune, tmp_path):
    learner, _ = digits
    d = ForgettingDashboard({"hnet": learner, "finetune": finetune,
                             "lost": tmp_path / "missing"}, save_dir=tmp_path)
    assert len(d.errors) == 1 and "could not open run 'lost'" in d.errors[0]
    assert "does not exist" in d.errors[0]
    np.testing.assert_array_equal(d.image.get_array().filled(np.nan), learner.matrix_)
    d.run_box.value = "finetune"
    np.testing.assert_array_equal(d.image.get_array().filled(np.nan), finetune.matrix_)
    art = d.artists
    assert art["hnet"]["mean"].get_visible() and art["finetune"]["mean"].get_visible()
    assert not art["hnet"]["tasks"].get_visible()  # per-task lines only for one run
    np.testing.assert_allclose(art["finetune"]["mean"].get_ydata(),
                               np.nanmean(finetune.matrix_, axis=1))
    d.state.selected = ("hnet",)
    assert art["hnet"]["tasks"].get_visible() and not art["finetune"]["mean"].get_visible()
    segs = art["hnet"]["tasks"].get_segments()
    np.testing.assert_array_equal(segs[1], [[2, learner.matrix_[1, 1]],  # from its own task on
                                            [3, learner.matrix_[2, 1]]])
    d.task_slider.value = 2  # tasks count from 1 on the slider
    assert d.state.task == 1
    np.testing.assert_array_equal(art["hnet"]["highlight"].get_ydata(), learner.matrix_[:, 1])
    rows = {r["run"]: r for r in d.summary()}
    s = metrics.summary(finetune.matrix_)
    assert rows["finetune"]["final average"] == s["average_final"]
    assert rows["finetune"]["forgetting"] == s["forgetting"]
    assert rows["hnet"]["task 2 final"] == learner.matrix_[-1, 1]
    assert "finetune" in d.table.value and f"{s['average_final']:.2f}" in d.table.value
    with pytest.raises(TraitError, match="unknown run 'ewc'"):
        d.state.run = "ewc"
    # the save button writes the current figure
    d.filename.value, d.fmt.value = "cmp", "svg"
    d.save_button.click()
    assert (tmp_path / "cmp.svg").read_bytes().lstrip().startswith(b"<?xml")
    d.fmt.value = "png"
    d.save_button.click()
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    assert "saved" in d.output.outputs[-1]["text"]
    with pytest.raises(ValueError, match="use a .png or .svg"):
        d.save(tmp_path / "cmp.jpg")


def test_dashboard_refuses_mixed_metrics(digits, tiny_toy_learner):
    d = ForgettingDashboard({"digits": digits[0], "toy": tiny_toy_learner})
    assert list(d.matrices) == ["digits"]
    assert "metric is mse" in d.errors[0]


# -------------------------------------------------------------------- LiveTraining
def test_live_training_follows_the_learner(toy):
    live = LiveTraining(min_interval=0.2)  # the lines get every step either way
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=40)
    learner = hnviz.HyperCL(cfg, random_state=2, progress=False)
    learner.fit(toy, callbacks=[live])
    assert learner.callbacks == [] and live.errors == []
    losses = np.concatenate([h["task_loss"] for h in learner.history_])
    np.testing.assert_allclose(live.loss_line.get_ydata(), losses)
    reg = np.concatenate([h["reg_loss"] for h in learner.history_])
    np.testing.assert_allclose(np.nan_to_num(live.reg_line.get_ydata()), reg)
    np.testing.assert_array_equal(live.image.get_array().filled(np.nan), learner.matrix_)
    assert live.state.task == 2 and live.state.step == 40
    assert live.fig_view.widget.value[:4] == b"\x89PNG" and "task 3/3" in live.status.value
    live2, other = LiveTraining(min_interval=0.2), hnviz.HyperCL(cfg, progress=False)
    other.partial_fit(toy[0], callbacks=[live2])  # also task by task
    assert other.callbacks == [] and live2.image.get_array().shape == (1, 1)
    np.testing.assert_allclose(live2.loss_line.get_ydata(), other.history_[0]["task_loss"])


def test_live_training_with_a_baseline(digits):
    live = LiveTraining(min_interval=0.2)
    cfg = hnviz.BaselineConfig.preset("permuted_digits", method="ewc", n_steps=20)
    b = hnviz.BaselineCL(cfg, progress=False, callbacks=[live]).fit(digits[1])
    np.testing.assert_array_equal(live.image.get_array().filled(np.nan), b.matrix_)
    assert live.colorbar.ax.get_ylabel() == "accuracy (%)"


# ------------------------------------------------------------ runs loaded from disk
def test_widgets_on_saved_runs_run_no_training_code(saved, digits, monkeypatch):
    learner, tasks = digits

    def no_training(*args, **kwargs):
        raise AssertionError("training code ran")
    for target in ("hnviz.learners.hypercl.HyperCL._partial_fit", "hnviz.learners.baselines.BaselineCL._partial_fit",
                   "hnviz.core.train.fit_task", "hnviz.core.train.train_step"):
        monkeypatch.setattr(target, no_training)
    e = EmbeddingExplorer(saved["hnet"], resolution=5, n_samples=30)
    i = InterpolationExplorer(hnviz.load_run(saved["hnet"]), a=2, b=0)
    d = ForgettingDashboard({"hnet": saved["hnet"], "finetune": saved["finetune"]})
    assert e.errors == i.errors == d.errors == []
    i.state.alpha = 0.0
    np.testing.assert_allclose(bar_heights(i.net),
                               evaluate_embeddings(learner, tasks, learner.embeddings_[2:3])[0])
    np.testing.assert_array_equal(d.image.get_array().filled(np.nan), learner.matrix_)


@pytest.mark.parametrize("damage", ["missing", "weights", "json", "metrics"])
def test_damaged_runs_give_a_message_in_each_widget(saved, tmp_path, damage):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(saved["hnet"], run)
    expect = {"missing": "does not exist", "weights": "weights.safetensors",
              "json": "run.json", "metrics": "run.json"}[damage]
    if damage == "missing":
        shutil.rmtree(run)
    elif damage == "weights":
        (run / "gen-000001" / "weights.safetensors").write_bytes(b"\x00garbage")
    elif damage == "json":
        (run / "run.json").write_text('{"schema_version": 1, "config": ')
    else:  # the metrics inside run.json
        text = (run / "run.json").read_text()
        (run / "run.json").write_text(text.replace('"metric": "accuracy"', '"metric": [1, 2'))
    for make in (lambda: EmbeddingExplorer(run), lambda: InterpolationExplorer(run),
                 lambda: ForgettingDashboard(run), lambda: ForgettingDashboard({"r": run})):
        w = make()
        assert w.figure is None and len(w.errors) >= 1
        text = "".join(o["text"] for o in w.output.outputs)
        assert "could not open" in text and expect in text, text


def test_widgets_display_as_ipywidgets(digits):
    w = EmbeddingExplorer(digits[0], resolution=3, n_samples=10)
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert w.fig_view.widget in w.view.children and w.output in w.view.children


def test_ipympl_canvas_and_click(digits):
    """Under %matplotlib widget the figure is an ipympl canvas; a click picks the point."""
    import ipywidgets
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import MouseButton, MouseEvent

    old = matplotlib.get_backend()
    plt.switch_backend("module://ipympl.backend_nbagg")
    try:
        w = EmbeddingExplorer(digits[0], resolution=3, n_samples=10)
        assert w.fig_view.interactive and isinstance(w.figure.canvas, ipywidgets.DOMWidget)
        # the front end gets the canvas size in the first state, not only after a round trip
        width, height = w.figure.get_size_inches() * w.figure.dpi
        assert w.figure.canvas._size == pytest.approx((width, height)) and width > 200
        target = (0.25, -0.5)
        x, y = w.ax_land.transData.transform(target)
        MouseEvent("button_press_event", w.figure.canvas, x, y, button=1)._process()
        assert w.state.point == pytest.approx(target, abs=1e-6)
        # a drag follows the mouse (the left button held); a move without it does nothing
        w.DRAG_INTERVAL = 0.0
        for target, buttons, lands in (((0.3, -0.4), {MouseButton.LEFT}, (0.3, -0.4)),
                                       ((0.35, -0.3), set(), (0.3, -0.4)),
                                       ((0.4, -0.2), {MouseButton.LEFT}, (0.4, -0.2))):
            x, y = w.ax_land.transData.transform(target)
            MouseEvent("motion_notify_event", w.figure.canvas, x, y, buttons=buttons)._process()
            assert w.state.point == pytest.approx(lands, abs=1e-6)
        w.DRAG_INTERVAL = 10.0  # a fast drag skips points, its release still lands
        for target in ((0.1, 0.1), (0.2, 0.2)):
            x, y = w.ax_land.transData.transform(target)
            MouseEvent("motion_notify_event", w.figure.canvas, x, y,
                       buttons={MouseButton.LEFT})._process()
        assert w.state.point == pytest.approx((0.4, -0.2), abs=1e-6)
        MouseEvent("button_release_event", w.figure.canvas, x, y, button=1)._process()
        assert w.state.point == pytest.approx((0.2, 0.2), abs=1e-6)
        w.close()
    finally:
        plt.switch_backend(old)
    assert torch.is_tensor(digits[0].embeddings_)


def test_figures_command(saved, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "figs"
    res = subprocess.run([sys.executable, "-m", "hnviz", "figures", str(saved["hnet"]),
                          str(saved["finetune"]), "--out", str(out), "-a", "2", "-b", "0",
                          "--task", "1"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    names = sorted(p.name for p in out.iterdir() if p.name != ".hnviz")  # hnviz's own mark
    assert names == ["forgetting.png", "hnet_embedding.png", "hnet_interpolation.png"]
    assert all((out / n).read_bytes()[:4] == b"\x89PNG" for n in names)
    res = subprocess.run([sys.executable, "-m", "hnviz", "figures", str(tmp_path / "nope"),
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "could not open run 'nope'" in res.stderr
    assert "does not exist" in res.stderr


# ------------------------------------------------------------------- transfer
def test_transfer_init_embedding_and_toy_variant(toy):
    from hnviz.data.benchmarks import toy_variant

    new = toy_variant(toy, of=0, shift=0.3)
    assert new.task_id == 3 and new.n_tasks == 4
    np.testing.assert_allclose(new.y_test[:, 0], new.x_test[:, 0] + 3.3, atol=1e-6)
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=30)
    learner = hnviz.HyperCL(cfg, progress=False).fit(toy)
    e0 = learner.embeddings_[0].clone()
    learner.partial_fit(new, init_embedding=e0)
    np.testing.assert_array_equal(learner.history_[3]["emb_trajectory"][0], e0.numpy())
    assert learner.n_tasks_ == 4 and learner.matrix_.shape == (4, 4)
    with pytest.raises(ValueError, match=r"init_embedding must have shape \(E,\)"):
        learner.partial_fit(toy_variant(toy, 1), init_embedding=torch.zeros(2, 2))


