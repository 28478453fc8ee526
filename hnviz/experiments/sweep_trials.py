"""One sweep trial: where its run directory is, training it there (a worker's job on
Ray), and its row of figures read back from the run directory."""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.benchmarks import get_benchmark, get_spec
from .compare import make_learner, run_one
from ..learners.methods import get_method
from ..store.runs import load_run
from ..io.safeio import atomic_write
from ..data.scenarios import apply_scenario
from .sweep_spec import Trial
from ..core.devices import ENV as DEVICE_ENV, check_device, device_setting
from ..core.threads import training_threads
from ..core.validate import env_setting

RUN_FILES = ("run.json", "trial.json")  # trial.json is written last


def trial_dir(out: str | Path, trial: Trial) -> Path:
    return Path(out) / "trials" / trial.trial_id


def finished(out: str | Path, trial: Trial) -> bool:
    """The trial's run directory is complete (load_run checks the rest when it is read)."""
    d = trial_dir(out, trial)
    return all((d / f).is_file() for f in RUN_FILES)


def trial_tasks(spec: dict[str, Any]) -> Any:
    """The sweep's task sequence (the same for every trial; seeds vary the learner)."""
    opts = dict(spec["benchmark_options"])
    if get_spec(spec["benchmark"]).seeded:
        opts.setdefault("seed", 0)  # the same tasks for every trial; seeds vary the learner
    return apply_scenario(get_benchmark(spec["benchmark"], **opts), spec["scenario"])


def check_trials(trials: list[Trial], spec: dict[str, Any]) -> None:
    """Each trial's networks fit in memory (:meth:`ContinualLearner.check_buildable`),
    checked here before Ray starts: a sweep value such as ``emb_dim: 1e9`` is one line,
    not a failed trial far away."""
    first = trial_tasks(spec)[0]
    for t in trials:
        make_learner(t.method, spec["preset"], spec["scenario"], t.seed, False,
                     **t.params).check_buildable(first)


def run_trial(trial: dict[str, Any], spec: dict[str, Any], out: str | Path,
              threads: int = 1, ray_node: str | None = None) -> dict[str, Any]:
    """Train one trial (``Trial.to_dict()``) into its run directory, continuing an HNET
    trial's checkpoints, then write ``trial.json`` (with the host and ``ray_node``, the
    Ray node id, that ran it); returns its row. Runs in a Ray worker."""
    torch.set_num_threads(max(1, int(threads)))
    t = Trial(**trial)
    d = trial_dir(out, t)
    chosen = env_setting(DEVICE_ENV, check_device) or ""  # keep a chosen cuda:N
    device = (chosen if chosen.startswith("cuda") else "cuda") \
        if spec["resources"]["gpu"] > 0 else "cpu"  # a reserved GPU is used
    with training_threads(max(1, int(threads))), device_setting(device):
        run_one(t.method, trial_tasks(spec), spec["preset"], t.seed, d, progress=False,
                checkpoints=True, **t.params)
    atomic_write(d / "trial.json", json.dumps({**t.to_dict(), "id": t.trial_id,
                                               "host": socket.gethostname(),
                                               "ray_node": ray_node}, indent=1))
    return read_row(out, t)


def read_row(out: str | Path, trial: Trial) -> dict[str, Any]:
    """A finished trial's row, read from its run directory (the source of truth)."""
    d = trial_dir(out, trial)
    run = load_run(d)
    learner, m = run.learner, run.metrics
    row = {"trial": trial.trial_id, "method": trial.method, "seed": trial.seed,
           **{f"param.{k}": json.dumps(v) if isinstance(v, list) else v
              for k, v in sorted(trial.params.items())},
           "metric": m["metric"], "average_final": m["average_final"],
           "during": float(np.mean(m["during"])), "bwt": m["bwt"],
           "forgetting": m["forgetting"], "fwt": m.get("fwt"), "wall_seconds": m["wall_seconds"],
           "trainable_params": learner.trainable_params_,
           "target_params": learner.target_.num_params,
           "run_dir": str(d)}
    if "task_inference" in m:
        row["task_inference"] = m["task_inference"]["average_final"]
    if get_method(trial.method).hypernetwork:
        row["compression_ratio"] = learner.hnet_.compression_ratio(learner.n_tasks_)
    return row
