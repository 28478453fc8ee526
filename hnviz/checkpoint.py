"""Checkpoints of a hypernetwork run: everything needed to continue it exactly.

A checkpoint lives in ``DIR/checkpoints/`` as a pair of files named after its position
(tasks done, steps done in the current task)::

    ckpt-00003-0000120.safetensors   tensors: hnet.<name> (theta), embeddings (T, E),
                                     history.task<t>.<key> of finished tasks, the RNG
                                     states (the learner's generator, torch's, numpy's
                                     key) and, in the middle of a task, task.emb (E,),
                                     task.perm (N,) (the epoch's data order),
                                     task.task_loss / task.reg_loss / task.trajectory so
                                     far, theta_star.<name> (theta* of the regularizer) and
                                     opt.theta.<i>.* / opt.emb.0.* (Adam's moments, step)
    ckpt-00003-0000120.json          schema version, position, config, seed, target
                                     layout, task info, metric matrices, benchmark spec,
                                     python's and numpy's RNG positions, elapsed seconds,
                                     and the SHA-256 of the tensor file

Both are written atomically (temporary file, fsync, rename), the tensors first: a
checkpoint is complete when its JSON exists, and the JSON's checksum proves that the
tensors are the ones written with it. A process killed while writing leaves at most an
incomplete checkpoint, which resuming skips (the one before it is kept until a newer one
is complete). The regularizer's targets are not stored: they are recomputed from
theta* at resume, by the same operations as at the start of the task, so bit for bit
the same. Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from safetensors.torch import save as st_save

from .benchmarks import Task
from .config import HyperCLConfig
from .regularizer import RegTargets
from .safeio import DamagedFileError, atomic_write, read_json, read_tensors, sha256
from .train import BatchSampler, NonFiniteLossError, StepState

if TYPE_CHECKING:
    from .learner import HyperCL

CHECKPOINT_SCHEMA = 1
SUBDIR = "checkpoints"
_NAME = re.compile(r"^ckpt-(\d{5})-(\d{7})\.json$")
_REQUIRED = ("schema_version", "tasks_done", "step", "n_tasks", "task_names", "config",
             "random_state", "target", "task_info", "matrix", "inference_matrix",
             "python_rng", "numpy_rng", "tensors", "sha256", "elapsed_seconds",
             "checkpoint_every", "keep")


class CheckpointError(DamagedFileError):
    """A checkpoint cannot be read or does not fit (names the file and the fix)."""


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / SUBDIR


def _stem(tasks_done: int, step: int) -> str:
    return f"ckpt-{tasks_done:05d}-{step:07d}"


@dataclass(frozen=True)
class CheckpointInfo:
    """A complete checkpoint on disk: its position and its JSON file."""

    tasks_done: int
    step: int  # steps done in task ``tasks_done`` (0: at a task boundary)
    path: Path  # the JSON file

    @property
    def tensors_path(self) -> Path:
        return self.path.with_suffix(".safetensors")

    def describe(self) -> str:
        if self.step == 0:
            return f"after task {self.tasks_done}"
        return f"task {self.tasks_done + 1}, step {self.step}"


def list_checkpoints(run_dir: str | Path) -> list[CheckpointInfo]:
    """Complete checkpoints of ``run_dir`` (those with a JSON file), oldest first."""
    ck = checkpoint_dir(run_dir)
    if not ck.is_dir():
        return []
    found = []
    for p in ck.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append(CheckpointInfo(int(m.group(1)), int(m.group(2)), p))
    return sorted(found, key=lambda c: (c.tasks_done, c.step))


# ---------------------------------------------------------------------------- writing
def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """torch's and numpy's global RNG as tensors; python's and numpy's scalars as JSON."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    tensors = {"rng.torch": torch.get_rng_state(),
               "rng.numpy_keys": torch.from_numpy(keys.astype(np.int64))}
    return (tensors, {"version": version, "state": list(internal), "gauss_next": gauss_next},
            {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
             "cached_gaussian": float(gauss)})


def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        for key, value in opt.state.get(p, {}).items():
            out[f"{prefix}.{i}.{key}"] = torch.as_tensor(value).detach().clone().contiguous()
    return out


def _state_tensors(learner: "HyperCL", s: StepState | None) -> dict[str, torch.Tensor]:
    t = {f"hnet.{n}": p.detach().clone().contiguous() for n, p in learner.hnet_.named_parameters()}
    t["embeddings"] = learner.embeddings_.contiguous()
    t["rng.gen"] = learner.gen_.get_state()
    for i, h in enumerate(learner.history_):
        for k, v in h.items():
            t[f"history.task{i}.{k}"] = torch.as_tensor(np.ascontiguousarray(v))
    if s is not None:
        t["task.emb"] = s.emb.detach().clone()
        t["task.perm"] = s.sampler.perm.contiguous()
        for k, v in s.history.items():
            t[f"task.{k}"] = torch.tensor(v, dtype=torch.float64)
        t["task.trajectory"] = torch.stack(s.trajectory)
        t.update(_optimizer_tensors("opt.theta", s.theta_opt))
        t.update(_optimizer_tensors("opt.emb", s.emb_opt))
        if s.reg is not None:
            t.update({f"theta_star.{n}": v.contiguous() for n, v in s.reg.theta_star.items()})
    return t


def _matrix_json(m: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in m]


class Checkpointer:
    """Writes checkpoints of a :class:`~hnviz.HyperCL` into ``run_dir/checkpoints``: after
    every task, every ``every`` steps within a task (None: only after tasks), keeping the
    ``keep`` newest. ``tasks`` is the whole sequence (names checked at resume),
    ``spec`` its benchmark spec (tasks rebuilt at resume), ``elapsed`` earlier seconds."""

    def __init__(self, run_dir: str | Path, tasks: Sequence[Task], every: int | None = None,
                 keep: int = 2, spec: dict | None = None, elapsed: float = 0.0):
        if every is not None and (not isinstance(every, (int, np.integer)) or
                                  isinstance(every, bool) or every < 1):
            raise ValueError(f"checkpoint_every must be an integer >= 1 or None, got {every!r}")
        if not isinstance(keep, (int, np.integer)) or isinstance(keep, bool) or keep < 1:
            raise ValueError(f"keep must be an integer >= 1, got {keep!r}")
        self.dir = checkpoint_dir(run_dir)
        self.every, self.keep, self.spec = every, int(keep), spec
        self.n_tasks, self.names = len(tasks), [t.name for t in tasks]
        self.elapsed, self._t0 = float(elapsed), time.perf_counter()
        self.write_seconds = 0.0  # time spent writing checkpoints (the overhead)
        self.written = 0

    def elapsed_seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self._t0

    def after_step(self, learner: "HyperCL", s: StepState) -> None:
        if self.every and s.step % self.every == 0 and s.step < learner.config.n_steps:
            self.save(learner, s)

    def save(self, learner: "HyperCL", s: StepState | None) -> CheckpointInfo:
        """Write the learner's state (``s``: the task in progress, None at a boundary)."""
        start = time.perf_counter()
        tasks_done, step = learner.n_tasks_, (0 if s is None else s.step)
        tensors = _state_tensors(learner, s)
        stem = _stem(tasks_done, step)
        self.dir.mkdir(parents=True, exist_ok=True)
        bad = [n for n, t in tensors.items()
               if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            raise NonFiniteLossError(
                f"the weights became non-finite in task {tasks_done + 1} by step {step} "
                f"({', '.join(bad[:3])}); no checkpoint is written and the last good one "
                f"stays. Lower config.lr or beta, or check the task's data for NaN/inf")
        rng_tensors, py_rng, np_rng = _rng_state()
        tensors.update(rng_tensors)
        data = st_save(tensors)
        tgt = learner.target_
        info = {
            "schema_version": CHECKPOINT_SCHEMA, "tasks_done": tasks_done, "step": step,
            "n_tasks": self.n_tasks, "task_names": self.names,
            "config": learner.config.to_dict(), "random_state": learner.random_state,
            "target": {"in_features": tgt.in_features, "n_outputs": tgt.out_features,
                       "n_heads": tgt.n_heads, "in_shape": list(learner.in_shape_)},
            "task_info": learner.task_info_, "matrix": _matrix_json(learner.matrix_),
            "inference_matrix": _matrix_json(learner.inference_matrix_),
            "sampler_pos": None if s is None else s.sampler.pos,
            "python_rng": py_rng, "numpy_rng": np_rng, "benchmark": self.spec,
            "elapsed_seconds": self.elapsed_seconds(), "checkpoint_every": self.every,
            "keep": self.keep, "tensors": f"{stem}.safetensors", "sha256": sha256(data),
        }
        atomic_write(self.dir / f"{stem}.safetensors", data)
        atomic_write(self.dir / f"{stem}.json", json.dumps(info, indent=1, allow_nan=False))
        self._prune()
        self.written += 1
        self.write_seconds += time.perf_counter() - start
        return CheckpointInfo(tasks_done, step, self.dir / f"{stem}.json")

    def _prune(self) -> None:
        """Remove all but the ``keep`` newest complete checkpoints, and tensor files older
        than the newest that have no JSON (left by a kill between the two writes)."""
        done = list_checkpoints(self.dir.parent)
        for old in done[:-self.keep]:
            old.path.unlink(missing_ok=True)  # JSON first: never a JSON without tensors
            old.tensors_path.unlink(missing_ok=True)
        complete = {c.tensors_path.name for c in done}
        for p in self.dir.glob("ckpt-*.safetensors"):
            if p.name not in complete and p.name < done[-1].tensors_path.name:
                p.unlink(missing_ok=True)


def remove_checkpoints(run_dir: str | Path) -> None:
    """Delete ``run_dir/checkpoints`` (checkpoint files only; nothing else there)."""
    ck = checkpoint_dir(run_dir)
    if not ck.is_dir():
        return
    for p in ck.iterdir():
        if p.name.startswith(("ckpt-", ".ckpt-")):
            p.unlink(missing_ok=True)
    if not any(ck.iterdir()):
        ck.rmdir()


def clean_temporaries(run_dir: str | Path) -> list[Path]:
    """Remove temporary files of checkpoint writes that were killed; returns them."""
    ck = checkpoint_dir(run_dir)
    stale = list(ck.glob(".ckpt-*.tmp")) if ck.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# ---------------------------------------------------------------------------- reading
@dataclass
class Checkpoint:
    """A checkpoint read and checked: its JSON ``info`` and ``tensors``."""

    where: CheckpointInfo
    info: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def finished(self) -> bool:
        return self.info["tasks_done"] == self.info["n_tasks"] and self.info["step"] == 0


def read_checkpoint(where: CheckpointInfo) -> Checkpoint:
    """Read one checkpoint and check it: schema, keys, checksum, finite tensors."""
    info = read_json(where.path, "checkpoint")
    missing = [k for k in _REQUIRED if k not in info]
    if info.get("schema_version", CHECKPOINT_SCHEMA) != CHECKPOINT_SCHEMA:
        raise CheckpointError(f"{where.path} has checkpoint schema version "
                              f"{info['schema_version']!r}; this hnviz reads version "
                              f"{CHECKPOINT_SCHEMA}; resume it with the hnviz that wrote it")
    if missing:
        raise CheckpointError(f"{where.path} lacks {', '.join(missing)}; the checkpoint is "
                              "damaged; delete it to resume from the one before")
    if (info["tasks_done"], info["step"]) != (where.tasks_done, where.step):
        raise CheckpointError(f"{where.path} says task {info['tasks_done']} step "
                              f"{info['step']}, not what its name says; the checkpoint is damaged")
    path = where.tensors_path
    if info["tensors"] != path.name:
        raise CheckpointError(f"{where.path} names tensor file {info['tensors']!r}, expected "
                              f"{path.name!r}; the checkpoint is damaged")
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete; delete "
                              f"{where.path.name} to resume from the one before")
    try:
        tensors = read_tensors(path, info["sha256"], "checkpoint", where.path.name)
    except DamagedFileError as e:
        raise CheckpointError(f"{e}; delete {path.name} and {where.path.name} to resume from "
                              "the checkpoint before") from e
    return Checkpoint(where, info, tensors)


def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The newest complete checkpoint of ``run_dir`` (None if there is none). A damaged
    newest checkpoint raises (naming the file) rather than being skipped silently."""
    found = list_checkpoints(run_dir)
    return read_checkpoint(found[-1]) if found else None


def _tensor(ck: Checkpoint, name: str) -> torch.Tensor:
    try:
        return ck.tensors[name]
    except KeyError:
        raise CheckpointError(f"{ck.where.tensors_path} lacks tensor {name!r}; the checkpoint "
                              "is damaged") from None


def _load_optimizer(ck: Checkpoint, prefix: str, opt: torch.optim.Optimizer) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    state = {}
    for i, p in enumerate(params):
        entry = {key: _tensor(ck, f"{prefix}.{i}.{key}").clone()
                 for key in ("step", "exp_avg", "exp_avg_sq")}
        if entry["exp_avg"].shape != p.shape or entry["exp_avg_sq"].shape != p.shape:
            raise CheckpointError(f"{ck.where.tensors_path}: optimizer state {prefix}.{i} has "
                                  f"shape {tuple(entry['exp_avg'].shape)}, the parameter "
                                  f"{tuple(p.shape)}; the checkpoint is damaged")
        state[i] = entry
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})


def _restore_global_rng(ck: Checkpoint) -> None:
    py, npr = ck.info["python_rng"], ck.info["numpy_rng"]
    try:
        torch.set_rng_state(_tensor(ck, "rng.torch"))
        keys = _tensor(ck, "rng.numpy_keys").numpy().astype(np.uint32)
        np.random.set_state((npr["kind"], keys, npr["pos"], npr["has_gauss"],
                             npr["cached_gaussian"]))
        random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{ck.where.path}: the saved RNG states do not load ({e}); the "
                              "checkpoint is damaged") from e


def _matrix(rows: Any, done: int, path: Path) -> np.ndarray:
    """A saved (done, done) metric matrix (None for unseen) as floats with NaN."""
    try:
        m = np.array([[np.nan if v is None else float(v) for v in row] for row in rows])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: the metric matrix does not read ({e}); the checkpoint "
                              "is damaged") from e
    m = m.reshape(0, 0) if done == 0 and m.size == 0 else m
    if m.shape != (done, done):
        raise CheckpointError(f"{path}: metric matrix of shape {m.shape} for {done} tasks done; "
                              "the checkpoint is damaged")
    return m


def _history(ck: Checkpoint, prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v.numpy() for k, v in ck.tensors.items() if k.startswith(prefix)}


def restore(cls: type["HyperCL"], ck: Checkpoint, tasks: Sequence[Task], progress: bool = True,
            callbacks: Sequence[Any] = ()) -> tuple["HyperCL", StepState | None]:
    """A learner in the state of checkpoint ``ck`` (and the task in progress, if any),
    with the global RNGs as they were; ``tasks`` the run's whole sequence."""
    info, path = ck.info, ck.where.path
    names = [t.name for t in tasks]
    if names != info["task_names"]:
        raise CheckpointError(f"the tasks given do not match {path}: it was written for "
                              f"{info['n_tasks']} task(s) {info['task_names'][:3]}..., got "
                              f"{len(names)} {names[:3]}...; pass the run's own task sequence")
    done = info["tasks_done"]
    try:
        config = HyperCLConfig.from_dict(info["config"])
        learner = cls(config, info["random_state"], progress=progress, callbacks=callbacks)
        t = info["target"]
        learner._build(t["in_features"], t["n_outputs"], t["n_heads"], tuple(t["in_shape"]))
        theta = {k[len("hnet."):]: v.clone() for k, v in ck.tensors.items()
                 if k.startswith("hnet.")}
        learner.hnet_.load_state_dict(theta, strict=True)
        learner.gen_.set_state(_tensor(ck, "rng.gen"))
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} does not describe a loadable learner: {e}; the "
                              "checkpoint is damaged") from e
    emb = _tensor(ck, "embeddings")
    if emb.shape != (done, config.emb_dim):
        raise CheckpointError(f"{ck.where.tensors_path}: embeddings of shape {tuple(emb.shape)}, "
                              f"expected ({done}, {config.emb_dim}); the checkpoint is damaged")
    learner.embeddings_ = emb.clone()
    learner.history_ = [_history(ck, f"history.task{i}.") for i in range(done)]
    learner.task_info_ = info["task_info"]
    learner.tasks_ = list(tasks[:done])
    learner.matrix_ = _matrix(info["matrix"], done, path)
    if info["inference_matrix"]:
        learner.inference_matrix_ = _matrix(info["inference_matrix"], done, path)
    if not isinstance(learner.task_info_, list) or len(learner.task_info_) != done:
        raise CheckpointError(f"{path}: task_info does not list the {done} tasks done; the "
                              "checkpoint is damaged")
    state = None
    if info["step"] > 0:
        state = _restore_task(learner, ck, tasks[done])
    _restore_global_rng(ck)
    return learner, state


def _restore_task(learner: "HyperCL", ck: Checkpoint, task: Task) -> StepState:
    cfg, info = learner.config, ck.info
    if not 0 < info["step"] < cfg.n_steps:
        raise CheckpointError(f"{ck.where.path}: step {info['step']} is outside the task's "
                              f"{cfg.n_steps} steps; the checkpoint is damaged")
    emb = _tensor(ck, "task.emb")
    if emb.shape != (cfg.emb_dim,):
        raise CheckpointError(f"{ck.where.tensors_path}: task.emb of shape {tuple(emb.shape)}, "
                              f"expected ({cfg.emb_dim},); the checkpoint is damaged")
    emb = torch.nn.Parameter(emb.clone())
    reg = None
    star = {k[len("theta_star."):]: v for k, v in ck.tensors.items()
            if k.startswith("theta_star.")}
    if star:
        own = dict(learner.hnet_.named_parameters())
        if set(star) != set(own) or any(star[n].shape != own[n].shape for n in own):
            raise CheckpointError(f"{ck.where.tensors_path}: theta_star does not fit the "
                                  "hypernetwork; the checkpoint is damaged")
        reg = RegTargets(learner.hnet_, learner.embeddings_, cfg.reg_targets, theta_star=star)
    s = StepState(task, emb, torch.optim.Adam(learner.hnet_.parameters(), lr=cfg.lr),
                  torch.optim.Adam([emb], lr=cfg.emb_lr or cfg.lr), reg, learner.gen_)
    try:
        _load_optimizer(ck, "opt.theta", s.theta_opt)
        _load_optimizer(ck, "opt.emb", s.emb_opt)
        s.sampler = BatchSampler(len(task.x_train), cfg.batch_size, learner.gen_,
                                 perm=_tensor(ck, "task.perm"), pos=info["sampler_pos"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{ck.where.path}: the task in progress does not load ({e}); "
                              "the checkpoint is damaged") from e
    s.step = info["step"]
    for key in ("task_loss", "reg_loss"):
        values = _tensor(ck, f"task.{key}")
        if values.shape != (s.step,):
            raise CheckpointError(f"{ck.where.tensors_path}: task.{key} has "
                                  f"{values.numel()} values for {s.step} steps done; the "
                                  "checkpoint is damaged")
        s.history[key] = values.tolist()
    s.trajectory = list(_tensor(ck, "task.trajectory").clone())
    return s
