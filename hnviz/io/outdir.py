"""Output directories: the one place that decides whether hnviz may write into an
``--out`` (train, compare, sweep, figures, demo) and marks those it writes.

An output directory is new, empty, or hnviz's own (it holds the ``.hnviz`` mark that
:func:`claim_out` leaves, or the files of an hnviz run, comparison, sweep or figures).
The folders above it are the user's path and may be links (``/tmp`` is one on macOS). Refused,
with one line naming it: a symbolic link (hnviz would write into its target), ``.``
and ``..`` (any working directory), a path through ``..``, a file, and a non-empty
directory of someone else's files.
"""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from .safeio import SafeDir, kind_of

MARK = ".hnviz"  # {"command": ...}: written by hnviz into the output directories it makes
OWN_NAMES = {MARK, ".lock", "run.json", "checkpoints", "metrics.json", "summary.json",
             "table.md", "results.json", "results.csv", "trials", "_ray"}
GENERATION = re.compile(r"^gen-(\d{6})$")  # a run's generation of tensor files (runs.py)
FIGURE = re.compile(r"^(forgetting|.+_(embedding|interpolation))\.png$")  # figures --out


def _is_run(path: Path) -> bool:
    """``path`` is a run directory (not a link; it holds run.json or checkpoints)."""
    return not path.is_symlink() and path.is_dir() and \
        any(os.path.lexists(path / n) for n in ("run.json", "checkpoints"))


def is_own(path: Path) -> bool:
    """``path`` (a directory) is empty or holds hnviz's output: its files, or run
    directories (``demo --out`` of hnviz before the ``.hnviz`` mark)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return not names or any(n in OWN_NAMES or GENERATION.match(n) or FIGURE.match(n)
                            or _is_run(path / n) for n in names)


def folder_kind(path: Path) -> str | None:
    """What hnviz output ``path`` holds: "train" (a run: run.json, checkpoints or a
    generation), the command its ``.hnviz`` mark names, "compare" or "sweep" by their
    files; None for an empty folder or one of older hnviz without a mark."""
    names = os.listdir(path)
    if any(n in ("run.json", "checkpoints") or GENERATION.match(n) for n in names):
        return "train"
    if MARK in names:
        try:
            with SafeDir(path) as d:
                mark = json.loads(d.read(MARK, 4096))
            return str(mark["command"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    if "summary.json" in names:
        return "compare"
    return "sweep" if "trials" in names or "results.json" in names else None


def existing_dir(path: Path, shown: str) -> bool:
    """Whether ``path`` exists (False: it does not), refusing with a ``ValueError`` that
    names it as ``shown`` a symbolic link (hnviz does not write through links) and
    anything that is not a directory."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise ValueError(f"{shown}: {e.strerror}; choose another directory") from None
    if stat.S_ISLNK(st.st_mode):
        raise ValueError(f"{shown} is a symbolic link; hnviz does not write through links "
                         f"(it would write into {os.readlink(path)}): name the real directory")
    if not stat.S_ISDIR(st.st_mode):
        what = "a file" if stat.S_ISREG(st.st_mode) else kind_of(st.st_mode)
        raise ValueError(f"{shown} is {what}, not a directory; choose another path")
    return True


def check_out(out: Any, name: str = "--out", command: str | None = None) -> Path:
    """``out`` as a Path hnviz may write into, else ``ValueError`` naming it and the fix
    (nothing is created). ``command`` (train, compare, sweep, demo): a folder holding
    another command's output is refused too (a comparison written into a run would hide
    the run)."""
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise ValueError(f"{name} is empty; name the directory to write, e.g. {name} runs/x")
    path = Path(out)
    if ".." in path.parts or str(path) == ".":
        raise ValueError(f"{name} {out} names the current directory or goes up through '..'; "
                         f"name a new directory instead, e.g. {name} runs/x")
    if not existing_dir(path, f"{name} {out}"):
        return path
    if not is_own(path):
        raise ValueError(f"{name} {out} holds files hnviz did not write; choose a new or empty "
                         "directory (hnviz writes only into its own output directories)")
    kind = folder_kind(path) if command else None
    if kind is not None and kind != command:
        what = {"train": "a training run", "compare": "a comparison", "sweep": "a sweep",
                "demo": "the demo's runs", "figures": "figures"}.get(kind, kind)
        raise ValueError(f"{name} {out} holds {what}; `{command}` writes into a folder of its "
                         "own: choose another directory")
    return path


def claim_out(out: Any, command: str, name: str = "--out") -> Path:
    """Check ``out`` (:func:`check_out`), create it and leave the ``.hnviz`` mark naming
    ``command``, so that a later run of any hnviz command recognises it."""
    path = check_out(out, name, command)
    with SafeDir(path, create=True) as d:
        if d.lstat(MARK) is None:
            d.write(MARK, json.dumps({"command": command}) + "\n")
    return path
