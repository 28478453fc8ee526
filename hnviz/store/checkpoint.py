"""Checkpoints of a hypernetwork run: everything needed to continue it exactly.

A checkpoint lives in ``DIR/checkpoints/`` as a pair of files named after its position
(tasks done, steps done in the current task)::

    ckpt-00003-0000120.safetensors   tensors of the learner's state (hnviz.LearnerState):
                                     hnet.<name> (theta), embeddings (T, E),
                                     history.task<t>.<key> of finished tasks, rng.gen (the
                                     learner's generator) and, in the middle of a task,
                                     task.emb (E,), task.perm (N,) (the epoch's data order),
                                     task.task_loss / task.reg_loss / task.trajectory so
                                     far, theta_star.<name> (theta* of the regularizer) and
                                     opt.theta.<i>.* / opt.emb.0.* (Adam's moments, step);
                                     plus torch's and numpy's global RNG (rng.torch,
                                     rng.numpy_keys)
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
import os
import random
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import save as st_save

from ..learners.base import ContinualLearner
from ..learners.config import MAX_STEPS
from ..learners.learner_state import LearnerState, StateError, history_bytes, max_params
from ..learners.methods import learner_classes
from ..io.safeio import DamagedFileError, SafeDir, kind_of, read_json, read_tensors, sha256
from ..core.tasks import Task
from ..core.train import Callback, NonFiniteLossError

CHECKPOINT_SCHEMA = 1
SUBDIR = "checkpoints"
_NAME = re.compile(r"^ckpt-(\d{5})-(\d{7})\.json$")
_REQUIRED = ("schema_version", "tasks_done", "step", "n_tasks", "task_names", "config",
             "random_state", "target", "task_info", "matrix", "inference_matrix",
             "python_rng", "numpy_rng", "tensors", "sha256", "elapsed_seconds",
             "checkpoint_every", "keep")
_LEARNER_META = ("config", "random_state", "target", "task_info", "matrix",
                 "inference_matrix", "before", "fresh", "step", "sampler_pos")


class CheckpointError(DamagedFileError):
    """A checkpoint cannot be read or does not fit (names the file and the fix)."""


def is_final(info: dict[str, Any]) -> bool:
    """A checkpoint's JSON ``info`` is of a finished run (every task done, none in progress)."""
    return (info.get("tasks_done"), info.get("step")) == (info.get("n_tasks"), 0)


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / SUBDIR


def _stem(tasks_done: int, step: int) -> str:
    return f"ckpt-{tasks_done:05d}-{step:07d}"


def check_every(every: Any) -> None:
    """``every`` (steps between checkpoints within a task) is None or an integer from 1
    to ``MAX_STEPS``, else a ``ValueError``."""
    if every is not None and (not isinstance(every, (int, np.integer)) or
                              isinstance(every, bool) or not 1 <= every <= MAX_STEPS):
        raise ValueError(f"checkpoint_every must be an integer from 1 to {MAX_STEPS:,} or "
                         f"None, got {every!r}")


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


def _checkpoints(run_dir: str | Path, create: bool = False) -> SafeDir | None:
    """``run_dir/checkpoints`` opened without following links (None if it is missing and
    not ``create``); a link there is refused."""
    run = Path(run_dir)
    if not create and not os.path.lexists(run / SUBDIR):
        return None
    with SafeDir(run, create=create, follow=not create) as d:
        return d.subdir(SUBDIR, create=create)


def list_checkpoints(run_dir: str | Path) -> list[CheckpointInfo]:
    """Complete checkpoints of ``run_dir`` (those with a JSON file), oldest first."""
    ck = _checkpoints(run_dir)
    if ck is None:
        return []
    with ck:
        found = []
        for name, st in ck.entries("ckpt-"):
            if not (m := _NAME.match(name)):
                continue
            if not stat.S_ISREG(st.st_mode):  # never skipped: resuming from an older one
                raise CheckpointError(f"{ck.path / name} is {kind_of(st.st_mode)}, not a "
                                      "checkpoint file; remove it to resume from the "
                                      "checkpoint before")
            found.append(CheckpointInfo(int(m.group(1)), int(m.group(2)), ck.path / name))
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


def state_tensors(state: LearnerState) -> dict[str, torch.Tensor]:
    """A state's tensors under their checkpoint names (history as ``history.<key>``)."""
    return {**state.weights, **state.training,
            **{f"history.{k}": v for k, v in state.history.items()}}


class Checkpointer(Callback):
    """A callback that writes checkpoints of a :class:`~hnviz.HyperCL` into
    ``run_dir/checkpoints``: after every task, every ``every`` steps within a task (None:
    only after tasks), keeping the ``keep`` newest. ``tasks`` is the whole sequence (names
    checked at resume), ``spec`` its benchmark spec (tasks rebuilt at resume),
    ``elapsed`` earlier seconds. The caller holds the run directory's lock."""

    def __init__(self, run_dir: str | Path, tasks: Sequence[Task], every: int | None = None,
                 keep: int = 2, spec: dict | None = None, elapsed: float = 0.0):
        check_every(every)
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

    def on_task_start(self, learner: Any, task: Task) -> None:
        check_resumable(learner)

    def on_step(self, learner: ContinualLearner, task_id: int, step: int,
                logs: dict[str, float]) -> None:
        done = learner.in_progress_.step
        if self.every and done % self.every == 0 and done < learner.config.n_steps:
            self.save(learner)

    def on_task_end(self, learner: ContinualLearner, task_id: int, logs: dict[str, Any]) -> None:
        self.save(learner)

    def save(self, learner: ContinualLearner) -> CheckpointInfo:
        """Write the learner's state (with the task in progress, if any)."""
        start = time.perf_counter()
        state = learner.state_dict()
        tasks_done, step = state.tasks_done, state.meta["step"]
        tensors = state_tensors(state)
        bad = [n for n, t in tensors.items()
               if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            raise NonFiniteLossError(
                f"the weights became non-finite in task {tasks_done + 1} by step {step} "
                f"({', '.join(bad[:3])}); no checkpoint is written and the last good one "
                f"stays. Lower config.lr or beta, or check the task's data for NaN/inf")
        stem = _stem(tasks_done, step)
        rng_tensors, py_rng, np_rng = _rng_state()
        data = st_save({**tensors, **rng_tensors})
        meta = state.meta
        info = {
            "schema_version": CHECKPOINT_SCHEMA, "learner": meta["learner"],
            "tasks_done": tasks_done, "step": step,
            "n_tasks": self.n_tasks, "task_names": self.names,
            **{k: meta[k] for k in ("config", "random_state", "target", "task_info",
                                    "matrix", "inference_matrix", "before", "fresh",
                                    "sampler_pos")},
            "python_rng": py_rng, "numpy_rng": np_rng, "benchmark": self.spec,
            "elapsed_seconds": self.elapsed_seconds(), "checkpoint_every": self.every,
            "keep": self.keep, "tensors": f"{stem}.safetensors", "sha256": sha256(data),
        }
        with _checkpoints(self.dir.parent, create=True) as ck:
            ck.write(f"{stem}.safetensors", data)
            ck.write(f"{stem}.json", json.dumps(info, indent=1, allow_nan=False))
            self._prune(ck)
        self.written += 1
        self.write_seconds += time.perf_counter() - start
        return CheckpointInfo(tasks_done, step, self.dir / f"{stem}.json")

    def _prune(self, ck: SafeDir) -> None:
        """Remove all but the ``keep`` newest complete checkpoints, and tensor files older
        than the newest that have no JSON (left by a kill between the two writes)."""
        done = list_checkpoints(self.dir.parent)
        for old in done[:-self.keep]:
            ck.unlink(old.path.name)  # JSON first: never a JSON without tensors
            ck.unlink(old.tensors_path.name)
        complete = {c.tensors_path.name for c in done}
        for name, _ in ck.entries("ckpt-"):
            if name.endswith(".safetensors") and name not in complete \
                    and name < done[-1].tensors_path.name:
                ck.unlink(name)


def remove_checkpoints(run_dir: str | Path) -> None:
    """Delete ``run_dir/checkpoints`` (checkpoint files only; nothing else there; a link
    there is refused, never followed)."""
    ck = _checkpoints(run_dir)
    if ck is None:
        return
    with ck:
        for name, st in ck.entries():
            if name.startswith(("ckpt-", ".ckpt-")) and not stat.S_ISDIR(st.st_mode):
                ck.unlink(name)
        empty = not ck.names()
    if empty:
        with SafeDir(run_dir) as d:
            os.rmdir(SUBDIR, dir_fd=d.fd)


def clean_temporaries(run_dir: str | Path) -> list[Path]:
    """Remove temporary files of checkpoint writes that were killed; returns them."""
    ck = _checkpoints(run_dir)
    if ck is None:
        return []
    with ck:
        stale = [name for name, st in ck.entries(".ckpt-")
                 if name.endswith(".tmp") and stat.S_ISREG(st.st_mode)]
        for name in stale:
            ck.unlink(name)
    return [ck.path / name for name in stale]


def check_resumable(learner: Any) -> None:
    """``learner`` can be checkpointed and resumed mid-task (its class sets ``resumable``:
    :class:`~hnviz.HyperCL`); else a ``TypeError`` naming its class."""
    if not isinstance(learner, ContinualLearner) or not learner.resumable:
        raise TypeError(f"checkpoints are written for learners that resume mid-task "
                        f"(hnviz.HyperCL), got {type(learner).__name__}")


def _learner_class(info: dict[str, Any], path: Path) -> type[ContinualLearner]:
    kind = info.get("learner", "hypercl")
    classes = learner_classes()
    if not isinstance(kind, str) or kind not in classes or not classes[kind].resumable:
        raise CheckpointError(f"{path} holds a learner of kind {kind!r:.40}, which this hnviz "
                              "does not resume; the checkpoint is damaged or from another "
                              "version")
    return classes[kind]


# ---------------------------------------------------------------------------- reading
@dataclass
class Checkpoint:
    """A checkpoint read and checked: its JSON ``info`` and ``tensors``."""

    where: CheckpointInfo
    info: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    def learner_class(self) -> type[ContinualLearner]:
        """The class of the learner this checkpoint holds (the info's ``learner`` kind;
        checkpoints written before it was recorded are HyperCL's)."""
        return _learner_class(self.info, self.where.path)

    def state(self) -> LearnerState:
        """The learner's state this checkpoint holds."""
        weights, history, training = {}, {}, {}
        cls = self.learner_class()
        for name, t in self.tensors.items():
            if name.startswith("history."):
                history[name[len("history."):]] = t
            elif cls.is_weight(name):
                weights[name] = t
            elif name not in ("rng.torch", "rng.numpy_keys"):
                training[name] = t
        meta = {"learner": cls.kind, **{k: self.info.get(k) for k in _LEARNER_META}}
        return LearnerState(meta, weights, history, training)


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
    if not os.path.lexists(path):
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete; delete "
                              f"{where.path.name} to resume from the one before")
    cls = _learner_class(info, where.path)
    meta = {"learner": cls.kind, **{k: info[k] for k in ("config", "target", "task_info")}}
    try:
        n_params = cls.check_described(meta)
        logs = history_bytes(cls.config_of(meta), len(info["task_info"]) + 1)
    except StateError as e:
        raise CheckpointError(f"{where.path}: {e}; the checkpoint is damaged") from e
    # theta, theta*, Adam; the step logs of the finished tasks and the one in progress
    budget = min(8 * max_params(), 24 * n_params + logs + 2**26)
    try:
        tensors = read_tensors(path, info["sha256"], "checkpoint", where.path.name, budget)
    except DamagedFileError as e:
        raise CheckpointError(f"{e}; delete {path.name} and {where.path.name} to resume from "
                              "the checkpoint before") from e
    return Checkpoint(where, info, tensors)


def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The newest complete checkpoint of ``run_dir`` (None if there is none). A damaged
    newest checkpoint raises (naming the file) rather than being skipped silently."""
    found = list_checkpoints(run_dir)
    return read_checkpoint(found[-1]) if found else None


def _restore_global_rng(ck: Checkpoint) -> None:
    py, npr = ck.info["python_rng"], ck.info["numpy_rng"]
    try:
        torch.set_rng_state(ck.tensors["rng.torch"])
        keys = ck.tensors["rng.numpy_keys"].numpy().astype(np.uint32)
        np.random.set_state((npr["kind"], keys, npr["pos"], npr["has_gauss"],
                             npr["cached_gaussian"]))
        random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{ck.where.path}: the saved RNG states do not load ({e}); the "
                              "checkpoint is damaged") from e


def restore(ck: Checkpoint, tasks: Sequence[Task], progress: bool = True,
            callbacks: Sequence[Any] = (), device: Any = None) -> ContinualLearner:
    """A learner in the state of checkpoint ``ck`` (with its task in progress, if any,
    continued by ``continue_fit``), the global RNGs as they were; ``tasks`` the run's
    whole sequence."""
    info, path = ck.info, ck.where.path
    names = [t.name for t in tasks]
    if names != info["task_names"]:
        raise CheckpointError(f"the tasks given do not match {path}: it was written for "
                              f"{info['n_tasks']} task(s) {info['task_names'][:3]}..., got "
                              f"{len(names)} {names[:3]}...; pass the run's own task sequence")
    state = ck.state()
    if not isinstance(state.meta["task_info"], list) or \
            len(state.meta["task_info"]) != info["tasks_done"]:
        raise CheckpointError(f"{path}: task_info does not list the {info['tasks_done']} tasks "
                              "done; the checkpoint is damaged")
    if "rng.gen" not in state.training:
        raise CheckpointError(f"{ck.where.tensors_path} lacks tensor 'rng.gen' (the learner's "
                              "random generator); the checkpoint is damaged")
    try:
        learner = ck.learner_class().from_state_dict(state, tasks, progress, callbacks, device)
    except StateError as e:  # the two files describe the learner together: name both
        raise CheckpointError(f"{path} and {ck.where.tensors_path.name}: {e}; the checkpoint "
                              "is damaged") from e
    _restore_global_rng(ck)
    return learner
