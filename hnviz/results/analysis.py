"""Pure analysis of a learned embedding space (numpy out, no widgets).

Everything evaluates many embeddings at once: the hypernetwork maps a batch of
embeddings ``(B, E)`` to weights ``(B, P)`` and one vmapped target call per task scores
all B nets on that task's test data. The embedding analyses read a :class:`HyperCL` or
any model of the hypernetwork protocol (:class:`~hnviz.learners.protocol.ExplorableModel`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..core.tasks import Task
from ..learners.hypercl import HyperCL
from ..learners.protocol import ExplorableModel
from ..core.metrics import metric_matrix
from ..core.validate import as_float_tensor, check_int, check_real

PROJECTIONS = ("auto", "identity", "pca", "tsne")
Model = HyperCL | ExplorableModel  # what the embedding analyses read (the hypernetwork protocol)


class Projection:
    """A 2-D projection of the embedding space with ``transform``/``inverse_transform``
    (identity or PCA; t-SNE has neither, so paths and landscapes need identity/PCA)."""

    def __init__(self, method: str, pca: Any = None):
        self.method, self.pca = method, pca

    def transform(self, embs: np.ndarray) -> np.ndarray:  # (N, E) -> (N, 2)
        if self.pca is not None:
            return self.pca.transform(embs)
        if self.method == "identity":
            return np.pad(embs, ((0, 0), (0, 2 - embs.shape[1])))[:, :2]
        raise ValueError("t-SNE has no transform; use method='pca' or 'identity' for paths")

    def inverse_transform(self, xy: np.ndarray) -> np.ndarray:  # (N, 2) -> (N, E)
        if self.pca is not None:
            return self.pca.inverse_transform(xy)
        if self.method == "identity":
            return xy
        raise ValueError("t-SNE has no inverse; use method='pca' or 'identity' for landscapes")


def project_embeddings(embs: Any, method: str = "auto",
                       random_state: int = 0) -> tuple[np.ndarray, Projection]:
    """Project embeddings ``(N, E)`` to 2-D: identity for E <= 2, PCA above ("auto").

    Returns the points ``(N, 2)`` and the :class:`Projection` used.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(PROJECTIONS)}")
    embs = np.asarray(embs, dtype=np.float64)
    if embs.ndim != 2 or len(embs) == 0:
        raise ValueError(f"embeddings must have shape (N, E) with N >= 1, got {embs.shape}")
    if method == "auto":
        method = "identity" if embs.shape[1] <= 2 else "pca"
    if method == "identity":
        if embs.shape[1] > 2:
            raise ValueError(f"identity projection needs E <= 2, got E = {embs.shape[1]}; use 'pca'")
        proj = Projection("identity")
        return proj.transform(embs), proj
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=random_state).fit(embs)
        return pca.transform(embs), Projection("pca", pca)
    from sklearn.manifold import TSNE

    perplexity = max(1.0, min(30.0, (len(embs) - 1) / 3))
    xy = TSNE(2, perplexity=perplexity, random_state=random_state, init="pca").fit_transform(embs)
    return xy, Projection("tsne")


def _task_metric(learner: Model, task: Task, weights: torch.Tensor,
                 n_samples: int | None) -> torch.Tensor:
    """Metric of ``task`` for B weight sets ``(B, P)`` -> ``(B,)`` (one vmapped pass; the
    task's own head, labels in the scenario's label space)."""
    x, y = task.x_test[:n_samples], task.y_test[:n_samples]  # n_samples None: all
    out = learner.net_output(x, weights, task.task_id)  # (B, N, out)
    if task.kind == "regression":
        return ((out - y[None]) ** 2).mean(dim=(1, 2))
    return (out.argmax(-1) == task.scenario_labels(y)[None]).float().mean(1) * 100


class _TestStack:
    """Every task's test set in one tensor (single-head nets evaluate them in one pass):
    ``x`` ``(N, D)``, ``y`` (scenario labels or targets), ``seg`` ``(N,)`` task index,
    ``counts`` ``(T,)``."""

    def __init__(self, tasks: Sequence[Task], n_samples: int | None):
        xs, ys, seg = [], [], []
        for t, task in enumerate(tasks):
            x, y = task.x_test[:n_samples], task.y_test[:n_samples]
            xs.append(x)
            ys.append(y if task.kind == "regression" else task.scenario_labels(y))
            seg.append(torch.full((len(x),), t))
        self.tasks, self.n_samples = list(tasks), n_samples
        self.x, self.y, self.seg = torch.cat(xs), torch.cat(ys), torch.cat(seg)
        self.counts = torch.bincount(self.seg, minlength=len(tasks)).float()
        self.regression = tasks[0].kind == "regression"

    def matches(self, tasks: Sequence[Task], n_samples: int | None) -> bool:
        return n_samples == self.n_samples and len(tasks) == len(self.tasks) and \
            all(a is b for a, b in zip(tasks, self.tasks))

    def metrics(self, learner: Model, weights: torch.Tensor) -> torch.Tensor:
        """Each task's metric for B weight sets ``(B, P)`` -> ``(B, T)``."""
        out = learner.net_output(self.x, weights, 0)  # (B, N, out)
        if self.regression:
            per = ((out - self.y[None]) ** 2).mean(-1)
        else:
            per = (out.argmax(-1) == self.y[None]).float() * 100
        sums = torch.zeros(len(weights), len(self.counts)).index_add_(1, self.seg, per)
        return sums / self.counts


_STACK: list[_TestStack] = []  # the last stack built (re-used while the tasks are the same)
_FUSED_FLOATS = 2 ** 24  # activation budget of one fused chunk (64 MiB of float32)


def _test_stack(tasks: Sequence[Task], n_samples: int | None) -> _TestStack:
    if not (_STACK and _STACK[0].matches(tasks, n_samples)):
        _STACK[:] = [_TestStack(tasks, n_samples)]
    return _STACK[0]


@torch.no_grad()
def evaluate_embeddings(learner: Model, tasks: Sequence[Task], embs: Any,
                        n_samples: int | None = None, chunk: int = 256) -> np.ndarray:
    """Each task's test metric (cl1: the task's own head) for the nets generated from
    ``embs`` ``(B, E)`` -> ``(B, T)``; ``n_samples`` caps the test points per task.

    A few nets on a single-head target are scored on all tasks' test sets in one pass
    (the alpha slider); otherwise task by task, ``chunk`` nets per vmapped pass.
    """
    embs = learner.check_embedding(embs)
    embs = embs[None] if embs.dim() == 1 else embs
    fused = isinstance(learner, HyperCL) and learner.target_.n_heads == 1 and len(tasks) > 1
    if fused:  # only while all nets fit one pass; else per task (less memory, as fast)
        stack = _test_stack(tasks, n_samples)
        width = max(max(shape) for shape in learner.target_.shapes)
        fused = len(embs) * len(stack.x) * width <= _FUSED_FLOATS
    rows = []
    for part in embs.split(chunk):
        weights = learner.generate_weights(part)  # (b, P)
        if fused:
            rows.append(stack.metrics(learner, weights))
        else:
            rows.append(torch.stack([_task_metric(learner, t, weights, n_samples)
                                     for t in tasks], 1))
    return torch.cat(rows).numpy()


def embedding_path(learner: Model, a: int, b: int, alphas: Any) -> np.ndarray:
    """e(alpha) = (1 - alpha) e_a + alpha e_b for ``alphas`` ``(n,)`` -> ``(n, E)`` (float64;
    exactly e_a at alpha = 0 and e_b at alpha = 1)."""
    a, b = learner.check_task_id(a), learner.check_task_id(b)
    alphas = as_float_tensor(alphas, "alphas", "(n,)").double().numpy()
    if alphas.ndim != 1:
        raise ValueError(f"alphas must have shape (n,), got {alphas.shape}")
    e = learner.embeddings_.numpy().astype(np.float64)
    return (1 - alphas)[:, None] * e[a] + alphas[:, None] * e[b]


def interpolate(learner: Model, tasks: Sequence[Task], a: int, b: int, n_steps: int = 21,
                extrapolate: float = 0.5, n_samples: int | None = None) -> dict[str, np.ndarray]:
    """Walk e(alpha) = (1 - alpha) e_a + alpha e_b for alpha in [-extrapolate, 1 + extrapolate].

    Returns ``alphas`` ``(n,)``, ``path`` ``(n, E)`` and ``metrics`` ``(n, T)`` (each task's
    metric along the path; alpha = 0 is task a's own net, alpha = 1 task b's).
    """
    a, b = learner.check_task_id(a), learner.check_task_id(b)
    n_steps = check_int("n_steps", n_steps, 2, 100_000)
    extrapolate = check_real("extrapolate", extrapolate, allow_lo=True, hi=1e6)
    alphas = np.linspace(-extrapolate, 1 + extrapolate, n_steps)
    alphas = np.unique(np.round(np.concatenate([alphas, [0.0, 1.0]]), 12))  # own nets on it
    path = embedding_path(learner, a, b, alphas)
    metrics = evaluate_embeddings(learner, tasks, path.astype(np.float32), n_samples)
    return {"alphas": alphas, "path": path, "metrics": metrics}


def landscape_grid(points: np.ndarray, resolution: int = 50,
                   margin: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Grid axes ``xs``, ``ys`` ``(resolution,)`` spanning the 2-D ``points`` ``(T, 2)`` plus
    ``margin`` times their extent (at least ``margin`` on each side)."""
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    lo, hi = points.min(0), points.max(0)
    pad = margin * np.maximum(hi - lo, 1.0)
    return (np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
            np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))


def embedding_landscape(learner: Model, tasks: Sequence[Task], task: int | str = "winner",
                        resolution: int = 50, margin: float = 0.5,
                        n_samples: int | None = 200) -> dict[str, Any]:
    """A task's metric (or, with ``task="winner"``, the best task) on a grid over the 2-D
    embedding plane (the PCA plane above E = 2).

    Returns ``xs``/``ys`` ``(resolution,)``, ``values`` ``(resolution, resolution)`` (rows:
    ys), ``winner`` (task index per cell when ``task="winner"``), ``points`` (the learned
    embeddings projected, ``(T, 2)``) and the ``projection``.
    """
    points, proj = project_embeddings(learner.embeddings_.numpy())
    xs, ys = landscape_grid(points, resolution, margin)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)  # (R*R, 2), row-major in ys
    E = learner.embeddings_.shape[1]
    embs = proj.inverse_transform(grid)[:, :E].astype(np.float32)
    chosen = list(tasks) if task == "winner" else [tasks[learner.check_task_id(task)]]
    m = evaluate_embeddings(learner, chosen, embs, n_samples)  # (R*R, T or 1)
    out: dict[str, Any] = {"xs": xs, "ys": ys, "points": points, "projection": proj}
    if task == "winner":
        better = -m if chosen[0].kind == "regression" else m
        out["winner"] = better.argmax(1).reshape(resolution, resolution)
        out["values"] = m.max(1).reshape(resolution, resolution) if chosen[0].kind != "regression" \
            else m.min(1).reshape(resolution, resolution)
    else:
        out["values"] = m[:, 0].reshape(resolution, resolution)
    return out


def forgetting_curves(R: Any) -> dict[str, np.ndarray]:
    """Per-task metric vs number of tasks trained, from R ``(T, T)``.

    Returns ``curves`` ``(T, T)`` (row j: task j after training tasks 1..T, NaN before it
    was learned), and over the tasks seen so far ``mean``, ``lo``/``hi`` (10th/90th
    percentile) ``(T,)``.
    """
    R = metric_matrix(R)
    curves = R.T.copy()
    return {"curves": curves, "mean": np.nanmean(R, axis=1),
            "lo": np.nanpercentile(R, 10, axis=1), "hi": np.nanpercentile(R, 90, axis=1)}


def task_confusion(learner: HyperCL, tasks: Sequence[Task]) -> np.ndarray:
    """Task inference by predictive entropy (HNET+ENT), as a confusion matrix ``(T, T)``:
    row i = the percent of task i's test inputs inferred as task j (the diagonal is
    :meth:`HyperCL.task_inference_accuracy`)."""
    T = learner.n_tasks_
    if len(tasks) < T:
        raise ValueError(f"{len(tasks)} task(s) given for a learner that learned {T}")
    out = np.zeros((T, T))
    for i, task in enumerate(list(tasks)[:T]):
        inferred = learner.infer_task(task.x_test)[0].numpy()
        out[i] = np.bincount(inferred, minlength=T) / len(inferred) * 100
    return out


def replay_path(learner: HyperCL, a: int, b: int, alpha: float, latent: torch.Tensor
                ) -> tuple[np.ndarray, np.ndarray]:
    """HNET+TIR's replay at e_r(alpha) = (1 - alpha) e_r[a] + alpha e_r[b] (replay
    embeddings): the images decoded from ``latent`` ``(n, L)`` ``(n, D)`` and the
    task-inference classifier's probabilities for them ``(n, T)``."""
    replay = replay_model(learner)
    a, b = learner.check_task_id(a), learner.check_task_id(b)
    alpha = check_real("alpha", alpha, lo=-1e6, hi=1e6)
    e = replay.embeddings
    emb = ((1 - alpha) * e[a] + alpha * e[b])[None]
    images = replay.generate(emb, len(latent), torch.Generator(), latent)[0]  # (n, D)
    return images.numpy(), tir_probabilities(learner, images)


def tir_probabilities(learner: HyperCL, x: Any) -> np.ndarray:
    """The task-inference classifier's softmax over the learned tasks ``(N, T)``."""
    return replay_model(learner).task_probs(learner.check_x(x), learner.n_tasks_).numpy()


def replay_model(learner: Any) -> Any:
    """The replay model of an HNET+TIR learner, or a ValueError saying what to train."""
    replay = getattr(learner, "replay_", None)
    if replay is None or not replay.classifier:  # HNET+R's replay model names no task
        raise ValueError("this run has no replay model with a task classifier: train it with "
                         "task_inference='replay' (HNET+TIR, compare's method 'hnet_tir')")
    learner.check_fitted()
    return learner.replay_


def entropy_split(learner: HyperCL, tasks: Sequence[Task]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each learned task t: the entropies (nats) of net t on its own test inputs
    ``(N_t,)`` and on every other task's ``(N_rest,)`` — what task inference by entropy
    has to tell apart (own inputs should be the more certain)."""
    tasks = list(tasks)[:learner.n_tasks_]
    x = torch.cat([t.x_test[:] for t in tasks])
    owner = torch.cat([torch.full((len(t.x_test),), t.task_id) for t in tasks])
    H = learner.entropies(learner.task_outputs(x))  # (T, N)
    return [(H[t][owner == t].numpy(), H[t][owner != t].numpy()) for t in range(len(tasks))]
