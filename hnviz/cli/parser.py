"""Command line: ``python -m hnviz train|compare|sweep|figures|replay-quality|bench|
bench-checkpoints|bench-contention|bench-eval|bench-widgets|demo|notebooks ...``.

This module parses the arguments; :mod:`hnviz.cli.commands` does the work.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings
from contextlib import ExitStack
from typing import Any, Sequence

from traitlets import TraitError

from . import commands
from ..data.benchmarks import BENCHMARKS, COUNTED
from ..learners.methods import names as method_names
from ..io.lock import RunLockedError
from ..core.devices import device_setting, resolve_device
from ..core.threads import ENV, check_threads
from ..core.train import NonFiniteLossError
from ..core.validate import scoped_env


COMMANDS = {"train": commands.train, "compare": commands.compare_command,
            "figures": commands.figures, "bench": commands.bench, "sweep": commands.sweep,
            "bench-checkpoints": commands.bench_checkpoints, "demo": commands.demo,
            "replay-quality": commands.replay_quality_command,
            "bench-contention": commands.bench_contention, "bench-eval": commands.bench_eval,
            "bench-widgets": commands.bench_widgets, "notebooks": commands.notebooks}


DEVICE_HELP = ("where to train: cpu, cuda, cuda:N, mps or auto (CUDA, else MPS, else the "
               "CPU; default: $HNVIZ_DEVICE, else cpu)")
EVAL_HELP = ("continual evaluation: score every task so far every K steps (the stability "
             "gap in the summary; default: only at task ends)")
THREADS_HELP = ("torch threads while training: a number, or auto (the faster of torch's "
                "default and 1, measured as it trains; default: $HNVIZ_THREADS, else auto)")


def _train_parsers(sub: Any) -> None:
    tr = sub.add_parser("train", help="train a benchmark's preset and write a run directory")
    tr.add_argument("--benchmark", required=True, help=f"one of {', '.join(BENCHMARKS)}")
    tr.add_argument("--tasks", type=int, default=None, help=f"number of tasks ({', '.join(COUNTED)})")
    tr.add_argument("--beta", type=float, default=None, help="regularizer strength (0 = fine-tuning)")
    tr.add_argument("--steps", type=int, default=None, help="training steps per task")
    tr.add_argument("--reg-subset", type=int, default=None, metavar="K",
                    help="regularize K random earlier tasks per step (default: the preset's; "
                         "long sequences)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--eval-every", type=int, default=None, metavar="K", help=EVAL_HELP)
    tr.add_argument("--fast", action="store_true", help="CPU-sized preset and data (28x28 sets)")
    tr.add_argument("--preset", default=None, help="config preset (default: the benchmark's)")
    tr.add_argument("--out", required=True, help="run directory to write")
    tr.add_argument("--resume", action="store_true",
                    help="continue from the newest checkpoint in --out (same arguments)")
    tr.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                    help="also checkpoint every N steps within a task (default: after tasks)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace a finished run (or an unfinished one's checkpoints) in --out")
    tr.add_argument("--no-progress", action="store_true")
    tr.add_argument("--threads", default=None, help=THREADS_HELP)
    tr.add_argument("--device", default=None, help=DEVICE_HELP)
    cp = sub.add_parser("compare", help="HNET vs baselines on one benchmark and scenario")
    cp.add_argument("--benchmark", required=True, help=f"one of {', '.join(BENCHMARKS)}")
    cp.add_argument("--scenario", default="cl1", help="cl1, cl2 or cl3")
    cp.add_argument("--methods", default=None,
                    help=f"comma-separated, of {','.join(method_names())} (default: every method "
                         "of the scenario; hnet_tir and dgr run in cl2/cl3)")
    cp.add_argument("--tasks", type=int, default=None, help=f"number of tasks ({', '.join(COUNTED)})")
    cp.add_argument("--seeds", type=int, default=1,
                    help="number of seeds (K..K+N-1, K = --first-seed, default 0)")
    cp.add_argument("--first-seed", type=int, default=0, metavar="K",
                    help="seeds K..K+N-1 instead (e.g. seeds held out from tuning)")
    cp.add_argument("--steps", type=int, default=None, help="training steps per task")
    cp.add_argument("--eval-every", type=int, default=None, metavar="K", help=EVAL_HELP)
    cp.add_argument("--fast", action="store_true", help="CPU-sized preset and data (28x28 sets)")
    cp.add_argument("--preset", default=None, help="config preset (default: the benchmark's)")
    cp.add_argument("--out", required=True, help="directory for runs and summary")
    cp.add_argument("--overwrite", action="store_true", help="replace finished runs in --out")
    cp.add_argument("--scratch", action="store_true",
                    help="also train each task alone from scratch (transfer vs scratch)")
    cp.add_argument("--no-progress", action="store_true")
    cp.add_argument("--threads", default=None, help=THREADS_HELP)
    cp.add_argument("--device", default=None, help=DEVICE_HELP)


def _analysis_parsers(sub: Any) -> None:
    fg = sub.add_parser("figures", help="PNG of each analysis widget for run directories")
    fg.add_argument("runs", nargs="+", help="run directories: a train --out, or a run of a "
                    "comparison (compare --out/METHOD/seedK)")
    fg.add_argument("--out", required=True, help="directory for the PNG files")
    fg.add_argument("-a", type=int, default=0, help="interpolation start task (0-based)")
    fg.add_argument("-b", type=int, default=1, help="interpolation end task (0-based)")
    fg.add_argument("--alpha", type=float, default=0.5, help="interpolation position")
    fg.add_argument("--task", type=int, default=-1, help="task to highlight (0-based; -1: none)")
    rq = sub.add_parser("replay-quality", help="score an HNET+TIR run's replay with a judge "
                        "trained on the real data")
    rq.add_argument("runs", nargs="+",
                    help="HNET+TIR run directories (compare --out/hnet_tir/seedK)")
    rq.add_argument("--samples", type=int, default=500, help="images replayed per task")
    rq.add_argument("--judge-steps", type=int, default=1500, help="training steps of the judge")
    rq.add_argument("--seed", type=int, default=0, help="seed of the judge and the replay")


def _tool_parsers(sub: Any) -> None:
    bn = sub.add_parser("bench", help="time one training step at T earlier tasks, against "
                        "hypnettorch 0.0.4 (pip install -e '.[bench]')")
    bn.add_argument("--config", default="pmnist-small", help="pmnist-small or pmnist-100")
    bn.add_argument("--tasks", default="0,1,10,50,99", help="comma-separated numbers T")
    bn.add_argument("--steps", type=int, default=None, help="timed steps (default: config's)")
    bn.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    bn.add_argument("--reg-subset", type=int, default=None, metavar="K",
                    help="regularize K random earlier tasks per step (default: all), "
                    "both libraries")
    bn.add_argument("--device", default="cpu", help="where both libraries run: cpu, cuda, "
                    "cuda:N, mps or auto (default: cpu)")
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
    bt = sub.add_parser("bench-contention", help="time PermutedDigits training alone and "
                        "beside a busy process, at torch's default threads and --threads auto")
    bt.add_argument("--tasks", type=int, default=3, help="number of tasks")
    bt.add_argument("--repeats", type=int, default=3, help="rounds (median)")
    bt.add_argument("--steps", type=int, default=None, help="steps per task (preset: 1000)")
    be = sub.add_parser("bench-eval", help="time PermutedDigits training with and without "
                        "continual evaluation (its overhead)")
    be.add_argument("--methods", default="hnet,ewc", help="comma-separated methods")
    be.add_argument("--tasks", type=int, default=10, help="number of tasks")
    be.add_argument("--every", type=int, default=10, help="evaluate every K steps")
    be.add_argument("--samples", type=int, default=100, help="test points per task")
    be.add_argument("--repeats", type=int, default=3, help="pairs of runs (median)")
    be.add_argument("--steps", type=int, default=None, help="steps per task (preset: 1000)")
    bw = sub.add_parser("bench-widgets", help="time a slider step of the toy interpolation "
                        "figure, blitted and drawn whole")
    bw.add_argument("--steps", type=int, default=40, help="alpha steps per mode (median)")
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
    nb = sub.add_parser("notebooks", help="copy the six notebooks into a folder of yours")
    nb.add_argument("dest", help="the folder to copy them into (made if missing)")
    nb.add_argument("--overwrite", action="store_true",
                    help="replace notebooks of the same name already in the folder")


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is two lines: the error, and where the options are listed
    (argparse's own usage block runs to six)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"hnviz: error: {message}\nthe options: python -m {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = Parser(prog="hnviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_train_parsers, _analysis_parsers, _tool_parsers):
        add(sub)
    return parser


# what a person can get wrong: one line naming it, exit code 2 (Ctrl-C: 130)
USER_ERRORS = (ValueError, RunLockedError, OSError, NonFiniteLossError, TraitError, ImportError)
_OS_HINTS = {errno.ENOSPC: "the disk is full: free space or choose another --out",
             errno.EACCES: "no permission: choose a directory you can write",
             errno.EPERM: "not permitted: choose a directory you can write",
             errno.EROFS: "a read-only file system: choose another --out",
             errno.ENOTDIR: "a part of the path is a file, not a directory",
             errno.EEXIST: "it exists and is not a directory: choose another --out",
             errno.EISDIR: "it is a directory, not a file"}


def describe_error(e: BaseException) -> str:
    """At most three lines naming what went wrong and how to fix it."""
    if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) and e.strerror:
        where = f" {e.filename}" if e.filename else ""
        hint = _OS_HINTS.get(e.errno, "check the path and try again")
        text = f"cannot use{where}: {e.strerror}; {hint}"
    else:
        text = str(e) or type(e).__name__
    if isinstance(e, NonFiniteLossError):
        text += ". To start over with other settings add --overwrite"
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:2] + (["; ".join(lines[2:])] if len(lines) > 2 else []))


def check_environment() -> None:
    """Every environment variable hnviz reads, checked before a command starts (one line
    naming a bad one), whether or not this command would have read it."""
    from ..data.benchmarks import max_data_bytes
    from ..core.devices import ENV as DEVICE_ENV, check_device
    from ..learners.learner_state import max_params
    from ..core.threads import resolve as threads_setting
    from ..core.validate import env_setting

    threads_setting()
    env_setting(DEVICE_ENV, check_device)
    max_params()
    max_data_bytes()


def _interrupted(args: argparse.Namespace, argv: Sequence[str]) -> str:
    if args.command == "train":
        again = [a for a in argv if a not in ("--resume", "--overwrite")]
        if not os.path.isdir(os.path.join(args.out, "checkpoints")):
            if os.path.isfile(os.path.join(args.out, "run.json")) and not args.resume:
                return f"interrupted after the run was saved: it is complete in {args.out}"
            return ("interrupted before the first checkpoint; nothing to continue: run "
                    f"python -m hnviz {' '.join(again)} to start again")
        return ("interrupted; the checkpoints in --out keep the work done: continue with "
                f"python -m hnviz {' '.join(again)} --resume")
    if args.command in ("sweep", "compare"):
        again = " ".join(a for a in argv if a != "--overwrite")
        kept = "trials" if args.command == "sweep" else "runs (and an HNET's checkpoints)"
        return f"interrupted; finished {kept} are kept: continue with python -m hnviz {again}"
    return "interrupted"


def _notice(message: Warning | str, *_: Any, **__: Any) -> None:
    """A warning while a command runs: one plain line, no source line."""
    print(f"hnviz: {str(message).splitlines()[0] if str(message) else message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv`` (default: the command line); the exit code: 0, 2 for a
    mistake (one to three lines, never a traceback), 130 for Ctrl-C."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help (0) or a mistake argparse reported (2)
            return e.code if isinstance(e.code, int) else 2
        with ExitStack() as settings, warnings.catch_warnings():
            warnings.showwarning = _notice  # put back after: main() may run in a notebook
            check_environment()
            if args.command in ("train", "compare"):  # the settings of its learners
                if args.threads is not None:
                    settings.enter_context(
                        scoped_env(ENV, str(check_threads(args.threads, "--threads"))))
                if args.device is not None:
                    settings.enter_context(device_setting(args.device, "--device"))
                resolve_device()  # a bad or missing device: one line now, before any file
            COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"hnviz: {_interrupted(args, argv) if args else 'interrupted'}", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        print(f"hnviz: error: {describe_error(e)}", file=sys.stderr)
        return 2
    return 0
