"""The stability-gap figure of docs/results.md from a comparison trained with continual
evaluation:

    python -m hnviz compare --benchmark permuted_digits --tasks 10 --seeds 3 \
        --methods finetune,ewc,hnet --eval-every 10 --out runs/gap10
    python examples/stability_gap_figure.py runs/gap10 docs/images/stability_gap.png

One panel per method (seed 0): every task's accuracy at every 10th step, the mean of the
tasks learned before the one in training (black), task starts dotted; the title gives the
stability gap and its recovery over all seeds (mean ± std).
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hnviz import load_run  # noqa: E402
from hnviz.results.plots import plot_continual  # noqa: E402


def main(out_dir: str, png: str) -> None:
    out = Path(out_dir)
    summary = json.loads((out / "summary.json").read_text())
    methods = list(summary["methods"])
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.4), sharey=True)
    for ax, method in zip(axes, methods):
        run = load_run(out / method / "seed0").learner
        plot_continual(run.history_, run.metric_, ax)
        st = summary["methods"][method]
        gap, back = st["stability_gap"], st["gap_recovery"]
        ax.set_title(f"{method}: gap {gap['mean']:.1f} ± {gap['std']:.1f}, "
                     f"recovered {back['mean']:.1f}", fontsize=9)
        ax.set_xlabel("training step (all tasks)", fontsize=8)
        if ax is not axes[0]:
            ax.set_ylabel("")
    axes[0].set_ylim(0, 101)
    fig.suptitle(f"{summary['benchmark']['name']} ({summary['n_tasks']} tasks), cl1: every "
                 f"task while the later ones train (seed 0; gap over seeds {summary['seeds']})",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python examples/stability_gap_figure.py COMPARE_OUT FIGURE.png")
    main(sys.argv[1], sys.argv[2])
