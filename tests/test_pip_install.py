"""A pip user's path, end to end: the wheel built from this checkout installed into a
fresh virtual environment outside the repository whose torch was installed first; that
torch stays; the README's quick start, ``python -m hnviz demo`` and a copied notebook run
from another directory; and ``python -m hnviz notebooks`` copies what the wheel ships."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hnviz.io.bundle import copy_notebooks, linked_images, notebook_files

ROOT = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"  # the Makefile's, installed first (pip's find-links here hold its wheel)
# what the wheel is built from (a copy: a build leaves build/ and *.egg-info behind)
SOURCES = ["pyproject.toml", "README.md", "hnviz", "notebooks", "examples", "docs/images"]


def run(cmd: list, cwd: Path, stderr: bool = True, **env: str) -> str:
    """``cmd``'s output (with ``stderr``), asserting it succeeded."""
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "MPLBACKEND": "Agg", **env})
    assert res.returncode == 0, f"{cmd}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res.stdout + (res.stderr if stderr else "")


def build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    skip = shutil.ignore_patterns("__pycache__", "runs", ".ipynb_checkpoints")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=skip)
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", tmp / "dist", src], tmp)
    wheel, = (tmp / "dist").glob("hnviz-*.whl")
    return wheel


def torch_files(python: Path, cwd: Path) -> str:
    """torch's version and its package file's path and modification time."""
    return run([python, "-c", "import os, torch; f = torch.__file__; "
                "print(torch.__version__, f, os.stat(f).st_mtime_ns)"], cwd, stderr=False).strip()


@pytest.mark.slow
def test_pip_user_path_in_a_fresh_venv(tmp_path):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.split("/")[-1] for n in names if n.startswith("hnviz/notebooks/"))
    assert shipped == [p.name for p in notebook_files()] and len(shipped) == 6
    assert "hnviz/examples/compression_sweep.yaml" in names

    venv, home = tmp_path / "venv", tmp_path / "elsewhere"
    home.mkdir()
    run([sys.executable, "-m", "venv", venv], home)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", TORCH], home)
    before = torch_files(python, home)
    log = run([python, "-m", "pip", "install", wheel], home)
    assert re.search(r"Requirement already satisfied: torch[>=<\d. ]", log), log[-3000:]
    assert torch_files(python, home) == before  # the same torch, not reinstalled
    assert not re.search(r"Successfully installed.* torch-", log)

    readme = (ROOT / "README.md").read_text()
    quick = readme[readme.index("## Quick start"):]
    script = "\n".join(re.findall(r"```python\n(.*?)```", quick, re.S)[:2])
    run([python, "-c", script + "\nassert run.learner.n_tasks_ == 3\n"], home)
    assert (home / "runs" / "toy" / "run.json").is_file()  # written where the user is
    demo = run([python, "-m", "hnviz", "demo", "--out", "runs/demo", "--no-progress"], home)
    assert "permuted_digits" in demo and (home / "runs/demo/toy_regression/run.json").is_file()

    said = run([python, "-m", "hnviz", "notebooks", "mine"], home)
    assert "copied 6 notebooks" in said and "jupyter lab mine" in said
    assert sorted(p.name for p in (home / "mine").glob("*.ipynb")) == shipped
    assert (home / "mine/images/compression_length.png").is_file()
    executed = home / "mine" / "01_run.ipynb"
    run([python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--output", executed.name, "01_quickstart.ipynb"], home / "mine", HNVIZ_FAST="1")
    cells = json.loads(executed.read_text())["cells"]
    errors = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors and any(c.get("outputs") for c in cells)


def test_copy_notebooks_rewrites_figure_links_and_keeps_edits(tmp_path):
    dest = tmp_path / "nbs"
    paths = copy_notebooks(dest)
    assert [p.name for p in paths] == [p.name for p in notebook_files()]
    for src, copy in zip(notebook_files(), paths):
        text = copy.read_text()
        assert "../docs/images/" not in text
        for name in linked_images(src.read_text()):
            assert f"images/{name}" in text
            assert (dest / "images" / name).read_bytes() == \
                (ROOT / "docs" / "images" / name).read_bytes()
    assert json.loads(paths[0].read_text())["cells"]  # still a notebook
    paths[0].write_text("my edits")
    with pytest.raises(FileExistsError, match="01_quickstart.ipynb.*--overwrite"):
        copy_notebooks(dest)
    assert paths[0].read_text() == "my edits"
    copy_notebooks(dest, overwrite=True)
    assert paths[0].read_bytes() == notebook_files()[0].read_bytes()


def test_copy_notebooks_keeps_the_users_figures_and_checks_before_writing(tmp_path):
    dest = tmp_path / "nbs"
    (dest / "images").mkdir(parents=True)
    (dest / "images" / "compression_length.png").write_bytes(b"my picture")
    with pytest.raises(FileExistsError, match="images/compression_length.png"):
        copy_notebooks(dest)
    assert sorted(p.name for p in dest.rglob("*")) == ["compression_length.png", "images"]
    (dest / "images" / "compression_length.png").unlink()
    (dest / "03_long_sequences.ipynb").mkdir()  # not a file: refused even with overwrite
    with pytest.raises(ValueError, match="03_long_sequences.ipynb is a directory, not a file"):
        copy_notebooks(dest, overwrite=True)
    assert not (dest / "01_quickstart.ipynb").exists()  # nothing written
    (dest / "03_long_sequences.ipynb").rmdir()
    copy_notebooks(dest)
    assert (dest / "examples" / "compression_sweep.yaml").read_bytes() == \
        (ROOT / "examples" / "compression_sweep.yaml").read_bytes()


def test_copy_notebooks_refuses_links_and_files(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ValueError, match="symbolic link"):
        copy_notebooks(tmp_path / "link")
    assert not list(target.iterdir())
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        copy_notebooks(tmp_path / "file")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "images").symlink_to(target)
    with pytest.raises(ValueError, match="link"):
        copy_notebooks(tmp_path / "d")
    assert not list(target.iterdir())


def test_every_figure_a_notebook_links_is_shipped():
    """pyproject.toml's package data for hnviz.images names each figure the notebooks link."""
    text = (ROOT / "pyproject.toml").read_text()
    shipped = re.search(r'"hnviz\.images" = \[(.*?)\]', text).group(1)
    linked = {n for p in notebook_files() for n in linked_images(p.read_text())}
    assert linked and linked <= set(re.findall(r'"([^"]+)"', shipped))


def test_every_code_folder_is_packaged():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(hnviz[.\w]*)"', re.search(r"packages = \[(.*?)\]", text,
                                                           re.S).group(1)))
    folders = {"hnviz"} | {f"hnviz.{p.parent.name}" for p in (ROOT / "hnviz").glob("*/__init__.py")}
    assert listed == folders | {"hnviz.notebooks", "hnviz.examples", "hnviz.images"}


def test_notebooks_command_says_where_and_refuses_in_one_line(tmp_path, capsys):
    from hnviz.cli.parser import main

    assert main(["notebooks", str(tmp_path / "nbs")]) == 0
    out = capsys.readouterr().out
    assert f"copied 6 notebooks to {tmp_path / 'nbs'}/" in out
    assert f"jupyter lab {tmp_path / 'nbs'}" in out and "hnviz[sweep]" in out
    assert main(["notebooks", str(tmp_path / "nbs")]) == 0  # the same files again: fine
    (tmp_path / "nbs" / "01_quickstart.ipynb").write_text("my edits")
    assert main(["notebooks", str(tmp_path / "nbs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err and "01_quickstart.ipynb" in err
    assert main(["notebooks", str(tmp_path / "nbs"), "--overwrite"]) == 0
