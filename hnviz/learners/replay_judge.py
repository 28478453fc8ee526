"""Is the replay any good? A judge trained on real data scores what the replay model
generates for each task (HNET+TIR, :mod:`hnviz.core.replay_model`).

The judge is a plain MLP trained on the real training data of all tasks with their
global classes (``class_offset`` + local label): what an observer who has seen every task
would call each image. A replayed image of task t counts as right when the judge puts
it in one of task t's classes.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.lookahead import adam
from ..core.tasks import Task, dense


def train_judge(tasks: Sequence[Task], steps: int = 1500, hidden: int = 400,
                seed: int = 0) -> tuple[nn.Module, float]:
    """An MLP ``D -> hidden -> classes`` trained (Adam 1e-3, batch 128) on every task's
    real training data with global classes; returns it and its test accuracy (%)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([dense(t.x_train) for t in tasks])
    y = torch.cat([t.y_train + t.class_offset for t in tasks])
    n_classes = max(t.class_offset + t.n_outputs for t in tasks)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        judge = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    opt = adam(judge.parameters(), 1e-3)
    for _ in range(steps):
        idx = torch.randint(len(x), (128,), generator=g)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(judge(x[idx]), y[idx]).backward()
        opt.step()
    with torch.no_grad():
        xt = torch.cat([dense(t.x_test) for t in tasks])
        yt = torch.cat([t.y_test + t.class_offset for t in tasks])
        acc = float((judge(xt).argmax(-1) == yt).float().mean() * 100)
    return judge, acc


def replay_quality(learner: Any, tasks: Sequence[Task], n: int = 500,
                   judge: nn.Module | None = None, seed: int = 0) -> np.ndarray:
    """Percent ``(T,)`` of ``n`` images replayed from each learned task's embedding that
    the ``judge`` (default: :func:`train_judge` on ``tasks``) puts in that task's classes.
    ``learner``: a fitted :class:`hnviz.HyperCL` with ``task_inference="replay"``."""
    if getattr(learner, "replay_", None) is None:
        raise ValueError("replay_quality needs a HyperCL learner with task_inference='replay' "
                         "(HNET+TIR); this learner has no replay model")
    tasks = list(tasks)[:learner.n_tasks_]
    if judge is None:
        judge = train_judge(tasks, seed=seed)[0]
    images = learner.replay_.generate(learner.replay_.embeddings, n,
                                      torch.Generator().manual_seed(seed))  # (T, n, D)
    out = []
    for t, task in enumerate(tasks):
        with torch.no_grad():
            pred = judge(images[t]).argmax(-1) - task.class_offset
        out.append(float(((pred >= 0) & (pred < task.n_outputs)).float().mean() * 100))
    return np.array(out)
