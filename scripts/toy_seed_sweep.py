"""Seed sweep of the toy regression (docs/results.md, "Runs and presets" and "The quick toy").

Usage: python scripts/toy_seed_sweep.py [N_SEEDS] [--preset toy_regression|toy_regression_quick]
       [--hnet-init xavier|pytorch] [--steps N] [--betas 0.005,0]
Prints, per seed, the final and during test MSE of the three tasks at the preset's beta
(or each of --betas), and how many seeds end with MSE <= 0.01 on every task.
"""
import argparse

import numpy as np

import hnviz


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n_seeds", type=int, nargs="?", default=10)
    ap.add_argument("--preset", default="toy_regression")
    ap.add_argument("--hnet-init", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--betas", default=None, help="comma-separated betas (default: the preset's and 0)")
    args = ap.parse_args()
    tasks = hnviz.toy_regression()
    cfg = hnviz.HyperCLConfig.preset(args.preset)
    if args.hnet_init:
        cfg = cfg.replace(hnet_init=args.hnet_init)
    if args.steps:
        cfg = cfg.replace(n_steps=args.steps)
    betas = [float(b) for b in args.betas.split(",")] if args.betas else [cfg.beta, 0.0]
    print(f"preset {args.preset}, hnet_init={cfg.hnet_init}, {cfg.n_steps} steps per task")
    for beta in betas:
        ok, worst = 0, []
        print(f"beta = {beta:g}\nseed  final MSE                     during MSE")
        for seed in range(args.n_seeds):
            hn = hnviz.HyperCL(cfg.replace(beta=beta), random_state=seed, progress=False).fit(tasks)
            fin, dur = hn.matrix_[-1], np.diag(hn.matrix_)
            ok += bool((fin <= 0.01).all())
            worst.append(fin.max())
            print(f"{seed:>4}  {np.array2string(fin, precision=4):<28} "
                  f"{np.array2string(dur, precision=4)}", flush=True)
        print(f"beta = {beta:g}: {ok}/{args.n_seeds} seeds end with MSE <= 0.01 on all three "
              f"tasks (worst task per seed: median {np.median(worst):.4f}, max {max(worst):.4f})")


if __name__ == "__main__":
    main()
