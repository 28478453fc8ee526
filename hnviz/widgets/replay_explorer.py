"""ReplayExplorer: what HNET+TIR's replay hypernetwork remembers of each task's data."""
from __future__ import annotations

from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from traitlets import Int, TraitError, validate

from ..results.analysis import replay_model, replay_path, tir_probabilities
from ..results.plots import task_colors
from ..core.tasks import Task
from ..core.validate import check_int
from .interpolation import InterpolationState
from .view import (AnalysisWidget, check_task_arg, check_task_range, check_tasks, guarded,
                   hypercl_of, task_labels)

MAX_COLUMNS = 10  # tasks shown in the gallery (spread over the sequence when more)


class ReplayState(InterpolationState):
    """Tasks ``a``, ``b``, ``alpha`` (the replay embedding (1 - alpha) e_a + alpha e_b)
    and ``seed`` of the latent draws shared by every image."""

    seed = Int(0)

    @validate("seed")
    def _valid_seed(self, proposal: Any) -> int:
        if not 0 <= proposal["value"] < 2**31:
            raise TraitError(f"seed = {proposal['value']} must be in 0..2**31-1")
        return proposal["value"]


def colours(shape: tuple[int, ...]) -> int:
    """Colour channels a picture of inputs of ``shape`` ``(C, H, W)`` shows: 3 for RGB
    images, else 1 (grey: the first channel)."""
    return 3 if len(shape) == 3 and shape[0] == 3 else 1


def blank(rows: int, cols: int, shape: tuple[int, ...]) -> np.ndarray:
    """A grey picture of ``rows`` x ``cols`` inputs of ``shape`` (see :func:`mosaic`)."""
    h, w, c = shape[-2], shape[-1], colours(shape)
    size = (rows * (h + 1) - 1, cols * (w + 1) - 1)
    return np.full(size + ((3,) if c == 3 else ()), 0.5)


def mosaic(images: np.ndarray, shape: tuple[int, ...], rows: int) -> np.ndarray:
    """Images ``(k, D)`` (``k`` a multiple of ``rows``, column by column) as one picture
    ``(rows * H, cols * W)``, ``(rows * H, cols * W, 3)`` for RGB inputs ``(3, H, W)``
    (other inputs: their first channel; one pixel of gap in 0.5 grey)."""
    h, w = shape[-2], shape[-1]
    out = blank(rows, len(images) // rows, shape)
    for k, img in enumerate(images):
        c, r = divmod(k, rows)
        planes = img.reshape(-1, h, w)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = \
            np.clip(planes.transpose(1, 2, 0), 0, 1) if out.ndim == 3 else planes[0]
    return out


class ReplayExplorer(AnalysisWidget):
    """Left: images the replay hypernetwork generates from each task's replay embedding
    (one column per task, the same latent draws in every column), with the share the
    task-inference classifier names right. Middle: the images at the replay embedding
    (1 - alpha) e_a + alpha e_b. Right: what the classifier says of them (mean
    probability per task). ``n`` latent draws per column."""

    def __init__(self, run: Any, a: int = 0, b: int = 1, tasks: Sequence[Task] | None = None,
                 n: int = 4):
        a, b = check_task_arg("a", a), check_task_arg("b", b)
        n, tasks = check_int("n", n, 1, 16), check_tasks(tasks)  # latent draws per column
        super().__init__()
        self.state = ReplayState()
        try:
            self.learner, self.tasks = hypercl_of(run, tasks, "ReplayExplorer")
            self.replay = replay_model(self.learner)
        except Exception as e:  # noqa: BLE001
            self.report(e, "could not open the run: ")
            return
        T = self.learner.n_tasks_
        check_task_range("a", a, T)
        check_task_range("b", b, T)
        self.n, self.shape = n, tuple(self.learner.task_info_[0]["in_shape"])
        self.state.n_tasks = T
        self.state.a, self.state.b = a, b
        self._build()

    @property
    def columns(self) -> list[int]:
        """The tasks in the gallery: all, or ``MAX_COLUMNS`` spread over the sequence."""
        T = self.learner.n_tasks_
        return list(range(T)) if T <= MAX_COLUMNS else \
            sorted({int(round(v)) for v in np.linspace(0, T - 1, MAX_COLUMNS)})

    def latent(self) -> torch.Tensor:
        """The latent draws ``(n, L)`` of ``state.seed``, shared by every image."""
        L = self.replay.decoder.in_features
        return torch.randn(self.n, L, generator=torch.Generator().manual_seed(self.state.seed))

    def _build(self) -> None:
        T, rows = self.learner.n_tasks_, self.n
        fig = self.new_figure((11, 4.0))
        grid = fig.add_gridspec(1, 3, width_ratios=[max(len(self.columns), 2), 1.3, 1.6])
        self.ax_gallery, self.ax_now, self.ax_tir = (fig.add_subplot(g) for g in grid)
        side = int(np.ceil(np.sqrt(self.n)))
        self.gallery = self.ax_gallery.imshow(blank(rows, len(self.columns), self.shape),
                                              cmap="gray", vmin=0, vmax=1)
        self.now = self.ax_now.imshow(blank(side, side, self.shape), cmap="gray", vmin=0, vmax=1)
        for ax in (self.ax_gallery, self.ax_now):
            ax.set_yticks([])
        self.ax_now.set_xticks([])
        colors = task_colors(T)
        self.bars = self.ax_tir.bar(np.arange(1, T + 1), np.zeros(T), color=colors)
        self.ax_tir.axhline(100 / T, color="0.5", ls=":", lw=1, label="chance")
        self.ax_tir.set(ylim=(0, 100), xlabel="task", ylabel="task-inference probability (%)")
        self.ax_tir.legend(fontsize=8, loc="upper right")
        opts = [(s, t) for t, s in enumerate(task_labels(self.learner))]
        self.a_box = widgets.Dropdown(options=opts, value=self.state.a, description="task a")
        self.b_box = widgets.Dropdown(options=opts, value=self.state.b, description="task b")
        self.slider = widgets.FloatSlider(self.state.alpha, min=0.0, max=1.0, step=0.05,
                                          description="α", readout_format=".2f")
        self.seed_box = widgets.BoundedIntText(self.state.seed, min=0, max=2**31 - 1,
                                               description="draws")
        for box, name in ((self.a_box, "a"), (self.b_box, "b"), (self.slider, "alpha"),
                          (self.seed_box, "seed")):
            widgets.link((box, "value"), (self.state, name))
        self.state.observe(self._on_seed, "seed")
        self.state.observe(self._on_path, ["a", "b", "alpha"])
        self.layout(widgets.HBox([self.a_box, self.b_box, self.seed_box]), self.slider)
        self._update_gallery()
        self._update_path()
        fig.tight_layout()
        self.redraw()

    def _update_gallery(self) -> None:
        cols, z = self.columns, self.latent()
        images = self.replay.generate(self.replay.embeddings[cols], self.n, torch.Generator(), z)
        flat = images.reshape(-1, images.shape[-1]).numpy()  # column by column
        self.gallery.set_data(mosaic(flat, self.shape, self.n))
        h, w = self.shape[-2], self.shape[-1]
        self.named = [float((tir_probabilities(self.learner, images[i]).argmax(-1) == t).mean()
                            * 100) for i, t in enumerate(cols)]
        self.ax_gallery.set_xticks([i * (w + 1) + w / 2 - 0.5 for i in range(len(cols))])
        self.ax_gallery.set_xticklabels([f"task {t + 1}\n{p:.0f} %" for t, p in
                                         zip(cols, self.named)], fontsize=8)
        self.ax_gallery.set_title("replayed from each task's embedding\n"
                                  "(% the task-inference net names right)", fontsize=10)

    def _update_path(self) -> None:
        s = self.state
        images, probs = replay_path(self.learner, s.a, s.b, s.alpha, self.latent())
        side = int(np.ceil(np.sqrt(self.n)))
        padded = np.concatenate([images, np.full((side * side - self.n, images.shape[1]), 0.5)])
        self.now.set_data(mosaic(padded, self.shape, side))
        self.probs = probs.mean(0) * 100  # (T,)
        for bar, p in zip(self.bars, self.probs):
            bar.set_height(p)
        self.ax_now.set_title(f"α = {s.alpha:.2f} between\ntask {s.a + 1} and task {s.b + 1}",
                              fontsize=10)
        best = int(np.argmax(self.probs))
        self.ax_tir.set_title(f"named: task {best + 1} ({self.probs[best]:.0f} %)", fontsize=10)

    @guarded
    def _on_seed(self, _: Any) -> None:
        self._update_gallery()
        self._update_path()
        self.redraw()

    @guarded
    def _on_path(self, _: Any) -> None:
        self._update_path()
        self.redraw()
