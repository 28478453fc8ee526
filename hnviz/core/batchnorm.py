"""Batch-norm statistics kept per task, as the authors keep them for their ResNet: the
hypernetwork generates a task's batch-norm scales and shifts with its other weights, but
the running means and variances are data statistics, not weights, so each task has its
own, updated while that task trains and used when it is scored.

:class:`TaskNorms` is owned by a :class:`~hnviz.core.targets.TargetNet` whose template
has batch norm. A learner says which task a forward belongs to with
:meth:`TaskNorms.task`; outside that (an interpolated embedding, a widget's probe) every
batch norm uses the batch's own statistics.
"""
from __future__ import annotations

import threading
from contextlib import AbstractContextManager, contextmanager
from typing import Iterator

import torch

from .cifar_nets import BatchNormState


BATCH_NORM_TARGETS = ("resnet32",)  # the target nets with batch norm


def check_norms_use(target: str, keeps: bool, scenario: str, learner: str) -> None:
    """A one-line ValueError unless a ``target`` with batch norm is used where its
    statistics can be kept per task: the task id given (cl1) and a ``learner`` that
    ``keeps`` them (a batch that mixes tasks, joint's or a replay method's, cannot)."""
    if target in BATCH_NORM_TARGETS and (not keeps or scenario != "cl1"):
        raise ValueError(f"target {target!r} has batch norm, whose statistics hnviz keeps per "
                         "task: it needs the task id (scenario cl1) and a learner that keeps "
                         "them (hnet, finetune, ewc, online_ewc, si); use another target for "
                         f"{learner} in {scenario}")


class TaskNorms:
    """Running means and variances ``(C,)`` of every batch-norm layer (``sizes``: their
    channel counts), one set per task id; a new task starts from mean 0, variance 1."""

    def __init__(self, sizes: list[int]):
        self.sizes = list(sizes)
        self.stats: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        # which statistics forwards use, per thread (a widget trains in a background
        # thread while the UI scores): innermost last; None: the batch's own
        self._local = threading.local()
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def of(self, task: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Task ``task``'s statistics (made at first use)."""
        if task not in self.stats:
            kw = {"device": self.device, "dtype": self.dtype}
            self.stats[task] = [(torch.zeros(c, **kw), torch.ones(c, **kw)) for c in self.sizes]
        return self.stats[task]

    @property
    def _active(self) -> list[tuple[int, bool] | None]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    @contextmanager
    def _using(self, entry: tuple[int, bool] | None) -> Iterator[None]:
        self._active.append(entry)
        try:
            yield
        finally:
            self._active.pop()

    def task(self, task: int, training: bool) -> AbstractContextManager:
        """Forwards inside use task ``task``'s statistics: the batch's own, folded into
        them, while ``training``; the stored ones otherwise. Nests (innermost wins)."""
        return self._using((int(task), bool(training)))

    def batch_only(self) -> AbstractContextManager:
        """Forwards inside use each batch's own statistics and store nothing (many weight
        sets evaluated at once, :meth:`hnviz.core.targets.TargetNet.forward` with (B, P))."""
        return self._using(None)

    def now(self) -> BatchNormState | None:
        """What a forward uses now (None: the batch's own statistics)."""
        if not self._active or self._active[-1] is None:
            return None
        task, training = self._active[-1]
        return BatchNormState(self.of(task), training)

    def to(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.stats = {t: [(m.to(device), v.to(device)) for m, v in s]
                      for t, s in self.stats.items()}

    def state(self) -> dict[str, torch.Tensor]:
        """Every task's statistics as named tensors (``norms.<task>.mean`` ``(L, C_max)``
        would waste space; one ``(sum C,)`` vector per task and kind instead)."""
        out = {}
        for t, s in self.stats.items():
            out[f"norms.{t}.mean"] = torch.cat([m for m, _ in s]).cpu()  # a new tensor
            out[f"norms.{t}.var"] = torch.cat([v for _, v in s]).cpu()
        return out

    def load(self, tensors: dict[str, torch.Tensor], tasks: int) -> None:
        """Replace the statistics with :meth:`state`'s tensors, which must hold a mean and
        a variance for each of tasks ``0..tasks-1`` (and may hold the task in progress,
        ``tasks``); anything else raises a one-line ValueError naming the tensor."""
        stats: dict[int, dict[str, tuple[torch.Tensor, ...]]] = {}
        total = sum(self.sizes)
        for key, value in tensors.items():
            parts = key.split(".")
            ok = len(parts) == 3 and parts[0] == "norms" and parts[1].isdigit() and \
                parts[2] in ("mean", "var") and int(parts[1]) <= tasks
            if not ok:
                raise ValueError(f"holds {key!r}, which is not the batch-norm statistics of one "
                                 f"of its tasks 0..{tasks} (norms.<task>.mean or .var)")
            if value.shape != (total,):
                raise ValueError(f"batch-norm statistics {key} have shape {tuple(value.shape)}, "
                                 f"expected ({total},)")
            split = torch.split(value.to(self.device, self.dtype).clone(), self.sizes)
            stats.setdefault(int(parts[1]), {})[parts[2]] = split
        for t in range(tasks + 1):
            have = stats.get(t, {})
            if (t < tasks or have) and {"mean", "var"} - have.keys():
                missing = sorted({"mean", "var"} - have.keys())[0]
                raise ValueError(f"lacks norms.{t}.{missing}: a net with batch norm needs each "
                                 "task's running mean and variance")
        self.stats = {t: list(zip(d["mean"], d["var"])) for t, d in stats.items()}
