"""Sweeps and multi-seed comparisons on Ray Tune: grid or random search over any config
field (:mod:`hnviz.experiments.sweep_spec` describes the spec), every trial a normal hnviz run
directory, one results table.

Trial ``k`` writes ``OUT/trials/<id>/`` (the id comes from the method, seed and point, so
a rerun finds it again). A trial whose run directory is complete is not run again: an
interrupted sweep, rerun, trains only the missing trials (HNET trials also continue from
their checkpoints). Results are read back from the run directories into
``OUT/results.csv``, ``results.json`` and ``table.md`` (mean ± std over seeds, the best
point per method); :func:`load_sweep` reads them again later.

With no address, a local Ray instance is started on this machine (bound to 127.0.0.1,
:mod:`hnviz.experiments.sweep_ray`) and stopped afterwards; ``address="auto"`` or
``"HOST:PORT"``/``"ray://HOST:10001"`` joins an existing cluster. OUT must then be on a
filesystem every node sees (the trials write their run directories there).
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from ..io.lock import run_lock
from ..learners.methods import DEFAULT_METHOD
from ..io.outdir import check_out, claim_out
from ..io.safeio import atomic_write, read_json
from .sweep_ray import check_run, reach_cluster, run_on_ray
from .sweep_spec import Trial, check_spec, expand, space_fields
from .sweep_trials import check_trials, finished, read_row
from ..results.tables import format_stat, markdown_table, stats

@dataclass
class SweepResult:
    """A sweep's ``rows`` (one per trial), ``groups`` (per method and point: mean ± std
    over seeds), ``best`` (per method: the best group), and where it is (``out``)."""

    out: Path
    rows: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    best: dict[str, dict[str, Any]]
    ran: int  # trials trained in this call (the others were finished already)
    wall_seconds: float

    def runs(self, best_only: bool = True, seed: int | None = None) -> dict[str, str]:
        """``{"<method> <point>": run directory}`` for
        :class:`hnviz.widgets.ForgettingDashboard`: each method's best point
        (``best_only``) or every point, each with the run of ``seed`` (default: the seed
        with the best final value)."""
        groups = self.best.values() if best_only else self.groups
        out = {}
        for g in groups:
            rows = [r for r in self.rows if r["method"] == g["method"] and r["point"] == g["point"]
                    and (seed is None or r["seed"] == seed)]
            if not rows:
                raise ValueError(f"seed {seed} is not in this sweep; its seeds: {g['seeds']}")
            better = max if rows[0]["metric"] == "accuracy" else min
            out[f"{g['method']} {g['point']}"] = better(rows, key=lambda r: r["average_final"])["run_dir"]
        return out

    def __repr__(self) -> str:
        return (f"SweepResult({str(self.out)!r}, {len(self.rows)} trials, {len(self.groups)} "
                f"groups, best={ {m: g['point'] for m, g in self.best.items()} })")


def _label(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def summarize(rows: list[dict[str, Any]]) -> tuple[list[dict], dict[str, dict]]:
    """Groups (method, ``point``) with mean ± std over seeds (and the seeds' values), and
    the best group per method (highest accuracy, lowest MSE)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["point"]), []).append(r)
    out = []
    for (method, point), rs in groups.items():
        g = {"method": method, "point": point, "seeds": [r["seed"] for r in rs],
             "metric": rs[0]["metric"]}
        for key in ("average_final", "during", "bwt", "forgetting", "fwt", "task_inference",
                    "wall_seconds", "compression_ratio", "trainable_params"):
            st = stats([r.get(key) for r in rs])
            if st["mean"] is not None:
                g[key] = st
        out.append(g)
    best = {}
    for g in out:
        sign = 1 if g["metric"] == "accuracy" else -1
        cur = best.get(g["method"])
        if cur is None or sign * g["average_final"]["mean"] > sign * cur["average_final"]["mean"]:
            best[g["method"]] = g
    return out, best


def markdown(groups: list[dict], best: dict[str, dict]) -> str:
    """The groups as a Markdown table, the best point of each method marked."""
    acc = bool(groups) and groups[0]["metric"] == "accuracy"
    digits = {"average_final": 2 if acc else 4, "during": 2 if acc else 4,
              "forgetting": 2 if acc else 4, "compression_ratio": 3, "wall_seconds": 1}
    headers = ["method", "point", "seeds", f"final avg {'acc (%)' if acc else 'MSE'}",
               "during", "forgetting", "compression ratio", "wall (s)", "best"]
    rows = [[g["method"], g["point"], str(len(g["seeds"])),  # the spec's order
             *(format_stat(g.get(k), d) for k, d in digits.items()),
             "**best**" if best.get(g["method"]) is g else ""] for g in groups]
    return markdown_table(headers, rows)


def _write_results(out: Path, rows: list[dict], groups: list[dict], best: dict,
                   spec: dict) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "results.csv", buf.getvalue())
    atomic_write(out / "results.json", json.dumps(
        {"spec": spec, "trials": rows, "groups": groups,
         "best": {m: g["point"] for m, g in best.items()}}, indent=1))
    atomic_write(out / "table.md", markdown(groups, best))


def _collect(out: Path, trials: list[Trial], spec: dict[str, Any], ran: int = 0,
             wall: float = 0.0, write: bool = True) -> SweepResult:
    """Rows from the trials' run directories, grouped (and the result files written)."""
    rows = [read_row(out, t) for t in trials]
    for r, t in zip(rows, trials):  # the point: the swept fields this method has
        r["point"] = ", ".join(f"{k}={_label(t.params[k])}" for k in space_fields(spec)
                               if k in t.params) or "-"
    groups, best = summarize(rows)
    if write:
        _write_results(out, rows, groups, best, spec)
    return SweepResult(out, rows, groups, best, ran, wall)


def load_sweep(out: str | Path) -> SweepResult:
    """The results of a finished sweep in ``out``, read again from its trials' run
    directories (e.g. of a sweep run with ``python -m hnviz sweep``)."""
    out = Path(out)
    spec = read_json(out / "results.json", "sweep results")["spec"]
    trials = expand(spec)
    missing = [t.trial_id for t in trials if not finished(out, t)]
    if missing:
        raise ValueError(f"{out} misses {len(missing)} finished trial(s) ({', '.join(missing[:3])}"
                         f"); rerun the sweep to finish them")
    return _collect(out, trials, check_spec(spec), write=False)


def _check_local_resources(res: dict[str, float], num_cpus: int | None) -> None:
    """A trial must fit the local Ray, else Ray would wait for resources forever."""
    cpus = num_cpus or os.cpu_count() or 1
    if res["cpu"] > cpus:
        raise ValueError(f"resources.cpu = {res['cpu']:g} per trial, but the local Ray has "
                         f"{cpus} CPUs; ask for at most {cpus} (or join a cluster with --address)")
    if res["gpu"] > 0 and not torch.cuda.is_available():
        raise ValueError(f"resources.gpu = {res['gpu']:g}, but this machine has no GPU torch "
                         "can use; set gpu: 0")


def sweep(space: dict[str, Any] | None = None, benchmark: str = "permuted_digits",
          methods: Sequence[str] | str = (DEFAULT_METHOD,), seeds: Sequence[int] | int = (0,),
          out: str | Path = "runs/sweep", address: str | None = None,
          max_concurrent: int | None = None, num_cpus: int | None = None,
          progress: bool = True, **spec: Any) -> SweepResult:
    """Run a sweep on Ray Tune (:mod:`hnviz.experiments.sweep_spec` lists the settings; ``space``,
    ``benchmark``, ``methods``, ``seeds`` and the rest of ``spec`` are its entries).

    ``address``: None starts a local Ray instance (``num_cpus``: default all cores);
    "auto" or "HOST:PORT" joins a running cluster. ``max_concurrent`` caps parallel
    trials (1: one after the other). Finished trials in ``out`` are not run again; a tqdm
    bar counts the trials (``progress``).
    """
    address = check_run(address, max_concurrent, num_cpus)  # before anything is built
    spec = check_spec({**({} if space is None else {"space": space}), "benchmark": benchmark,
                       "methods": methods, "seeds": seeds, **spec})  # each checked by type
    trials = expand(spec)
    out = check_out(out, "out", "sweep")
    missing = [t for t in trials if not finished(out, t)]
    if missing:  # all that can be refused, before anything is written
        check_trials(missing, spec)  # bad options, missing data, nets too large: before Ray
        if address is None:
            _check_local_resources(spec["resources"], num_cpus)
        else:
            reach_cluster(address)  # a cluster nothing answers for: one line, in seconds
    claim_out(out, "sweep", "out")
    with run_lock(out):  # one sweep writes here at a time (its trials lock their own)
        missing = [t for t in trials if not finished(out, t)]
        start = time.perf_counter()
        if missing:
            bar = tqdm(total=len(trials), initial=len(trials) - len(missing), desc="sweep trials",
                       unit="trial", disable=not progress)
            try:
                errors = run_on_ray(missing, spec, out, address, max_concurrent, num_cpus, bar)
            finally:
                bar.close()
            failed = [t.trial_id for t in missing if not finished(out, t)]
            if failed:
                raise RuntimeError(f"{len(failed)} trial(s) failed: {', '.join(failed[:5])}; "
                                   f"first error: {errors[0] if errors else 'unknown'}; the logs "
                                   f"are in {out / '_ray'}; rerun the sweep to retry them")
        return _collect(out, trials, spec, len(missing), time.perf_counter() - start)
