"""Training on a busy machine (``python -m hnviz bench-contention``): PermutedDigits
trained alone and next to one busy process at normal priority, at torch's default thread
count and under ``threads="auto"`` (:mod:`hnviz.core.threads`), all in one run."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

from ..data.benchmarks import permuted_digits
from ..learners.config import HyperCLConfig
from ..learners.hypercl import HyperCL

# what the other process does: keep one core busy, until its parent is gone (killed by a
# signal that skipped our clean-up, it must not spin on as an orphan); argv[1]: our pid
BUSY = "import os, sys\np = int(sys.argv[1])\nwhile os.getppid() == p: pass"


def _train_seconds(cfg: HyperCLConfig, tasks: Any, threads: int | str, busy: bool) -> float:
    """Seconds to train ``tasks`` at ``threads``, with one busy process beside if ``busy``."""
    other = None
    if busy:
        other = subprocess.Popen([sys.executable, "-c", BUSY, str(os.getpid())],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        if other is not None:
            time.sleep(0.5)  # let it take its core
        learner = HyperCL(cfg, random_state=0, progress=False, threads=threads)
        start = time.perf_counter()
        learner.fit(tasks)
        return time.perf_counter() - start
    finally:
        if other is not None:
            other.kill()
            other.wait()


def contention(n_tasks: int = 3, repeats: int = 3, n_steps: int | None = None,
               echo: Any = print) -> dict[str, Any]:
    """Time PermutedDigits-``n_tasks`` (preset ``permuted_digits``) at torch's default
    thread count and under "auto", alone and beside a busy process, ``repeats`` rounds of
    the four in rotating order; print the medians and ratios and return ``seconds``
    (setting -> condition -> list) and the ratios ``busy_over_alone`` (per setting) and
    ``auto_over_default_alone``."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    tasks = permuted_digits(n_tasks)
    cfg = HyperCLConfig.preset("permuted_digits",
                               **({} if n_steps is None else {"n_steps": n_steps}))
    default = torch.get_num_threads()
    settings = {f"default ({default} threads)": default, "auto": "auto"}
    runs = [(name, busy) for name in settings for busy in (False, True)]
    seconds: dict[str, dict[str, list[float]]] = {n: {"alone": [], "busy": []} for n in settings}
    echo(f"PermutedDigits-{n_tasks}, preset permuted_digits ({cfg.n_steps} steps per task), "
         f"{repeats} rounds; beside it a busy process (a Python loop) at normal priority")
    HyperCL(cfg.replace(n_steps=50), random_state=0, progress=False).fit(tasks[:1])  # warm-up
    for r in range(repeats):
        for name, busy in runs[r % len(runs):] + runs[:r % len(runs)]:
            s = _train_seconds(cfg, tasks, settings[name], busy)
            seconds[name]["busy" if busy else "alone"].append(s)
            echo(f"  round {r + 1}: {name:<22} {'busy' if busy else 'alone':<5} {s:7.2f} s")
    med = {n: {c: statistics.median(v) for c, v in d.items()} for n, d in seconds.items()}
    ratios = {n: med[n]["busy"] / med[n]["alone"] for n in settings}
    first = next(iter(settings))
    auto_vs_default = med["auto"]["alone"] / med[first]["alone"]
    echo(f"\n{'setting':<22} {'alone (s)':>10} {'busy (s)':>10} {'busy / alone':>13}")
    for n in settings:
        echo(f"{n:<22} {med[n]['alone']:10.2f} {med[n]['busy']:10.2f} {ratios[n]:13.2f}")
    echo(f"auto alone / default alone: {auto_vs_default:.2f}  (medians of {repeats})")
    return {"seconds": seconds, "busy_over_alone": ratios,
            "auto_over_default_alone": auto_vs_default}
