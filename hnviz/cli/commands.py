"""What each command of ``python -m hnviz`` does (:mod:`hnviz.cli.parser` parses the arguments).

Plotting, widgets, Ray and the benchmark are imported by the commands that use them, so
that ``train`` starts without them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from ..experiments.compare import MAX_SEED, MAX_SEEDS, compare, markdown_table
from ..learners.methods import DEFAULT_METHOD, check_methods, default_methods
from ..data.scenarios import check_scenario
from ..store.checkpoint import check_every
from ..learners.config import HyperCLConfig
from ..experiments.experiment import build_benchmark, check_same_run, preset_for, train_into
from ..io.outdir import check_out, claim_out, folder_kind
from ..learners.hypercl import HyperCL
from ..io.safeio import atomic_write
from ..results.tables import summary_line


def train_run(benchmark: str, out: str | Path, n_tasks: int | None = None, seed: int = 0,
              progress: bool = True, fast: bool = False, preset: str | None = None,
              resume: bool = False, checkpoint_every: int | None = None,
              overwrite: bool = False, **changes: Any) -> tuple[HyperCL, dict]:
    """Train ``preset`` (default: the benchmark's; with config ``changes``) and save the
    run to ``out``. While it trains, ``out/checkpoints/`` holds a checkpoint after every
    task (and every ``checkpoint_every`` steps); they are removed once the run is saved.
    ``resume``: continue from the newest checkpoint in ``out`` (the arguments must be the
    run's own; the run's checkpoint interval is kept). A finished run in ``out`` is
    refused unless ``overwrite``."""
    out = check_out(out, command="train")
    if resume and overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite replaces it; "
                         "pass one of them")
    if resume and not out.is_dir():
        raise ValueError(f"--resume: {out} does not exist; drop --resume to start a new run")
    check_every(checkpoint_every)  # before anything is written
    preset = preset_for(benchmark, fast, preset)
    config = HyperCLConfig.preset(preset, **{k: v for k, v in changes.items() if v is not None})
    tasks = build_benchmark(benchmark, n_tasks, seed, fast)
    fix = "pass the run's own arguments"

    def check(ck: Any) -> None:
        if ck is None:
            print(f"hnviz: no checkpoint in {out}; training from the start", file=sys.stderr)
            return
        check_same_run(ck.where.path, ck.info["config"], ck.info.get("benchmark"),
                       ck.info["random_state"], config, tasks.spec, seed, f"--resume: {fix}")
        print(f"hnviz: resuming from the checkpoint {ck.where.describe()} "
              f"({ck.where.path.name})", file=sys.stderr)

    learner = HyperCL(config, random_state=seed, progress=progress)
    done = train_into(learner, tasks, out, checkpoint_every=checkpoint_every, resume=resume,
                      reuse_complete=resume, overwrite=overwrite, on_resume=check)
    if done.how == "complete":
        check_same_run(Path(out) / "run.json", done.learner.config.to_dict(), done.saved_spec,
                       done.learner.random_state, config, tasks.spec, seed, f"--resume: {fix}")
        if not isinstance(done.learner, HyperCL):
            raise ValueError(f"{out} holds a baseline run; --resume continues hypernetwork runs")
        print(f"hnviz: {out} is already complete; nothing to resume", file=sys.stderr)
    return done.learner, {**done.learner.summary(), "wall_seconds": done.wall_seconds,
                          "peak_rss_mib": done.peak_rss_mib}


def train(args: argparse.Namespace) -> None:
    """``python -m hnviz train``: train, save, print the summary line and peak memory."""
    learner, summary = train_run(args.benchmark, args.out, args.tasks, args.seed,
                                 not args.no_progress, args.fast, args.preset, args.resume,
                                 args.checkpoint_every, args.overwrite, beta=args.beta,
                                 n_steps=args.steps, eval_every=args.eval_every,
                                 reg_subset=args.reg_subset)
    print(f"{args.benchmark:<22} " + summary_line(summary))
    print(f"compression ratio {learner.hnet_.compression_ratio(learner.n_tasks_):.3f} "
          f"(hypernetwork weights and {learner.n_tasks_} task embeddings / target weights)")
    if summary.get("stability_gap") is not None:
        print(f"stability gap {summary['stability_gap']:.3g} (worst drop "
              f"{summary['worst_drop']:.3g}, recovered {summary['gap_recovery']:.3g} by the "
              "task ends; positive = worse)")
    if summary["peak_rss_mib"] is not None:
        print(f"peak memory {summary['peak_rss_mib']:.0f} MiB (resident, while it trained)")
    print(f"run written to {args.out}/ (metrics in run.json)")


def _save_png(draw: Any, path: Path, figsize: tuple[float, float] = (6, 4.5),
              panels: int = 1) -> None:
    """Draw on a new figure's ``panels`` axes with ``draw(*axes)`` and write it as PNG."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=figsize, squeeze=False)
    draw(*axes[0])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def demo(args: argparse.Namespace) -> None:
    """``python -m hnviz demo``: train the toy and PermutedDigits-10, print a table and
    write PNG figures."""
    import matplotlib

    matplotlib.use("Agg")
    from ..results.plots import plot_embeddings, plot_metric_matrix, plot_toy_fits
    from ..widgets import save_figures

    out, progress = claim_out(args.out, "demo"), not args.no_progress
    header = (f"{'run':<22} {'metric':>8} {'during':>9} {'final':>9} {'BWT':>10} "
              f"{'forgetting':>10}    time")
    rows = []
    for name, kw in (("toy_regression", {}), ("permuted_digits", {"n_tasks": 10})):
        run_dir = out / name
        learner, summary = train_run(name, run_dir, progress=progress, overwrite=True, **kw)
        _save_png(lambda ax: plot_metric_matrix(learner.matrix_, summary["metric"], ax),
                  run_dir / "metric_matrix.png")
        _save_png(lambda ax: plot_embeddings(learner, ax), run_dir / "embeddings.png")
        if summary["metric"] == "mse":  # the toy: its fits, one panel per task
            tasks = build_benchmark(name)
            _save_png(lambda ax: plot_toy_fits(learner, tasks, ax), run_dir / "toy_fits.png")
        save_figures([run_dir], run_dir)  # the analysis widgets' figures
        rows.append(f"{name:<22} " + summary_line(summary))
    print(header, *rows, sep="\n")
    print(f"runs and figures written to {out}/")


def notebooks(args: argparse.Namespace) -> None:
    """``python -m hnviz notebooks DEST``: copy the six notebooks (and the figures they
    show) into DEST and say how to open them."""
    from ..io.bundle import copy_notebooks

    paths = copy_notebooks(args.dest, overwrite=args.overwrite)
    print(f"copied {len(paths)} notebooks to {args.dest}/ (with images/ and examples/): "
          + ", ".join(p.stem for p in paths))
    where = shlex.quote(args.dest if not args.dest.startswith("-") else f"./{args.dest}")
    print(f"open them: jupyter lab {where}   (HNVIZ_FAST=1 jupyter lab {where}: the short "
          "settings, seconds each)")
    print("06 needs Ray (the extra hnviz[sweep]), the end of 02 hypnettorch (hnviz[bench]); "
          "the full setting of 03 needs Fashion-MNIST (its first cells say how to get it)")


def compare_command(args: argparse.Namespace) -> None:
    """``python -m hnviz compare``: train (or read back what an earlier, interrupted
    call finished), then print the Markdown table."""
    if args.methods is None:
        methods = default_methods(check_scenario(args.scenario))
    else:
        methods = check_methods([m.strip() for m in args.methods.split(",") if m.strip()])
    check_out(args.out, command="compare")
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise ValueError(f"--seeds {args.seeds}: compare 1 to {MAX_SEEDS} seeds, e.g. --seeds 3")
    if not 0 <= args.first_seed <= MAX_SEED - args.seeds + 1:
        raise ValueError(f"--first-seed {args.first_seed}: seeds are >= 0 and <= {MAX_SEED} "
                         f"(here K..K+{args.seeds - 1}), e.g. --first-seed 2")
    preset = preset_for(args.benchmark, args.fast, args.preset)
    tasks = build_benchmark(args.benchmark, args.tasks, fast=args.fast)

    def report(method: str, seed: int, row: dict) -> None:
        final = (f"MSE {row['average_final']:.4g}" if tasks.metric == "mse"
                 else f"{row['average_final']:.2f}%")
        peak = "" if row["peak_rss_mib"] is None else f"  peak {row['peak_rss_mib']:.0f} MiB"
        print(f"{method:>11} seed {seed}: final {final}  forgetting {row['forgetting']:.3g}  "
              f"{row['wall_seconds']:.1f}s{peak}", flush=True)

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    summary = compare(tasks, preset, args.scenario, methods, seeds, args.out,
                      not args.no_progress, on_run=report, overwrite=args.overwrite,
                      scratch=args.scratch, n_steps=args.steps, eval_every=args.eval_every)
    print(markdown_table(summary))
    print(f"runs, summary.json and table.md written to {args.out}/")


def figures(args: argparse.Namespace) -> None:
    """``python -m hnviz figures``: each widget's figure as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from ..widgets import save_figures

    check_out(args.out)
    if not math.isfinite(args.alpha):
        raise ValueError(f"--alpha {args.alpha} must be a finite number, e.g. --alpha 0.5")
    for run in args.runs:
        if os.path.isdir(run) and folder_kind(Path(run)) == "compare":
            raise ValueError(f"{run} is a comparison; pass its runs, e.g. "
                             f"{os.path.join(run, DEFAULT_METHOD, 'seed0')}")
    for path in save_figures(args.runs, args.out, args.a, args.b, args.alpha, args.task):
        print(path)


def check_counts(args: argparse.Namespace, **bounds: tuple[int, int]) -> None:
    """Each option ``name`` of ``args`` (when given) is an integer within ``bounds[name]``,
    else a ``ValueError`` naming the flag, its range and the value."""
    for name, (lo, hi) in bounds.items():
        value = getattr(args, name)
        if value is not None and not lo <= value <= hi:
            flag = f"--{name.replace('_', '-')}"
            raise ValueError(f"{flag} {value} must be from {lo} to {hi:,}, e.g. {flag} {lo}")


def bench(args: argparse.Namespace) -> None:
    """``python -m hnviz bench``: the step-time table (and JSON rows)."""
    from ..bench.step import run_bench

    check_counts(args, threads=(1, 1024), steps=(1, 100_000))

    try:
        tasks = [int(t) for t in args.tasks.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--tasks must be comma-separated integers, got {args.tasks!r}") from None
    if not tasks or min(tasks) < 0 or max(tasks) > 1000:
        raise ValueError(f"--tasks must be integers from 0 to 1000, got {args.tasks!r}")
    rows = run_bench(args.config, tasks, not args.no_reference, args.threads, args.steps,
                     reg_subset=args.reg_subset, device=args.device)
    if args.json:
        atomic_write(Path(args.json), json.dumps({"config": args.config, "rows": rows}, indent=1))


def bench_checkpoints(args: argparse.Namespace) -> None:
    """``python -m hnviz bench-checkpoints``: what checkpoints cost."""
    from ..bench.checkpoints import checkpoint_overhead

    check_counts(args, every=(1, 1_000_000), repeats=(1, 100))
    if args.dir is not None and not os.path.isdir(args.dir):
        raise ValueError(f"--dir {args.dir} is not a directory; name an existing one")

    checkpoint_overhead(args.tasks, args.every, args.repeats, args.steps, args.dir)


def bench_eval(args: argparse.Namespace) -> None:
    """``python -m hnviz bench-eval``: what continual evaluation costs."""
    from ..bench.evaluation import eval_overhead

    check_counts(args, every=(1, 1_000_000), samples=(1, 100_000), repeats=(1, 100))

    eval_overhead([m.strip() for m in args.methods.split(",") if m.strip()], args.tasks,
                  args.every, args.repeats, args.steps, args.samples)


def bench_widgets(args: argparse.Namespace) -> None:
    """``python -m hnviz bench-widgets``: a slider step's figure update, blitted or not."""
    from ..bench.slider import slider_latency

    check_counts(args, steps=(1, 10_000))

    slider_latency(args.steps)


def sweep(args: argparse.Namespace) -> None:
    """``python -m hnviz sweep``: run (or finish) a sweep, print its table, plot it."""
    from ..experiments.sweep_spec import load_spec
    from ..experiments.sweeps import sweep as run_sweep

    check_out(args.out, command="sweep")
    spec = load_spec(args.config)
    result = run_sweep(out=args.out, address=args.address, max_concurrent=args.max_concurrent,
                       num_cpus=args.num_cpus, progress=not args.no_progress, **spec)
    print(f"sweep: {len(result.rows)} trials, {len(result.rows) - result.ran} finished "
          f"already, ran {result.ran} in {result.wall_seconds:.1f} s")
    print((result.out / "table.md").read_text())
    for method, group in result.best.items():
        print(f"best {method}: {group['point']} "
              f"(final {group['average_final']['mean']:.4g} ± {group['average_final']['std']:.2g})")
    if len({g["compression_ratio"]["mean"] for g in result.groups
            if "compression_ratio" in g}) > 1:
        import matplotlib

        matplotlib.use("Agg")
        from ..results.plots import plot_compression_sweep

        _save_png(lambda ax, ax2: plot_compression_sweep(result.groups, ax, ax2),
                  result.out / "compression.png", (11, 4), panels=2)
        print(f"plot: {result.out / 'compression.png'}")
    print(f"results.csv, results.json and table.md in {result.out}/")


def replay_quality_command(args: argparse.Namespace) -> None:
    """``python -m hnviz replay-quality``: per task, the share of replayed images that a
    judge trained on the real data puts in that task's classes."""
    from ..learners.replay_judge import replay_quality, train_judge
    from ..store.runs import load_run

    for name, most in (("samples", 10_000), ("judge_steps", 100_000)):
        if not 1 <= getattr(args, name) <= most:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)} must be from 1 "
                             f"to {most}, e.g. --{name.replace('_', '-')} 500")
    if not 0 <= args.seed < 2**63:
        raise ValueError(f"--seed {args.seed} must be from 0 to 2**63 - 1, e.g. --seed 0")
    for path in args.runs:
        run = load_run(path)
        if getattr(run.learner, "replay_", None) is None:
            raise ValueError(f"{path} is not an HNET+TIR run (task_inference='replay'); "
                             "replay-quality scores the replay of such runs")
        tasks = list(run.tasks())[:run.learner.n_tasks_]
        judge, acc = train_judge(tasks, steps=args.judge_steps, seed=args.seed)
        q = replay_quality(run.learner, tasks, n=args.samples, judge=judge, seed=args.seed)
        print(f"{path}: judge {acc:.1f} % on real test images; replayed images in their "
              f"task's classes (%):")
        for task, value in zip(tasks, q):
            print(f"  task {task.task_id + 1} ({task.name}): {value:.1f}")


def bench_contention(args: argparse.Namespace) -> None:
    """``python -m hnviz bench-contention``: training alone and beside a busy process."""
    from ..bench.contention import contention

    if args.tasks < 1:
        raise ValueError(f"--tasks {args.tasks} must be at least 1, e.g. --tasks 3")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps {args.steps} must be at least 1, e.g. --steps 500")
    if args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats} must be at least 1, e.g. --repeats 3")
    contention(args.tasks, args.repeats, args.steps)

