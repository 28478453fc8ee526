"""Blitting (a slider step redraws only what changed over a saved background) gives the
same pixels as drawing the whole figure, and falls back to a full draw when the layout,
the limits or someone else's draw made the background stale. Its speed lives in
``python -m hnviz bench-widgets``, not here."""
import numpy as np
import pytest

import hnviz
from hnviz.widgets import InterpolationExplorer


@pytest.fixture(scope="module")
def toy_learner():
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=60)
    return hnviz.HyperCL(cfg, progress=False).fit(hnviz.toy_regression())


def pixels(widget):
    return np.asarray(widget.figure.canvas.buffer_rgba()).copy()


def full_draw(widget):
    widget.figure.canvas.draw()
    return pixels(widget)


@pytest.mark.parametrize("alphas", [(0.3, 0.7), (0.1, 1.0, 0.55, 0.56)])
def test_a_blitted_slider_step_equals_a_full_draw(toy_learner, alphas):
    w = InterpolationExplorer(toy_learner, a=0, b=2)
    for alpha in alphas:
        w.state.alpha = alpha
        blitted = pixels(w)
        assert w.fig_view._background is not None  # the step was blitted
        np.testing.assert_array_equal(blitted, full_draw(w))
        w.redraw(changed=w.changing_artists())  # the background again


def test_the_png_shown_is_the_blitted_canvas(toy_learner):
    import io

    import PIL.Image

    w = InterpolationExplorer(toy_learner, a=0, b=2)
    w.state.alpha = 0.8
    shown = np.asarray(PIL.Image.open(io.BytesIO(w.fig_view.widget.value)).convert("RGBA"))
    np.testing.assert_array_equal(shown, full_draw(w))


def test_a_stale_background_is_not_reused(toy_learner):
    w = InterpolationExplorer(toy_learner, a=0, b=2)
    w.state.alpha = 0.4
    w.figure.savefig(__import__("io").BytesIO(), format="png")  # another draw: stale
    assert w.fig_view._background is None
    w.state.b = 1  # a new path: a full draw, then the next step blits on the new one
    w.state.alpha = 0.6
    np.testing.assert_array_equal(pixels(w), full_draw(w))
    w.ax_path.set_ylim(1e-3, 1e3)  # limits changed behind the widget's back, then a
    w.redraw()                      # full redraw (no changed list): the next step agrees
    w.state.alpha = 0.65
    np.testing.assert_array_equal(pixels(w), full_draw(w))


def test_bench_widgets_times_both_modes(capsys):
    from hnviz.bench.slider import slider_latency

    out = slider_latency(steps=4, n_steps=20)
    assert out["blit_ms"] > 0 and out["full_ms"] > 0
    assert out["speedup"] == pytest.approx(out["full_ms"] / out["blit_ms"])
    assert "blitted" in capsys.readouterr().out


def test_throttle_lets_one_redraw_through_per_interval():
    from hnviz.widgets.figure_view import Throttle

    free = Throttle(0.0)
    assert free.ready() and not free.ready()  # one in flight: the second waits
    free.done()
    assert free.ready()
    slow = Throttle(60.0)
    assert slow.ready()
    slow.done()
    assert not slow.ready()  # within the interval after a redraw


def test_a_blitted_step_of_accuracy_bars_equals_a_full_draw():
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=20)
    learner = hnviz.HyperCL(cfg, progress=False).fit(hnviz.permuted_digits(3))
    w = InterpolationExplorer(learner, a=0, b=2)
    assert not w.net.regression and w.changing_artists()  # the bars blit
    for alpha in (0.5, 0.0, 1.0):  # at 0 and 1 the own marks sit on the bars' tops
        w.state.alpha = alpha
        blitted = pixels(w)
        np.testing.assert_array_equal(blitted, full_draw(w))


def test_chance_lines_mark_each_runs_chance_or_name_it_below_the_axis():
    import matplotlib.figure

    from hnviz.widgets.view import chance_lines

    ax = matplotlib.figure.Figure().subplots()
    ax.set_ylim(0, 101)
    chance_lines(ax, [50.0, 10.0, 10.0])  # a cl1 run of 2-class heads, two cl3 runs
    assert sorted(l.get_ydata()[0] for l in ax.lines) == [10.0, 50.0]
    assert sorted(t.get_text().strip() for t in ax.texts) == ["chance 10 %", "chance 50 %"]
    ax2 = matplotlib.figure.Figure().subplots()
    ax2.set(ylim=(30, 101), ylabel="accuracy (%)")
    chance_lines(ax2, [50.0, 10.0])
    assert [l.get_ydata()[0] for l in ax2.lines] == [50.0]
    assert ax2.get_ylabel() == "accuracy (%)\n(chance: 10 %, below the axis)"


def test_a_blitted_point_of_the_embedding_explorer_equals_a_full_draw(toy_learner):
    from hnviz.widgets import EmbeddingExplorer

    w = EmbeddingExplorer(toy_learner, resolution=8)
    for point in ((0.5, -0.3), (0.52, -0.28), (-1.0, 0.4)):
        w.state.point = point
        blitted = pixels(w)
        assert w.fig_view._background is not None  # the point was blitted
        np.testing.assert_array_equal(blitted, full_draw(w))
        w.redraw(changed=w.changing_artists())  # the background again
