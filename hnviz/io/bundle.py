"""What ships with hnviz beside its code: the six notebooks, the example sweep files and
the figures the notebooks show. A wheel holds them in the package (``hnviz/notebooks``,
``hnviz/examples``, ``hnviz/images``: pyproject.toml maps the repository's folders
there); in a checkout (an editable install) they are the repository's own folders.

:func:`copy_notebooks` puts a user's own copies of the notebooks in a folder
(``python -m hnviz notebooks DEST``), with the figures they show and the example sweep
files beside them.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from .outdir import existing_dir
from .safeio import SafeDir, kind_of

PACKAGE = Path(__file__).resolve().parent.parent  # hnviz/
# kind -> (folder in a wheel, folder in the repository)
KINDS = {"notebooks": ("notebooks", "notebooks"), "examples": ("examples", "examples"),
         "images": ("images", "docs/images")}
IMAGE_LINK = "../docs/images/"  # how a notebook in the repository links a figure
COPIED_LINK = "images/"          # ... and in a copy (the figures lie beside it)


def bundled(kind: str) -> Path:
    """The folder of ``kind`` ("notebooks", "examples" or "images"): the installed
    package's, else the checkout's; a ``FileNotFoundError`` saying so if neither exists."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    wheel, repository = KINDS[kind]
    for folder in (PACKAGE / wheel, PACKAGE.parent / repository):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"hnviz's {kind} are not installed (neither {PACKAGE / wheel} "
                            f"nor {PACKAGE.parent / repository} exists); reinstall hnviz")


def notebook_files() -> list[Path]:
    """The bundled notebooks ``*.ipynb``, in order."""
    return sorted(bundled("notebooks").glob("[0-9]*.ipynb"))


def linked_images(text: str) -> list[str]:
    """The figures a notebook's text links (``../docs/images/NAME.png``), by name."""
    names = []
    for part in text.split(IMAGE_LINK)[1:]:
        name = part.split(")")[0].split('"')[0]
        if name not in names:
            names.append(name)
    return names


def _check_dest(dest: Any) -> Path:
    if not isinstance(dest, (str, os.PathLike)) or not str(dest).strip():
        raise ValueError("the destination is empty; name a folder, e.g. "
                         "python -m hnviz notebooks hnviz-notebooks")
    existing_dir(Path(dest), str(dest))
    return Path(dest)


def _planned(sources: list[Path]) -> dict[str, bytes]:
    """What a copy writes, by path relative to the destination: the notebooks (figure
    links rewritten), the figures they show (``images/``) and the example files
    (``examples/``: the commands in the notebooks' text name them)."""
    files: dict[str, bytes] = {}
    for src in sources:
        text = src.read_text(encoding="utf-8")
        files[src.name] = text.replace(IMAGE_LINK, COPIED_LINK).encode("utf-8")
        for name in linked_images(text):
            files[f"images/{name}"] = (bundled("images") / name).read_bytes()
    for example in sorted(bundled("examples").glob("*")):
        if example.suffix in (".yaml", ".json") and example.is_file():
            files[f"examples/{example.name}"] = example.read_bytes()
    return files


def _conflicts(dest: Path, files: dict[str, bytes], overwrite: bool) -> list[str]:
    """The files a copy would replace: those that differ (all of them with
    ``overwrite``, which then only refuses what is not a file: a folder, a FIFO)."""
    for sub in ("images", "examples"):
        existing_dir(dest / sub, str(dest / sub))  # a link or a file there: refused
    out = []
    for rel, data in files.items():
        path = dest / rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise ValueError(f"{path} is {kind_of(st.st_mode)}, not a file; move it away or "
                             "choose another folder")
        if stat.S_ISLNK(st.st_mode) or overwrite or path.read_bytes() != data:
            out.append(rel)
    return out


def copy_notebooks(dest: Any, overwrite: bool = False) -> list[Path]:
    """Copy the notebooks into ``dest`` (made if missing), the figures they show into
    ``dest/images`` (their links rewritten to point there) and the example sweep files
    into ``dest/examples``. A file already there that differs is kept, with a
    ``FileExistsError`` naming it, unless ``overwrite``: it may hold the user's edits.
    Everything is checked before anything is written. Returns the notebooks' paths."""
    dest = _check_dest(dest)
    sources = notebook_files()
    files = _planned(sources)
    replaced = _conflicts(dest, files, overwrite)
    if replaced and not overwrite:
        raise FileExistsError(f"{dest} already has {', '.join(replaced)}; your edits stay: "
                              "choose another folder, or add --overwrite to replace them")
    with SafeDir(dest, create=True) as d:
        for rel, data in files.items():
            if "/" in rel:
                sub, name = rel.split("/")
                with d.subdir(sub, create=True) as folder:
                    folder.write(name, data)
            else:
                d.write(rel, data)
    return [dest / s.name for s in sources]
