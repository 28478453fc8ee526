"""Continual evaluation (eval_every) against evaluating the same weights by hand, the
stability gap against a hand computation, and the records through run files,
checkpoints and comparison tables."""
import json

import numpy as np
import pytest
import torch

import hnviz
from hnviz.learners.baselines import BaselineCL, BaselineConfig
from hnviz.experiments.compare import compare, markdown_table
from hnviz.core.stability import curves, stability_gap
from hnviz.core.train import Callback

K, N = 10, 50  # record every K steps, N test points per task


class HandEval(Callback):
    """At every recorded step, each task's metric from the learner's weights now, by a
    plain loop: one net at a time, its own inputs, head and labels."""

    def __init__(self):
        self.rows = {}  # (task_id, steps done) -> [metric of task 0..t]

    def _nets(self, learner):
        if isinstance(learner, hnviz.HyperCL):
            embs = list(learner.embeddings_) + [learner.in_progress_.emb.detach()]
            return [learner.hnet_(e[None])[0] for e in embs]
        return [learner.theta_.detach()] * (learner.n_tasks_ + 1)

    @torch.no_grad()
    def _evaluate(self, learner, task_id, done):
        row = []
        for j, w in enumerate(self._nets(learner)):
            task = self.tasks[j]
            out = learner.target_(task.x_test[:N], w, learner.head_of(j))
            y = task.y_test[:N]
            if task.kind == "regression":
                row.append(float(((out - y) ** 2).mean()))
            else:
                row.append(float((out.argmax(-1) == y).double().mean() * 100))
        self.rows[task_id, done] = row

    def on_task_start(self, learner, task):
        self._evaluate(learner, task.task_id, 0)

    def on_step(self, learner, task_id, step, logs):
        if (step + 1) % K == 0 or step + 1 == learner.config.n_steps:
            self._evaluate(learner, task_id, step + 1)


def _check_against_hand(learner, hand, n_steps, atol):
    for t, h in enumerate(learner.history_):
        want = [s for s in range(0, n_steps + 1, K)] + ([n_steps] if n_steps % K else [])
        assert h["ce_step"].tolist() == want
        assert h["ce_metric"].shape == (len(want), t + 1)
        for i, s in enumerate(want):
            np.testing.assert_allclose(h["ce_metric"][i], hand.rows[t, s], rtol=1e-5, atol=atol)


@pytest.mark.parametrize("kind", ["hnet_digits", "hnet_toy", "ewc_digits"])
def test_records_equal_a_hand_evaluation_of_the_same_weights(kind):
    tasks = hnviz.toy_regression() if kind == "hnet_toy" else hnviz.permuted_digits(3, seed=0)
    n_steps = 45  # not a multiple of K: the last step is recorded too
    if kind == "ewc_digits":
        learner = BaselineCL(BaselineConfig.preset("permuted_digits", method="ewc",
                                                   n_steps=n_steps, eval_every=K,
                                                   eval_samples=N), progress=False)
    else:
        preset = "toy_regression" if kind == "hnet_toy" else "permuted_digits"
        cfg = hnviz.HyperCLConfig.preset(preset, n_steps=n_steps, eval_every=K, eval_samples=N)
        learner = hnviz.HyperCL(cfg, progress=False)
    hand = HandEval()
    hand.tasks = list(tasks)
    learner.fit(tasks, callbacks=[hand])
    # accuracy: a vmapped pass may round a near-tie differently from the loop (1 point of N)
    _check_against_hand(learner, hand, n_steps, atol=0 if kind == "hnet_toy" else 100 / N)
    if kind != "hnet_toy":  # and such ties are rare: accuracies equal almost everywhere
        mismatches = sum(np.sum(~np.isclose(learner.history_[t]["ce_metric"][i], hand.rows[t, s]))
                         for t in range(3) for i, s in enumerate(learner.history_[t]["ce_step"]))
        assert mismatches <= 2
    # the last record of each task is R's row on the subsample: R with all test points
    # differs, but on the toy (N >= test size) it is R itself
    if kind == "hnet_toy":
        for t, h in enumerate(learner.history_):
            np.testing.assert_allclose(h["ce_metric"][-1], learner.matrix_[t, :t + 1], rtol=1e-5)


def test_evaluating_does_not_change_training():
    tasks = hnviz.permuted_digits(2, seed=1)
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=30)
    a = hnviz.HyperCL(cfg, progress=False).fit(tasks)
    b = hnviz.HyperCL(cfg.replace(eval_every=3), progress=False).fit(tasks)
    for p, q in zip(a.hnet_.parameters(), b.hnet_.parameters()):
        assert torch.equal(p, q)
    assert torch.equal(a.embeddings_, b.embeddings_)
    assert "ce_metric" not in a.history_[0] and "stability_gap" not in a.summary()
    assert "ce_metric" in b.history_[0] and b.summary()["stability_gap"] is not None


def test_stability_gap_by_hand():
    # task 1 trains: task 0 goes 90 -> 60 -> 80; task 2: task 0 95 -> 95, task 1 80 -> 50 -> 70
    hist = [{"ce_step": np.array([0, 5]), "ce_metric": np.array([[10.], [90.]])},
            {"ce_step": np.array([0, 5, 10]), "ce_metric": np.array([[90, 5], [60, 70], [80, 90.]])},
            {"ce_step": np.array([0, 5, 10]),
             "ce_metric": np.array([[95, 80, 0], [96, 50, 60], [95, 70, 85.]])}]
    gap = stability_gap(hist)
    assert gap["gap_per_task"] == [None, 30.0, pytest.approx(15.0)]
    assert gap["stability_gap"] == pytest.approx((30 + 0 + 30) / 3)
    assert gap["gap_recovery"] == pytest.approx((20 + 0 + 20) / 3)
    assert gap["worst_drop"] == 30.0
    # MSE: larger is worse, so a rise counts as the drop (still positive)
    mse = [{k: (v if k == "ce_step" else 100 - v) for k, v in h.items()} for h in hist]
    assert stability_gap(mse, higher_is_better=False) == gap
    assert stability_gap(hist[:1]) is None and stability_gap([{"task_loss": np.zeros(3)}] * 2) is None
    x, y = curves(hist)
    assert x.tolist() == [0, 5, 5, 10, 15, 15, 20, 25] and y.shape == (8, 3)
    assert np.isnan(y[0, 1]) and y[-1].tolist() == [95, 70, 85]


def test_records_survive_run_files_and_a_checkpoint_resume(tmp_path):
    tasks = hnviz.toy_regression()
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=60, eval_every=7)
    full = hnviz.HyperCL(cfg, progress=False).fit(tasks)
    hnviz.save_run(full, tmp_path / "run")
    back = hnviz.load_run(tmp_path / "run").learner
    for h, g in zip(full.history_, back.history_):
        assert np.array_equal(h["ce_step"], g["ce_step"])
        assert np.array_equal(h["ce_metric"], g["ce_metric"])
        assert np.array_equal(h.get("ce_drift", 0), g.get("ce_drift", 0))
    assert back.summary()["stability_gap"] == full.summary()["stability_gap"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())

    for stop in ((0, 30), (1, 30)):  # the first task has no drift, the second has
        _check_resumed_records(full, tasks, cfg, stop, tmp_path / f"ck{stop[0]}")


def _check_resumed_records(full, tasks, cfg, stop, path):
    class Stop(Callback):
        def on_step(self, learner, task_id, step, logs):
            if (task_id, step) == stop:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hnviz.fit_checkpointed(hnviz.HyperCL(cfg, progress=False, callbacks=[Stop()]), tasks,
                               path, every=10)
    done = hnviz.resume(path, tasks, progress=False)
    assert (done.resumed_from_["tasks_done"], done.resumed_from_["step"]) == stop
    for h, g in zip(full.history_, done.history_):
        assert np.array_equal(h["ce_step"], g["ce_step"])
        assert np.array_equal(h["ce_metric"], g["ce_metric"])
        assert np.array_equal(h.get("ce_drift", 0), g.get("ce_drift", 0))


def test_compare_table_shows_the_gap_only_when_recorded(tmp_path):
    tasks = hnviz.permuted_digits(2, seed=0)
    kw = dict(n_steps=20)
    plain = compare(tasks, "permuted_digits", "cl1", ["finetune"], [0], tmp_path / "a",
                    progress=False, **kw)
    assert "stability gap" not in markdown_table(plain)
    ce = compare(tasks, "permuted_digits", "cl1", ["finetune", "hnet"], [0], tmp_path / "b",
                 progress=False, eval_every=5, **kw)
    assert "stability gap" in markdown_table(ce)
    for m in ("finetune", "hnet"):
        run = hnviz.load_run(tmp_path / "b" / m / "seed0").learner
        assert ce["methods"][m]["stability_gap"]["mean"] == run.summary()["stability_gap"]


def test_bad_settings_get_one_line():
    with pytest.raises(ValueError, match="eval_every must be an integer >= 0 and <= 1000000, got -1"):
        hnviz.HyperCLConfig(eval_every=-1)
    with pytest.raises(ValueError, match="eval_samples must be an integer >= 1"):
        BaselineConfig(eval_samples=0)


def test_bench_eval_times_both_and_checks_the_weights(capsys):
    from hnviz.bench.evaluation import eval_overhead

    out = eval_overhead(["hnet", "finetune"], n_tasks=2, every=5, repeats=1, n_steps=20)
    assert set(out) == {"hnet", "finetune"}
    assert all(len(v["plain_s"]) == len(v["eval_s"]) == 1 for v in out.values())
    assert capsys.readouterr().out.count("weights identical") == 2


class HandDrift(Callback):
    """The drift by hand: each earlier task's generated weights when a task starts (the
    regularizer's targets) and at every recorded step, one net at a time, float64."""

    def __init__(self):
        self.drift = {}  # (task_id, steps done) -> [||h(e_j) - W*_j|| for j < task_id]

    @torch.no_grad()
    def _weights(self, learner):
        return [learner.hnet_(e[None])[0].double() for e in learner.embeddings_]

    def on_task_start(self, learner, task):
        self.targets = self._weights(learner)
        self.drift[task.task_id, 0] = [0.0] * len(self.targets)

    def on_step(self, learner, task_id, step, logs):
        if (step + 1) % K == 0 or step + 1 == learner.config.n_steps:
            self.drift[task_id, step + 1] = [float(torch.linalg.vector_norm(w - t)) for w, t in
                                             zip(self._weights(learner), self.targets)]


def test_weight_drift_equals_a_hand_computation():
    tasks = hnviz.toy_regression()
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=40, eval_every=K)
    hand = HandDrift()
    learner = hnviz.HyperCL(cfg, progress=False).fit(tasks, callbacks=[hand])
    assert "ce_drift" not in learner.history_[0]  # no earlier task, no targets
    for t, h in enumerate(learner.history_[1:], start=1):
        assert h["ce_drift"].shape == (5, t)  # the earlier tasks only
        for i, s in enumerate(h["ce_step"]):
            np.testing.assert_allclose(h["ce_drift"][i], hand.drift[t, s], rtol=1e-4, atol=1e-5)
    assert learner.history_[2]["ce_drift"][-1, 0] > 1e-3  # it did move: the test can fail
    from hnviz.core.stability import drift_curves

    x, y = drift_curves(learner.history_)
    assert y.shape == (15, 3) and np.isnan(y[:5]).all()  # task 1 trains: no earlier task
    np.testing.assert_array_equal(y[10:, :2], learner.history_[2]["ce_drift"])
    assert np.isnan(y[10:, 2]).all() and np.isnan(y[5:10, 1:]).all()


def test_a_baseline_has_no_drift_and_the_plot_says_why():
    import matplotlib

    matplotlib.use("Agg")
    from hnviz.results.plots import plot_drift

    tasks = hnviz.toy_regression()
    ewc = BaselineCL(BaselineConfig(method="ewc", n_steps=20, eval_every=5), progress=False)
    ewc.fit(tasks)
    assert all("ce_drift" not in h and "ce_metric" in h for h in ewc.history_)
    with pytest.raises(ValueError, match="no weight-drift records: a hypernetwork run"):
        plot_drift(ewc.history_)
