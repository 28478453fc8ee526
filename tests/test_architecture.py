"""The house rules, checked on the source with ``ast``: every module belongs to a layer,
imports go only down (or within the layer), no import cycles (lazy imports inside
functions count too), no module over 400 lines, no function over 60 lines, no call of
another module's private names, and docs/architecture.md lists every module."""
import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hnviz"

# The layers are the package's folders, lowest first: a module may import its own folder
# and the folders before it; its layer is read from its path. The package face (hnviz's
# __init__, __main__ and the table of moved module paths) is the top.
FOLDERS = ["core", "learners", "io", "data", "store", "results", "widgets", "experiments",
           "bench", "cli"]
TOP = ("__init__", "__main__", "moved")
MAX_TOP_MODULES = 8
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts)
        out[name] = path
    return out


MODULES = _modules()
LAYER_OF = {m: len(FOLDERS) if m in TOP else FOLDERS.index(m.split(".")[0]) for m in MODULES
            if m in TOP or m.split(".")[0] in FOLDERS}


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The hnviz modules an ``from ... import ...`` names (relative or absolute)."""
    is_pkg = MODULES[module].name == "__init__.py"
    if node.level:
        base = module.split(".") if module != "__init__" else []
        base = base if is_pkg else base[:-1]
        base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
        prefix = ".".join(base + ([node.module] if node.module else []))
    elif node.module and node.module.split(".")[0] == "hnviz":
        prefix = node.module[len("hnviz."):] if node.module != "hnviz" else ""
    else:
        return []
    found = []
    for alias in node.names:
        candidate = f"{prefix}.{alias.name}" if prefix else alias.name
        if candidate in MODULES:
            found.append(candidate)
        elif prefix in MODULES or prefix == "":
            found.append(prefix or "__init__")
    return found


def imports_of(module: str) -> set[str]:
    """Every hnviz module ``module`` imports, at any depth of its code."""
    tree = ast.parse(MODULES[module].read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.update(_resolve(module, node))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("hnviz."):
                    out.add(alias.name[len("hnviz."):])
                elif alias.name == "hnviz":  # the package face: the top of the house
                    out.add("__init__")
    out.discard(module)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_lives_in_a_layer_folder():
    assert sorted(set(MODULES) - set(LAYER_OF)) == [], "put new modules in a folder of FOLDERS"
    assert sorted(m for m in MODULES if "." not in m and m not in FOLDERS) == sorted(TOP)
    assert len(TOP) <= MAX_TOP_MODULES


def test_imports_only_go_down():
    upward = [f"{m} ({layer(m)}) imports {d} ({layer(d)})" for m, deps in GRAPH.items()
              for d in sorted(deps) if LAYER_OF[d] > LAYER_OF[m]]
    assert upward == []


def layer(m: str) -> str:
    return (FOLDERS + ["top"])[LAYER_OF[m]]


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the path, 2: done
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join(path[path.index(d):] + [m, d]) if d in path
                              else f"{m} -> {d}")
            elif d not in state:
                visit(d, path + [m])
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m, [])
    assert cycles == []


def test_core_and_learners_import_no_io_or_ui():
    low = {m for m in MODULES if LAYER_OF[m] <= FOLDERS.index("learners")}
    for m in low:
        tree = ast.parse(MODULES[m].read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert not names & {"matplotlib", "ipywidgets", "safetensors", "json", "ray"}, m


@pytest.mark.parametrize("module", sorted(set(MODULES) - {"__main__"}))  # that one runs the CLI
def test_module_imports(module):
    importlib.import_module("hnviz" if module == "__init__" else f"hnviz.{module}")


def test_sizes():
    long_modules = [f"{m}: {n}" for m, p in MODULES.items()
                    if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    long_functions = []
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{m}.{node.name}: {n}")
    assert long_modules == [] and long_functions == []


def _private_reach_ins(module: str) -> list[str]:
    """``x._name`` where x is another module or an object that is not self/cls/super(),
    and ``from m import _name``."""
    tree = ast.parse(MODULES[module].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _resolve(module, node):
            found += [f"from {node.module} import {a.name}" for a in node.names
                      if a.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith(("__", "_repr_")):  # IPython's display protocol
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if isinstance(base, ast.Name) and (base.id, node.attr) == ("os", "_exit"):
                continue  # public despite its name: exit now, without Python's shutdown
            if isinstance(base, ast.Call) and getattr(base.func, "id", "") == "super":
                continue
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


# Private attributes of third-party objects that hnviz has to touch, each with its reason.
ALLOWED_PRIVATE = {
    # ipympl's canvas size trait; matplotlib webagg's full-frame switch (see FigureView)
    "widgets.figure_view": ["._size", "._force_full"],
    "experiments.sweep_ray": ["._private"],  # ray._private.ray_constants: Ray's laptop mode switch
}


def test_no_private_reach_ins():
    bad = {}
    for m in MODULES:
        found = [f for f in _private_reach_ins(m)
                 if not any(f.endswith(a) for a in ALLOWED_PRIVATE.get(m, []))]
        if found:
            bad[m] = found
    assert bad == {}


def test_architecture_doc_lists_every_module():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    missing = [m for m in MODULES if m not in (*TOP, *FOLDERS)
               and f"`{m.replace('.', '/')}.py`" not in doc]
    assert missing == []


def test_architecture_doc_says_only_what_is_true():
    """Each row of the module table names a module that exists, in its folder's layer;
    the diagram lists the layer folders in their order, top first."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = [line.split("|")[1:3] for line in doc.splitlines() if line.startswith("| ") and ".py`" in line]
    false = [f"{folder.strip()} {path.strip()}" for folder, path in rows
             if path.strip().strip("`")[:-len(".py")].replace("/", ".") not in MODULES
             or path.strip().strip("`").split("/")[0] != folder.strip()]
    assert rows and false == []
    diagram = doc.split("```")[1]
    order = [line.split()[0].rstrip("/") for line in diagram.splitlines()
             if line.strip() and line.split()[0].rstrip("/") in FOLDERS]
    assert order == FOLDERS[::-1]
