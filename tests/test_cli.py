"""The command line writes a run directory with the documented metrics (in run.json)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import hnviz

TOY = ["train", "--benchmark", "toy_regression", "--steps", "5", "--no-progress"]


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
    ratio = run.learner.hnet_.compression_ratio(3)
    assert ratio > 1 and f"compression ratio {ratio:.3f} " in res.stdout, res.stdout


def test_beta_zero_and_bad_tasks(tmp_path):
    res = subprocess.run([sys.executable, "-m", "hnviz", "train", "--benchmark", "toy_regression",
                          "--tasks", "5", "--out", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2 and "--tasks applies to permuted_digits, rotated_digits, permuted_mnist, permuted_fashion_mnist only" in res.stderr


def test_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from hnviz import safeio
    from hnviz.cli.parser import main

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(safeio.os, "fsync", full)
    assert main(TOY + ["--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device; the disk is full" in err and len(err.splitlines()) == 1


def test_ctrl_c_says_how_to_resume(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hnviz", "train", "--benchmark", "toy_regression",
           "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoints").is_dir():  # training has written its first checkpoint
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted; the checkpoints in --out keep the work done: continue with" in err
    assert err.strip().endswith(f"--out {out} --no-progress --resume"), err


def test_a_diverged_run_can_start_over_with_other_settings(tmp_path, capsys):
    from hnviz.cli.parser import main

    out = str(tmp_path / "run")
    assert main(TOY + ["--out", out, "--beta", "1e300"]) == 2
    assert "add --overwrite" in capsys.readouterr().err
    assert main(TOY + ["--out", out, "--beta", "0.01"]) == 2  # its checkpoints are kept...
    assert "holds checkpoints of an unfinished run" in capsys.readouterr().err
    assert main(TOY + ["--out", out, "--beta", "0.01", "--overwrite"]) == 0  # ...until asked
    assert hnviz.load_run(out).learner.config.beta == 0.01


def test_figures_of_runs_with_one_name_do_not_overwrite_each_other(tmp_path, capsys):
    from hnviz.cli.parser import main

    for d in ("A", "B"):
        assert main(TOY + ["--out", str(tmp_path / d / "run")]) == 0
    capsys.readouterr()
    assert main(["figures", str(tmp_path / "A" / "run"), str(tmp_path / "B" / "run"),
                 "--out", str(tmp_path / "f")]) == 0
    names = sorted(p.name for p in (tmp_path / "f").iterdir() if p.name != ".hnviz")
    assert len(names) == 5 and sum("_A_run_" in n for n in names) == 2, names
