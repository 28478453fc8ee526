"""Runs ``python -m hnviz train ...`` in this process and SIGKILLs it at a chosen point
(used by tests/test_resume.py; not a test module itself).

    python tests/kill_child.py step:T:S -- train args...    killed after step S of task T
                                                            (0-based task, S steps done)
    python tests/kill_child.py write:K:PHASE -- train args... killed in the K-th checkpoint
        file write (1-based); PHASE "tmp": half the bytes are in the temporary file, not
        yet renamed; "between": the tensor file is in place, its JSON not yet written
    python tests/kill_child.py none -- train args...        not killed
"""
import os
import signal
import sys

import hnviz.store.checkpoint
import hnviz.io.safeio
from hnviz.cli.parser import main


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install(mode: str) -> None:
    kind, *args = mode.split(":")
    if kind == "step":
        task, step = int(args[0]), int(args[1])
        original = hnviz.store.checkpoint.Checkpointer.on_step

        def on_step(self, learner, task_id, i, logs):
            if (learner.n_tasks_, learner.in_progress_.step) == (task, step):
                die()
            original(self, learner, task_id, i, logs)
        hnviz.store.checkpoint.Checkpointer.on_step = on_step
    elif kind == "write":
        target, phase = int(args[0]), args[1]
        original_write = hnviz.io.safeio.SafeDir.write
        calls = {"n": 0}

        def write(self, name, data):
            if self.path.name == "checkpoints":
                calls["n"] += 1
                if calls["n"] == target:
                    raw = data.encode() if isinstance(data, str) else data
                    if phase == "tmp":  # a half-written temporary file, as a kill leaves it
                        with open(self.path / f".{name}.killed.tmp", "wb") as f:
                            f.write(raw[:len(raw) // 2])
                            f.flush()
                            os.fsync(f.fileno())
                        die()
                    original_write(self, name, data)
                    if phase == "between":
                        die()
                    return
            original_write(self, name, data)
        hnviz.io.safeio.SafeDir.write = write
    elif kind != "none":
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    mode, sep, *train_args = sys.argv[1:]
    assert sep == "--"
    install(mode)
    sys.exit(main(["train", *train_args]))
