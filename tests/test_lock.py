"""The run-directory lock: a second process gets a clear error and writes nothing; a lock
left by a killed process is taken over."""
import os
import signal
import subprocess
import sys

import pytest

from hnviz.io.lock import LOCK_NAME, RunLockedError, run_lock

HOLD = ("import sys, time\nfrom hnviz.lock import run_lock\n"
        "cm = run_lock(sys.argv[1]); cm.__enter__()\nprint('locked', flush=True)\ntime.sleep(120)\n")


@pytest.fixture
def holder(tmp_path):
    run = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    yield run, p
    p.kill()
    p.wait()


def test_second_process_gets_a_clear_error_and_writes_nothing(holder):
    run, p = holder
    with pytest.raises(RunLockedError, match=rf"in use by process {p.pid} on .* since"):
        with run_lock(run):
            pass
    res = subprocess.run([sys.executable, "-m", "hnviz", "train", "--benchmark", "toy_regression",
                          "--steps", "5", "--out", str(run), "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and f"in use by process {p.pid}" in res.stderr
    assert sorted(os.listdir(run)) == [LOCK_NAME]  # nothing trained into it, nothing written


def test_lock_of_a_killed_process_is_taken_over(holder):
    run, p = holder
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert (run / LOCK_NAME).exists()  # left behind by the dead process
    with pytest.warns(UserWarning, match=rf"left by process {p.pid}.*no longer holds it"):
        with run_lock(run) as stale:
            assert stale["pid"] == p.pid
            with run_lock(run) as inner:  # re-entrant in one process
                assert inner is None
    assert not (run / LOCK_NAME).exists()  # released cleanly
    with run_lock(run) as again:  # a clean release leaves nothing stale
        assert again is None


def test_save_inside_a_training_lock(tmp_path, toy):
    import hnviz

    learner = hnviz.HyperCL(hnviz.HyperCLConfig.preset("toy_regression", n_steps=5),
                            progress=False).fit(toy.tasks[:1])
    with run_lock(tmp_path / "r"):
        hnviz.save_run(learner, tmp_path / "r")
    assert hnviz.load_run(tmp_path / "r").learner.n_tasks_ == 1
