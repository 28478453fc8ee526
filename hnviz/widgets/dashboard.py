"""ForgettingDashboard: matrix, forgetting curves and metrics of one or more runs."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import ipywidgets as widgets
import numpy as np
import traitlets
from matplotlib.collections import LineCollection
from matplotlib.ticker import MaxNLocator
from traitlets import HasTraits, Int, TraitError, Tuple, Unicode, validate

from ..core import metrics
from ..results.analysis import forgetting_curves
from ..learners.methods import DEFAULT_METHOD
from ..learners.protocol import ExplorableModel, HypernetModel
from ..results.plots import task_colors
from ..store.runs import Run
from ..core.stability import curves, earlier_mean, records, task_starts
from .view import (AnalysisWidget, chance_lines, check_save_dir, check_task_trait, guarded,
                   html_table, integer_ticks, learner_of, metric_label, metric_norm, save_figure)


TRANSFER = {"fwt": "FWT", "transfer_mean": "vs scratch"}  # metrics key -> column


def run_chance(task_info: list[dict[str, Any]]) -> float | None:
    """The accuracy (%) of guessing on a run's tasks (its ``task_info_``); None for
    regression. In cl3 the shared head guesses among the classes of the tasks the run
    has learned (all of the sequence's once it is finished)."""
    if not task_info or task_info[0].get("metric") != "accuracy":
        return None
    first = task_info[0]
    classes = (max(i.get("class_offset", 0) + i["n_outputs"] for i in task_info)
               if first.get("scenario") == "cl3" else first["n_outputs"])
    return 100 / classes


def accuracy_floor(values: np.ndarray) -> float:
    """The lower end of an accuracy axis: 10 points below the lowest value, in tens."""
    return max(0.0, 10 * float(np.floor(np.nanmin(values) / 10)) - 10)


# ------------------------------------------------------------ ForgettingDashboard
class DashboardState(HasTraits):
    """``run``: whose matrix is shown; ``selected``: runs drawn in the curves; ``task``:
    the highlighted task (-1: none)."""

    run = Unicode("")
    selected = Tuple()
    task = Int(-1)
    run_names = Tuple()
    n_tasks = Int(0)

    @validate("run")
    def _valid_run(self, proposal: Any) -> str:
        if proposal["value"] not in self.run_names:
            raise TraitError(f"unknown run {proposal['value']!r}; the dashboard has "
                             f"{', '.join(self.run_names)}")
        return proposal["value"]

    @validate("selected")
    def _valid_selected(self, proposal: Any) -> tuple:
        bad = [r for r in proposal["value"] if r not in self.run_names]
        if bad:
            raise TraitError(f"unknown run(s) {bad}; the dashboard has {', '.join(self.run_names)}")
        return tuple(proposal["value"])

    @validate("task")
    def _valid_task(self, proposal: Any) -> int:
        return check_task_trait(proposal["value"], self.n_tasks, "task", allow=-1)


class ForgettingDashboard(AnalysisWidget):
    """Compare runs: the metric matrix R of one run, forgetting curves (every task of one
    run; mean and 10–90 % band of each selected run), a summary table, a task highlight,
    and a button that saves the figure (PNG or SVG). Runs trained with ``eval_every``
    also get continuous curves below: each task at every recorded step (one run) or the
    mean of the earlier tasks (each selected run), where a stability gap shows.

    ``runs``: one run (learner, :class:`Run` or directory) or a mapping name -> run.
    Runs that cannot be loaded are reported in ``output``; the others are shown.
    """

    def __init__(self, runs: Any, save_dir: str | Path = "."):
        save_dir = check_save_dir(save_dir)
        super().__init__()
        self.state = DashboardState()
        self.save_dir = save_dir
        items = runs.items() if isinstance(runs, Mapping) else [(self._name(runs), runs)]
        self.matrices: dict[str, np.ndarray] = {}
        self.continual: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # curves() per run
        self.transfer: dict[str, dict[str, float | None]] = {}  # FWT and vs scratch per run
        self.metric = ""
        self.chances: dict[str, float] = {}  # accuracy of guessing per classification run
        for name, source in items:
            try:
                learner, run = learner_of(source)
                if self.metric and learner.metric_ != self.metric:
                    raise ValueError(f"its metric is {learner.metric_}, the other runs' is "
                                     f"{self.metric}; compare runs of one kind")
                self.metric = learner.metric_
                chance = run_chance(learner.task_info_)
                if chance is not None:
                    self.chances[str(name)] = chance
                R = learner.checked_matrix() if isinstance(learner, ExplorableModel) \
                    else learner.matrix_
                self.matrices[str(name)] = np.asarray(R, dtype=float)
                if records(learner.history_):  # trained with eval_every
                    self.continual[str(name)] = curves(learner.history_)
                figures = run.metrics if run is not None else learner.summary()
                self.transfer[str(name)] = {k: figures.get(k) for k in TRANSFER}
            except Exception as e:  # noqa: BLE001
                self.report(e, f"could not open run {name!r}: ")
        if not self.matrices:
            self.report("no run to show")
            return
        names = tuple(self.matrices)
        self.state.run_names = names
        self.state.n_tasks = max(len(R) for R in self.matrices.values())
        self.state.run, self.state.selected = names[0], names
        self._build()

    @staticmethod
    def _name(source: Any) -> str:
        if isinstance(source, (str, Path)):
            return Path(source).name
        if isinstance(source, Run):
            return source.path.name
        if isinstance(source, ExplorableModel):
            source = source.model
        if isinstance(source, HypernetModel) and not hasattr(source, "config"):
            return type(source).__name__  # a model of the protocol: its class
        return getattr(getattr(source, "config", None), "method", DEFAULT_METHOD)

    def _build(self) -> None:
        fig = self.new_figure((9.4, 7.6 if self.continual else 4.4))
        grid = fig.add_gridspec(2 if self.continual else 1, 2, width_ratios=[1, 1.35])
        self.ax_R, self.ax_curves, self.ax_ce = (fig.add_subplot(grid[0, 0]), fig.add_subplot(
            grid[0, 1]), fig.add_subplot(grid[1, :]) if self.continual else None)
        cmap = "viridis" if self.metric == "accuracy" else "viridis_r"
        self.image = self.ax_R.imshow(np.zeros((2, 2)), cmap=cmap, interpolation="nearest",
                                      norm=metric_norm(self.metric, self._all_values()))
        fig.colorbar(self.image, ax=self.ax_R, label=metric_label(self.metric))
        self.ax_R.set(xlabel="evaluated task", ylabel="after training task")
        self.R_mark, ax = self.ax_R.axvline(0, color="r", lw=1.5, visible=False), self.ax_curves
        self.artists: dict[str, dict[str, Any]] = {}
        for i, (name, R) in enumerate(self.matrices.items()):
            fc, T, color = forgetting_curves(R), len(R), f"C{i % 10}"
            x = np.arange(1, T + 1)
            tasks = LineCollection([np.column_stack([x, c]) for c in fc["curves"]],
                                   cmap="viridis", linewidths=0.8 if T > 10 else 1.5, alpha=0.55)
            tasks.set_array(np.arange(1, T + 1))
            self.artists[name] = {
                "tasks": ax.add_collection(tasks),
                "band": ax.fill_between(x, fc["lo"], fc["hi"], color=color, alpha=0.15),
                "mean": ax.plot(x, fc["mean"], color=color, lw=2.5)[0],
                "highlight": ax.plot([], [], color=color, lw=2, ls="--", marker="o", ms=3)[0],
            }
            if name in self.continual:
                self.artists[name].update(self._continual_artists(name, color))
        self._set_ranges()
        integer_ticks(self.ax_R)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        names = list(self.matrices)
        self.run_box = widgets.Dropdown(options=names, value=self.state.run, description="matrix of")
        self.select = widgets.SelectMultiple(options=names, value=self.state.selected,
                                             description="curves", rows=min(len(names), 4))
        self.task_slider = widgets.IntSlider(0, min=0, max=self.state.n_tasks,
                                             description="highlight task",
                                             style={"description_width": "initial"})
        for box, name in ((self.run_box, "run"), (self.select, "selected")):
            widgets.link((box, "value"), (self.state, name))
        # the slider counts tasks from 1 (0: none); the state is 0-based (-1: none)
        traitlets.link((self.task_slider, "value"), (self.state, "task"),
                       transform=(lambda v: v - 1, lambda t: t + 1))
        self.table, self.filename = widgets.HTML(), widgets.Text("forgetting", description="file")
        self.fmt = widgets.ToggleButtons(options=["png", "svg"], value="png")
        self.fmt.style.button_width = "50px"
        self.save_button = widgets.Button(description="save figure", icon="save")
        self.save_button.on_click(self._on_save)
        self.state.observe(self._on_change, ["run", "selected", "task"])
        self.layout(widgets.HBox([self.run_box, self.select, self.task_slider]),
                   below=[self.table, widgets.HBox([self.filename, self.fmt, self.save_button])])
        self._update()
        fig.tight_layout()
        self.redraw()

    def _set_ranges(self) -> None:
        """Fixed y ranges (accuracy: from 10 points below the lowest value; MSE: the
        runs' range on a log scale) and chance marked on accuracy axes."""
        ax = self.ax_curves
        ax.set(xlabel="tasks trained", ylabel=metric_label(self.metric),
               xlim=(0.5, self.state.n_tasks + 0.5))
        if self.metric == "accuracy":  # from 10 points below the lowest value, in tens
            ax.set_ylim(accuracy_floor(self._all_values()), 101)
            if self.ax_ce is not None:  # fixed too: a run's dips set it, not the selection
                self.ax_ce.set_ylim(accuracy_floor(np.concatenate(
                    [y.ravel() for _, y in self.continual.values()])), 101)
        else:
            ax.set_yscale("log")
            norm = metric_norm(self.metric, self._all_values())
            ax.set_ylim(norm.vmin, norm.vmax)
        for axes in (ax, self.ax_ce):
            if axes is not None and self.chances:
                chance_lines(axes, self.chances.values())

    def _continual_artists(self, name: str, color: str) -> dict[str, Any]:
        """The lower panel's artists of run ``name``: every task's curve, the mean of the
        earlier tasks, a highlighted task and the task boundaries."""
        ax, (x, y) = self.ax_ce, self.continual[name]
        T = y.shape[1]
        tasks = LineCollection([np.column_stack([x, y[:, j]]) for j in range(T)],
                               colors=task_colors(T), linewidths=0.8 if T > 10 else 1.2,
                               alpha=0.7)
        ax.set(xlabel="training step (all tasks)", ylabel=metric_label(self.metric),
               title="while training: every task at every recorded step (dotted: a task "
                     "starts)")
        return {"ce_tasks": ax.add_collection(tasks),
                "ce_mean": ax.plot(x, earlier_mean(x, y), color=color, lw=2.2)[0],
                "ce_highlight": ax.plot([], [], color=color, lw=2, ls="--")[0],
                "ce_bounds": [ax.axvline(b, color="0.75", lw=0.8, ls=":")
                              for b in task_starts(x)]}

    def _update_continual(self) -> None:
        st, handles = self.state, []
        single = len(st.selected) == 1
        for name, art in self.artists.items():
            if "ce_mean" not in art:
                continue
            shown = name in st.selected
            x, y = self.continual[name]
            art["ce_tasks"].set_visible(shown and single)
            art["ce_mean"].set_visible(shown)
            art["ce_mean"].set_label(f"{name}: mean of the earlier tasks")
            for b in art["ce_bounds"]:
                b.set_visible(shown)
            has_task = 0 <= st.task < y.shape[1]
            art["ce_highlight"].set_visible(shown and has_task)
            if has_task:
                art["ce_highlight"].set_data(x, y[:, st.task])
                art["ce_highlight"].set_label(f"{name}: task {st.task + 1}")
            if shown:
                handles += [art["ce_mean"]] + ([art["ce_highlight"]] if has_task else [])
        self.ax_ce.relim(visible_only=True)
        self.ax_ce.autoscale_view(scaley=self.metric != "accuracy")
        if handles:
            self.ax_ce.legend(handles=handles, fontsize=8, loc="lower left", framealpha=0.8)

    def _all_values(self) -> np.ndarray:
        return np.concatenate([R.ravel() for R in self.matrices.values()])

    def summary(self) -> list[dict[str, Any]]:
        """One row per run: name, tasks, final average, forgetting, BWT, forward transfer
        (FWT) and transfer vs from scratch where a run has them (and the highlighted
        task's final metric)."""
        rows = []
        shown = [k for k in TRANSFER if any(t[k] is not None for t in self.transfer.values())]
        for name, R in self.matrices.items():
            s = metrics.summary(R, self.metric)
            row = {"run": name, "tasks": len(R), "final average": s["average_final"],
                   "forgetting": s["forgetting"], "BWT": s["bwt"],
                   **{TRANSFER[k]: self.transfer[name][k] for k in shown}}
            if self.state.task >= 0:
                t = self.state.task
                row[f"task {t + 1} final"] = float(R[-1, t]) if t < len(R) else None
            rows.append(row)
        return rows

    def _update(self) -> None:
        st = self.state
        R = self.matrices[st.run]
        T = len(R)
        self.image.set_data(np.ma.masked_invalid(R))
        self.image.set_extent((0.5, T + 0.5, T + 0.5, 0.5))
        self.ax_R.set(xlim=(0.5, T + 0.5), ylim=(T + 0.5, 0.5), title=f"{self.metric} matrix R: {st.run}")
        self.R_mark.set_visible(0 <= st.task < T)
        self.R_mark.set_xdata([st.task + 1] * 2)
        single = len(st.selected) == 1
        handles = []
        for name, art in self.artists.items():
            shown = name in st.selected
            art["tasks"].set_visible(shown and single)
            art["band"].set_visible(shown)
            art["mean"].set_visible(shown)
            art["mean"].set_label(f"{name}: mean" if single else name)
            art["band"].set_label(f"{name}: 10–90 %")
            Rn = self.matrices[name]
            has_task = 0 <= st.task < len(Rn)
            art["highlight"].set_visible(shown and has_task)
            if has_task:
                x = np.arange(1, len(Rn) + 1)
                art["highlight"].set_data(x, Rn[:, st.task])
                art["highlight"].set_label(f"{name}: task {st.task + 1}")
            if shown:
                handles += [art["mean"]] + ([art["band"]] if single else []) \
                    + ([art["highlight"]] if has_task else [])
        self.ax_curves.legend(handles=handles, fontsize=9, loc="lower left", framealpha=0.8,
                              ncol=1 if single or len(handles) <= 4 else 2)
        what = ("every task (colour: task 1 dark … last yellow)" if single
                else "mean over tasks seen, band 10–90 %")
        self.ax_curves.set_title(f"forgetting curves: {what}", fontsize=10)
        if self.ax_ce is not None:
            self._update_continual()
        self.table.value = html_table(self.summary())

    @guarded
    def _on_change(self, _: Any) -> None:
        self._update()
        self.redraw()

    def save(self, path: str | Path) -> Path:
        """Save the current figure (format from the suffix: .png or .svg), atomically."""
        path = Path(path)
        if path.suffix.lower() not in (".png", ".svg"):
            raise ValueError(f"cannot save {path.name!r}: use a .png or .svg file name")
        save_figure(self.figure, path, dpi=150)
        return path

    @guarded
    def _on_save(self, _: Any) -> None:
        name = self.filename.value.strip() or "forgetting"
        path = self.save(self.save_dir / f"{Path(name).stem}.{self.fmt.value}")
        self.output.append_stdout(f"saved {path.resolve()}\n")


