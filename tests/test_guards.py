"""Training guards: a diverging task stops with an error naming task and step, and the
learner keeps everything it had before that task."""
import numpy as np
import pytest
import torch

import hnviz
from hnviz.core.train import Callback


class Poison(Callback):
    """Puts an inf into the trained weights at one step of one task."""

    def __init__(self, task_id, step):
        self.task_id, self.step = task_id, step

    def on_step(self, learner, task_id, step, logs):
        if (task_id, step) == (self.task_id, self.step):
            with torch.no_grad():
                w = learner.theta_ if isinstance(learner, hnviz.BaselineCL) else \
                    next(learner.hnet_.parameters())
                w.view(-1)[0] = float("inf")


def _learners():
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=40)
    bcfg = hnviz.BaselineConfig.preset("toy_regression", method="ewc", n_steps=40)
    return [hnviz.HyperCL(cfg, progress=False), hnviz.BaselineCL(bcfg, progress=False)]


@pytest.mark.parametrize("index", [0, 1])
def test_non_finite_loss_names_task_and_step_and_keeps_earlier_tasks(toy, index):
    learner = _learners()[index].fit(toy.tasks[:2])
    before = {k: v.clone() for k, v in learner.state_dict().weights.items()}
    matrix, preds = learner.matrix_.copy(), learner.predict(toy[0].x_test, 0)
    # the inf goes in after step 6: the loss is non-finite at step 7, or at step 8 where a
    # saturated sigmoid hides the inf until Adam's update turns the weights into NaN
    with pytest.raises(hnviz.NonFiniteLossError,
                       match=r"task 3 \('.*'\) at step [78] of 40: .*Lower config\.lr"):
        learner.partial_fit(toy[2], callbacks=[Poison(2, 5)])
    assert learner.n_tasks_ == 2 and len(learner.history_) == 2
    np.testing.assert_array_equal(learner.matrix_, matrix)
    for k, v in learner.state_dict().weights.items():
        assert torch.equal(v, before[k]), k
    torch.testing.assert_close(learner.predict(toy[0].x_test, 0), preds, rtol=0, atol=0)
    learner.partial_fit(toy[2])  # and it can go on with the task
    assert learner.n_tasks_ == 3 and np.isfinite(learner.matrix_[-1]).all()


class FailAtTaskEnd(Callback):
    """A guard that finds the weights non-finite after the task was recorded (as the
    checkpointer's check does at a task's end)."""

    def on_task_end(self, learner, task_id, logs):
        raise hnviz.NonFiniteLossError(f"task {task_id + 1}: weights non-finite")


@pytest.mark.parametrize("index", [0, 1])
def test_divergence_found_at_a_tasks_end_rolls_back_its_records(toy, index):
    learner = _learners()[index].fit(toy.tasks[:2])
    before = {k: v.clone() for k, v in learner.state_dict().weights.items()}
    matrix, info = learner.matrix_.copy(), list(learner.task_info_)
    with pytest.raises(hnviz.NonFiniteLossError, match="task 3: weights non-finite"):
        learner.partial_fit(toy[2], callbacks=[FailAtTaskEnd()])
    assert learner.n_tasks_ == 2 and len(learner.history_) == len(learner.tasks_) == 2
    assert learner.task_info_ == info
    np.testing.assert_array_equal(learner.matrix_, matrix)
    for k, v in learner.state_dict().weights.items():
        assert torch.equal(v, before[k]), k


def test_divergence_in_the_first_task_leaves_an_unfitted_learner(toy):
    learner = _learners()[0]
    with pytest.raises(hnviz.NonFiniteLossError, match="task 1"):
        learner.fit(toy.tasks, callbacks=[Poison(0, 3)])
    assert learner.n_tasks_ == 0 and learner.target_ is None
    learner.fit(toy.tasks[:1])
    assert learner.n_tasks_ == 1


def test_divergence_keeps_the_last_good_checkpoint(toy, tmp_path):
    """The inf goes in after step 6 of task 2, where a checkpoint (every 3 steps) is due:
    it is refused, the checkpoints before stay intact, and the run resumes from them to
    the same end as a run never poisoned."""
    from hnviz.store.checkpoint import list_checkpoints, read_checkpoint

    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=40)
    learner = hnviz.HyperCL(cfg, progress=False, callbacks=[Poison(1, 5)])
    with pytest.raises(hnviz.NonFiniteLossError, match="task 2"):
        hnviz.fit_checkpointed(learner, toy, tmp_path, every=3)
    found = list_checkpoints(tmp_path)
    assert [(c.tasks_done, c.step) for c in found] == [(1, 0), (1, 3)]
    for c in found:
        read_checkpoint(c)  # checksum matches, every tensor finite
    resumed = hnviz.resume(tmp_path, progress=False)  # without the poison
    plain = hnviz.HyperCL(cfg, progress=False).fit(toy)
    assert resumed.resumed_from_["step"] == 3 and resumed.n_tasks_ == 3
    assert torch.equal(resumed.embeddings_, plain.embeddings_)
    np.testing.assert_array_equal(resumed.matrix_, plain.matrix_)
