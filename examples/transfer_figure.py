"""Transfer to data-poor tasks (docs/results.md, "Transfer"): the figure from comparisons
of fashion_transfer with several amounts of data per later task, each made with

    python -c "import hnviz; from hnviz.data.sequences import fashion_transfer; \
hnviz.compare(fashion_transfer(n_per_class=20), 'fashion_transfer', 'cl1', \
['hnet', 'finetune'], [0, 1, 2], 'runs/transfer/n20', scratch=True)"

(and n5, n100 likewise), then

    python examples/transfer_figure.py runs/transfer docs/images/transfer.png 20

Each folder ``n<K>`` under RUNS is one comparison with K training images per class of a
later task; the left panel shows the one named last on the command line, task by task.
Prints each comparison's gains.
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hnviz.data.sequences import TRANSFER_CLASSES  # noqa: E402
from hnviz.results.transfer import plot_gain_by_size, plot_transfer, transfer_points  # noqa: E402


def main(runs_dir: str, png: str, shown: int) -> None:
    root = Path(runs_dir)
    folders = sorted((int(d.name[1:]), d) for d in root.glob("n*")
                     if d.is_dir() and d.name[1:].isdigit())
    if not folders:
        sys.exit(f"no comparisons n<K> in {root}; make them first (this script's docstring)")
    by_size = {}
    for n, folder in folders:
        runs = {m.name: sorted(p for p in m.iterdir() if (p / "run.json").is_file())
                for m in sorted(folder.iterdir()) if m.is_dir()}
        by_size[n] = transfer_points({m: d for m, d in runs.items() if d})
        for m, p in by_size[n].items():
            print(f"n_per_class={n} {m}: in the sequence - alone over tasks 2-6: "
                  f"{p['gain'].mean():.2f} +- {p['gain'].std():.2f} ({len(p['gain'])} seeds)")
    if shown not in by_size:
        sys.exit(f"no comparison n{shown} in {root}")
    fig, (ax, gax) = plt.subplots(1, 2, figsize=(12, 4), width_ratios=(2.2, 1),
                                  layout="constrained")
    names = ["classes 0-4"] + ["classes " + ",".join(map(str, c)) for c in TRANSFER_CLASSES]
    plot_transfer(by_size[shown], ax, names=names)
    ax.set_title(f"fashion_transfer, {shown} images per class of a later task "
                 f"(mean ± std over seeds)", fontsize=9)
    plot_gain_by_size(by_size, gax)
    gax.set_title("mean gain over tasks 2-6", fontsize=9)
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python examples/transfer_figure.py RUNS OUT.png SHOWN_N")
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
