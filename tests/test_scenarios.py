"""Scenarios and task inference by entropy (HNET+ENT) against plain per-task loops."""
import numpy as np
import pytest
import torch

import hnviz
from hnviz.data.benchmarks import from_spec
from hnviz.data.scenarios import apply_scenario


@pytest.fixture(scope="module")
def split_cl3_learner():
    tasks = apply_scenario(hnviz.split_digits(), "cl3")
    cfg = hnviz.HyperCLConfig.preset("split_digits", multi_head=False, n_steps=40,
                                     target_hidden=(30,))
    return hnviz.HyperCL(cfg, random_state=0, progress=False).fit(tasks), tasks


def test_scenario_labels_and_head_size():
    seq = hnviz.split_digits()
    cl3, cl2 = apply_scenario(seq, "cl3"), apply_scenario(seq, "cl2")
    t = cl3[3]
    assert (t.class_offset, t.head_size, cl2[3].head_size) == (6, 10, 2)
    assert set(t.scenario_labels(t.y_test).tolist()) == {6, 7}
    assert set(cl2[3].scenario_labels(cl2[3].y_test).tolist()) == {0, 1}
    pm = apply_scenario(hnviz.permuted_digits(3), "cl3")
    assert pm[2].class_offset == 20 and pm[2].head_size == 30
    assert from_spec(cl3.spec)[3].scenario == "cl3"


def test_bad_scenarios():
    with pytest.raises(ValueError, match="unknown scenario 'cl4'; choose one of cl1, cl2, cl3"):
        apply_scenario(hnviz.split_digits(), "cl4")
    with pytest.raises(ValueError, match="needs a classification benchmark"):
        apply_scenario(hnviz.toy_regression(), "cl3")


def test_task_outputs_equal_per_task_loop(split_cl3_learner):
    l, tasks = split_cl3_learner
    x = tasks[2].x_test
    outs = l.task_outputs(x, chunk=37)  # (T, N, out), chunked + vmapped
    assert outs.shape == (5, len(x), 2)
    for t in range(5):  # float32 tolerances (torch's defaults): the batched and the single
        # product sum in another order, and some CPUs' kernels differ by ~2e-6 here
        torch.testing.assert_close(outs[t], l.predict_output(x, t), rtol=1.3e-6, atol=1e-5)


def test_entropy_inference_equals_loop(split_cl3_learner):
    l, tasks = split_cl3_learner
    x = tasks[1].x_test
    t_hat, ent = l.infer_task(x)
    ref = []
    for t in range(5):
        p = torch.softmax(l.predict_output(x, t), -1)
        ref.append(-(p * p.log()).sum(-1))
    torch.testing.assert_close(ent, torch.stack(ref), rtol=1e-4, atol=1e-6)
    assert torch.equal(t_hat, torch.stack(ref).argmin(0))
    # cl3 labels: local prediction of the inferred task's net + that task's class offset
    pred = l.predict_agnostic(x, "cl3")
    local = torch.stack([l.predict(x, t) for t in range(5)])[t_hat, torch.arange(len(x))]
    assert torch.equal(pred, local + 2 * t_hat)
    acc = (pred == tasks[1].scenario_labels(tasks[1].y_test)).float().mean() * 100
    assert l.score(tasks[1]) == pytest.approx(float(acc))


def test_inference_matrix_in_summary(split_cl3_learner):
    l, tasks = split_cl3_learner
    s = l.summary()
    assert l.inference_matrix_.shape == (5, 5) and np.isnan(l.inference_matrix_[0, 1])
    assert s["task_inference"]["final"][2] == pytest.approx(l.task_inference_accuracy(tasks[2]))
    assert l.inference_matrix_[0, 0] == 100.0  # one task: nothing to confuse


def test_multi_head_model_needs_task_id():
    tasks = hnviz.split_digits()
    cfg = hnviz.HyperCLConfig.preset("split_digits", n_steps=2, target_hidden=(8,))
    l = hnviz.HyperCL(cfg, progress=False).partial_fit(tasks[0])
    from hnviz.learners.base import ContinualLearner
    with pytest.raises(ValueError, match="multi-head model needs the task id"):
        ContinualLearner.predict_agnostic(l, tasks[0].x_test, "cl2")


def test_entropy_split_and_its_figure(split_cl3_learner):
    """Each net's entropies on its own test inputs and on the others', against a loop."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hnviz.results.analysis import entropy_split
    from hnviz.results.plots import plot_entropy_split
    l, tasks = split_cl3_learner
    split = entropy_split(l, tasks)
    for t in range(5):
        own = []
        rest = []
        for task in tasks:
            p = torch.softmax(l.predict_output(task.x_test, t), -1)
            h = -(p * p.log()).sum(-1).numpy()
            (own if task.task_id == t else rest).append(h)
        np.testing.assert_allclose(split[t][0], np.concatenate(own), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.sort(split[t][1]), np.sort(np.concatenate(rest)),
                                   rtol=1e-4, atol=1e-6)
    fig, ax = plt.subplots()
    boxes = plot_entropy_split(split, ax)
    assert len(boxes["boxes"]) == 10 and ax.get_yscale() == "log"
    median = boxes["medians"][2].get_ydata()[0]  # net 2, own inputs
    assert median == pytest.approx(max(np.median(split[1][0]), 1e-6), rel=1e-6)
    plt.close(fig)
