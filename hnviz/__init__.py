"""hnviz: continual learning with task-conditioned hypernetworks, made visible.

Core API: :class:`HyperCLConfig`, :class:`HyperCL`, the baselines (:class:`BaselineCL`),
the benchmarks (toy regression, digits, MNIST, Fashion-MNIST), scenarios, metrics,
comparisons (:func:`compare`), sweeps on Ray Tune (:func:`sweep`) and run files
(:func:`load_run`).
"""
from .baselines import BaselineCL, BaselineConfig
from .benchmarks import (Task, TaskSequence, get_benchmark, permuted_digits, permuted_fashion_mnist,
                         permuted_mnist, split_digits, split_fashion_mnist, split_mnist,
                         toy_regression)
from .compare import compare
from .data import load_dataset
from .scenarios import apply_scenario
from .config import PRESETS, HyperCLConfig
from .hnets import ChunkedHyperNet, FullHyperNet
from .learner import HyperCL
from .runs import load_run, save_run
from .sweeps import load_sweep, sweep
from .targets import TargetNet, build_target
from .train import Callback, NonFiniteLossError

__version__ = "0.1.0"
__all__ = [
    "BaselineCL", "BaselineConfig", "apply_scenario", "compare", "load_dataset",
    "permuted_fashion_mnist", "permuted_mnist", "split_fashion_mnist", "split_mnist",
    "Callback", "ChunkedHyperNet", "FullHyperNet", "HyperCL", "HyperCLConfig", "PRESETS",
    "NonFiniteLossError", "TargetNet", "Task", "TaskSequence", "build_target", "get_benchmark", "load_run",
    "permuted_digits", "save_run", "split_digits", "toy_regression", "load_sweep", "sweep",
]
