"""Transfer between tasks: forward transfer recorded while training (checked against the
metric computed by hand from the networks), transfer vs from scratch, and both in run
files, compare's table and the dashboard."""
import dataclasses
import json

import numpy as np
import pytest
import torch

import hnviz
from hnviz.experiments.compare import compare
from hnviz.widgets import ForgettingDashboard


def accuracy(out, task):
    return float((out.argmax(-1) == task.y_test).float().mean() * 100)


@pytest.fixture(scope="module")
def seq():
    return hnviz.permuted_digits(3)


def test_hnet_records_metric_before_each_task_and_untrained(seq):
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=40)
    learner = hnviz.HyperCL(cfg, random_state=5, progress=False).partial_fit(seq[0])
    # by hand: task 1's embedding is the next draw of the learner's generator
    gen = torch.Generator()
    gen.set_state(learner.gen_.get_state())
    emb = torch.randn(cfg.emb_dim, generator=gen)
    x = seq[1].x_test[:]
    with torch.no_grad():
        now = accuracy(learner.target_(x, learner.hnet_(emb[None])[0], 0), seq[1])
        untrained = hnviz.HyperCL(cfg, random_state=5, progress=False)
        untrained.build(64, 10, 1, (1, 8, 8))
        fresh = accuracy(learner.target_(x, untrained.hnet_(emb[None])[0], 0), seq[1])
    learner.partial_fit(seq[1]).partial_fit(seq[2])
    assert learner.before_[1] == pytest.approx(now) and learner.fresh_[1] == pytest.approx(fresh)
    assert learner.before_[0] == learner.fresh_[0]  # nothing learned before task 1
    s = learner.summary()
    want = np.mean(learner.before_[1:] - learner.fresh_[1:])
    assert s["fwt"] == pytest.approx(want) and len(s["before"]) == 3


def test_baseline_records_before_with_its_current_weights(seq):
    cfg = hnviz.BaselineConfig.preset("permuted_digits", method="finetune", n_steps=40)
    learner = hnviz.BaselineCL(cfg, random_state=2, progress=False).partial_fit(seq[0])
    theta = learner.theta_.detach().clone()
    init = hnviz.BaselineCL(cfg, random_state=2, progress=False)
    init.build(64, 10, 1, (1, 8, 8))
    with torch.no_grad():
        now = accuracy(learner.target_(seq[1].x_test[:], theta, 0), seq[1])
        fresh = accuracy(learner.target_(seq[1].x_test[:], init.theta_, 0), seq[1])
    learner.partial_fit(seq[1])
    np.testing.assert_allclose(learner.before_, [learner.fresh_[0], now])
    np.testing.assert_allclose(learner.fresh_[1], fresh)
    # one shared head learned task 0's permutation: it helps on task 1 only by chance
    assert learner.summary()["fwt"] == pytest.approx(now - fresh)


def test_scratch_scores_train_each_task_alone(seq):
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=30)
    scores = hnviz.scratch_scores(lambda: hnviz.HyperCL(cfg, 1, progress=False), seq[:2],
                                  progress=False)
    alone = hnviz.HyperCL(cfg, 1, progress=False).partial_fit(
        dataclasses.replace(seq[1], task_id=0))
    assert scores.shape == (2,) and scores[1] == alone.matrix_[0, 0]
    first = hnviz.HyperCL(cfg, 1, progress=False).partial_fit(seq[0])
    assert scores[0] == first.matrix_[0, 0]  # task 0 alone is the sequence's first task
    with pytest.raises(TypeError, match="hnviz learner"):
        hnviz.scratch_scores(lambda: object(), seq[:1], progress=False)


def test_transfer_in_run_files_compare_and_dashboard(tmp_path, seq):
    summary = compare(seq, "permuted_digits", "cl1", ["hnet", "finetune"], [0], tmp_path,
                      progress=False, scratch=True, n_steps=20)
    for method in ("hnet", "finetune"):
        run = hnviz.load_run(tmp_path / method / "seed0")
        m = run.metrics
        gain = np.diag(run.learner.matrix_) - np.array(m["scratch"])
        np.testing.assert_allclose(m["transfer"], gain)
        assert m["transfer_mean"] == pytest.approx(gain.mean())
        assert m["fwt"] == pytest.approx(np.mean(np.subtract(m["before"], m["fresh"])[1:]))
        assert run.learner.summary()["fwt"] == m["fwt"]  # before_/fresh_ load with the run
        st = summary["methods"][method]
        assert st["fwt"]["mean"] == pytest.approx(m["fwt"])
        assert st["transfer_mean"]["mean"] == pytest.approx(m["transfer_mean"])
    table = (tmp_path / "table.md").read_text()
    assert "| FWT | vs scratch |" in table
    d = ForgettingDashboard({"hnet": tmp_path / "hnet" / "seed0",
                             "finetune": tmp_path / "finetune" / "seed0"})
    rows = {r["run"]: r for r in d.summary()}
    assert rows["hnet"]["FWT"] == pytest.approx(json.loads(
        (tmp_path / "hnet" / "seed0" / "run.json").read_text())["metrics"]["fwt"])
    assert rows["finetune"]["vs scratch"] is not None and "vs scratch" in d.table.value


def test_runs_without_transfer_records_load_and_show_none(tmp_path, seq):
    """A run saved before forward transfer existed (no before/fresh) loads; FWT unknown."""
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=10)
    learner = hnviz.HyperCL(cfg, progress=False).fit(seq[:2])
    hnviz.save_run(learner, tmp_path / "r")
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    for k in ("before", "fresh", "fwt"):
        del info["metrics"][k]
    (tmp_path / "r" / "run.json").write_text(json.dumps(info))
    run = hnviz.load_run(tmp_path / "r")
    assert np.isnan(run.learner.before_).all() and "fwt" not in run.learner.summary()
    info["metrics"]["before"] = [1.0]  # the wrong length is damage
    (tmp_path / "r" / "run.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="'before' that is not a list of 2 numbers"):
        hnviz.load_run(tmp_path / "r")


def test_fashion_transfer_tasks():
    """One big first task (classes 0-4, all 30,000 images), then five 5-way tasks of
    n_per_class images per class, relabelled 0..4 in TRANSFER_CLASSES order, scored on
    every test image of their classes; the subsets follow the seed."""
    from hnviz.data.sequences import TRANSFER_CLASSES, fashion_transfer
    x_tr, y_tr, x_te, y_te = hnviz.load_dataset("fashion_mnist")
    seq = fashion_transfer(n_per_class=7, seed=1)
    assert [len(t.x_train) for t in seq] == [30000] + [35] * 5
    assert all(len(t.x_test) == 5000 and t.n_outputs == 5 for t in seq)
    for t, classes in zip(seq[1:], TRANSFER_CLASSES):
        assert t.meta["classes"] == list(classes)
        assert np.bincount(t.y_train.numpy(), minlength=5).tolist() == [7] * 5
        want = y_te[np.isin(y_te, classes)]
        np.testing.assert_array_equal(np.asarray(classes)[t.y_test.numpy()], want)
        first = x_te[np.isin(y_te, classes)][0].reshape(-1) / np.float32(255)
        np.testing.assert_array_equal(t.x_test[0].numpy(), first)
    other = fashion_transfer(n_per_class=7, seed=2)
    assert not torch.equal(seq[1].x_train, other[1].x_train)
    assert torch.equal(seq[0].x_train, other[0].x_train)  # the first task: all of it
    with pytest.raises(ValueError, match="n_per_class must be an integer >= 1 and <= 6000"):
        fashion_transfer(n_per_class=0)


def test_transfer_points_and_figures(tmp_path, seq):
    """In-sequence and alone scores read back from compare's run directories; the gain
    over the later tasks equals the one computed by hand from run.json."""
    import matplotlib
    matplotlib.use("Agg")
    from hnviz.results.transfer import plot_gain_by_size, plot_transfer, transfer_points
    compare(seq, "permuted_digits", "cl1", ["hnet", "finetune"], [0, 1], tmp_path / "c",
            progress=False, scratch=True, n_steps=20)
    runs = {m: [tmp_path / "c" / m / f"seed{k}" for k in (0, 1)] for m in ("hnet", "finetune")}
    points = transfer_points(runs)
    for m, dirs in runs.items():
        metrics = [json.loads((d / "run.json").read_text())["metrics"] for d in dirs]
        want = [np.mean(np.subtract(x["during"], x["scratch"])[1:]) for x in metrics]
        np.testing.assert_allclose(points[m]["gain"], want)
        assert points[m]["during"].shape == (2, 3)
        assert points[m]["gain_stats"]["mean"] == pytest.approx(np.mean(want))
    ax = plot_transfer(points)
    assert len(ax.patches) == 2 * 2 * 2  # methods x (in sequence, alone) x tasks 2-3
    heights = [p.get_height() for p in ax.patches]
    assert heights[:2] == pytest.approx(points["hnet"]["during"][:, 1:].mean(0))
    assert heights[2:4] == pytest.approx(points["hnet"]["scratch"][:, 1:].mean(0))
    plot_gain_by_size({20: points, 100: points})
    compare(seq, "permuted_digits", "cl1", ["hnet"], [0], tmp_path / "plain", progress=False,
            n_steps=20)
    with pytest.raises(ValueError, match="without scratch=True"):
        transfer_points({"hnet": [tmp_path / "plain" / "hnet" / "seed0"]})
