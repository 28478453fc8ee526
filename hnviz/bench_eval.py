"""What continual evaluation costs (``python -m hnviz bench-eval``): the same training
with and without ``eval_every``, timed in one process in alternating order, results
checked to be the same weights."""
from __future__ import annotations

import statistics
import time
from typing import Any, Sequence

import torch

from .benchmarks import permuted_digits
from .compare import check_methods, make_learner


def _weights(learner: Any) -> list[torch.Tensor]:
    return [w.detach().clone() for w in learner.state_dict().weights.values()]


def eval_overhead(methods: Sequence[str] = ("hnet", "ewc"), n_tasks: int = 10, every: int = 10,
                  repeats: int = 3, n_steps: int | None = None, samples: int = 200,
                  echo: Any = print) -> dict[str, dict[str, Any]]:
    """Per method: PermutedDigits-``n_tasks`` (preset ``permuted_digits``, cl1, seed 0)
    trained ``repeats`` times without and with ``eval_every = every`` (``samples`` test
    points per task), pairs in alternating order. Raises if evaluating changed the
    weights. Returns per method ``plain_s``, ``eval_s`` (lists) and ``overhead`` (median
    with / median without - 1); prints a line per run and per method."""
    methods = check_methods(methods)
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    tasks = permuted_digits(n_tasks)
    steps = {} if n_steps is None else {"n_steps": n_steps}
    echo(f"PermutedDigits-{n_tasks}, preset permuted_digits, {torch.get_num_threads()} torch "
         f"threads; continual evaluation every {every} steps on {samples} test points per task")
    make_learner("hnet", "permuted_digits", "cl1", 0, False, n_steps=30).fit(tasks[:2])  # warm-up
    out = {}
    for method in methods:
        times: dict[int, list[float]] = {0: [], every: []}
        last: dict[int, list[torch.Tensor]] = {}
        for r in range(repeats):
            for k in ((0, every) if r % 2 == 0 else (every, 0)):
                learner = make_learner(method, "permuted_digits", "cl1", 0, False,
                                       eval_every=k, eval_samples=samples, **steps)
                start = time.perf_counter()
                learner.fit(tasks)
                times[k].append(time.perf_counter() - start)
                last[k] = _weights(learner)
                echo(f"  {method:>8} {'with' if k else 'without'} evaluation: "
                     f"{times[k][-1]:7.2f} s")
        if not all(torch.equal(a, b) for a, b in zip(last[0], last[every])):
            raise AssertionError(f"continual evaluation changed {method}'s trained weights")
        overhead = statistics.median(times[every]) / statistics.median(times[0]) - 1
        out[method] = {"plain_s": times[0], "eval_s": times[every], "overhead": overhead}
        echo(f"{method:>10}: overhead {100 * overhead:+.1f} % (median of {repeats}; "
             "weights identical)")
    return out
