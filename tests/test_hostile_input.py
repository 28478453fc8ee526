"""The probes of a hostile and careless user that once failed, each reproduced and
asserted fixed: comparisons that continue and extend, regression tables that say MSE,
Ctrl-C at start-up, one-line notices, shared-folder permissions, locked output
directories, arguments checked with hnviz's messages (the one-line CLI mistakes are in
test_cli_mistakes.py, special files in test_special_files.py)."""
import importlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hnviz
from hnviz.cli.parser import main
from hnviz.experiments.compare import markdown_table

compare_module = importlib.import_module("hnviz.experiments.compare")  # hnviz.compare is the function

CMP = ["compare", "--benchmark", "split_digits", "--steps", "20", "--no-progress"]


def test_a_second_comparison_with_other_methods_extends_the_table(tmp_path, capsys):
    """Probe: two compares with different methods into one --out both exit 0 and
    summary.json kept only the last."""
    out = str(tmp_path / "c")
    assert main(CMP + ["--methods", "hnet", "--out", out]) == 0
    first = (tmp_path / "c" / "hnet" / "seed0" / "run.json").read_bytes()
    assert main(CMP + ["--methods", "ewc", "--out", out]) == 0
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert list(summary["methods"]) == ["hnet", "ewc"]
    assert (tmp_path / "c" / "hnet" / "seed0" / "run.json").read_bytes() == first  # not retrained
    table = (tmp_path / "c" / "table.md").read_text()
    assert "| hnet " in table and "| ewc " in table
    # other settings into the same folder: refused before anything trains
    capsys.readouterr()
    assert main(CMP + ["--methods", "si", "--seeds", "2", "--out", out]) == 2
    assert "holds a comparison with other settings (seeds [0], now [0, 1])" in capsys.readouterr().err
    assert not (tmp_path / "c" / "si").exists()


def test_a_comparison_continues_after_ctrl_c(tmp_path, capsys, monkeypatch):
    """Probe: after Ctrl-C in compare the same command was refused ("holds a finished
    run") and only --overwrite (retraining everything) went on."""
    calls = []
    real = compare_module.run_one

    def interrupted_second(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    argv = CMP + ["--methods", "hnet,finetune", "--out", str(tmp_path / "c")]
    monkeypatch.setattr(compare_module, "run_one", interrupted_second)
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"hnviz: interrupted; finished runs (and an HNET's checkpoints) are kept: " \
                  f"continue with python -m hnviz {' '.join(argv)}", err
    done = (tmp_path / "c" / "hnet" / "seed0" / "run.json").read_bytes()
    monkeypatch.setattr(compare_module, "run_one", real)
    assert main(argv) == 0
    assert (tmp_path / "c" / "hnet" / "seed0" / "run.json").read_bytes() == done  # read back
    assert (tmp_path / "c" / "finetune" / "seed0" / "run.json").is_file()
    # a finished run with other settings is named, not silently mixed in
    capsys.readouterr()
    other = argv[:4] + ["30"] + argv[5:]
    assert main(other) == 2
    assert "holds a comparison with other settings (changes" in capsys.readouterr().err
    (tmp_path / "c" / "summary.json").unlink()  # and each run is checked on its own
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "was written with other settings: n_steps=20 (now 30)" in err
    assert "--overwrite to replace it" in err


def test_a_regression_table_says_mse(tmp_path):
    """Probe: compare on toy_regression headed MSE columns "final avg acc (%)"."""
    summary = hnviz.compare(hnviz.toy_regression(), "toy_regression", "cl1", ["hnet"], [0],
                            tmp_path / "c", progress=False, n_steps=30)
    table = markdown_table(summary)
    assert "final avg MSE" in table and "during MSE" in table and "acc (%)" not in table
    digits = markdown_table({**json.loads((tmp_path / "c" / "summary.json").read_text()),
                             "benchmark": {"name": "split_digits"}, "metric": "accuracy"})
    assert "final avg acc (%)" in digits


def _loaded(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3, 0.6, 1.0])
def test_ctrl_c_while_starting_is_one_line(tmp_path, delay):
    """Probe: SIGINT during start-up printed an 18-line KeyboardInterrupt traceback. Sent
    ``delay`` s after numpy's C code is loaded (hnviz's imports have begun; before that
    Python itself is starting, and its site module's Ctrl-C is its own)."""
    proc = subprocess.Popen([sys.executable, "-m", "hnviz", "train", "--benchmark",
                             "toy_regression", "--out", str(tmp_path / "r"), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _loaded(proc.pid, "_multiarray_umath") and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("hnviz: interrupted"), err


def test_a_stale_lock_notice_is_one_plain_line(tmp_path, capsys):
    """Probe: the stale-lock notice was a raw Python warning with a source line."""
    run = tmp_path / "r"
    run.mkdir()
    (run / ".lock").write_text(json.dumps({"pid": 999999, "host": "elsewhere",
                                           "started": "yesterday"}))
    assert main(["train", "--benchmark", "toy_regression", "--steps", "5", "--no-progress",
                 "--out", str(run)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hnviz: took over the lock of {str(run)!r} left by process 999999 on "
                   "elsewhere, which no longer holds it"], err


def test_files_hnviz_writes_follow_the_umask(tmp_path, capsys):
    """Probe: summary.json, table.md and figure PNGs were created 0600 while run.json was
    0644 (unreadable for the rest of a shared folder)."""
    old = os.umask(0o022)
    try:
        assert main(CMP + ["--methods", "hnet", "--out", str(tmp_path / "c")]) == 0
        run = tmp_path / "c" / "hnet" / "seed0"
        assert main(["figures", str(run), "--out", str(tmp_path / "f")]) == 0
        os.umask(0o027)
        assert main(["figures", str(run), "--out", str(tmp_path / "g")]) == 0
    finally:
        os.umask(old)
    mode = {p: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*") if p.is_file()}
    assert mode[run / "run.json"] == 0o644
    for name in ("summary.json", "table.md"):
        assert mode[tmp_path / "c" / name] == 0o644, name
    pngs = [p for p in mode if p.suffix == ".png"]
    assert len(pngs) == 6
    assert all(mode[p] == (0o644 if p.parent.name == "f" else 0o640) for p in pngs), mode


HOLD = ("import sys, time\nfrom hnviz.lock import run_lock\n"
        "cm = run_lock(sys.argv[1]); cm.__enter__()\nprint('locked', flush=True)\ntime.sleep(120)\n")


def test_a_comparison_in_use_is_refused(tmp_path, capsys):
    """One lock per output directory: a second comparison into the same --out is refused
    before it trains."""
    out = tmp_path / "c"
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        assert main(CMP + ["--methods", "hnet", "--out", str(out)]) == 2
        assert f"in use by process {p.pid}" in capsys.readouterr().err
        assert not (out / "hnet").exists()
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("bad", [None, 3, ["a"], ""])
def test_load_run_names_a_bad_argument(bad):
    """Probe: load_run(None) raised Python's own TypeError."""
    with pytest.raises((TypeError, ValueError), match="load_run takes a run directory"):
        hnviz.load_run(bad)


def test_output_folders_of_older_hnviz_are_its_own(tmp_path):
    """A demo, comparison or sweep folder written before the .hnviz mark is still hnviz's:
    `make demo` runs again over an old runs/demo."""
    from hnviz.io.outdir import check_out

    for folder, inner in (("demo", "toy_regression/run.json"), ("cmp", "summary.json"),
                          ("sweep", "trials/x/run.json"), ("run", "checkpoints/c.json")):
        (tmp_path / folder / inner).parent.mkdir(parents=True)
        (tmp_path / folder / inner).write_text("{}")
        assert check_out(tmp_path / folder) == tmp_path / folder
    (tmp_path / "mine" / "notes").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds files hnviz did not write"):
        check_out(tmp_path / "mine")


def test_a_gzip_bomb_in_a_data_folder_is_refused_in_bounded_memory(tmp_path, monkeypatch):
    """A 1 MB .gz that would expand past the limit is refused while unpacking."""
    import gzip

    from hnviz.data import datasets as data

    monkeypatch.setattr(data, "MAX_IDX_BYTES", 50 * 2**20)
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(b"\0" * (60 * 2**20)))
    with pytest.raises(ValueError, match="expands to more than 52,428,800 bytes"):
        data.read_idx(bomb)
    fifo = tmp_path / "t10k-labels-idx1-ubyte"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is a FIFO"):
        data.read_idx(fifo)


def test_ctrl_c_once_the_work_is_done_is_quiet(tmp_path):
    """Probe: a SIGINT just after `run written to` gave exit code 0 with a 25-line
    traceback from torch's exit hooks, or an exit by the signal with no line. Now: 0 and
    nothing once main() has returned, else 130 and one true line."""
    for _ in range(3):
        out = tmp_path / f"r{_}"
        proc = subprocess.Popen([sys.executable, "-m", "hnviz", "train", "--benchmark",
                                 "toy_regression", "--steps", "20", "--out", str(out),
                                 "--no-progress"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if line.startswith("run written to"):
                proc.send_signal(signal.SIGINT)
                break
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        assert proc.returncode == 0 and not err or proc.returncode == 130 and err == \
            f"hnviz: interrupted after the run was saved: it is complete in {out}\n", err
        assert hnviz.load_run(out).learner.n_tasks_ == 3


def test_a_refused_command_leaves_no_output_folder(tmp_path, capsys):
    """Probe: refused commands left an empty --out, or one with only the .hnviz mark."""
    bad = [["train", "--benchmark", "toy_regression", "--checkpoint-every", "0"],
           ["compare", "--benchmark", "split_digits", "--methods", "dgr"],
           ["figures", str(tmp_path / "nope")]]
    for i, argv in enumerate(bad):
        assert main(argv + ["--out", str(tmp_path / f"o{i}")]) == 2
        assert not (tmp_path / f"o{i}").exists(), argv
    capsys.readouterr()


def test_a_run_and_a_comparison_never_share_a_folder(tmp_path, capsys):
    """Third pass: compare into a finished train run wrote a comparison over it (figures
    could no longer open the run), and train into a comparison wrote run.json there."""
    run, cmp = str(tmp_path / "run"), str(tmp_path / "cmp")
    assert main(["train", "--benchmark", "toy_regression", "--steps", "5", "--no-progress",
                 "--out", run]) == 0
    assert main(CMP + ["--methods", "hnet", "--out", cmp]) == 0
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    capsys.readouterr()
    assert main(CMP + ["--methods", "hnet", "--out", run]) == 2
    assert "holds a training run; `compare` writes into a folder of its own" in \
        capsys.readouterr().err
    assert main(["train", "--benchmark", "toy_regression", "--steps", "5", "--no-progress",
                 "--out", cmp]) == 2
    assert "holds a comparison; `train` writes into a folder of its own" in capsys.readouterr().err
    with pytest.raises(ValueError, match="holds a training run; `sweep`"):
        hnviz.sweep(out=run, benchmark="toy_regression", fixed={"n_steps": 5}, progress=False)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before
    assert not (tmp_path / "cmp" / "run.json").exists()


@pytest.mark.parametrize("damage", ["fifo", "missing"])
def test_resume_never_replaces_the_remains_of_a_run(tmp_path, capsys, damage):
    """Third pass: --resume on a run whose run.json was a FIFO, or gone beside its
    gen-000001, said "no checkpoint; training from the start", deleted the tensors and
    retrained without --overwrite."""
    out = tmp_path / "r"
    argv = ["train", "--benchmark", "toy_regression", "--steps", "5", "--no-progress",
            "--out", str(out)]
    assert main(argv) == 0
    (out / "run.json").unlink()
    if damage == "fifo":
        os.mkfifo(out / "run.json")
    tensors = (out / "gen-000001" / "weights.safetensors").read_bytes()
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert ("run.json is a FIFO" in err) if damage == "fifo" else \
        ("lacks run.json; it is not a complete hnviz run" in err), err
    assert (out / "gen-000001" / "weights.safetensors").read_bytes() == tensors


def test_inputs_and_targets_of_another_dtype_are_named_at_fit(toy):
    """Third pass: float64 inputs reached torch's dtype error; int64 regression targets
    trained silently."""
    import dataclasses

    import torch

    task = toy.tasks[0]
    for change, name in (({"x_train": task.x_train.double()}, "x_train"),
                         ({"y_train": task.y_train.long()}, "y_train")):
        bad = dataclasses.replace(task, **change)
        with pytest.raises(ValueError, match=f"{name} has dtype torch.(float64|int64), not the "
                                             "task's torch.float32"):
            hnviz.HyperCL(hnviz.HyperCLConfig(n_steps=2), progress=False).fit([bad])
    assert torch.is_tensor(task.x_train)


def test_save_run_names_what_it_was_given(tmp_path, toy):
    """Third pass: save_run(load_run(...)) and save_run(42) raised AttributeError."""
    learner = hnviz.HyperCL(hnviz.HyperCLConfig.preset("toy_regression", n_steps=5),
                            progress=False).fit(toy)
    hnviz.save_run(learner, tmp_path / "a")
    with pytest.raises(TypeError, match="got Run; pass run.learner"):
        hnviz.save_run(hnviz.load_run(tmp_path / "a"), tmp_path / "b")
    with pytest.raises(TypeError, match="save_run saves a fitted hnviz learner, got int"):
        hnviz.save_run(42, tmp_path / "c")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
