"""An exclusive lock on a run directory, so that two processes never train into (or save
to) the same run at once.

The lock is ``DIR/.lock``: an advisory ``flock`` on it, plus JSON naming the holder
(pid, host, start time). The operating system drops a ``flock`` when its process dies,
so a lock file left behind by a killed process is stale by construction: the next
process takes it over and is told whose it was. After locking, the holder checks that
``DIR/.lock`` is still the file it locked (a releasing process unlinks it), else retries.
Re-entrant within one process. POSIX only (``fcntl``); elsewhere it does nothing.
"""
from __future__ import annotations

import json
import os
import socket
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
_held: dict[Path, int] = {}  # resolved directory -> nesting depth in this process


class RunLockedError(RuntimeError):
    """Another live process holds the run directory's lock."""


def _holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        info = json.loads(raw.decode())
        return info if isinstance(info, dict) else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}


@contextmanager
def run_lock(directory: str | Path) -> Iterator[dict[str, Any] | None]:
    """Hold ``directory``'s lock for the ``with`` block (creating the directory).

    Yields the stale holder's info (``pid``, ``host``, ``started``) when a lock left by
    a dead process was taken over, else None. Raises :class:`RunLockedError` naming the
    holder when a live process has it.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key = d.resolve()
    if fcntl is None or key in _held:
        _held[key] = _held.get(key, 0) + 1
        try:
            yield None
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
        return
    path = d / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _holder(fd)
            os.close(fd)
            who = (f"process {info.get('pid', '?')} on {info.get('host', '?')} since "
                   f"{info.get('started', '?')}") if info else "another process"
            raise RunLockedError(f"run directory {str(d)!r} is in use by {who}; wait for it "
                                 f"to finish or choose another output directory") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder we waited for unlinked it: lock the new file instead
    stale = _holder(fd) or None
    if stale:
        warnings.warn(f"took over the lock of {str(d)!r} left by process {stale.get('pid', '?')}"
                      f" on {stale.get('host', '?')}, which is no longer running", stacklevel=3)
    mine = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(mine).encode())
    os.fsync(fd)
    _held[key] = 1
    try:
        yield stale
    finally:
        del _held[key]
        try:
            path.unlink()  # still ours: nobody else can lock it while we hold it
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
