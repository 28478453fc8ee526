"""Acceptance: every mistake a person can make on the command line (arguments, files,
output directories, environment variables) gets exit code 2 and one to three lines
naming it, never a traceback, and nothing is written outside --out."""
import json
import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

import hnviz
from interrupt import Stop, StopAt


def _setup(tmp):
    """A finished toy run, damaged and mismatched ones, an unfinished one, files and
    directories to misuse."""
    from hnviz.cli.parser import main

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
    for name, target in (("fiforun", "run.json"), ("fifoweights", "gen-000001/weights.safetensors")):
        shutil.copytree(tmp / "done", tmp / name)
        (tmp / name / target).unlink()
        os.mkfifo(tmp / name / target)
    toy = hnviz.toy_regression()
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=5)
    with pytest.raises(Stop):
        hnviz.fit_checkpointed(hnviz.HyperCL(cfg, progress=False, callbacks=[StopAt(1, 3)]), toy,
                               tmp / "fifockpt", every=1)
    newest = sorted((tmp / "fifockpt" / "checkpoints").glob("ckpt-*.safetensors"))[-1]
    newest.unlink()
    os.mkfifo(newest)
    (tmp / "target").mkdir()
    os.symlink(tmp / "target", tmp / "link")
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "thesis.tex").write_text("my thesis")
    os.mkfifo(tmp / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(tmp)
    sock.bind("sock")
    os.chdir(cwd)
    sock.close()
    (tmp / "cmp").mkdir()
    (tmp / "cmp" / "summary.json").write_text(json.dumps({
        "benchmark": {"name": "permuted_digits", "n_tasks": 3, "seed": 0}, "preset": "x",
        "scenario": "cl1", "n_tasks": 3, "seeds": [0], "changes": {}, "methods": {}}))
    specs = {"cpu.json": {"benchmark": "toy_regression", "resources": {"cpu": 1000}},
             "seeds.json": {"benchmark": "toy_regression", "seeds": 100_000_000},
             "key.json": {"benchmark": "toy_regression", "colour": 1},
             "ok.json": {"benchmark": "toy_regression", "seeds": 1, "fixed": {"n_steps": 5}},
             "dupseeds.json": {"benchmark": "toy_regression", "seeds": [0, 0, 0]},
             "strseeds.json": {"benchmark": "toy_regression", "seeds": "12"},
             "big.json": {"benchmark": "toy_regression", "seeds": 1,
                          "space": {"emb_dim": [1_000_000_000]}}}
    for name, spec in specs.items():
        (tmp / name).write_text(json.dumps(spec))
    (tmp / "bomb.yaml").write_text('a: &a [1, 1]\nb: [*a, *a]\n')
    (tmp / "spec.txt").write_text("{}")
    os.mkfifo(tmp / "fifo.yaml")
    (tmp / "dupkey.yaml").write_text("benchmark: toy_regression\nseeds: 2\nseeds: 3\n")
    (tmp / "float.yaml").write_text("benchmark: toy_regression\nseeds: 1e9\n")


TOY = ["train", "--benchmark", "toy_regression", "--steps", "5", "--no-progress"]
DIGITS = ["compare", "--benchmark", "split_digits", "--steps", "5", "--no-progress"]
FIG = ["figures", "{t}/done"]
SWEEP = ["sweep", "{t}/ok.json", "--no-progress"]
BAD = [  # (argv with {t} for the temporary folder, words the message must hold[, env])
    # ---- output directories
    (TOY + ["--out", "{t}/file.txt"], "is a file, not a directory"),
    (TOY + ["--out", "/proc/hnviz-test/run"], "No such file or directory"),
    (TOY + ["--out", "/sys/hnviz-test"], "not permitted"),
    (TOY + ["--out", ""], "--out is empty"),
    (TOY + ["--out", "{t}/done"], "holds a finished run; pass overwrite=True (--overwrite)"),
    (TOY + ["--out", "{t}/link"], "is a symbolic link"),
    (DIGITS + ["--out", "{t}/link"], "is a symbolic link"),
    (FIG + ["--out", "{t}/link"], "is a symbolic link"),
    (SWEEP + ["--out", "{t}/link"], "is a symbolic link"),
    (["demo", "--out", "{t}/link"], "is a symbolic link"),
    (TOY + ["--out", "."], "names the current directory"),
    (TOY + ["--out", ".."], "names the current directory or goes up through '..'"),
    (DIGITS + ["--out", ".."], "goes up through '..'"),
    (FIG + ["--out", "{t}/target/../f"], "goes up through '..'"),
    (SWEEP + ["--out", "."], "names the current directory"),
    (["demo", "--out", "."], "names the current directory"),
    (TOY + ["--out", "{t}/foreign"], "holds files hnviz did not write"),
    (DIGITS + ["--out", "{t}/foreign"], "holds files hnviz did not write"),
    (FIG + ["--out", "{t}/foreign"], "holds files hnviz did not write"),
    (SWEEP + ["--out", "{t}/foreign"], "holds files hnviz did not write"),
    (["demo", "--out", "{t}/foreign"], "holds files hnviz did not write"),
    (TOY + ["--out", "{t}/fifo"], "is a FIFO (named pipe), not a directory"),
    (TOY + ["--out", "{t}/sock"], "is a socket, not a directory"),
    (FIG + ["--out", "{t}/file.txt"], "is a file, not a directory"),
    (["demo", "--out", "{t}/file.txt"], "is a file, not a directory"),
    (DIGITS + ["--out", ""], "--out is empty"),
    (DIGITS + ["--out", "{t}/cmp", "--methods", "hnet"], "holds a comparison with other settings"),
    # ---- train
    (TOY + ["--out", "{t}/new", "--resume"], "does not exist; drop --resume"),
    (TOY + ["--out", "{t}/done", "--resume", "--overwrite"], "pass one of them"),
    (TOY + ["--out", "{t}/done", "--beta", "0.5", "--resume"], "written with other settings"),
    (TOY + ["--out", "{t}/beta", "--beta", "1e300"], "non-finite loss"),
    (TOY + ["--out", "{t}/x", "--steps", "0"], "n_steps must be an integer >= 1"),
    (TOY + ["--out", "{t}/x", "--steps", "-5"], "n_steps must be an integer >= 1"),
    (TOY + ["--out", "{t}/x", "--steps", "99999999999999999999"], "<= 1000000"),
    (TOY + ["--out", "{t}/x", "--eval-every", "99999999999"], "eval_every must be an integer"),
    (TOY + ["--out", "{t}/x", "--beta", "-1"], "beta must be a finite number >= 0"),
    (TOY + ["--out", "{t}/x", "--beta", "nan"], "beta must be a finite number"),
    (TOY + ["--out", "{t}/x", "--seed", "-1"], "random_state must be an integer >= 0"),
    (TOY + ["--out", "{t}/x", "--preset", "nope"], "unknown preset 'nope'"),
    (TOY + ["--out", "{t}/x", "--preset", "permuted_digits_100"], "made for another benchmark"),
    (TOY + ["--out", "{t}/x", "--fast"], "--fast applies to the 28x28 benchmarks"),
    (TOY + ["--out", "{t}/x", "--tasks", "5"], "--tasks applies to permuted_digits, rotated_digits, permuted_mnist, permuted_fashion_mnist only"),
    (TOY + ["--out", "{t}/x", "--checkpoint-every", "0"], "checkpoint_every must be"),
    (TOY + ["--out", "{t}/x", "--threads", "abc"], "--threads"),
    (TOY + ["--out", "{t}/x", "--device", "tpu"], "tpu"),
    (TOY + ["--out", "{t}/locked"], ".lock is a symbolic link"),
    (TOY + ["--out", "{t}/fifockpt", "--resume"], "is a FIFO (named pipe), not a regular file"),
    (TOY + ["--out", "{t}/x", "--steps", "many"], "argument --steps: invalid int value: 'many'"),
    (["train", "--benchmark", "toy_regression"], "the following arguments are required: --out"),
    (["train", "--benchmark", "cifar", "--out", "{t}/x"], "unknown benchmark 'cifar'"),
    (["train", "--benchmark", "permuted_digits", "--tasks", "0", "--out", "{t}/x"],
     "n_tasks must be an integer >= 1"),
    (["train", "--benchmark", "permuted_mnist", "--out", "{t}/x"], "MNIST not found"),
    (["trian", "--out", "{t}/x"], "invalid choice: 'trian'"),
    # ---- compare
    (["compare", "--benchmark", "split_digits", "--seeds", "0", "--out", "{t}/c"],
     "--seeds 0: compare 1 to 1000 seeds"),
    (DIGITS + ["--seeds", "5000", "--out", "{t}/c"], "--seeds 5000: compare 1 to 1000 seeds"),
    (DIGITS + ["--seeds", "1.5", "--out", "{t}/c"], "invalid int value: '1.5'"),
    (DIGITS + ["--first-seed", "-1", "--out", "{t}/c"], "--first-seed -1: seeds are >= 0"),
    (DIGITS + ["--first-seed", "4294967294", "--seeds", "2", "--out", "{t}/c"],
     "--first-seed 4294967294: seeds are >= 0 and <= 4294967294 (here K..K+1)"),
    (DIGITS + ["--methods", "hnet,xyz", "--out", "{t}/c"], "unknown method 'xyz'"),
    (DIGITS + ["--methods", "hnet,hnet", "--out", "{t}/c"], "method 'hnet' is named 2 times"),
    (DIGITS + ["--methods", ",", "--out", "{t}/c"], "no methods given"),
    (DIGITS + ["--scenario", "cl9", "--out", "{t}/c"], "unknown scenario 'cl9'"),
    (DIGITS + ["--methods", "dgr", "--out", "{t}/c"], "do not run in cl1"),
    (DIGITS + ["--preset", "toy_regression", "--out", "{t}/c"], "made for another benchmark"),
    (DIGITS + ["--fast", "--out", "{t}/c"], "--fast applies to the 28x28 benchmarks"),
    (["compare", "--benchmark", "toy_regression", "--scenario", "cl3", "--out", "{t}/c"],
     "needs a classification benchmark"),
    # ---- figures
    (["figures", "{t}/nope", "--out", "{t}/f"], "does not exist"),
    (FIG + ["--out", "{t}/f", "--alpha", "nan"], "--alpha nan must be"),
    (FIG + ["--out", "{t}/f", "-a", "99"], "a = 99 is out of range"),
    (["figures", "{t}/nested", "--out", "{t}/f"], "nested too deeply"),
    (["figures", "{t}/mismatch", "--out", "{t}/f"], "do not fit its learner"),
    (["figures", "{t}/linked", "--out", "{t}/f"], "weights.safetensors is a symbolic link"),
    (["figures", "{t}/fiforun", "--out", "{t}/f"], "run.json is a FIFO (named pipe)"),
    (["figures", "{t}/fifoweights", "--out", "{t}/f"], "weights.safetensors is a FIFO"),
    (["figures", "{t}/cmp", "--out", "{t}/f"], "is a comparison; pass its runs"),
    # ---- sweep
    (["sweep", "{t}/none.yaml", "--out", "{t}/s"], "cannot read sweep file"),
    (["sweep", "{t}/bomb.yaml", "--out", "{t}/s"], "uses a YAML alias"),
    (["sweep", "{t}/spec.txt", "--out", "{t}/s"], "ends in .yaml, .yml or .json"),
    (["sweep", "{t}/cpu.json", "--out", "{t}/s"], "resources.cpu = 1000 per trial"),
    (["sweep", "{t}/seeds.json", "--out", "{t}/s"], "seeds must be"),
    (["sweep", "{t}/key.json", "--out", "{t}/s"], "unknown sweep setting"),
    (["sweep", "{t}/fifo.yaml", "--out", "{t}/s"], "FIFO"),
    (["sweep", "{t}/dupseeds.json", "--out", "{t}/s"], "repeat seed 0"),
    (["sweep", "{t}/strseeds.json", "--out", "{t}/s"], "got '12'"),
    (["sweep", "{t}/dupkey.yaml", "--out", "{t}/s"], "seeds"),
    (["sweep", "{t}/float.yaml", "--out", "{t}/s"], "got '1e9'"),
    (SWEEP + ["--out", "{t}/s", "--address", "bogus:99999"], "bogus:99999"),
    (["sweep", "{t}/big.json", "--out", "{t}/s"], "more than the 100,000,000 hnviz builds"),
    (TOY + ["--out", "{t}/x", "--checkpoint-every", "99999999999"], "from 1 to 1,000,000"),
    (TOY + ["--out", "{t}/x", "--reg-subset", "0"], "reg_subset must be an integer >= 1"),
    (["figures", "{t}/file.txt", "--out", "{t}/f"], "is a regular file, not a run directory"),
    (["figures", "{t}/fifo", "--out", "{t}/f"], "is a FIFO (named pipe), not a run directory"),
    (TOY + ["--out", "{t}/x", "--steps", "50"], "HNVIZ_MAX_DATA_GB", {"HNVIZ_MAX_DATA_GB": "nan"}),
    (SWEEP + ["--out", "{t}/s", "--max-concurrent", "0"], "max_concurrent"),
    (SWEEP + ["--out", "{t}/s", "--num-cpus", "0"], "num_cpus"),
    # ---- the other commands
    (["bench", "--config", "nope"], "unknown benchmark config 'nope'"),
    (["bench", "--tasks", "a,b"], "--tasks must be comma-separated integers"),
    (["bench", "--tasks", "-1"], "--tasks must be integers from 0 to 1000"),
    (["bench", "--tasks", "99999"], "--tasks must be integers from 0 to 1000"),
    (["bench", "--threads", "0"], "--threads 0 must be from 1 to 1,024"),
    (["bench", "--steps", "-1"], "--steps -1 must be from 1 to 100,000"),
    (["bench", "--reg-subset", "0"], "reg_subset must be an integer >= 1"),
    (["bench", "--device", "tpu", "--tasks", "0"], "device='tpu' is not a device"),
    (["bench-eval", "--every", "0"], "--every 0 must be from 1"),
    (["bench-eval", "--methods", "xyz"], "unknown method 'xyz'"),
    (["bench-widgets", "--steps", "0"], "--steps 0 must be from 1 to 10,000"),
    (["bench-checkpoints", "--every", "0"], "--every 0 must be from 1"),
    (["bench-checkpoints", "--dir", "{t}/nope"], "is not a directory"),
    (["bench-checkpoints", "--repeats", "0"], "--repeats 0 must be from 1 to 100"),
    (["bench-contention", "--tasks", "0"], "--tasks 0 must be at least 1"),
    (["replay-quality", "{t}/done", "--samples", "0"], "--samples 0 must be from 1"),
    (["replay-quality", "{t}/done"], "is not an HNET+TIR run"),
    # ---- environment variables hnviz reads
    (TOY + ["--out", "{t}/x"], "HNVIZ_THREADS", {"HNVIZ_THREADS": "lots"}),
    (TOY + ["--out", "{t}/x"], "HNVIZ_THREADS", {"HNVIZ_THREADS": "0"}),
    (TOY + ["--out", "{t}/x"], "HNVIZ_DEVICE", {"HNVIZ_DEVICE": "tpu"}),
    (TOY + ["--out", "{t}/x"], "cuda", {"HNVIZ_DEVICE": "cuda:7"}),
    (FIG + ["--out", "{t}/f"], "HNVIZ_MAX_PARAMS='-1' must be a whole number",
     {"HNVIZ_MAX_PARAMS": "-1"}),
    (FIG + ["--out", "{t}/f"], "HNVIZ_MAX_PARAMS='1e9' must be a whole number",
     {"HNVIZ_MAX_PARAMS": "1e9"}),
    (FIG + ["--out", "{t}/f"], "HNVIZ_MAX_DATA_GB='nan' must be a finite number",
     {"HNVIZ_MAX_DATA_GB": "nan"}),
    (FIG + ["--out", "{t}/f"], "HNVIZ_MAX_DATA_GB='inf' must be a finite number",
     {"HNVIZ_MAX_DATA_GB": "inf"}),
    (FIG + ["--out", "{t}/f"], "HNVIZ_MAX_DATA_GB='-2' must be a finite number",
     {"HNVIZ_MAX_DATA_GB": "-2"}),
    (FIG + ["--out", "{t}/f"], "HNVIZ_MAX_DATA_GB='eight' must be a finite number",
     {"HNVIZ_MAX_DATA_GB": "eight"}),
    (["train", "--benchmark", "permuted_mnist", "--out", "{t}/x"], "MNIST not found",
     {"HNVIZ_DATA": "/nonexistent/data"}),
    (["train", "--benchmark", "permuted_mnist", "--out", "{t}/x"], "MNIST not found",
     {"XDG_CACHE_HOME": "relative/cache"}),
]


TRAINED_FIRST = ("non-finite loss",)  # refused after training began: its checkpoints stay


def _tree(root, skip):
    return {p: (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in root.rglob("*") if not any(p.is_relative_to(s) for s in skip)}


def test_mistakes_get_one_clear_line(tmp_path, capsys, monkeypatch):
    """Each bad invocation: exit code 2, one to three lines on stderr naming what is
    wrong, no traceback, and nothing created or changed outside its --out (a link's
    target and '..' included)."""
    from hnviz.cli.parser import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("HNVIZ_DATA", "HNVIZ_THREADS", "HNVIZ_DEVICE", "HNVIZ_MAX_PARAMS",
                 "HNVIZ_MAX_DATA_GB"):
        monkeypatch.delenv(name, raising=False)
    _setup(tmp_path)
    capsys.readouterr()
    assert len(BAD) >= 60
    for argv, words, *env in BAD:
        argv = [a.replace("{t}", str(tmp_path)) for a in argv]
        outs = [Path(argv[i + 1]) for i, a in enumerate(argv) if a == "--out" and argv[i + 1]]
        outs = [o for o in outs if not o.is_symlink() and ".." not in o.parts
                and o.resolve() not in (tmp_path, tmp_path.parent)]
        before = _tree(tmp_path, [*outs, tmp_path / "cache"])
        new = [o for o in outs if not os.path.lexists(o)]
        with monkeypatch.context() as m:
            for name, value in (env[0] if env else {}).items():
                m.setenv(name, value)
            rc = main(argv)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2, (argv, err)
        assert 1 <= len(lines) <= 3 and lines[0].startswith("hnviz: error: "), (argv, err)
        assert words in err and "Traceback" not in err, (argv, err)
        assert _tree(tmp_path, [*outs, tmp_path / "cache"]) == before, argv
        if words not in TRAINED_FIRST:  # refused before anything was written: no --out made
            left = [o for o in new if os.path.lexists(o)]
            assert not left, (argv, left)
    assert not any((tmp_path / "target").iterdir())  # nothing written through the link
