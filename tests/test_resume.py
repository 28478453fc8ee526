"""Acceptance: a training process killed with SIGKILL (mid-task, during a checkpoint
write, between a checkpoint's two files, at a random moment, several times in a row)
and resumed with ``--resume`` ends with the same weights, history and metrics as an
uninterrupted run, bit for bit."""
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hnviz.store.checkpoint import list_checkpoints

pytestmark = pytest.mark.slow  # minutes of training or subprocesses: not in make check

CHILD = str(Path(__file__).with_name("kill_child.py"))
RUNS = {  # small runs: 3 tasks each, a checkpoint every 7 / 9 steps besides after tasks
    "toy": ["--benchmark", "toy_regression", "--steps", "60", "--checkpoint-every", "7"],
    "digits": ["--benchmark", "permuted_digits", "--tasks", "3", "--steps", "40",
               "--checkpoint-every", "9"],
    "long": ["--benchmark", "toy_regression", "--steps", "300", "--checkpoint-every", "25"],
}


def child(mode: str, run: str, out: Path, resume: bool = False,
          wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = [sys.executable, CHILD, mode, "--", *RUNS[run], "--out", str(out), "--no-progress"]
    cmd += ["--resume"] if resume else []
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def first_checkpoint(proc: subprocess.Popen, out: Path) -> float:
    """Wait until the run in ``out`` has its first complete checkpoint; the time then."""
    deadline = time.monotonic() + 120
    while not list_checkpoints(out):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    return time.monotonic()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs (in a subprocess too, like the resumed ones); for the long run
    also the seconds from its first checkpoint to its end (``window``)."""
    out = {}
    for run in RUNS:
        d = tmp_path_factory.mktemp(f"ref_{run}")
        proc = child("none", run, d, wait=False)
        start = first_checkpoint(proc, d)
        while proc.poll() is None and not (d / "run.json").exists():
            time.sleep(0.005)
        out[f"{run}_window"] = time.monotonic() - start
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        out[run] = d
    return out


def assert_same_run(a: Path, b: Path) -> None:
    for name in ("weights.safetensors", "history.safetensors"):
        ta, tb = load_file(a / "gen-000001" / name), load_file(b / "gen-000001" / name)
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{name}: {k} differs"
    ia, ib = (json.loads((d / "run.json").read_text()) for d in (a, b))
    for info in (ia, ib):  # the machine's figures, not the run's
        info["metrics"].pop("wall_seconds"), info["metrics"].pop("peak_rss_mib")
    assert ia == ib and "fwt" in ia["metrics"]  # the transfer records survive a resume


def kill_and_resume(run: str, modes: list[str], out: Path) -> list[str]:
    """Run with each kill mode in turn (each resuming the last), then resume to the end;
    returns the resumed processes' stderr."""
    logs = []
    for i, mode in enumerate(modes):
        res = child(mode, run, out, resume=i > 0)
        assert res.returncode == -signal.SIGKILL, (mode, res.returncode, res.stderr)
        assert not (out / "run.json").exists()
        logs.append(res.stderr)
    res = child("none", run, out, resume=True)
    assert res.returncode == 0, res.stderr
    logs.append(res.stderr)
    assert not (out / "checkpoints").exists()  # removed once the run is saved
    return logs


@pytest.mark.parametrize("run,modes,resumed_at", [
    ("toy", ["step:1:30"], "task 2, step 28"),  # mid-task, 2 steps after a checkpoint
    ("toy", ["write:6:tmp"], "task 1, step 14"),  # 3rd checkpoint's JSON half-written
    ("toy", ["write:7:tmp"], "task 1, step 21"),  # 4th checkpoint's tensors half-written
    ("toy", ["write:9:between"], "task 1, step 28"),  # 5th checkpoint: tensors, no JSON
    ("toy", ["step:0:3"], "training from the start"),  # before the first checkpoint
    ("toy", ["step:0:40", "write:5:tmp", "step:2:50"], "task 3, step 49"),  # three kills
    ("digits", ["step:1:20"], "task 2, step 18"),
    ("digits", ["write:11:between"], "after task 1"),  # 6th checkpoint: task 1's end
])
def test_killed_run_resumes_identically(reference, tmp_path, run, modes, resumed_at):
    logs = kill_and_resume(run, modes, tmp_path)
    assert resumed_at in logs[-1], logs[-1]
    assert_same_run(tmp_path, reference[run])


def test_kill_at_a_random_moment(reference, tmp_path):
    """An outside SIGKILL at a random time between the first checkpoint and the end of
    training (as measured on the uninterrupted run; seed printed). A busy machine can make
    this run faster than the reference; when the kill lands after the run was saved, the
    saved run must equal the reference and the kill is tried again, half as late."""
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    delay = rng.uniform(0.0, 0.7 * reference["long_window"])
    for attempt in range(4):
        out = tmp_path / f"try{attempt}"
        print(f"random kill seed {seed}: {delay:.3f} s after the first checkpoint "
              f"(window {reference['long_window']:.3f} s)")
        proc = child("none", "long", out, wait=False)
        first_checkpoint(proc, out)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        if not (out / "run.json").exists():
            break
        assert_same_run(out, reference["long"])  # saved before the kill: still complete
        delay /= 2
    else:
        pytest.fail("the run was saved before each of 4 kills")
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill"
    res = child("none", "long", out, resume=True)
    assert res.returncode == 0 and "resuming from the checkpoint" in res.stderr, res.stderr
    print(res.stderr.strip())
    assert_same_run(out, reference["long"])


def test_resume_of_a_finished_run_changes_nothing(reference, tmp_path):
    import shutil

    shutil.copytree(reference["toy"], tmp_path / "run")
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    res = child("none", "toy", tmp_path / "run", resume=True)
    assert res.returncode == 0 and "already complete; nothing to resume" in res.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before


def test_resume_with_other_arguments_is_refused(tmp_path):
    res = child("step:1:30", "toy", tmp_path)
    assert res.returncode == -signal.SIGKILL
    files = {p: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()}
    cmd = [sys.executable, "-m", "hnviz", "train", *RUNS["toy"], "--beta", "0.5",
           "--out", str(tmp_path), "--no-progress"]
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert "was written with other settings: beta=0.005 (now 0.5)" in res.stderr, res.stderr
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # no --resume
    assert res.returncode == 2 and "holds checkpoints of an unfinished run of 3 tasks " \
        "(newest: task 2, step 28); continue it" in res.stderr, res.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()} == files
