"""Safe file input/output for run directories and checkpoints: atomic writes, and reads
that execute nothing and name the damaged file (no pickle anywhere)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load


class DamagedFileError(ValueError):
    """A file of a run directory or checkpoint cannot be read or does not fit; the
    message names the file and what to do."""


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half:
    a temporary file in the same directory, flushed and fsynced, then renamed."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path, what: str = "run directory") -> dict[str, Any]:
    """The JSON object in ``path``. Bad UTF-8, bad syntax, NaN/Infinity or a non-object
    raise :class:`DamagedFileError` naming the file."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_reject_constant)
    except (OSError, ValueError) as e:
        raise DamagedFileError(f"cannot read {path}: {e}; the {what} is damaged") from e
    if not isinstance(data, dict):
        raise DamagedFileError(f"{path} holds a JSON {type(data).__name__}, not an object; "
                               f"the {what} is damaged")
    return data


def read_tensors(path: Path, expected_sha256: str | None = None, what: str = "run directory",
                 vouched_by: str = "run.json") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (checked against ``expected_sha256``, if given,
    from the file ``vouched_by``, and for NaN/inf); any damage raises
    :class:`DamagedFileError` naming the file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DamagedFileError(f"cannot read {path}: {e}; the {what} is incomplete") from e
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
