"""The command line writes a run directory with the documented metrics (in run.json)."""
import json
import os
import subprocess
import sys
from pathlib import Path

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


# ------------------------------------------------------- mistakes a person can make
def _setup(tmp):
    """A finished toy run, a damaged one, a mismatched one, files and specs to misuse."""
    import shutil

    from hnviz.cli import main

    assert main(["train", "--benchmark", "toy_regression", "--steps", "5", "--out",
                 str(tmp / "done"), "--no-progress"]) == 0
    (tmp / "file.txt").write_text("not a directory")
    v1 = Path(__file__).parent / "data" / "runs_v0.1" / "toy_hnet"
    shutil.copytree(v1, tmp / "nested")
    (tmp / "nested" / "metrics.json").write_text('{"m": ' * 50_000 + "1" + "}" * 50_000)
    shutil.copytree(tmp / "done", tmp / "mismatch")
    info = json.loads((tmp / "mismatch" / "run.json").read_text())
    info["benchmark"] = {"name": "permuted_digits", "n_tasks": 3, "seed": 0}
    (tmp / "mismatch" / "run.json").write_text(json.dumps(info))
    (tmp / "locked").mkdir()
    os.symlink(tmp / "file.txt", tmp / "locked" / ".lock")
    shutil.copytree(tmp / "done", tmp / "linked")
    weights = tmp / "linked" / "gen-000001" / "weights.safetensors"
    weights.unlink()
    os.symlink(tmp / "file.txt", weights)
    specs = {"cpu.json": {"benchmark": "toy_regression", "resources": {"cpu": 1000}},
             "seeds.json": {"benchmark": "toy_regression", "seeds": 100_000_000},
             "key.json": {"benchmark": "toy_regression", "colour": 1}}
    for name, spec in specs.items():
        (tmp / name).write_text(json.dumps(spec))
    (tmp / "bomb.yaml").write_text('a: &a [1, 1]\nb: [*a, *a]\n')
    (tmp / "spec.txt").write_text("{}")


TOY = ["train", "--benchmark", "toy_regression", "--steps", "5", "--no-progress"]
BAD = [  # (argv with {t} for the temporary folder, words the message must hold)
    (TOY + ["--out", "{t}/file.txt"], "is a file, not a directory"),
    (TOY + ["--out", "/proc/hnviz-test/run"], "No such file or directory"),
    (TOY + ["--out", "/sys/hnviz-test"], "not permitted"),
    (TOY + ["--out", ""], "--out is empty"),
    (TOY + ["--out", "{t}/done"], "holds a finished run; pass overwrite=True (--overwrite)"),
    (TOY + ["--out", "{t}/new", "--resume"], "does not exist; drop --resume"),
    (TOY + ["--out", "{t}/done", "--beta", "0.5", "--resume"], "written with other settings"),
    (TOY + ["--out", "{t}/beta", "--beta", "1e300"], "non-finite loss"),
    (TOY + ["--out", "{t}/x", "--steps", "0"], "n_steps must be an integer >= 1"),
    (TOY + ["--out", "{t}/x", "--steps", "-5"], "n_steps must be an integer >= 1"),
    (TOY + ["--out", "{t}/x", "--beta", "-1"], "beta must be a finite number >= 0"),
    (TOY + ["--out", "{t}/x", "--beta", "nan"], "beta must be a finite number"),
    (TOY + ["--out", "{t}/x", "--seed", "-1"], "random_state must be an integer >= 0"),
    (TOY + ["--out", "{t}/x", "--preset", "nope"], "unknown preset 'nope'"),
    (TOY + ["--out", "{t}/x", "--tasks", "5"], "--tasks applies to permuted benchmarks only"),
    (TOY + ["--out", "{t}/x", "--checkpoint-every", "0"], "checkpoint_every must be"),
    (TOY + ["--out", "{t}/locked"], ".lock is a symbolic link"),
    (["train", "--benchmark", "cifar", "--out", "{t}/x"], "unknown benchmark 'cifar'"),
    (["train", "--benchmark", "permuted_digits", "--tasks", "0", "--out", "{t}/x"],
     "n_tasks must be an integer >= 1"),
    (["train", "--benchmark", "permuted_mnist", "--out", "{t}/x"], "MNIST not found"),
    (["compare", "--benchmark", "split_digits", "--seeds", "0", "--out", "{t}/c"],
     "--seeds 0: compare at least one seed"),
    (["compare", "--benchmark", "split_digits", "--methods", "hnet,xyz", "--out", "{t}/c"],
     "unknown method 'xyz'"),
    (["compare", "--benchmark", "split_digits", "--scenario", "cl9", "--out", "{t}/c"],
     "unknown scenario 'cl9'"),
    (["compare", "--benchmark", "toy_regression", "--scenario", "cl3", "--out", "{t}/c"],
     "needs a classification benchmark"),
    (["compare", "--benchmark", "split_digits", "--out", ""], "--out is empty"),
    (["figures", "{t}/nope", "--out", "{t}/f"], "does not exist"),
    (["figures", "{t}/done", "--out", "{t}/f", "--alpha", "nan"], "--alpha nan must be"),
    (["figures", "{t}/done", "--out", "{t}/f", "-a", "99"], "a = 99 is out of range"),
    (["figures", "{t}/nested", "--out", "{t}/f"], "nested too deeply"),
    (["figures", "{t}/mismatch", "--out", "{t}/f"], "do not fit its learner"),
    (["figures", "{t}/linked", "--out", "{t}/f"], "weights.safetensors is a symbolic link"),
    (["figures", "{t}/done", "--out", "{t}/file.txt"], "is a file, not a directory"),
    (["sweep", "{t}/none.yaml", "--out", "{t}/s"], "cannot read sweep file"),
    (["sweep", "{t}/bomb.yaml", "--out", "{t}/s"], "uses a YAML alias"),
    (["sweep", "{t}/spec.txt", "--out", "{t}/s"], "ends in .yaml, .yml or .json"),
    (["sweep", "{t}/cpu.json", "--out", "{t}/s"], "resources.cpu = 1000 per trial"),
    (["sweep", "{t}/seeds.json", "--out", "{t}/s"], "seeds must be an integer >= 1 and <= 1000"),
    (["sweep", "{t}/key.json", "--out", "{t}/s"], "unknown sweep setting"),
    (["bench", "--config", "nope"], "unknown benchmark config 'nope'"),
    (["bench", "--tasks", "a,b"], "--tasks must be comma-separated integers"),
    (["bench-checkpoints", "--repeats", "0"], "repeats must be an integer >= 1"),
    (["demo", "--out", "{t}/file.txt"], "is a file, not a directory"),
]


def _tree(root, skip):
    return {p: (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in root.rglob("*") if not any(p.is_relative_to(s) for s in skip)}


def test_mistakes_get_one_clear_line(tmp_path, capsys, monkeypatch):
    """Each bad invocation: exit code 2, one to three lines on stderr naming what is
    wrong, no traceback, and nothing created or changed outside its --out."""
    from hnviz.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HNVIZ_DATA", raising=False)
    _setup(tmp_path)
    capsys.readouterr()
    assert len(BAD) >= 30
    for argv, words in BAD:
        argv = [a.replace("{t}", str(tmp_path)) for a in argv]
        outs = [Path(argv[i + 1]) for i, a in enumerate(argv) if a == "--out" and argv[i + 1]]
        before = _tree(tmp_path, [*outs, tmp_path / "cache"])
        rc = main(argv)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2, (argv, err)
        assert 1 <= len(lines) <= 3 and lines[0].startswith("hnviz: error: "), (argv, err)
        assert words in err and "Traceback" not in err, (argv, err)
        assert _tree(tmp_path, [*outs, tmp_path / "cache"]) == before, argv


def test_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from hnviz import safeio
    from hnviz.cli import main

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
    from hnviz.cli import main

    out = str(tmp_path / "run")
    assert main(TOY + ["--out", out, "--beta", "1e300"]) == 2
    assert "add --overwrite" in capsys.readouterr().err
    assert main(TOY + ["--out", out, "--beta", "0.01"]) == 2  # its checkpoints are kept...
    assert "holds checkpoints of an unfinished run" in capsys.readouterr().err
    assert main(TOY + ["--out", out, "--beta", "0.01", "--overwrite"]) == 0  # ...until asked
    assert hnviz.load_run(out).learner.config.beta == 0.01


def test_figures_of_runs_with_one_name_do_not_overwrite_each_other(tmp_path, capsys):
    from hnviz.cli import main

    for d in ("A", "B"):
        assert main(TOY + ["--out", str(tmp_path / d / "run")]) == 0
    capsys.readouterr()
    assert main(["figures", str(tmp_path / "A" / "run"), str(tmp_path / "B" / "run"),
                 "--out", str(tmp_path / "f")]) == 0
    names = sorted(p.name for p in (tmp_path / "f").iterdir())
    assert len(names) == 5 and sum("_A_run_" in n for n in names) == 2, names
