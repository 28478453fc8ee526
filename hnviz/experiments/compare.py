"""Side-by-side comparison of HNET and the baselines on one benchmark and scenario.

``compare(...)`` trains every method for every seed on the same tasks, budget and
metrics, writes one run directory per method and seed (``OUT/<method>/seed<k>``), and a
``summary.json`` plus ``table.md`` (mean ± std over seeds).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..learners.base import ContinualLearner
from ..data.benchmarks import SPECS
from ..store.checkpoint import latest_checkpoint
from .experiment import check_same_run, train_into
from ..io.lock import run_lock
from ..learners.methods import check_methods, check_scenario_methods, get_method, names
from ..io.outdir import claim_out
from ..store.runs import Run, finished_run, load_run
from ..io.safeio import SafeDir, read_json
from ..data.scenarios import apply_scenario, check_scenario
from ..results.tables import format_stat, markdown_table as table, stats
from ..core.tasks import TaskSequence
from ..learners.transfer import scratch_scores
from ..core.validate import check_int

COLUMNS = {  # summary key -> table header
    "average_final": "final avg acc (%)", "during": "during acc (%)", "bwt": "BWT",
    "forgetting": "forgetting", "fwt": "FWT", "transfer_mean": "vs scratch",
    "task_inference": "task inference (%)",
    "stability_gap": "stability gap", "gap_recovery": "gap recovery",
    "trainable_params": "trainable params", "wall_seconds": "wall time (s)",
    "peak_rss_mib": "peak RSS (MiB)",
}
OPTIONAL = ("stability_gap", "gap_recovery", "peak_rss_mib")  # columns only where a run has them
MSE_COLUMNS = {"average_final": "final avg MSE", "during": "during MSE"}  # regression


MAX_SEEDS = 1000  # seeds of one comparison or sweep
MAX_SEED = 2**32 - 2  # the largest seed (numpy's and torch's seeds, + 1 for a derived one)


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """Distinct seeds >= 0, at most ``MAX_SEEDS`` of them, else ``ValueError``."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, range)):
        raise TypeError(f"seeds must be a list of integers >= 0, got {seeds!r:.80}")
    seeds = [check_int("seed", seed, 0, MAX_SEED) for seed in seeds]
    if not seeds:
        raise ValueError("no seeds given; pass at least one seed (--seeds 1 or more)")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"{len(seeds)} seeds: a comparison runs at most {MAX_SEEDS}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"seed {repeated[0]} is given more than once; seeds must differ")
    return seeds


def make_learner(method: str, preset: str, scenario: str, seed: int, progress: bool,
                 **changes: Any) -> ContinualLearner:
    """A learner for ``method`` with the benchmark preset's architecture and budget
    (:meth:`hnviz.learners.methods.Method.make`: one head per task only in cl1)."""
    return get_method(method).make(preset, scenario, seed, progress, **changes)


def run_one(method: str, tasks: TaskSequence, preset: str, seed: int, out: Path,
            progress: bool = True, checkpoints: bool = False, overwrite: bool = False,
            scratch: bool = False, **changes: Any) -> dict[str, Any]:
    """Train one method with one seed, save its run, return its row of figures.

    ``checkpoints`` (comparisons, sweep trials): an HNET writes checkpoints into ``out``
    while it trains and, where ``out`` holds those of an unfinished run, continues from
    them; a finished run there is read back, not trained again (the caller has checked
    its settings: :func:`check_reusable`, or a sweep's trial id). Otherwise, or with
    ``overwrite``, a finished run in ``out`` is refused unless ``overwrite``.
    ``scratch``: also train the same learner on each task alone
    (:func:`hnviz.learners.transfer.scratch_scores`) for the transfer-vs-scratch column.
    """
    scenario = tasks.tasks[0].scenario
    if checkpoints and not overwrite and finished_run(out):  # done before: read it back
        return saved_row(load_run(out), scratch)
    learner = make_learner(method, preset, scenario, seed, progress, **changes)
    alone = None
    if scratch:
        alone = scratch_scores(lambda: make_learner(method, preset, scenario, seed, False,
                                                    **changes), tasks, progress).tolist()
    reuse = checkpoints and not overwrite
    done = train_into(learner, tasks, out, checkpoints=checkpoints, resume=reuse,
                      reuse_complete=reuse, overwrite=overwrite, method=method,
                      seed=seed, scratch=alone)
    return row_of(done.learner, done.wall_seconds, alone, done.peak_rss_mib)


def saved_row(run: Run, scratch: bool = False) -> dict[str, Any]:
    """The row of a finished run read back (its transfer vs scratch if ``scratch``)."""
    return row_of(run.learner, run.metrics.get("wall_seconds", 0.0),
                  run.metrics.get("scratch") if scratch else None, run.metrics.get("peak_rss_mib"))


def row_of(learner: ContinualLearner, wall_seconds: float, scratch: Any = None,
           peak_rss_mib: float | None = None) -> dict[str, Any]:
    """A run's figures for a comparison table (the keys of ``COLUMNS``); ``peak_rss_mib``
    the process's peak resident memory while the run trained."""
    s = learner.summary(scratch)
    row = {"average_final": s["average_final"], "during": float(np.mean(s["during"])),
           "bwt": s["bwt"], "forgetting": s["forgetting"], "fwt": s.get("fwt"),
           "transfer_mean": s.get("transfer_mean"),
           "trainable_params": learner.trainable_params_, "wall_seconds": wall_seconds,
           "peak_rss_mib": peak_rss_mib}
    if "task_inference" in s:
        row["task_inference"] = s["task_inference"]["average_final"]
    for key in ("stability_gap", "gap_recovery"):  # with eval_every (hnviz.core.stability)
        row[key] = s.get(key)
    return row


def compare(tasks: TaskSequence, preset: str, scenario: str, methods: Sequence[str],
            seeds: Sequence[int], out: str | Path, progress: bool = True,
            on_run: Callable[[str, int, dict], None] | None = None, overwrite: bool = False,
            scratch: bool = False, **changes: Any) -> dict[str, Any]:
    """Run every method x seed on ``tasks`` under ``scenario``; write the summary files
    (``summary.json``, ``table.md``), holding ``out``'s lock. A comparison already in
    ``out`` with the same settings and other methods is extended: the table shows its
    methods and these.

    Finished runs in ``out`` with the same settings are read back, not trained again
    (an interrupted comparison, run again, trains what is missing, and an HNET continues
    from its checkpoints); one with other settings is refused before anything trains.
    ``overwrite``: train every run anew. ``scratch``: measure transfer vs training each
    task alone (one more training per task)."""
    methods, scenario = check_methods(methods), check_scenario(scenario)
    check_scenario_methods(methods, scenario)
    seeds = check_seeds(seeds)
    tasks, out = apply_scenario(tasks, scenario), Path(out)
    settings = json.loads(json.dumps(
        {"benchmark": tasks.spec, "preset": preset, "scenario": scenario,
         "n_tasks": len(tasks), "seeds": list(seeds), "changes": changes}))
    claim_out(out, "compare", "out")  # not a link, '.', '..' or someone else's folder
    with run_lock(out):  # one comparison writes here at a time
        earlier = _earlier_methods(out, settings, overwrite)
        every = earlier + [m for m in methods if m not in earlier]
        saved: dict[tuple[str, int], Run] = {}  # finished runs, checked and read once
        for method in every:  # refuse before anything trains
            if not (overwrite and method in methods):
                for seed in seeds:
                    run = check_reusable(out / method / f"seed{seed}", method, tasks, preset,
                                         seed, scratch, **changes)
                    if run is not None:
                        saved[method, seed] = run
        rows: dict[str, list[dict]] = {m: [] for m in every}
        for method in every:
            for seed in seeds:
                if (method, seed) in saved:
                    row = saved_row(saved[method, seed], scratch)
                else:
                    row = run_one(method, tasks, preset, seed, out / method / f"seed{seed}",
                                  progress, checkpoints=True,
                                  overwrite=overwrite and method in methods, scratch=scratch,
                                  **changes)
                rows[method].append(row)
                if on_run is not None:
                    on_run(method, seed, row)
        summary = {**settings, "metric": tasks.metric,
                   "methods": {m: {k: stats([r.get(k) for r in rs]) for k in COLUMNS}
                               for m, rs in rows.items()}}
        with SafeDir(out) as d:
            d.write("summary.json", json.dumps(summary, indent=1))
            d.write("table.md", markdown_table(summary))
    return summary


def _earlier_methods(out: Path, settings: dict[str, Any], overwrite: bool) -> list[str]:
    """The methods of the comparison already in ``out`` with the same ``settings`` (its
    runs join this one's table); one with other settings is refused unless ``overwrite``."""
    if not (out / "summary.json").exists():
        return []
    earlier = read_json(out / "summary.json", "comparison")
    differ = [k for k in settings if earlier.get(k) != settings[k]]
    if not differ:
        return [m for m in earlier.get("methods", {}) if m in names()]
    if overwrite:
        return []
    k = differ[0]
    raise ValueError(f"{out} holds a comparison with other settings ({k} {earlier.get(k)!r:.120}, "
                     f"now {settings[k]!r:.120}); add methods to it only with the same "
                     "benchmark, scenario, preset, seeds and steps, or choose another --out "
                     "(--overwrite replaces it)")


def check_reusable(out: Path, method: str, tasks: TaskSequence, preset: str, seed: int,
                   scratch: bool = False, **changes: Any) -> Run | None:
    """``out`` is new, or holds a finished run (or an HNET's checkpoints) of ``method``
    with these settings, which a comparison continues; else ``ValueError`` naming what
    differs. Returns the finished run it read, None if there is none."""
    fix = (f"rerun with the same arguments to continue it, --overwrite to replace it, or "
           "choose another --out")
    expected = make_learner(method, preset, tasks.tasks[0].scenario, seed, False, **changes)
    if finished_run(out):
        run = load_run(out)
        saved = run.metrics.get("method", method)
        if saved != method or type(run.learner) is not type(expected):
            raise ValueError(f"{out} holds a run of method {saved!r}, not {method!r}; {fix}")
        check_same_run(out / "run.json", run.learner.config.to_dict(), run.spec,
                       run.learner.random_state, expected.config, tasks.spec, seed, fix)
        if scratch and run.metrics.get("scratch") is None:
            raise ValueError(f"{out / 'run.json'} was trained without --scratch; {fix}")
        return run
    if expected.resumable and (ck := latest_checkpoint(out)) is not None:
        check_same_run(ck.where.path, ck.info["config"], ck.info.get("benchmark"),
                       ck.info["random_state"], expected.config, tasks.spec, seed, fix)
    return None


def markdown_table(summary: dict[str, Any]) -> str:
    """Markdown table of a :func:`compare` summary: one row per method, mean ± std (the
    stability-gap and peak-memory columns only where a run has them)."""
    head = (f"{summary['benchmark']['name']} ({summary['n_tasks']} tasks), "
            f"{summary['scenario']}, seeds {summary['seeds']}\n\n")
    methods = summary["methods"]
    keys = [k for k in COLUMNS if k not in OPTIONAL
            or any((st.get(k) or {}).get("mean") is not None for st in methods.values())]
    name = summary["benchmark"]["name"]  # summaries written before "metric" was: by benchmark
    mse = (summary.get("metric") or (SPECS[name].metric if name in SPECS else "accuracy")) == "mse"
    mse_keys = ("average_final", "during", "bwt", "forgetting", "fwt", "transfer_mean")
    digits = {"wall_seconds": 1, "peak_rss_mib": 0, **({k: 4 for k in mse_keys} if mse else {})}
    rows = [[method] + [format_stat(st.get(k), digits.get(k, 2),
                                    thousands=k == "trainable_params") for k in keys]
            for method, st in methods.items()]
    heads = {**COLUMNS, **MSE_COLUMNS} if mse else COLUMNS
    return head + table(["method", *(heads[k] for k in keys)], rows)
