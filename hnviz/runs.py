"""Run directories: weights in safetensors, everything else in JSON; never pickle.

Layout of ``DIR``::

    run.json              schema version, learner ("hypercl" or "baseline"), config, seed,
                          target layout, tasks, benchmark spec
    weights.safetensors   hypercl: hnet.<name> (theta) and embeddings (T, E);
                          baseline: theta (P,), importance and anchors (K, P)
    history.safetensors   task<t>.task_loss / reg_loss (n_steps,), task<t>.emb_trajectory
    metrics.json          hnviz.metrics.summary (+ wall_seconds and extras)

Every file is written atomically (temporary file in the same directory, fsync, rename),
under the directory's lock (``DIR/.lock``, :mod:`hnviz.lock`): a second process that
trains into or saves to the same run gets a clear error.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .base import ContinualLearner
from .baselines import BaselineCL, BaselineConfig
from .benchmarks import TaskSequence, from_spec
from .config import HyperCLConfig
from .learner import HyperCL
from .lock import run_lock

SCHEMA_VERSION = 1
FILES = ("run.json", "weights.safetensors", "history.safetensors", "metrics.json")
BASELINE_TENSORS = ("theta", "importance", "anchors")  # theta_ (P,), importance_/anchors_ (K, P)
LEARNERS = {"hypercl": (HyperCL, HyperCLConfig), "baseline": (BaselineCL, BaselineConfig)}


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    atomic_write(out / "weights.safetensors", st_save(weights))
    atomic_write(out / "history.safetensors", st_save(history))
    atomic_write(out / "metrics.json", _json({**learner.summary(), **extra}))
    atomic_write(out / "run.json", _json(info))
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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {path}: {e}; the run directory is damaged") from e


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return st_load(path.read_bytes())
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"cannot read {path}: {e}; the run directory is damaged") from e


def _load_baseline(learner: BaselineCL, weights: dict[str, torch.Tensor]) -> None:
    theta, importance, anchors = (weights[k] for k in BASELINE_TENSORS)
    P = learner.target_.num_params
    if theta.shape != (P,) or importance.shape != anchors.shape or importance.shape[1:] != (P,):
        raise RuntimeError(f"saved baseline tensors do not fit a target net with P = {P}")
    learner.theta_ = torch.nn.Parameter(theta.clone())
    learner.importance_, learner.anchors_ = importance.clone(), anchors.clone()


def _nan_matrix(rows: list[list[float | None]]) -> np.ndarray:
    """A JSON matrix (None for unseen) as floats with NaN."""
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def load_run(directory: str | Path) -> Run:
    """Load a run directory written by :func:`save_run`; executes nothing it reads."""
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"run directory {str(path)!r} does not exist; pass the --out directory "
                         "of a training run")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise ValueError(f"run directory {path} lacks {', '.join(missing)}; it is not a complete "
                         "hnviz run")
    info = _read_json(path / "run.json")
    version = info.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path / 'run.json'} has schema version {version!r}, this hnviz reads "
                         f"version {SCHEMA_VERSION}; upgrade hnviz or re-save the run")
    kind = info.get("learner", "hypercl")  # runs saved before baselines existed
    if kind not in LEARNERS:
        raise ValueError(f"{path / 'run.json'} names learner {kind!r}; this hnviz reads "
                         f"{', '.join(LEARNERS)}; upgrade hnviz or re-save the run")
    cls, config_cls = LEARNERS[kind]
    try:
        learner = cls(config_cls.from_dict(info["config"]), info["random_state"], progress=False)
        t = info["target"]
        learner._build(t["in_features"], t["n_outputs"], t["n_heads"], tuple(t["in_shape"]))
        weights = _read_tensors(path / "weights.safetensors")
        if kind == "baseline":
            _load_baseline(learner, weights)
        else:
            theta = {k[len("hnet."):]: v for k, v in weights.items() if k.startswith("hnet.")}
            learner.hnet_.load_state_dict(theta, strict=True)
            learner.embeddings_ = weights["embeddings"].clone()
        learner.task_info_ = info["tasks"]
    except (KeyError, RuntimeError, TypeError) as e:
        raise ValueError(f"run directory {path} does not match its run.json: {e!r}") from e
    history = _read_tensors(path / "history.safetensors")
    learner.history_ = [{k.split(".", 1)[1]: v.numpy() for k, v in history.items()
                         if k.startswith(f"task{i}.")} for i in range(learner.n_tasks_)]
    metrics = _read_json(path / "metrics.json")
    learner.matrix_ = _nan_matrix(metrics["matrix"])
    if "task_inference" in metrics:  # HNET+ENT in cl2/cl3
        learner.inference_matrix_ = _nan_matrix(metrics["task_inference"]["matrix"])
    return Run(path, learner, metrics, info.get("benchmark"))
