"""The method registry (hnviz.learners.methods): one entry per method, read by every caller; the
learners it builds are those of the settings each method had before it existed."""
import ast
from pathlib import Path

import pytest

from hnviz.learners.baselines import BaselineCL, BaselineConfig
from hnviz.experiments.compare import make_learner
from hnviz.learners.config import HyperCLConfig
from hnviz.learners.dgr import DGR
from hnviz.learners.hnet_r import HNetR
from hnviz.learners.hypercl import HyperCL
from hnviz.learners.methods import (REGISTRY, Method, check_methods, check_scenario_methods,
                           default_methods, get_method, learner_classes, register)

PACKAGE = Path(__file__).resolve().parent.parent / "hnviz"


@pytest.mark.parametrize("preset", ["split_digits", "permuted_digits", "toy_regression_quick"])
@pytest.mark.parametrize("scenario", ["cl1", "cl2", "cl3"])
def test_each_method_builds_what_it_built_before_the_registry(preset, scenario):
    """The configs of the pre-registry if-chain: an HNET keeps its preset's heads in cl1,
    a baseline has one head per task in cl1; in cl2/cl3 every method shares one head."""
    for name in default_methods(scenario):
        if name == "hnet_r":  # newer than the registry: tests/test_hnet_r.py
            continue
        learner = make_learner(name, preset, scenario, 3, False, n_steps=7)
        if name in ("hnet", "hnet_tir"):
            want = HyperCLConfig.preset(preset, n_steps=7)
            if scenario != "cl1":
                want = want.replace(multi_head=False)
            if name == "hnet_tir":
                want = want.replace(task_inference="replay")
            assert type(learner) is HyperCL
        else:
            want = BaselineConfig.preset(preset, method=name, n_steps=7,
                                         multi_head=scenario == "cl1")
            assert type(learner) is (DGR if name == "dgr" else BaselineCL)
        assert learner.config == want, name
        assert learner.random_state == 3


def test_scenarios_and_defaults_come_from_the_registry():
    assert default_methods("cl1") == ["hnet", "finetune", "ewc", "online_ewc", "si", "joint"]
    assert set(default_methods("cl3")) == set(REGISTRY)
    with pytest.raises(ValueError, match="hnet_tir, dgr are made for what cl2/cl3 hide and do "
                                         "not run in cl1; use --scenario cl2 or cl3"):
        check_scenario_methods(["hnet", "hnet_tir", "dgr"], "cl1")
    with pytest.raises(ValueError, match="unknown method 'lwf'; choose from hnet, hnet_tir"):
        check_methods(["hnet", "lwf"])
    with pytest.raises(ValueError, match="'ewc' is named 2 times"):
        check_methods(["ewc", "ewc"])


def test_fields_leave_out_what_the_method_fixes():
    assert "task_inference" not in get_method("hnet_tir").fields
    assert "task_inference" in get_method("hnet").fields
    assert "method" not in get_method("ewc").fields and "ewc_lambda" in get_method("ewc").fields
    # a field of another method is left out; one no method has is named
    assert make_learner("ewc", "split_digits", "cl1", 0, False, beta=0.3).config.ewc_lambda == 100
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['bta'\]"):
        make_learner("hnet", "split_digits", "cl1", 0, False, bta=0.3)


def test_runs_load_through_the_learner_kind_and_a_new_entry_is_checked():
    assert learner_classes() == {"hypercl": HyperCL, "hnet_r": HNetR, "dgr": DGR,
                                 "baseline": BaselineCL}
    with pytest.raises(ValueError, match="'ewc' is registered already"):
        register(Method("ewc", "EWC", "EWC", BaselineCL))
    with pytest.raises(ValueError, match="scenarios must be of"):
        register(Method("x", "X", "x", BaselineCL, scenarios=("cl4",)))
    assert "x" not in REGISTRY


# modules that may spell a method's name: the registry, the presets, the learners that
# implement a method by a config value (BaselineCL's ``method``; DGR's and HNetR's kind)
NAMES_ALLOWED = {"learners/methods.py", "learners/config.py", "learners/baselines.py",
                 "learners/dgr.py", "learners/hnet_r.py",
                 "moved.py"}  # module paths of 0.4 (hnviz.dgr), not methods


def test_no_module_spells_a_method_name_outside_the_registry():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if str(path.relative_to(PACKAGE)) in NAMES_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in REGISTRY:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert not found, found
