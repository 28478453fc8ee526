"""Acceptance: a run directory or checkpoint where one file in turn is a FIFO, a
directory, a socket or a character device is refused within 2 s with an error that says
what the file is; nothing is opened for reading that is not a regular file (a FIFO would
block the reader forever)."""
import os
import shutil
import socket
import stat
import threading
from pathlib import Path

import pytest

import hnviz
from hnviz.store.checkpoint import latest_checkpoint, list_checkpoints

KINDS = {"fifo": "a FIFO", "directory": "a directory", "socket": "a socket",
         "device": "a character device"}


@pytest.fixture
def runs(saved_runs):
    """A saved HNET run, a saved EWC run, a schema-1 run and an unfinished run's checkpoints."""
    return saved_runs


def replace_with(path: Path, kind: str) -> None:
    """Put ``kind`` where the file or directory ``path`` was."""
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":  # bound by a relative name: an AF_UNIX path is at most 107 bytes
        cwd = os.getcwd()
        os.chdir(path.parent)
        try:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(path.name)
            sock.close()
        finally:
            os.chdir(cwd)
    else:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null


def within(seconds: float, fn):
    """``fn()``'s exception (or None), failing if it takes longer than ``seconds``."""
    result = {}

    def call():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            result["error"] = e
        else:
            result["error"] = None
    t = threading.Thread(target=call, daemon=True)  # a blocked open stays behind, harmless
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn} did not return within {seconds} s"
    return result["error"]


RUN_FILES = [("hnet", "run.json"), ("hnet", "gen-000001/weights.safetensors"),
             ("hnet", "gen-000001/history.safetensors"), ("hnet", "gen-000001"),
             ("ewc", "gen-000001/weights.safetensors"), ("ewc", "run.json"),
             ("v1", "run.json"), ("v1", "weights.safetensors"), ("v1", "history.safetensors"),
             ("v1", "metrics.json")]


@pytest.mark.parametrize("run,name,kind", [(r, n, k) for r, n in RUN_FILES for k in KINDS
                                           if (n, k) != ("gen-000001", "directory")])
def test_a_special_file_in_a_run_is_named_not_read(runs, tmp_path, run, name, kind):
    d = tmp_path / run
    shutil.copytree(runs / run, d)
    replace_with(d / name, kind)
    error = within(2, lambda: hnviz.load_run(d))
    assert isinstance(error, ValueError), error
    text = str(error)
    assert str(d / name) in text and KINDS[kind] in text, text
    assert "not a regular file" in text or "not a directory" in text, text


CHECKPOINT_FILES = ["json", "safetensors"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", CHECKPOINT_FILES)
def test_a_special_newest_checkpoint_is_named_not_skipped(runs, tmp_path, suffix, kind):
    """The newest checkpoint's file replaced: an error naming it, never a silent resume
    from an older one."""
    d = tmp_path / "ckpt"
    shutil.copytree(runs / "ckpt", d)
    newest = list_checkpoints(d)[-1].path.with_suffix(f".{suffix}")
    replace_with(newest, kind)
    error = within(2, lambda: latest_checkpoint(d))
    assert isinstance(error, ValueError), error
    assert str(newest) in str(error) and KINDS[kind] in str(error), error


def test_resume_with_a_fifo_checkpoint_is_refused_within_2_s(runs, tmp_path, toy):
    d = tmp_path / "ckpt"
    shutil.copytree(runs / "ckpt", d)
    newest = list_checkpoints(d)[-1].tensors_path
    replace_with(newest, "fifo")
    error = within(2, lambda: hnviz.resume(d, toy, progress=False))
    assert isinstance(error, ValueError) and "FIFO" in str(error), error
