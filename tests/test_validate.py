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
