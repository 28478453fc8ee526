"""Run files: safetensors + JSON, save -> load gives identical predictions."""
import json

import numpy as np
import pytest
import torch

import hnviz
from hnviz.safeio import atomic_write


def test_save_load_identical_predictions(tiny_toy_learner, toy, tmp_path):
    hnviz.save_run(tiny_toy_learner, tmp_path / "run", benchmark=toy.spec)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["gen-000001", "run.json"]
    assert sorted(p.name for p in (tmp_path / "run" / "gen-000001").iterdir()) == [
        "history.safetensors", "weights.safetensors"]
    run = hnviz.load_run(tmp_path / "run")
    for t in range(3):
        x = toy[t].x_test
        assert torch.equal(run.learner.predict(x, t), tiny_toy_learner.predict(x, t))
    np.testing.assert_array_equal(run.learner.matrix_, tiny_toy_learner.matrix_)
    np.testing.assert_array_equal(run.learner.history_[2]["task_loss"],
                                  tiny_toy_learner.history_[2]["task_loss"])
    assert run.learner.config == tiny_toy_learner.config
    assert run.tasks().spec == toy.spec and run.metrics["metric"] == "mse"


def test_no_pickle_anywhere(tiny_toy_learner, tmp_path):
    hnviz.save_run(tiny_toy_learner, tmp_path)
    for f in tmp_path.rglob("*"):
        assert f.is_dir() or not f.read_bytes().startswith(b"\x80"), f"{f} looks like a pickle"


def test_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        hnviz.load_run(tmp_path / "nope")
    with pytest.raises(ValueError, match="lacks run.json"):
        hnviz.load_run(tmp_path)


def test_unknown_schema_version(tiny_toy_learner, tmp_path):
    hnviz.save_run(tiny_toy_learner, tmp_path)
    info = json.loads((tmp_path / "run.json").read_text())
    info["schema_version"] = 99
    (tmp_path / "run.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="schema version 99"):
        hnviz.load_run(tmp_path)


def test_corrupt_weights_named(tiny_toy_learner, tmp_path):
    hnviz.save_run(tiny_toy_learner, tmp_path)
    (tmp_path / "gen-000001" / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="weights.safetensors"):
        hnviz.load_run(tmp_path)


def test_atomic_write_leaves_no_temporaries(tmp_path):
    atomic_write(tmp_path / "a.json", "{}")
    atomic_write(tmp_path / "a.json", '{"x": 1}')
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
