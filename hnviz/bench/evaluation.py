"""What continual evaluation costs (``python -m hnviz bench-eval``): the same training
with and without ``eval_every``, timed in one process in alternating order, results
checked to be the same weights; and, less noisy, the evaluations alone: the records a
run makes, timed on the trained learner."""
from __future__ import annotations

import statistics
import time
from typing import Any, Sequence

import torch

from ..data.benchmarks import permuted_digits
from ..experiments.compare import make_learner
from ..learners.methods import DEFAULT_METHOD, SHOWCASE, check_methods
from ..core.stability import ContinualEval


def _weights(learner: Any) -> list[torch.Tensor]:
    return [w.detach().clone() for w in learner.state_dict().weights.values()]


def _direct_seconds(learner: Any, tasks: Any, every: int, samples: int) -> float:
    """Seconds the records of one run take: for each task t, its ``n_steps // every + 1``
    (+1 if the last step is not a multiple) records of t + 1 tasks, each timed on the
    trained learner (the weights of all its tasks made, then the first t + 1 scored)."""
    n_steps, total = learner.config.n_steps, 0.0
    n_records = n_steps // every + 1 + (n_steps % every > 0)
    for t in range(len(tasks)):
        ce = ContinualEval(tasks[:t + 1], samples, learner.device_)
        heads = [learner.head_of(j) for j in range(t + 1)]
        times = []
        for _ in range(5):
            start = time.perf_counter()
            ce.record(0, learner.target_, learner.current_weights()[:t + 1], heads)
            times.append(time.perf_counter() - start)
        total += n_records * statistics.median(times)
    return total


def eval_overhead(methods: Sequence[str] = (DEFAULT_METHOD, SHOWCASE[1]), n_tasks: int = 10,
                  every: int = 10,
                  repeats: int = 3, n_steps: int | None = None, samples: int = 100,
                  echo: Any = print) -> dict[str, dict[str, Any]]:
    """Per method: PermutedDigits-``n_tasks`` (preset ``permuted_digits``, cl1, seed 0)
    trained ``repeats`` times without and with ``eval_every = every`` (``samples`` test
    points per task), pairs in alternating order, at a fixed thread count (torch's now:
    "auto" would choose from step times, which the evaluations change). Raises if
    evaluating changed the weights. Returns per method ``plain_s``, ``eval_s`` (lists),
    ``overhead`` (median with / median without - 1: end to end, noisy) and ``direct``
    (the records' own seconds, :func:`_direct_seconds`, / median without); prints a line
    per run and per method."""
    methods = check_methods(methods)
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    tasks = permuted_digits(n_tasks)
    steps = {} if n_steps is None else {"n_steps": n_steps}
    echo(f"PermutedDigits-{n_tasks}, preset permuted_digits, {torch.get_num_threads()} torch "
         f"threads; continual evaluation every {every} steps on {samples} test points per task")
    warm = make_learner(DEFAULT_METHOD, "permuted_digits", "cl1", 0, False, n_steps=30)
    warm.fit(tasks[:2])  # warm-up
    out = {}
    for method in methods:
        times: dict[int, list[float]] = {0: [], every: []}
        last: dict[int, list[torch.Tensor]] = {}
        for r in range(repeats):
            for k in ((0, every) if r % 2 == 0 else (every, 0)):
                learner = make_learner(method, "permuted_digits", "cl1", 0, False,
                                       eval_every=k, eval_samples=samples, **steps)
                learner.threads = torch.get_num_threads()
                start = time.perf_counter()
                learner.fit(tasks)
                times[k].append(time.perf_counter() - start)
                last[k] = _weights(learner)
                echo(f"  {method:>8} {'with' if k else 'without'} evaluation: "
                     f"{times[k][-1]:7.2f} s")
        if not all(torch.equal(a, b) for a, b in zip(last[0], last[every])):
            raise AssertionError(f"continual evaluation changed {method}'s trained weights")
        plain = statistics.median(times[0])
        overhead = statistics.median(times[every]) / plain - 1
        direct = _direct_seconds(learner, tasks, every, samples) / plain
        out[method] = {"plain_s": times[0], "eval_s": times[every], "overhead": overhead,
                       "direct": direct}
        echo(f"{method:>10}: overhead {100 * overhead:+.1f} % end to end (median of "
             f"{repeats}), {100 * direct:.1f} % in the evaluations themselves; weights "
             "identical")
    return out
