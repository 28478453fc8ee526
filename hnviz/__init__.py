"""hnviz: continual learning with task-conditioned hypernetworks, made visible.

Core API: :class:`HyperCLConfig`, :class:`HyperCL`, the baselines (:class:`BaselineCL`),
the benchmarks (toy regression, digits, MNIST, Fashion-MNIST), scenarios, metrics,
comparisons (:func:`compare`), hypernetworks trained elsewhere in the widgets
(:func:`from_hypnettorch`, the :class:`HypernetModel` protocol), sweeps on Ray Tune (:func:`sweep`), run files
(:func:`save_run`, :func:`load_run`) and checkpointed training (:func:`fit_checkpointed`,
:func:`resume`). The modules live in one folder per layer (core, learners, io, data,
store, results, widgets, experiments, bench, cli); docs/architecture.md shows them.
"""
import os
import signal
import sys

# python -m hnviz (sys.argv[0] is "-m" while the package is located): Ctrl-C while torch
# loads (a second or two) exits 130 with one line once the imports are done. It is noted,
# not raised: inside numpy's and torch's C code a KeyboardInterrupt is swallowed, turned
# into an ImportError, or aborts the process.
_COMMAND = sys.argv[:1] == ["-m"]
_signalled: list[int] = []


def _on_sigint(signum: int, frame: object) -> None:
    _signalled.append(signum)


if _COMMAND:
    signal.signal(signal.SIGINT, _on_sigint)
try:
    from .learners.baselines import BaselineCL, BaselineConfig
    from .data.benchmarks import (get_benchmark, permuted_digits, permuted_fashion_mnist,
                                  permuted_mnist, split_digits, split_fashion_mnist,
                                  split_mnist, toy_regression)
    from .experiments.compare import compare
    from .learners.config import PRESETS, HyperCLConfig
    from .data.datasets import load_dataset
    from .experiments.experiment import fit_checkpointed, resume, train_into
    from .core.hnets import ChunkedHyperNet, FullHyperNet
    from .learners.hypercl import HyperCL
    from .learners.hypnettorch_adapter import from_hypnettorch
    from .learners.protocol import ExplorableModel, HypernetModel
    from .store.runs import load_run, save_run
    from .data.scenarios import apply_scenario
    from .learners.learner_state import LearnerState
    from .experiments.sweeps import load_sweep, sweep
    from .core.targets import TargetNet, build_target
    from .core.tasks import Task, TaskSequence
    from .core.train import Callback, NonFiniteLossError
    from .learners.transfer import scratch_scores
    from .moved import install as _install_moved
    _install_moved()  # hnviz.compare, hnviz.plots, ... of 0.4 keep working
finally:
    if _COMMAND:
        signal.signal(signal.SIGINT, signal.default_int_handler)
if _signalled:
    print("hnviz: interrupted", file=sys.stderr, flush=True)
    os._exit(130)



def __getattr__(name: str) -> object:
    """``hnviz.learner``, ``hnviz.plots``, ... (module paths of 0.4) as attributes."""
    from .moved import MOVED
    if name in MOVED:
        import importlib
        return importlib.import_module(f"hnviz.{MOVED[name]}")
    raise AttributeError(f"module 'hnviz' has no attribute {name!r}")


__version__ = "0.5.0.dev0"  # the one place it is written (pyproject.toml reads it)
__all__ = [
    "BaselineCL", "BaselineConfig", "Callback", "ChunkedHyperNet", "ExplorableModel",
    "FullHyperNet", "HyperCL", "HyperCLConfig", "HypernetModel", "LearnerState", "NonFiniteLossError", "PRESETS", "TargetNet", "Task",
    "TaskSequence", "apply_scenario", "build_target", "compare", "fit_checkpointed",
    "from_hypnettorch", "get_benchmark", "load_dataset", "load_run", "load_sweep", "permuted_digits",
    "permuted_fashion_mnist", "permuted_mnist", "resume", "save_run", "split_digits",
    "scratch_scores", "split_fashion_mnist", "split_mnist", "sweep", "toy_regression",
    "train_into",
]
