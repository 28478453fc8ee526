"""ReplayExplorer driven headless (Agg): set ``state``, assert on the artists' data."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from traitlets import TraitError  # noqa: E402

import hnviz  # noqa: E402
from hnviz.experiments.compare import make_learner  # noqa: E402
from hnviz.data.scenarios import apply_scenario  # noqa: E402
from hnviz.widgets import ReplayExplorer  # noqa: E402
from hnviz.widgets.replay_explorer import mosaic  # noqa: E402

SMALL = dict(n_steps=60, vae_hidden=(100,), rp_hnet_hidden=(32, 32), rp_chunk_size=500,
             tir_hidden=(100,), target_hidden=(100,))


@pytest.fixture(scope="module")
def tir():
    tasks = apply_scenario(hnviz.split_digits(), "cl3")
    return make_learner("hnet_tir", "split_digits", "cl3", 0, False, **SMALL).fit(tasks), tasks


def test_gallery_shows_each_tasks_replay_with_shared_draws(tir):
    learner, tasks = tir
    w = ReplayExplorer(learner, a=0, b=3, n=4)
    assert w.errors == [] and w.columns == [0, 1, 2, 3, 4]
    z = torch.randn(4, learner.config.vae_latent, generator=torch.Generator().manual_seed(0))
    images = learner.replay_.generate(learner.replay_.embeddings, 4, torch.Generator(), z)
    want = mosaic(images.reshape(-1, 64).numpy(), (1, 8, 8), 4)
    np.testing.assert_allclose(w.gallery.get_array(), want, rtol=1e-6)
    assert want.shape == (4 * 9 - 1, 5 * 9 - 1)
    # a column is one task: the block of task 3, latent 2 is that image
    np.testing.assert_allclose(want[18:26, 18:26], images[2, 2].reshape(8, 8).numpy(), rtol=1e-6)
    tir_says = learner.replay_.infer(images.reshape(-1, 64), 5).reshape(5, 4)
    named = [(tir_says[t] == t).float().mean().item() * 100 for t in range(5)]
    assert w.named == pytest.approx(named)
    labels = [t.get_text() for t in w.ax_gallery.get_xticklabels()]
    assert labels[2] == f"task 3\n{named[2]:.0f} %"


def test_alpha_walks_between_replay_embeddings(tir):
    learner, _ = tir
    w = ReplayExplorer(learner, a=0, b=3, n=4)
    e = learner.replay_.embeddings
    z = w.latent()
    for alpha in (0.0, 0.4, 1.0):
        w.state.alpha = alpha
        emb = ((1 - alpha) * e[0] + alpha * e[3])[None]
        images = learner.replay_.generate(emb, 4, torch.Generator(), z)[0]
        np.testing.assert_allclose(w.now.get_array(), mosaic(images.numpy(), (1, 8, 8), 2),
                                   rtol=1e-6)
        units = torch.softmax(learner.replay_.tir_logits(images), -1).detach()  # (4, 10)
        probs = units.reshape(4, 5, 2).sum(-1).mean(0).numpy() * 100
        np.testing.assert_allclose([b.get_height() for b in w.bars], probs, rtol=1e-5)
    assert w.ax_now.get_title().startswith("α = 1.00")
    before = w.gallery.get_array().copy()
    w.state.seed = 5  # new draws everywhere
    assert not np.allclose(before, w.gallery.get_array())
    with pytest.raises(TraitError, match="out of range"):
        w.state.b = 7


def test_explorer_needs_a_replay_run(tir):
    plain = make_learner("hnet", "split_digits", "cl3", 0, False, n_steps=5)
    plain.fit(tir[1])
    w = ReplayExplorer(plain)
    assert w.errors and "task_inference='replay'" in w.errors[0]


def test_colour_images_are_drawn_in_colour_and_grey_ones_as_before():
    """RGB inputs (3, H, W) make an (H', W', 3) picture, each pixel its three channels;
    one-channel inputs the grey picture of their only channel."""
    rng = np.random.default_rng(0)
    rgb = rng.random((4, 3 * 2 * 5))  # 4 images of (3, 2, 5)
    pic = mosaic(rgb, (3, 2, 5), rows=2)
    assert pic.shape == (2 * 3 - 1, 2 * 6 - 1, 3)
    second = rgb[1].reshape(3, 2, 5)  # column 0, row 1
    assert np.array_equal(pic[3:5, 0:5], second.transpose(1, 2, 0))
    assert np.all(pic[2, :] == 0.5)  # the gap between rows
    grey = rng.random((2, 16))
    assert np.array_equal(mosaic(grey, (1, 4, 4), rows=1)[:, :4], grey[0].reshape(4, 4))


def test_the_explorer_draws_a_colour_run_in_colour():
    """An HNET+TIR run on tiny RGB images (3, 4, 4): both pictures have three channels."""
    from hnviz.core.tasks import Task, TaskSequence

    g = torch.Generator().manual_seed(0)
    tasks = []
    for t in range(2):
        x = torch.rand(64, 48, generator=g) * 0.5 + 0.5 * t  # tasks differ in brightness
        y = torch.randint(0, 2, (64,), generator=g)
        tasks.append(Task(t, f"rgb {t}", "classification", x, y, x[:16], y[:16], n_outputs=2,
                          n_tasks=2, in_shape=(3, 4, 4), class_offset=2 * t,
                          n_classes_total=4))
    seq = apply_scenario(TaskSequence("rgb", tasks, {"name": "rgb"}), "cl3")
    learner = make_learner("hnet_tir", "split_digits", "cl3", 0, False, n_steps=10,
                           vae_hidden=(20,), rp_hnet_hidden=(8,), rp_chunk_size=200,
                           tir_hidden=(20,), target_hidden=(20,), outliers="none").fit(seq)
    w = ReplayExplorer(learner, a=0, b=1, n=4)
    assert w.errors == []
    assert w.gallery.get_array().shape == (4 * 5 - 1, 2 * 5 - 1, 3)
    assert w.now.get_array().shape == (2 * 5 - 1, 2 * 5 - 1, 3)
