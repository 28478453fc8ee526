"""Run files: safetensors + JSON, save -> load gives identical predictions."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import hnviz
from hnviz.io.safeio import atomic_write


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


# ------------------------------------------------------------------ untrusted runs
BOUNDED_LOAD = """
import json, resource, sys, time
import hnviz
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start, out = time.perf_counter(), []
for d in sys.argv[1:]:
    try:
        hnviz.load_run(d)
        out.append("loaded")
    except ValueError as e:
        out.append(str(e))
rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps({"errors": out, "seconds": time.perf_counter() - start, "rss_mib": rss}))
"""


def _edit(run, change):
    info = json.loads((run / "run.json").read_text())
    change(info)
    (run / "run.json").write_text(json.dumps(info))


def test_hostile_runs_cost_neither_memory_nor_time(tiny_toy_learner, tmp_path):
    """run.json claiming 10^10 parameters (and the 3 GB target of a 1.3 KB file), an
    8 GiB sparse weights file (claimed by run.json, or not), the same in a schema-1 run:
    each refused before it is read or built, in a fresh process whose peak memory and
    time are measured."""
    import shutil
    import subprocess
    import sys

    hnviz.save_run(tiny_toy_learner, tmp_path / "good")
    cases = {
        "claims 1e10": lambda r: _edit(r, lambda i: i["config"].update(
            target_hidden=[100_000, 100_000])),
        "claims 3 GB": lambda r: _edit(r, lambda i: i["config"].update(
            target_hidden=[20_000, 3_000])),
        "8 GiB claimed": lambda r: (os.truncate(r / "gen-000001" / "weights.safetensors", 2**33),
                                    _edit(r, lambda i: i["files"]["weights.safetensors"].update(
                                        bytes=2**33))),
        "8 GiB unclaimed": lambda r: os.truncate(r / "gen-000001" / "weights.safetensors", 2**33),
    }
    dirs = []
    for name, damage in cases.items():
        shutil.copytree(tmp_path / "good", tmp_path / name)
        damage(tmp_path / name)
        dirs.append(tmp_path / name)
    old = tmp_path / "v1"  # a schema-1 run with an 8 GiB sparse weights file
    shutil.copytree(Path(__file__).parent / "data" / "runs_v0.1" / "toy_hnet", old)
    os.truncate(old / "weights.safetensors", 2**33)
    dirs.append(old)
    res = subprocess.run([sys.executable, "-c", BOUNDED_LOAD, *map(str, dirs)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout)
    errors = report["errors"]
    assert "more than the 100,000,000 hnviz opens (HNVIZ_MAX_PARAMS)" in errors[0]
    assert "more than the 100,000,000" in errors[1]
    assert "more than its learner's" in errors[2]
    assert "is 8,589,934,592 bytes, more than the" in errors[3]
    assert "is 8,589,934,592 bytes, more than the" in errors[4]
    print(f"hostile loads: {report['seconds']:.2f} s, peak memory +{report['rss_mib']:.0f} MiB")
    assert report["seconds"] < 10 and report["rss_mib"] < 100


def test_a_limit_can_be_raised_for_runs_you_trust(tiny_toy_learner, tmp_path, monkeypatch):
    hnviz.save_run(tiny_toy_learner, tmp_path)
    monkeypatch.setenv("HNVIZ_MAX_PARAMS", "100")
    with pytest.raises(ValueError, match="more than the 100 hnviz opens"):
        hnviz.load_run(tmp_path)
    monkeypatch.setenv("HNVIZ_MAX_PARAMS", "5000")
    assert hnviz.load_run(tmp_path).learner.n_tasks_ == 3


def test_loading_a_run_never_downloads_and_bounds_its_benchmark(tiny_toy_learner, tmp_path,
                                                                monkeypatch):
    from hnviz.data import datasets as data

    monkeypatch.setattr(data, "_fetch", lambda url: pytest.fail(f"downloaded {url}"))
    monkeypatch.setitem(data.DATASETS["mnist"], "system_dirs", ())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HNVIZ_DATA", raising=False)
    hnviz.save_run(tiny_toy_learner, tmp_path / "run",
                   benchmark={"name": "permuted_mnist", "n_tasks": 3, "download": True})
    with pytest.raises(FileNotFoundError, match="MNIST not found"):
        hnviz.load_run(tmp_path / "run").tasks()
    _edit(tmp_path / "run", lambda i: i.update(benchmark={"name": "permuted_digits",
                                                          "n_tasks": 10**5}))
    with pytest.raises(ValueError, match="asks for 100000 tasks; a spec read from files"):
        hnviz.load_run(tmp_path / "run").tasks()
    _edit(tmp_path / "run", lambda i: i.update(benchmark={"name": "permuted_digits",
                                                          "n_tasks": 3}))
    with pytest.raises(ValueError, match="do not fit its learner"):  # digits vs a toy learner
        hnviz.load_run(tmp_path / "run").tasks()


RESAVE = """
import sys, time
import hnviz
out, seconds = sys.argv[1], float(sys.argv[2])
toy = hnviz.toy_regression()
cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=3)
learners = [hnviz.HyperCL(cfg, random_state=s, progress=False).fit(toy[:1 + s]) for s in (0, 1)]
end, n = time.monotonic() + seconds, 0
while time.monotonic() < end:
    learner = learners[n % 2]
    hnviz.save_run(learner, out, overwrite=True, tag=float(learner.embeddings_.sum()))
    n += 1
print(n)
"""
RELOAD = """
import sys, time
import hnviz
out, seconds = sys.argv[1], float(sys.argv[2])
end, loads, torn, errors = time.monotonic() + seconds, 0, 0, []
while time.monotonic() < end:
    try:
        run = hnviz.load_run(out)
    except ValueError as e:
        errors.append(str(e))
        continue
    loads += 1
    torn += run.metrics["tag"] != float(run.learner.embeddings_.sum())
print(loads, torn, len(errors), errors[:3])
"""


@pytest.mark.slow
def test_loads_during_saves_are_never_torn(tiny_toy_learner, tmp_path):
    """One process re-saves a run (two different learners in turn) while another loads
    it, for 20 s: every load is one whole run (its metrics match its weights), none
    reports damage."""
    import subprocess
    import sys

    out = tmp_path / "run"
    hnviz.save_run(tiny_toy_learner, out, tag=float(tiny_toy_learner.embeddings_.sum()))
    writer = subprocess.Popen([sys.executable, "-c", RESAVE, str(out), "20"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = subprocess.run([sys.executable, "-c", RELOAD, str(out), "20"],
                            capture_output=True, text=True, timeout=120)
    saves, err = writer.communicate(timeout=120)
    assert writer.returncode == 0 and reader.returncode == 0, err + reader.stderr
    loads, torn, errors, examples = reader.stdout.split(maxsplit=3)
    print(f"20 s: {saves.strip()} saves, {loads} loads, {torn} torn, {errors} errors")
    assert int(saves) > 20 and int(loads) > 20
    assert (int(torn), int(errors)) == (0, 0), examples


def test_history_budget_grows_with_tasks_and_steps(tmp_path):
    """The step logs are bounded by tasks x steps, not by the weights: a 100-task
    PermutedFashionMNIST run of the 100-task preset wrote a 2,918,000-byte history file,
    which the old budget (4 bytes per weight + 1 MiB = 2,626,824) called damaged."""
    from hnviz.learners.learner_state import history_bytes

    cfg = hnviz.HyperCLConfig.preset("permuted_fashion_mnist_100")
    assert history_bytes(cfg, 100) >= 2_918_000
    learner = hnviz.HyperCL(hnviz.HyperCLConfig.preset("permuted_digits", n_steps=30),
                            random_state=0, progress=False).fit(hnviz.permuted_digits(2))
    hnviz.save_run(learner, tmp_path / "run")
    size = (tmp_path / "run" / "gen-000001" / "history.safetensors").stat().st_size
    assert size <= history_bytes(learner.config, 2)
    assert hnviz.load_run(tmp_path / "run").learner.matrix_.shape == (2, 2)
