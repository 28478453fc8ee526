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

from .base import ContinualLearner
from .baselines import BaselineCL, BaselineConfig
from .config import HyperCLConfig
from .dgr import DGR
from .experiment import train_into
from .learner import HyperCL
from .runs import refuse_finished
from .safeio import atomic_write
from .scenarios import apply_scenario, check_scenario
from .tables import format_stat, markdown_table as table, stats
from .tasks import TaskSequence
from .transfer import scratch_scores
from .validate import check_int

METHODS = ("hnet", "hnet_tir", "dgr", "finetune", "ewc", "online_ewc", "si", "joint")
HNET_METHODS = ("hnet", "hnet_tir")  # HyperCL learners (hnet_tir: task_inference="replay")
AGNOSTIC = ("hnet_tir", "dgr")  # methods that exist for inferring what cl2/cl3 hide
COLUMNS = {  # summary key -> table header
    "average_final": "final avg acc (%)", "during": "during acc (%)", "bwt": "BWT",
    "forgetting": "forgetting", "fwt": "FWT", "transfer_mean": "vs scratch",
    "task_inference": "task inference (%)",
    "stability_gap": "stability gap", "gap_recovery": "gap recovery",
    "trainable_params": "trainable params", "wall_seconds": "wall time (s)",
}


def check_methods(methods: Sequence[str]) -> list[str]:
    """The method names, or a ``ValueError`` naming an unknown one and the choices."""
    methods = list(methods)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    if not methods:
        raise ValueError(f"no methods given; choose from {', '.join(METHODS)}")
    return methods


def default_methods(scenario: str) -> list[str]:
    """Every method that applies to ``scenario`` (cl1: all but HNET+TIR and DGR)."""
    return [m for m in METHODS if scenario != "cl1" or m not in AGNOSTIC]


def check_scenario_methods(methods: Sequence[str], scenario: str) -> None:
    """HNET+TIR and DGR solve cl2/cl3 only (in cl1 the task id is given); else ValueError."""
    bad = [m for m in methods if m in AGNOSTIC and scenario == "cl1"]
    if bad:
        raise ValueError(f"method(s) {', '.join(bad)} infer what cl2/cl3 hide and do not run "
                         f"in cl1; use --scenario cl2 or cl3, or leave them out")


def method_fields(method: str) -> set[str]:
    """The config fields of ``method``'s learner (what a comparison or sweep may set)."""
    if method in HNET_METHODS:
        return set(HyperCLConfig.__dataclass_fields__)
    return set(BaselineConfig.__dataclass_fields__) - {"method"}


def make_learner(method: str, preset: str, scenario: str, seed: int, progress: bool,
                 **changes: Any) -> ContinualLearner:
    """A learner for ``method`` with the benchmark preset's architecture and budget.

    Multi-head output only in cl1 (task id given); shared heads in cl2/cl3. ``hnet``
    infers tasks as its preset says (by entropy), ``hnet_tir`` by replay.
    """
    check_scenario_methods([method], scenario)
    changes = {k: v for k, v in changes.items() if v is not None}
    if method in HNET_METHODS:
        cfg = HyperCLConfig.preset(preset, **changes)
        if scenario != "cl1":
            cfg = cfg.replace(multi_head=False)
        if method == "hnet_tir":
            cfg = cfg.replace(task_inference="replay")
        return HyperCL(cfg, random_state=seed, progress=progress)
    fields = method_fields(method)  # a baseline has no beta, an HNET no ewc_lambda
    bcfg = BaselineConfig.preset(preset, method=method,
                                 **{k: v for k, v in changes.items() if k in fields})
    cls = DGR if method == "dgr" else BaselineCL
    return cls(bcfg.replace(multi_head=scenario == "cl1"), random_state=seed,
               progress=progress)


def run_one(method: str, tasks: TaskSequence, preset: str, seed: int, out: Path,
            progress: bool = True, checkpoints: bool = False, overwrite: bool = False,
            scratch: bool = False, **changes: Any) -> dict[str, Any]:
    """Train one method with one seed, save its run, return its row of figures.

    ``checkpoints`` (sweep trials): an HNET writes checkpoints into ``out`` while it
    trains and, where ``out`` holds those of an unfinished run, continues from them; a
    finished run there (its trial id names its settings) is read back, not trained
    again. Otherwise a finished run in ``out`` is refused unless ``overwrite``.
    ``scratch``: also train the same learner on each task alone
    (:func:`hnviz.transfer.scratch_scores`) for the transfer-vs-scratch column.
    """
    scenario = tasks.tasks[0].scenario
    learner = make_learner(method, preset, scenario, seed, progress, **changes)
    alone = None
    if scratch:
        alone = scratch_scores(lambda: make_learner(method, preset, scenario, seed, False,
                                                    **changes), tasks, progress).tolist()
    done = train_into(learner, tasks, out, checkpoints=checkpoints, resume=checkpoints,
                      reuse_complete=checkpoints, overwrite=overwrite, method=method,
                      seed=seed, scratch=alone)
    return row_of(done.learner, done.wall_seconds, alone)


def row_of(learner: ContinualLearner, wall_seconds: float,
           scratch: Any = None) -> dict[str, Any]:
    """A run's figures for a comparison table (the keys of ``COLUMNS``)."""
    s = learner.summary(scratch)
    row = {"average_final": s["average_final"], "during": float(np.mean(s["during"])),
           "bwt": s["bwt"], "forgetting": s["forgetting"], "fwt": s.get("fwt"),
           "transfer_mean": s.get("transfer_mean"),
           "trainable_params": learner.trainable_params_, "wall_seconds": wall_seconds}
    if "task_inference" in s:
        row["task_inference"] = s["task_inference"]["average_final"]
    for key in ("stability_gap", "gap_recovery"):  # with eval_every (hnviz.stability)
        row[key] = s.get(key)
    return row


def compare(tasks: TaskSequence, preset: str, scenario: str, methods: Sequence[str],
            seeds: Sequence[int], out: str | Path, progress: bool = True,
            on_run: Callable[[str, int, dict], None] | None = None, overwrite: bool = False,
            scratch: bool = False, **changes: Any) -> dict[str, Any]:
    """Run every method x seed on ``tasks`` under ``scenario``; write the summary files.
    Finished runs in ``out`` are refused unless ``overwrite``. ``scratch``: measure
    transfer vs training each task alone (one more training per task)."""
    methods, scenario = check_methods(methods), check_scenario(scenario)
    check_scenario_methods(methods, scenario)
    seeds = [check_int("seed", seed, 0) for seed in seeds]
    if not seeds:
        raise ValueError("no seeds given; pass at least one seed (--seeds 1 or more)")
    tasks, out = apply_scenario(tasks, scenario), Path(out)
    for method in methods:  # refuse before anything trains
        for seed in seeds:
            refuse_finished(out / method / f"seed{seed}", overwrite)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    for method in methods:
        for seed in seeds:
            row = run_one(method, tasks, preset, seed, out / method / f"seed{seed}", progress,
                          overwrite=overwrite, scratch=scratch, **changes)
            rows[method].append(row)
            if on_run is not None:
                on_run(method, seed, row)
    summary = {"benchmark": tasks.spec, "preset": preset, "scenario": scenario,
               "n_tasks": len(tasks), "seeds": list(seeds), "changes": changes,
               "methods": {m: {k: stats([r.get(k) for r in rs]) for k in COLUMNS}
                           for m, rs in rows.items()}}
    atomic_write(out / "summary.json", json.dumps(summary, indent=1))
    atomic_write(out / "table.md", markdown_table(summary))
    return summary


def markdown_table(summary: dict[str, Any]) -> str:
    """Markdown table of a :func:`compare` summary: one row per method, mean ± std (the
    stability-gap columns only where a run has them)."""
    head = (f"{summary['benchmark']['name']} ({summary['n_tasks']} tasks), "
            f"{summary['scenario']}, seeds {summary['seeds']}\n\n")
    methods = summary["methods"]
    keys = [k for k in COLUMNS if k not in ("stability_gap", "gap_recovery")
            or any((st.get(k) or {}).get("mean") is not None for st in methods.values())]
    rows = [[method] + [format_stat(st.get(k), 1 if k == "wall_seconds" else 2,
                                    thousands=k == "trainable_params") for k in keys]
            for method, st in methods.items()]
    return head + table(["method", *(COLUMNS[k] for k in keys)], rows)
