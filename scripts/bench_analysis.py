"""Speed of the embedding-space analysis and widgets on a 100-task PermutedDigits run
(issue 4), and a PNG of each widget for looking at.

Usage: python scripts/bench_analysis.py [--tasks 100] [--steps 30] [--resolution 100]
                                        [--cache DIR] [--figures DIR]

Trains a PermutedDigits run with the CPU preset's architecture (``--steps`` per task;
timing does not depend on how well it trained) and a fine-tuning baseline, saves both
under ``--cache`` (reused when present) and loads them back with ``hnviz.load_run``, then
prints the median time of: one alpha-slider update of the InterpolationExplorer (the net
at e(alpha) scored on every task's test set, the artists updated, and separately the PNG
render of the non-ipympl view), a whole interpolation path, and building a
resolution x resolution landscape of one task in the EmbeddingExplorer.
"""
import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import hnviz  # noqa: E402
from hnviz.widgets import (EmbeddingExplorer, ForgettingDashboard,  # noqa: E402
                           InterpolationExplorer, LiveTraining)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def trained_runs(n_tasks: int, steps: int, cache: Path) -> dict[str, Path]:
    """HNET and fine-tuning runs on PermutedDigits-n_tasks (trained once, then cached)."""
    runs = {"HNET": cache / f"pdigits{n_tasks}_s{steps}_hnet",
            "fine-tuning": cache / f"pdigits{n_tasks}_s{steps}_finetune"}
    if all((p / "run.json").is_file() for p in runs.values()):
        return runs
    tasks = hnviz.permuted_digits(n_tasks)
    start = time.perf_counter()
    hnet = hnviz.HyperCL(hnviz.HyperCLConfig.preset("permuted_digits", n_steps=steps),
                         progress=False).fit(tasks)
    hnviz.save_run(hnet, runs["HNET"], benchmark=tasks.spec)
    cfg = hnviz.BaselineConfig.preset("permuted_digits", method="finetune", n_steps=steps)
    base = hnviz.BaselineCL(cfg, progress=False).fit(tasks)
    hnviz.save_run(base, runs["fine-tuning"], benchmark=tasks.spec)
    print(f"trained {n_tasks} tasks x {steps} steps (HNET and fine-tuning) in "
          f"{time.perf_counter() - start:.1f}s")
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--resolution", type=int, default=100)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hnviz-bench")
    ap.add_argument("--figures", type=Path, default=None, help="save a PNG of each widget here")
    args = ap.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    runs = trained_runs(args.tasks, args.steps, args.cache)
    run = hnviz.load_run(runs["HNET"])  # from disk: no training code runs below

    interp = InterpolationExplorer(run, a=0, b=1)
    alphas = iter(np.linspace(-0.4, 1.4, 1000))

    def update_only():
        interp.state.alpha = next(alphas)  # compute + artists + PNG render
    full = median_time(update_only, 9)
    render = median_time(interp.redraw, 9)
    path = median_time(lambda: interp._update_path(), 3)
    print(f"alpha-slider update, {args.tasks} tasks' test sets: {(full - render) * 1000:.1f} ms "
          f"(compute + artists); PNG render of the image view {render * 1000:.1f} ms; "
          f"total {full * 1000:.1f} ms")
    print(f"interpolation path ({len(interp.path['alphas'])} points x {args.tasks} tasks): "
          f"{path:.2f} s")

    explorer = EmbeddingExplorer(run, resolution=args.resolution, n_samples=200)
    tasks_iter = iter(range(1, args.tasks))  # it opens on task 0

    def new_landscape():
        explorer.state.color_by = next(tasks_iter)  # not cached: a fresh landscape each time
    land = median_time(new_landscape, 3)
    print(f"landscape {args.resolution}x{args.resolution} of one task (200 test points), "
          f"in the EmbeddingExplorer incl. render: {land:.2f} s")
    if explorer.errors or interp.errors:
        raise SystemExit(f"widget errors: {explorer.errors + interp.errors}")

    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        explorer.state.color_by = 3
        explorer.state.point = tuple(0.5 * (explorer.points[3] + explorer.points[4]))
        interp.state.a, interp.state.b, interp.state.alpha = 10, 90, 0.3
        dash = ForgettingDashboard({name: p for name, p in runs.items()})
        dash.state.task = 4
        single = ForgettingDashboard(runs["HNET"])
        single.state.task = 49
        live = LiveTraining(min_interval=0.5)
        toy = hnviz.toy_regression()
        toy_learner = hnviz.HyperCL("toy_regression", progress=False).fit(toy, callbacks=[live])
        toy_explorer = EmbeddingExplorer(toy_learner)
        toy_explorer.state.color_by = 2
        toy_interp = InterpolationExplorer(toy_learner, 0, 2)
        toy_interp.state.alpha = 0.5
        winner = EmbeddingExplorer(run, resolution=30, n_samples=50, color_by=-1)
        figures = {"embedding_explorer_100": explorer, "embedding_winner_100": winner, "interpolation_100": interp,
                   "dashboard_compare_100": dash, "dashboard_single_100": single,
                   "live_training_toy": live, "embedding_explorer_toy": toy_explorer,
                   "interpolation_toy": toy_interp}
        for name, w in figures.items():
            w.figure.savefig(args.figures / f"{name}.png", dpi=110)
        print(f"saved {len(figures)} figures to {args.figures}")


if __name__ == "__main__":
    main()
