"""Module paths of 0.4 (hnviz/moved.py and the packages hnviz.data, hnviz.cli, hnviz.bench)
keep working: the same module objects under both names, with their own specs."""
import importlib
import subprocess
import sys

import pytest

import hnviz
from hnviz.moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_each_old_path_is_the_module_at_its_new_path(old):
    module = importlib.import_module(f"hnviz.{old}")
    assert module is importlib.import_module(f"hnviz.{MOVED[old]}")
    assert module.__spec__.name == f"hnviz.{MOVED[old]}"  # reload and relative imports


def test_old_paths_in_a_fresh_process_keep_names_specs_and_the_compare_function():
    code = """
import importlib, hnviz
import hnviz.plots, hnviz.commands, hnviz.widgets.replay
assert callable(hnviz.compare) and not isinstance(hnviz.compare, type(hnviz))
assert hnviz.results.plots.__spec__.name == "hnviz.results.plots"
importlib.reload(hnviz.results.plots)
from hnviz.bench import run_bench, CONFIGS
from hnviz.data import DATASETS, FILES, read_idx, load_dataset
from hnviz.cli import build_parser, USER_ERRORS, main
from hnviz.benchmarks import Task, toy_variant
from hnviz.learner import HyperCL
assert HyperCL is hnviz.HyperCL and hnviz.learner.HyperCL is HyperCL
"""
    res = subprocess.run([sys.executable, "-W", "error::ImportWarning", "-c", code],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def test_a_name_that_never_was_is_an_attribute_error():
    with pytest.raises(AttributeError, match="'hnviz.data' has no attribute 'nope'"):
        hnviz.data.nope
    with pytest.raises(AttributeError, match="'hnviz' has no attribute 'nope'"):
        hnviz.nope
