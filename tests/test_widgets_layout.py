"""Every widget's figure fits a notebook column (at most 790 px wide by default) and
nothing is cut at its edges (the tight bounding box of everything drawn lies inside the
canvas), at the normal font size and at a projector's ``font_scale``, after training and
after interaction; titles are wrapped instead of cut, numbers in titles are labelled."""
import matplotlib.figure
import numpy as np
import pytest

import hnviz
from hnviz.widgets import (EmbeddingExplorer, ForgettingDashboard, ForgettingLab,
                           InterpolationExplorer, LiveTraining, set_display)
from hnviz.widgets.view import DISPLAY, display_size, wrap_titles


@pytest.fixture
def display():
    saved = dict(DISPLAY)
    yield set_display
    DISPLAY.update(saved)


@pytest.fixture(scope="module")
def toy_run():
    toy = hnviz.toy_regression()
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=60, eval_every=5)
    return hnviz.HyperCL(cfg, progress=False).fit(toy), toy


@pytest.fixture(scope="module")
def digits_run():
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=60, eval_every=10)
    return hnviz.HyperCL(cfg, progress=False).fit(hnviz.permuted_digits(3))


def assert_fits(figure, width=790):
    figure.canvas.draw()
    box = figure.get_tightbbox(figure.canvas.get_renderer())
    w, h = figure.get_size_inches()
    assert w * figure.dpi <= width + 0.5, f"{w * figure.dpi:.0f} px wide"
    assert box.x0 >= -0.01 and box.y0 >= -0.01 and box.x1 <= w + 0.01 and box.y1 <= h + 0.01, \
        f"drawn {box} outside the canvas {w:.2f} x {h:.2f} in"


@pytest.mark.parametrize("scale", [1.0, 1.4])
def test_every_widget_fits_at_normal_and_projector_font_sizes(display, toy_run, digits_run,
                                                             scale):
    learner, toy = toy_run
    display(font_scale=scale)
    accuracy = ForgettingDashboard({"run a": digits_run, "run b": digits_run})
    assert "chance" in accuracy.ax_curves.get_ylabel() + "".join(
        t.get_text() for t in accuracy.ax_curves.texts)  # marked, on the axis or its label
    assert_fits(accuracy.figure)
    emb = EmbeddingExplorer(learner)
    emb.state.point = (1.5, -0.3)
    assert_fits(emb.figure)
    walk = InterpolationExplorer(learner, a=0, b=2)
    walk.state.alpha = 0.7
    assert_fits(walk.figure)
    assert_fits(ForgettingDashboard(learner).figure)
    live = LiveTraining()
    hnviz.HyperCL(learner.config, progress=False).fit(toy, callbacks=[live])
    assert_fits(live.figure)
    lab = ForgettingLab(toy, n_steps=30, beta=0.0)
    lab.train()
    lab.state.beta = 10.0
    lab.train()
    assert_fits(lab.figure)
    assert_fits(lab.live.figure)


def test_font_scale_keeps_the_pixels_and_enlarges_the_text(display):
    (w1, h1), dpi1 = display_size((9.4, 4.0))
    display(font_scale=1.4)
    (w2, h2), dpi2 = display_size((9.4, 4.0))
    assert w1 * dpi1 == pytest.approx(w2 * dpi2) and dpi2 == pytest.approx(1.4 * dpi1)
    display(font_scale=1.0, width=600)
    (w3, h3), dpi3 = display_size((11, 4.4))
    assert w3 * dpi3 == pytest.approx(600) and w3 / h3 == pytest.approx(11 / 4.4)
    with pytest.raises(ValueError, match=r"font_scale = 9.0 is outside 0.5..3; use e.g. 1.4"):
        display(font_scale=9.0)
    with pytest.raises(ValueError, match=r"width = 50 px is outside 300..4000"):
        display(width=50)


def test_long_titles_wrap_to_their_axes():
    fig = matplotlib.figure.Figure(figsize=(4, 3), dpi=90)
    ax = fig.add_subplot()
    ax.set_title("a title much too long for one small panel of a narrow figure, says a lot")
    breaks = wrap_titles(fig)[0]
    lines = ax.get_title().split("\n")
    assert breaks == len(lines) - 1 >= 1 and all(len(line) < 50 for line in lines)
    assert " ".join(lines) == "a title much too long for one small panel of a narrow figure, says a lot"
    ax.set_title("short")
    assert wrap_titles(fig) == (0,) and ax.get_title() == "short"


def test_generated_nets_numbers_are_labelled(toy_run):
    learner, _ = toy_run
    walk = InterpolationExplorer(learner, a=0, b=2)
    title = walk.ax_net.get_title().replace("\n", " ")
    values = walk.net.values
    assert "MSE on task 1: " in title and f"3: {values[2]:.3g}" in title
    assert np.isfinite(values).all()


def test_projector_lab_is_one_screen_with_12_px_text(display, toy_run):
    """projector(): the ForgettingLab's one figure (live panels and results side by side)
    at most 1080 x 600 px, nothing cut, no text under 12 px; the MethodsLab too."""
    import matplotlib.text as mt

    from hnviz.widgets import MethodsLab, projector

    learner, toy = toy_run
    projector()
    lab = ForgettingLab(toy, n_steps=30, beta=0.0)
    lab.train()
    lab.state.beta = 10.0
    lab.train()
    methods = MethodsLab(toy, n_steps=20)
    methods.train()
    for fig in (lab.figure, methods.figure):
        assert_fits(fig, width=1080)
        smallest = min(t.get_fontsize() for t in fig.findobj(mt.Text)
                       if t.get_visible() and t.get_text().strip()) * fig.dpi / 72
        assert smallest >= 12, f"{smallest:.1f} px text"
    assert lab.figure.get_size_inches()[1] * lab.figure.dpi <= 600
    assert lab.live.figure is lab.figure  # one figure: both blocks on one screen
