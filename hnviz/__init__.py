"""hnviz: continual learning with task-conditioned hypernetworks, made visible.

Core API: :class:`HyperCLConfig`, :class:`HyperCL`, the baselines (:class:`BaselineCL`),
the benchmarks (toy regression, digits, MNIST, Fashion-MNIST), scenarios, metrics,
comparisons (:func:`compare`), sweeps on Ray Tune (:func:`sweep`), run files
(:func:`save_run`, :func:`load_run`) and checkpointed training (:func:`fit_checkpointed`,
:func:`resume`). docs/architecture.md shows how the modules are layered.
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
    from .baselines import BaselineCL, BaselineConfig
    from .benchmarks import (get_benchmark, permuted_digits, permuted_fashion_mnist,
                             permuted_mnist, split_digits, split_fashion_mnist, split_mnist,
                             toy_regression)
    from .compare import compare
    from .config import PRESETS, HyperCLConfig
    from .data import load_dataset
    from .experiment import fit_checkpointed, resume, train_into
    from .hnets import ChunkedHyperNet, FullHyperNet
    from .learner import HyperCL
    from .runs import load_run, save_run
    from .scenarios import apply_scenario
    from .state import LearnerState
    from .sweeps import load_sweep, sweep
    from .targets import TargetNet, build_target
    from .tasks import Task, TaskSequence
    from .train import Callback, NonFiniteLossError
    from .transfer import scratch_scores
finally:
    if _COMMAND:
        signal.signal(signal.SIGINT, signal.default_int_handler)
if _signalled:
    print("hnviz: interrupted", file=sys.stderr, flush=True)
    os._exit(130)

__version__ = "0.3.0"
__all__ = [
    "BaselineCL", "BaselineConfig", "Callback", "ChunkedHyperNet", "FullHyperNet", "HyperCL",
    "HyperCLConfig", "LearnerState", "NonFiniteLossError", "PRESETS", "TargetNet", "Task",
    "TaskSequence", "apply_scenario", "build_target", "compare", "fit_checkpointed",
    "get_benchmark", "load_dataset", "load_run", "load_sweep", "permuted_digits",
    "permuted_fashion_mnist", "permuted_mnist", "resume", "save_run", "split_digits",
    "scratch_scores", "split_fashion_mnist", "split_mnist", "sweep", "toy_regression",
    "train_into",
]
