"""The command line writes a run directory with the documented metrics (in run.json)."""
import json
import subprocess
import sys

import hnviz


def test_train_writes_metrics(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "hnviz", "train", "--benchmark", "permuted_digits",
                          "--tasks", "3", "--steps", "150", "--seed", "1", "--out", str(out),
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    m = json.loads((out / "run.json").read_text())["metrics"]
    assert {"metric", "matrix", "during", "final", "average_final", "bwt", "forgetting",
            "wall_seconds"} <= set(m)
    assert m["metric"] == "accuracy" and m["matrix"][0][1] is None
    assert len(m["final"]) == 3 and m["average_final"] > 70
    run = hnviz.load_run(out)
    assert run.learner.n_tasks_ == 3 and len(run.tasks()) == 3


def test_beta_zero_and_bad_tasks(tmp_path):
    res = subprocess.run([sys.executable, "-m", "hnviz", "train", "--benchmark", "toy_regression",
                          "--tasks", "5", "--out", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2 and "--tasks applies to permuted benchmarks only" in res.stderr
