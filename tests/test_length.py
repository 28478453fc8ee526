"""Memory against sequence length (hnviz.results.length): points, table and figure from
run directories."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import hnviz  # noqa: E402
from hnviz.results.length import length_points, length_table, plot_length_curve  # noqa: E402


@pytest.fixture(scope="module")
def length_runs(tmp_path_factory):
    """Two hypernetworks (a compressive and a full one) at 2 and 3 tasks, 2 seeds at 3."""
    root = tmp_path_factory.mktemp("length")
    sizes = {"small": dict(target_hidden=(200,), hnet_hidden=(16, 4), chunk_size=100),
             "full": {}}
    runs = {}
    for label, changes in sizes.items():
        cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=40, **changes)
        runs[label] = []
        for n, seed in ((2, 0), (3, 0), (3, 1)):
            learner = hnviz.HyperCL(cfg, random_state=seed, progress=False)
            learner.fit(hnviz.permuted_digits(n, seed=seed))
            out = root / f"{label}_T{n}_s{seed}"
            hnviz.save_run(learner, out, wall_seconds=1.5 + seed)
            runs[label].append(out)
    return runs


def test_points_are_each_length_and_label_over_its_seeds(length_runs):
    points = length_points(length_runs)
    assert [(p["label"], p["n_tasks"], p["seeds"]) for p in points] == [
        ("full", 2, [0]), ("full", 3, [0, 1]), ("small", 2, [0]), ("small", 3, [0, 1])]
    for p in points:
        runs = [r for r in map(hnviz.load_run, length_runs[p["label"]])
                if r.learner.n_tasks_ == p["n_tasks"]]
        finals = [r.metrics["average_final"] for r in runs]
        assert p["average_final"]["mean"] == pytest.approx(np.mean(finals))
        assert p["average_final"]["std"] == pytest.approx(np.std(finals))
        during = [np.mean(r.metrics["during"]) for r in runs]
        assert p["during"]["mean"] == pytest.approx(np.mean(during))
        assert p["forgetting"]["values"] == pytest.approx([r.metrics["forgetting"] for r in runs])
        ratio = runs[0].learner.hnet_.compression_ratio(p["n_tasks"])
        assert p["compression_ratio"]["values"][0] == pytest.approx(ratio)
        assert p["wall_seconds"]["values"] == [1.5 + s for s in p["seeds"]]
    small = {p["n_tasks"]: p["compression_ratio"]["mean"] for p in points if p["label"] == "small"}
    full = {p["n_tasks"]: p["compression_ratio"]["mean"] for p in points if p["label"] == "full"}
    # the ratio counts that length's embeddings: one more task, emb_dim more weights
    hnet = hnviz.load_run(length_runs["small"][0]).learner.hnet_
    assert small[3] - small[2] == pytest.approx(hnet.emb_dim / hnet.num_outputs)
    assert small[2] < 1 < full[2]


def test_table_has_a_row_per_point(length_runs):
    points = length_points(length_runs)
    table = length_table(points).splitlines()
    assert len(table) == 2 + len(points)
    row = table[2 + 1]  # full, 3 tasks, seeds 0 and 1
    assert row.startswith("| full | 3 | 0, 1 | ")
    assert f"{points[1]['average_final']['mean']:.2f} ± {points[1]['average_final']['std']:.2f}" \
        in row


def test_curve_draws_final_during_and_forgetting_per_label(length_runs):
    points = length_points(length_runs)
    fig, (ax, fax) = plt.subplots(1, 2)
    plot_length_curve(points, ax, forgetting_ax=fax)
    lines = [c.lines[0] for c in ax.containers]  # the data line of each errorbar
    assert len(lines) == 4  # final and during for each of two labels
    finals = {p["label"]: [q["average_final"]["mean"] for q in points if q["label"] == p["label"]]
              for p in points}
    drawn = [tuple(np.round(np.asarray(line.get_ydata(), float), 6)) for line in lines]
    for label, ys in finals.items():
        assert tuple(np.round(ys, 6)) in drawn, label
    assert list(ax.get_xticks()) == [2, 3]
    assert len(fax.containers) == 2
    plt.close(fig)


def test_mistakes_get_one_clear_line(tmp_path, length_runs):
    with pytest.raises(ValueError, match="no points to plot"):
        plot_length_curve([])
    bcfg = hnviz.BaselineConfig.preset("permuted_digits", method="ewc", n_steps=5)
    ewc = hnviz.BaselineCL(bcfg, progress=False).fit(hnviz.permuted_digits(2))
    hnviz.save_run(ewc, tmp_path / "ewc")
    with pytest.raises(ValueError, match="is a BaselineCL run; length_points compares"):
        length_points({"ewc": [tmp_path / "ewc"]})
    with pytest.raises(ValueError, match="has seed 0 at 2 tasks twice"):
        length_points({"small": [length_runs["small"][0], length_runs["small"][0]]})
    with pytest.raises(ValueError, match="not the same benchmark and config as the first run"):
        length_points({"mixed": [length_runs["small"][0], length_runs["full"][1]]})
