"""Continual-learning metrics on the matrix R (pure numpy).

``R[i, j]`` is the test metric on task j after training task i, NaN where j > i
(unseen). Accuracy is in percent (higher is better); MSE is lower-is-better.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def metric_matrix(R: Any) -> np.ndarray:
    """``R`` as a float ``(T, T)`` array, T >= 1, entries finite or NaN (unseen); else a
    ``ValueError``/``TypeError`` saying what is wrong."""
    try:
        R = np.asarray(R)
        if R.dtype.kind not in "biuf":
            raise TypeError(f"dtype {R.dtype}")
        R = R.astype(float)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"R must be a square (T, T) matrix of real numbers (NaN for unseen), "
                        f"got {type(R).__name__}: {e}") from None
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"R must be a non-empty square (T, T) matrix, got shape {R.shape}")
    if np.isinf(R).any():
        raise ValueError("R contains inf; use finite metrics (NaN marks unseen tasks)")
    lower = np.tril(np.ones(R.shape, dtype=bool))
    if np.isnan(R[lower]).any():
        raise ValueError("R has NaN on or below the diagonal: R[i, j] for j <= i is task j's "
                         "metric after task i was learned and must be a number (NaN marks "
                         "unseen tasks, above the diagonal)")
    return R


_matrix = metric_matrix


def during(R: np.ndarray) -> np.ndarray:
    """``R[j, j]``: each task's metric right after it was learned. ``(T,)``."""
    return np.diag(_matrix(R)).copy()


def final(R: np.ndarray) -> np.ndarray:
    """``R[T-1, j]``: each task's metric after the whole sequence. ``(T,)``."""
    return _matrix(R)[-1].copy()


def average_final(R: np.ndarray) -> float:
    """Mean of the final row (average accuracy / MSE over all tasks)."""
    return float(np.mean(final(R)))


def bwt(R: np.ndarray) -> float:
    """Backward transfer (Lopez-Paz & Ranzato, GEM): mean_{j<T-1} (R[T-1, j] - R[j, j]).

    Negative for accuracy (or positive for MSE) means forgetting; NaN for T = 1.
    """
    R = _matrix(R)
    if len(R) < 2:
        return float("nan")
    return float(np.mean(R[-1, :-1] - np.diag(R)[:-1]))


def forgetting(R: np.ndarray, higher_is_better: bool = True) -> float:
    """Average forgetting (Chaudhry et al.): mean_{j<T-1} (max_{i<T-1} R[i, j] - R[T-1, j]).

    With ``higher_is_better=False`` (MSE) the best earlier value is the minimum and the
    sign is flipped, so positive always means "got worse". NaN for T = 1.
    """
    R = _matrix(R)
    T = len(R)
    if T < 2:
        return float("nan")
    earlier = R[:-1, :-1]  # rows i < T-1, tasks j < T-1 (NaN where unseen)
    if higher_is_better:
        return float(np.mean(np.nanmax(earlier, axis=0) - R[-1, :-1]))
    return float(np.mean(R[-1, :-1] - np.nanmin(earlier, axis=0)))


def fwt(before: Any, fresh: Any, higher_is_better: bool = True) -> float:
    """Forward transfer (Lopez-Paz & Ranzato, GEM): mean_{i>0} (before[i] - fresh[i]),
    where ``before[i]`` is task i's metric after tasks < i were learned and before task i
    was, and ``fresh[i]`` an untrained network's. Positive: earlier tasks helped (the sign
    is flipped for MSE). Tasks with NaN in either are left out; NaN if none is left."""
    b, f = _vector(before), _vector(fresh)
    if b.shape != f.shape:
        raise ValueError(f"before and fresh must have the same length, got {len(b)} and {len(f)}")
    diff = (b - f)[1:] if higher_is_better else (f - b)[1:]
    diff = diff[np.isfinite(diff)]
    return float(diff.mean()) if len(diff) else float("nan")


def transfer(during_values: Any, scratch: Any, higher_is_better: bool = True) -> np.ndarray:
    """Transfer vs training from scratch, per task ``(T,)``: ``during[i] - scratch[i]``
    (each task's metric right after it was learned in the sequence minus the same net's
    trained on task i alone with the same steps); positive: the sequence helped (the sign
    is flipped for MSE)."""
    d, s = _vector(during_values), _vector(scratch)
    if d.shape != s.shape:
        raise ValueError(f"during and scratch must have the same length, got {len(d)} and "
                         f"{len(s)}")
    return d - s if higher_is_better else s - d


def _vector(values: Any) -> np.ndarray:
    v = np.asarray([np.nan if x is None else x for x in np.ravel(values)], dtype=float)
    if np.isinf(v).any():
        raise ValueError("a metric vector contains inf; use finite metrics (NaN: unknown)")
    return v


METRICS = ("accuracy", "mse")


def metric_label(metric: str) -> str:
    """Axis and table label of a metric: "accuracy (%)" or "MSE"."""
    return "accuracy (%)" if metric == "accuracy" else "MSE"


def json_number(v: float) -> float | None:
    """A float for JSON: None for NaN (JSON has no NaN)."""
    return None if np.isnan(v) else float(v)


def to_json(values: Any) -> Any:
    """An array (any shape) as nested lists for JSON, None where it is NaN."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        return json_number(float(arr))
    return [to_json(v) for v in arr]


def from_json(rows: Any) -> np.ndarray:
    """Inverse of :func:`to_json` for a matrix: nested lists with None -> floats with NaN.
    Anything that is not a list of lists of numbers (bools, strings, ragged rows) raises
    a ``ValueError`` saying what it found."""
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise ValueError(f"expected a list of rows, got {type(rows).__name__}")
    out = []
    for row in rows:
        bad = [v for v in row if v is not None and (isinstance(v, bool) or
                                                  not isinstance(v, (int, float)))]
        if bad:
            raise ValueError(f"expected numbers or null, got {bad[0]!r}")
        out.append([np.nan if v is None else float(v) for v in row])
    if not out:
        return np.zeros((0, 0))
    try:
        return np.array(out, dtype=float)
    except ValueError:
        raise ValueError("rows of different lengths") from None


def summary(R: np.ndarray, metric: str = "accuracy", before: Any = None, fresh: Any = None,
            scratch: Any = None) -> dict[str, object]:
    """All metrics as JSON-ready values (``matrix`` with None for unseen entries).

    With ``before`` and ``fresh`` ``(T,)`` (see :func:`fwt`): those and ``fwt``; with
    ``scratch`` ``(T,)`` (see :func:`transfer`): it, ``transfer`` per task and
    ``transfer_mean``.
    """
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose 'accuracy' or 'mse'")
    R = _matrix(R)
    higher = metric == "accuracy"
    out: dict[str, object] = {}
    if before is not None and fresh is not None:
        out.update(before=to_json(_vector(before)), fresh=to_json(_vector(fresh)),
                   fwt=json_number(fwt(before, fresh, higher)))
    if scratch is not None:
        gain = transfer(during(R), scratch, higher)
        out.update(scratch=to_json(_vector(scratch)), transfer=to_json(gain),
                   transfer_mean=json_number(float(np.nanmean(gain)))
                   if np.isfinite(gain).any() else None)
    return {
        "metric": metric,
        "matrix": to_json(R),
        "during": to_json(during(R)),
        "final": to_json(final(R)),
        "average_final": json_number(average_final(R)),
        "bwt": json_number(bwt(R)),
        "forgetting": json_number(forgetting(R, higher_is_better=higher)),
        **out,
    }
