"""Tables of results: mean ± std over seeds, cells, Markdown, the one-line summary."""
import pytest

from hnviz.results.tables import format_stat, markdown_table, stats, summary_line


def test_stats_skip_missing_values():
    s = stats([80.0, None, 90.0])
    assert s["mean"] == 85.0 and s["std"] == 5.0 and s["values"] == [80.0, None, 90.0]
    assert stats([None, None]) == {"mean": None, "std": None, "values": [None, None]}


@pytest.mark.parametrize("values, kwargs, cell", [
    ([96.781, 96.7], {}, "96.74 ± 0.04"),
    ([96.781], {}, "96.78"),
    ([12.34, 12.36], {"digits": 1}, "12.3 ± 0.0"),
    ([136576.0], {"thousands": True}, "136,576"),
    ([None], {}, "—"),
])
def test_format_stat(values, kwargs, cell):
    assert format_stat(stats(values), **kwargs) == cell
    assert format_stat(None) == "—"


def test_markdown_table():
    assert markdown_table(["a", "b"], [["1", "2"], ["3", "4"]]) == \
        "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n"


def test_summary_line():
    s = {"metric": "accuracy", "during": [90.0, 100.0], "average_final": 93.0, "bwt": -2.0,
         "forgetting": None, "wall_seconds": 12.34}
    assert summary_line(s) == "accuracy    95.00%    93.00%      -2.00        n/a    12.3s"
    s.update(metric="mse", during=[0.001], average_final=0.002, bwt=0.001, forgetting=0.0015)
    assert summary_line(s).split() == ["mse", "0.0010", "0.0020", "0.0010", "0.0015", "12.3s"]
