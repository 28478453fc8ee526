"""Speed of the embedding-space analysis on a 100-task PermutedDigits run (issue 4).

Usage: python scripts/bench_analysis.py [--tasks 100] [--steps 30] [--resolution 100]
Trains a PermutedDigits run with the CPU preset's architecture (``--steps`` per task;
timing does not depend on how well it trained), then prints the median time of:
one alpha-slider update (the net at e(alpha) scored on every task), a whole
interpolation path, and a resolution x resolution landscape of one task.
"""
import argparse
import time

import numpy as np
import torch

import hnviz
from hnviz.analysis import embedding_landscape, evaluate_embeddings, interpolate


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--resolution", type=int, default=100)
    args = ap.parse_args()
    tasks = hnviz.permuted_digits(args.tasks)
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=args.steps)
    start = time.perf_counter()
    learner = hnviz.HyperCL(cfg, progress=False).fit(tasks)
    print(f"trained {args.tasks} tasks x {args.steps} steps in {time.perf_counter() - start:.1f}s "
          f"(torch threads: {torch.get_num_threads()})")
    e = learner.embeddings_
    slider = median_time(lambda: evaluate_embeddings(learner, tasks, 0.7 * e[0] + 0.3 * e[1]), 7)
    path = median_time(lambda: interpolate(learner, tasks, 0, 1, n_steps=41), 3)
    land = median_time(lambda: embedding_landscape(learner, tasks, 0, args.resolution), 3)
    print(f"alpha-slider update (1 net, {args.tasks} tasks' test sets): {slider * 1000:.1f} ms")
    print(f"interpolation path (43 points x {args.tasks} tasks): {path:.2f} s")
    print(f"landscape {args.resolution}x{args.resolution} of one task (200 test points): {land:.2f} s")


if __name__ == "__main__":
    main()
