"""The thread policy: settings checked with one line, a fixed count in force while a
learner trains and torch's own count back afterwards, "auto" picking the faster count as
timed, and a fixed count repeating a run bit for bit."""
import numpy as np
import pytest
import torch

import hnviz
from hnviz import threads
from hnviz.learners.baselines import BaselineCL, BaselineConfig


class ThreadLog:
    """A callback that records torch's thread count at every step."""

    def __init__(self):
        self.counts = []

    def on_task_start(self, learner, task):
        pass

    def on_step(self, learner, task_id, step, logs):
        self.counts.append(torch.get_num_threads())

    def on_task_end(self, learner, task_id, info):
        pass


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, np.bool_(True), "two", "", None, "2.0",
                                 float("inf"), float("nan"), 5000])
def test_bad_settings_get_one_line(bad):
    with pytest.raises(ValueError, match=r"threads=.* must be a whole number from 1 to 1024 "
                                         r"or 'auto'"):
        threads.check_threads(bad)


def test_settings_and_environment(monkeypatch):
    assert threads.check_threads(" Auto ") == "auto" and threads.check_threads("3") == 3
    assert threads.check_threads(2.0) == 2 and threads.check_threads(np.int64(4)) == 4
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.resolve() == "auto" and threads.resolve(2) == 2
    monkeypatch.setenv(threads.ENV, "1")
    assert threads.resolve() == 1 and threads.resolve("auto") == "auto"
    monkeypatch.setenv(threads.ENV, "many")
    with pytest.raises(ValueError, match="HNVIZ_THREADS='many' must be"):
        hnviz.HyperCL("toy_regression", progress=False).partial_fit(hnviz.toy_regression()[0])


def test_fixed_count_while_training_and_restored_after():
    before = torch.get_num_threads()
    other = 1 if before > 1 else 2
    log = ThreadLog()
    learner = hnviz.HyperCL(hnviz.HyperCLConfig.preset("toy_regression", n_steps=20),
                            progress=False, callbacks=[log], threads=other)
    learner.fit(hnviz.toy_regression()[:2])
    assert log.counts == [other] * 40 and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads=0 must be"):
        BaselineCL(BaselineConfig(method="ewc"), threads=0)


def test_auto_trains_at_the_faster_count(monkeypatch):
    """A fake clock: a step at ``slow`` threads takes 3 s, at the other count 1 s."""
    clock = [0.0]
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock[0])
    before = torch.get_num_threads()
    try:
        for slow in (2, 1):
            policy = threads.ThreadPolicy("auto", default=2)
            used = []
            for _ in range(threads.PROBE_EVERY + 3 * threads.PROBE_STEPS):
                policy.tick()
                used.append(torch.get_num_threads())
                clock[0] += 3.0 if torch.get_num_threads() == slow else 1.0
            fast = 3 - slow
            probe = 2 * threads.PROBE_STEPS
            assert used[:probe] == [2] * threads.PROBE_STEPS + [1] * threads.PROBE_STEPS
            assert set(used[probe:threads.PROBE_EVERY]) == {fast}, slow
            assert policy.chosen == fast and sorted(policy.timings) == [1, 2]
            # a new probe starts every PROBE_EVERY steps
            assert used[threads.PROBE_EVERY] == 2
    finally:
        torch.set_num_threads(before)


def test_a_fixed_count_repeats_bit_for_bit():
    tasks = hnviz.permuted_digits(2)
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=60)
    one, again = (hnviz.HyperCL(cfg, progress=False, threads=2).fit(tasks) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(one.hnet_.parameters(), again.hnet_.parameters()))
    assert torch.equal(one.embeddings_, again.embeddings_)


def test_cli_threads_hold_for_its_learners_only(monkeypatch, tmp_path, capsys):
    from hnviz.cli.parser import main

    monkeypatch.setenv(threads.ENV, "auto")
    out = tmp_path / "run"
    assert main(["train", "--benchmark", "toy_regression", "--steps", "5", "--threads", "1",
                 "--out", str(out), "--no-progress"]) == 0
    assert hnviz.load_run(out).learner.n_tasks_ == 3
    import os
    assert os.environ[threads.ENV] == "auto"  # put back after the command
    assert main(["train", "--benchmark", "toy_regression", "--threads", "0",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--threads='0' must be a whole number" in capsys.readouterr().err


def test_sweep_trials_keep_their_reserved_count():
    """A learner inside training_threads(n) trains at n even under "auto"."""
    log = ThreadLog()
    other = 2 if torch.get_num_threads() == 1 else 1
    with threads.training_threads(other):
        hnviz.HyperCL(hnviz.HyperCLConfig.preset("toy_regression", n_steps=30), progress=False,
                      callbacks=[log], threads="auto").partial_fit(hnviz.toy_regression()[0])
    assert log.counts == [other] * 30


def test_bench_contention_times_every_setting(capsys):
    from hnviz.bench.contention import contention

    res = contention(n_tasks=1, repeats=1, n_steps=20)
    assert set(res["seconds"]) == {f"default ({torch.get_num_threads()} threads)", "auto"}
    for times in res["seconds"].values():
        assert len(times["alone"]) == len(times["busy"]) == 1 and min(times["alone"]) > 0
    for name, ratio in res["busy_over_alone"].items():
        t = res["seconds"][name]
        assert ratio == pytest.approx(t["busy"][0] / t["alone"][0])
    assert "auto alone / default alone" in capsys.readouterr().out


def test_the_busy_process_ends_when_its_parent_is_gone(tmp_path):
    """Killed by a signal that skips the bench's clean-up, the bench must not leave its
    busy loop spinning as an orphan."""
    import subprocess
    import sys
    import time

    from hnviz.bench.contention import BUSY

    pid_file = tmp_path / "pid"
    parent = subprocess.run(
        [sys.executable, "-c", "import os, subprocess, sys; p = subprocess.Popen([sys.executable, "
         f"'-c', {BUSY!r}, str(os.getpid())]); "
         f"open({str(pid_file)!r}, 'w').write(str(p.pid))"], timeout=60)
    assert parent.returncode == 0
    pid = int(pid_file.read_text())
    deadline = time.time() + 20
    while time.time() < deadline and _alive(pid):
        time.sleep(0.2)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
