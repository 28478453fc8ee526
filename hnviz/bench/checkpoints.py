"""What checkpoints cost (``python -m hnviz bench-checkpoints``): the same training with
and without a checkpoint after every task, timed in one process, results compared."""
from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..data.benchmarks import permuted_digits
from ..learners.config import HyperCLConfig
from ..experiments.experiment import fit_checkpointed
from ..learners.hypercl import HyperCL


def _one_run(kind: str, cfg: HyperCLConfig, tasks: Any, run_dir: Path, every: int | None,
             progress: bool) -> dict[str, Any]:
    """Train once, ``kind`` "plain" or "checkpoints"; its seconds, final theta and, with
    checkpoints, the seconds spent writing them, how many and the largest one's size."""
    learner = HyperCL(cfg, random_state=0, progress=progress)
    start = time.perf_counter()
    if kind == "plain":
        learner.fit(tasks)
    else:
        fit_checkpointed(learner, tasks, run_dir, every)
    out = {"seconds": time.perf_counter() - start,
           "theta": [p.detach().clone() for p in learner.hnet_.parameters()]}
    if kind == "checkpoints":
        stats = learner.checkpoint_stats_
        out.update(write_s=stats["write_seconds"], written=stats["written"],
                   size=max(p.stat().st_size for p in (run_dir / "checkpoints").iterdir()))
        shutil.rmtree(run_dir)
    return out


def checkpoint_overhead(n_tasks: int = 10, every: int | None = None, repeats: int = 1,
                        n_steps: int | None = None, directory: str | None = None,
                        progress: bool = False, echo: Any = print) -> dict[str, Any]:
    """What checkpoints cost: PermutedDigits-``n_tasks`` (preset ``permuted_digits``)
    trained without and with a checkpoint after every task (and every ``every`` steps),
    ``repeats`` pairs in alternating order (plain first, then checkpoints first, ...), in
    this process, same seed. Checks that checkpointing leaves the result bit for bit the
    same, prints the table and returns ``plain_s``, ``checkpoint_s`` (lists),
    ``write_s`` (time spent inside checkpoint writes, per checkpointed run), ``written``,
    ``bytes`` (one checkpoint), ``overhead_direct`` and ``overhead_end_to_end`` (ratios).
    Checkpoints go to a temporary folder in ``directory`` (default: the system's)."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    tasks = permuted_digits(n_tasks)
    cfg = HyperCLConfig.preset("permuted_digits",
                               **({} if n_steps is None else {"n_steps": n_steps}))
    root = Path(tempfile.mkdtemp(prefix="hnviz-ckpt-bench-", dir=directory))
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "checkpoints": []}
    echo(f"PermutedDigits-{n_tasks}, preset permuted_digits ({cfg.n_steps} steps per task), "
         f"{torch.get_num_threads()} torch threads; checkpoints after every task"
         + (f" and every {every} steps" if every else "") + f", written to {root}")
    HyperCL(cfg.replace(n_steps=50), random_state=0, progress=False).fit(tasks[:2])  # warm-up
    try:
        for r in range(repeats):
            for kind in (("plain", "checkpoints") if r % 2 == 0 else ("checkpoints", "plain")):
                run = _one_run(kind, cfg, tasks, root / f"run{r}", every, progress)
                runs[kind].append(run)
                echo(f"  pair {r + 1}: without checkpoints {run['seconds']:7.2f} s"
                     if kind == "plain" else
                     f"  pair {r + 1}: with checkpoints    {run['seconds']:7.2f} s, of which "
                     f"{run['write_s']:.3f} s writing {run['written']} checkpoints")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    plain, ckpt = runs["plain"], runs["checkpoints"]
    same = all(torch.equal(a, b) for a, b in zip(plain[-1]["theta"], ckpt[-1]["theta"]))
    if not same:
        raise AssertionError("checkpointing changed the trained weights")
    plain_s, ckpt_s = [r["seconds"] for r in plain], [r["seconds"] for r in ckpt]
    write_s = [r["write_s"] for r in ckpt]
    direct = statistics.median(write_s) / statistics.median(plain_s)
    end_to_end = statistics.median(ckpt_s) / statistics.median(plain_s) - 1
    echo(f"one checkpoint: {ckpt[-1]['size'] / 2**20:.2f} MiB (tensors); result identical "
         f"with and without checkpoints: {same}")
    echo(f"overhead: writing checkpoints took {100 * direct:.2f} % of the training time "
         f"(timed inside the writes); end to end {100 * end_to_end:+.2f} % "
         f"(median of {repeats} pair(s); includes timing noise)")
    return {"plain_s": plain_s, "checkpoint_s": ckpt_s, "write_s": write_s,
            "written": ckpt[-1]["written"], "bytes": ckpt[-1]["size"],
            "overhead_direct": direct, "overhead_end_to_end": end_to_end}
