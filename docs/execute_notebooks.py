"""Execute the notebooks for the documentation site: build/notebooks/NAME.ipynb.

``python docs/execute_notebooks.py [--full] [--force]``. By default the notebooks run with
their short settings (``HNVIZ_FAST=1``, a few minutes for all six on two cores); ``--full``
runs the real ones. A notebook already executed after its last change and the package's is kept unless
``--force``. The browser test of ``make test`` saves the notebooks it ran in JupyterLab to
the same place, so the site then shows exactly the outputs that test checked.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "notebooks"


def execute(path: Path, out: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the real settings, not FAST")
    parser.add_argument("--force", action="store_true", help="execute even if up to date")
    args = parser.parse_args(argv)
    if not args.full:
        os.environ["HNVIZ_FAST"] = "1"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    code = max(p.stat().st_mtime for p in (ROOT / "hnviz").rglob("*.py"))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        out = OUT / path.name
        newest = max(code, path.stat().st_mtime)
        if not args.force and out.exists() and out.stat().st_mtime >= newest:
            print(f"{path.name}: up to date")
            continue
        print(f"{path.name}: executing", flush=True)
        execute(path, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
