"""Command line: ``python -m hnviz train|compare|sweep|figures|bench|bench-checkpoints|demo ...``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .bench import peak_rss_mib
from .checkpoint import latest_checkpoint, remove_checkpoints
from .benchmarks import BENCHMARKS, FAST_DATA, TaskSequence, get_benchmark
from .compare import METHODS, check_methods, compare, markdown_table
from .config import PRESETS, HyperCLConfig
from .learner import HyperCL
from .lock import RunLockedError, run_lock
from .runs import load_run, save_run


def build_benchmark(name: str, n_tasks: int | None = None, seed: int = 0,
                    fast: bool = False) -> TaskSequence:
    """The named benchmark; ``n_tasks`` only applies to the permuted ones; ``fast`` uses
    the CPU-sized data subsets of ``FAST_DATA`` (28x28 benchmarks)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    kwargs: dict = dict(FAST_DATA.get(name, {})) if fast else {}
    if name.startswith("permuted"):
        kwargs["n_tasks"] = 10 if n_tasks is None else n_tasks
    elif n_tasks is not None:
        raise ValueError(f"--tasks applies to permuted benchmarks only; {name} has a fixed length")
    if name != "toy_regression":
        kwargs["seed"] = seed
    return get_benchmark(name, **kwargs)


def preset_for(benchmark: str, fast: bool = False) -> str:
    """The config preset of a benchmark: ``<name>_fast`` with ``fast`` where one exists."""
    return f"{benchmark}_fast" if fast and f"{benchmark}_fast" in PRESETS else benchmark


def train_run(benchmark: str, out: str | Path, n_tasks: int | None = None, seed: int = 0,
              progress: bool = True, fast: bool = False, preset: str | None = None,
              resume: bool = False, checkpoint_every: int | None = None,
              **changes) -> tuple[HyperCL, dict]:
    """Train ``preset`` (default: the benchmark's; with config ``changes``) and save the
    run to ``out``. While it trains, ``out/checkpoints/`` holds a checkpoint after every
    task (and every ``checkpoint_every`` steps); they are removed once the run is saved.
    ``resume``: continue from the newest checkpoint in ``out`` (the arguments must be the
    run's own; the run's checkpoint interval is kept)."""
    tasks = build_benchmark(benchmark, n_tasks, seed, fast)
    config = HyperCLConfig.preset(preset or preset_for(benchmark, fast),
                                  **{k: v for k, v in changes.items() if v is not None})
    with run_lock(out):  # no second process trains into the same run meanwhile
        ck = latest_checkpoint(out) if resume else None
        if ck is not None:
            _check_same_run(ck.where.path, ck.info["config"], ck.info.get("benchmark"),
                            ck.info["random_state"], config, tasks.spec, seed)
            print(f"hnviz: resuming from the checkpoint {ck.where.describe()} "
                  f"({ck.where.path.name})", file=sys.stderr)
            learner = HyperCL.resume(out, tasks, progress=progress)
        else:
            if resume:
                if (Path(out) / "run.json").is_file():
                    return _finished_run(out, config, tasks.spec, seed)
                print(f"hnviz: no checkpoint in {out}; training from the start", file=sys.stderr)
            learner = HyperCL(config, random_state=seed, progress=progress)
            learner.fit(tasks, checkpoint_dir=out, checkpoint_every=checkpoint_every)
        wall = learner.fit_seconds_
        save_run(learner, out, benchmark=tasks.spec, wall_seconds=wall)
        remove_checkpoints(out)  # the run files now hold the result
    return learner, {**learner.summary(), "wall_seconds": wall}


def _finished_run(out: str | Path, config: HyperCLConfig, spec: dict,
                  seed: int) -> tuple[HyperCL, dict]:
    """``--resume`` of a run that is already complete: its saved learner and summary."""
    run = load_run(out)
    _check_same_run(run.path / "run.json", run.learner.config.to_dict(), run.spec,
                    run.learner.random_state, config, spec, seed)
    if not isinstance(run.learner, HyperCL):
        raise ValueError(f"{out} holds a baseline run; --resume continues hypernetwork runs")
    print(f"hnviz: {out} is already complete; nothing to resume", file=sys.stderr)
    return run.learner, {**run.learner.summary(), "wall_seconds": run.metrics["wall_seconds"]}


def _check_same_run(path: Path, saved: dict, saved_spec: dict | None, saved_seed: int | None,
                    config: HyperCLConfig, spec: dict, seed: int) -> None:
    """The run at ``path`` was trained with this config, benchmark and seed, else ValueError."""
    diff = [f"{k}={saved.get(k)!r} (now {v!r})" for k, v in config.to_dict().items()
            if saved.get(k) != v]
    if saved_spec != spec:
        diff.append(f"benchmark {saved_spec} (now {spec})")
    if saved_seed != seed:
        diff.append(f"seed={saved_seed} (now {seed})")
    if diff:
        raise ValueError(f"--resume: {path} was written with other settings: "
                         f"{'; '.join(diff)}; pass the run's own arguments")


def _fmt(summary: dict) -> str:
    unit = "%" if summary["metric"] == "accuracy" else ""
    fmt = "{:.2f}" if unit else "{:.4f}"
    d = sum(summary["during"]) / len(summary["during"])
    parts = [f"{summary['metric']:>8}", (fmt.format(d) + unit).rjust(9),
             (fmt.format(summary["average_final"]) + unit).rjust(9)]
    for key in ("bwt", "forgetting"):
        v = summary[key]
        parts.append(("n/a" if v is None else fmt.format(v)).rjust(10))
    parts.append(f"{summary['wall_seconds']:7.1f}s")
    return " ".join(parts)


def demo(out: str | Path, progress: bool = True) -> None:
    """Train the toy and PermutedDigits-10, print a table and write PNG figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import plot_embeddings, plot_metric_matrix, plot_toy_fits
    from .widgets import save_figures

    out = Path(out)
    header = f"{'run':<22} {'metric':>8} {'during':>9} {'final':>9} {'BWT':>10} {'forgetting':>10}    time"
    rows = []
    for name, kw in (("toy_regression", {}), ("permuted_digits", {"n_tasks": 10})):
        run_dir = out / name
        learner, summary = train_run(name, run_dir, progress=progress, **kw)
        tasks = build_benchmark(name, kw.get("n_tasks"))
        figs = {"metric_matrix.png": lambda ax: plot_metric_matrix(learner.matrix_, summary["metric"], ax),
                "embeddings.png": lambda ax: plot_embeddings(learner, ax)}
        if name == "toy_regression":
            figs["toy_fits.png"] = lambda ax: plot_toy_fits(learner, tasks, ax)
        for fname, draw in figs.items():
            fig, ax = plt.subplots(figsize=(6, 4.5))
            draw(ax)
            fig.tight_layout()
            fig.savefig(run_dir / fname, dpi=110)
            plt.close(fig)
        save_figures([run_dir], run_dir)  # the analysis widgets' figures
        rows.append(f"{name:<22} " + _fmt(summary))
    print(header, *rows, sep="\n")
    print(f"runs and figures written to {out}/")


def run_compare(args: argparse.Namespace) -> None:
    """``python -m hnviz compare``: train, then print the Markdown table."""
    methods = check_methods([m.strip() for m in args.methods.split(",") if m.strip()])
    tasks = build_benchmark(args.benchmark, args.tasks, fast=args.fast)

    def report(method: str, seed: int, row: dict) -> None:
        print(f"{method:>11} seed {seed}: final {row['average_final']:.2f}%  "
              f"forgetting {row['forgetting']:.2f}  {row['wall_seconds']:.1f}s", flush=True)

    preset = args.preset or preset_for(args.benchmark, args.fast)
    summary = compare(tasks, preset, args.scenario, methods, range(args.seeds), args.out,
                      not args.no_progress, on_run=report, n_steps=args.steps)
    print(markdown_table(summary))
    print(f"runs, summary.json and table.md written to {args.out}/")


def run_figures(args: argparse.Namespace) -> None:
    """``python -m hnviz figures``: each widget's figure as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from .widgets import save_figures

    for path in save_figures(args.runs, args.out, args.a, args.b, args.alpha, args.task):
        print(path)


def run_bench_command(args: argparse.Namespace) -> None:
    """``python -m hnviz bench``: the step-time table (and JSON rows)."""
    import json

    from .bench import run_bench
    from .runs import atomic_write

    try:
        tasks = [int(t) for t in args.tasks.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--tasks must be comma-separated integers, got {args.tasks!r}") from None
    if not tasks or min(tasks) < 0:
        raise ValueError(f"--tasks must be integers >= 0, got {args.tasks!r}")
    rows = run_bench(args.config, tasks, not args.no_reference, args.threads, args.steps)
    if args.json:
        atomic_write(Path(args.json), json.dumps({"config": args.config, "rows": rows}, indent=1))


def run_sweep_command(args: argparse.Namespace) -> None:
    """``python -m hnviz sweep``: run (or finish) a sweep, print its table, plot it."""
    from .sweep_spec import load_spec
    from .sweeps import sweep

    result = sweep(out=args.out, address=args.address, max_concurrent=args.max_concurrent,
                   num_cpus=args.num_cpus, progress=not args.no_progress, **load_spec(args.config))
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
        import matplotlib.pyplot as plt

        from .plots import plot_compression_sweep

        ax = plot_compression_sweep(result.groups)
        ax.figure.tight_layout()
        ax.figure.savefig(result.out / "compression.png", dpi=110)
        plt.close(ax.figure)
        print(f"plot: {result.out / 'compression.png'}")
    print(f"results.csv, results.json and table.md in {result.out}/")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hnviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a benchmark's preset and write a run directory")
    tr.add_argument("--benchmark", required=True, help=f"one of {', '.join(BENCHMARKS)}")
    tr.add_argument("--tasks", type=int, default=None, help="number of tasks (permuted benchmarks)")
    tr.add_argument("--beta", type=float, default=None, help="regularizer strength (0 = fine-tuning)")
    tr.add_argument("--steps", type=int, default=None, help="training steps per task")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--fast", action="store_true", help="CPU-sized preset and data (28x28 sets)")
    tr.add_argument("--preset", default=None, help="config preset (default: the benchmark's)")
    tr.add_argument("--out", required=True, help="run directory to write")
    tr.add_argument("--resume", action="store_true",
                    help="continue from the newest checkpoint in --out (same arguments)")
    tr.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                    help="also checkpoint every N steps within a task (default: after tasks)")
    tr.add_argument("--no-progress", action="store_true")
    cp = sub.add_parser("compare", help="HNET vs baselines on one benchmark and scenario")
    cp.add_argument("--benchmark", required=True, help=f"one of {', '.join(BENCHMARKS)}")
    cp.add_argument("--scenario", default="cl1", help="cl1, cl2 or cl3")
    cp.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    cp.add_argument("--tasks", type=int, default=None, help="number of tasks (permuted_*)")
    cp.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1)")
    cp.add_argument("--steps", type=int, default=None, help="training steps per task")
    cp.add_argument("--fast", action="store_true", help="CPU-sized preset and data (28x28 sets)")
    cp.add_argument("--preset", default=None, help="config preset (default: the benchmark's)")
    cp.add_argument("--out", required=True, help="directory for runs and summary")
    cp.add_argument("--no-progress", action="store_true")
    fg = sub.add_parser("figures", help="PNG of each analysis widget for run directories")
    fg.add_argument("runs", nargs="+", help="run directories (train/compare --out)")
    fg.add_argument("--out", required=True, help="directory for the PNG files")
    fg.add_argument("-a", type=int, default=0, help="interpolation start task (0-based)")
    fg.add_argument("-b", type=int, default=1, help="interpolation end task (0-based)")
    fg.add_argument("--alpha", type=float, default=0.5, help="interpolation position")
    fg.add_argument("--task", type=int, default=-1, help="task to highlight (0-based)")
    bn = sub.add_parser("bench", help="time one training step at T earlier tasks, against "
                        "hypnettorch 0.0.4 (pip install -e '.[bench]')")
    bn.add_argument("--config", default="pmnist-small", help="pmnist-small or pmnist-100")
    bn.add_argument("--tasks", default="0,1,10,50,99", help="comma-separated numbers T")
    bn.add_argument("--steps", type=int, default=None, help="timed steps (default: config's)")
    bn.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    bn.add_argument("--no-reference", action="store_true", help="hnviz only")
    bn.add_argument("--json", default=None, help="also write the rows to this JSON file")
    bc = sub.add_parser("bench-checkpoints", help="time PermutedDigits training with and "
                        "without checkpoints (their overhead)")
    bc.add_argument("--tasks", type=int, default=10, help="number of tasks")
    bc.add_argument("--every", type=int, default=None, help="also checkpoint every N steps")
    bc.add_argument("--repeats", type=int, default=1, help="pairs of runs (median)")
    bc.add_argument("--steps", type=int, default=None, help="steps per task (preset: 1000)")
    bc.add_argument("--dir", default=None, help="where the checkpoints go (a temporary "
                    "folder inside it; default: the system's temporary folder)")
    sw = sub.add_parser("sweep", help="grid or random search over config fields and seeds "
                        "on Ray Tune (pip install -e '.[sweep]')")
    sw.add_argument("config", help="sweep file (.yaml/.yml or .json), e.g. "
                    "examples/compression_sweep.yaml")
    sw.add_argument("--out", required=True, help="directory for the trials and the table")
    sw.add_argument("--address", default=None, help="Ray cluster to run on: auto, HOST:PORT "
                    "or ray://HOST:10001 (default: a local Ray on 127.0.0.1)")
    sw.add_argument("--max-concurrent", type=int, default=None,
                    help="trials at once (default: as many as the CPUs allow)")
    sw.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray")
    sw.add_argument("--no-progress", action="store_true")
    dm = sub.add_parser("demo", help="train the toy and PermutedDigits-10, write figures")
    dm.add_argument("--out", default="runs/demo")
    dm.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            _, summary = train_run(args.benchmark, args.out, args.tasks, args.seed,
                                   not args.no_progress, args.fast, args.preset,
                                   args.resume, args.checkpoint_every,
                                   beta=args.beta, n_steps=args.steps)
            print(f"{args.benchmark:<22} " + _fmt(summary))
            print(f"peak memory {peak_rss_mib():.0f} MiB (resident, whole process)")
            print(f"run written to {args.out}/ (metrics.json)")
        elif args.command == "compare":
            run_compare(args)
        elif args.command == "figures":
            run_figures(args)
        elif args.command == "bench":
            run_bench_command(args)
        elif args.command == "sweep":
            run_sweep_command(args)
        elif args.command == "bench-checkpoints":
            from .bench import checkpoint_overhead

            checkpoint_overhead(args.tasks, args.every, args.repeats, args.steps, args.dir)
        else:
            demo(args.out, not args.no_progress)
    except (ValueError, RunLockedError) as e:
        print(f"hnviz: error: {e}", file=sys.stderr)
        return 2
    return 0
