"""Run directories: weights in safetensors, everything else in JSON; never pickle.

Layout of ``DIR``::

    run.json              schema version, learner ("hypercl" or "baseline"), config, seed,
                          target layout, tasks, benchmark spec, SHA-256 of the two
                          safetensors files (written last)
    weights.safetensors   hypercl: hnet.<name> (theta) and embeddings (T, E);
                          baseline: theta (P,), importance and anchors (K, P)
    history.safetensors   task<t>.task_loss / reg_loss (n_steps,), task<t>.emb_trajectory
    metrics.json          hnviz.metrics.summary (+ wall_seconds and extras)

What the files hold is the learner's :class:`hnviz.state.LearnerState` (its
``state_dict``), without the training-only part. Loading executes nothing and checks
everything: JSON syntax (no NaN), schema version, keys, checksums, tensor shapes against
run.json, finite weights; a damaged file gives a ``ValueError`` naming it, and nothing in
the directory is changed.

Every file is written atomically (temporary file in the same directory, fsync, rename),
under the directory's lock (``DIR/.lock``, :mod:`hnviz.lock`): a second process that
trains into or saves to the same run gets a clear error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save as st_save

from .base import ContinualLearner
from .baselines import BaselineCL
from .benchmarks import from_spec
from .checkpoint import list_checkpoints
from .learner import HyperCL
from .lock import run_lock
from .safeio import DamagedFileError, atomic_write, read_json, read_tensors, sha256
from .state import LearnerState, StateError
from .tasks import TaskSequence

__all__ = ["Run", "load_run", "save_run", "write_run", "DamagedFileError"]

SCHEMA_VERSION = 1
FILES = ("run.json", "weights.safetensors", "history.safetensors", "metrics.json")
LEARNERS: dict[str, type[ContinualLearner]] = {"hypercl": HyperCL, "baseline": BaselineCL}
_FILE_OF = {"weights": "weights.safetensors", "training": "weights.safetensors",
            "matrix": "metrics.json", "meta": "run.json"}


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=1, allow_nan=False)


def save_run(learner: ContinualLearner, directory: str | Path, benchmark: dict | None = None,
             **extra: Any) -> Path:
    """Save a fitted learner (and optional benchmark spec / extra metrics) to ``directory``,
    holding the directory's lock."""
    learner.check_fitted()
    out = Path(directory)
    with run_lock(out):
        return write_run(learner, out, benchmark, **extra)


def write_run(learner: ContinualLearner, out: Path, benchmark: dict | None = None,
              **extra: Any) -> Path:
    """Write the run files of ``learner`` into ``out`` (the caller holds its lock):
    ``metrics.json`` is the learner's summary plus ``extra``; run.json last."""
    state = learner.state_dict()
    meta = state.meta
    info = {"schema_version": SCHEMA_VERSION, "learner": meta["learner"],
            "config": meta["config"], "random_state": meta["random_state"],
            "target": meta["target"], "tasks": meta["task_info"], "benchmark": benchmark}
    files = {"weights.safetensors": st_save(state.weights),
             "history.safetensors": st_save(state.history)}
    info["sha256"] = {name: sha256(data) for name, data in files.items()}
    for name, data in files.items():
        atomic_write(out / name, data)
    atomic_write(out / "metrics.json", _json({**learner.summary(), **extra}))
    atomic_write(out / "run.json", _json(info))  # last: it vouches for the others
    return out


@dataclass
class Run:
    """A loaded run: the fitted ``learner``, its ``metrics`` and benchmark ``spec``."""

    path: Path
    learner: HyperCL | BaselineCL
    metrics: dict[str, Any]
    spec: dict[str, Any] | None

    def tasks(self) -> TaskSequence:
        """Rebuild the benchmark the run was trained on (from its saved spec)."""
        if self.spec is None:
            raise ValueError(f"run {self.path} has no benchmark spec; build the tasks yourself")
        return from_spec(self.spec)


def _damaged(path: Path, problem: str) -> DamagedFileError:
    return DamagedFileError(f"{path} {problem}; the run directory is damaged (re-save or "
                            "re-train the run)")


def _require(info: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in info]
    if missing:
        raise _damaged(path, f"lacks {', '.join(repr(k) for k in missing)}")


def _check_files(path: Path) -> None:
    """``path`` is a directory with every run file, else a ValueError saying what it is."""
    if not path.is_dir():
        raise ValueError(f"run directory {str(path)!r} does not exist; pass the --out directory "
                         "of a training run")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        unfinished = list_checkpoints(path)
        if unfinished:
            raise ValueError(f"{path} holds an unfinished run (newest checkpoint: "
                             f"{unfinished[-1].describe()}); finish it with `python -m hnviz "
                             f"train ... --out {path} --resume` or hnviz.resume({str(path)!r})")
        raise ValueError(f"run directory {path} lacks {', '.join(missing)}; it is not a complete "
                         "hnviz run")


def _read_info(run_json: Path) -> dict[str, Any]:
    """run.json, checked for its version, learner kind and keys."""
    info = read_json(run_json)
    version = info.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{run_json} has schema version {version!r}, this hnviz reads "
                         f"version {SCHEMA_VERSION}; upgrade hnviz or re-save the run")
    kind = info.setdefault("learner", "hypercl")  # runs saved before baselines existed
    if kind not in LEARNERS:
        raise ValueError(f"{run_json} names learner {kind!r}; this hnviz reads "
                         f"{', '.join(LEARNERS)}; upgrade hnviz or re-save the run")
    _require(info, ("config", "random_state", "target", "tasks"), run_json)
    tasks, t = info["tasks"], info["target"]
    if not isinstance(tasks, list) or not tasks or not all(isinstance(x, dict) for x in tasks):
        raise _damaged(run_json, "has a 'tasks' entry that is not a list of task records")
    if not isinstance(t, dict):
        raise _damaged(run_json, "has a 'target' entry that is not an object")
    _require(t, ("in_features", "n_outputs", "n_heads", "in_shape"), run_json)
    return info


def load_run(directory: str | Path) -> Run:
    """Load a run directory written by :func:`save_run`; executes nothing it reads and
    changes nothing. Any damage raises a ``ValueError`` that names the file."""
    path = Path(directory)
    _check_files(path)
    info = _read_info(path / "run.json")
    checksums = info.get("sha256") or {}  # runs saved before checksums: none
    weights, history = (read_tensors(path / name, checksums.get(name))
                        for name in ("weights.safetensors", "history.safetensors"))
    metrics_path = path / "metrics.json"
    metrics = read_json(metrics_path)
    _require(metrics, ("matrix", "metric"), metrics_path)
    inference = metrics.get("task_inference")  # HNET+ENT in cl2/cl3
    if "task_inference" in metrics and (not isinstance(inference, dict) or
                                        not inference.get("matrix")):
        raise _damaged(metrics_path, "has a 'task_inference' entry without a matrix")
    meta = {"learner": info["learner"], "config": info["config"],
            "random_state": info["random_state"], "target": info["target"],
            "task_info": info["tasks"], "matrix": metrics["matrix"],
            "inference_matrix": inference["matrix"] if inference else None, "step": 0}
    try:
        learner = LEARNERS[info["learner"]].from_state_dict(
            LearnerState(meta, weights, history), progress=False)
    except StateError as e:
        against = "" if e.part == "meta" else " (checked against run.json)"
        raise _damaged(path / _FILE_OF[e.part], f"{e}{against}") from e
    return Run(path, learner, metrics, info.get("benchmark"))
