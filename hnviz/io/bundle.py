"""What ships with hnviz beside its code: the six notebooks, the example sweep files and
the figures the notebooks show. A wheel holds them in the package (``hnviz/notebooks``,
``hnviz/examples``, ``hnviz/images``: pyproject.toml maps the repository's folders
there); in a checkout (an editable install) they are the repository's own folders.

:func:`copy_notebooks` puts a user's own copies of the notebooks in a folder
(``python -m hnviz notebooks DEST``), with the figures they show beside them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .outdir import existing_dir
from .safeio import SafeDir

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


def copy_notebooks(dest: Any, overwrite: bool = False) -> list[Path]:
    """Copy the notebooks into ``dest`` (made if missing) and the figures they show into
    ``dest/images`` (their links rewritten to point there). A notebook already in ``dest``
    is kept, with a ``FileExistsError`` naming it, unless ``overwrite``: it may hold the
    user's edits. Returns the notebooks' paths in ``dest``."""
    dest = _check_dest(dest)
    sources = notebook_files()
    if not overwrite:
        there = [s.name for s in sources if os.path.lexists(dest / s.name)]
        if there:
            raise FileExistsError(f"{dest} already has {', '.join(there)}; your edits stay: "
                                  "choose another folder, or add --overwrite to replace them")
    texts = {s.name: s.read_text(encoding="utf-8") for s in sources}
    images = sorted({n for text in texts.values() for n in linked_images(text)})
    with SafeDir(dest, create=True) as d:
        if images:
            with d.subdir("images", create=True) as pictures:
                for name in images:
                    pictures.write(name, (bundled("images") / name).read_bytes())
        for name, text in texts.items():
            d.write(name, text.replace(IMAGE_LINK, COPIED_LINK))
    return [dest / s.name for s in sources]
