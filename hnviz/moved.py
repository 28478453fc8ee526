"""Module paths of hnviz 0.4 and before, kept working: ``import hnviz.compare`` or
``from hnviz.plots import ...`` load the module from its folder (``hnviz.experiments.compare``,
``hnviz.results.plots``). New code should import from the folders (docs/architecture.md);
``hnviz.data``, ``hnviz.cli`` and ``hnviz.bench`` are packages now and give the names
those modules had. Names removed since: docs/changelog.md."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

# old module (under hnviz) -> where it lives now
MOVED = {
    'validate': 'core.validate',
    'threads': 'core.threads',
    'devices': 'core.devices',
    'metrics': 'core.metrics',
    'tasks': 'core.tasks',
    'targets': 'core.targets',
    'hnets': 'core.hnets',
    'lookahead': 'core.lookahead',
    'regularizer': 'core.regularizer',
    'penalties': 'core.penalties',
    'train': 'core.train',
    'stability': 'core.stability',
    'outliers': 'core.outliers',
    'vae': 'core.vae',
    'replay': 'core.replay_model',
    'config': 'learners.config',
    'state': 'learners.learner_state',
    'base': 'learners.base',
    'task_inference': 'learners.task_inference',
    'learner': 'learners.hypercl',
    'baselines': 'learners.baselines',
    'dgr': 'learners.dgr',
    'transfer': 'learners.transfer',
    'replay_quality': 'learners.replay_judge',
    'safeio': 'io.safeio',
    'lock': 'io.lock',
    'outdir': 'io.outdir',
    'scenarios': 'data.scenarios',
    'benchmarks': 'data.benchmarks',
    'checkpoint': 'store.checkpoint',
    'runs': 'store.runs',
    'analysis': 'results.analysis',
    'plots': 'results.plots',
    'tables': 'results.tables',
    'experiment': 'experiments.experiment',
    'compare': 'experiments.compare',
    'sweep_checks': 'experiments.sweep_checks',
    'sweep_spec': 'experiments.sweep_spec',
    'sweep_trials': 'experiments.sweep_trials',
    'sweep_ray': 'experiments.sweep_ray',
    'sweeps': 'experiments.sweeps',
    'bench_checkpoints': 'bench.checkpoints',
    'bench_contention': 'bench.contention',
    'bench_eval': 'bench.evaluation',
    'bench_widgets': 'bench.slider',
    'commands': 'cli.commands',
    'widgets.replay': 'widgets.replay_explorer',
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``hnviz.<old>`` and answers with the module at its new path (one module
    object under both names: what one sets, the other sees)."""

    def __init__(self) -> None:
        self.specs: dict[str, Any] = {}  # a module's own spec, by its name

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        old = fullname[len("hnviz."):] if fullname.startswith("hnviz.") else None
        if old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> ModuleType:
        module = importlib.import_module(f"hnviz.{MOVED[spec.name[len('hnviz.'):]]}")
        self.specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Loaded already, at its new path; the import machinery has just set the module's
        ``__spec__`` to the old path's: give it back its own (reload, relative imports)."""
        module.__spec__ = self.specs.pop(module.__name__, module.__spec__)


def install() -> None:
    """Answer the old paths; those loaded already are entered directly (importing one
    then leaves the package's attribute of that name as it is, e.g. the function
    ``hnviz.compare``)."""
    if not any(isinstance(f, MovedModules) for f in sys.meta_path):
        sys.meta_path.append(MovedModules())
    for old, new in MOVED.items():
        if f"hnviz.{new}" in sys.modules:
            sys.modules.setdefault(f"hnviz.{old}", sys.modules[f"hnviz.{new}"])
