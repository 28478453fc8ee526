"""Safe file input/output for run directories and checkpoints: atomic writes, reads that
execute nothing, are bounded in size and name the damaged file (no pickle anywhere), and
:class:`SafeDir`, a directory opened once whose files are written, read and deleted
without ever following a symbolic link.

A run directory can be shared (a lab's network folder, a course drive): anyone there
could plant ``DIR/.lock -> ~/important.txt`` or ``DIR/checkpoints -> elsewhere``. Every
operation hnviz does inside a run directory goes through a :class:`SafeDir`: files are
opened with ``O_NOFOLLOW`` relative to the directory's descriptor, so a link is refused
(:class:`UnsafePathError`, naming it) instead of being followed, and the directory
cannot be swapped for a link between a check and a write.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load as st_load

MAX_JSON_BYTES = 64 * 2**20  # a run's or checkpoint's JSON file; larger ones are refused


class DamagedFileError(ValueError):
    """A file of a run directory or checkpoint cannot be read or does not fit; the
    message names the file and what to do."""


class UnsafePathError(ValueError):
    """A path hnviz would have to follow a symbolic link for (or that is not a regular
    file or directory); the message names it."""


def _link_refusal(path: Path) -> UnsafePathError:
    return UnsafePathError(
        f"{path} is a symbolic link; hnviz does not follow links inside run directories "
        "(anyone who can write there could point one at your files): remove the link, or "
        "use the real directory")


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, in words ("a regular file", "a FIFO (named pipe)", ...)."""
    return next((word for test, word in _KINDS if test(mode)), "a regular file"
                if stat.S_ISREG(mode) else "a special file")


def not_a_file(path: Path, mode: int) -> UnsafePathError:
    """The error for ``path`` that should be a regular file and is something else."""
    return UnsafePathError(f"{path} is {kind_of(mode)}, not a regular file; hnviz reads only "
                           "plain files there: remove it or choose another path")


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half
    (:meth:`SafeDir.write` in ``path``'s folder, which may be a link the caller chose: a
    temporary file with the umask's permissions, fsynced, renamed; a link at ``path`` is
    replaced, never followed)."""
    path = Path(path)
    with SafeDir(path.parent, follow=True) as d:
        d.write(path.name, data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SafeDir:
    """A directory opened without following links; its files are written (atomically),
    read (bounded) and deleted relative to its descriptor, each refusing a link.

    ``SafeDir(path, create=True)`` makes the directory (and its parents, which are the
    user's choice and may be links) if needed; the directory itself must not be a link
    (``follow=True``, for reading, allows that one link). Use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, path: str | Path, create: bool = False, follow: bool = False,
                 _fd: int | None = None):
        self.path = Path(path)
        if _fd is not None:
            self.fd = _fd
            return
        if follow:  # only for reading: the directory itself may be a link the reader chose
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            return
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(self.path)
            except FileExistsError:
                pass
        self.fd = self._open_dir(self.path, None)

    @staticmethod
    def _open_dir(path: Path, dir_fd: int | None) -> int:
        name = path.name if dir_fd is not None else path
        try:
            return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
        except OSError as e:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                raise e from None
            if stat.S_ISLNK(st.st_mode):
                raise _link_refusal(path) from None
            if not stat.S_ISDIR(st.st_mode):
                what = "a file" if stat.S_ISREG(st.st_mode) else kind_of(st.st_mode)
                raise UnsafePathError(f"{path} is {what}, not a directory; choose a directory "
                                      "path") from None
            raise

    def __enter__(self) -> "SafeDir":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __repr__(self) -> str:
        return f"SafeDir({str(self.path)!r})"

    # ------------------------------------------------------------------ entries
    def lstat(self, name: str) -> os.stat_result | None:
        """The entry's own status (a link is not followed), None if it does not exist."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def is_file(self, name: str) -> bool:
        st = self.lstat(name)
        return st is not None and stat.S_ISREG(st.st_mode)

    def is_dir(self, name: str) -> bool:
        st = self.lstat(name)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def names(self) -> list[str]:
        return sorted(os.listdir(self.fd))

    def subdir(self, name: str, create: bool = False) -> "SafeDir":
        """The subdirectory ``name`` (made if ``create``), opened without following links."""
        if create:
            try:
                os.mkdir(name, dir_fd=self.fd)
            except FileExistsError:
                pass
        return SafeDir(self.path / name, _fd=self._open_dir(self.path / name, self.fd))

    def entries(self, prefix: str = "") -> Iterator[tuple[str, os.stat_result]]:
        """(name, own status) of the entries whose names start with ``prefix``."""
        for name in self.names():
            if name.startswith(prefix):
                st = self.lstat(name)
                if st is not None:
                    yield name, st

    # ------------------------------------------------------------------ writing
    def write(self, name: str, data: bytes | str) -> None:
        """Write ``name`` atomically: a temporary file made here (never through a link),
        fsynced, renamed over ``name`` (a link there is replaced, not followed)."""
        raw = data.encode() if isinstance(data, str) else data
        tmp = f".{name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                     dir_fd=self.fd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            self.unlink(tmp)
            raise
        os.fsync(self.fd)

    def unlink(self, name: str) -> None:
        """Remove the file ``name`` (a link is removed itself, its target is untouched)."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def remove_tree(self, name: str) -> None:
        """Remove the subdirectory ``name`` and everything in it, following no link."""
        st = self.lstat(name)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            self.unlink(name)
            return
        with self.subdir(name) as sub:
            for entry in sub.names():
                sub.remove_tree(entry)
        os.rmdir(name, dir_fd=self.fd)

    # ------------------------------------------------------------------ reading
    def open_file(self, name: str) -> tuple[int, int]:
        """A descriptor of the regular file ``name`` and its size. A link, FIFO, socket,
        device or directory is refused (:class:`UnsafePathError` saying which) without
        being read: its type is checked before it is opened, and again after (a FIFO
        opened for reading would wait for a writer forever)."""
        st = self.lstat(name)
        if st is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(self.path / name))
        if stat.S_ISLNK(st.st_mode):
            raise _link_refusal(self.path / name)
        if not stat.S_ISREG(st.st_mode):
            raise not_a_file(self.path / name, st.st_mode)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _link_refusal(self.path / name) from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped between the check and the open
            os.close(fd)
            raise not_a_file(self.path / name, st.st_mode)
        return fd, st.st_size

    def read(self, name: str, max_bytes: int, what: str = "run directory") -> bytes:
        """The bytes of ``name``, refused (:class:`DamagedFileError`) beyond ``max_bytes``
        before anything is read."""
        fd, size = self.open_file(name)
        with os.fdopen(fd, "rb") as f:
            if size > max_bytes:
                raise DamagedFileError(f"{self.path / name} is {size:,} bytes, more than the "
                                       f"{max_bytes:,} it can be; the {what} is damaged")
            return f.read(size)  # what was there when it was opened, no more


def read_regular(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a file a person named (a link they chose is followed), refused
    (``ValueError``) if it is not a regular file (a FIFO would block the read forever)
    or is longer than ``max_bytes``."""
    path = Path(path)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise not_a_file(path, st.st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_a_file(path, st.st_mode)
        if st.st_size > max_bytes:
            raise ValueError(f"{path} is {st.st_size:,} bytes; a {what} is at most "
                             f"{max_bytes:,}")
        return f.read(max_bytes + 1)[:max_bytes]


# ---------------------------------------------------------------------- JSON
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def parse_json(raw: bytes, path: Path, what: str = "run directory") -> dict[str, Any]:
    """The JSON object in ``raw`` (read from ``path``). Bad UTF-8, bad syntax, NaN, inf
    (``1e999``), nesting too deep or a non-object raise :class:`DamagedFileError`."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                          parse_float=_finite_float)
    except (ValueError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else e
        raise DamagedFileError(f"cannot read {path}: {reason}; the {what} is damaged") from None
    if not isinstance(data, dict):
        raise DamagedFileError(f"{path} holds a JSON {type(data).__name__}, not an object; "
                               f"the {what} is damaged")
    return data


def read_json(path: Path, what: str = "run directory",
              max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The JSON object in ``path`` (see :func:`parse_json`), at most ``max_bytes`` long."""
    path = Path(path)
    try:
        with SafeDir(path.parent) as d:
            raw = d.read(path.name, max_bytes, what)
    except OSError as e:
        raise DamagedFileError(f"cannot read {path}: {e}; the {what} is damaged") from e
    return parse_json(raw, path, what)


# ---------------------------------------------------------------------- tensors
def parse_tensors(data: bytes, path: Path, expected_sha256: str | None = None,
                  what: str = "run directory",
                  vouched_by: str = "run.json") -> dict[str, torch.Tensor]:
    """The tensors of safetensors bytes ``data`` (checked against ``expected_sha256``, if
    given, from the file ``vouched_by``, and for NaN/inf); damage raises
    :class:`DamagedFileError` naming ``path``."""
    if expected_sha256 is not None and sha256(data) != expected_sha256:
        raise DamagedFileError(f"{path} does not match its checksum in {vouched_by}: one of "
                               f"them was changed or damaged after saving; the {what} is "
                               "damaged")
    try:
        tensors = st_load(data)
    except Exception as e:  # safetensors raises its own error types
        raise DamagedFileError(f"cannot read {path}: {e}; the {what} is damaged") from e
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise DamagedFileError(f"{path} holds non-finite values (NaN or inf) in {name!r}; "
                                   f"the {what} is damaged or came from a diverged run")
    return tensors


def read_tensors(path: Path, expected_sha256: str | None = None, what: str = "run directory",
                 vouched_by: str = "run.json",
                 max_bytes: int | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (see :func:`parse_tensors`); a file longer than
    ``max_bytes`` is refused before it is read."""
    path = Path(path)
    try:
        with SafeDir(path.parent) as d:
            data = d.read(path.name, max_bytes if max_bytes is not None else 2**62, what)
    except OSError as e:
        raise DamagedFileError(f"cannot read {path}: {e}; the {what} is incomplete") from e
    return parse_tensors(data, path, expected_sha256, what, vouched_by)
