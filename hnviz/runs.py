"""Run directories: weights in safetensors, everything else in JSON; never pickle.

Layout of ``DIR``::

    run.json              schema version, learner ("hypercl" or "baseline"), config, seed,
                          target layout, tasks, benchmark spec, SHA-256 of the two
                          safetensors files (written last)
    weights.safetensors   hypercl: hnet.<name> (theta) and embeddings (T, E);
                          baseline: theta (P,), importance and anchors (K, P)
    history.safetensors   task<t>.task_loss / reg_loss (n_steps,), task<t>.emb_trajectory
    metrics.json          hnviz.metrics.summary (+ wall_seconds and extras)

Loading executes nothing and checks everything: JSON syntax (no NaN), schema version,
keys, checksums, tensor shapes against run.json, finite weights; a damaged file gives a
``ValueError`` naming it, and nothing in the directory is changed.

Every file is written atomically (temporary file in the same directory, fsync, rename),
under the directory's lock (``DIR/.lock``, :mod:`hnviz.lock`): a second process that
trains into or saves to the same run gets a clear error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as st_save

from .base import ContinualLearner
from .baselines import BaselineCL, BaselineConfig
from .benchmarks import TaskSequence, from_spec
from .config import HyperCLConfig
from .learner import HyperCL
from .checkpoint import list_checkpoints
from .lock import run_lock
from .safeio import DamagedFileError, atomic_write, read_json, read_tensors, sha256

__all__ = ["Run", "atomic_write", "load_run", "save_run", "DamagedFileError"]

SCHEMA_VERSION = 1
FILES = ("run.json", "weights.safetensors", "history.safetensors", "metrics.json")
BASELINE_TENSORS = ("theta", "importance", "anchors")  # theta_ (P,), importance_/anchors_ (K, P)
LEARNERS = {"hypercl": (HyperCL, HyperCLConfig), "baseline": (BaselineCL, BaselineConfig)}


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=1, allow_nan=False)


def _weights(learner: ContinualLearner) -> dict[str, torch.Tensor]:
    if isinstance(learner, BaselineCL):
        return {k: getattr(learner, f"{k}_").detach().contiguous() for k in BASELINE_TENSORS}
    weights = {f"hnet.{n}": p.detach().contiguous() for n, p in learner.hnet_.named_parameters()}
    weights["embeddings"] = learner.embeddings_.contiguous()
    return weights


def save_run(learner: HyperCL | BaselineCL, directory: str | Path, benchmark: dict | None = None,
             **extra: Any) -> Path:
    """Save a fitted learner (and optional benchmark spec / extra metrics) to ``directory``."""
    learner._check_fitted()
    out = Path(directory)
    with run_lock(out):
        return _save_run(learner, out, benchmark, **extra)


def _save_run(learner: HyperCL | BaselineCL, out: Path, benchmark: dict | None,
              **extra: Any) -> Path:
    weights = _weights(learner)
    history = {f"task{t}.{k}": torch.as_tensor(np.ascontiguousarray(v))
               for t, h in enumerate(learner.history_) for k, v in h.items()}
    tgt = learner.target_
    kind = "baseline" if isinstance(learner, BaselineCL) else "hypercl"
    info = {"schema_version": SCHEMA_VERSION, "learner": kind, "config": learner.config.to_dict(),
            "random_state": learner.random_state,
            "target": {"in_features": tgt.in_features, "n_outputs": tgt.out_features,
                       "n_heads": tgt.n_heads, "in_shape": list(learner.in_shape_)},
            "tasks": learner.task_info_, "benchmark": benchmark}
    files = {"weights.safetensors": st_save(weights), "history.safetensors": st_save(history)}
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


def _load_baseline(learner: BaselineCL, weights: dict[str, torch.Tensor], path: Path,
                   n_tasks: int) -> None:
    missing = [k for k in BASELINE_TENSORS if k not in weights]
    if missing:
        raise _damaged(path, f"lacks tensor(s) {', '.join(missing)}")
    theta, importance, anchors = (weights[k] for k in BASELINE_TENSORS)
    P = learner.target_.num_params
    if theta.shape != (P,) or importance.shape != anchors.shape or importance.shape[1:] != (P,) \
            or importance.shape[0] > n_tasks:
        raise _damaged(path, f"holds baseline tensors of shapes {tuple(theta.shape)}, "
                       f"{tuple(importance.shape)}, {tuple(anchors.shape)}, which do not fit "
                       f"run.json's target net (P = {P}) and {n_tasks} tasks")
    learner.theta_ = torch.nn.Parameter(theta.clone())
    learner.importance_, learner.anchors_ = importance.clone(), anchors.clone()


def _load_hypercl(learner: HyperCL, weights: dict[str, torch.Tensor], path: Path,
                  n_tasks: int) -> None:
    theta = {k[len("hnet."):]: v.clone() for k, v in weights.items() if k.startswith("hnet.")}
    try:
        learner.hnet_.load_state_dict(theta, strict=True)
    except RuntimeError as e:
        raise _damaged(path, f"does not fit run.json's hypernetwork: {e}") from e
    emb = weights.get("embeddings")
    want = (n_tasks, learner.config.emb_dim)
    if emb is None or emb.shape != want:
        got = "no embeddings" if emb is None else f"embeddings of shape {tuple(emb.shape)}"
        raise _damaged(path, f"holds {got}, expected {want} (run.json's tasks and emb_dim)")
    learner.embeddings_ = emb.clone()


def _matrix(rows: Any, n_tasks: int, path: Path, key: str) -> np.ndarray:
    """A JSON matrix (None for unseen) as floats with NaN, checked to be (T, T)."""
    try:
        m = np.array([[np.nan if v is None else float(v) for v in row] for row in rows],
                     dtype=float)
    except (TypeError, ValueError) as e:
        raise _damaged(path, f"has a {key!r} that is not a matrix of numbers ({e})") from e
    if m.shape != (n_tasks, n_tasks):
        raise _damaged(path, f"has a {key!r} of shape {m.shape}, expected "
                       f"({n_tasks}, {n_tasks}) for run.json's {n_tasks} tasks")
    return m


def _require(info: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in info]
    if missing:
        raise _damaged(path, f"lacks {', '.join(repr(k) for k in missing)}")


def load_run(directory: str | Path) -> Run:
    """Load a run directory written by :func:`save_run`; executes nothing it reads and
    changes nothing. Any damage raises a ``ValueError`` that names the file."""
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"run directory {str(path)!r} does not exist; pass the --out directory "
                         "of a training run")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        unfinished = list_checkpoints(path)
        if unfinished:
            raise ValueError(f"{path} holds an unfinished run (newest checkpoint: "
                             f"{unfinished[-1].describe()}); finish it with `python -m hnviz "
                             f"train ... --out {path} --resume` or HyperCL.resume({str(path)!r})")
        raise ValueError(f"run directory {path} lacks {', '.join(missing)}; it is not a complete "
                         "hnviz run")
    run_json = path / "run.json"
    info = read_json(run_json)
    version = info.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{run_json} has schema version {version!r}, this hnviz reads "
                         f"version {SCHEMA_VERSION}; upgrade hnviz or re-save the run")
    kind = info.get("learner", "hypercl")  # runs saved before baselines existed
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
    cls, config_cls = LEARNERS[kind]
    try:
        learner = cls(config_cls.from_dict(info["config"]), info["random_state"], progress=False)
        if not all(isinstance(t[k], int) and not isinstance(t[k], bool) and t[k] >= 1
                   for k in ("in_features", "n_outputs", "n_heads")):
            raise ValueError(f"target layout {t} needs integers >= 1")
        learner._build(t["in_features"], t["n_outputs"], t["n_heads"], tuple(t["in_shape"]))
    except (TypeError, ValueError, RuntimeError) as e:
        raise _damaged(run_json, f"does not describe a learner hnviz can build: {e}") from e
    checksums = info.get("sha256") or {}  # runs saved before checksums: none
    weights_path = path / "weights.safetensors"
    weights = read_tensors(weights_path, checksums.get(weights_path.name))
    if kind == "baseline":
        _load_baseline(learner, weights, weights_path, len(tasks))
    else:
        _load_hypercl(learner, weights, weights_path, len(tasks))
    learner.task_info_ = tasks
    history_path = path / "history.safetensors"
    history = read_tensors(history_path, checksums.get(history_path.name))
    learner.history_ = [{k.split(".", 1)[1]: v.numpy() for k, v in history.items()
                         if k.startswith(f"task{i}.")} for i in range(len(tasks))]
    metrics_path = path / "metrics.json"
    metrics = read_json(metrics_path)
    _require(metrics, ("matrix", "metric"), metrics_path)
    learner.matrix_ = _matrix(metrics["matrix"], len(tasks), metrics_path, "matrix")
    if "task_inference" in metrics:  # HNET+ENT in cl2/cl3
        inference = metrics["task_inference"]
        if not isinstance(inference, dict) or "matrix" not in inference:
            raise _damaged(metrics_path, "has a 'task_inference' entry without a matrix")
        learner.inference_matrix_ = _matrix(inference["matrix"], len(tasks), metrics_path,
                                            "task_inference.matrix")
    return Run(path, learner, metrics, info.get("benchmark"))
