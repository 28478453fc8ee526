"""Run directories: weights in safetensors, everything else in JSON; never pickle.

Layout of ``DIR`` (schema 2)::

    run.json                 the manifest, written last: schema version, learner
                             ("hypercl" or "baseline"), config, seed, target layout, tasks,
                             benchmark spec, metrics (hnviz.core.metrics.summary + wall_seconds
                             and extras), the generation holding the tensors, and each
                             tensor file's size and SHA-256
    gen-000001/weights.safetensors   hypercl: hnet.<name> (theta), embeddings (T, E);
                                     baseline: theta (P,), importance, anchors (K, P)
    gen-000001/history.safetensors   task<t>.task_loss / reg_loss (n_steps,),
                                     task<t>.emb_trajectory

A save writes a new generation directory, then replaces run.json in one rename, then
removes the older generation: a reader gets the old run or the new one, never a mix
(a reader whose generation was removed under it reads run.json again), and a save that
dies half-way leaves the old run loadable. A finished run is not replaced unless asked
(``overwrite=True``, ``--overwrite``). Schema 1 (hnviz 0.1–0.2: the tensor files and
``metrics.json`` beside run.json) is still read.

Loading executes nothing and checks everything before it allocates: JSON (bounded, no
NaN/inf), schema, keys, the size the description implies (at most
``$HNVIZ_MAX_PARAMS`` numbers), each file's size against the manifest, checksums, tensor
shapes, finite weights. A damaged run gives a ``ValueError`` naming the file, and
nothing in the directory changes. Files are opened without following symbolic links
(:class:`hnviz.io.safeio.SafeDir`).
"""
from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save as st_save

from ..learners.base import ContinualLearner
from ..data.benchmarks import from_spec
from .checkpoint import list_checkpoints
from ..io.lock import run_lock
from ..learners.methods import learner_classes
from ..io.outdir import GENERATION
from ..io.safeio import (MAX_JSON_BYTES, DamagedFileError, SafeDir, kind_of, parse_json,
                         parse_tensors, sha256)
from ..learners.learner_state import LearnerState, StateError, history_bytes
from ..core.tasks import TaskSequence

__all__ = ["Run", "RunExistsError", "load_run", "save_run", "write_run", "DamagedFileError"]

SCHEMA_VERSION = 2
TENSOR_FILES = ("weights.safetensors", "history.safetensors")
V1_FILES = ("run.json", *TENSOR_FILES, "metrics.json")
_FILE_OF = {"weights": "weights.safetensors", "training": "weights.safetensors",
            "matrix": "run.json", "meta": "run.json"}


class RunExistsError(ValueError):
    """The directory holds a finished run and replacing it was not asked for."""


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=1, allow_nan=False)


def save_run(learner: ContinualLearner, directory: str | Path, benchmark: dict | None = None,
             overwrite: bool = False, **extra: Any) -> Path:
    """Save a fitted learner (and optional benchmark spec / extra metrics) to ``directory``,
    holding the directory's lock. A directory with a finished run is refused
    (:class:`RunExistsError`) unless ``overwrite``; the old run stays loadable until the
    new one is complete."""
    if not isinstance(learner, ContinualLearner):
        hint = "; pass run.learner" if isinstance(learner, Run) else ""
        raise TypeError(f"save_run saves a fitted hnviz learner, got "
                        f"{type(learner).__name__}{hint}")
    learner.check_fitted()
    out = Path(directory)
    with run_lock(out):
        return write_run(learner, out, benchmark, overwrite, **extra)


def finished_run(out: str | Path) -> bool:
    """``out`` holds a finished run, or what is left of one: a run.json of any kind (a
    FIFO there is damage, not absence) or a generation of tensor files."""
    out = Path(out)
    return os.path.lexists(out / "run.json") or (out.is_dir() and any(
        GENERATION.match(n) for n in os.listdir(out)))


def refuse_finished(out: str | Path, overwrite: bool) -> None:
    """Raise :class:`RunExistsError` if ``out`` holds a finished run and not ``overwrite``."""
    if not overwrite and finished_run(out):
        raise RunExistsError(f"{out} holds a finished run; pass overwrite=True (--overwrite) to "
                             "replace it, or choose another directory")


def write_run(learner: ContinualLearner, out: Path, benchmark: dict | None = None,
              overwrite: bool = False, **extra: Any) -> Path:
    """Write the run files of ``learner`` into ``out`` (the caller holds its lock): a new
    generation of tensor files, then run.json (metrics: the learner's summary plus
    ``extra``; ``scratch=`` (T,) adds transfer vs from scratch), then the old generation
    goes."""
    refuse_finished(out, overwrite)
    scratch = extra.pop("scratch", None)
    state = learner.state_dict()
    files = {"weights.safetensors": st_save(state.weights),
             "history.safetensors": st_save(state.history)}
    meta = state.meta
    with SafeDir(out, create=True) as d:
        gen = _next_generation(d)
        with d.subdir(gen, create=True) as g:
            for name, data in files.items():
                g.write(name, data)
        info = {"schema_version": SCHEMA_VERSION, "learner": meta["learner"],
                "config": meta["config"], "random_state": meta["random_state"],
                "target": meta["target"], "tasks": meta["task_info"], "benchmark": benchmark,
                "metrics": {**learner.summary(scratch), **extra}, "generation": gen,
                "files": {name: {"bytes": len(data), "sha256": sha256(data)}
                          for name, data in files.items()}}
        d.write("run.json", _json(info))  # the commit: from here on the new run is read
        for name in d.names():  # the generations before, and schema-1 files
            if (GENERATION.match(name) and name != gen) or name in V1_FILES[1:]:
                d.remove_tree(name)
    return out


def _next_generation(d: SafeDir) -> str:
    numbers = [int(m.group(1)) for name in d.names() if (m := GENERATION.match(name))]
    return f"gen-{max(numbers, default=0) + 1:06d}"


@dataclass
class Run:
    """A loaded run: the fitted ``learner``, its ``metrics`` and benchmark ``spec``."""

    path: Path
    learner: ContinualLearner
    metrics: dict[str, Any]
    spec: dict[str, Any] | None

    def tasks(self) -> TaskSequence:
        """Rebuild the benchmark the run was trained on from its saved spec: never
        downloading, within the bounds of an untrusted spec, and checked against the
        learner (inputs, outputs, number of tasks)."""
        if self.spec is None:
            raise ValueError(f"run {self.path} has no benchmark spec; build the tasks yourself")
        tasks = from_spec(self.spec, trusted=False)
        learner, first = self.learner, tasks[0]
        fits = len(tasks) >= learner.n_tasks_ and \
            first.in_features == learner.target_.in_features and \
            learner.target_.out_features in (first.n_outputs, first.head_size)
        if not fits:
            raise ValueError(f"run {self.path}: its benchmark spec builds {len(tasks)} task(s) "
                             f"of {first.in_features} inputs and {first.n_outputs} outputs, "
                             f"which do not fit its learner ({learner.n_tasks_} tasks, "
                             f"{learner.target_.in_features} inputs, "
                             f"{learner.target_.out_features} outputs); the run is damaged")
        return tasks


def _damaged(path: Path, problem: str) -> DamagedFileError:
    return DamagedFileError(f"{path} {problem}; the run directory is damaged (re-save or "
                            "re-train the run)")


def _require(info: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in info]
    if missing:
        raise _damaged(path, f"lacks {', '.join(repr(k) for k in missing)}")


class _Moved(Exception):
    """A file named by run.json vanished while run.json changed: a new save; read again."""


def load_run(directory: str | Path, device: Any = None) -> Run:
    """Load a run directory written by :func:`save_run`; executes nothing it reads and
    changes nothing. Any damage raises a ``ValueError`` that names the file. The learner
    is put on ``device`` (default ``$HNVIZ_DEVICE``, else the CPU; run files hold CPU
    tensors, so a run trained on any device opens on any other)."""
    if not isinstance(directory, (str, os.PathLike)) or not str(directory).strip():
        raise TypeError(f"load_run takes a run directory (a str or Path, the --out of a "
                        f"training run), got {directory!r:.80}")
    path = Path(directory)
    try:
        st = os.stat(path)
    except OSError as e:
        why = "does not exist" if isinstance(e, FileNotFoundError) else \
            f"cannot be read ({e.strerror})"
        raise ValueError(f"run directory {str(path)[:300]!r} {why}; pass the --out directory "
                         "of a training run") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path} is {kind_of(st.st_mode)}, not a run directory; pass the --out "
                         "directory of a training run")
    with SafeDir(path, follow=True) as d:
        for attempt in range(20):
            try:
                return _load(d, device)
            except _Moved:
                time.sleep(0.01 * (attempt + 1))  # a save is under way: read its result
    raise DamagedFileError(f"{path} was re-saved 20 times while it was being read; try again")


def _load(d: SafeDir, device: Any = None) -> Run:
    if d.lstat("run.json") is None:
        unfinished = list_checkpoints(d.path)
        if unfinished:
            raise ValueError(f"{d.path} holds an unfinished run (newest checkpoint: "
                             f"{unfinished[-1].describe()}); finish it with `python -m hnviz "
                             f"train ... --out {d.path} --resume` or hnviz.resume({str(d.path)!r})")
        raise ValueError(f"run directory {d.path} lacks run.json; it is not a complete hnviz run")
    raw = d.read("run.json", MAX_JSON_BYTES)
    info = _read_info(parse_json(raw, d.path / "run.json"), d.path / "run.json")
    cls = learner_classes()[info["learner"]]
    meta = {"learner": info["learner"], "config": info["config"],
            "random_state": info["random_state"], "target": info["target"],
            "task_info": info["tasks"], "step": 0}
    try:
        n_params = cls.check_described(meta)
    except StateError as e:
        raise _damaged(d.path / "run.json", str(e)) from e
    weights = 4 * n_params + 2**20  # float32 numbers plus a header
    try:  # the step logs grow with tasks x steps, not with the weights
        logs = history_bytes(cls.config_of(meta), len(info["tasks"]))
    except StateError as e:
        raise _damaged(d.path / "run.json", str(e)) from e
    budget = dict(zip(TENSOR_FILES, (weights, max(weights, logs))))  # bytes per file
    if info["schema_version"] == 1:
        tensors, metrics = _read_v1(d, info, budget)
    else:
        tensors, metrics = _read_v2(d, info, budget, raw), info["metrics"]
    inference = metrics.get("task_inference")  # HNET+ENT in cl2/cl3
    if "task_inference" in metrics and (not isinstance(inference, dict) or
                                        not inference.get("matrix")):
        raise _damaged(d.path / _metrics_file(info), "has a 'task_inference' entry without a "
                       "matrix")
    meta.update(matrix=metrics["matrix"], inference_matrix=inference["matrix"] if inference
                else None, before=metrics.get("before"), fresh=metrics.get("fresh"))
    try:
        learner = cls.from_state_dict(LearnerState(meta, *tensors), progress=False,
                                      device=device)
    except StateError as e:
        file = _metrics_file(info) if e.part == "matrix" else _FILE_OF[e.part]
        where = d.path / info.get("generation", "") / file if file in TENSOR_FILES \
            else d.path / file
        against = "" if e.part == "meta" else f" (checked against {d.path / 'run.json'})"
        raise _damaged(where, f"{e}{against}") from e
    return Run(d.path, learner, metrics, info.get("benchmark"))


def _metrics_file(info: dict[str, Any]) -> str:
    return "metrics.json" if info["schema_version"] == 1 else "run.json"


def _read_info(info: dict[str, Any], run_json: Path) -> dict[str, Any]:
    """run.json, checked for its version, learner kind and keys."""
    version = info.get("schema_version")
    if isinstance(version, bool) or version not in (1, SCHEMA_VERSION):
        raise ValueError(f"{run_json} has schema version {version!r}, this hnviz reads "
                         f"versions 1 and {SCHEMA_VERSION}; upgrade hnviz or re-save the run")
    kind = info.setdefault("learner", "hypercl")  # runs saved before baselines existed
    if not isinstance(kind, str) or kind not in learner_classes():
        raise ValueError(f"{run_json} names learner {kind!r}; this hnviz reads "
                         f"{', '.join(learner_classes())}; upgrade hnviz or re-save the run")
    _require(info, ("config", "random_state", "target", "tasks"), run_json)
    if version == SCHEMA_VERSION:
        _require(info, ("metrics", "generation", "files"), run_json)
        if not isinstance(info["generation"], str) or not GENERATION.match(info["generation"]) \
                or not isinstance(info["files"], dict) or not isinstance(info["metrics"], dict):
            raise _damaged(run_json, "has a 'generation', 'files' or 'metrics' entry of the "
                           "wrong form")
        _require(info["metrics"], ("matrix", "metric"), run_json)
    tasks = info["tasks"]
    if not isinstance(tasks, list) or not tasks or not all(isinstance(x, dict) for x in tasks):
        raise _damaged(run_json, "has a 'tasks' entry that is not a list of task records")
    return info


def _read_v2(d: SafeDir, info: dict[str, Any], budget: dict[str, int],
             raw: bytes) -> tuple[dict[str, Any], ...]:
    """The tensor files of the manifest's generation, each checked for size and checksum
    before it is parsed."""
    out = []
    gen = info["generation"]
    for name in TENSOR_FILES:
        entry = info["files"].get(name)
        where = d.path / gen / name
        if not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int) \
                or isinstance(entry["bytes"], bool) or entry["bytes"] < 0 \
                or not isinstance(entry.get("sha256"), str):
            raise _damaged(d.path / "run.json", f"lacks the size and checksum of {gen}/{name}")
        if entry["bytes"] > budget[name]:
            raise _damaged(d.path / "run.json", f"says {gen}/{name} has {entry['bytes']:,} "
                           f"bytes, more than its learner's {budget[name]:,}")
        try:
            with d.subdir(gen) as g:
                data = g.read(name, entry["bytes"])
        except FileNotFoundError:
            if d.read("run.json", MAX_JSON_BYTES) != raw:
                raise _Moved from None
            raise _damaged(where, "is missing") from None
        if len(data) != entry["bytes"]:
            raise _damaged(where, f"has {len(data):,} bytes, run.json says {entry['bytes']:,}")
        out.append(parse_tensors(data, where, entry["sha256"],
                                 vouched_by=str(d.path / "run.json")))
    return tuple(out)


def _read_v1(d: SafeDir, info: dict[str, Any],
             budget: dict[str, int]) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """A schema-1 run (hnviz 0.1–0.2): tensor files and metrics.json beside run.json."""
    missing = [f for f in V1_FILES if d.lstat(f) is None]
    if missing:
        raise ValueError(f"run directory {d.path} lacks {', '.join(missing)}; it is not a "
                         "complete hnviz run")
    checksums = info.get("sha256") or {}  # runs saved before checksums: none
    if not isinstance(checksums, dict):
        raise _damaged(d.path / "run.json", "has a 'sha256' entry that is not an object")
    tensors = tuple(parse_tensors(d.read(name, budget[name]), d.path / name, checksums.get(name))
                    for name in TENSOR_FILES)
    metrics_path = d.path / "metrics.json"
    metrics = parse_json(d.read("metrics.json", MAX_JSON_BYTES), metrics_path)
    _require(metrics, ("matrix", "metric"), metrics_path)
    return tensors, metrics
