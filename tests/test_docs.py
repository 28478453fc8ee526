"""The README and docs/: the quick start runs as written, every link points to a file of
the repository, and nothing cites a document the repository lacks."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


@pytest.mark.slow
def test_quick_start_runs_as_written(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", section(README.read_text(), "Quick start"), re.S)
    assert len(blocks) >= 2, "the quick start's python blocks"
    script = "\n".join(blocks) + "\nassert y.shape == (50, 1) and ys.shape == (3, 50, 1)\n" \
        "assert (learner.matrix_[-1] < 0.01).all() and run.learner.n_tasks_ == 3\n"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "runs" / "toy" / "run.json").is_file()


def test_readme_is_a_front_door():
    assert len(README.read_text().splitlines()) <= 150
    install = section(README.read_text(), "Install with pip").strip().splitlines()
    assert len(install) <= 15 and "python -m hnviz notebooks" in "\n".join(install)


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_links_point_to_files_here(page):
    text = page.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_nothing_cites_a_document_the_repository_lacks():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    bad = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".ipynb", ".toml", ".yml", ".yaml", ".json", "") \
                or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="replace")
        for needle in ("PAPER.md", "STYLE.md", "../shared"):
            if needle in text and name != "tests/test_docs.py":
                bad.append(f"{name}: {needle}")
    assert bad == []


def test_version_and_changelog_agree():
    """One version, written in hnviz/__init__.py (pyproject.toml reads it), and the
    changelog's newest heading names it (a development version: that release to come)."""
    import tomllib

    import hnviz
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"] and "version" not in project
    newest = re.search(r"^## (\S+)", (ROOT / "docs" / "changelog.md").read_text(), re.M)
    assert newest and newest.group(1) == re.sub(r"\.dev\d+$", "", hnviz.__version__)
    torch = [d for d in project["dependencies"] if d.startswith("torch")]
    assert torch == ["torch>=2.0"]  # a range: a user's torch is not replaced
