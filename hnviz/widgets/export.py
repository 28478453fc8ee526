"""Every widget's figure as PNG for run directories (``python -m hnviz figures``)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from ..learners.hypercl import HyperCL
from ..store.runs import Run, load_run
from ..core.validate import is_int, is_real
from .dashboard import ForgettingDashboard
from .embedding import EmbeddingExplorer
from .interpolation import InterpolationExplorer
from .view import AnalysisWidget, save_figure

DPI = (30, 600)  # the dpi save_figures accepts


def _task_number(option: str, value: Any) -> int:
    """A task option's type, as the command line names it (``-a``, ``--task``)."""
    if not is_int(value):
        raise TypeError(f"{option} {value!r} is not a task number: pass an integer 0..T-1, "
                        f"e.g. {option} 0")
    return int(value)


def _check_range(option: str, name: str, value: int, n_tasks: int, run: str,
                 none: bool = False) -> None:
    """``value`` as a task of ``run`` (``n_tasks`` tasks; -1 too where ``none``)."""
    if (none and value == -1) or 0 <= value < n_tasks:
        return
    also = " or -1 (none)" if none else ""
    raise ValueError(f"{name} = {value} is out of range ({option} {value}): run {run!r} has "
                     f"tasks 0..{n_tasks - 1}; pass {option} 0..{n_tasks - 1}{also}, "
                     f"e.g. {option} 0")


def _check_options(alpha: Any, dpi: Any) -> None:
    if not is_real(alpha):
        raise TypeError(f"--alpha {alpha!r} must be a finite number, e.g. --alpha 0.5")
    if not math.isfinite(alpha):
        raise ValueError(f"--alpha {alpha!r} must be a finite number, e.g. --alpha 0.5")
    if not is_int(dpi):
        raise TypeError(f"dpi = {dpi!r} is not an integer: pass {DPI[0]}..{DPI[1]}, e.g. dpi=110")
    if not DPI[0] <= dpi <= DPI[1]:
        raise ValueError(f"dpi = {dpi} is out of range: pass an integer {DPI[0]}..{DPI[1]}, "
                         "e.g. dpi=110")


def _check_tasks(loaded: dict[str, Run], a: int, b: int, task: int) -> None:
    """``a``, ``b`` against every hypernetwork run, ``task`` against each such run and the
    dashboard (the most tasks of any run): what the widgets allow, as options."""
    for name, run in loaded.items():
        T = run.learner.n_tasks_
        if isinstance(run.learner, HyperCL):
            _check_range("-a", "a", a, T, name)
            _check_range("-b", "b", b, T, name)
            _check_range("--task", "task", task, T, name, none=True)
    longest = max(loaded, key=lambda name: loaded[name].learner.n_tasks_)
    _check_range("--task", "task", task, loaded[longest].learner.n_tasks_, longest, none=True)


def save_figures(runs: Sequence[str | Path] | str | Path, out: str | Path, a: int = 0,
                 b: int = 1, alpha: float = 0.5, task: int = -1, dpi: int = 110) -> list[Path]:
    """Write each widget's figure as PNG for run directories (``python -m hnviz figures``):
    ``forgetting.png`` (the dashboard over all runs) and, per hypernetwork run,
    ``<run>_embedding.png`` and ``<run>_interpolation.png`` (tasks ``a`` -> ``b`` at
    ``alpha``; runs of the same name are told apart by their paths, ``A_run_...``).
    ``task``: the task highlighted (-1: none); ``dpi``: 30..600. Options out of range
    (``a``, ``b``, ``task`` for any run, ``alpha``, ``dpi``) raise ``ValueError`` (wrong
    types ``TypeError``) naming the option before anything is drawn or written; a run
    that cannot be shown raises ``ValueError`` with the widgets' messages."""
    a, b, task = _task_number("-a", a), _task_number("-b", b), _task_number("--task", task)
    _check_options(alpha, dpi)
    alpha, dpi = float(alpha), int(dpi)
    if isinstance(runs, (str, Path)):
        runs = [runs]  # one run directory, not its letters
    out = Path(out)
    paths = [Path(r) for r in runs]
    if not paths:
        raise ValueError("no run directory given; pass one or more --out directories of runs")
    names = [p.name for p in paths] if len({p.name for p in paths}) == len(paths) \
        else [str(p) for p in paths]
    shown: list[AnalysisWidget] = []

    def check(w: AnalysisWidget) -> AnalysisWidget:
        if w.errors:
            raise ValueError("; ".join(w.errors))
        shown.append(w)
        return w
    loaded: dict[str, Run] = {}
    for name, path in zip(names, paths):  # each run read once, for every widget
        try:
            loaded[name] = load_run(path)
        except ValueError as e:
            raise ValueError(f"could not open run {name!r}: {e}") from e
    _check_tasks(loaded, a, b, task)
    dash = check(ForgettingDashboard(loaded))
    if task >= 0:
        dash.state.task = task
    figures = [("forgetting.png", dash)]
    for name, run in loaded.items():  # every widget built before anything is written
        if not isinstance(run.learner, HyperCL):
            continue
        stem = "_".join(part for part in Path(name).parts if part not in ("/", "..", "."))
        try:
            tasks = run.tasks()  # rebuilt once for both explorers
        except ValueError as e:
            raise ValueError(f"could not show run {name!r}: {e}") from e
        explorer = check(EmbeddingExplorer(run, tasks, color_by=task if task >= 0 else None))
        interp = check(InterpolationExplorer(run, a=a, b=b, tasks=tasks))
        interp.state.alpha = alpha
        figures += [(f"{stem}_embedding.png", explorer), (f"{stem}_interpolation.png", interp)]
    out.mkdir(parents=True, exist_ok=True)
    written = [dash.save(out / "forgetting.png")]
    written += [save_figure(w.figure, out / name, dpi) for name, w in figures[1:]]
    for w in shown:
        w.close()
    return written

