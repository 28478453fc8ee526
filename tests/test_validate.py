"""Bad input gets a ValueError that names the value and the fix."""
import pytest
import torch

import hnviz
from hnviz.cli.parser import main


@pytest.mark.parametrize("field,value,match", [
    ("emb_dim", 0, "emb_dim must be an integer >= 1, got 0"),
    ("chunk_size", 0, "chunk_size must be an integer >= 1, got 0"),
    ("target_activation", "swish", "unknown activation 'swish'; choose one of relu"),
    ("hnet", "huge", "unknown hnet kind 'huge'"),
    ("beta", -1.0, "beta must be a finite number >= 0"),
    ("target_hidden", (10, 0), "target_hidden sizes must be integers >= 1, got 0"),
])
def test_bad_config(field, value, match):
    with pytest.raises(ValueError, match=match):
        hnviz.HyperCLConfig(**{field: value})


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset 'mnist'"):
        hnviz.HyperCLConfig.preset("mnist")
    with pytest.raises(ValueError, match="unknown config field"):
        hnviz.HyperCLConfig().replace(betta=1.0)


def test_unknown_benchmark():
    with pytest.raises(ValueError, match="unknown benchmark 'cifar'; choose one of toy_regression"):
        hnviz.get_benchmark("cifar")
    with pytest.raises(ValueError, match="n_tasks must be an integer >= 1 and <= 10000, got 0"):
        hnviz.permuted_digits(0)


def test_task_id_out_of_range(tiny_toy_learner, toy):
    with pytest.raises(ValueError, match=r"task id 3 out of range: this learner knows tasks 0..2"):
        tiny_toy_learner.predict(toy[0].x_test, 3)
    with pytest.raises(ValueError, match="task id -1 out of range"):
        tiny_toy_learner.predict(toy[0].x_test, -1)


def test_wrong_feature_size(tiny_toy_learner):
    with pytest.raises(ValueError, match=r"input of shape \(4, 3\) has the wrong feature size.*\(N, 1\)"):
        tiny_toy_learner.predict(torch.zeros(4, 3), 0)
    with pytest.raises(ValueError, match="emb_dim = 2"):
        tiny_toy_learner.generate_weights(torch.zeros(5))


def test_tasks_out_of_order(toy):
    with pytest.raises(ValueError, match="expects task 0 next"):
        hnviz.HyperCL(progress=False).partial_fit(toy[1])


def test_unfitted_learner(toy):
    with pytest.raises(ValueError, match="call partial_fit"):
        hnviz.HyperCL().predict(toy[0].x_test, 0)


def test_cli_reports_errors(capsys, tmp_path):
    assert main(["train", "--benchmark", "cifar", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark 'cifar'" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["rows", "columns", "strided"])
def test_all_finite_finds_every_nan_and_inf(layout):
    """The one-pass check (aminmax) against isfinite(...).all(): a NaN, +inf or -inf at
    the first, last and random positions of row-major, column-major and strided data."""
    from hnviz.core.validate import all_finite
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(37, 29, generator=gen) * 2 - 1
    spots = [(0, 0), (36, 28)] + [tuple(int(v) for v in torch.randint(0, 29, (2,),
                                                                     generator=gen))
                                  for _ in range(6)]

    def arrange(x):
        if layout == "columns":
            return x.t().contiguous().t()
        return x.repeat(1, 2)[:, ::2] if layout == "strided" else x

    assert all_finite(arrange(base))
    for bad in (float("nan"), float("inf"), -float("inf")):
        for i, j in spots:
            x = base.clone()
            x[i, j] = bad
            assert not all_finite(arrange(x)), (bad, i, j)
    x = torch.full((3, 4), 3.0e38)  # huge but finite
    assert all_finite(x)
