"""Compression against sequence length (docs/results.md, "Compression over longer
sequences"): the figure and table from run directories trained one point at a time, e.g.

    python -m hnviz train --benchmark permuted_digits --tasks 30 --seed 2 \
        --preset permuted_digits_compressive --out runs/length/compressive/T30_seed2
    python -m hnviz train --benchmark permuted_digits --tasks 30 --seed 2 \
        --steps 2000 --reg-subset 4 --out runs/length/non-compressive/T30_seed2

(every length and seed), then

    python examples/compression_length.py runs/length docs/images/compression_length.png

Each folder under RUNS is one hypernetwork (its name is the label); each run directory in
it is one length and seed. Prints the Markdown table and writes the figure.
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hnviz.results.length import length_points, length_table, plot_length_curve  # noqa: E402


def main(runs_dir: str, png: str) -> None:
    root = Path(runs_dir)
    if not root.is_dir():
        sys.exit(f"{root} is not a directory; pass the folder that holds one folder of run "
                 "directories per hypernetwork")
    runs = {d.name: sorted(p for p in d.iterdir() if (p / "run.json").is_file())
            for d in sorted(root.iterdir()) if d.is_dir()}
    points = length_points({label: dirs for label, dirs in runs.items() if dirs})
    if not points:
        sys.exit(f"no finished runs in {root}/*/; train them first (python -m hnviz train ...; "
                 "this script's docstring has the commands)")
    print(length_table(points))
    fig, (ax, fax) = plt.subplots(1, 2, figsize=(11, 4))
    plot_length_curve(points, ax, forgetting_ax=fax)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"figure written to {png}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python examples/compression_length.py RUNS FIGURE.png")
    main(sys.argv[1], sys.argv[2])
