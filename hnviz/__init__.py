"""hnviz: continual learning with task-conditioned hypernetworks, made visible.

Core API: :class:`HyperCLConfig`, :class:`HyperCL`, the benchmarks
(:func:`toy_regression`, :func:`permuted_digits`, :func:`split_digits`), metrics and
run files (:func:`load_run`).
"""
from .benchmarks import Task, TaskSequence, get_benchmark, permuted_digits, split_digits, toy_regression
from .config import PRESETS, HyperCLConfig
from .hnets import ChunkedHyperNet, FullHyperNet
from .learner import HyperCL
from .runs import load_run, save_run
from .targets import TargetNet, build_target
from .train import Callback

__version__ = "0.1.0"
__all__ = [
    "Callback", "ChunkedHyperNet", "FullHyperNet", "HyperCL", "HyperCLConfig", "PRESETS",
    "TargetNet", "Task", "TaskSequence", "build_target", "get_benchmark", "load_run",
    "permuted_digits", "save_run", "split_digits", "toy_regression",
]
