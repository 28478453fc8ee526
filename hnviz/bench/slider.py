"""``python -m hnviz bench-widgets``: how fast a slider step updates a widget's figure.

The toy interpolation figure (the InterpolationExplorer on the paper's toy regression):
each step of alpha computes the generated net and updates the figure's pixels for the
PNG image widget (Agg drawing and PNG encoding; no browser). Blitting (only the marker,
the net's line, its title and the legends above them, drawn over a saved background)
against drawing the whole figure, in the same run, interleaved, median of the steps.
"""
from __future__ import annotations

import time

import numpy as np


def slider_latency(steps: int = 40, n_steps: int = 300) -> dict[str, float]:
    """Median milliseconds per alpha step with and without blitting (``n_steps``: the
    toy learner's training steps per task); prints them and their ratio."""
    from ..data.benchmarks import toy_regression
    from ..learners.config import HyperCLConfig
    from ..learners.hypercl import HyperCL
    from ..widgets import InterpolationExplorer

    cfg = HyperCLConfig.preset("toy_regression", n_steps=n_steps)
    learner = HyperCL(cfg, random_state=0, progress=False).fit(toy_regression())
    widget = InterpolationExplorer(learner, a=0, b=2)
    times: dict[bool, list[float]] = {True: [], False: []}
    alphas = np.linspace(0.01, 0.99, steps)
    for i, alpha in enumerate(alphas):
        for blit in ((True, False) if i % 2 else (False, True)):
            widget.blit = blit
            widget.state.alpha = float(alpha) - 0.005  # untimed: the mode's first step
            start = time.perf_counter()
            widget.state.alpha = float(alpha)
            times[blit].append(time.perf_counter() - start)
    out = {"blit_ms": 1e3 * float(np.median(times[True])),
           "full_ms": 1e3 * float(np.median(times[False]))}
    out["speedup"] = out["full_ms"] / out["blit_ms"]
    print(f"toy interpolation figure, {steps} alpha steps each, median: "
          f"blitted {out['blit_ms']:.1f} ms, whole figure {out['full_ms']:.1f} ms "
          f"({out['speedup']:.1f}x)")
    return out
