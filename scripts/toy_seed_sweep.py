"""Seed sweep of the toy regression with the paper's settings (docs/results.md, "Runs and presets").

Usage: python scripts/toy_seed_sweep.py [N_SEEDS] [--hnet-init xavier|pytorch]
Prints, per seed, the final and during test MSE of the three tasks, with beta = 0.005
and beta = 0 (fine-tuning).
"""
import argparse

import numpy as np

import hnviz


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n_seeds", type=int, nargs="?", default=10)
    ap.add_argument("--hnet-init", default=None)
    args = ap.parse_args()
    tasks = hnviz.toy_regression()
    cfg = hnviz.HyperCLConfig.preset("toy_regression")
    if args.hnet_init:
        cfg = cfg.replace(hnet_init=args.hnet_init)
    ok = 0
    print(f"hnet_init={cfg.hnet_init}")
    print("seed  final MSE (beta=0.005)        during MSE               final MSE (beta=0)")
    for seed in range(args.n_seeds):
        hn = hnviz.HyperCL(cfg, random_state=seed, progress=False).fit(tasks)
        ft = hnviz.HyperCL(cfg.replace(beta=0.0), random_state=seed, progress=False).fit(tasks)
        fin, dur = hn.matrix_[-1], np.diag(hn.matrix_)
        ok += bool((fin <= 0.01).all())
        print(f"{seed:>4}  {np.array2string(fin, precision=4):<28} "
              f"{np.array2string(dur, precision=4):<24} {np.array2string(ft.matrix_[-1], precision=3)}",
              flush=True)
    print(f"{ok}/{args.n_seeds} seeds end with MSE <= 0.01 on all three tasks")


if __name__ == "__main__":
    main()
