"""Tasks check their own data: mistakes that torch would broadcast or index past become
errors naming the task and the fix."""
import pytest
import torch

import hnviz
from hnviz.core.tasks import Task


def make(kind="classification", n=8, y=None, n_outputs=2, **kw):
    x = torch.randn(n, 4)
    if y is None:
        y = torch.randint(n_outputs, (n,)) if kind == "classification" else torch.randn(n, n_outputs)
    return Task(0, "t", kind, x, y, x, y, n_outputs=n_outputs, n_tasks=1, in_shape=(4,), **kw)


def test_a_good_task_is_accepted():
    assert make().head_size == 2 and make("regression", n_outputs=1).metric == "mse"


@pytest.mark.parametrize("kwargs, words", [
    ({"kind": "regression", "y": torch.randn(8, 3), "n_outputs": 1},
     r"y_train has shape \(8, 3\) but the task has n_outputs = 1"),
    ({"y": torch.tensor([0, 1, 2, 0, 1, 0, 1, 0])}, "labels 0..2; with n_outputs = 2 they must be 0..1"),
    ({"y": torch.tensor([0, -1, 0, 0, 1, 0, 1, 0])}, "labels -1..1"),
    ({"y": torch.zeros(8)}, "must hold class indices"),
    ({"n": 0, "y": torch.zeros(0, dtype=torch.long)}, r"x_train has shape \(0, 4\)"),
    ({"y": torch.zeros(5, dtype=torch.long)}, "y_train has 5 rows for 8 inputs"),
    ({"kind": "ranking"}, "kind 'ranking' is not one of"),
])
def test_bad_task_data_is_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        make(**kwargs)


def test_a_task_with_other_outputs_is_refused_by_the_learner(toy):
    learner = hnviz.HyperCL(hnviz.HyperCLConfig.preset("toy_regression", n_steps=3),
                            progress=False).fit(toy[:1])
    wide = Task(1, "wide", "regression", torch.randn(5, 1), torch.randn(5, 3), torch.randn(5, 1),
                torch.randn(5, 3), n_outputs=3, n_tasks=3, in_shape=(1,))
    with pytest.raises(ValueError, match="needs 3 outputs, the learner's net has 1"):
        learner.partial_fit(wide)


# ------------------------------------------- labels changed after the task was built
def _fitters(kind):
    if kind == "classification":
        cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=2)
        bcfg = hnviz.BaselineConfig.preset("permuted_digits", method="ewc", n_steps=2)
    else:
        cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=2)
        bcfg = hnviz.BaselineConfig.preset("toy_regression", method="ewc", n_steps=2)
    return [hnviz.HyperCL(cfg, progress=False), hnviz.BaselineCL(bcfg, progress=False)]


@pytest.mark.parametrize("build", ["split_digits", "permuted_digits"])
@pytest.mark.parametrize("split, index, value", [("train", 0, 99), ("train", 3, -1),
                                                 ("test", 5, 10)])
@pytest.mark.parametrize("which", [0, 1])
def test_labels_changed_in_place_are_refused_at_fit(build, split, index, value, which):
    """A label changed in place after the sequence was built (Task checks its data only
    when it is made) is named at fit, before torch indexes past the output layer."""
    tasks = hnviz.split_digits() if build == "split_digits" else hnviz.permuted_digits(2)
    getattr(tasks[1], f"y_{split}")[index] = value
    # permuted tasks share one label tensor: the first task then holds the label too
    task = next(t for t in tasks if bool((getattr(t, f"y_{split}") == value).any()))
    learner = _fitters("classification")[which]
    with pytest.raises(ValueError) as info:
        learner.fit(tasks)
    msg = str(info.value)
    assert f"task {task.task_id} ({task.name!r})" in msg and f"y_{split}" in msg
    assert f"label {value}" in msg and f"0..{task.n_outputs - 1}" in msg
    assert "changed after" in msg and msg.count("\n") <= 1
    assert learner.n_tasks_ == 0  # refused before any training: nothing half-learned
    if task.task_id == 1:  # partial_fit (the labs, MethodsLab) takes the same check
        learner.partial_fit(tasks[0])
        with pytest.raises(ValueError, match=f"y_{split} holds label {value}"):
            learner.partial_fit(tasks[1])
        assert learner.n_tasks_ == 1


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_regression_targets_changed_to_non_finite_are_refused(which, bad):
    tasks = hnviz.toy_regression()
    tasks[2].y_test[4, 0] = bad
    with pytest.raises(ValueError, match=rf"task 2 \('.*'\): y_test holds {bad}.*finite.*changed"):
        _fitters("regression")[which].fit(tasks)


def test_dgr_checks_labels_too():
    from hnviz.experiments.compare import make_learner
    from hnviz.data.scenarios import apply_scenario

    tasks = apply_scenario(hnviz.split_digits(), "cl3")
    tasks[0].y_train[7] = 2  # local labels are 0..1 (cl3 adds the task's class offset)
    learner = make_learner("dgr", "split_digits", "cl3", 0, False, n_steps=2)
    with pytest.raises(ValueError, match=r"task 0 .*y_train holds label 2.*0\.\.1"):
        learner.fit(tasks)


def test_task_check_labels_is_cheap_and_silent_for_good_tasks():
    tasks = hnviz.split_digits()
    for t in tasks:
        assert t.check_labels() is None
