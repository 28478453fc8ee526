"""Tasks check their own data: mistakes that torch would broadcast or index past become
errors naming the task and the fix."""
import pytest
import torch

import hnviz
from hnviz.tasks import Task


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
