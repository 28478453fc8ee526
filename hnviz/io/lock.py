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

import errno
import json
import os
import socket
import stat
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .safeio import SafeDir, UnsafePathError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
_held: dict[tuple[int, int], int] = {}  # (device, inode) of a directory -> nesting depth


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


def _open_lock(d: SafeDir) -> int:
    """``DIR/.lock`` opened (made if missing) without following a link; a lock file that
    is not a plain file of its own (a link, a hard link, a device) is refused."""
    try:
        fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644,
                     dir_fd=d.fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePathError(f"{d.path / LOCK_NAME} is a symbolic link; hnviz does not "
                                  "follow links in run directories: remove it") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        os.close(fd)
        raise UnsafePathError(f"{d.path / LOCK_NAME} is not a lock file hnviz made (a "
                              f"{'hard link' if st.st_nlink > 1 else 'special file'}): remove it")
    return fd


def _acquire(d: SafeDir) -> int:
    """The locked descriptor of ``DIR/.lock``, or :class:`RunLockedError` naming the holder."""
    while True:
        fd = _open_lock(d)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _holder(fd)
            os.close(fd)
            who = (f"process {info.get('pid', '?')} on {info.get('host', '?')} since "
                   f"{info.get('started', '?')}") if info else "another process"
            raise RunLockedError(f"run directory {str(d.path)!r} is in use by {who}; wait for "
                                 "it to finish or choose another output directory") from None
        now = d.lstat(LOCK_NAME)
        if now is not None and os.path.samestat(os.fstat(fd), now):
            return fd
        os.close(fd)  # the holder we waited for unlinked it: lock the new file instead


@contextmanager
def run_lock(directory: str | Path) -> Iterator[dict[str, Any] | None]:
    """Hold ``directory``'s lock for the ``with`` block (creating the directory, which
    must not be a symbolic link).

    Yields the stale holder's info (``pid``, ``host``, ``started``) when a lock left by
    a dead process was taken over, else None. Raises :class:`RunLockedError` naming the
    holder when a live process has it.
    """
    with SafeDir(directory, create=True) as d:
        st = os.fstat(d.fd)
        key = (st.st_dev, st.st_ino)
        if fcntl is None or key in _held:
            _held[key] = _held.get(key, 0) + 1
            try:
                yield None
            finally:
                _held[key] -= 1
                if not _held[key]:
                    del _held[key]
            return
        fd = _acquire(d)
        stale = _holder(fd) or None
        if stale:
            warnings.warn(f"took over the lock of {str(d.path)!r} left by process "
                          f"{stale.get('pid', '?')} on {stale.get('host', '?')}, which no "
                          "longer holds it", stacklevel=3)
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
                d.unlink(LOCK_NAME)  # still ours: nobody else can lock it while we hold it
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
