"""Interactive analysis widgets for Jupyter (ipywidgets + matplotlib).

Each widget is a small ``state`` (a traitlets ``HasTraits``: set its traits from code or
through the controls), pure compute from :mod:`hnviz.results.analysis`, and a view that creates
its matplotlib artists once and updates their data. ``figure`` is the matplotlib figure;
errors in callbacks (and runs that cannot be loaded) appear in ``output``, the widget's
message area, and in ``errors``. Bad constructor arguments (a task out of the run's range,
text or a bool where a number belongs, NaN) raise a ``ValueError``/``TypeError`` naming
the argument. A widget displays itself when it ends a cell.

- :class:`EmbeddingExplorer` — landscape of the embedding plane and the net generated at
  any point of it.
- :class:`InterpolationExplorer` — walk from task a's embedding to task b's.
- :class:`ForgettingDashboard` — matrix, forgetting curves and metrics of one or more runs.
- :class:`LiveTraining` — a callback that plots loss and matrix while a learner trains.
- :class:`ForgettingLab` — a classroom demo: pick beta, train, compare.
- :class:`MethodsLab` — fine-tuning, EWC and the hypernetwork learning the same tasks,
  side by side and live.
- :class:`ReplayExplorer` — HNET+TIR: the images each task's replay embedding generates,
  along a path between two of them, and what the task-inference net makes of them.

:func:`set_display` sets the widest figure (790 px: a 960 px notebook column or a 1280 px
projector at 130 % zoom) and a ``font_scale`` for a projector, for widgets made after it.

Widgets take a trained learner, a :class:`hnviz.store.runs.Run` or a run directory. Under
``%matplotlib widget`` (ipympl) figures are interactive canvases (click the embedding
plane to pick a point); under any other backend they are PNG images redrawn on change.
"""
from .dashboard import DashboardState, ForgettingDashboard
from .embedding import EmbeddingExplorer, EmbeddingState
from .export import save_figures
from .interpolation import InterpolationExplorer, InterpolationState
from .lab import ForgettingLab, LabSession, LabState
from .live import LiveState, LiveTraining
from .methods_lab import MethodsLab, MethodsSession
from .replay_explorer import ReplayExplorer, ReplayState
from .view import projector, set_display

__all__ = ["DashboardState", "EmbeddingExplorer", "EmbeddingState", "ForgettingDashboard",
           "ForgettingLab", "InterpolationExplorer", "InterpolationState", "LabSession",
           "LabState", "LiveState", "LiveTraining", "MethodsLab", "MethodsSession",
           "ReplayExplorer", "ReplayState", "projector", "save_figures", "set_display"]
