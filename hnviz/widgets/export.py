"""Every widget's figure as PNG for run directories (``python -m hnviz figures``)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..learner import HyperCL
from ..runs import Run, load_run
from .dashboard import ForgettingDashboard
from .embedding import EmbeddingExplorer
from .interpolation import InterpolationExplorer
from .view import AnalysisWidget, save_figure


def save_figures(runs: Sequence[str | Path], out: str | Path, a: int = 0, b: int = 1,
                 alpha: float = 0.5, task: int = -1, dpi: int = 110) -> list[Path]:
    """Write each widget's figure as PNG for run directories (``python -m hnviz figures``):
    ``forgetting.png`` (the dashboard over all runs) and, per hypernetwork run,
    ``<run>_embedding.png`` and ``<run>_interpolation.png`` (tasks ``a`` -> ``b`` at
    ``alpha``; runs of the same name are told apart by their paths, ``A_run_...``). Raises
    ``ValueError`` with the widgets' messages if a run cannot be shown."""
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
    out.mkdir(parents=True, exist_ok=True)
    dash = check(ForgettingDashboard(loaded))
    if task >= 0:
        dash.state.task = task
    written = [dash.save(out / "forgetting.png")]
    for name, run in loaded.items():
        if not isinstance(run.learner, HyperCL):
            continue
        stem = "_".join(part for part in Path(name).parts if part not in ("/", "..", "."))
        tasks = run.tasks()  # rebuilt once for both explorers
        explorer = check(EmbeddingExplorer(run, tasks, color_by=task if task >= 0 else None))
        interp = check(InterpolationExplorer(run, a=a, b=b, tasks=tasks))
        interp.state.alpha = alpha
        for suffix, w in (("embedding", explorer), ("interpolation", interp)):
            written.append(save_figure(w.figure, out / f"{stem}_{suffix}.png", dpi))
    for w in shown:
        w.close()
    return written

