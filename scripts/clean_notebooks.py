"""Keep the notebooks committed clean: no outputs, execution counts or widget state,
except the text output (and execution count) of cells marked ``# NBVAL_CHECK_OUTPUT``
(deterministic lines that ``make test`` compares on every run; the marker is nbval's).

Usage: python scripts/clean_notebooks.py [--execute] [notebooks/*.ipynb]
``--execute`` first runs each notebook (with HNVIZ_FAST=1, as the tests do) to record the
checked outputs; without it only strips. ``--check`` exits 1 if a notebook is not clean.
"""
import argparse
import copy
import os
import sys
from pathlib import Path

import nbformat

CHECK = "# NBVAL_CHECK_OUTPUT"
ROOT = Path(__file__).resolve().parent.parent


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        count += 1
        keep = cell.source.startswith(CHECK)
        # nbval reads a cell without an execution count as never run: checked cells keep one
        cell.execution_count = count if keep else None
        cell.outputs = [o for o in cell.outputs if keep and o.output_type == "stream"
                        and o.name == "stdout"]
    return nb


def execute(nb: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    os.environ["HNVIZ_FAST"] = "1"
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--execute", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        committed = nbformat.writes(nb)  # before execute() fills in outputs
        new = clean(execute(nb, path) if args.execute else nb)
        if args.check:
            if nbformat.writes(new) != committed:
                dirty.append(path)
            continue
        nbformat.write(new, path)
        print(f"cleaned {path}")
    if dirty:
        print("not clean: " + ", ".join(map(str, dirty)) + "; run python scripts/clean_notebooks.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
