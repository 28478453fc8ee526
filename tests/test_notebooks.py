"""The notebooks' conventions (their cells run under nbval in ``make test``)."""
import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_embedding_space", "03_long_sequences", "04_class_incremental",
            "05_teaching_demo", "06_sweeps"]


def test_the_walkthroughs_are_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"  # no Select Kernel dialog
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "HNVIZ_FAST" in params[0].source, "one papermill parameters cell"
    assert code.index(params[0]) == 0
    for cell in code:  # cells call the package: no functions or classes defined here
        src = "\n".join(l for l in cell.source.splitlines() if not l.startswith("%"))
        tree = ast.parse(src)
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef,
                                                             ast.Lambda))]
        assert not defs, f"{path.name}: logic defined in a cell: {cell.source[:80]}"
        if cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
            assert cell.outputs, f"{path.name}: a checked cell needs its expected output"
        else:
            assert not cell.outputs and cell.execution_count is None


def test_notebooks_are_committed_clean():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "clean_notebooks.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
