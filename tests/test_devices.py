"""Devices: the setting's checks, training and reloading through the device code path on
the CPU (and on CUDA where this machine has it: the same tests run there)."""
import os
import subprocess
import sys

import pytest
import torch

import hnviz
from hnviz.experiments.compare import make_learner
from hnviz.core.devices import check_device, device_setting, resolve_device
from hnviz.core.train import Callback

CUDA = torch.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])
SMALL = {"n_steps": 30, "batch_size": 16}


@pytest.mark.parametrize("value,expected", [("cpu", "cpu"), (" CUDA ", "cuda"),
                                            ("cuda:1", "cuda:1"), ("auto", "auto"),
                                            (torch.device("cpu"), "cpu")])
def test_device_settings_are_normalised(value, expected):
    assert check_device(value) == expected


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "cpu:0", "", 3, None, "mps:1"])
def test_a_wrong_device_gets_one_line_naming_it(value):
    with pytest.raises(ValueError, match="is not a device; use cpu, cuda, cuda:N, mps or auto"):
        check_device(value)


def test_auto_and_the_environment(monkeypatch):
    monkeypatch.delenv("HNVIZ_DEVICE", raising=False)
    assert resolve_device() == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if CUDA else
                                           "mps" if torch.backends.mps.is_available() else "cpu")
    with device_setting("cpu"):
        assert resolve_device() == torch.device("cpu")
    monkeypatch.setenv("HNVIZ_DEVICE", "nonsense")
    with pytest.raises(ValueError, match="HNVIZ_DEVICE='nonsense' is not a device"):
        resolve_device()


@pytest.mark.skipif(CUDA, reason="checks the message on a machine without CUDA")
def test_a_missing_cuda_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="sees 0 CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="sees 0 CUDA device"):
        hnviz.HyperCL("toy_regression", device="cuda").fit(hnviz.toy_regression())
    res = subprocess.run([sys.executable, "-m", "hnviz", "train", "--benchmark", "toy_regression",
                          "--steps", "5", "--out", str(tmp_path / "r"), "--device", "cuda"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "device 'cuda'" in res.stderr and "--device cpu" in res.stderr
    assert not (tmp_path / "r").exists()  # refused before anything was written
    res = subprocess.run([sys.executable, "-m", "hnviz", "train", "--benchmark", "toy_regression",
                          "--steps", "5", "--out", str(tmp_path / "e")], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "HNVIZ_DEVICE": "gpu"})
    assert res.returncode == 2 and "HNVIZ_DEVICE='gpu' is not a device" in res.stderr
    assert not (tmp_path / "e").exists()


def _state_on_cpu(learner):
    state = learner.state_dict()
    return all(t.device.type == "cpu" for part in (state.weights, state.history, state.training)
               for t in part.values() if isinstance(t, torch.Tensor))


@pytest.mark.parametrize("device", DEVICES)
def test_hnet_trains_saves_and_reloads_through_the_device_path(device, tmp_path):
    """device= puts the model there; the results equal a default learner's on the CPU
    (bit for bit there, to rounding on CUDA); the run files hold CPU tensors and load
    on the CPU with the same predictions."""
    tasks = hnviz.toy_regression()
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=200)
    ours = hnviz.HyperCL(cfg, progress=False, device=device).fit(tasks)
    plain = hnviz.HyperCL(cfg, progress=False).fit(tasks)
    assert ours.device_.type == device and next(ours.hnet_.parameters()).device.type == device
    assert ours.embeddings_.device.type == "cpu"  # the record, for plots and widgets
    x = tasks[1].x_test
    if device == "cpu":
        assert torch.equal(ours.predict(x, 1), plain.predict(x, 1))
    torch.testing.assert_close(ours.predict(x, 1), plain.predict(x, 1), rtol=1e-3, atol=1e-4)
    assert _state_on_cpu(ours)
    hnviz.save_run(ours, tmp_path / "run")
    back = hnviz.load_run(tmp_path / "run", device="cpu").learner
    assert back.device_.type == "cpu"
    torch.testing.assert_close(back.predict(x, 1), ours.predict(x, 1))
    assert back.summary()["average_final"] == pytest.approx(ours.summary()["average_final"])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["hnet", "hnet_tir", "ewc", "si", "dgr"])
def test_every_learner_trains_on_the_device(device, method, tmp_path):
    """cl3 SplitDigits (2 tasks, few steps) through every learner's device path: the
    state is on the CPU, and a reloaded run scores what the trained learner scored."""
    tasks = hnviz.apply_scenario(hnviz.split_digits(), "cl3")[:2]
    with device_setting(device):  # as --device does
        learner = make_learner(method, "split_digits", "cl3", 0, False, **SMALL).fit(tasks)
    assert learner.device_.type == device and _state_on_cpu(learner)
    hnviz.save_run(learner, tmp_path / "run")
    back = hnviz.load_run(tmp_path / "run", device="cpu").learner
    assert [back.score(t) for t in tasks] == pytest.approx([learner.score(t) for t in tasks])


class _Stop(Exception):
    pass


class _StopInTask2(Callback):
    def on_step(self, learner, task_id, step, logs):
        if (task_id, step) == (1, 40):
            raise _Stop


def test_a_checkpointed_run_resumes_on_the_device_it_is_given(tmp_path):
    """Checkpoints hold CPU tensors: a run stopped inside task 2 continues on the device
    in force and ends exactly as the uninterrupted run does."""
    tasks = hnviz.toy_regression()
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=100)
    full = hnviz.HyperCL(cfg, progress=False).fit(tasks)
    with pytest.raises(_Stop):
        hnviz.fit_checkpointed(hnviz.HyperCL(cfg, progress=False, callbacks=[_StopInTask2()]),
                               tasks, tmp_path / "run", every=20)
    with device_setting("cpu"):
        done = hnviz.resume(tmp_path / "run", tasks, progress=False)
    assert done.device_.type == "cpu"
    assert torch.equal(done.embeddings_, full.embeddings_)
