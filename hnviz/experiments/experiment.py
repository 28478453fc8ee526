"""Training into a run directory, the one way the command line, :func:`hnviz.compare` and
sweep trials do it: lock the directory, fit with checkpoints (or continue from them),
save the run files, remove the checkpoints.

- :func:`train_into`: all of it, for any learner (checkpoints for hypernetworks).
- :func:`fit_checkpointed`: fit a hypernetwork, writing checkpoints as it trains.
- :func:`resume`: continue a checkpointed run after a crash, bit for bit on a CPU.

The directory's lock (:mod:`hnviz.io.lock`) is taken once, here, for the whole job.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..learners.base import ContinualLearner
from ..core.memory import peak_rss_mib, reset_peak_rss
from ..core.tasks import task_list
from ..data.benchmarks import COUNTED, FAST_DATA, from_spec, get_benchmark, get_spec
from ..store.checkpoint import (Checkpoint, Checkpointer, check_resumable, checkpoint_dir,
                                clean_temporaries, is_final, latest_checkpoint, list_checkpoints,
                                remove_checkpoints, restore)
from ..learners.config import PRESETS
from ..io.lock import run_lock
from ..store.runs import finished_run, load_run, refuse_finished, write_run
from ..io.safeio import read_json
from ..core.tasks import Task, TaskSequence

KEEP = 2  # complete checkpoints kept while a run trains


def _record(learner: ContinualLearner, checkpointer: Checkpointer) -> None:
    learner.fit_seconds_ = checkpointer.elapsed_seconds()
    learner.checkpoint_stats_ = {"written": checkpointer.written,
                                 "write_seconds": checkpointer.write_seconds}


def _refuse_unfinished(directory: str | Path, overwrite: bool = False) -> None:
    """Raise if ``directory`` holds checkpoints of an unfinished run (unless
    ``overwrite``: then they go); remove a finished run's (the new run replaces them)."""
    existing = list_checkpoints(directory)
    if not existing:
        return
    info = read_json(existing[-1].path, "checkpoint")
    if not is_final(info) and not overwrite:
        raise ValueError(
            f"{directory} holds checkpoints of an unfinished run of {info.get('n_tasks')} "
            f"tasks (newest: {existing[-1].describe()}); continue it with "
            f"hnviz.resume({str(directory)!r}) or the command that started it plus --resume, "
            "or start over with overwrite=True (--overwrite)")
    remove_checkpoints(directory)


def _fit_checkpointed(learner: ContinualLearner, tasks: Iterable[Task], directory: str | Path,
                      every: int | None, keep: int, callbacks: Sequence[Any] = (),
                      overwrite: bool = False) -> ContinualLearner:
    spec = getattr(tasks, "spec", None)
    tasks = task_list(tasks)
    checkpointer = Checkpointer(directory, tasks, every, keep, spec)
    _refuse_unfinished(directory, overwrite)
    learner.fit(tasks, callbacks=[*callbacks, checkpointer])
    _record(learner, checkpointer)
    return learner


def fit_checkpointed(learner: ContinualLearner, tasks: Iterable[Task], directory: str | Path,
                     every: int | None = None, keep: int = KEEP,
                     callbacks: Sequence[Any] = (), overwrite: bool = False) -> ContinualLearner:
    """Reset ``learner`` and learn ``tasks`` (``callbacks``: as in ``fit``), writing a
    checkpoint to
    ``directory/checkpoints/`` after every task and every ``every`` steps within a task,
    keeping the ``keep`` newest (:mod:`hnviz.store.checkpoint`); :func:`resume` continues from
    them after a crash. The directory is locked meanwhile; one with checkpoints of an
    unfinished run is refused (resume it, or pass ``overwrite=True`` to discard them).
    Sets ``fit_seconds_`` and ``checkpoint_stats_``."""
    check_resumable(learner)
    with run_lock(directory):
        return _fit_checkpointed(learner, tasks, directory, every, keep, callbacks, overwrite)


def _resume(directory: str | Path, tasks: Iterable[Task] | None, callbacks: Sequence[Any],
            progress: bool, ck: Checkpoint | None = None, device: Any = None) -> ContinualLearner:
    clean_temporaries(directory)
    ck = ck or latest_checkpoint(directory)
    if ck is None:
        raise ValueError(f"{directory} has no checkpoint to resume from (no complete "
                         f"file in {checkpoint_dir(directory)}); start the run with "
                         "hnviz.fit_checkpointed(...) or without --resume")
    spec = ck.info.get("benchmark")
    if tasks is None:
        if spec is None:
            raise ValueError(f"{ck.where.path} has no benchmark spec (the run was "
                             "trained on custom tasks); pass tasks=... to resume it")
        tasks = from_spec(spec, trusted=False)  # a spec from files: no download, bounded
    spec = getattr(tasks, "spec", spec)
    tasks = task_list(tasks)
    learner = restore(ck, tasks, progress, callbacks, device)
    learner.resumed_from_ = {"tasks_done": ck.where.tasks_done, "step": ck.where.step,
                             "checkpoint": str(ck.where.path)}
    checkpointer = Checkpointer(directory, tasks, ck.info["checkpoint_every"], ck.info["keep"],
                                spec, ck.info["elapsed_seconds"])
    learner.continue_fit(tasks, callbacks=[checkpointer])
    _record(learner, checkpointer)
    return learner


def resume(directory: str | Path, tasks: Iterable[Task] | None = None,
           callbacks: Sequence[Any] = (), progress: bool = True) -> ContinualLearner:
    """Continue the run checkpointed in ``directory`` (by :func:`fit_checkpointed` or
    ``python -m hnviz train``) from its newest complete checkpoint to the end of its
    task sequence, writing further checkpoints as before; returns the fitted learner.

    ``tasks``: the run's whole task sequence; by default rebuilt from the benchmark
    spec saved in the checkpoint. On CPU at a fixed thread count (``HNVIZ_THREADS``,
    :mod:`hnviz.core.threads`) the result is bit for bit that of an uninterrupted run.
    ``resumed_from_`` says where it continued, ``fit_seconds_`` the training seconds of
    all sessions together."""
    with run_lock(directory):
        return _resume(directory, tasks, callbacks, progress)


def check_same_run(path: Path, saved: dict, saved_spec: dict | None, saved_seed: Any,
                   config: Any, spec: dict | None, seed: int, fix: str) -> None:
    """The run (or checkpoint) at ``path`` was written with ``config`` (its ``to_dict``
    is compared with ``saved``), benchmark ``spec`` and ``seed``; else a ``ValueError``
    listing the differences, then ``fix``."""
    diff = [f"{k}={saved.get(k)!r} (now {v!r})" for k, v in config.to_dict().items()
            if saved.get(k) != v]
    if saved_spec != spec:
        diff.append(f"benchmark {saved_spec} (now {spec})")
    if saved_seed != seed:
        diff.append(f"seed={saved_seed} (now {seed})")
    if diff:
        raise ValueError(f"{path} was written with other settings: {'; '.join(diff)}; {fix}")


@dataclass
class TrainedRun:
    """What :func:`train_into` did: the fitted ``learner``, its training ``wall_seconds``
    and ``how`` ("trained", "resumed", or "complete": the run was finished already; then
    ``saved_spec`` is the benchmark spec saved with it); ``peak_rss_mib`` the process's
    peak resident memory while it trained (:mod:`hnviz.core.memory`; for a resumed run,
    while its last session trained; None for a run saved before hnviz recorded it)."""

    learner: ContinualLearner
    wall_seconds: float
    how: str
    saved_spec: dict[str, Any] | None = None
    peak_rss_mib: float | None = None


def train_into(learner: ContinualLearner, tasks: Any, out: str | Path, *,
               checkpoints: bool = True, checkpoint_every: int | None = None,
               resume: bool = False, reuse_complete: bool = False, overwrite: bool = False,
               on_resume: Callable[[Checkpoint | None], None] | None = None,
               **extra: Any) -> TrainedRun:
    """Train ``learner`` on ``tasks`` (a TaskSequence: its spec is saved) and save the run
    to ``out`` (``extra`` goes into its metrics), all under the directory's lock. A
    finished run in ``out`` is refused before any training unless ``overwrite`` (then
    it stays loadable until the new one is saved; unfinished checkpoints are discarded).

    A hypernetwork writes checkpoints meanwhile (``checkpoints``; also every
    ``checkpoint_every`` steps), removed once the run is saved. ``resume``: continue
    from the newest checkpoint in ``out`` if there is one (``learner`` only gives the
    progress setting then); ``reuse_complete``: if ``out`` holds a complete run and no
    checkpoint, return it unchanged instead of training. ``on_resume(checkpoint)`` is
    called before continuing (it may raise to refuse), ``on_resume(None)`` before training
    from the start although ``resume`` was asked."""
    out = Path(out)
    checkpoints = checkpoints and learner.resumable
    with run_lock(out):
        ck = latest_checkpoint(out) if resume and checkpoints else None
        if reuse_complete and ck is None and finished_run(out):
            run = load_run(out)
            return TrainedRun(run.learner, run.metrics.get("wall_seconds", 0.0), "complete",
                              run.spec, run.metrics.get("peak_rss_mib"))
        if ck is None:
            refuse_finished(out, overwrite)  # before any training
        if resume and on_resume is not None:
            on_resume(ck)
        reset_peak_rss()  # this run's peak, not an earlier run's in the same process
        start = time.perf_counter()
        if ck is not None:
            learner = _resume(out, tasks, (), learner.progress, ck, learner.device)
        elif checkpoints:
            _fit_checkpointed(learner, tasks, out, checkpoint_every, KEEP, (), overwrite)
        else:
            learner.fit(tasks)
        wall = learner.fit_seconds_ if checkpoints else time.perf_counter() - start
        peak = round(peak_rss_mib(), 1)  # before saving: the saved run holds the figure
        peak = peak if math.isfinite(peak) else None  # NaN: the OS does not say
        # resuming finishes the run its checkpoints were started for, replacing an old one
        write_run(learner, out, tasks.spec, overwrite or ck is not None, wall_seconds=wall,
                  peak_rss_mib=peak, **extra)
        if checkpoints:
            remove_checkpoints(out)  # the run files now hold the result
    return TrainedRun(learner, wall, "resumed" if ck is not None else "trained", None, peak)


def build_benchmark(name: str, n_tasks: int | None = None, seed: int = 0,
                    fast: bool = False) -> TaskSequence:
    """The named benchmark; ``n_tasks`` only applies to the permuted ones; ``fast`` uses
    the CPU-sized data subsets of ``FAST_DATA`` (28x28 benchmarks)."""
    spec = get_spec(name)
    if fast and spec.fast is None:
        raise ValueError(f"--fast applies to the 28x28 benchmarks ({', '.join(FAST_DATA)}); "
                         f"{name} is CPU-sized already: drop --fast")
    kwargs: dict = dict(spec.fast) if fast else {}
    if spec.n_tasks is not None:
        kwargs["n_tasks"] = spec.n_tasks if n_tasks is None else n_tasks
    elif n_tasks is not None:
        raise ValueError(f"--tasks applies to {', '.join(COUNTED)} only; {name} has a fixed "
                         "length")
    if spec.seeded:
        kwargs["seed"] = seed
    return get_benchmark(name, **kwargs)


def preset_for(benchmark: str, fast: bool = False, preset: str | None = None) -> str:
    """The config preset of a benchmark: ``preset`` if given (it must be one of the
    benchmark's own, named after its spec's ``preset`` — ``<p>`` or ``<p>_...``: another
    benchmark's sizes and budget would be used silently), else ``<p>_fast`` with ``fast``
    where one exists, else ``<p>`` (by default ``<p>`` is the benchmark's name)."""
    family = get_spec(benchmark).preset or benchmark
    if preset is None:
        return f"{family}_fast" if fast and f"{family}_fast" in PRESETS else family
    own = [p for p in PRESETS if p == family or p.startswith(f"{family}_")]
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; {benchmark}'s presets are "
                         f"{', '.join(own)}")
    if preset not in own:
        raise ValueError(f"preset {preset!r} is made for another benchmark; {benchmark}'s "
                         f"presets are {', '.join(own)}")
    return preset
