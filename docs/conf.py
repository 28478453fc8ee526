"""Sphinx configuration of the hnviz documentation site (``make docs``).

The pages are the Markdown files of docs/ (MyST), the API reference comes from the
docstrings (autodoc), and the notebooks are rendered with their outputs by MyST-NB. The
notebooks are not executed here: ``make docs`` runs them first (docs/execute_notebooks.py,
short FAST settings) into build/notebooks/, and this file copies those into the source
tree (docs/notebooks/, not tracked), so every notebook page shows its figures.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
EXECUTED = ROOT / "build" / "notebooks"

import hnviz  # noqa: E402

project = "hnviz"
author = "the hnviz developers"
release = version = hnviz.__version__
copyright = "2026, the hnviz developers"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath", "amsmath"]
nb_execution_mode = "off"  # executed beforehand (see above)
# A widget's figure is stored next to its widget view as a PNG: show the PNG on the page.
nb_mime_priority_overrides = [("html", "image/png", 0), ("html", "text/html", 5),
                              ("html", "application/vnd.jupyter.widget-view+json", 90)]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}


html_theme = "pydata_sphinx_theme"
html_title = f"hnviz {release}"
html_static_path: list[str] = []
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}


def _copy_notebooks() -> None:
    target = HERE / "notebooks"
    notebooks = sorted(EXECUTED.glob("*.ipynb"))
    if not notebooks:
        raise SystemExit(f"no executed notebooks in {EXECUTED}: run `make docs` (it executes "
                         "them first), or python docs/execute_notebooks.py")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    for path in notebooks:  # a notebook's images are at ../docs/images, here at ../images
        text = path.read_text(encoding="utf-8").replace("](../docs/images/", "](../images/")
        nb = json.loads(text)
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"] = [o for o in cell["outputs"] if not _live_only(o)]
        (target / path.name).write_text(json.dumps(nb, indent=1), encoding="utf-8")


def _live_only(output: dict) -> bool:
    """A widget with nothing to show on a static page (a tqdm progress bar, a button
    row): its only other form is its repr, e.g. "tasks: 0%| | 0/10" frozen at the start."""
    mimes = set(output.get("data", {}))
    return "application/vnd.jupyter.widget-view+json" in mimes and mimes <= {
        "application/vnd.jupyter.widget-view+json", "text/plain"}


_copy_notebooks()
