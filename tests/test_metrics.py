"""Metrics on a hand-computed matrix."""
import numpy as np
import pytest

from hnviz import metrics

NAN = np.nan
R = np.array([[90.0, NAN, NAN],
              [80.0, 95.0, NAN],
              [70.0, 97.0, 85.0]])


def test_during_final_average():
    np.testing.assert_array_equal(metrics.during(R), [90, 95, 85])
    np.testing.assert_array_equal(metrics.final(R), [70, 97, 85])
    assert metrics.average_final(R) == pytest.approx((70 + 97 + 85) / 3)


def test_bwt_gem():
    # ((70 - 90) + (97 - 95)) / 2
    assert metrics.bwt(R) == pytest.approx(-9.0)


def test_forgetting_chaudhry():
    # task 0: max(90, 80) - 70 = 20; task 1: max(95) - 97 = -2
    assert metrics.forgetting(R) == pytest.approx(9.0)


def test_forgetting_for_mse_is_positive_when_worse():
    M = np.array([[0.1, NAN], [0.4, 0.2]])
    assert metrics.forgetting(M, higher_is_better=False) == pytest.approx(0.3)
    assert metrics.bwt(M) == pytest.approx(0.3)


def test_summary_json_ready():
    s = metrics.summary(R)
    assert s["matrix"][0] == [90.0, None, None]
    assert s["bwt"] == pytest.approx(-9.0) and s["metric"] == "accuracy"


def test_single_task_and_bad_shape():
    assert np.isnan(metrics.bwt(np.array([[50.0]])))
    with pytest.raises(ValueError, match="square"):
        metrics.bwt(np.zeros((2, 3)))
