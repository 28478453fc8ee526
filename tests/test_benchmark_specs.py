"""Benchmark specs (hnviz.data.benchmarks.SPECS): one record per benchmark that the rest of
hnviz reads instead of testing a benchmark's name; their shapes and memory estimates
against what the builders hold."""
import ast
import math
from pathlib import Path

import pytest

from hnviz.data.benchmarks import FAST_DATA, SPECS, data_bytes, get_benchmark, get_spec, options
from hnviz.data.datasets import READERS, DATASETS
from hnviz.experiments.experiment import build_benchmark

PACKAGE = Path(__file__).resolve().parent.parent / "hnviz"
FASHION = Path("/usr/share/datasets/fashion-mnist")
SMALL = {"toy_regression": {}, "permuted_digits": {"n_tasks": 3}, "split_digits": {},
         "rotated_digits": {"n_tasks": 3},
         "split_fashion_mnist": {"n_train": 300, "n_test": 200},
         "permuted_fashion_mnist": {"n_tasks": 2, "n_train": 300, "n_test": 200},
         "fashion_transfer": {"n_per_class": 5}}


def _held(tasks) -> int:
    """Bytes of the distinct input tensors the tasks hold (shared storage counted once)."""
    seen, total = set(), 0
    for task in tasks:
        for x in (task.x_train, task.x_test):
            base = getattr(x, "base", x)
            if id(base) not in seen:
                seen.add(id(base))
                total += base.numel() * base.element_size()
    return total


@pytest.mark.parametrize("name", sorted(SMALL))
def test_each_spec_says_the_shape_and_about_the_bytes_of_its_tasks(name):
    if "fashion" in name and not FASHION.exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    spec, opts = get_spec(name), SMALL[name]
    tasks = get_benchmark(name, **opts)
    assert tuple(tasks[0].in_shape) == spec.in_shape(opts)
    assert len(tasks) == (opts.get("n_tasks", spec.n_tasks) if spec.n_tasks else len(tasks))
    held, estimate = _held(tasks), data_bytes(name, opts)
    assert 0.5 * estimate <= held <= estimate, (held, estimate)
    assert tasks[0].metric == spec.metric


def test_the_specs_give_options_the_short_setting_and_the_run_settings():
    assert options("split_fashion_mnist") == ("seed", "n_train", "n_test", "data_dir", "download")
    assert "dataset" in options("split_mnist")
    assert FAST_DATA == {n: s.fast for n, s in SPECS.items() if s.fast is not None}
    assert set(FAST_DATA) == {n for n in SPECS if "mnist" in n or "cifar" in n or "fashion" in n}
    assert len(build_benchmark("permuted_digits")) == 10  # the spec's default task count
    assert build_benchmark("split_digits", seed=3).spec["seed"] == 3
    assert build_benchmark("toy_regression", seed=3).spec["seed"] == 42  # the authors' data
    with pytest.raises(ValueError, match="unknown benchmark 'cifar'"):
        get_spec("cifar")
    big = data_bytes("permuted_mnist", {"n_tasks": 1000, "padding": True})
    assert big == 70000 * 1024 * 4 + 1000 * 1024 * 8
    assert all(d["format"] in READERS for d in DATASETS.values())


def _name_tests(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines that compare a value with a benchmark's name or test a name's prefix."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            consts = [c for c in (node.left, *node.comparators) if isinstance(c, ast.Constant)]
            if any(c.value in names for c in consts):
                lines.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("startswith", "endswith") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and any(n.startswith(node.args[0].value) for n in names)):
            lines.append(node.lineno)
    return lines


def test_no_module_tests_a_benchmark_by_its_name():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("benchmarks.py", "sequences.py"):  # the specs and the builders
            continue
        found += [f"{path.relative_to(PACKAGE)}:{line}"
                  for line in _name_tests(ast.parse(path.read_text()), set(SPECS))]
    assert not found, found


def test_rotated_digits_turn_the_same_digits_and_run_with_their_spec_preset(tmp_path):
    """A benchmark added with its builder and one spec: task 2 of 4 is task 0 turned by
    180 degrees, and compare runs it with the preset family its spec names."""
    import numpy as np

    from hnviz.experiments.compare import compare
    from hnviz.experiments.experiment import preset_for

    tasks = build_benchmark("rotated_digits")
    assert [t.meta["angle"] for t in tasks] == [0, 90, 180, 270]
    upright = tasks[0].x_train.numpy().reshape(-1, 8, 8)
    assert np.array_equal(np.rot90(upright, 2, axes=(1, 2)), tasks[2].x_train.numpy().reshape(-1, 8, 8))
    assert preset_for("rotated_digits") == "permuted_digits"
    summary = compare(tasks, preset_for("rotated_digits"), "cl2", ["hnet", "finetune"], [0],
                      tmp_path / "cmp", progress=False, n_steps=150)
    hnet, finetune = (summary["methods"][m]["average_final"]["mean"] for m in ("hnet", "finetune"))
    assert hnet > 60 and finetune > 10  # ten classes: chance is 10 %


def test_a_custom_sequence_compares_and_a_saved_unknown_name_is_one_line(tmp_path):
    """compare() of a sequence that is no registered benchmark writes its table; a saved
    spec naming an unknown benchmark is a ValueError (the CLI's one line), not a KeyError."""
    import hnviz
    from hnviz.core.tasks import TaskSequence
    from hnviz.data.benchmarks import from_spec
    from hnviz.experiments.sweep_spec import check_spec

    toy = hnviz.toy_regression()
    mine = TaskSequence("mine", list(toy.tasks), {"name": "mine"})
    hnviz.compare(mine, "toy_regression_quick", "cl1", ["finetune"], [0], tmp_path / "c",
                  progress=False, n_steps=5)
    assert "final avg MSE" in (tmp_path / "c" / "table.md").read_text()
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        from_spec({"name": "nope"}, trusted=False)
    assert check_spec({"benchmark": "rotated_digits"})["preset"] == "permuted_digits"
