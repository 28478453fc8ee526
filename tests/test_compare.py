"""The comparison command: same tasks and budget per method, correct summary table."""
import json

import numpy as np
import pytest

import hnviz
from hnviz.cli.parser import main
from hnviz.core.memory import reset_peak_rss
from hnviz.experiments.compare import check_methods, compare, markdown_table


@pytest.fixture(scope="module")
def small_compare(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    tasks = hnviz.split_digits()
    summary = compare(tasks, "split_digits", "cl3", ["hnet", "finetune", "si"], [0, 1], out,
                      progress=False, n_steps=15)
    return out, summary


def test_writes_runs_summary_and_table(small_compare):
    out, summary = small_compare
    for m in ("hnet", "finetune", "si"):
        for s in (0, 1):
            run = hnviz.load_run(out / m / f"seed{s}")
            assert run.learner.n_tasks_ == 5 and run.metrics["method"] == m
            assert run.tasks()[0].scenario == "cl3"
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["scenario"] == "cl3" and on_disk["seeds"] == [0, 1]
    table = (out / "table.md").read_text()
    assert table.count("\n| ") == 4 and "| hnet |" in table and "task inference" in table


def test_peak_memory_per_run_in_the_table(small_compare):
    """Each run records the process's peak resident memory while it trained (reset at its
    start on Linux), the summary carries it and the table prints it in MiB; a summary
    written before hnviz recorded it shows no such column."""
    out, summary = small_compare
    peaks = [hnviz.load_run(out / "si" / f"seed{s}").metrics["peak_rss_mib"] for s in (0, 1)]
    if reset_peak_rss():  # Linux: VmHWM
        assert all(50 < p < 4096 for p in peaks)  # this test process: torch + digits, < 4 GiB
    assert summary["methods"]["si"]["peak_rss_mib"]["values"] == pytest.approx(peaks)
    head = (out / "table.md").read_text().splitlines()[2]
    assert head.endswith("| wall time (s) | peak RSS (MiB) |")
    old = json.loads(json.dumps(summary))
    for st in old["methods"].values():
        st["peak_rss_mib"] = {"mean": None, "std": None, "values": []}
    assert "peak RSS" not in markdown_table(old)


def test_mean_and_std_over_seeds(small_compare):
    out, summary = small_compare
    for m in ("hnet", "si"):
        finals = [hnviz.load_run(out / m / f"seed{s}").metrics["average_final"] for s in (0, 1)]
        stat = summary["methods"][m]["average_final"]
        assert stat["values"] == pytest.approx(finals)
        assert stat["mean"] == pytest.approx(np.mean(finals))
        assert stat["std"] == pytest.approx(np.std(finals))
    # task inference only for the hypernetwork; the same budget for every method
    assert summary["methods"]["hnet"]["task_inference"]["mean"] is not None
    assert summary["methods"]["si"]["task_inference"]["mean"] is None
    hn = hnviz.load_run(out / "hnet" / "seed0").learner
    assert hn.inference_matrix_.shape == (5, 5)  # restored from run.json's metrics
    si = hnviz.load_run(out / "si" / "seed0").learner
    assert len(hn.history_[0]["task_loss"]) == len(si.history_[0]["task_loss"]) == 15
    assert si.target_.out_features == 10 and si.target_.n_heads == 1  # cl3: one 10-way head


def test_first_seed_picks_held_out_seeds(tmp_path, capsys):
    """--first-seed K --seeds N runs seeds K..K+N-1 (seeds held out from tuning)."""
    out = tmp_path / "c"
    assert main(["compare", "--benchmark", "split_digits", "--methods", "finetune", "--steps",
                 "3", "--seeds", "2", "--first-seed", "3", "--no-progress", "--out",
                 str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["seeds"] == [3, 4]
    assert sorted(p.name for p in (out / "finetune").iterdir()) == ["seed3", "seed4"]
    assert "seeds [3, 4]" in capsys.readouterr().out


def test_unknown_method(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown method 'lwf'; choose from hnet"):
        check_methods(["hnet", "lwf"])
    assert main(["compare", "--benchmark", "split_digits", "--methods", "hnet,xyz",
                 "--out", str(tmp_path)]) == 2
    assert "unknown method 'xyz'" in capsys.readouterr().err
    assert main(["compare", "--benchmark", "split_digits", "--scenario", "cl9",
                 "--out", str(tmp_path), "--steps", "1"]) == 2
