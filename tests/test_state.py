"""One owner of a learner's state: ``state_dict``/``load_state_dict`` round trips (a task
in progress continues bit for bit), and run directories written by hnviz 0.1 still load
and save again to the same bytes."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import hnviz
from hnviz.learners.learner_state import StateError
from hnviz.core.train import Callback

OLD_RUNS = sorted((Path(__file__).parent / "data" / "runs_v0.1").iterdir())


class Snapshot(Callback):
    """Keeps a copy of the learner's state after step ``step`` of task ``task``."""

    def __init__(self, task: int, step: int):
        self.at, self.state = (task, step), None

    def on_step(self, learner, task_id, step, logs):
        if (task_id, step + 1) == self.at:
            self.state = copy.deepcopy(learner.state_dict())


def test_a_task_in_progress_continues_bit_for_bit(toy):
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=30, reg_subset=1)
    snap = Snapshot(task=1, step=12)
    whole = hnviz.HyperCL(cfg, random_state=5, progress=False).fit(toy, callbacks=[snap])
    state = snap.state
    assert state.meta["step"] == 12 and state.tasks_done == 1
    assert {"task.emb", "task.perm", "opt.theta.0.exp_avg", "rng.gen"} <= set(state.training)
    resumed = hnviz.HyperCL.from_state_dict(state, toy, progress=False)
    assert resumed.in_progress_.step == 12 and resumed.n_tasks_ == 1
    resumed.continue_fit(toy)
    for (name, a), b in zip(whole.hnet_.named_parameters(), resumed.hnet_.parameters()):
        assert torch.equal(a, b), name
    assert torch.equal(whole.embeddings_, resumed.embeddings_)
    np.testing.assert_array_equal(whole.matrix_, resumed.matrix_)
    for h1, h2 in zip(whole.history_, resumed.history_):
        for k in h1:
            np.testing.assert_array_equal(h1[k], h2[k])


def test_a_state_in_progress_needs_the_tasks(toy):
    snap = Snapshot(task=1, step=5)
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=10)
    hnviz.HyperCL(cfg, progress=False).fit(toy, callbacks=[snap])
    with pytest.raises(StateError, match="holds task 2 in progress; pass the run's tasks"):
        hnviz.HyperCL.from_state_dict(snap.state)


def test_baseline_state_round_trip(toy):
    cfg = hnviz.BaselineConfig.preset("toy_regression", method="si", n_steps=20)
    a = hnviz.BaselineCL(cfg, random_state=3, progress=False).fit(toy)
    b = hnviz.BaselineCL.from_state_dict(a.state_dict(), toy)
    assert torch.equal(a.theta_, b.theta_) and torch.equal(a.importance_, b.importance_)
    np.testing.assert_array_equal(a.matrix_, b.matrix_)
    assert [b.score(t) for t in toy] == list(a.matrix_[-1])  # tasks_ back: scores again


def test_states_that_do_not_fit_say_what(tiny_toy_learner):
    state = tiny_toy_learner.state_dict()
    with pytest.raises(StateError, match="describes a 'hypercl' learner, not 'baseline'"):
        hnviz.BaselineCL.from_state_dict(state)
    short = copy.deepcopy(state)
    short.weights["embeddings"] = short.weights["embeddings"][:2]
    with pytest.raises(StateError, match=r"embeddings of shape \(2, 2\), expected \(3, 2\)") as e:
        hnviz.HyperCL.from_state_dict(short)
    assert e.value.part == "weights"
    bad = copy.deepcopy(state)
    bad.meta["matrix"] = [[1.0]]
    with pytest.raises(StateError, match=r"'matrix' of shape \(1, 1\), expected \(3, 3\)"):
        hnviz.HyperCL.from_state_dict(bad)


@pytest.mark.parametrize("old", OLD_RUNS, ids=lambda p: p.name)
def test_runs_written_by_hnviz_0_1_load_and_save_again(old, tmp_path):
    """Schema-1 runs (tensor files and metrics.json beside run.json) load; saved again
    (schema 2) they hold the same tensor bytes, metrics and description."""
    run = hnviz.load_run(old)
    metrics = json.loads((old / "metrics.json").read_text())
    extra = {k: v for k, v in metrics.items() if k not in run.learner.summary()}
    tasks = run.tasks()
    learner = type(run.learner).from_state_dict(run.learner.state_dict(), tasks)
    assert [learner.score(t) for t in tasks] == pytest.approx(list(learner.matrix_[-1]))
    hnviz.save_run(run.learner, tmp_path, benchmark=run.spec, **extra)
    for name in ("weights.safetensors", "history.safetensors"):
        assert (tmp_path / "gen-000001" / name).read_bytes() == (old / name).read_bytes(), name
    new, before = (json.loads((d / "run.json").read_text()) for d in (tmp_path, old))
    assert new["metrics"] == metrics and new["schema_version"] == 2
    # fields added to the config since 0.1 are written with their defaults, the rest as was
    cls = type(run.learner).config_class
    added = set(new["config"]) - set(before["config"])
    assert {k: new["config"][k] for k in added} == \
        {k: v for k, v in cls().to_dict().items() if k in added}
    new["config"] = {k: v for k, v in new["config"].items() if k not in added}
    assert {k: new[k] for k in before if k != "sha256" and k != "schema_version"} == \
        {k: v for k, v in before.items() if k not in ("sha256", "schema_version")}
